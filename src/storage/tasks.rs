//! Outbound tasks, their dial attempts, and campaigns.
//!
//! Claiming is a single statement: on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so two processes
//! never claim one task; on SQLite, whose writer is single, the same `UPDATE ... WHERE id IN
//! (SELECT ...)` is atomic. Every claim bumps the task's fence; every later transition names the
//! fence it holds and fails if the task moved on, so a slow worker can never act on a task someone
//! else has since claimed.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbKind, FromCols, Result, Storage, StorageError, now_ms};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Task {
    pub id: i64,
    pub kind: String,
    pub customer_id: Option<i64>,
    pub number_e164: String,
    pub campaign_id: Option<i64>,
    pub not_before: i64,
    pub deadline: Option<i64>,
    pub priority: i64,
    pub preferred_agent_id: Option<i64>,
    pub pool_after: Option<i64>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub state: String,
    pub outcome: Option<String>,
    pub note: Option<String>,
    pub reason: Option<String>,
    pub idempotency_key: Option<String>,
    pub merged_count: i64,
    pub lease_until: Option<i64>,
    pub fence: i64,
    pub assigned_agent_id: Option<i64>,
    pub satisfaction: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub done_at: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct NewTask {
    pub kind: String,
    pub customer_id: Option<i64>,
    pub number_e164: String,
    pub campaign_id: Option<i64>,
    pub not_before: i64,
    pub deadline: Option<i64>,
    pub priority: i64,
    pub preferred_agent_id: Option<i64>,
    pub pool_after: Option<i64>,
    pub max_attempts: i64,
    pub reason: Option<String>,
    pub idempotency_key: Option<String>,
    /// When the need arose (a callback keeps the place its caller had); defaults to now.
    pub created_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Attempt {
    pub id: i64,
    pub task_id: i64,
    pub fence: i64,
    pub agent_id: Option<i64>,
    pub number_e164: String,
    pub dialer: Option<String>,
    pub state: String,
    pub outcome: Option<String>,
    pub cause: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub script: Option<String>,
    pub filter: serde_json::Value,
    pub mode: String,
    pub max_concurrent: i64,
    pub calls_per_minute: i64,
    pub window_start: Option<String>,
    pub window_end: Option<String>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub state: String,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct CampaignDraft {
    pub name: String,
    pub kind: String,
    pub script: Option<String>,
    pub filter: serde_json::Value,
    pub mode: String,
    pub max_concurrent: i64,
    pub calls_per_minute: i64,
    pub window_start: Option<String>,
    pub window_end: Option<String>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
}

/// Filters for listing tasks.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub state: Option<String>,
    pub kind: Option<String>,
    pub agent_id: Option<i64>,
    pub campaign_id: Option<i64>,
    pub customer_id: Option<i64>,
}

const TASK_COLUMNS: &str = "id, kind, customer_id, number_e164, campaign_id, not_before, deadline, priority, \
     preferred_agent_id, pool_after, attempts, max_attempts, state, outcome, note, reason, idempotency_key, \
     merged_count, lease_until, fence, assigned_agent_id, satisfaction, created_at, updated_at, done_at";

impl FromCols for Task {
    fn from_cols<R: super::Cols>(r: &R) -> std::result::Result<Self, sqlx::Error> {
        Ok(Task {
            id: r.col("id")?,
            kind: r.col("kind")?,
            customer_id: r.col("customer_id")?,
            number_e164: r.col("number_e164")?,
            campaign_id: r.col("campaign_id")?,
            not_before: r.col("not_before")?,
            deadline: r.col("deadline")?,
            priority: r.col("priority")?,
            preferred_agent_id: r.col("preferred_agent_id")?,
            pool_after: r.col("pool_after")?,
            attempts: r.col("attempts")?,
            max_attempts: r.col("max_attempts")?,
            state: r.col("state")?,
            outcome: r.col("outcome")?,
            note: r.col("note")?,
            reason: r.col("reason")?,
            idempotency_key: r.col("idempotency_key")?,
            merged_count: r.col("merged_count")?,
            lease_until: r.col("lease_until")?,
            fence: r.col("fence")?,
            assigned_agent_id: r.col("assigned_agent_id")?,
            satisfaction: r.col("satisfaction")?,
            created_at: r.col("created_at")?,
            updated_at: r.col("updated_at")?,
            done_at: r.col("done_at")?,
        })
    }
}

fn attempt_from_row(r: &AnyRow) -> std::result::Result<Attempt, sqlx::Error> {
    Ok(Attempt {
        id: r.try_get("id")?,
        task_id: r.try_get("task_id")?,
        fence: r.try_get("fence")?,
        agent_id: r.try_get("agent_id")?,
        number_e164: r.try_get("number_e164")?,
        dialer: r.try_get("dialer")?,
        state: r.try_get("state")?,
        outcome: r.try_get("outcome")?,
        cause: r.try_get("cause")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
    })
}

fn campaign_from_row(r: &AnyRow) -> std::result::Result<Campaign, sqlx::Error> {
    let filter: String = r.try_get("filter")?;
    Ok(Campaign {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        script: r.try_get("script")?,
        filter: serde_json::from_str(&filter).unwrap_or(serde_json::Value::Null),
        mode: r.try_get("mode")?,
        max_concurrent: r.try_get("max_concurrent")?,
        calls_per_minute: r.try_get("calls_per_minute")?,
        window_start: r.try_get("window_start")?,
        window_end: r.try_get("window_end")?,
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
        state: r.try_get("state")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// States in which a task is still owed.
pub const OPEN_STATES: &str = "('pending', 'reserved', 'dialing', 'connected')";

/// Facts checked in the same transaction that starts an attempt.
#[derive(Debug, Clone)]
pub struct DialFacts {
    pub on_dnc: bool,
    pub consent: bool,
    pub attempts_today: i64,
    pub timezone: Option<String>,
    pub tier: Option<String>,
}

/// Which attempt to start, by whom, with what lease.
#[derive(Debug, Clone)]
pub struct AttemptStart<'a> {
    pub task_id: i64,
    /// The fence the caller's claim holds.
    pub fence: i64,
    pub agent_id: Option<i64>,
    /// The dialer's name, kept on the attempt row.
    pub dialer: &'a str,
    /// How long the attempt may go without an outcome before it is reconciled.
    pub lease_ms: i64,
}

/// Why an attempt was not started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRefusal {
    /// The task moved on (another worker, a cancel): leave it alone.
    Fenced,
    /// The policy said no; the task was updated accordingly (cancelled or rescheduled).
    Refused(String),
}

impl Storage {
    /// Creates a task unless one with the same idempotency key exists; returns it and whether it is new.
    pub async fn create_task(&self, t: &NewTask) -> Result<(Task, bool)> {
        create_task(&mut *self.pool.acquire().await?, t).await
    }

    pub async fn task(&self, id: i64) -> Result<Task> {
        let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StorageError::NotFound)?;
        Ok(Task::from_cols(&row)?)
    }

    pub async fn list_tasks(&self, f: &TaskFilter, limit: i64, offset: i64) -> Result<Vec<Task>> {
        let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if f.state.is_some() {
            sql.push_str(&format!(" AND state = {}", next()));
        }
        if f.kind.is_some() {
            sql.push_str(&format!(" AND kind = {}", next()));
        }
        if f.agent_id.is_some() {
            let p = next();
            sql.push_str(&format!(
                " AND (assigned_agent_id = {p} OR preferred_agent_id = {p})"
            ));
        }
        if f.campaign_id.is_some() {
            sql.push_str(&format!(" AND campaign_id = {}", next()));
        }
        if f.customer_id.is_some() {
            sql.push_str(&format!(" AND customer_id = {}", next()));
        }
        sql.push_str(&format!(
            " ORDER BY priority DESC, created_at ASC, id ASC LIMIT {} OFFSET {}",
            next(),
            next()
        ));
        let mut q = sqlx::query(&sql);
        if let Some(v) = &f.state {
            q = q.bind(v);
        }
        if let Some(v) = &f.kind {
            q = q.bind(v);
        }
        if let Some(v) = f.agent_id {
            q = q.bind(v);
        }
        if let Some(v) = f.campaign_id {
            q = q.bind(v);
        }
        if let Some(v) = f.customer_id {
            q = q.bind(v);
        }
        let rows = q.bind(limit).bind(offset).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(Task::from_cols)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Open tasks of these customers (for the pop).
    pub async fn open_tasks_of(&self, customer_ids: &[i64]) -> Result<Vec<Task>> {
        if customer_ids.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, params) = super::id_params(1, customer_ids);
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE customer_id IN ({ids}) AND state IN {OPEN_STATES} ORDER BY not_before"
        );
        let args: Vec<super::Arg> = super::int_args(&params).collect();
        self.select(&sql, &args).await
    }

    /// Claims up to `limit` due pending tasks for `lease_ms`, best first; each claim bumps the fence.
    pub async fn claim_due(&self, now: i64, limit: i64, lease_ms: i64) -> Result<Vec<Task>> {
        let lock = if self.kind == DbKind::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let rows = sqlx::query(&format!(
            "UPDATE tasks SET state = 'reserved', lease_until = $1, fence = fence + 1, updated_at = $2 \
             WHERE id IN (SELECT id FROM tasks WHERE state = 'pending' AND not_before <= $2 \
             ORDER BY priority DESC, created_at ASC, id ASC LIMIT $3{lock}) AND state = 'pending' \
             RETURNING {TASK_COLUMNS}"
        ))
        .bind(now + lease_ms)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut tasks: Vec<Task> = rows
            .iter()
            .map(Task::from_cols)
            .collect::<std::result::Result<_, _>>()?;
        tasks.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(tasks)
    }

    /// Puts a reserved task back in the queue (not offered now), keeping its fence.
    pub async fn release_task(&self, id: i64, fence: i64, not_before: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET state = 'pending', lease_until = NULL, assigned_agent_id = NULL, not_before = $1, updated_at = $2 \
             WHERE id = $3 AND fence = $4 AND state = 'reserved'",
        )
        .bind(not_before)
        .bind(now_ms())
        .bind(id)
        .bind(fence)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a reserved task as offered to an agent until `lease_until`.
    pub async fn assign_task(
        &self,
        id: i64,
        fence: i64,
        agent_id: i64,
        lease_until: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET assigned_agent_id = $1, lease_until = $2, updated_at = $3 WHERE id = $4 AND fence = $5 AND state = 'reserved'",
        )
        .bind(agent_id)
        .bind(lease_until)
        .bind(now_ms())
        .bind(id)
        .bind(fence)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a task for good (`done`, `failed`, `cancelled`, `expired`) if it still holds `fence`
    /// (any fence when `None`) and is open.
    pub async fn close_task(
        &self,
        id: i64,
        fence: Option<i64>,
        state: &str,
        outcome: &str,
        note: Option<&str>,
        satisfaction: Option<i64>,
    ) -> Result<bool> {
        let now = now_ms();
        let sql = format!(
            "UPDATE tasks SET state = $1, outcome = $2, note = COALESCE($3, note), satisfaction = COALESCE($4, satisfaction), \
             lease_until = NULL, done_at = $5, updated_at = $5, \
             idempotency_key = CASE WHEN kind IN ('missed_call_callback', 'requested_callback') THEN NULL ELSE idempotency_key END \
             WHERE id = $6 AND state IN {OPEN_STATES}{}",
            if fence.is_some() {
                " AND fence = $7"
            } else {
                ""
            }
        );
        let mut q = sqlx::query(&sql)
            .bind(state)
            .bind(outcome)
            .bind(note)
            .bind(satisfaction)
            .bind(now)
            .bind(id);
        if let Some(f) = fence {
            q = q.bind(f);
        }
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Back to the queue after an attempt that calls for a retry, at `not_before`.
    pub async fn retry_task(
        &self,
        id: i64,
        fence: i64,
        not_before: i64,
        outcome: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET state = 'pending', outcome = $1, not_before = $2, lease_until = NULL, assigned_agent_id = NULL, \
             updated_at = $3 WHERE id = $4 AND fence = $5 AND state IN ('reserved', 'dialing', 'connected')",
        )
        .bind(outcome)
        .bind(not_before)
        .bind(now_ms())
        .bind(id)
        .bind(fence)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The facts the dial policy needs, read inside the attempt's transaction.
    async fn dial_facts(
        &self,
        tx: &mut super::WriteTx,
        task: &Task,
        day_start: i64,
    ) -> Result<DialFacts> {
        let dnc = sqlx::query(
            "SELECT COUNT(*) AS n FROM dnc WHERE (e164 = $1 OR number_hash = $2) AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(&task.number_e164)
        .bind(self.number_hash(&task.number_e164).await?)
        .bind(now_ms())
        .fetch_one(&mut **tx)
        .await?
        .try_get::<i64, _>("n")?;
        let (consent, timezone, tier) = match task.customer_id {
            Some(cid) => match sqlx::query(
                "SELECT consent_calls, timezone, tier FROM customers WHERE id = $1",
            )
            .bind(cid)
            .fetch_optional(&mut **tx)
            .await?
            {
                Some(r) => (
                    r.try_get::<i64, _>("consent_calls")? != 0,
                    r.try_get("timezone")?,
                    Some(r.try_get("tier")?),
                ),
                None => (false, None, None),
            },
            None => (true, None, None),
        };
        let attempts_today = sqlx::query(
            "SELECT COUNT(*) AS n FROM task_attempts WHERE number_e164 = $1 AND started_at >= $2",
        )
        .bind(&task.number_e164)
        .bind(day_start)
        .fetch_one(&mut **tx)
        .await?
        .try_get::<i64, _>("n")?;
        Ok(DialFacts {
            on_dnc: dnc > 0,
            consent,
            attempts_today,
            timezone,
            tier,
        })
    }

    /// In one transaction: re-reads the task (it must still hold `fence` and be reserved), asks
    /// `decide` whether it may be dialed now given the facts (DNC, consent, attempts today), and
    /// if so marks it dialing and writes the attempt row — all before anyone asks the PBX to dial.
    pub async fn start_attempt(
        &self,
        start: &AttemptStart<'_>,
        day_start_for: impl Fn(Option<&str>) -> i64,
        decide: impl Fn(&Task, &DialFacts) -> std::result::Result<(), String>,
    ) -> Result<std::result::Result<(Task, Attempt), StartRefusal>> {
        let AttemptStart {
            task_id,
            fence,
            agent_id,
            dialer,
            lease_ms,
        } = *start;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
            .bind(task_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(task) = row.as_ref().map(Task::from_cols).transpose()? else {
            return Ok(Err(StartRefusal::Fenced));
        };
        if task.fence != fence || task.state != "reserved" {
            return Ok(Err(StartRefusal::Fenced));
        }
        let tz = match task.customer_id {
            Some(cid) => sqlx::query("SELECT timezone FROM customers WHERE id = $1")
                .bind(cid)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<Option<String>, _>("timezone"))
                .transpose()?
                .flatten(),
            None => None,
        };
        let facts = self
            .dial_facts(&mut tx, &task, day_start_for(tz.as_deref()))
            .await?;
        if let Err(reason) = decide(&task, &facts) {
            tx.rollback().await?;
            return Ok(Err(StartRefusal::Refused(reason)));
        }
        let now = now_ms();
        sqlx::query(
            "UPDATE tasks SET state = 'dialing', attempts = attempts + 1, assigned_agent_id = COALESCE($1, assigned_agent_id), \
             lease_until = $2, updated_at = $3 WHERE id = $4 AND fence = $5",
        )
        .bind(agent_id)
        .bind(now + lease_ms)
        .bind(now)
        .bind(task_id)
        .bind(fence)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "INSERT INTO task_attempts (task_id, fence, agent_id, number_e164, dialer, state, started_at) \
             VALUES ($1, $2, $3, $4, $5, 'dialing', $6) RETURNING id, task_id, fence, agent_id, number_e164, dialer, state, outcome, cause, started_at, ended_at",
        )
        .bind(task_id)
        .bind(fence)
        .bind(agent_id)
        .bind(&task.number_e164)
        .bind(dialer)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let attempt = attempt_from_row(&row)?;
        tx.commit().await?;
        Ok(Ok((self.task(task_id).await?, attempt)))
    }

    pub async fn finish_attempt(
        &self,
        attempt_id: i64,
        state: &str,
        outcome: &str,
        cause: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE task_attempts SET state = $1, outcome = $2, cause = $3, ended_at = $4 WHERE id = $5")
            .bind(state)
            .bind(outcome)
            .bind(cause)
            .bind(now_ms())
            .bind(attempt_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A dialing task whose customer answered: it is connected to the agent now.
    pub async fn mark_connected(&self, task_id: i64, fence: i64, attempt_id: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE tasks SET state = 'connected', lease_until = $1, updated_at = $2 WHERE id = $3 AND fence = $4 AND state = 'dialing'",
        )
        .bind(now_ms() + 4 * 3_600_000)
        .bind(now_ms())
        .bind(task_id)
        .bind(fence)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE task_attempts SET state = 'connected', outcome = 'answered' WHERE id = $1",
        )
        .bind(attempt_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn attempts_of(&self, task_id: i64) -> Result<Vec<Attempt>> {
        let rows = sqlx::query("SELECT * FROM task_attempts WHERE task_id = $1 ORDER BY id")
            .bind(task_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(attempt_from_row)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Reserved tasks whose offer lapsed go back to the queue; dialing/connected ones whose lease
    /// lapsed (the process that dialed them died) are held for `guard_ms` with outcome `unknown`,
    /// never redialed at once. Returns (requeued, held).
    pub async fn reclaim_expired_leases(&self, now: i64, guard_ms: i64) -> Result<(u64, u64)> {
        let requeued = sqlx::query(
            "UPDATE tasks SET state = 'pending', lease_until = NULL, assigned_agent_id = NULL, updated_at = $1 \
             WHERE state = 'reserved' AND lease_until < $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE task_attempts SET state = 'unknown', outcome = 'unknown', ended_at = $1 \
             WHERE state IN ('dialing', 'connected') AND task_id IN \
             (SELECT id FROM tasks WHERE state IN ('dialing', 'connected') AND lease_until < $1)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let held = sqlx::query(
            "UPDATE tasks SET state = 'pending', outcome = 'unknown', not_before = $2, lease_until = NULL, \
             assigned_agent_id = NULL, updated_at = $1 WHERE state IN ('dialing', 'connected') AND lease_until < $1",
        )
        .bind(now)
        .bind(now + guard_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((requeued, held))
    }

    /// Pending tasks past their deadline become `expired`.
    pub async fn expire_overdue(&self, now: i64) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE tasks SET state = 'expired', done_at = $1, updated_at = $1, \
             idempotency_key = CASE WHEN kind IN ('missed_call_callback', 'requested_callback') THEN NULL ELSE idempotency_key END \
             WHERE state = 'pending' AND deadline IS NOT NULL AND deadline < $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Cancels every open task of a number or customer (opt-out, erasure).
    pub async fn cancel_tasks_for_number(&self, e164: &str, outcome: &str) -> Result<u64> {
        let now = now_ms();
        Ok(sqlx::query(
            "UPDATE tasks SET state = 'cancelled', outcome = $1, done_at = $2, updated_at = $2, lease_until = NULL, idempotency_key = NULL \
             WHERE number_e164 = $3 AND state IN ('pending', 'reserved')",
        )
        .bind(outcome)
        .bind(now)
        .bind(e164)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Moves a pending task to another preferred agent (`None`: the pool) and/or time; `pool_after`
    /// (when given) says from when any agent may take it.
    pub async fn reassign_task(
        &self,
        id: i64,
        agent_id: Option<i64>,
        not_before: Option<i64>,
        pool_after: Option<Option<i64>>,
    ) -> Result<Task> {
        let set_pool = if pool_after.is_some() {
            ", pool_after = $5"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE tasks SET preferred_agent_id = $1, not_before = COALESCE($2, not_before), updated_at = $3{set_pool} \
             WHERE id = $4 AND state = 'pending'"
        );
        let mut query = sqlx::query(&sql)
            .bind(agent_id)
            .bind(not_before)
            .bind(now_ms())
            .bind(id);
        if let Some(pool_after) = pool_after {
            query = query.bind(pool_after);
        }
        let done = query.execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            self.task(id).await?;
            return Err(StorageError::Conflict(
                "only a pending task can be reassigned".into(),
            ));
        }
        self.task(id).await
    }

    /// Tasks by state, for metrics and the wallboard.
    pub async fn task_counts(&self) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query("SELECT kind, state, COUNT(*) AS n FROM tasks GROUP BY kind, state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    /// Attempts in flight for a campaign and started in the last minute (pacing).
    pub async fn campaign_pace(&self, campaign_id: i64, since: i64) -> Result<(i64, i64)> {
        let in_flight = sqlx::query("SELECT COUNT(*) AS n FROM tasks WHERE campaign_id = $1 AND state IN ('reserved', 'dialing', 'connected')")
            .bind(campaign_id)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let recent = sqlx::query(
            "SELECT COUNT(*) AS n FROM task_attempts a JOIN tasks t ON t.id = a.task_id WHERE t.campaign_id = $1 AND a.started_at >= $2",
        )
        .bind(campaign_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok((in_flight, recent))
    }

    pub async fn create_campaign(
        &self,
        d: &CampaignDraft,
        created_by: Option<i64>,
    ) -> Result<Campaign> {
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO campaigns (name, kind, script, filter, mode, max_concurrent, calls_per_minute, window_start, window_end, \
             starts_at, ends_at, state, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'draft', $12, $13, $13) RETURNING *",
        )
        .bind(&d.name)
        .bind(&d.kind)
        .bind(&d.script)
        .bind(d.filter.to_string())
        .bind(&d.mode)
        .bind(d.max_concurrent)
        .bind(d.calls_per_minute)
        .bind(&d.window_start)
        .bind(&d.window_end)
        .bind(d.starts_at)
        .bind(d.ends_at)
        .bind(created_by)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(campaign_from_row(&row)?)
    }

    pub async fn update_campaign(&self, id: i64, d: &CampaignDraft) -> Result<Campaign> {
        let row = sqlx::query(
            "UPDATE campaigns SET name = $1, kind = $2, script = $3, filter = $4, mode = $5, max_concurrent = $6, \
             calls_per_minute = $7, window_start = $8, window_end = $9, starts_at = $10, ends_at = $11, updated_at = $12 \
             WHERE id = $13 RETURNING *",
        )
        .bind(&d.name)
        .bind(&d.kind)
        .bind(&d.script)
        .bind(d.filter.to_string())
        .bind(&d.mode)
        .bind(d.max_concurrent)
        .bind(d.calls_per_minute)
        .bind(&d.window_start)
        .bind(&d.window_end)
        .bind(d.starts_at)
        .bind(d.ends_at)
        .bind(now_ms())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StorageError::NotFound)?;
        Ok(campaign_from_row(&row)?)
    }

    pub async fn campaign(&self, id: i64) -> Result<Campaign> {
        let row = sqlx::query("SELECT * FROM campaigns WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StorageError::NotFound)?;
        Ok(campaign_from_row(&row)?)
    }

    pub async fn list_campaigns(&self) -> Result<Vec<Campaign>> {
        let rows = sqlx::query("SELECT * FROM campaigns ORDER BY id DESC")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(campaign_from_row)
            .collect::<std::result::Result<_, _>>()?)
    }

    pub async fn set_campaign_state(&self, id: i64, state: &str) -> Result<Campaign> {
        let row = sqlx::query(
            "UPDATE campaigns SET state = $1, updated_at = $2 WHERE id = $3 RETURNING *",
        )
        .bind(state)
        .bind(now_ms())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StorageError::NotFound)?;
        Ok(campaign_from_row(&row)?)
    }

    /// Campaign progress: task counts by state and by outcome.
    pub async fn campaign_progress(
        &self,
        id: i64,
    ) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>)> {
        let by_state = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM tasks WHERE campaign_id = $1 GROUP BY state",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
        .collect::<Result<Vec<_>>>()?;
        let by_outcome = sqlx::query(
            "SELECT outcome, COUNT(*) AS n FROM tasks WHERE campaign_id = $1 AND outcome IS NOT NULL GROUP BY outcome",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("outcome")?, r.try_get("n")?)))
        .collect::<Result<Vec<_>>>()?;
        Ok((by_state, by_outcome))
    }

    /// Cancels a stopped campaign's tasks that were not started.
    pub async fn cancel_campaign_tasks(&self, id: i64) -> Result<u64> {
        let now = now_ms();
        Ok(sqlx::query(
            "UPDATE tasks SET state = 'cancelled', outcome = 'campaign_stopped', done_at = $1, updated_at = $1, lease_until = NULL \
             WHERE campaign_id = $2 AND state IN ('pending', 'reserved')",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Customers a campaign targets: by tiers, tags, service due within days, or an explicit list.
    pub async fn campaign_targets(
        &self,
        tiers: &[String],
        tags: &[String],
        service_due_before: Option<&str>,
        customer_ids: &[i64],
        limit: i64,
    ) -> Result<Vec<(i64, String, Option<String>)>> {
        let mut sql = String::from(
            "SELECT c.id, c.tier, c.account_manager, \
             (SELECT p.e164 FROM customer_phones p WHERE p.customer_id = c.id AND p.e164 IS NOT NULL \
              ORDER BY p.is_primary DESC, p.id LIMIT 1) AS number \
             FROM customers c WHERE c.provisional = 0",
        );
        let mut binds: Vec<String> = Vec::new();
        let param = |v: String, binds: &mut Vec<String>| {
            binds.push(v);
            format!("${}", binds.len())
        };
        if !tiers.is_empty() {
            let ps: Vec<String> = tiers.iter().map(|t| param(t.clone(), &mut binds)).collect();
            sql.push_str(&format!(" AND c.tier IN ({})", ps.join(", ")));
        }
        for tag in tags {
            let p = param(tag.clone(), &mut binds);
            sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = {p})"));
        }
        if let Some(due) = service_due_before {
            let p = param(due.to_string(), &mut binds);
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM assets a WHERE a.customer_id = c.id AND a.next_service_due IS NOT NULL AND a.next_service_due <= {p})"
            ));
        }
        if !customer_ids.is_empty() {
            sql.push_str(&format!(
                " AND c.id IN ({})",
                customer_ids
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        sql.push_str(&format!(" ORDER BY c.id LIMIT {limit}"));
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut out = Vec::new();
        for r in rows {
            let number: Option<String> = r.try_get("number")?;
            if let Some(n) = number {
                out.push((r.try_get("id")?, n, r.try_get("account_manager")?));
            }
        }
        Ok(out)
    }

    /// Assets due for service on or before `due_before` (for maintenance reminders).
    pub async fn assets_due(&self, due_before: &str) -> Result<Vec<(i64, i64, String)>> {
        let rows = sqlx::query(
            "SELECT id, customer_id, next_service_due FROM assets WHERE next_service_due IS NOT NULL AND next_service_due <= $1",
        )
        .bind(due_before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("customer_id")?,
                    r.try_get("next_service_due")?,
                ))
            })
            .collect()
    }

    /// Customers (id, tier, birthday, account manager, consent) for the periodic generators.
    pub async fn customers_for_care(
        &self,
        tiers: &[String],
    ) -> Result<Vec<(i64, String, Option<String>, Option<String>, Option<String>)>> {
        if tiers.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = (1..=tiers.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, tier, birthday, account_manager, timezone FROM customers WHERE provisional = 0 AND consent_calls = 1 AND tier IN ({})",
            list.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for t in tiers {
            q = q.bind(t);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("tier")?,
                    r.try_get("birthday")?,
                    r.try_get("account_manager")?,
                    r.try_get("timezone")?,
                ))
            })
            .collect()
    }

    /// The primary valid number of a customer.
    pub async fn primary_number(&self, customer_id: i64) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT e164 FROM customer_phones WHERE customer_id = $1 AND e164 IS NOT NULL ORDER BY is_primary DESC, id LIMIT 1",
        )
        .bind(customer_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("e164")).transpose()?)
    }
}

/// Creates a task unless one with the same idempotency key exists; returns it and whether it is new.
pub(crate) async fn create_task(
    conn: &mut sqlx::AnyConnection,
    t: &NewTask,
) -> Result<(Task, bool)> {
    let now = now_ms();
    let inserted = sqlx::query(&format!(
        "INSERT INTO tasks (kind, customer_id, number_e164, campaign_id, not_before, deadline, priority, \
         preferred_agent_id, pool_after, max_attempts, reason, idempotency_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING {TASK_COLUMNS}"
    ))
    .bind(&t.kind)
    .bind(t.customer_id)
    .bind(&t.number_e164)
    .bind(t.campaign_id)
    .bind(t.not_before)
    .bind(t.deadline)
    .bind(t.priority)
    .bind(t.preferred_agent_id)
    .bind(t.pool_after)
    .bind(if t.max_attempts > 0 { t.max_attempts } else { 5 })
    .bind(&t.reason)
    .bind(&t.idempotency_key)
    .bind(t.created_at.unwrap_or(now))
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = inserted {
        return Ok((Task::from_cols(&row)?, true));
    }
    let key = t
        .idempotency_key
        .as_deref()
        .ok_or_else(|| StorageError::Other("task insert returned nothing".into()))?;
    let row = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE idempotency_key = $1"
    ))
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    Ok((Task::from_cols(&row)?, false))
}

/// Counts one more occurrence folded into an existing task (a further missed call).
pub(crate) async fn bump_merged<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: i64,
) -> Result<()> {
    sqlx::query("UPDATE tasks SET merged_count = merged_count + 1, updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Cancels the open tasks of one kind of a customer; returns how many.
pub(crate) async fn cancel_open_tasks<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    customer_id: i64,
    kind: &str,
    outcome: &str,
) -> Result<u64> {
    let now = now_ms();
    Ok(sqlx::query(
        "UPDATE tasks SET state = 'cancelled', outcome = $1, done_at = $2, updated_at = $2, lease_until = NULL, \
         idempotency_key = CASE WHEN kind IN ('missed_call_callback', 'requested_callback') THEN NULL ELSE idempotency_key END \
         WHERE customer_id = $3 AND kind = $4 AND state IN ('pending', 'reserved')",
    )
    .bind(outcome)
    .bind(now)
    .bind(customer_id)
    .bind(kind)
    .execute(db)
    .await?
    .rows_affected())
}
