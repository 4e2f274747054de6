//! Asterisk AMI client: one per `[[ami.servers]]`. Logs in (plain or MD5 challenge), turns
//! channel, dial, queue and bridge events into call events for the call service, keeps the
//! connection alive with `Ping`, reconnects with exponential backoff and jitter (a refused login
//! is logged clearly and retried slowly, never in a tight loop), resynchronises with
//! `CoreShowChannels` (channels ringing or up) and `QueueStatus` (callers waiting in queues)
//! after every reconnect, and places outbound calls with `Originate`
//! (`Async: true`), following `OriginateResponse` by `ActionID`.
//!
//! Channels of one call are tied by `Linkedid` (the call id given to the call model); the agent
//! behind a ringing interface (`PJSIP/1001-0000002a`, `Local/1001@from-queue/n`) is found by its
//! extension in the directory.

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

use crate::call::{AgentId, Audience, CallEvent, Direction, EventKind, Source};
use crate::calls::Calls;
use crate::directory::Directory;
use crate::matching;
use crate::outbound::dialer::{DialOutcome, DialRequest, Dialer};
use crate::protocol::ami::{self, Action, AmiLimits, Decoder, Frame, Message};
use crate::settings::{AmiServer, Settings};
use crate::storage::now_ms;
use crate::telemetry::Pii;

/// The AMI events ringside turns into call events (the guide lists the same; a test checks it).
pub const MAPPED_EVENTS: &[&str] = &[
    "Newchannel",
    "DialBegin",
    "DialEnd",
    "AgentCalled",
    "AgentRingNoAnswer",
    "AgentConnect",
    "BridgeEnter",
    "QueueCallerJoin",
    "QueueCallerAbandon",
    "Hangup",
    "OriginateResponse",
    "CoreShowChannel",
    "QueueEntry",
];

/// Channel variables every `Originate` carries, so the dialplan and CDRs can tie a call to its task.
pub const ORIGINATE_VARIABLES: &[&str] = &["RINGSIDE_TASK", "RINGSIDE_ATTEMPT"];

#[derive(Clone)]
pub struct AmiDeps {
    pub calls: Calls,
    pub settings: Arc<Settings>,
    pub directory: Arc<Directory>,
}

#[derive(Debug, Default)]
pub struct AmiCounters {
    /// Logged in and subscribed right now.
    pub connected: std::sync::atomic::AtomicBool,
    pub events_in: AtomicU64,
    pub call_events_out: AtomicU64,
    pub reconnects: AtomicU64,
    pub login_failures: AtomicU64,
    pub originates: AtomicU64,
    pub skipped_lines: AtomicU64,
}

enum Command {
    Originate {
        request: DialRequest,
        reply: oneshot::Sender<DialOutcome>,
    },
}

/// A running AMI client; also the AMI dialer.
#[derive(Clone)]
pub struct AmiClient {
    name: String,
    tx: mpsc::Sender<Command>,
    pub counters: Arc<AmiCounters>,
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("login refused: {0}")]
    LoginRefused(String),
    #[error("connection lost: {0}")]
    Lost(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("no answer to Ping")]
    PingTimeout,
}

impl AmiClient {
    /// Starts the client task; it runs until `shutdown`.
    pub fn start(
        server: AmiServer,
        deps: AmiDeps,
        shutdown: CancellationToken,
    ) -> (AmiClient, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(256);
        let counters = Arc::new(AmiCounters::default());
        let name = format!("ami:{}:{}", server.host, server.port);
        let client = AmiClient {
            name: name.clone(),
            tx,
            counters: counters.clone(),
        };
        let handle = tokio::spawn(run(server, deps, rx, counters, shutdown));
        (client, handle)
    }
}

impl Dialer for AmiClient {
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
                    cause: "AMI client stopped".into(),
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
    server: AmiServer,
    deps: AmiDeps,
    mut rx: mpsc::Receiver<Command>,
    counters: Arc<AmiCounters>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_secs(1);
    let mut calls = CallTracker::default();
    loop {
        let started = Instant::now();
        counters.connected.store(false, Ordering::Relaxed);
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = session(&server, &deps, &mut rx, &counters, &mut calls, &shutdown) => r,
        };
        counters.connected.store(false, Ordering::Relaxed);
        match result {
            Ok(()) => return,
            Err(SessionError::LoginRefused(m)) => {
                counters.login_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(server = %format!("{}:{}", server.host, server.port), user = %server.username, reason = %m, "AMI login refused: check ami.servers username/secret and manager.conf");
                backoff = backoff.max(Duration::from_secs(10));
            }
            Err(e) => {
                tracing::warn!(server = %format!("{}:{}", server.host, server.port), error = %e, "AMI connection ended")
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        counters.reconnects.fetch_add(1, Ordering::Relaxed);
        let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 2);
        let wait = backoff + Duration::from_millis(jitter);
        // Originates asked for while disconnected fail now rather than hang.
        while let Ok(Command::Originate { reply, .. }) = rx.try_recv() {
            let _ = reply.send(DialOutcome::Failed {
                cause: "PBX not connected".into(),
            });
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

struct Conn {
    stream: TcpStream,
    decoder: Decoder,
    buf: Vec<u8>,
    next_id: u64,
}

impl Conn {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("rs-{prefix}-{}", self.next_id)
    }

    async fn send(&mut self, action: &Action) -> Result<(), SessionError> {
        let text = action
            .encode()
            .map_err(|e| SessionError::Protocol(e.to_string()))?;
        self.stream
            .write_all(text.as_bytes())
            .await
            .map_err(|e| SessionError::Lost(e.to_string()))
    }

    /// The next frame, reading as needed.
    async fn frame(&mut self) -> Result<Frame, SessionError> {
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
                let detail = match self.decoder.finish() {
                    Err(e) => e.to_string(),
                    Ok(()) => "closed by the PBX".into(),
                };
                return Err(SessionError::Lost(detail));
            }
            self.decoder.feed(&self.buf[..n]);
        }
    }

    /// Waits for the response to `action_id`, handing events that arrive meanwhile to `on_event`.
    async fn response(
        &mut self,
        action_id: &str,
        mut on_event: impl FnMut(Message),
    ) -> Result<Message, SessionError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let frame = tokio::time::timeout_at(deadline, self.frame())
                .await
                .map_err(|_| SessionError::Protocol(format!("no response to {action_id}")))??;
            if let Frame::Message(m) = frame {
                if m.response().is_some() && m.action_id() == Some(action_id) {
                    return Ok(m);
                }
                on_event(m);
            }
        }
    }
}

async fn session(
    server: &AmiServer,
    deps: &AmiDeps,
    rx: &mut mpsc::Receiver<Command>,
    counters: &AmiCounters,
    calls: &mut CallTracker,
    shutdown: &CancellationToken,
) -> Result<(), SessionError> {
    let addr = format!("{}:{}", server.host, server.port);
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&addr))
        .await
        .map_err(|_| SessionError::Connect(format!("{addr}: timed out")))?
        .map_err(|e| SessionError::Connect(format!("{addr}: {e}")))?;
    let mut conn = Conn {
        stream,
        decoder: Decoder::new(AmiLimits::default()),
        buf: vec![0u8; 16 * 1024],
        next_id: 0,
    };
    match tokio::time::timeout(Duration::from_secs(10), conn.frame()).await {
        Ok(Ok(Frame::Banner(b))) => tracing::info!(server = %addr, banner = %b, "AMI connected"),
        Ok(Ok(Frame::Message(_))) => return Err(SessionError::Protocol("no banner".into())),
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(SessionError::Protocol("no banner within 10 s".into())),
    }
    let mut early = Vec::new();
    if server.md5 {
        let id = conn.id("challenge");
        conn.send(&ami::challenge(&id)).await?;
        let r = conn.response(&id, |m| early.push(m)).await?;
        let challenge = r
            .get("Challenge")
            .filter(|_| r.response() == Some("Success"))
            .ok_or_else(|| {
                SessionError::LoginRefused(
                    r.get("Message").unwrap_or("challenge refused").to_string(),
                )
            })?;
        let key = ami::md5_key(challenge, &server.secret);
        let id = conn.id("login");
        conn.send(&ami::login_md5(&id, &server.username, &key))
            .await?;
        check_login(conn.response(&id, |m| early.push(m)).await?)?;
    } else {
        let id = conn.id("login");
        conn.send(&ami::login(&id, &server.username, &server.secret))
            .await?;
        check_login(conn.response(&id, |m| early.push(m)).await?)?;
    }
    tracing::info!(server = %addr, "AMI logged in");
    counters.connected.store(true, Ordering::Relaxed);
    let id = conn.id("events");
    conn.send(&ami::events(&id, "call,agent")).await?;
    conn.response(&id, |m| early.push(m)).await?;
    // Resynchronise: what is ringing or up right now (after a reconnect the model may have missed it).
    let id = conn.id("resync");
    conn.send(&ami::core_show_channels(&id)).await?;
    let id = conn.id("resync");
    conn.send(&ami::queue_status(&id)).await?;
    for m in early {
        handle_message(m, deps, counters, calls, &mut HashMap::new()).await;
    }

    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    ping.tick().await;
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let id = conn.id("logoff");
                let _ = conn.send(&ami::logoff(&id)).await;
                fail_pending(&mut pending);
                return Ok(());
            }
            frame = conn.frame() => {
                let frame = match frame {
                    Ok(f) => f,
                    Err(e) => {
                        fail_pending(&mut pending);
                        return Err(e);
                    }
                };
                last_heard = Instant::now();
                counters.skipped_lines.store(conn.decoder.skipped_lines, Ordering::Relaxed);
                if let Frame::Message(m) = frame {
                    handle_message(m, deps, counters, calls, &mut pending).await;
                }
            }
            command = rx.recv() => {
                let Some(Command::Originate { request, reply }) = command else { continue };
                let id = format!("rs-originate-{}", request.attempt_id);
                let channel_target = request.agent_extension.clone().unwrap_or_else(|| request.number_e164.clone());
                let channel = server.originate_channel.replace("{number}", &channel_target);
                let action = ami::originate(
                    &id,
                    &channel,
                    &server.originate_context,
                    &request.number_e164,
                    request.caller_id.as_deref(),
                    u64::from(request.ring_timeout_secs) * 1000,
                    &[
                        (ORIGINATE_VARIABLES[0], request.task_id.to_string()),
                        (ORIGINATE_VARIABLES[1], request.attempt_id.to_string()),
                    ],
                );
                counters.originates.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = conn.send(&action).await {
                    let _ = reply.send(DialOutcome::Unknown);
                    fail_pending(&mut pending);
                    return Err(e);
                }
                tracing::info!(task = request.task_id, number = %Pii(&request.number_e164), "AMI originate sent");
                pending.insert(id, Pending { reply, queued: false });
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > Duration::from_secs(50) {
                    fail_pending(&mut pending);
                    return Err(SessionError::PingTimeout);
                }
                let id = conn.id("ping");
                conn.send(&ami::ping(&id)).await?;
            }
        }
    }
}

fn check_login(r: Message) -> Result<(), SessionError> {
    if r.response()
        .is_some_and(|s| s.eq_ignore_ascii_case("Success"))
    {
        Ok(())
    } else {
        Err(SessionError::LoginRefused(
            r.get("Message").unwrap_or("login refused").to_string(),
        ))
    }
}

struct Pending {
    reply: oneshot::Sender<DialOutcome>,
    queued: bool,
}

/// The connection is gone: nobody can tell how these calls went.
fn fail_pending(pending: &mut HashMap<String, Pending>) {
    for (_, p) in pending.drain() {
        let _ = p.reply.send(DialOutcome::Unknown);
    }
}

/// `OriginateResponse` `Reason` codes (Asterisk's `enum ast_control_frame_type` as the manager reports them).
fn originate_outcome(m: &Message) -> DialOutcome {
    if m.response()
        .is_some_and(|r| r.eq_ignore_ascii_case("Success"))
    {
        return DialOutcome::Answered;
    }
    match m.get("Reason").and_then(|r| r.trim().parse::<i32>().ok()) {
        Some(4) => DialOutcome::Answered,
        Some(5) => DialOutcome::Busy,
        Some(3) | Some(1) => DialOutcome::NoAnswer,
        Some(8) => DialOutcome::Failed {
            cause: "congestion".into(),
        },
        other => DialOutcome::Failed {
            cause: format!(
                "originate failed (reason {})",
                other.map(|r| r.to_string()).unwrap_or_else(|| "?".into())
            ),
        },
    }
}

async fn handle_message(
    m: Message,
    deps: &AmiDeps,
    counters: &AmiCounters,
    calls: &mut CallTracker,
    pending: &mut HashMap<String, Pending>,
) {
    // OriginateResponse carries both `Event:` and `Response:`: events are told apart by `Event`.
    if m.event().is_none() && m.response().is_some() {
        // The immediate answer to an Originate: queued, or refused outright.
        if let Some(id) = m.action_id() {
            if let Some(p) = pending.get_mut(id) {
                if m.response()
                    .is_some_and(|r| r.eq_ignore_ascii_case("Success"))
                {
                    p.queued = true;
                } else if let Some(p) = pending.remove(id) {
                    let cause = m.get("Message").unwrap_or("originate refused").to_string();
                    let _ = p.reply.send(DialOutcome::Failed { cause });
                }
            }
        }
        return;
    }
    counters.events_in.fetch_add(1, Ordering::Relaxed);
    if m.event() == Some("OriginateResponse") {
        if let Some(uid) = m.get("Uniqueid") {
            calls.ours.insert(uid.to_string());
        }
        if let Some(p) = m.action_id().and_then(|id| pending.remove(id)) {
            let _ = p.reply.send(originate_outcome(&m));
        }
        return;
    }
    for event in calls.map(&m, deps) {
        counters.call_events_out.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = deps.calls.submit(event).await {
            tracing::warn!(error = %e, "AMI call event not accepted");
        }
    }
}

/// The extension behind a channel or interface name: `PJSIP/1001-0000002a` → `1001`,
/// `Local/1001@from-queue/n` → `1001`, `SIP/1001` → `1001`.
pub fn extension_of(channel: &str) -> Option<String> {
    let rest = channel.split_once('/').map(|(_, r)| r).unwrap_or(channel);
    let rest = rest.split(['@', '/']).next().unwrap_or(rest);
    // A channel's unique suffix is `-` and 8 hex digits (or `;1`/`;2` for Local).
    let rest = match rest.rsplit_once('-') {
        Some((base, suffix))
            if suffix.len() >= 6 && suffix.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            base
        }
        _ => rest,
    };
    let rest = rest.split(';').next().unwrap_or(rest);
    (!rest.is_empty()).then(|| rest.to_string())
}

#[derive(Default)]
struct CallInfo {
    caller: Option<String>,
    dialed: Option<String>,
}

/// What the client remembers between events: calls by `Linkedid`, agent channels by `Uniqueid`.
#[derive(Default)]
struct CallTracker {
    calls: HashMap<String, CallInfo>,
    agent_channels: HashMap<String, (String, i64)>,
    /// Calls ringside originated itself (outbound, followed by the dialer): not inbound calls.
    ours: std::collections::HashSet<String>,
}

const MAX_TRACKED: usize = 100_000;

impl CallTracker {
    fn event(&self, m: &Message, linked: &str, deps: &AmiDeps, kind: EventKind) -> CallEvent {
        let info = self.calls.get(linked);
        let caller_raw = m
            .get("CallerIDNum")
            .filter(|c| !c.is_empty() && *c != "<unknown>")
            .map(String::from)
            .or_else(|| info.and_then(|i| i.caller.clone()));
        let dialed_raw = info.and_then(|i| i.dialed.clone());
        let dialed = dialed_raw
            .as_deref()
            .map(|d| matching::party(&deps.settings, d, None));
        let caller = caller_raw
            .as_deref()
            .map(|c| matching::party(&deps.settings, c, dialed.as_ref()));
        CallEvent {
            source: Source::Ami,
            call_id: linked.to_string(),
            at_ms: now_ms(),
            direction: Direction::Inbound,
            caller,
            dialed,
            kind,
        }
    }

    fn agent(&self, deps: &AmiDeps, channel: &str) -> Option<i64> {
        extension_of(channel).and_then(|ext| deps.directory.resolve(&ext))
    }

    fn map(&mut self, m: &Message, deps: &AmiDeps) -> Vec<CallEvent> {
        let Some(name) = m.event() else {
            return Vec::new();
        };
        let uniqueid = m.get("Uniqueid").unwrap_or("").to_string();
        let linked = m
            .get("Linkedid")
            .filter(|l| !l.is_empty())
            .unwrap_or(&uniqueid)
            .to_string();
        if linked.is_empty() || self.ours.contains(&linked) {
            return Vec::new();
        }
        if self.calls.len() > MAX_TRACKED || self.agent_channels.len() > MAX_TRACKED {
            self.calls.clear();
            self.agent_channels.clear();
        }
        match name {
            "Newchannel" => {
                if uniqueid == linked {
                    let caller = m
                        .get("CallerIDNum")
                        .filter(|c| !c.is_empty() && *c != "<unknown>")
                        .map(String::from);
                    let dialed = m
                        .get("Exten")
                        .filter(|e| !e.is_empty() && *e != "s")
                        .map(String::from);
                    self.calls.insert(linked, CallInfo { caller, dialed });
                }
                Vec::new()
            }
            "DialBegin" | "AgentCalled" => {
                let dest = m
                    .get("DestChannel")
                    .or_else(|| m.get("Interface"))
                    .unwrap_or("");
                let agent = m
                    .get("Interface")
                    .and_then(|i| self.agent(deps, i))
                    .or_else(|| self.agent(deps, dest));
                if let Some(queue) = m.get("Queue") {
                    self.calls
                        .entry(linked.clone())
                        .or_default()
                        .dialed
                        .get_or_insert_with(|| queue.to_string());
                }
                if let (Some(a), Some(dest_uid)) = (agent, m.get("DestUniqueid")) {
                    self.agent_channels
                        .insert(dest_uid.to_string(), (linked.clone(), a));
                }
                let audience = Audience::Agents(agent.map(AgentId).into_iter().collect());
                vec![self.event(m, &linked, deps, EventKind::Ringing { audience })]
            }
            "DialEnd" => {
                let Some(agent) = m.get("DestChannel").and_then(|d| self.agent(deps, d)) else {
                    return Vec::new();
                };
                let kind = if m.get("DialStatus") == Some("ANSWER") {
                    EventKind::Answered {
                        by: Some(AgentId(agent)),
                    }
                } else {
                    EventKind::RingStopped {
                        agent: AgentId(agent),
                    }
                };
                vec![self.event(m, &linked, deps, kind)]
            }
            "AgentRingNoAnswer" => {
                let Some(agent) = m
                    .get("Interface")
                    .or_else(|| m.get("DestChannel"))
                    .and_then(|d| self.agent(deps, d))
                else {
                    return Vec::new();
                };
                vec![self.event(
                    m,
                    &linked,
                    deps,
                    EventKind::RingStopped {
                        agent: AgentId(agent),
                    },
                )]
            }
            "AgentConnect" => {
                let Some(agent) = m
                    .get("Interface")
                    .or_else(|| m.get("DestChannel"))
                    .and_then(|d| self.agent(deps, d))
                else {
                    return Vec::new();
                };
                vec![self.event(
                    m,
                    &linked,
                    deps,
                    EventKind::Answered {
                        by: Some(AgentId(agent)),
                    },
                )]
            }
            "BridgeEnter" => match self.agent_channels.get(&uniqueid) {
                Some((call, agent)) => {
                    let (call, agent) = (call.clone(), *agent);
                    vec![self.event(
                        m,
                        &call,
                        deps,
                        EventKind::Answered {
                            by: Some(AgentId(agent)),
                        },
                    )]
                }
                None => Vec::new(),
            },
            "QueueCallerJoin" | "QueueEntry" => {
                // A caller waiting in a queue (live, or listed by the `QueueStatus` resync): the
                // call is known, with its caller and queue, before any agent's phone rings; no
                // one is popped until `AgentCalled` names a phone.
                let caller = m
                    .get("CallerIDNum")
                    .filter(|c| !c.is_empty() && *c != "<unknown>")
                    .map(String::from);
                let info = self.calls.entry(linked.clone()).or_default();
                if info.caller.is_none() {
                    info.caller = caller;
                }
                if let Some(queue) = m.get("Queue").filter(|q| !q.is_empty()) {
                    info.dialed.get_or_insert_with(|| queue.to_string());
                }
                vec![self.event(
                    m,
                    &linked,
                    deps,
                    EventKind::Ringing {
                        audience: Audience::Agents(Vec::new()),
                    },
                )]
            }
            "QueueCallerAbandon" => vec![self.event(m, &linked, deps, EventKind::Abandoned)],
            "Hangup" => {
                self.agent_channels.remove(&uniqueid);
                if uniqueid == linked {
                    let cause = m
                        .get("Cause-txt")
                        .or_else(|| m.get("Cause"))
                        .map(String::from);
                    let event = self.event(
                        m,
                        &linked,
                        deps,
                        EventKind::Hangup {
                            cause,
                            answered_elsewhere: false,
                        },
                    );
                    self.calls.remove(&linked);
                    self.agent_channels.retain(|_, (call, _)| *call != linked);
                    vec![event]
                } else {
                    Vec::new()
                }
            }
            "CoreShowChannel" => {
                // Resync: an agent's channel ringing or up is a call in progress.
                let Some(agent) = m.get("Channel").and_then(|c| self.agent(deps, c)) else {
                    if uniqueid == linked {
                        let caller = m
                            .get("CallerIDNum")
                            .filter(|c| !c.is_empty() && *c != "<unknown>")
                            .map(String::from);
                        self.calls.entry(linked).or_default().caller = caller;
                    }
                    return Vec::new();
                };
                if uniqueid != linked {
                    self.agent_channels
                        .insert(uniqueid.clone(), (linked.clone(), agent));
                    let info = self.calls.entry(linked.clone()).or_default();
                    if info.caller.is_none() {
                        info.caller = m
                            .get("ConnectedLineNum")
                            .filter(|c| !c.is_empty() && *c != "<unknown>")
                            .map(String::from);
                    }
                }
                let mut out = vec![self.event(
                    m,
                    &linked,
                    deps,
                    EventKind::Ringing {
                        audience: Audience::Agents(vec![AgentId(agent)]),
                    },
                )];
                if m.get("ChannelStateDesc") == Some("Up") {
                    out.push(self.event(
                        m,
                        &linked,
                        deps,
                        EventKind::Answered {
                            by: Some(AgentId(agent)),
                        },
                    ));
                }
                // The resync rows carry the agent's own number as CallerIDNum: use the caller's.
                for e in &mut out {
                    if let Some(c) = self.calls.get(&linked).and_then(|i| i.caller.clone()) {
                        e.caller = Some(matching::party(&deps.settings, &c, None));
                    }
                }
                out
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_read_from_channel_and_interface_names() {
        assert_eq!(extension_of("PJSIP/1001-0000002a").as_deref(), Some("1001"));
        assert_eq!(extension_of("SIP/1002-00000003").as_deref(), Some("1002"));
        assert_eq!(
            extension_of("Local/1003@from-queue/n").as_deref(),
            Some("1003")
        );
        assert_eq!(
            extension_of("Local/1004@from-queue-00000001;1").as_deref(),
            Some("1004")
        );
        assert_eq!(extension_of("PJSIP/1005").as_deref(), Some("1005"));
        assert_eq!(
            extension_of("PJSIP/trunk-provider-0000000b").as_deref(),
            Some("trunk-provider")
        );
    }

    #[test]
    fn originate_reasons_map_to_outcomes() {
        let m = |resp: &str, reason: &str| {
            Message::new(vec![
                ("Event".into(), "OriginateResponse".into()),
                ("Response".into(), resp.into()),
                ("Reason".into(), reason.into()),
            ])
        };
        assert_eq!(originate_outcome(&m("Success", "4")), DialOutcome::Answered);
        assert_eq!(originate_outcome(&m("Failure", "5")), DialOutcome::Busy);
        assert_eq!(originate_outcome(&m("Failure", "3")), DialOutcome::NoAnswer);
        assert!(matches!(
            originate_outcome(&m("Failure", "0")),
            DialOutcome::Failed { .. }
        ));
        assert!(matches!(
            originate_outcome(&m("Failure", "8")),
            DialOutcome::Failed { .. }
        ));
    }
}
