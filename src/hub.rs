//! The hub: the one owner of "who gets which message". It routes screen pops and call updates to
//! agent connections, keeps each agent's unacknowledged pops for replay after a reconnect, and
//! knows which agents are connected and ready.
//!
//! It is an actor: one task owns all routing state and everyone else talks to it through a bounded
//! command channel ([`Hub`] is the cheap handle). Every connection has its own bounded queue of
//! `console.queue_capacity` messages; when a queue is full the connection is judged too slow and
//! dropped (its socket closes, its unacknowledged pops wait for its return), so a slow or dead
//! console never holds anyone else up. Pops for one call and its updates may race (the pop's
//! content is looked up in the database while the update is not): the hub keeps each call's state
//! and settles the race itself, so a pop that arrives after its call was answered elsewhere or
//! ended is not shown to anyone it no longer concerns.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::call::{AgentId, Audience};
use crate::console::messages;
use crate::directory::Directory;

/// What a connection's writer task receives.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Text(Arc<str>),
    /// Close the socket with this code and reason (e.g. replaced, too slow).
    Close(u16, &'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    Ready,
    Away,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Ready => "ready",
            AgentStatus::Away => "away",
        }
    }
}

/// A registered console connection.
pub struct Connection {
    pub id: u64,
    pub rx: mpsc::Receiver<Outgoing>,
}

/// How the floor looks right now (for the wallboard and metrics).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FloorSnapshot {
    pub connections: usize,
    pub agents_connected: usize,
    pub agents_ready: usize,
    pub agents_away: usize,
    pub ready_agent_ids: Vec<i64>,
    /// Every connected agent, ready or away.
    pub connected_agent_ids: Vec<i64>,
    pub calls_tracked: usize,
}

/// Counters the hub keeps for metrics.
#[derive(Debug, Default)]
pub struct HubCounters {
    pub pops_sent: AtomicU64,
    pub updates_sent: AtomicU64,
    pub slow_disconnects: AtomicU64,
    pub replays: AtomicU64,
}

enum Command {
    Connect {
        agent: i64,
        reply: oneshot::Sender<Connection>,
    },
    Disconnect {
        agent: i64,
        conn: u64,
    },
    Ack {
        agent: i64,
        seq: u64,
    },
    Status {
        agent: i64,
        status: AgentStatus,
    },
    Pop {
        call_id: String,
        audience: Audience,
        body: Map<String, Value>,
        /// When the event behind this pop reached the call service (none for replayed events).
        received: Option<Instant>,
    },
    /// Replace the pop one agent holds for a call (after they picked another candidate).
    Repop {
        agent: i64,
        call_id: String,
        body: Map<String, Value>,
    },
    Answered {
        call_id: String,
        by: Option<AgentId>,
    },
    Withdraw {
        call_id: String,
        agent: AgentId,
    },
    Ended {
        call_id: String,
        outcome: String,
    },
    Direct {
        agent: i64,
        body: Value,
    },
    HoldsPop {
        agent: i64,
        call_id: String,
        reply: oneshot::Sender<bool>,
    },
    Snapshot {
        reply: oneshot::Sender<FloorSnapshot>,
    },
}

/// The handle everyone uses to talk to the hub.
#[derive(Clone)]
pub struct Hub {
    tx: mpsc::Sender<Command>,
    pub counters: Arc<HubCounters>,
    /// Bumped whenever a call or an agent's state on the floor changes (wallboards follow it).
    changes: watch::Receiver<u64>,
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    pub queue_capacity: usize,
    pub replay_window: Duration,
    /// Queue name → agent names.
    pub queues: HashMap<String, Vec<String>>,
}

impl Hub {
    /// Starts the hub task; it stops when `shutdown` is cancelled.
    pub fn start(
        config: HubConfig,
        directory: Arc<Directory>,
        metrics: Arc<crate::metrics::Metrics>,
        shutdown: CancellationToken,
    ) -> (Hub, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(8192);
        let counters = Arc::new(HubCounters::default());
        let (changed, changes) = watch::channel(0);
        let state = HubState {
            config,
            directory,
            agents: HashMap::new(),
            calls: HashMap::new(),
            next_conn: 1,
            counters: counters.clone(),
            changed,
            metrics,
        };
        let handle = tokio::spawn(state.run(rx, shutdown));
        (
            Hub {
                tx,
                counters,
                changes,
            },
            handle,
        )
    }

    async fn send(&self, command: Command) {
        // The hub only goes away at shutdown; a send then has nobody to reach and nothing to do.
        let _ = self.tx.send(command).await;
    }

    pub async fn connect(&self, agent: i64) -> Option<Connection> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Connect { agent, reply }).await;
        rx.await.ok()
    }

    pub async fn disconnect(&self, agent: i64, conn: u64) {
        self.send(Command::Disconnect { agent, conn }).await;
    }

    pub async fn ack(&self, agent: i64, seq: u64) {
        self.send(Command::Ack { agent, seq }).await;
    }

    pub async fn set_status(&self, agent: i64, status: AgentStatus) {
        self.send(Command::Status { agent, status }).await;
    }

    /// Sends a screen pop (the hub adds `seq`); `received` is when its event came in, for the
    /// event → pop latency.
    pub async fn pop(
        &self,
        call_id: String,
        audience: Audience,
        body: Map<String, Value>,
        received: Option<Instant>,
    ) {
        self.send(Command::Pop {
            call_id,
            audience,
            body,
            received,
        })
        .await;
    }

    pub async fn repop(&self, agent: i64, call_id: String, body: Map<String, Value>) {
        self.send(Command::Repop {
            agent,
            call_id,
            body,
        })
        .await;
    }

    pub async fn answered(&self, call_id: String, by: Option<AgentId>) {
        self.send(Command::Answered { call_id, by }).await;
    }

    pub async fn withdraw(&self, call_id: String, agent: AgentId) {
        self.send(Command::Withdraw { call_id, agent }).await;
    }

    pub async fn ended(&self, call_id: String, outcome: String) {
        self.send(Command::Ended { call_id, outcome }).await;
    }

    /// A message for every connection of one agent (not replayed).
    pub async fn direct(&self, agent: i64, body: Value) {
        self.send(Command::Direct { agent, body }).await;
    }

    /// Whether this agent was sent the pop of this call (guards what an agent may act on).
    pub async fn holds_pop(&self, agent: i64, call_id: &str) -> bool {
        let (reply, rx) = oneshot::channel();
        self.send(Command::HoldsPop {
            agent,
            call_id: call_id.to_string(),
            reply,
        })
        .await;
        rx.await.unwrap_or(false)
    }

    /// A receiver that sees a new value whenever the floor changes (calls, agents' states).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    pub async fn snapshot(&self) -> FloorSnapshot {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Snapshot { reply }).await;
        rx.await.unwrap_or_default()
    }
}

struct Unacked {
    seq: u64,
    call_id: String,
    text: Arc<str>,
    at: Instant,
}

struct AgentSlot {
    conns: HashMap<u64, mpsc::Sender<Outgoing>>,
    status: AgentStatus,
    next_seq: u64,
    unacked: VecDeque<Unacked>,
}

impl AgentSlot {
    fn new() -> Self {
        Self {
            conns: HashMap::new(),
            status: AgentStatus::Away,
            next_seq: 1,
            unacked: VecDeque::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RouteState {
    Ringing,
    Answered(Option<i64>),
    Ended(String),
}

struct CallRoute {
    /// Agents who were sent the pop.
    recipients: HashSet<i64>,
    state: RouteState,
    touched: Instant,
}

const MAX_UNACKED_PER_AGENT: usize = 200;
const ENDED_ROUTE_RETENTION: Duration = Duration::from_secs(600);

struct HubState {
    config: HubConfig,
    directory: Arc<Directory>,
    agents: HashMap<i64, AgentSlot>,
    calls: HashMap<String, CallRoute>,
    next_conn: u64,
    counters: Arc<HubCounters>,
    changed: watch::Sender<u64>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl HubState {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        let mut prune = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = prune.tick() => self.prune(),
                command = rx.recv() => match command {
                    Some(c) => self.handle(c),
                    None => break,
                },
            }
        }
        for slot in self.agents.values() {
            for conn in slot.conns.values() {
                let _ = conn.try_send(Outgoing::Close(1001, "server shutting down"));
            }
        }
    }

    fn handle(&mut self, command: Command) {
        let floor_changes = !matches!(
            command,
            Command::Ack { .. }
                | Command::Direct { .. }
                | Command::HoldsPop { .. }
                | Command::Snapshot { .. }
        );
        match command {
            Command::Connect { agent, reply } => {
                let (tx, rx) = mpsc::channel(self.config.queue_capacity);
                let id = self.next_conn;
                self.next_conn += 1;
                let slot = self.agents.entry(agent).or_insert_with(AgentSlot::new);
                slot.conns.insert(id, tx);
                slot.status = AgentStatus::Ready;
                if reply.send(Connection { id, rx }).is_ok() {
                    self.replay(agent, id);
                } else if let Some(slot) = self.agents.get_mut(&agent) {
                    slot.conns.remove(&id);
                }
            }
            Command::Disconnect { agent, conn } => {
                if let Some(slot) = self.agents.get_mut(&agent) {
                    slot.conns.remove(&conn);
                }
            }
            Command::Ack { agent, seq } => {
                if let Some(slot) = self.agents.get_mut(&agent) {
                    slot.unacked.retain(|u| u.seq != seq);
                }
            }
            Command::Status { agent, status } => {
                self.agents
                    .entry(agent)
                    .or_insert_with(AgentSlot::new)
                    .status = status;
            }
            Command::Pop {
                call_id,
                audience,
                body,
                received,
            } => self.pop(call_id, audience, body, received),
            Command::Repop {
                agent,
                call_id,
                body,
            } => {
                if let Some(slot) = self.agents.get_mut(&agent) {
                    slot.unacked.retain(|u| u.call_id != call_id);
                }
                self.send_pop(agent, &call_id, body);
            }
            Command::Answered { call_id, by } => self.answered(call_id, by.map(|a| a.0)),
            Command::Withdraw { call_id, agent } => {
                let text = messages::pop_withdrawn(&call_id);
                if let Some(route) = self.calls.get_mut(&call_id) {
                    route.recipients.remove(&agent.0);
                    route.touched = Instant::now();
                }
                if let Some(slot) = self.agents.get_mut(&agent.0) {
                    slot.unacked.retain(|u| u.call_id != call_id);
                }
                self.send_text(agent.0, text);
            }
            Command::Ended { call_id, outcome } => self.ended(call_id, outcome),
            Command::Direct { agent, body } => {
                let text: Arc<str> = body.to_string().into();
                self.send_text(agent, text);
            }
            Command::HoldsPop {
                agent,
                call_id,
                reply,
            } => {
                let holds = self
                    .calls
                    .get(&call_id)
                    .is_some_and(|r| r.recipients.contains(&agent));
                let _ = reply.send(holds);
            }
            Command::Snapshot { reply } => {
                let _ = reply.send(self.snapshot());
            }
        }
        if floor_changes {
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn route(&mut self, call_id: &str) -> &mut CallRoute {
        self.calls
            .entry(call_id.to_string())
            .or_insert_with(|| CallRoute {
                recipients: HashSet::new(),
                state: RouteState::Ringing,
                touched: Instant::now(),
            })
    }

    /// Ready, connected agents of a queue (all of them when the queue is unknown or not named).
    fn queue_members(&self, queue: Option<&str>) -> Vec<i64> {
        let named: Option<Vec<i64>> = queue.and_then(|q| self.config.queues.get(q)).map(|names| {
            names
                .iter()
                .filter_map(|n| self.directory.id_by_name(n))
                .collect()
        });
        let mut ids: Vec<i64> = self
            .agents
            .iter()
            .filter(|(id, slot)| {
                slot.status == AgentStatus::Ready
                    && !slot.conns.is_empty()
                    && named.as_ref().is_none_or(|members| members.contains(id))
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    fn pop(
        &mut self,
        call_id: String,
        audience: Audience,
        body: Map<String, Value>,
        received: Option<Instant>,
    ) {
        let targets: Vec<i64> = match &audience {
            Audience::Agents(agents) => agents.iter().map(|a| a.0).collect(),
            Audience::Queue(q) => self.queue_members(q.as_deref()),
        };
        let route = self.route(&call_id);
        route.touched = Instant::now();
        let state = route.state.clone();
        let fresh: Vec<i64> = targets
            .into_iter()
            .filter(|a| !route.recipients.contains(a))
            .collect();
        for agent in fresh {
            match &state {
                RouteState::Ringing => {}
                // Answered before its pop was ready: only the one who answered still needs it.
                RouteState::Answered(by) if *by == Some(agent) => {}
                _ => continue,
            }
            self.send_pop(agent, &call_id, body.clone());
            let queued = self.agents.get(&agent).is_some_and(|s| !s.conns.is_empty());
            if let (Some(received), true) = (received, queued) {
                self.metrics.pop_queued(received);
            }
            if let RouteState::Answered(Some(by)) = state {
                let text = messages::call_update(
                    &call_id,
                    "answered",
                    self.directory.name_of(by).as_deref(),
                    None,
                );
                self.send_text(agent, text);
            }
        }
    }

    fn send_pop(&mut self, agent: i64, call_id: &str, mut body: Map<String, Value>) {
        let route = self.route(call_id);
        route.recipients.insert(agent);
        let slot = self.agents.entry(agent).or_insert_with(AgentSlot::new);
        let seq = slot.next_seq;
        slot.next_seq += 1;
        body.insert("seq".into(), Value::from(seq));
        let text: Arc<str> = Value::Object(body).to_string().into();
        slot.unacked.push_back(Unacked {
            seq,
            call_id: call_id.to_string(),
            text: text.clone(),
            at: Instant::now(),
        });
        while slot.unacked.len() > MAX_UNACKED_PER_AGENT {
            slot.unacked.pop_front();
        }
        self.counters.pops_sent.fetch_add(1, Ordering::Relaxed);
        self.send_text(agent, text);
    }

    fn answered(&mut self, call_id: String, by: Option<i64>) {
        let by_name = by.and_then(|id| self.directory.name_of(id));
        let route = self.route(&call_id);
        route.state = RouteState::Answered(by);
        route.touched = Instant::now();
        let recipients: Vec<i64> = route.recipients.iter().copied().collect();
        for agent in recipients {
            let state = if Some(agent) == by {
                "answered"
            } else {
                "answered_elsewhere"
            };
            let text = messages::call_update(&call_id, state, by_name.as_deref(), None);
            self.counters.updates_sent.fetch_add(1, Ordering::Relaxed);
            self.send_text(agent, text);
            if Some(agent) != by {
                if let Some(slot) = self.agents.get_mut(&agent) {
                    slot.unacked.retain(|u| u.call_id != call_id);
                }
            }
        }
    }

    fn ended(&mut self, call_id: String, outcome: String) {
        let route = self.route(&call_id);
        let answered_by = match &route.state {
            RouteState::Answered(by) => *by,
            _ => None,
        };
        let already_withdrawn = matches!(route.state, RouteState::Answered(_));
        route.state = RouteState::Ended(outcome.clone());
        route.touched = Instant::now();
        let recipients: Vec<i64> = route.recipients.iter().copied().collect();
        for agent in recipients {
            // Agents already told "answered elsewhere" have nothing more to hear about this call.
            if already_withdrawn && Some(agent) != answered_by {
                continue;
            }
            let text = messages::call_update(&call_id, "ended", None, Some(&outcome));
            self.counters.updates_sent.fetch_add(1, Ordering::Relaxed);
            self.send_text(agent, text);
        }
    }

    /// Puts a message on every connection of an agent; a full queue drops that connection.
    fn send_text(&mut self, agent: i64, text: Arc<str>) {
        let Some(slot) = self.agents.get_mut(&agent) else {
            return;
        };
        let mut slow = Vec::new();
        for (id, conn) in &slot.conns {
            match conn.try_send(Outgoing::Text(text.clone())) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => slow.push(*id),
                Err(mpsc::error::TrySendError::Closed(_)) => slow.push(*id),
            }
        }
        for id in slow {
            if let Some(conn) = slot.conns.remove(&id) {
                // Dropping the sender ends the connection's writer, which closes the socket.
                let _ = conn.try_send(Outgoing::Close(1013, "too slow"));
                self.counters
                    .slow_disconnects
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    agent,
                    conn = id,
                    "console too slow; disconnected (its pops wait for its return)"
                );
            }
        }
    }

    /// Sends a (re)connected console the pops its agent has not acknowledged, then where those calls stand.
    fn replay(&mut self, agent: i64, conn: u64) {
        let window = self.config.replay_window;
        let Some(slot) = self.agents.get_mut(&agent) else {
            return;
        };
        slot.unacked.retain(|u| u.at.elapsed() <= window);
        let pending: Vec<(String, Arc<str>)> = slot
            .unacked
            .iter()
            .map(|u| (u.call_id.clone(), u.text.clone()))
            .collect();
        let Some(tx) = slot.conns.get(&conn).cloned() else {
            return;
        };
        for (call_id, text) in pending {
            self.counters.replays.fetch_add(1, Ordering::Relaxed);
            let _ = tx.try_send(Outgoing::Text(text));
            let follow_up = match self.calls.get(&call_id).map(|r| &r.state) {
                Some(RouteState::Answered(by)) => {
                    let state = if *by == Some(agent) {
                        "answered"
                    } else {
                        "answered_elsewhere"
                    };
                    Some(messages::call_update(
                        &call_id,
                        state,
                        by.and_then(|b| self.directory.name_of(b)).as_deref(),
                        None,
                    ))
                }
                Some(RouteState::Ended(outcome)) => Some(messages::call_update(
                    &call_id,
                    "ended",
                    None,
                    Some(outcome),
                )),
                _ => None,
            };
            if let Some(text) = follow_up {
                let _ = tx.try_send(Outgoing::Text(text));
            }
        }
    }

    fn prune(&mut self) {
        let window = self.config.replay_window;
        self.calls.retain(|_, r| {
            !matches!(r.state, RouteState::Ended(_)) || r.touched.elapsed() < ENDED_ROUTE_RETENTION
        });
        // Live routes with no news for a day are leftovers of a lost hangup.
        self.calls
            .retain(|_, r| r.touched.elapsed() < Duration::from_secs(86_400));
        self.agents.retain(|_, slot| {
            slot.unacked.retain(|u| u.at.elapsed() <= window);
            !slot.conns.is_empty() || !slot.unacked.is_empty()
        });
    }

    fn snapshot(&self) -> FloorSnapshot {
        let connected: Vec<(&i64, &AgentSlot)> = self
            .agents
            .iter()
            .filter(|(_, s)| !s.conns.is_empty())
            .collect();
        let mut ready: Vec<i64> = connected
            .iter()
            .filter(|(_, s)| s.status == AgentStatus::Ready)
            .map(|(id, _)| **id)
            .collect();
        ready.sort_unstable();
        let mut connected_ids: Vec<i64> = connected.iter().map(|(id, _)| **id).collect();
        connected_ids.sort_unstable();
        FloorSnapshot {
            connections: connected.iter().map(|(_, s)| s.conns.len()).sum(),
            agents_connected: connected.len(),
            agents_ready: ready.len(),
            agents_away: connected.len() - ready.len(),
            ready_agent_ids: ready,
            connected_agent_ids: connected_ids,
            calls_tracked: self.calls.len(),
        }
    }
}
