//! The call service: drives the pure call model from every ingress and carries out its effects.
//!
//! Ingresses `submit` call events; each goes, over bounded channels, both to the one task that
//! owns the [`CallModel`] and to the journal writer, so a pop does not wait for the event's
//! commit. The journal writer, a task of its own, writes many events per transaction: it takes
//! whatever queued up while the last transaction ran (one event when calls are few, hundreds at a
//! thousand calls a second). The same transaction marks the events journaled before as processed
//! and writes the audit records of the pops sent since (a pop that showed a customer's card is
//! audited within `MARK_INTERVAL`, never delayed by its own write), so the database sees one
//! commit per batch instead of two per event and one per pop. `submit` returns once its event is
//! in a committed batch: an acknowledged event survives a crash; one whose write failed is
//! refused, and when its sender repeats it the model takes it as the duplicate it is. The model
//! task applies events in arrival order and turns effects into work: pops are matched and built on tasks of their own
//! (database lookups must not hold up other calls' events), updates go straight to the hub (which
//! settles the race between a slow pop and a fast update), ended calls are recorded as
//! interactions (with the callback a missed call leaves) by the call recorder, a task of its own
//! that, like the journal writer, writes what queued up meanwhile in one transaction. Matching is done once per call and shared by every pop of that call, so a
//! ring-all queue creates at most one provisional contact.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{OnceCell, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::call::{
    ActiveCounts, Audience, CallEvent, CallModel, CallModelConfig, CallRecord, Direction, Effect,
    LiveCall, Source,
};
use crate::directory::Directory;
use crate::hub::Hub;
use crate::matching::{self, MatchResult};
use crate::outbound::generators;
use crate::settings::Settings;
use crate::storage::interactions::{self, NewInteraction};
use crate::storage::privacy::PopViewed;
use crate::storage::tasks::{self, NewTask};
use crate::storage::{Storage, StorageError, WriteTx, now_ms};
use crate::telemetry::Pii;

/// Everything effects need to be carried out.
#[derive(Clone)]
pub struct CallDeps {
    pub storage: Storage,
    pub settings: Arc<Settings>,
    pub directory: Arc<Directory>,
    pub hub: Hub,
    pub metrics: Arc<crate::metrics::Metrics>,
}

enum Command {
    Event {
        event: CallEvent,
        received: std::time::Instant,
    },
    Snapshot(oneshot::Sender<Vec<LiveCall>>),
    Counts(oneshot::Sender<ActiveCounts>),
}

type MatchCell = Arc<OnceCell<Option<MatchResult>>>;

/// An event waiting for the journal writer, and the submitter waiting for its id.
struct Pending {
    source: Source,
    body: String,
    ack: oneshot::Sender<Result<i64, StorageError>>,
}

/// Events waiting for the journal writer; when full, `submit` and `enqueue` wait.
pub const JOURNAL_QUEUE: usize = 4096;
/// The most events one journal transaction takes.
pub const JOURNAL_BATCH: usize = 1024;
/// Ended calls waiting for the call recorder; when full, the tasks preparing them wait.
pub const RECORDER_QUEUE: usize = 4096;
/// The most ended calls one recorder transaction takes.
pub const RECORDER_BATCH: usize = 256;
/// How soon processed events are marked when no new event comes to carry the marks.
const MARK_INTERVAL: Duration = Duration::from_millis(250);

/// The handle ingresses and handlers use.
#[derive(Clone)]
pub struct Calls {
    tx: mpsc::Sender<Command>,
    journal: mpsc::Sender<Pending>,
    /// Ended calls, prepared, for the call recorder.
    recorder: mpsc::Sender<EndedCall>,
    /// Journal ids the model has processed, for the journal writer's next transaction.
    processed: Arc<Mutex<Vec<i64>>>,
    /// Pops that showed a customer, for the audit trail in the journal writer's next transaction.
    viewed: Arc<Mutex<Vec<PopViewed>>>,
    deps: CallDeps,
    matches: Arc<Mutex<HashMap<String, MatchCell>>>,
}

/// An event queued with [`Calls::enqueue`]: resolves to its journal id once it is durable and
/// handed to the model, or to why it was not journaled.
pub struct Journaled(oneshot::Receiver<Result<i64, StorageError>>);

impl Future for Journaled {
    type Output = Result<i64, SubmitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|result| match result {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(error)) => Err(SubmitError::Storage(error)),
            Err(_) => Err(SubmitError::Stopped),
        })
    }
}

/// Why an event was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the call service has stopped")]
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallCounts {
    pub ringing: usize,
    pub queued: usize,
    pub answered: usize,
    pub transferring: usize,
}

/// Events older than this when replayed from the journal after a restart update the state but pop nothing.
const STALE_POP_MS: i64 = 30_000;

impl Calls {
    /// Starts the model task and replays journaled events the last run did not get to.
    pub async fn start(
        deps: CallDeps,
        shutdown: CancellationToken,
    ) -> Result<(Calls, tokio::task::JoinHandle<()>), StorageError> {
        let (tx, rx) = mpsc::channel(4096);
        let (journal, journal_rx) = mpsc::channel(JOURNAL_QUEUE);
        let (recorder, recorder_rx) = mpsc::channel(RECORDER_QUEUE);
        let calls = Calls {
            tx,
            journal,
            recorder,
            processed: Arc::new(Mutex::new(Vec::new())),
            viewed: Arc::new(Mutex::new(Vec::new())),
            deps: deps.clone(),
            matches: Arc::new(Mutex::new(HashMap::new())),
        };
        let config = CallModelConfig {
            merge_window_ms: deps.settings.calls.merge_window_ms.max(0) as u64,
            max_call_age_ms: (deps.settings.calls.max_call_age_secs.max(60) as u64) * 1000,
            ..CallModelConfig::default()
        };
        let pending = deps.storage.unprocessed_events(100_000).await?;
        let runner = calls.clone();
        let writer = calls.clone();
        let recorder = calls.clone();
        let handle = tokio::spawn(async move {
            tokio::join!(
                runner.run(CallModel::new(config), rx, pending, shutdown.clone()),
                writer.write_journal(journal_rx, shutdown.clone()),
                recorder.record_calls(recorder_rx, shutdown),
            );
        });
        Ok((calls, handle))
    }

    /// Journals the event, then queues it for the model. Returns once the event is durable.
    pub async fn submit(&self, event: CallEvent) -> Result<i64, SubmitError> {
        self.enqueue(event).await?.await
    }

    /// Queues the event for the journal (waiting while the queue is full) and returns what to
    /// await for its durability. An ingress that does not answer per event (SIP) keeps many in
    /// flight, so the journal can take them in large batches.
    pub async fn enqueue(&self, event: CallEvent) -> Result<Journaled, SubmitError> {
        let received = std::time::Instant::now();
        let body = serde_json::to_string(&event).map_err(|e| StorageError::Other(e.to_string()))?;
        let source = event.source;
        // The model takes the event now; the journal writer writes it meanwhile (see the
        // module's documentation).
        self.tx
            .send(Command::Event { event, received })
            .await
            .map_err(|_| SubmitError::Stopped)?;
        let (ack, journaled) = oneshot::channel();
        self.journal
            .send(Pending { source, body, ack })
            .await
            .map_err(|_| SubmitError::Stopped)?;
        Ok(Journaled(journaled))
    }

    /// The journal writer: takes every event queued meanwhile (at most [`JOURNAL_BATCH`]) and
    /// writes them in one transaction that also marks the events of the last one processed; then
    /// their submitters get their ids.
    async fn write_journal(self, mut queue: mpsc::Receiver<Pending>, shutdown: CancellationToken) {
        let mut batch: Vec<Pending> = Vec::with_capacity(JOURNAL_BATCH);
        let mut marks = tokio::time::interval(MARK_INTERVAL);
        marks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                received = queue.recv_many(&mut batch, JOURNAL_BATCH) => if received == 0 { break },
                _ = marks.tick() => {}
            }
            let processed = take(&self.processed);
            let viewed = take(&self.viewed);
            if batch.is_empty() && processed.is_empty() && viewed.is_empty() {
                continue;
            }
            let rows: Vec<(&str, &str)> = batch
                .iter()
                .map(|pending| (pending.source.as_str(), pending.body.as_str()))
                .collect();
            match self
                .deps
                .storage
                .journal_batch(&rows, &processed, &viewed)
                .await
            {
                Ok(ids) => {
                    for (pending, id) in batch.drain(..).zip(ids) {
                        self.deps.metrics.call_event(pending.source);
                        self.mark_processed(id);
                        let _ = pending.ack.send(Ok(id));
                    }
                }
                Err(error) => {
                    tracing::warn!(events = batch.len(), %error, "call events not journaled");
                    give_back(&self.processed, processed);
                    give_back(&self.viewed, viewed);
                    for pending in batch.drain(..) {
                        let _ = pending.ack.send(Err(same_error(&error)));
                    }
                }
            }
        }
        // A clean stop leaves nothing processed to replay and no pop unaudited.
        let processed = take(&self.processed);
        let viewed = take(&self.viewed);
        if !processed.is_empty() || !viewed.is_empty() {
            if let Err(error) = self
                .deps
                .storage
                .journal_batch(&[], &processed, &viewed)
                .await
            {
                tracing::warn!(%error, "could not mark call events processed or audit pops at stop");
            }
        }
    }

    pub async fn live(&self) -> Vec<LiveCall> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Snapshot(reply)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    pub async fn counts(&self) -> CallCounts {
        let (reply, rx) = oneshot::channel();
        let c = if self.tx.send(Command::Counts(reply)).await.is_ok() {
            rx.await.unwrap_or_default()
        } else {
            ActiveCounts::default()
        };
        CallCounts {
            ringing: c.ringing,
            queued: c.queued,
            answered: c.answered,
            transferring: c.transferring,
        }
    }

    /// The match made for a live call (the customer its pop shows), if any.
    pub async fn matched(&self, call_id: &str) -> Option<MatchResult> {
        let cell = self
            .matches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(call_id)
            .cloned()?;
        cell.get().cloned().flatten()
    }

    /// Replaces the match of a live call (an agent picked another candidate).
    pub fn set_match(&self, call_id: &str, matched: MatchResult) {
        let cell = Arc::new(OnceCell::new_with(Some(Some(matched))));
        self.matches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(call_id.to_string(), cell);
    }

    async fn run(
        self,
        mut model: CallModel,
        mut rx: mpsc::Receiver<Command>,
        pending: Vec<crate::storage::events::JournaledEvent>,
        shutdown: CancellationToken,
    ) {
        if !pending.is_empty() {
            tracing::info!(
                events = pending.len(),
                "replaying call events accepted before the last stop"
            );
        }
        for journaled in pending {
            match serde_json::from_str::<CallEvent>(&journaled.body) {
                Ok(event) => {
                    let fresh = now_ms() - event.at_ms < STALE_POP_MS;
                    self.apply(&mut model, &event, fresh, None);
                }
                Err(e) => {
                    tracing::warn!(id = journaled.id, error = %e, "journaled event unreadable; dropped")
                }
            }
            self.mark_processed(journaled.id);
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    for effect in model.tick(now_ms()) {
                        self.dispatch(effect, true, None);
                    }
                }
                command = rx.recv() => match command {
                    Some(Command::Event { event, received }) => {
                        self.apply(&mut model, &event, true, Some(received));
                    }
                    Some(Command::Snapshot(reply)) => { let _ = reply.send(model.calls()); }
                    Some(Command::Counts(reply)) => { let _ = reply.send(model.active()); }
                    None => break,
                },
            }
        }
    }

    fn apply(
        &self,
        model: &mut CallModel,
        event: &CallEvent,
        may_pop: bool,
        received: Option<std::time::Instant>,
    ) {
        match model.handle(event) {
            Ok(effects) => {
                for effect in effects {
                    self.dispatch(effect, may_pop, received);
                }
            }
            Err(e) => {
                tracing::warn!(source = event.source.as_str(), error = %e, "call event dropped")
            }
        }
    }

    /// Marked in the journal writer's next transaction. Events arriving live are marked once
    /// journaled (the model has had them since before their write), replayed ones once applied.
    fn mark_processed(&self, id: i64) {
        self.processed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id);
    }

    fn match_cell(&self, call_id: &str) -> MatchCell {
        self.matches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(call_id.to_string())
            .or_insert_with(|| Arc::new(OnceCell::new()))
            .clone()
    }

    /// Carries out one effect; `received` is when the event that caused it came in.
    fn dispatch(&self, effect: Effect, may_pop: bool, received: Option<std::time::Instant>) {
        let hub = self.deps.hub.clone();
        match effect {
            Effect::Pop {
                call_id,
                direction,
                caller,
                dialed,
                audience,
            } => {
                if !may_pop {
                    return;
                }
                let this = self.clone();
                tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    let names: Vec<String> = match &audience {
                        Audience::Agents(ids) => ids
                            .iter()
                            .filter_map(|a| this.deps.directory.name_of(a.0))
                            .collect(),
                        Audience::Queue(_) => Vec::new(),
                    };
                    let cell = this.match_cell(&call_id);
                    let matched = cell
                        .get_or_init(|| async {
                            let deps = &this.deps;
                            match matching::match_caller(&deps.storage, &deps.settings, caller.as_ref(), dialed.as_ref(), &names, direction == Direction::Inbound).await {
                                Ok(m) => Some(m),
                                Err(e) => {
                                    tracing::warn!(call_id, error = %e, "caller lookup failed; popping without a customer");
                                    None
                                }
                            }
                        })
                        .await
                        .clone()
                        .unwrap_or(MatchResult {
                            kind: matching::MatchKind::None,
                            number: caller.as_ref().and_then(|c| c.e164.clone()),
                            ranked: Vec::new(),
                            created: false,
                        });
                    let body = match crate::console::pop::build(
                        &this.deps.storage,
                        &this.deps.settings,
                        &call_id,
                        direction,
                        caller.as_ref(),
                        dialed.as_ref(),
                        &matched,
                    )
                    .await
                    {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::warn!(call_id, error = %e, "pop content lookup failed; sending the bare pop");
                            let empty = MatchResult {
                                ranked: Vec::new(),
                                ..matched.clone()
                            };
                            crate::console::pop::bare(
                                &call_id,
                                direction,
                                caller.as_ref(),
                                dialed.as_ref(),
                                &empty,
                            )
                        }
                    };
                    tracing::debug!(call_id, caller = %Pii(caller.as_ref().map(|c| c.raw.as_str()).unwrap_or("")), ms = started.elapsed().as_secs_f64() * 1000.0, "pop built");
                    let detail = match &audience {
                        Audience::Agents(ids) => format!(
                            "pop to agents {:?}",
                            ids.iter().map(|a| a.0).collect::<Vec<_>>()
                        ),
                        Audience::Queue(q) => format!(
                            "pop to queue {}",
                            q.as_deref().unwrap_or("(all ready agents)")
                        ),
                    };
                    hub.pop(call_id, audience, body, received).await;
                    // Audited after sending, with the journal's next transaction: the pop must
                    // not wait for a write of its own.
                    if let Some(best) = matched.best() {
                        this.viewed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(PopViewed {
                                at: now_ms(),
                                customer_id: best.customer.id,
                                detail,
                            });
                    }
                });
            }
            Effect::Withdraw { call_id, agent } => {
                tokio::spawn(async move { hub.withdraw(call_id, agent).await });
            }
            Effect::Answered { call_id, by } => {
                tokio::spawn(async move { hub.answered(call_id, by).await });
            }
            Effect::Ended { call } => {
                let this = self.clone();
                tokio::spawn(async move {
                    hub.ended(call.call_id.clone(), call.outcome.as_str().to_string())
                        .await;
                    let call_id = call.call_id.clone();
                    match this.prepare_record(call).await {
                        Ok(ended) => {
                            if this.recorder.send(ended).await.is_err() {
                                tracing::warn!(
                                    call_id,
                                    "call not recorded: the call service has stopped"
                                );
                            }
                        }
                        Err(e) => {
                            tracing::warn!(call_id, error = %e, "could not record the call");
                        }
                    }
                    this.matches
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&call_id);
                });
            }
        }
    }

    /// What recording an ended call takes, found before the recorder's transaction: its customer
    /// (the one its pop showed, as matched when it rang or picked by the agent since) and, for a
    /// missed inbound call, the callback it leaves.
    async fn prepare_record(&self, call: CallRecord) -> Result<EndedCall, StorageError> {
        let deps = &self.deps;
        let remote = call.remote_party();
        let matched = match self.matched(&call.call_id).await {
            Some(m) => m,
            None => {
                matching::match_caller(&deps.storage, &deps.settings, remote, None, &[], false)
                    .await?
            }
        };
        let customer = matched.best().map(|c| &c.customer);
        let mut callback = None;
        let mut got_through = false;
        if let (Direction::Inbound, Some(customer)) = (call.direction, customer) {
            if call.outcome.wants_callback() {
                if let Some(e164) = remote.and_then(|p| p.e164.as_deref()) {
                    callback = Some(generators::missed_call(
                        &deps.settings,
                        &deps.directory,
                        customer,
                        e164,
                        call.started_at_ms,
                    ));
                }
            } else {
                got_through = matches!(
                    call.outcome,
                    crate::call::Outcome::Answered | crate::call::Outcome::AnsweredElsewhere
                );
            }
        }
        Ok(EndedCall {
            customer_id: customer.map(|c| c.id),
            call,
            callback,
            got_through,
        })
    }

    /// The call recorder: takes the ended calls prepared meanwhile (at most [`RECORDER_BATCH`])
    /// and records them in one transaction. When that fails, each is tried on its own, so one
    /// call the database refuses does not take the others with it.
    async fn record_calls(self, mut queue: mpsc::Receiver<EndedCall>, shutdown: CancellationToken) {
        let mut batch: Vec<EndedCall> = Vec::with_capacity(RECORDER_BATCH);
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => {
                    // What is queued still gets written at a clean stop.
                    queue.close();
                    queue.recv_many(&mut batch, RECORDER_QUEUE).await
                }
                received = queue.recv_many(&mut batch, RECORDER_BATCH) => received,
            };
            if received == 0 {
                break;
            }
            let mut committed = 0;
            if let Err(error) = self.record_batch(&batch, &mut committed).await {
                tracing::debug!(calls = batch.len() - committed, %error, "call batch not recorded; recording one by one");
                for ended in batch.get(committed..).unwrap_or_default() {
                    let one = std::slice::from_ref(ended);
                    if let Err(error) = self.record_batch(one, &mut 0).await {
                        tracing::warn!(call_id = ended.call.call_id, %error, "could not record the call");
                    }
                }
            }
            batch.clear();
            if shutdown.is_cancelled() {
                break;
            }
        }
    }

    /// Stores ended calls as interactions on their customers (missed calls included), with the
    /// callbacks missed calls leave and the callbacks no longer owed cancelled.
    /// A write someone waits for (a new caller's provisional contact, say) is let in between two
    /// calls: what is written so far is committed and the rest goes in a new transaction.
    /// `committed` counts the calls of `batch` committed, also when a later one fails.
    async fn record_batch(
        &self,
        batch: &[EndedCall],
        committed: &mut usize,
    ) -> Result<(), StorageError> {
        let storage = &self.deps.storage;
        let mut tx = storage.begin_write().await?;
        let mut written = 0;
        for (n, ended) in batch.iter().enumerate() {
            record_call(&mut tx, ended).await?;
            written += 1;
            if n + 1 < batch.len() && storage.writers_waiting() {
                tx.commit().await?;
                *committed += std::mem::take(&mut written);
                tx = storage.begin_write().await?;
            }
        }
        tx.commit().await?;
        *committed += written;
        Ok(())
    }
}

/// An ended call ready for the recorder.
struct EndedCall {
    call: CallRecord,
    customer_id: Option<i64>,
    /// The callback a missed inbound call of a known customer leaves.
    callback: Option<NewTask>,
    /// An answered inbound call: the customer's missed-call callback is no longer owed.
    got_through: bool,
}

/// Records one ended call within the recorder's transaction.
async fn record_call(tx: &mut WriteTx, ended: &EndedCall) -> Result<(), StorageError> {
    let call = &ended.call;
    let agent_id = call.answered_by.map(|a| a.0);
    match interactions::call_interaction_id(&mut **tx, &call.call_id).await? {
        Some(id) => {
            interactions::finish_call_interaction(
                &mut **tx,
                id,
                call.answered_at_ms,
                call.ended_at_ms,
                call.outcome.as_str(),
                agent_id,
            )
            .await?;
        }
        None => {
            let remote = call.remote_party();
            interactions::insert_interaction(
                &mut **tx,
                &NewInteraction {
                    customer_id: ended.customer_id,
                    call_id: Some(call.call_id.clone()),
                    kind: "call".into(),
                    direction: Some(call.direction.as_str().into()),
                    number_raw: remote.map(|p| p.raw.clone()),
                    number_e164: remote.and_then(|p| p.e164.clone()),
                    agent_id,
                    started_at: call.started_at_ms,
                    answered_at: call.answered_at_ms,
                    ended_at: Some(call.ended_at_ms),
                    outcome: Some(call.outcome.as_str().into()),
                    ..Default::default()
                },
            )
            .await?;
        }
    }
    // Written with the interaction: whoever sees the callback task finds the call it is for.
    if let Some(callback) = &ended.callback {
        let (task, created) = tasks::create_task(tx, callback).await?;
        if !created {
            tasks::bump_merged(&mut **tx, task.id).await?;
        }
    }
    if let (true, Some(customer_id)) = (ended.got_through, ended.customer_id) {
        tasks::cancel_open_tasks(
            &mut **tx,
            customer_id,
            generators::MISSED_CALL_CALLBACK,
            generators::CUSTOMER_GOT_THROUGH,
        )
        .await?;
    }
    Ok(())
}

/// What the journal writer's next transaction is to carry, taken for this one.
fn take<T>(shared: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *shared.lock().unwrap_or_else(|p| p.into_inner()))
}

/// What a failed transaction did not write, back for the next one.
fn give_back<T>(shared: &Mutex<Vec<T>>, items: Vec<T>) {
    shared
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(items);
}

/// The same failure for each event of a batch that could not be journaled.
fn same_error(error: &StorageError) -> StorageError {
    match error {
        StorageError::Unavailable(message) => StorageError::Unavailable(message.clone()),
        StorageError::NotFound => StorageError::NotFound,
        StorageError::Conflict(message) => StorageError::Conflict(message.clone()),
        StorageError::Other(message) => StorageError::Other(message.clone()),
    }
}
