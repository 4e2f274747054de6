//! FreeSWITCH event socket client (inbound mode): one per `[[esl.servers]]`. Authenticates,
//! subscribes to `CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_BRIDGE
//! CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB CUSTOM callcenter::info` as JSON, turns them into call
//! events, reconnects with backoff and jitter, and places outbound calls with `bgapi originate`,
//! following the `BACKGROUND_JOB` by `Job-UUID`.
//!
//! Legs of one call are tied by `Channel-Call-UUID` (the a-leg's UUID); an agent leg is an
//! outbound leg whose destination number is an agent's extension. mod_callcenter's
//! `agent-offering` / `bridge-agent-start` / `bridge-agent-fail` / `member-queue-end` map to
//! ringing, answered, ring stopped and abandoned.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::ami::AmiDeps as EslDeps;
use crate::call::{AgentId, Audience, CallEvent, Direction, EventKind, Source};
use crate::matching;
use crate::outbound::dialer::{DialOutcome, DialRequest, Dialer};
use crate::protocol::esl::{self, Decoder, EslEvent, EslFrame, EslLimits};
use crate::settings::EslServer;
use crate::storage::now_ms;

pub const EVENTS: &[&str] = &[
    "CHANNEL_CREATE",
    "CHANNEL_PROGRESS",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_HANGUP_COMPLETE",
    "BACKGROUND_JOB",
    "CUSTOM",
    "callcenter::info",
];

#[derive(Debug, Default)]
pub struct EslCounters {
    /// Logged in and subscribed right now.
    pub connected: std::sync::atomic::AtomicBool,
    pub events_in: AtomicU64,
    pub call_events_out: AtomicU64,
    pub reconnects: AtomicU64,
    pub auth_failures: AtomicU64,
    pub originates: AtomicU64,
}

enum Command {
    Originate {
        request: DialRequest,
        reply: oneshot::Sender<DialOutcome>,
    },
}

#[derive(Clone)]
pub struct EslClient {
    name: String,
    tx: mpsc::Sender<Command>,
    pub counters: Arc<EslCounters>,
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("authentication refused: {0}")]
    AuthRefused(String),
    #[error("connection lost: {0}")]
    Lost(String),
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl EslClient {
    pub fn start(
        server: EslServer,
        deps: EslDeps,
        shutdown: CancellationToken,
    ) -> (EslClient, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(256);
        let counters = Arc::new(EslCounters::default());
        let client = EslClient {
            name: format!("esl:{}:{}", server.host, server.port),
            tx,
            counters: counters.clone(),
        };
        let handle = tokio::spawn(run(server, deps, rx, counters, shutdown));
        (client, handle)
    }
}

impl Dialer for EslClient {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn ready(&self) -> bool {
        self.counters.connected.load(Ordering::Relaxed)
    }

    fn place(&self, request: DialRequest) -> BoxFuture<'static, DialOutcome> {
        let tx = self.tx.clone();
        let limit = Duration::from_secs(u64::from(request.ring_timeout_secs) + 60);
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            if tx
                .send(Command::Originate { request, reply })
                .await
                .is_err()
            {
                return DialOutcome::Failed {
                    cause: "ESL client stopped".into(),
                };
            }
            match tokio::time::timeout(limit, rx).await {
                Ok(Ok(outcome)) => outcome,
                _ => DialOutcome::Unknown,
            }
        })
    }
}

async fn run(
    server: EslServer,
    deps: EslDeps,
    mut rx: mpsc::Receiver<Command>,
    counters: Arc<EslCounters>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_secs(1);
    let mut legs = LegTracker::default();
    loop {
        let started = Instant::now();
        counters.connected.store(false, Ordering::Relaxed);
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = session(&server, &deps, &mut rx, &counters, &mut legs, &shutdown) => r,
        };
        counters.connected.store(false, Ordering::Relaxed);
        match result {
            Ok(()) => return,
            Err(SessionError::AuthRefused(m)) => {
                counters.auth_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(server = %format!("{}:{}", server.host, server.port), reason = %m, "ESL authentication refused: check esl.servers password and event_socket.conf.xml");
                backoff = backoff.max(Duration::from_secs(10));
            }
            Err(e) => {
                tracing::warn!(server = %format!("{}:{}", server.host, server.port), error = %e, "ESL connection ended")
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        counters.reconnects.fetch_add(1, Ordering::Relaxed);
        while let Ok(Command::Originate { reply, .. }) = rx.try_recv() {
            let _ = reply.send(DialOutcome::Failed {
                cause: "PBX not connected".into(),
            });
        }
        let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 2);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff + Duration::from_millis(jitter)) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

struct Conn {
    stream: TcpStream,
    decoder: Decoder,
    buf: Vec<u8>,
}

impl Conn {
    async fn send(&mut self, text: &str) -> Result<(), SessionError> {
        self.stream
            .write_all(text.as_bytes())
            .await
            .map_err(|e| SessionError::Lost(e.to_string()))
    }

    async fn frame(&mut self) -> Result<EslFrame, SessionError> {
        loop {
            if let Some(f) = self
                .decoder
                .next_frame()
                .map_err(|e| SessionError::Protocol(e.to_string()))?
            {
                return Ok(f);
            }
            let n = self
                .stream
                .read(&mut self.buf)
                .await
                .map_err(|e| SessionError::Lost(e.to_string()))?;
            if n == 0 {
                return Err(SessionError::Lost(match self.decoder.finish() {
                    Err(e) => e.to_string(),
                    Ok(()) => "closed by FreeSWITCH".into(),
                }));
            }
            self.decoder.feed(&self.buf[..n]);
        }
    }

    /// The next `command/reply`, with events that arrive meanwhile kept for later.
    async fn reply(&mut self, held: &mut Vec<EslFrame>) -> Result<EslFrame, SessionError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let f = tokio::time::timeout_at(deadline, self.frame())
                .await
                .map_err(|_| SessionError::Protocol("no command/reply".into()))??;
            if f.content_type() == Some("command/reply") {
                return Ok(f);
            }
            held.push(f);
        }
    }
}

async fn session(
    server: &EslServer,
    deps: &EslDeps,
    rx: &mut mpsc::Receiver<Command>,
    counters: &EslCounters,
    legs: &mut LegTracker,
    shutdown: &CancellationToken,
) -> Result<(), SessionError> {
    let addr = format!("{}:{}", server.host, server.port);
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&addr))
        .await
        .map_err(|_| SessionError::Connect(format!("{addr}: timed out")))?
        .map_err(|e| SessionError::Connect(format!("{addr}: {e}")))?;
    let mut conn = Conn {
        stream,
        decoder: Decoder::new(EslLimits::default()),
        buf: vec![0u8; 64 * 1024],
    };
    let greeting = tokio::time::timeout(Duration::from_secs(10), conn.frame())
        .await
        .map_err(|_| SessionError::Protocol("no auth/request".into()))??;
    if greeting.content_type() != Some("auth/request") {
        return Err(SessionError::Protocol(format!(
            "expected auth/request, got {:?}",
            greeting.content_type()
        )));
    }
    let mut held = Vec::new();
    conn.send(&esl::auth(&server.password).map_err(|e| SessionError::Protocol(e.to_string()))?)
        .await?;
    let reply = conn.reply(&mut held).await?;
    if !reply.reply_text().is_some_and(|t| t.starts_with("+OK")) {
        return Err(SessionError::AuthRefused(
            reply.reply_text().unwrap_or("no reply text").to_string(),
        ));
    }
    conn.send(&esl::event_json(EVENTS).map_err(|e| SessionError::Protocol(e.to_string()))?)
        .await?;
    let reply = conn.reply(&mut held).await?;
    if !reply.reply_text().is_some_and(|t| t.starts_with("+OK")) {
        return Err(SessionError::Protocol(format!(
            "event subscription refused: {:?}",
            reply.reply_text()
        )));
    }
    tracing::info!(server = %addr, "ESL connected and subscribed");
    counters.connected.store(true, Ordering::Relaxed);
    let mut jobs: HashMap<String, oneshot::Sender<DialOutcome>> = HashMap::new();
    for f in held {
        handle_frame(f, deps, counters, legs, &mut jobs).await;
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = conn.send(esl::exit()).await;
                fail_jobs(&mut jobs);
                return Ok(());
            }
            frame = conn.frame() => {
                let frame = match frame {
                    Ok(f) => f,
                    Err(e) => {
                        fail_jobs(&mut jobs);
                        return Err(e);
                    }
                };
                if frame.content_type() == Some("text/disconnect-notice") {
                    fail_jobs(&mut jobs);
                    return Err(SessionError::Lost("disconnect notice".into()));
                }
                handle_frame(frame, deps, counters, legs, &mut jobs).await;
            }
            command = rx.recv() => {
                let Some(Command::Originate { request, reply }) = command else { continue };
                let job = uuid::Uuid::new_v4().to_string();
                let customer = server.originate_dialstring.replace("{number}", &request.number_e164);
                let vars = format!(
                    "{{ringside_task={},ringside_attempt={},originate_timeout={}}}",
                    request.task_id, request.attempt_id, request.ring_timeout_secs
                );
                let command = match &request.agent_extension {
                    Some(ext) => format!("originate {vars}user/{ext} &bridge({customer})"),
                    None => format!("originate {vars}{customer} &park()"),
                };
                let text = match esl::bgapi(&command, &job) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = reply.send(DialOutcome::Failed { cause: e.to_string() });
                        continue;
                    }
                };
                counters.originates.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = conn.send(&text).await {
                    let _ = reply.send(DialOutcome::Unknown);
                    fail_jobs(&mut jobs);
                    return Err(e);
                }
                jobs.insert(job, reply);
            }
        }
    }
}

fn fail_jobs(jobs: &mut HashMap<String, oneshot::Sender<DialOutcome>>) {
    for (_, reply) in jobs.drain() {
        let _ = reply.send(DialOutcome::Unknown);
    }
}

/// A `BACKGROUND_JOB` body: `+OK <uuid>` or `-ERR <CAUSE>`.
pub fn job_outcome(body: &str) -> DialOutcome {
    let body = body.trim();
    if body.starts_with("+OK") {
        return DialOutcome::Answered;
    }
    let cause = body.trim_start_matches("-ERR").trim().to_string();
    match cause.as_str() {
        "USER_BUSY" | "CALL_REJECTED" => DialOutcome::Busy,
        "NO_ANSWER" | "NO_USER_RESPONSE" | "ORIGINATOR_CANCEL" | "ALLOTTED_TIMEOUT" => {
            DialOutcome::NoAnswer
        }
        _ => DialOutcome::Failed {
            cause: if cause.is_empty() {
                "originate failed".into()
            } else {
                cause
            },
        },
    }
}

async fn handle_frame(
    frame: EslFrame,
    deps: &EslDeps,
    counters: &EslCounters,
    legs: &mut LegTracker,
    jobs: &mut HashMap<String, oneshot::Sender<DialOutcome>>,
) {
    if frame.content_type() == Some("command/reply") {
        // A bgapi acknowledgement (`+OK Job-UUID: ...`); a refusal names the job in Job-UUID.
        if let (Some(text), Some(job)) = (frame.reply_text(), frame.get("Job-UUID")) {
            if text.starts_with("-ERR") {
                if let Some(reply) = jobs.remove(job) {
                    let _ = reply.send(job_outcome(text));
                }
            }
        }
        return;
    }
    let event = match frame.event() {
        Ok(Some(e)) => e,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable ESL event dropped");
            return;
        }
    };
    counters.events_in.fetch_add(1, Ordering::Relaxed);
    if event.name() == Some("BACKGROUND_JOB") {
        if let Some(reply) = event.get("Job-UUID").and_then(|j| jobs.remove(j)) {
            let _ = reply.send(job_outcome(event.body.as_deref().unwrap_or("")));
        }
        return;
    }
    for e in legs.map(&event, deps) {
        counters.call_events_out.fetch_add(1, Ordering::Relaxed);
        if let Err(err) = deps.calls.submit(e).await {
            tracing::warn!(error = %err, "ESL call event not accepted");
        }
    }
}

/// Agent legs by UUID, so their hangups and bridges can be told from the caller's.
#[derive(Default)]
struct LegTracker {
    agent_legs: HashMap<String, (String, i64, bool)>,
}

impl LegTracker {
    fn call_event(event: &EslEvent, deps: &EslDeps, call_id: &str, kind: EventKind) -> CallEvent {
        let dialed_raw = event
            .get("variable_ringside_dialed")
            .or_else(|| event.get("CC-Queue"));
        let dialed = dialed_raw.map(|d| matching::party(&deps.settings, d, None));
        let caller_raw = event
            .get("CC-Member-CID-Number")
            .or_else(|| event.get("Caller-Caller-ID-Number"))
            .filter(|c| !c.is_empty());
        CallEvent {
            source: Source::Esl,
            call_id: call_id.to_string(),
            at_ms: now_ms(),
            direction: Direction::Inbound,
            caller: caller_raw.map(|c| matching::party(&deps.settings, c, dialed.as_ref())),
            dialed,
            kind,
        }
    }

    fn map(&mut self, e: &EslEvent, deps: &EslDeps) -> Vec<CallEvent> {
        if e.get("variable_ringside_task").is_some() {
            return Vec::new(); // a call ringside placed: followed by the dialer
        }
        let uuid = e.get("Unique-ID").unwrap_or("");
        let call_id = e
            .get("Channel-Call-UUID")
            .or_else(|| e.get("Other-Leg-Unique-ID"))
            .unwrap_or(uuid);
        let outbound_leg = e.get("Call-Direction") == Some("outbound");
        let agent_of_leg = || {
            e.get("Caller-Destination-Number")
                .or_else(|| e.get("variable_dialed_user"))
                .and_then(|ext| deps.directory.resolve(ext))
        };
        match (e.name(), e.get("Event-Subclass")) {
            (Some("CHANNEL_CREATE" | "CHANNEL_PROGRESS"), _) if outbound_leg => {
                match agent_of_leg() {
                    Some(agent) if call_id != uuid => {
                        self.agent_legs.entry(uuid.to_string()).or_insert((
                            call_id.to_string(),
                            agent,
                            false,
                        ));
                        vec![Self::call_event(
                            e,
                            deps,
                            call_id,
                            EventKind::Ringing {
                                audience: Audience::Agents(vec![AgentId(agent)]),
                            },
                        )]
                    }
                    _ => Vec::new(),
                }
            }
            (Some("CHANNEL_ANSWER" | "CHANNEL_BRIDGE"), _) => {
                let leg = if e.name() == Some("CHANNEL_BRIDGE") {
                    e.get("Other-Leg-Unique-ID").unwrap_or(uuid)
                } else {
                    uuid
                };
                match self.agent_legs.get_mut(leg) {
                    Some((call, agent, answered)) => {
                        *answered = true;
                        let (call, agent) = (call.clone(), *agent);
                        vec![Self::call_event(
                            e,
                            deps,
                            &call,
                            EventKind::Answered {
                                by: Some(AgentId(agent)),
                            },
                        )]
                    }
                    None => Vec::new(),
                }
            }
            (Some("CHANNEL_HANGUP_COMPLETE"), _) => {
                if let Some((call, agent, answered)) = self.agent_legs.remove(uuid) {
                    if !answered {
                        return vec![Self::call_event(
                            e,
                            deps,
                            &call,
                            EventKind::RingStopped {
                                agent: AgentId(agent),
                            },
                        )];
                    }
                    return Vec::new();
                }
                if !outbound_leg && call_id == uuid {
                    let cause = e.get("Hangup-Cause").map(String::from);
                    self.agent_legs.retain(|_, (call, _, _)| call != uuid);
                    return vec![Self::call_event(
                        e,
                        deps,
                        uuid,
                        EventKind::Hangup {
                            cause,
                            answered_elsewhere: false,
                        },
                    )];
                }
                Vec::new()
            }
            (Some("CUSTOM"), Some("callcenter::info")) => {
                let member = e.get("CC-Member-Session-UUID").unwrap_or(call_id);
                let agent = e
                    .get("CC-Agent")
                    .map(|a| a.split('@').next().unwrap_or(a))
                    .and_then(|a| deps.directory.resolve(a));
                let kind = match (e.get("CC-Action"), agent) {
                    (Some("agent-offering"), Some(a)) => EventKind::Ringing {
                        audience: Audience::Agents(vec![AgentId(a)]),
                    },
                    (Some("bridge-agent-start"), Some(a)) => EventKind::Answered {
                        by: Some(AgentId(a)),
                    },
                    (Some("bridge-agent-fail"), Some(a)) => {
                        EventKind::RingStopped { agent: AgentId(a) }
                    }
                    (Some("member-queue-end"), _) if e.get("CC-Cause") == Some("Cancel") => {
                        EventKind::Abandoned
                    }
                    _ => return Vec::new(),
                };
                vec![Self::call_event(e, deps, member, kind)]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_job_bodies_map_to_outcomes() {
        assert_eq!(job_outcome("+OK 7f4e-uuid\n"), DialOutcome::Answered);
        assert_eq!(job_outcome("-ERR USER_BUSY\n"), DialOutcome::Busy);
        assert_eq!(job_outcome("-ERR NO_ANSWER\n"), DialOutcome::NoAnswer);
        assert_eq!(
            job_outcome("-ERR NORMAL_TEMPORARY_FAILURE"),
            DialOutcome::Failed {
                cause: "NORMAL_TEMPORARY_FAILURE".into()
            }
        );
    }
}
