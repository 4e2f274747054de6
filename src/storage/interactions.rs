//! What happened with a customer: interactions (calls, notes, dispositions, survey scores) and
//! complaints (owned by the first person reached until closed).

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{
    Arg, Cols, First, FromCols, Result, Storage, StorageError, id_params, int_args, now_ms,
};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Interaction {
    pub id: i64,
    pub customer_id: Option<i64>,
    pub call_id: Option<String>,
    pub kind: String,
    pub direction: Option<String>,
    pub number_raw: Option<String>,
    pub number_e164: Option<String>,
    pub agent_id: Option<i64>,
    pub agent: Option<String>,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    pub disposition: Option<String>,
    pub note: Option<String>,
    pub satisfaction: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct NewInteraction {
    pub customer_id: Option<i64>,
    pub call_id: Option<String>,
    pub kind: String,
    pub direction: Option<String>,
    pub number_raw: Option<String>,
    pub number_e164: Option<String>,
    pub agent_id: Option<i64>,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    pub disposition: Option<String>,
    pub note: Option<String>,
    pub satisfaction: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Complaint {
    pub id: i64,
    pub customer_id: i64,
    pub summary: String,
    pub opened_by: Option<i64>,
    pub owner: Option<i64>,
    pub owner_name: Option<String>,
    pub status: String,
    pub resolution: Option<String>,
    pub opened_at: i64,
    pub closed_at: Option<i64>,
}

const INTERACTION_SELECT: &str = "SELECT i.id, i.customer_id, i.call_id, i.kind, i.direction, i.number_raw, \
     i.number_e164, i.agent_id, a.name AS agent, i.started_at, i.answered_at, i.ended_at, i.outcome, \
     i.disposition, i.note, i.satisfaction FROM interactions i LEFT JOIN agents a ON a.id = i.agent_id";

impl FromCols for Interaction {
    fn from_cols<R: Cols>(row: &R) -> std::result::Result<Self, sqlx::Error> {
        Ok(Interaction {
            id: row.col("id")?,
            customer_id: row.col("customer_id")?,
            call_id: row.col("call_id")?,
            kind: row.col("kind")?,
            direction: row.col("direction")?,
            number_raw: row.col("number_raw")?,
            number_e164: row.col("number_e164")?,
            agent_id: row.col("agent_id")?,
            agent: row.col("agent")?,
            started_at: row.col("started_at")?,
            answered_at: row.col("answered_at")?,
            ended_at: row.col("ended_at")?,
            outcome: row.col("outcome")?,
            disposition: row.col("disposition")?,
            note: row.col("note")?,
            satisfaction: row.col("satisfaction")?,
        })
    }
}

const COMPLAINT_SELECT: &str = "SELECT c.id, c.customer_id, c.summary, c.opened_by, c.owner, a.name AS owner_name, \
     c.status, c.resolution, c.opened_at, c.closed_at FROM complaints c LEFT JOIN agents a ON a.id = c.owner";

impl FromCols for Complaint {
    fn from_cols<R: Cols>(row: &R) -> std::result::Result<Self, sqlx::Error> {
        Ok(Complaint {
            id: row.col("id")?,
            customer_id: row.col("customer_id")?,
            summary: row.col("summary")?,
            opened_by: row.col("opened_by")?,
            owner: row.col("owner")?,
            owner_name: row.col("owner_name")?,
            status: row.col("status")?,
            resolution: row.col("resolution")?,
            opened_at: row.col("opened_at")?,
            closed_at: row.col("closed_at")?,
        })
    }
}

impl Storage {
    pub async fn add_interaction(&self, new: &NewInteraction) -> Result<Interaction> {
        let id = insert_interaction(&self.pool, new).await?;
        self.interaction(id).await
    }

    pub async fn interaction(&self, id: i64) -> Result<Interaction> {
        let row = sqlx::query(&format!("{INTERACTION_SELECT} WHERE i.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StorageError::NotFound)?;
        Ok(Interaction::from_cols(&row)?)
    }

    /// The call interaction recorded for a call id, if any.
    pub async fn call_interaction(&self, call_id: &str) -> Result<Option<Interaction>> {
        let row = sqlx::query(&format!(
            "{INTERACTION_SELECT} WHERE i.call_id = $1 AND i.kind = 'call' ORDER BY i.id LIMIT 1"
        ))
        .bind(call_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(Interaction::from_cols).transpose()?)
    }

    /// Sets the disposition, note and score of an interaction (the agent's outcome of a call).
    pub async fn set_disposition(
        &self,
        id: i64,
        disposition: &str,
        note: Option<&str>,
        satisfaction: Option<i64>,
        agent_id: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE interactions SET disposition = $1, note = COALESCE($2, note), \
             satisfaction = COALESCE($3, satisfaction), agent_id = COALESCE(agent_id, $4) WHERE id = $5",
        )
        .bind(disposition)
        .bind(note)
        .bind(satisfaction)
        .bind(agent_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_interaction_customer(&self, id: i64, customer_id: i64) -> Result<()> {
        sqlx::query("UPDATE interactions SET customer_id = $1 WHERE id = $2")
            .bind(customer_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The last `per_customer` interactions of each customer, newest first, in one query.
    pub async fn recent_interactions(
        &self,
        customer_ids: &[i64],
        per_customer: i64,
    ) -> Result<Vec<Interaction>> {
        if customer_ids.is_empty() {
            return Ok(Vec::new());
        }
        let (list, params) = id_params(2, customer_ids);
        let sql = format!(
            "SELECT * FROM (SELECT x.*, ROW_NUMBER() OVER (PARTITION BY x.customer_id ORDER BY x.started_at DESC, x.id DESC) AS rn \
             FROM ({INTERACTION_SELECT} WHERE i.customer_id IN ({list})) x) y WHERE y.rn <= $1 ORDER BY y.started_at DESC, y.id DESC"
        );
        let args: Vec<Arg> = std::iter::once(Arg::Int(per_customer))
            .chain(int_args(&params))
            .collect();
        self.select(&sql, &args).await
    }

    pub async fn list_interactions(
        &self,
        customer_id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Interaction>> {
        let rows = match customer_id {
            Some(id) => {
                sqlx::query(&format!(
                    "{INTERACTION_SELECT} WHERE i.customer_id = $1 ORDER BY i.started_at DESC, i.id DESC LIMIT $2 OFFSET $3"
                ))
                .bind(id)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!("{INTERACTION_SELECT} ORDER BY i.started_at DESC, i.id DESC LIMIT $1 OFFSET $2"))
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows
            .iter()
            .map(Interaction::from_cols)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// How many calls came from this number since `since` (for the "called N times today" hint).
    pub async fn calls_from_number_since(&self, e164: &str, since: i64) -> Result<i64> {
        let count: Vec<First<i64>> = self
            .select(
                "SELECT COUNT(*) AS n FROM interactions WHERE number_e164 = $1 AND kind = 'call' AND started_at >= $2",
                &[Arg::Text(e164), Arg::Int(since)],
            )
            .await?;
        Ok(count.first().map_or(0, |n| n.0))
    }

    /// Customers who recently had an interaction with this number, most recent first.
    pub async fn recent_customers_for_number(&self, e164: &str, limit: i64) -> Result<Vec<i64>> {
        let ids: Vec<First<i64>> = self
            .select(
                "SELECT customer_id, MAX(started_at) AS last FROM interactions WHERE number_e164 = $1 \
                 AND customer_id IS NOT NULL GROUP BY customer_id ORDER BY last DESC LIMIT $2",
                &[Arg::Text(e164), Arg::Int(limit)],
            )
            .await?;
        Ok(ids.into_iter().map(|id| id.0).collect())
    }

    pub async fn open_complaint(
        &self,
        customer_id: i64,
        summary: &str,
        opened_by: Option<i64>,
        owner: Option<i64>,
    ) -> Result<Complaint> {
        let row = sqlx::query(
            "INSERT INTO complaints (customer_id, summary, opened_by, owner, status, opened_at) \
             VALUES ($1, $2, $3, $4, 'open', $5) RETURNING id",
        )
        .bind(customer_id)
        .bind(summary)
        .bind(opened_by)
        .bind(owner.or(opened_by))
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        self.complaint(row.try_get("id")?).await
    }

    pub async fn complaint(&self, id: i64) -> Result<Complaint> {
        let row = sqlx::query(&format!("{COMPLAINT_SELECT} WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StorageError::NotFound)?;
        Ok(Complaint::from_cols(&row)?)
    }

    pub async fn update_complaint(
        &self,
        id: i64,
        status: &str,
        resolution: Option<&str>,
        owner: Option<i64>,
    ) -> Result<Complaint> {
        let closed_at = if status == "closed" {
            Some(now_ms())
        } else {
            None
        };
        let done = sqlx::query(
            "UPDATE complaints SET status = $1, resolution = COALESCE($2, resolution), owner = COALESCE($3, owner), \
             closed_at = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(resolution)
        .bind(owner)
        .bind(closed_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
        self.complaint(id).await
    }

    /// Complaints of these customers; only open ones (not closed) when `open_only`.
    pub async fn complaints_of(
        &self,
        customer_ids: &[i64],
        open_only: bool,
    ) -> Result<Vec<Complaint>> {
        if customer_ids.is_empty() {
            return Ok(Vec::new());
        }
        let filter = if open_only {
            " AND c.status <> 'closed'"
        } else {
            ""
        };
        let (list, params) = id_params(1, customer_ids);
        let sql = format!(
            "{COMPLAINT_SELECT} WHERE c.customer_id IN ({list}){filter} ORDER BY c.opened_at DESC"
        );
        let args: Vec<Arg> = int_args(&params).collect();
        self.select(&sql, &args).await
    }

    pub async fn list_complaints(
        &self,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Complaint>> {
        let rows = match status {
            Some(s) => sqlx::query(&format!("{COMPLAINT_SELECT} WHERE c.status = $1 ORDER BY c.opened_at DESC LIMIT $2 OFFSET $3"))
                .bind(s)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?,
            None => sqlx::query(&format!("{COMPLAINT_SELECT} ORDER BY c.opened_at DESC LIMIT $1 OFFSET $2"))
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?,
        };
        Ok(rows
            .iter()
            .map(Complaint::from_cols)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Remembers which customer an agent picked for a shared number.
    pub async fn remember_choice(
        &self,
        e164: &str,
        customer_id: i64,
        agent_id: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO number_choices (e164, customer_id, agent_id, chosen_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (e164) DO UPDATE SET customer_id = excluded.customer_id, agent_id = excluded.agent_id, \
             chosen_at = excluded.chosen_at",
        )
        .bind(e164)
        .bind(customer_id)
        .bind(agent_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn remembered_choice(&self, e164: &str) -> Result<Option<i64>> {
        let chosen: Vec<First<i64>> = self
            .select(
                "SELECT customer_id FROM number_choices WHERE e164 = $1",
                &[Arg::Text(e164)],
            )
            .await?;
        Ok(chosen.first().map(|id| id.0))
    }
}

/// Inserts an interaction; returns its id.
pub(crate) async fn insert_interaction<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    new: &NewInteraction,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO interactions (customer_id, call_id, kind, direction, number_raw, number_e164, agent_id, \
         started_at, answered_at, ended_at, outcome, disposition, note, satisfaction, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
    )
    .bind(new.customer_id)
    .bind(&new.call_id)
    .bind(&new.kind)
    .bind(&new.direction)
    .bind(&new.number_raw)
    .bind(&new.number_e164)
    .bind(new.agent_id)
    .bind(new.started_at)
    .bind(new.answered_at)
    .bind(new.ended_at)
    .bind(&new.outcome)
    .bind(&new.disposition)
    .bind(&new.note)
    .bind(new.satisfaction)
    .bind(now_ms())
    .fetch_one(db)
    .await?;
    Ok(row.try_get("id")?)
}

/// The id of the call interaction recorded for a call id, if any.
pub(crate) async fn call_interaction_id<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    call_id: &str,
) -> Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT id FROM interactions WHERE call_id = $1 AND kind = 'call' ORDER BY id LIMIT 1",
    )
    .bind(call_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| row.try_get("id")).transpose()?)
}

/// Fills in the outcome and times of a call interaction when the call ends.
pub(crate) async fn finish_call_interaction<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: i64,
    answered_at: Option<i64>,
    ended_at: i64,
    outcome: &str,
    agent_id: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "UPDATE interactions SET answered_at = COALESCE(answered_at, $1), ended_at = $2, outcome = $3, \
         agent_id = COALESCE(agent_id, $4) WHERE id = $5",
    )
    .bind(answered_at)
    .bind(ended_at)
    .bind(outcome)
    .bind(agent_id)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}
