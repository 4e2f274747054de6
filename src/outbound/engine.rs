//! The outbound engine: one loop per process that claims due tasks, checks the rules, offers each
//! to an agent (preview) or dials it at once (progressive campaigns), and follows the outcome.
//!
//! Durability: the task and its attempt are rows; the attempt row is written, in the same
//! transaction that marks the task `dialing` and re-checks DNC, consent and caps, before the PBX
//! is asked to dial. A process that dies mid-call leaves a `dialing` task whose lease lapses; any
//! engine then marks that attempt `unknown` and holds the task for `unknown_guard_secs` instead of
//! dialing it again at once. Offers live in memory only: a lost offer's lease lapses and the task
//! returns to the queue.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveTime, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::dialer::{DialOutcome, DialRequest, Dialer};
use super::policy::{self, CallingWindow, Refusal};
use crate::directory::Directory;
use crate::hub::Hub;
use crate::settings::Settings;
use crate::storage::interactions::NewInteraction;
use crate::storage::tasks::{AttemptStart, StartRefusal, Task};
use crate::storage::{Storage, StorageError, now_ms};

#[derive(Clone)]
pub struct EngineDeps {
    pub storage: Storage,
    pub settings: Arc<Settings>,
    pub directory: Arc<Directory>,
    pub hub: Hub,
    pub dialer: Option<Arc<dyn Dialer>>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

struct Offer {
    agent: i64,
    fence: i64,
    expires: i64,
}

#[derive(Default)]
struct Floor {
    /// Task offered → who and until when.
    offers: HashMap<i64, Offer>,
    /// Agent → the task they are busy with (offered, dialing or talking).
    busy: HashMap<i64, i64>,
    /// Round-robin position for picking among free agents.
    next: usize,
}

/// Why an agent's request about a task was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub code: &'static str,
    pub message: String,
}

impl TaskError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<StorageError> for TaskError {
    fn from(e: StorageError) -> Self {
        tracing::warn!(error = %e, "task storage error");
        TaskError::new("storage_error", "the task could not be updated; try again")
    }
}

/// The handle the console and the API use.
#[derive(Clone)]
pub struct Engine {
    deps: EngineDeps,
    floor: Arc<Mutex<Floor>>,
    wake: Arc<Notify>,
    rescan: Arc<Notify>,
}

/// Outcomes an agent may report with `task_result`.
pub const RESULT_OUTCOMES: &[&str] = &[
    "answered_done",
    "callback_requested",
    "no_answer",
    "busy",
    "wrong_number",
    "refused",
    "voicemail",
];

impl Engine {
    pub fn new(deps: EngineDeps) -> Engine {
        Engine {
            deps,
            floor: Arc::new(Mutex::new(Floor::default())),
            wake: Arc::new(Notify::new()),
            rescan: Arc::new(Notify::new()),
        }
    }

    /// Runs the scheduler loop and the periodic generator scan until `shutdown`.
    pub fn spawn(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move { this.run(shutdown).await })
    }

    /// Something changed (an agent became ready, a task was created): look again now.
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Run the generators' scan now (e.g. after data was loaded) instead of at the next interval.
    pub fn scan_soon(&self) {
        self.rescan.notify_one();
    }

    fn floor(&self) -> std::sync::MutexGuard<'_, Floor> {
        self.floor.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(self, shutdown: CancellationToken) {
        let settings = self.deps.settings.clone();
        if let Some(d) = &self.deps.dialer {
            tracing::info!(dialer = d.name(), "outbound engine running");
        } else {
            tracing::info!(
                "outbound engine running without a dialer: agents dial offered tasks themselves"
            );
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut scan = tokio::time::interval(Duration::from_secs(
            settings.outbound.scan_interval_secs.max(10),
        ));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                _ = self.wake.notified() => {}
                _ = async { tokio::select! { _ = scan.tick() => {}, _ = self.rescan.notified() => {} } } => {
                    let today = Utc::now().with_timezone(&self.default_tz()).date_naive();
                    match super::generators::scan(&self.deps.storage, &settings, &self.deps.directory, today).await {
                        Ok(r) => tracing::info!(maintenance = r.maintenance_reminders, return_visits = r.return_visits, birthdays = r.birthday_calls, "outbound scan"),
                        Err(e) => tracing::warn!(error = %e, "outbound scan failed"),
                    }
                }
            }
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "outbound round failed; retrying");
            }
        }
    }

    fn default_tz(&self) -> Tz {
        self.deps
            .settings
            .outbound
            .default_timezone
            .parse()
            .unwrap_or(chrono_tz::Asia::Shanghai)
    }

    /// The calling window for a task kind and tier (overrides first).
    pub fn window_for(&self, kind: &str, tier: Option<&str>) -> CallingWindow {
        let o = &self.deps.settings.outbound;
        let parse = |s: &str, fallback: u32| {
            NaiveTime::parse_from_str(s, "%H:%M")
                .unwrap_or_else(|_| NaiveTime::from_hms_opt(fallback, 0, 0).unwrap_or_default())
        };
        let (start, end) = o
            .windows
            .iter()
            .find(|w| {
                w.kind.as_deref().is_none_or(|k| k == kind)
                    && w.tier.as_deref().is_none_or(|t| Some(t) == tier)
            })
            .map(|w| (w.start.as_str(), w.end.as_str()))
            .unwrap_or((o.window_start.as_str(), o.window_end.as_str()));
        CallingWindow {
            start: parse(start, 8),
            end: parse(end, 21),
            weekends: o.call_on_weekends,
            holidays: o
                .holidays
                .iter()
                .filter_map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .collect::<HashSet<_>>(),
        }
    }

    fn tz_of(&self, tz: Option<&str>) -> Tz {
        tz.and_then(|t| t.parse().ok())
            .unwrap_or_else(|| self.default_tz())
    }

    async fn round(&self) -> Result<(), StorageError> {
        let s = &self.deps.storage;
        let o = &self.deps.settings.outbound;
        let now = now_ms();
        s.reclaim_expired_leases(now, o.unknown_guard_secs * 1000)
            .await?;
        s.expire_overdue(now).await?;
        let lapsed: Vec<(i64, i64)> = {
            let mut floor = self.floor();
            let lapsed: Vec<(i64, i64)> = floor
                .offers
                .iter()
                .filter(|(_, o)| o.expires < now)
                .map(|(t, o)| (*t, o.agent))
                .collect();
            for (task, agent) in &lapsed {
                floor.offers.remove(task);
                floor.busy.remove(agent);
            }
            lapsed
        };
        for (task, agent) in lapsed {
            self.deps
                .hub
                .direct(
                    agent,
                    json!({"type": "task_withdrawn", "task_id": task, "reason": "offer_timeout"}),
                )
                .await;
        }
        if self.deps.dialer.as_ref().is_some_and(|d| !d.ready()) {
            return Ok(()); // the PBX is not connected: nothing can be dialed now
        }
        let ready = self.deps.hub.snapshot().await.ready_agent_ids;
        let mut free: Vec<i64> = {
            let floor = self.floor();
            ready
                .into_iter()
                .filter(|a| !floor.busy.contains_key(a))
                .collect()
        };
        if free.is_empty() {
            return Ok(());
        }
        let claimed = s
            .claim_due(
                now,
                (free.len() as i64 * 2).min(50),
                o.offer_timeout_secs.max(5) * 1000,
            )
            .await?;
        for task in claimed {
            if let Err(e) = self.place_claimed(task, &mut free).await {
                tracing::warn!(error = %e, "could not place a claimed task");
            }
        }
        Ok(())
    }

    async fn place_claimed(&self, task: Task, free: &mut Vec<i64>) -> Result<(), StorageError> {
        let s = &self.deps.storage;
        let now = now_ms();
        let customer = match task.customer_id {
            Some(id) => s.customer(id).await.ok(),
            None => None,
        };
        let mut progressive = false;
        let mut campaign_hours = None;
        if let Some(cid) = task.campaign_id {
            let campaign = s.campaign(cid).await?;
            if campaign.state != "running" {
                s.release_task(task.id, task.fence, now + 30_000).await?;
                return Ok(());
            }
            let (in_flight, recent) = s.campaign_pace(cid, now - 60_000).await?;
            // `in_flight` counts this task (it is reserved now).
            if in_flight > campaign.max_concurrent.max(1)
                || recent >= campaign.calls_per_minute.max(1)
            {
                s.release_task(task.id, task.fence, now + 5_000).await?;
                return Ok(());
            }
            progressive = campaign.mode == "progressive";
            let hour = |t: &Option<String>| {
                t.as_deref()
                    .and_then(|t| NaiveTime::parse_from_str(t, "%H:%M").ok())
            };
            campaign_hours = Some((hour(&campaign.window_start), hour(&campaign.window_end)));
        }
        let tz = self.tz_of(customer.as_ref().and_then(|c| c.timezone.as_deref()));
        let mut window = self.window_for(&task.kind, customer.as_ref().map(|c| c.tier.as_str()));
        // A campaign's own hours narrow the lawful window, never widen it.
        if let Some((start, end)) = campaign_hours {
            window.start = start.map_or(window.start, |s| s.max(window.start));
            window.end = end.map_or(window.end, |e| e.min(window.end));
        }
        if !window.allows(tz, Utc::now()) {
            let next = window
                .next_opening(tz, Utc::now())
                .map(|t| t.timestamp_millis())
                .unwrap_or(now + 86_400_000);
            s.release_task(task.id, task.fence, next).await?;
            return Ok(());
        }
        let agent = match task.preferred_agent_id {
            Some(p) if free.contains(&p) => Some(p),
            Some(_) if task.pool_after.is_some_and(|t| t > now) => {
                s.release_task(
                    task.id,
                    task.fence,
                    task.pool_after.unwrap_or(now).min(now + 60_000),
                )
                .await?;
                return Ok(());
            }
            _ => {
                let mut floor = self.floor();
                if free.is_empty() {
                    None
                } else {
                    floor.next = floor.next.wrapping_add(1);
                    Some(free[floor.next % free.len()])
                }
            }
        };
        let Some(agent) = agent else {
            s.release_task(task.id, task.fence, now + 5_000).await?;
            return Ok(());
        };
        free.retain(|a| *a != agent);
        self.floor().busy.insert(agent, task.id);
        if progressive {
            self.dial(task.id, task.fence, agent).await;
            return Ok(());
        }
        let expires = now + self.deps.settings.outbound.offer_timeout_secs.max(5) * 1000;
        if !s.assign_task(task.id, task.fence, agent, expires).await? {
            self.floor().busy.remove(&agent);
            return Ok(());
        }
        self.floor().offers.insert(
            task.id,
            Offer {
                agent,
                fence: task.fence,
                expires,
            },
        );
        let offer = self.offer_json(&task, customer.as_ref()).await;
        self.deps
            .hub
            .direct(agent, json!({"type": "task_offer", "task": offer}))
            .await;
        Ok(())
    }

    async fn offer_json(
        &self,
        task: &Task,
        customer: Option<&crate::storage::customers::Customer>,
    ) -> Value {
        let script = match task.campaign_id {
            Some(id) => self
                .deps
                .storage
                .campaign(id)
                .await
                .ok()
                .and_then(|c| c.script),
            None => None,
        }
        .unwrap_or_else(|| default_script(&task.kind).to_string());
        json!({
            "id": task.id, "kind": task.kind, "customer": customer, "number": task.number_e164, "script": script,
            "reason": task.reason, "due_at": task.not_before, "deadline": task.deadline, "attempts": task.attempts,
            "merged_count": task.merged_count, "campaign_id": task.campaign_id,
        })
    }

    /// An agent accepted an offered task: dial it.
    pub async fn accept(&self, agent: i64, task_id: i64) -> Result<(), TaskError> {
        let fence = {
            let mut floor = self.floor();
            match floor.offers.get(&task_id) {
                Some(o) if o.agent == agent => {
                    let fence = o.fence;
                    floor.offers.remove(&task_id);
                    fence
                }
                _ => {
                    return Err(TaskError::new(
                        "unknown_task",
                        format!("task {task_id} is not offered to you"),
                    ));
                }
            }
        };
        self.dial(task_id, fence, agent).await;
        Ok(())
    }

    /// Starts an attempt (rules re-checked in its transaction) and, with a dialer, places the call.
    async fn dial(&self, task_id: i64, fence: i64, agent: i64) {
        let s = &self.deps.storage;
        let o = &self.deps.settings.outbound;
        let dialer_name = self
            .deps
            .dialer
            .as_ref()
            .map(|d| d.name())
            .unwrap_or_else(|| "manual".into());
        let now = Utc::now();
        let default_tz = self.default_tz();
        let this = self.clone();
        let started = s
            .start_attempt(
                &AttemptStart {
                    task_id,
                    fence,
                    agent_id: Some(agent),
                    dialer: &dialer_name,
                    lease_ms: o.dial_lease_secs.max(5) * 1000,
                },
                |tz| {
                    policy::local_day_start(
                        tz.and_then(|t| t.parse().ok()).unwrap_or(default_tz),
                        now,
                    )
                },
                |task, facts| {
                    let tz = this.tz_of(facts.timezone.as_deref());
                    let window = this.window_for(&task.kind, facts.tier.as_deref());
                    policy::may_dial(task, facts, &window, tz, now, o.max_attempts_per_day)
                        .map_err(|r| refusal_text(&r))
                },
            )
            .await;
        let (task, attempt) = match started {
            Ok(Ok(pair)) => pair,
            Ok(Err(StartRefusal::Fenced)) => {
                self.free_agent(agent, task_id, json!({"type": "task_withdrawn", "task_id": task_id, "reason": "taken_elsewhere"})).await;
                return;
            }
            Ok(Err(StartRefusal::Refused(reason))) => {
                self.refused(task_id, fence, &reason).await;
                self.free_agent(
                    agent,
                    task_id,
                    json!({"type": "task_withdrawn", "task_id": task_id, "reason": reason}),
                )
                .await;
                return;
            }
            Err(e) => {
                tracing::warn!(task_id, error = %e, "attempt not started");
                let _ = s.release_task(task_id, fence, now_ms() + 30_000).await;
                self.free_agent(agent, task_id, json!({"type": "task_withdrawn", "task_id": task_id, "reason": "storage_error"})).await;
                return;
            }
        };
        self.deps.hub.direct(agent, json!({"type": "task_update", "task_id": task_id, "state": "dialing", "attempt": attempt.id})).await;
        let Some(dialer) = self.deps.dialer.clone() else {
            return; // manual: the agent dials and reports with task_result
        };
        let extension = self
            .deps
            .directory
            .get(agent)
            .and_then(|e| e.extensions.first().cloned());
        let request = DialRequest {
            task_id,
            attempt_id: attempt.id,
            fence,
            number_e164: task.number_e164.clone(),
            agent_extension: extension,
            caller_id: None,
            ring_timeout_secs: 30,
        };
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = dialer.place(request).await;
            this.follow(task, attempt.id, agent, outcome).await;
        });
    }

    async fn refused(&self, task_id: i64, fence: i64, reason: &str) {
        let s = &self.deps.storage;
        let now = now_ms();
        let result = match reason {
            "dnc" | "no_consent" => {
                s.close_task(task_id, Some(fence), "cancelled", reason, None, None)
                    .await
            }
            "attempts_exhausted" => {
                s.close_task(task_id, Some(fence), "failed", reason, None, None)
                    .await
            }
            r if r.starts_with("outside_window") => {
                let next = r
                    .split_once(':')
                    .and_then(|(_, t)| t.parse::<i64>().ok())
                    .unwrap_or(now + 3_600_000);
                s.release_task(task_id, fence, next).await
            }
            _ => s.release_task(task_id, fence, now + 3 * 3_600_000).await,
        };
        if let Err(e) = result {
            tracing::warn!(task_id, error = %e, "could not apply a refusal");
        }
    }

    async fn free_agent(&self, agent: i64, task_id: i64, message: Value) {
        {
            let mut floor = self.floor();
            if floor.busy.get(&agent) == Some(&task_id) {
                floor.busy.remove(&agent);
            }
        }
        self.deps.hub.direct(agent, message).await;
        self.nudge();
    }

    /// What the PBX said about a placed call.
    async fn follow(&self, task: Task, attempt_id: i64, agent: i64, outcome: DialOutcome) {
        self.deps.metrics.dial_attempt(outcome.as_str());
        let s = &self.deps.storage;
        let o = &self.deps.settings.outbound;
        let result: Result<(), StorageError> = async {
            match &outcome {
                DialOutcome::Answered => {
                    s.mark_connected(task.id, task.fence, attempt_id).await?;
                    self.deps.hub.direct(agent, json!({"type": "task_update", "task_id": task.id, "state": "connected"})).await;
                    return Ok(());
                }
                DialOutcome::Unknown => {
                    s.finish_attempt(attempt_id, "unknown", "unknown", None).await?;
                    s.retry_task(task.id, task.fence, now_ms() + o.unknown_guard_secs * 1000, "unknown").await?;
                }
                other => {
                    let cause = match other {
                        DialOutcome::Failed { cause } => Some(cause.as_str()),
                        _ => None,
                    };
                    s.finish_attempt(attempt_id, "done", other.as_str(), cause).await?;
                    let delay = match other {
                        DialOutcome::Busy => o.retry_busy_secs,
                        DialOutcome::NoAnswer => o.retry_no_answer_secs,
                        _ => o.retry_failed_secs,
                    };
                    self.retry_or_fail(&task, other.as_str(), delay).await?;
                }
            }
            self.free_agent(agent, task.id, json!({"type": "task_update", "task_id": task.id, "state": "failed", "outcome": outcome.as_str()})).await;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(task_id = task.id, error = %e, "could not record a dial outcome");
        }
    }

    async fn retry_or_fail(
        &self,
        task: &Task,
        outcome: &str,
        delay_secs: i64,
    ) -> Result<(), StorageError> {
        let s = &self.deps.storage;
        let fresh = s.task(task.id).await?;
        if fresh.attempts >= fresh.max_attempts {
            s.close_task(task.id, Some(task.fence), "failed", outcome, None, None)
                .await?;
        } else {
            s.retry_task(task.id, task.fence, now_ms() + delay_secs * 1000, outcome)
                .await?;
        }
        Ok(())
    }

    /// The agent's result of an outbound call; it becomes an interaction on the customer.
    pub async fn result(
        &self,
        agent: i64,
        task_id: i64,
        outcome: &str,
        note: Option<&str>,
        satisfaction: Option<i64>,
    ) -> Result<(), TaskError> {
        if !RESULT_OUTCOMES.contains(&outcome) {
            return Err(TaskError::new(
                "invalid_outcome",
                format!("outcome must be one of {}", RESULT_OUTCOMES.join(", ")),
            ));
        }
        if satisfaction.is_some_and(|s| !(1..=5).contains(&s)) {
            return Err(TaskError::new(
                "invalid_satisfaction",
                "satisfaction must be 1 to 5",
            ));
        }
        if note.is_some_and(|n| n.chars().count() > 4000) {
            return Err(TaskError::new(
                "invalid_note",
                "the note is longer than 4000 characters",
            ));
        }
        let s = &self.deps.storage;
        let o = &self.deps.settings.outbound;
        let task = s
            .task(task_id)
            .await
            .map_err(|_| TaskError::new("unknown_task", "no such task"))?;
        if task.assigned_agent_id != Some(agent)
            || !matches!(task.state.as_str(), "dialing" | "connected")
        {
            return Err(TaskError::new(
                "unknown_task",
                format!("task {task_id} is not in a call of yours"),
            ));
        }
        let attempt = s
            .attempts_of(task_id)
            .await?
            .into_iter()
            .rev()
            .find(|a| matches!(a.state.as_str(), "dialing" | "connected"));
        let attempt_state = if matches!(outcome, "no_answer" | "busy" | "voicemail") {
            outcome
        } else {
            "answered"
        };
        if let Some(a) = &attempt {
            s.finish_attempt(a.id, "done", attempt_state, None).await?;
            // A dialer reported its own outcome (`connected`); a manual dial ends here.
            if a.state == "dialing" {
                self.deps.metrics.dial_attempt(attempt_state);
            }
        }
        match outcome {
            "answered_done" | "refused" => {
                s.close_task(
                    task_id,
                    Some(task.fence),
                    "done",
                    outcome,
                    note,
                    satisfaction,
                )
                .await?;
            }
            "wrong_number" => {
                s.close_task(task_id, Some(task.fence), "failed", outcome, note, None)
                    .await?;
            }
            "callback_requested" => {
                s.close_task(
                    task_id,
                    Some(task.fence),
                    "done",
                    outcome,
                    note,
                    satisfaction,
                )
                .await?;
                if let Some(cid) = task.customer_id {
                    super::generators::requested_callback(
                        s,
                        &self.deps.settings,
                        cid,
                        &task.number_e164,
                        now_ms() + 86_400_000,
                        Some(agent),
                        note,
                    )
                    .await?;
                }
            }
            _ => {
                let delay = if outcome == "busy" {
                    o.retry_busy_secs
                } else {
                    o.retry_no_answer_secs
                };
                self.retry_or_fail(&task, outcome, delay).await?;
            }
        }
        s.add_interaction(&NewInteraction {
            customer_id: task.customer_id,
            call_id: Some(format!(
                "task-{task_id}-{}",
                attempt.as_ref().map(|a| a.id).unwrap_or(0)
            )),
            kind: if task.kind == "satisfaction_survey" {
                "survey".into()
            } else {
                "call".into()
            },
            direction: Some("outbound".into()),
            number_e164: Some(task.number_e164.clone()),
            agent_id: Some(agent),
            started_at: attempt
                .as_ref()
                .map(|a| a.started_at)
                .unwrap_or_else(now_ms),
            ended_at: Some(now_ms()),
            outcome: Some(outcome.into()),
            disposition: Some(format!("{}:{outcome}", task.kind)),
            note: note.map(String::from),
            satisfaction,
            ..Default::default()
        })
        .await?;
        {
            let mut floor = self.floor();
            if floor.busy.get(&agent) == Some(&task_id) {
                floor.busy.remove(&agent);
            }
        }
        self.nudge();
        Ok(())
    }

    /// Tasks this process is handling for agents right now (for the wallboard).
    pub fn busy_agents(&self) -> usize {
        self.floor().busy.len()
    }
}

fn refusal_text(r: &Refusal) -> String {
    match r {
        Refusal::OutsideWindow { next: Some(t) } => format!("outside_window:{t}"),
        other => other.code().to_string(),
    }
}

fn default_script(kind: &str) -> &'static str {
    match kind {
        "missed_call_callback" => "We missed your call — how can we help?",
        "requested_callback" => "Calling back as you asked.",
        "maintenance_reminder" => "Your vehicle's service is due soon. May we book a visit?",
        "return_visit" => "A courtesy call from your account manager: how are things going?",
        "satisfaction_survey" => {
            "How satisfied were you with how we handled your case, from 1 to 5?"
        }
        "care_call" => "Wishing you a happy birthday from all of us!",
        _ => "",
    }
}
