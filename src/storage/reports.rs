//! Figures for supervisors: the reports' aggregates and the wallboard's counts.
//!
//! Times are unix milliseconds, so calendar grouping (which depends on the report's time zone)
//! is not done in SQL: statements group by whole hours counted from an origin the caller gives
//! (the local midnight that opens the report's range), `(t - origin) / 3600000`, which is plain
//! integer arithmetic on both SQLite and PostgreSQL; `api::reports` turns each hour index into a
//! local date and hour. Percentiles are computed from grouped counts (answer waits by whole
//! second) or from one row per callback task, never from one row per call.

use sqlx::Row;

use super::tasks::OPEN_STATES as OPEN_TASK_STATES;
use super::{Result, Storage, id_list};

/// Calls recorded by the call service (not an outbound task's result, which is also an
/// interaction of kind `call` but has a `task-…` call id).
const RECORDED_CALLS: &str = "kind = 'call' AND call_id IS NOT NULL AND call_id NOT LIKE 'task-%'";

/// How a recorded call ended, in the report's four categories.
const CALL_CATEGORY: &str = "CASE WHEN outcome IN ('answered', 'answered_elsewhere') THEN 'answered' \
     WHEN outcome = 'missed' THEN 'missed' WHEN outcome = 'abandoned' THEN 'abandoned' ELSE 'other' END";

/// Tasks that remind a customer of a service: the generator's own, and maintenance campaigns'.
const REMINDER_TASK: &str = "(t.kind = 'maintenance_reminder' OR t.campaign_id IN \
     (SELECT id FROM campaigns WHERE kind = 'maintenance_reminder'))";

/// Counted calls in one hour of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCount {
    /// Whole hours since the report's origin.
    pub hour_index: i64,
    /// `inbound` or `outbound` for calls; `attempt` for ringside's own dial attempts.
    pub direction: String,
    /// `answered`, `missed`, `abandoned` or `other`.
    pub category: String,
    pub count: i64,
}

/// Answered inbound calls of one hour that waited this many whole seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitCount {
    pub hour_index: i64,
    pub wait_secs: i64,
    pub count: i64,
}

/// One missed-call callback task and when it was first dialed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackFact {
    /// When the (first) missed call rang: a callback keeps its caller's place.
    pub missed_at: i64,
    pub state: String,
    pub outcome: Option<String>,
    /// Further misses folded into the task.
    pub merged_count: i64,
    pub first_attempt_at: Option<i64>,
}

/// A campaign and its figures to date.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CampaignFigures {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub mode: String,
    pub state: String,
    pub created_at: i64,
    /// Task state → count.
    pub tasks_by_state: Vec<(String, i64)>,
    /// Final outcome of closed tasks → count.
    pub tasks_by_outcome: Vec<(String, i64)>,
    /// Attempt outcome (`None`: still in progress) → count.
    pub attempts_by_outcome: Vec<(Option<String>, i64)>,
}

/// Scores given in a range, counted by a key (a tier or an agent) and score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreCount {
    pub key: Option<String>,
    pub agent_id: Option<i64>,
    pub score: i64,
    pub count: i64,
}

/// A reminder task closed in a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderClosed {
    pub done_at: i64,
    pub state: String,
}

/// A service visit booked (an interaction with the booking disposition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub at: i64,
    /// Whether the customer had been reached by a reminder shortly before.
    pub after_reminder: bool,
}

/// The wallboard's figures that live in the database.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FloorFigures {
    /// Missed-call callbacks not yet dialed once.
    pub missed_waiting: i64,
    pub oldest_missed_at: Option<i64>,
    /// Open callbacks (missed and requested) whose time has come.
    pub callbacks_due: i64,
    /// …of which due since before the overdue limit.
    pub callbacks_overdue: i64,
    pub callbacks_open: i64,
    /// Open reminders due by the end of the local day.
    pub reminders_due_today: i64,
    /// Reminders that reached the customer since the local day began.
    pub reminders_done_today: i64,
    /// Agents in an outbound call (dialing or connected).
    pub agents_on_outbound: Vec<i64>,
    /// Running and paused campaigns with their task counts by state.
    pub campaigns: Vec<CampaignFigures>,
}

impl Storage {
    /// Recorded calls whose ringing began in `[start, end)`, counted per hour since `origin`,
    /// direction and category.
    pub async fn call_counts(&self, origin: i64, start: i64, end: i64) -> Result<Vec<HourCount>> {
        let rows = sqlx::query(&format!(
            "SELECT (started_at - $1) / 3600000 AS hour_index, COALESCE(direction, 'inbound') AS direction, \
             {CALL_CATEGORY} AS category, COUNT(*) AS n FROM interactions \
             WHERE {RECORDED_CALLS} AND started_at >= $2 AND started_at < $3 \
             GROUP BY 1, 2, 3"
        ))
        .bind(origin)
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HourCount {
                    hour_index: r.try_get("hour_index")?,
                    direction: r.try_get("direction")?,
                    category: r.try_get("category")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// ringside's own dial attempts started in `[start, end)`, per hour: `answered` or `other`.
    pub async fn attempt_counts(
        &self,
        origin: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<HourCount>> {
        let category = "CASE WHEN outcome = 'answered' OR state = 'connected' THEN 'answered' ELSE 'other' END";
        let rows = sqlx::query(&format!(
            "SELECT (started_at - $1) / 3600000 AS hour_index, {category} AS category, COUNT(*) AS n \
             FROM task_attempts WHERE started_at >= $2 AND started_at < $3 \
             GROUP BY 1, 2"
        ))
        .bind(origin)
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HourCount {
                    hour_index: r.try_get("hour_index")?,
                    direction: "attempt".into(),
                    category: r.try_get("category")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// How long answered inbound calls rang before someone picked up, per hour, in whole seconds.
    pub async fn answer_waits(&self, origin: i64, start: i64, end: i64) -> Result<Vec<WaitCount>> {
        let rows = sqlx::query(&format!(
            "SELECT (started_at - $1) / 3600000 AS hour_index, (answered_at - started_at) / 1000 AS wait_secs, \
             COUNT(*) AS n FROM interactions \
             WHERE {RECORDED_CALLS} AND direction = 'inbound' AND outcome IN ('answered', 'answered_elsewhere') \
             AND answered_at IS NOT NULL AND answered_at >= started_at AND started_at >= $2 AND started_at < $3 \
             GROUP BY 1, 2"
        ))
        .bind(origin)
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WaitCount {
                    hour_index: r.try_get("hour_index")?,
                    wait_secs: r.try_get("wait_secs")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// Missed-call callback tasks whose missed call rang in `[start, end)`, with their first dial.
    pub async fn missed_call_callbacks(&self, start: i64, end: i64) -> Result<Vec<CallbackFact>> {
        let rows = sqlx::query(
            "SELECT t.created_at, t.state, t.outcome, t.merged_count, \
             (SELECT MIN(a.started_at) FROM task_attempts a WHERE a.task_id = t.id) AS first_attempt_at \
             FROM tasks t WHERE t.kind = 'missed_call_callback' AND t.created_at >= $1 AND t.created_at < $2 \
             ORDER BY t.created_at",
        )
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CallbackFact {
                    missed_at: r.try_get("created_at")?,
                    state: r.try_get("state")?,
                    outcome: r.try_get("outcome")?,
                    merged_count: r.try_get("merged_count")?,
                    first_attempt_at: r.try_get("first_attempt_at")?,
                })
            })
            .collect()
    }

    /// Campaigns created in `[start, end)` (or the one asked for), with their figures to date.
    pub async fn campaign_figures(
        &self,
        start: i64,
        end: i64,
        campaign_id: Option<i64>,
    ) -> Result<Vec<CampaignFigures>> {
        let rows =
            match campaign_id {
                Some(id) => sqlx::query(
                    "SELECT id, name, kind, mode, state, created_at FROM campaigns WHERE id = $1",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?,
                None => {
                    sqlx::query(
                        "SELECT id, name, kind, mode, state, created_at FROM campaigns \
                 WHERE created_at >= $1 AND created_at < $2 ORDER BY id",
                    )
                    .bind(start)
                    .bind(end)
                    .fetch_all(&self.pool)
                    .await?
                }
            };
        let mut campaigns = rows
            .iter()
            .map(|r| {
                Ok(CampaignFigures {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    mode: r.try_get("mode")?,
                    state: r.try_get("state")?,
                    created_at: r.try_get("created_at")?,
                    ..Default::default()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.fill_campaign_counts(&mut campaigns, true).await?;
        Ok(campaigns)
    }

    /// Adds task counts by state (and, with `detail`, task and attempt outcomes) to campaigns.
    async fn fill_campaign_counts(
        &self,
        campaigns: &mut [CampaignFigures],
        detail: bool,
    ) -> Result<()> {
        if campaigns.is_empty() {
            return Ok(());
        }
        let ids = id_list(&campaigns.iter().map(|c| c.id).collect::<Vec<_>>());
        let by_state = sqlx::query(&format!(
            "SELECT campaign_id, state AS k, COUNT(*) AS n FROM tasks WHERE campaign_id IN ({ids}) \
             GROUP BY campaign_id, state"
        ))
        .fetch_all(&self.pool)
        .await?;
        for r in &by_state {
            let id: i64 = r.try_get("campaign_id")?;
            if let Some(c) = campaigns.iter_mut().find(|c| c.id == id) {
                c.tasks_by_state.push((r.try_get("k")?, r.try_get("n")?));
            }
        }
        if !detail {
            return Ok(());
        }
        let by_outcome = sqlx::query(&format!(
            "SELECT campaign_id, outcome AS k, COUNT(*) AS n FROM tasks WHERE campaign_id IN ({ids}) \
             AND state NOT IN {OPEN_TASK_STATES} AND outcome IS NOT NULL GROUP BY campaign_id, outcome"
        ))
        .fetch_all(&self.pool)
        .await?;
        for r in &by_outcome {
            let id: i64 = r.try_get("campaign_id")?;
            if let Some(c) = campaigns.iter_mut().find(|c| c.id == id) {
                c.tasks_by_outcome.push((r.try_get("k")?, r.try_get("n")?));
            }
        }
        let attempts = sqlx::query(&format!(
            "SELECT t.campaign_id, a.outcome AS k, COUNT(*) AS n FROM task_attempts a \
             JOIN tasks t ON t.id = a.task_id WHERE t.campaign_id IN ({ids}) GROUP BY t.campaign_id, a.outcome"
        ))
        .fetch_all(&self.pool)
        .await?;
        for r in &attempts {
            let id: i64 = r.try_get("campaign_id")?;
            if let Some(c) = campaigns.iter_mut().find(|c| c.id == id) {
                c.attempts_by_outcome
                    .push((r.try_get("k")?, r.try_get("n")?));
            }
        }
        Ok(())
    }

    /// Satisfaction scores (1–5) recorded on interactions in `[start, end)`, by customer tier.
    pub async fn scores_by_tier(&self, start: i64, end: i64) -> Result<Vec<ScoreCount>> {
        let rows = sqlx::query(
            "SELECT c.tier AS k, i.satisfaction AS score, COUNT(*) AS n FROM interactions i \
             LEFT JOIN customers c ON c.id = i.customer_id \
             WHERE i.satisfaction IS NOT NULL AND i.started_at >= $1 AND i.started_at < $2 \
             GROUP BY c.tier, i.satisfaction",
        )
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScoreCount {
                    key: r.try_get("k")?,
                    agent_id: None,
                    score: r.try_get("score")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// Satisfaction scores recorded on interactions in `[start, end)`, by the agent on the call.
    pub async fn scores_by_agent(&self, start: i64, end: i64) -> Result<Vec<ScoreCount>> {
        let rows = sqlx::query(
            "SELECT i.agent_id, a.name AS k, i.satisfaction AS score, COUNT(*) AS n FROM interactions i \
             LEFT JOIN agents a ON a.id = i.agent_id \
             WHERE i.satisfaction IS NOT NULL AND i.started_at >= $1 AND i.started_at < $2 \
             GROUP BY i.agent_id, a.name, i.satisfaction",
        )
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScoreCount {
                    key: r.try_get("k")?,
                    agent_id: r.try_get("agent_id")?,
                    score: r.try_get("score")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// Reminder tasks closed (`done`: the customer was reached; `failed`, `expired`) in `[start, end)`.
    pub async fn reminders_closed(&self, start: i64, end: i64) -> Result<Vec<ReminderClosed>> {
        let rows = sqlx::query(&format!(
            "SELECT t.done_at, t.state FROM tasks t WHERE {REMINDER_TASK} \
             AND t.state IN ('done', 'failed', 'expired') AND t.done_at >= $1 AND t.done_at < $2"
        ))
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReminderClosed {
                    done_at: r.try_get("done_at")?,
                    state: r.try_get("state")?,
                })
            })
            .collect()
    }

    /// Interactions in `[start, end)` with the booking disposition `code` (also as an outbound
    /// result, `kind:code`), each marked when the customer was reached by a reminder within
    /// `window_ms` before it (or within the hour after, for a booking noted during the call).
    pub async fn bookings(
        &self,
        start: i64,
        end: i64,
        code: &str,
        window_ms: i64,
    ) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "SELECT i.started_at, (SELECT COUNT(*) FROM tasks t WHERE t.customer_id = i.customer_id \
             AND t.state = 'done' AND {REMINDER_TASK} AND t.done_at >= i.started_at - $4 \
             AND t.done_at <= i.started_at + 3600000) AS reminders \
             FROM interactions i WHERE (i.disposition = $1 OR i.disposition LIKE $2 ESCAPE '\\') \
             AND i.started_at >= $3 AND i.started_at < $5"
        ))
        .bind(code)
        .bind(format!("%:{}", like_escaped(code)))
        .bind(start)
        .bind(window_ms)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Booking {
                    at: r.try_get("started_at")?,
                    after_reminder: r.try_get::<i64, _>("reminders")? > 0,
                })
            })
            .collect()
    }

    /// The wallboard's database figures. `now`; callbacks due before `overdue_before` are overdue;
    /// `day_start`/`day_end` bound the local day.
    pub async fn floor_figures(
        &self,
        now: i64,
        overdue_before: i64,
        day_start: i64,
        day_end: i64,
    ) -> Result<FloorFigures> {
        let missed = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM tasks \
             WHERE kind = 'missed_call_callback' AND state IN ('pending', 'reserved') AND attempts = 0",
        )
        .fetch_one(&self.pool)
        .await?;
        let callbacks = sqlx::query(
            "SELECT COUNT(*) AS open, \
             COALESCE(SUM(CASE WHEN not_before <= $1 THEN 1 ELSE 0 END), 0) AS due, \
             COALESCE(SUM(CASE WHEN not_before <= $2 THEN 1 ELSE 0 END), 0) AS overdue \
             FROM tasks WHERE kind IN ('missed_call_callback', 'requested_callback') \
             AND state IN ('pending', 'reserved')",
        )
        .bind(now)
        .bind(overdue_before)
        .fetch_one(&self.pool)
        .await?;
        let reminders_due: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM tasks t WHERE {REMINDER_TASK} AND t.state IN {OPEN_TASK_STATES} \
             AND t.not_before < $1"
        ))
        .bind(day_end)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let reminders_done: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM tasks t WHERE {REMINDER_TASK} AND t.state = 'done' AND t.done_at >= $1"
        ))
        .bind(day_start)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let on_outbound = sqlx::query(
            "SELECT DISTINCT assigned_agent_id AS agent FROM tasks \
             WHERE state IN ('dialing', 'connected') AND assigned_agent_id IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get("agent"))
        .collect::<std::result::Result<Vec<i64>, _>>()?;
        let campaign_rows = sqlx::query(
            "SELECT id, name, kind, mode, state, created_at FROM campaigns \
             WHERE state IN ('running', 'paused') ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut campaigns = campaign_rows
            .iter()
            .map(|r| {
                Ok(CampaignFigures {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    mode: r.try_get("mode")?,
                    state: r.try_get("state")?,
                    created_at: r.try_get("created_at")?,
                    ..Default::default()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.fill_campaign_counts(&mut campaigns, false).await?;
        Ok(FloorFigures {
            missed_waiting: missed.try_get("n")?,
            oldest_missed_at: missed.try_get("oldest")?,
            callbacks_due: callbacks.try_get("due")?,
            callbacks_overdue: callbacks.try_get("overdue")?,
            callbacks_open: callbacks.try_get("open")?,
            reminders_due_today: reminders_due,
            reminders_done_today: reminders_done,
            agents_on_outbound: on_outbound,
            campaigns,
        })
    }
}

/// `text` as a literal inside a `LIKE` pattern with `ESCAPE '\'`.
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::like_escaped;

    #[test]
    fn like_patterns_escape_their_wildcards() {
        assert_eq!(like_escaped("service_booked"), r"service\_booked");
        assert_eq!(like_escaped("100%"), r"100\%");
        assert_eq!(like_escaped(r"a\b"), r"a\\b");
    }
}
