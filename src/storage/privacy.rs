//! The audit trail and customers' data rights: export everything held on one customer, and erase
//! it, leaving only salted hashes of their numbers on the do-not-call list.

use serde::Serialize;
use sqlx::Row;

use super::events::statement_sizes;
use super::{Result, Storage, StorageError, now_ms};

/// The most pop audit rows per multi-row INSERT (three parameters each).
const AUDIT_ROWS_PER_STATEMENT: usize = 64;

/// A screen pop that showed a customer's card, for the audit trail (`action = 'pop'`,
/// `source = 'call'`).
#[derive(Debug, Clone)]
pub struct PopViewed {
    pub at: i64,
    pub customer_id: i64,
    /// Whom it went to, e.g. `pop to agents [3]`.
    pub detail: String,
}

/// Records pops in the audit trail within the caller's transaction (the call journal's), many
/// rows to a statement.
pub(super) async fn audit_pops(tx: &mut sqlx::AnyConnection, viewed: &[PopViewed]) -> Result<()> {
    let mut rest = viewed;
    for size in statement_sizes(viewed.len(), AUDIT_ROWS_PER_STATEMENT) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let values: Vec<String> = (0..size)
            .map(|i| {
                format!(
                    "(${}, 'pop', ${}, ${}, 'call')",
                    3 * i + 1,
                    3 * i + 2,
                    3 * i + 3
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO audit_log (at, action, customer_id, detail, source) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for pop in chunk {
            query = query.bind(pop.at).bind(pop.customer_id).bind(&pop.detail);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub customer_id: Option<i64>,
    pub detail: Option<String>,
    pub source: Option<String>,
}

/// Who did something, for the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub role: Option<String>,
    /// Where from: an IP address, `console`, `cli`.
    pub source: Option<String>,
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Erasure {
    pub numbers_suppressed: u64,
    pub interactions_anonymized: u64,
    pub tasks_cancelled: u64,
    pub journal_events_removed: u64,
}

impl Storage {
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        customer_id: Option<i64>,
        detail: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor_id, actor_name, actor_role, action, customer_id, detail, source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(now_ms())
        .bind(actor.id)
        .bind(&actor.name)
        .bind(&actor.role)
        .bind(action)
        .bind(customer_id)
        .bind(detail)
        .bind(&actor.source)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn audit_entries(
        &self,
        customer_id: Option<i64>,
        actor_id: Option<i64>,
        since: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE ($1 = 0 OR customer_id = $2) AND ($3 = 0 OR actor_id = $4) AND at >= $5 \
             ORDER BY at DESC, id DESC LIMIT $6 OFFSET $7",
        )
        .bind(customer_id.is_some() as i64)
        .bind(customer_id.unwrap_or(0))
        .bind(actor_id.is_some() as i64)
        .bind(actor_id.unwrap_or(0))
        .bind(since.unwrap_or(0))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor_id: r.try_get("actor_id")?,
                    actor_name: r.try_get("actor_name")?,
                    actor_role: r.try_get("actor_role")?,
                    action: r.try_get("action")?,
                    customer_id: r.try_get("customer_id")?,
                    detail: r.try_get("detail")?,
                    source: r.try_get("source")?,
                })
            })
            .collect()
    }

    /// Whether this number belonged to an erased customer (its hash is on the suppression list).
    pub async fn is_erased_number(&self, e164: &str) -> Result<bool> {
        let hash = self.number_hash(e164).await?;
        let count: Vec<super::First<i64>> = self
            .select(
                "SELECT COUNT(*) AS n FROM dnc WHERE number_hash = $1",
                &[super::Arg::Text(&hash)],
            )
            .await?;
        Ok(count.first().is_some_and(|n| n.0 > 0))
    }

    /// Erases a customer: numbers go onto the suppression list as salted hashes only; interactions
    /// keep their times and outcomes for statistics but lose customer, number and note; open tasks
    /// for the numbers are cancelled and scrubbed; journaled events naming the numbers are removed;
    /// then the customer (phones, tags, assets, complaints, choices) is deleted. One transaction.
    pub async fn erase_customer(&self, id: i64) -> Result<Erasure> {
        let customer = self.customer(id).await?;
        let numbers: Vec<String> = customer
            .phones
            .iter()
            .filter_map(|p| p.e164.clone())
            .collect();
        let mut hashes = Vec::new();
        for n in &numbers {
            hashes.push(self.number_hash(n).await?);
        }
        let mut report = Erasure::default();
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        for (number, hash) in numbers.iter().zip(&hashes) {
            sqlx::query("DELETE FROM dnc WHERE e164 = $1")
                .bind(number)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO dnc (number_hash, reason, created_at) VALUES ($1, 'erased', $2) ON CONFLICT (number_hash) DO NOTHING")
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            report.numbers_suppressed += 1;
            report.interactions_anonymized += sqlx::query(
                "UPDATE interactions SET customer_id = NULL, number_raw = NULL, number_e164 = NULL, note = NULL WHERE number_e164 = $1",
            )
            .bind(number)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            report.tasks_cancelled += sqlx::query(
                "UPDATE tasks SET state = CASE WHEN state IN ('pending', 'reserved', 'dialing', 'connected') THEN 'cancelled' ELSE state END, \
                 outcome = CASE WHEN state IN ('pending', 'reserved', 'dialing', 'connected') THEN 'erased' ELSE outcome END, \
                 number_e164 = 'erased', note = NULL, idempotency_key = NULL, updated_at = $1 WHERE number_e164 = $2",
            )
            .bind(now)
            .bind(number)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("UPDATE task_attempts SET number_e164 = 'erased' WHERE number_e164 = $1")
                .bind(number)
                .execute(&mut *tx)
                .await?;
            report.journal_events_removed +=
                sqlx::query("DELETE FROM call_events WHERE body LIKE $1")
                    .bind(format!("%{number}%"))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            sqlx::query("DELETE FROM number_choices WHERE e164 = $1")
                .bind(number)
                .execute(&mut *tx)
                .await?;
        }
        report.interactions_anonymized += sqlx::query(
            "UPDATE interactions SET customer_id = NULL, number_raw = NULL, number_e164 = NULL, note = NULL WHERE customer_id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        report.tasks_cancelled += sqlx::query(
            "UPDATE tasks SET state = CASE WHEN state IN ('pending', 'reserved', 'dialing', 'connected') THEN 'cancelled' ELSE state END, \
             outcome = CASE WHEN state IN ('pending', 'reserved', 'dialing', 'connected') THEN 'erased' ELSE outcome END, \
             customer_id = NULL, number_e164 = 'erased', note = NULL, idempotency_key = NULL, updated_at = $1 WHERE customer_id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let deleted = sqlx::query("DELETE FROM customers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StorageError::NotFound);
        }
        tx.commit().await?;
        Ok(report)
    }
}
