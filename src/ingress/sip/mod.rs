//! The SIP ingress: ringside as a SIP endpoint the PBX talks to, on UDP and TCP at `sip.listen`.
//!
//! A PBX can tell ringside about calls without any integration work by forking inbound INVITEs to
//! it as one more phone (monitor mode), by asking it where to send a call (redirect mode), or by
//! reporting its phones' dialog state in NOTIFYs (RFC 4235). This module puts the wire layer
//! (`crate::protocol::sip`) on sockets and turns what arrives into [`crate::call::CallEvent`]s.
//!
//! The layers, each in its own file:
//!
//! - `guard.rs`: who may talk (`sip.allow`, per-source rate limit with bans, scanner
//!   User-Agents), checked before parsing where possible.
//! - this file: the sockets. One task reads UDP datagrams; one accepts TCP connections (at most
//!   [`MAX_TCP_CONNECTIONS`]), each read with an idle timeout and a bounded buffer. Both frame,
//!   parse and validate (answering 400/403 statelessly) and hand valid messages to the core task
//!   over a bounded channel (UDP: when full the datagram is dropped and counted, as the network
//!   would; TCP: the connection waits).
//! - `uas.rs`: the core, a state machine without I/O: transactions, timers, what to answer and
//!   which call events to report. One task owns it, so it needs no locks.
//!
//! The sockets, the TCP connections and the core run on a thread of their own (`ringside-sip`,
//! a single-threaded runtime), so answers and retransmission timers never queue behind the
//! daemon's other work: building pops, writing to the database, serving consoles. What reads the
//! database (redirect lookups) and the submitters below run on the daemon's runtime.
//!
//! - `identity.rs`, `dialog_events.rs`: reading callers, dialed numbers, extensions and dialog
//!   states out of messages.
//! - `redirect.rs`: redirect mode's database lookup, run on tasks of its own (at most
//!   [`MAX_REDIRECT_LOOKUPS`] at once, each bounded by [`REDIRECT_LOOKUP_TIMEOUT`]) so the core never
//!   waits on the database.
//! - `subscriptions.rs`: SUBSCRIBEs to agents' extensions, kept refreshed.
//! - `counters.rs`: what was received, sent and dropped.
//!
//! SIP answers are sent before the call event is journaled: the PBX's transaction timers must not
//! depend on the database. Events go to the call service through [`EVENT_SHARDS`] bounded queues,
//! sharded by Call-ID so one call's events keep their order; each shard keeps up to
//! [`SHARD_IN_FLIGHT`] events waiting for the journal, which writes them in batches; a full queue
//! loses the event (counted and logged) rather than stall the SIP core. Before a queue is full,
//! ringing events are shed (the last quarter is kept for hangups), so under overload calls stop
//! popping but are all still recorded.

mod counters;
mod dialog_events;
mod guard;
mod identity;
mod redirect;
mod subscriptions;
mod transaction;
mod uas;

#[cfg(test)]
mod uas_tests;

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::call::{CallEvent, EventKind};
use crate::calls::{Calls, Journaled, SubmitError};
use crate::directory::Directory;
use crate::protocol::sip::{
    Datagram, FramerLimits, FramingError, Method, SipMessage, StreamFrame, StreamFramer,
    frame_datagram, generate_tag, parse, validate_request, validate_response,
};
use crate::settings::{Refusal, Settings};
use crate::storage::Storage;

pub use counters::{CounterSample, DropReason, MethodLabel, SipCounters};
pub use uas::{ACCEPT, ALLOW};

use guard::{Admission, Guard};
use redirect::Redirector;
use subscriptions::{SubscriptionConfig, Subscriptions};
use transaction::{ReplyPath, TcpLink, TxnKey};
use uas::{Action, RedirectDecision, Uas};

/// The most TCP connections served at once; more are closed on accept (and counted).
pub const MAX_TCP_CONNECTIONS: usize = 1024;
/// Messages waiting for the core task. At a few microseconds per message this is well under a
/// second of work.
pub const CORE_QUEUE: usize = 8192;
/// Responses waiting to be written to one TCP connection; a peer this far behind is not reading,
/// and its connection is closed.
pub const TCP_WRITE_QUEUE: usize = 256;
/// Queues of call events to the call service, and the capacity of each.
pub const EVENT_SHARDS: usize = 4;
pub const EVENT_SHARD_CAPACITY: usize = 4096;
/// A shard with this little room left takes no more ringing events, only the news that ends calls.
pub const SHED_RINGING_BELOW: usize = EVENT_SHARD_CAPACITY / 4;
/// Events of one shard waiting for the journal at once.
pub const SHARD_IN_FLIGHT: usize = 1024;
/// Redirect lookups running at once; beyond that the fallback is used without looking.
pub const MAX_REDIRECT_LOOKUPS: usize = 64;
/// A redirect lookup slower than this uses the fallback: the PBX is waiting with a caller.
pub const REDIRECT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// What the SIP ingress needs from the rest of the daemon.
#[derive(Clone)]
pub struct SipDeps {
    pub settings: Arc<Settings>,
    pub storage: Storage,
    pub directory: Arc<Directory>,
    pub calls: Calls,
}

/// Why the SIP ingress could not start.
#[derive(Debug, Error)]
pub enum SipStartError {
    #[error("sip.listen = {0:?} is not host:port")]
    InvalidListen(String),
    #[error("sip.subscribe_to = {0:?} is not host:port")]
    InvalidSubscribeTo(String),
    #[error("cannot start the sip thread: {0}")]
    Thread(io::Error),
    #[error("cannot listen on sip.listen = {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: io::Error,
    },
}

/// The running SIP ingress: its address and counters.
#[derive(Clone)]
pub struct SipIngress {
    local_addr: SocketAddr,
    counters: Arc<SipCounters>,
}

impl SipIngress {
    /// Binds UDP and TCP on `sip.listen` (the same port for both, also when it is 0) and spawns the
    /// tasks on `tasks`; they stop when `shutdown` is cancelled.
    pub async fn start(
        deps: SipDeps,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<SipIngress, SipStartError> {
        let settings = deps.settings.clone();
        let listen: SocketAddr = settings
            .sip
            .listen
            .parse()
            .map_err(|_| SipStartError::InvalidListen(settings.sip.listen.clone()))?;
        let (udp, tcp) = bind(listen)?;
        let local_addr = udp.local_addr().map_err(|source| SipStartError::Bind {
            address: listen,
            source,
        })?;
        let subscriptions = subscription_config(&settings, local_addr)?
            .map(|config| Subscriptions::new(config, Instant::now()));

        // The sockets belong to the SIP thread's runtime; they are registered with it here so
        // that every failure is reported before `start` returns.
        let runtime = SipRuntime::new().map_err(SipStartError::Thread)?;
        let (udp, tcp) = {
            let _entered = runtime.enter();
            let registered = udp
                .set_nonblocking(true)
                .and_then(|()| tcp.set_nonblocking(true))
                .and_then(|()| UdpSocket::from_std(udp))
                .and_then(|udp| Ok((udp, TcpListener::from_std(tcp)?)));
            registered.map_err(|source| SipStartError::Bind {
                address: listen,
                source,
            })?
        };
        tracing::info!(
            sip_udp = %local_addr,
            sip_tcp = %local_addr,
            mode = ?settings.sip.mode,
            "sip listening"
        );

        let counters = Arc::new(SipCounters::default());
        let udp = Arc::new(udp);
        let (core_tx, core_rx) = mpsc::channel(CORE_QUEUE);
        let intake = Arc::new(Intake {
            guard: Guard::new(&settings.sip),
            counters: counters.clone(),
            refuse: settings.sip.refuse,
            limits: FramerLimits {
                max_message_bytes: settings.sip.max_message_bytes,
                max_buffered_bytes: settings.sip.max_message_bytes.saturating_mul(2),
            },
        });
        let submitter = Submitter::start(&deps.calls, &counters, &shutdown, tasks);
        let uas = Uas::new(
            settings.clone(),
            deps.directory.clone(),
            counters.clone(),
            subscriptions,
        );
        let core = Core {
            uas,
            socket: udp.clone(),
            counters: counters.clone(),
            submitter,
            redirector: Redirector::new(deps.storage, settings.clone(), deps.directory),
            lookups: Arc::new(Semaphore::new(MAX_REDIRECT_LOOKUPS)),
            inputs: core_tx.clone(),
            daemon: tokio::runtime::Handle::current(),
            daemon_tasks: tasks.clone(),
        };
        let idle = Duration::from_secs(settings.sip.tcp_idle_secs.max(1));
        let wire = Wire {
            udp,
            tcp,
            intake,
            core,
            core_tx,
            core_rx,
            idle,
        };
        wire.spawn_thread(runtime, shutdown, tasks)
            .map_err(SipStartError::Thread)?;
        Ok(SipIngress {
            local_addr,
            counters,
        })
    }

    /// The address UDP and TCP listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn counters(&self) -> &Arc<SipCounters> {
        &self.counters
    }
}

/// Binds UDP, then TCP on the same port. With port 0 the port UDP got may be taken for TCP, so a
/// few ports are tried.
fn bind(listen: SocketAddr) -> Result<(std::net::UdpSocket, std::net::TcpListener), SipStartError> {
    let failed = |source| SipStartError::Bind {
        address: listen,
        source,
    };
    let attempts = if listen.port() == 0 { 16 } else { 1 };
    let mut last_error = io::Error::from(io::ErrorKind::AddrInUse);
    for _ in 0..attempts {
        let udp = std::net::UdpSocket::bind(listen).map_err(failed)?;
        let bound = udp.local_addr().map_err(failed)?;
        match std::net::TcpListener::bind(bound) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => last_error = error,
            Err(error) => return Err(failed(error)),
        }
    }
    Err(failed(last_error))
}

/// The SIP thread's runtime. It can be dropped anywhere, also on the daemon's runtime when
/// `start` fails half-way, where dropping a plain runtime would panic.
struct SipRuntime(Option<tokio::runtime::Runtime>);

impl SipRuntime {
    fn new() -> io::Result<SipRuntime> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(SipRuntime(Some(runtime)))
    }

    /// Makes it the current runtime while the guard lives, so sockets register with it.
    fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.0.as_ref().map(tokio::runtime::Runtime::enter)
    }

    fn block_on(&self, future: impl std::future::Future<Output = ()>) {
        if let Some(runtime) = &self.0 {
            runtime.block_on(future);
        }
    }
}

impl Drop for SipRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The sockets and the core, before they move to the SIP thread.
struct Wire {
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
    intake: Arc<Intake>,
    core: Core,
    core_tx: mpsc::Sender<CoreInput>,
    core_rx: mpsc::Receiver<CoreInput>,
    idle: Duration,
}

impl Wire {
    /// Runs the sockets, the TCP connections and the core on a thread of their own, so SIP's
    /// answers and retransmission timers never queue behind the daemon's other work (pops,
    /// database writes, consoles). The thread stops when `shutdown` is cancelled, or when the
    /// daemon's runtime goes away without cancelling it; a task on `tasks` lasts as long as the
    /// thread, so waiting for `tasks` waits for it.
    fn spawn_thread(
        self,
        runtime: SipRuntime,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> io::Result<()> {
        let stop = shutdown.child_token();
        let (alive, daemon_gone) = tokio::sync::oneshot::channel::<()>();
        let (finished, thread_done) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ringside-sip".into())
            .spawn(move || {
                runtime.block_on(self.run(stop, daemon_gone));
                drop(runtime);
                let _ = finished.send(());
            })?;
        tasks.spawn(async move {
            let _alive = alive;
            let _ = thread_done.await;
        });
        Ok(())
    }

    async fn run(self, stop: CancellationToken, daemon_gone: tokio::sync::oneshot::Receiver<()>) {
        let tasks = TaskTracker::new();
        tasks.spawn(self.core.run(self.core_rx, stop.clone()));
        tasks.spawn(read_udp(
            self.udp,
            self.intake.clone(),
            self.core_tx.clone(),
            stop.clone(),
        ));
        tasks.spawn(accept_tcp(
            self.tcp,
            self.intake,
            self.core_tx,
            self.idle,
            stop.clone(),
            tasks.clone(),
        ));
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = daemon_gone => stop.cancel(),
        }
        tasks.close();
        tasks.wait().await;
    }
}

/// Where and as whom to subscribe, when `sip.subscribe_extensions` asks for it.
fn subscription_config(
    settings: &Settings,
    local_addr: SocketAddr,
) -> Result<Option<SubscriptionConfig>, SipStartError> {
    let sip = &settings.sip;
    if sip.subscribe_extensions.is_empty() {
        return Ok(None);
    }
    let target: SocketAddr = sip
        .subscribe_to
        .parse()
        .map_err(|_| SipStartError::InvalidSubscribeTo(sip.subscribe_to.clone()))?;
    // Listening on a wildcard address, ringside must still name a real one in Via and Contact:
    // the address the system would send to the PBX from.
    let local_ip = if local_addr.ip().is_unspecified() {
        route_source(target).unwrap_or(local_addr.ip())
    } else {
        local_addr.ip()
    };
    Ok(Some(SubscriptionConfig {
        target,
        local: SocketAddr::new(local_ip, local_addr.port()),
        expires_secs: sip.subscribe_expires_secs.max(1),
        extensions: sip.subscribe_extensions.clone(),
    }))
}

/// The local address the system routes to `target` from (a connected UDP socket sends nothing).
fn route_source(target: SocketAddr) -> Option<IpAddr> {
    let wildcard: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let probe = std::net::UdpSocket::bind(wildcard).ok()?;
    probe.connect(target).ok()?;
    probe.local_addr().ok().map(|addr| addr.ip())
}

/// What reaches the core task.
enum CoreInput {
    Request {
        message: SipMessage,
        source: SocketAddr,
        reply: ReplyPath,
    },
    Response(SipMessage),
    Redirect {
        key: TxnKey,
        decision: RedirectDecision,
    },
}

/// How a message arrived, so a stateless answer can find its way back.
enum Arrival<'a> {
    Udp,
    Tcp(&'a TcpLink),
}

/// What became of one framed message.
enum Inspected {
    Forward(Box<CoreInput>),
    /// Answer it statelessly (400, 403, 505).
    Reply(ReplyPath, Bytes),
    Ignore,
}

/// The checks every message passes before the core sees it.
struct Intake {
    guard: Guard,
    counters: Arc<SipCounters>,
    refuse: Refusal,
    limits: FramerLimits,
}

impl Intake {
    /// Counts a message against its source; `None` when the source is banned.
    fn admit(&self, source: SocketAddr) -> Option<Admission> {
        match self.guard.admit(source.ip(), Instant::now()) {
            Admission::Banned { newly } => {
                if newly {
                    self.counters.count_ban();
                    tracing::warn!(source = %source.ip(), "sip source banned for flooding");
                }
                self.counters.count_drop(DropReason::Banned);
                None
            }
            admission => Some(admission),
        }
    }

    fn inspect(
        &self,
        bytes: &[u8],
        source: SocketAddr,
        admission: Admission,
        arrival: Arrival<'_>,
    ) -> Inspected {
        let message = match parse(bytes) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%source, %error, "unparseable sip message dropped");
                self.counters.count_drop(DropReason::Unparseable);
                return Inspected::Ignore;
            }
        };
        let reply = || match arrival {
            Arrival::Udp => ReplyPath::udp_for(&message, source),
            Arrival::Tcp(link) => ReplyPath::Tcp(link.clone()),
        };
        let answerable = message
            .method()
            .is_some_and(|method| *method != Method::Ack);
        if admission == Admission::Refuse {
            self.counters.count_drop(DropReason::NotAllowed);
            if self.refuse == Refusal::Reject && answerable {
                return self.stateless(&message, source, 403, reply());
            }
            return Inspected::Ignore;
        }
        if self.guard.is_scanner(message.user_agent()) {
            self.counters.count_drop(DropReason::Scanner);
            return Inspected::Ignore;
        }
        if message.is_request() {
            if let Err(error) = validate_request(&message) {
                tracing::debug!(%source, %error, "invalid sip request");
                self.counters.count_drop(DropReason::Invalid);
                if answerable {
                    return self.stateless(&message, source, error.status_code(), reply());
                }
                return Inspected::Ignore;
            }
            let reply = reply();
            return Inspected::Forward(Box::new(CoreInput::Request {
                message,
                source,
                reply,
            }));
        }
        self.counters.count_response_in();
        if let Err(error) = validate_response(&message) {
            tracing::debug!(%source, %error, "invalid sip response dropped");
            self.counters.count_drop(DropReason::Invalid);
            return Inspected::Ignore;
        }
        Inspected::Forward(Box::new(CoreInput::Response(message)))
    }

    /// A response sent without transaction state; nothing when the request lacks what a
    /// response must copy (then it is simply dropped).
    fn stateless(
        &self,
        request: &SipMessage,
        source: SocketAddr,
        status: u16,
        reply: ReplyPath,
    ) -> Inspected {
        match request
            .response(status)
            .to_tag(&generate_tag())
            .received_from(source)
            .build()
        {
            Ok(response) => {
                self.counters.count_response_out(status);
                Inspected::Reply(reply, response.to_bytes())
            }
            Err(_) => Inspected::Ignore,
        }
    }
}

async fn read_udp(
    socket: Arc<UdpSocket>,
    intake: Arc<Intake>,
    core: mpsc::Sender<CoreInput>,
    shutdown: CancellationToken,
) {
    // Large enough for any datagram, so an oversized one is seen whole and refused as such.
    let mut buffer = vec![0u8; 65_536];
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            received = socket.recv_from(&mut buffer) => received,
        };
        let (length, source) = match received {
            Ok(received) => received,
            Err(error) => {
                // ICMP errors from earlier sends surface here on some systems; the socket is fine.
                tracing::debug!(%error, "sip udp receive error");
                continue;
            }
        };
        let Some(admission) = intake.admit(source) else {
            continue;
        };
        // Silence needs no parsing.
        if admission == Admission::Refuse && intake.refuse == Refusal::Silent {
            intake.counters.count_drop(DropReason::NotAllowed);
            continue;
        }
        let datagram = buffer.get(..length).unwrap_or_default();
        let framed = match frame_datagram(datagram, &intake.limits) {
            Ok(Datagram::Message(framed)) => framed,
            Ok(Datagram::KeepAlive) => continue,
            Err(FramingError::MessageTooLarge { .. }) => {
                intake.counters.count_drop(DropReason::TooLarge);
                continue;
            }
            Err(error) => {
                tracing::debug!(%source, %error, "unframeable sip datagram dropped");
                intake.counters.count_drop(DropReason::Unparseable);
                continue;
            }
        };
        match intake.inspect(&framed, source, admission, Arrival::Udp) {
            Inspected::Forward(input) => {
                if core.try_send(*input).is_err() {
                    intake.counters.count_drop(DropReason::Overloaded);
                }
            }
            Inspected::Reply(ReplyPath::Udp(destination), bytes) => {
                if socket.send_to(&bytes, destination).await.is_err() {
                    intake.counters.count_drop(DropReason::SendFailed);
                }
            }
            Inspected::Reply(ReplyPath::Tcp(_), _) | Inspected::Ignore => {}
        }
    }
}

async fn accept_tcp(
    listener: TcpListener,
    intake: Arc<Intake>,
    core: mpsc::Sender<CoreInput>,
    idle: Duration,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(%error, "sip tcp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            intake.counters.count_drop(DropReason::TcpConnectionLimit);
            continue;
        };
        // A refused source is not worth a connection when it would only get silence.
        let admission = intake.guard.admit(peer.ip(), Instant::now());
        let silent = admission == Admission::Refuse && intake.refuse == Refusal::Silent;
        if matches!(admission, Admission::Banned { .. }) || silent {
            intake.counters.count_drop(if silent {
                DropReason::NotAllowed
            } else {
                DropReason::Banned
            });
            continue;
        }
        intake.counters.count_tcp_connection();
        let connection = Connection {
            peer,
            intake: intake.clone(),
            core: core.clone(),
            idle,
        };
        let closer = shutdown.child_token();
        let writer_tasks = tasks.clone();
        tasks.spawn(async move {
            connection.serve(stream, closer, &writer_tasks).await;
            drop(slot);
        });
    }
}

struct Connection {
    peer: SocketAddr,
    intake: Arc<Intake>,
    core: mpsc::Sender<CoreInput>,
    idle: Duration,
}

impl Connection {
    async fn serve(self, stream: TcpStream, closer: CancellationToken, tasks: &TaskTracker) {
        let (mut reader, mut writer) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<Bytes>(TCP_WRITE_QUEUE);
        let link = TcpLink {
            peer: self.peer,
            tx,
            closer: closer.clone(),
        };
        let writer_closer = closer.clone();
        tasks.spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = writer_closer.cancelled() => break,
                    next = rx.recv() => next,
                };
                let Some(bytes) = next else { break };
                if writer.write_all(&bytes).await.is_err() {
                    writer_closer.cancel();
                    break;
                }
            }
            let _ = writer.shutdown().await;
        });

        let mut framer = StreamFramer::new(self.intake.limits);
        let mut buffer = vec![0u8; 16 * 1024];
        'connection: loop {
            let read = tokio::select! {
                _ = closer.cancelled() => break,
                read = tokio::time::timeout(self.idle, reader.read(&mut buffer)) => read,
            };
            let length = match read {
                Err(_) => {
                    tracing::debug!(peer = %self.peer, "idle sip tcp connection closed");
                    break;
                }
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(length)) => length,
            };
            if let Err(error) = framer.push(buffer.get(..length).unwrap_or_default()) {
                self.framing_failed(&error);
                break;
            }
            loop {
                match framer.next_frame() {
                    Ok(None) => break,
                    Ok(Some(StreamFrame::Ping)) => {
                        // RFC 5626 3.5.1: a CRLFCRLF ping is answered with a CRLF pong.
                        let _ = link.tx.try_send(Bytes::from_static(b"\r\n"));
                    }
                    Ok(Some(StreamFrame::Message(bytes))) => {
                        if !self.handle(&bytes, &link).await {
                            break 'connection;
                        }
                    }
                    Err(error) => {
                        self.framing_failed(&error);
                        break 'connection;
                    }
                }
            }
        }
        closer.cancel();
    }

    /// Passes one message on; `false` when the connection should close.
    async fn handle(&self, bytes: &[u8], link: &TcpLink) -> bool {
        let Some(admission) = self.intake.admit(self.peer) else {
            // A banned source gets no more of ringside's time on this connection.
            return false;
        };
        match self
            .intake
            .inspect(bytes, self.peer, admission, Arrival::Tcp(link))
        {
            Inspected::Forward(input) => self.core.send(*input).await.is_ok(),
            Inspected::Reply(_, bytes) => {
                if link.tx.try_send(bytes).is_err() {
                    self.intake.counters.count_drop(DropReason::ConnectionGone);
                    return false;
                }
                true
            }
            Inspected::Ignore => true,
        }
    }

    fn framing_failed(&self, error: &FramingError) {
        tracing::debug!(peer = %self.peer, %error, "sip tcp stream unframeable; closing");
        let reason = match error {
            FramingError::MessageTooLarge { .. } | FramingError::BufferFull { .. } => {
                DropReason::TooLarge
            }
            _ => DropReason::Unparseable,
        };
        self.intake.counters.count_drop(reason);
    }
}

/// The task that owns the [`Uas`] and carries out its actions.
struct Core {
    uas: Uas,
    socket: Arc<UdpSocket>,
    counters: Arc<SipCounters>,
    submitter: Submitter,
    redirector: Redirector,
    lookups: Arc<Semaphore>,
    inputs: mpsc::Sender<CoreInput>,
    /// Redirect lookups read the database, so they run on the daemon's runtime, not SIP's.
    daemon: tokio::runtime::Handle,
    daemon_tasks: TaskTracker,
}

impl Core {
    async fn run(mut self, mut inputs: mpsc::Receiver<CoreInput>, shutdown: CancellationToken) {
        let mut pending = self.uas.on_timer(Instant::now());
        loop {
            self.execute(&mut pending).await;
            let deadline = self
                .uas
                .next_deadline()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            pending = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                    self.uas.on_timer(Instant::now())
                }
                input = inputs.recv() => {
                    let Some(input) = input else { break };
                    let now = Instant::now();
                    match input {
                        CoreInput::Request { message, source, reply } => {
                            self.uas.on_request(message, source, reply, now)
                        }
                        CoreInput::Response(message) => {
                            self.uas.on_response(&message, now);
                            Vec::new()
                        }
                        CoreInput::Redirect { key, decision } => {
                            self.uas.on_redirect(&key, decision, now)
                        }
                    }
                }
            };
        }
    }

    async fn execute(&mut self, actions: &mut Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.drain(..).collect();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Send { to, bytes } => self.send(to, bytes).await,
                Action::Submit(event) => self.submitter.submit(event),
                Action::LookupRedirect { key, query } => {
                    match self.lookups.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let redirector = self.redirector.clone();
                            let inputs = self.inputs.clone();
                            let lookup = async move {
                                let decision = match tokio::time::timeout(
                                    REDIRECT_LOOKUP_TIMEOUT,
                                    redirector.decide(&query),
                                )
                                .await
                                {
                                    Ok(decision) => decision,
                                    Err(_) => {
                                        tracing::warn!(
                                            "redirect lookup timed out; using the fallback"
                                        );
                                        redirector.fallback(&query)
                                    }
                                };
                                let _ = inputs.send(CoreInput::Redirect { key, decision }).await;
                                drop(permit);
                            };
                            self.daemon_tasks.spawn_on(lookup, &self.daemon);
                        }
                        Err(_) => {
                            self.counters.count_drop(DropReason::LookupBusy);
                            let decision = self.redirector.fallback(&query);
                            queue.extend(self.uas.on_redirect(&key, decision, Instant::now()));
                        }
                    }
                }
            }
        }
    }

    async fn send(&self, to: ReplyPath, bytes: Bytes) {
        match to {
            ReplyPath::Udp(destination) => {
                if let Err(error) = self.socket.send_to(&bytes, destination).await {
                    tracing::debug!(%destination, %error, "sip datagram not sent");
                    self.counters.count_drop(DropReason::SendFailed);
                }
            }
            ReplyPath::Tcp(link) => match link.tx.try_send(bytes) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::info!(peer = %link.peer, "sip tcp peer is not reading; closing");
                    self.counters.count_drop(DropReason::ConnectionGone);
                    link.closer.cancel();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.counters.count_drop(DropReason::ConnectionGone);
                }
            },
        }
    }
}

/// Hands call events to the call service, in order per call, without making the core wait.
struct Submitter {
    shards: Vec<mpsc::Sender<CallEvent>>,
    counters: Arc<SipCounters>,
}

impl Submitter {
    fn start(
        calls: &Calls,
        counters: &Arc<SipCounters>,
        shutdown: &CancellationToken,
        tasks: &TaskTracker,
    ) -> Submitter {
        let mut shards = Vec::with_capacity(EVENT_SHARDS);
        for _ in 0..EVENT_SHARDS {
            let (tx, mut rx) = mpsc::channel::<CallEvent>(EVENT_SHARD_CAPACITY);
            shards.push(tx);
            let calls = calls.clone();
            let counters = counters.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                // Up to SHARD_IN_FLIGHT events wait for the journal at once, in order, so the
                // call service can journal them in large batches rather than one at a time.
                let mut in_flight: VecDeque<(String, Journaled)> = VecDeque::new();
                loop {
                    tokio::select! {
                        biased;
                        _ = shutdown.cancelled() => break,
                        (call_id, result) = next_durable(&mut in_flight) => match result {
                            Ok(_) => counters.count_event_submitted(),
                            Err(error) => event_failed(&counters, &call_id, &error),
                        },
                        next = rx.recv(), if in_flight.len() < SHARD_IN_FLIGHT => {
                            let Some(event) = next else { break };
                            let call_id = event.call_id.clone();
                            match calls.enqueue(event).await {
                                Ok(journaled) => in_flight.push_back((call_id, journaled)),
                                Err(error) => event_failed(&counters, &call_id, &error),
                            }
                        }
                    }
                }
            });
        }
        Submitter {
            shards,
            counters: counters.clone(),
        }
    }

    fn submit(&self, event: CallEvent) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        event.call_id.hash(&mut hasher);
        let index = (hasher.finish() % self.shards.len().max(1) as u64) as usize;
        let Some(shard) = self.shards.get(index) else {
            return;
        };
        // Under overload new calls are shed first: the last part of each queue is kept for the
        // news that ends calls already reported, so every call is still recorded.
        if matches!(event.kind, EventKind::Ringing { .. }) && shard.capacity() <= SHED_RINGING_BELOW
        {
            self.counters.count_drop(DropReason::RingingShed);
            let shed = self.counters.drops(DropReason::RingingShed);
            if worth_logging(shed) {
                tracing::warn!(
                    call_id = event.call_id,
                    shed,
                    "sip ringing not passed on: the call service is far behind; the call will \
                     not pop but will be recorded"
                );
            }
            return;
        }
        if let Err(error) = shard.try_send(event) {
            self.counters.count_drop(DropReason::EventQueueFull);
            let event = match error {
                mpsc::error::TrySendError::Full(event)
                | mpsc::error::TrySendError::Closed(event) => event,
            };
            let dropped = self.counters.drops(DropReason::EventQueueFull);
            if worth_logging(dropped) {
                tracing::warn!(
                    call_id = event.call_id,
                    kind = event.kind.name(),
                    dropped,
                    "sip call event dropped: the call service is not keeping up"
                );
            }
        }
    }
}

/// The oldest event in flight once it is journaled (or not); never, while there is none.
async fn next_durable(
    in_flight: &mut VecDeque<(String, Journaled)>,
) -> (String, Result<i64, SubmitError>) {
    let Some((_, journaled)) = in_flight.front_mut() else {
        return std::future::pending().await;
    };
    let result = journaled.await;
    let call_id = in_flight.pop_front().map(|(id, _)| id).unwrap_or_default();
    (call_id, result)
}

fn event_failed(counters: &SipCounters, call_id: &str, error: &SubmitError) {
    counters.count_drop(DropReason::EventFailed);
    if worth_logging(counters.drops(DropReason::EventFailed)) {
        tracing::warn!(
            call_id,
            %error,
            failed = counters.drops(DropReason::EventFailed),
            "sip call event not accepted"
        );
    }
}

/// Whether the `count`th occurrence of a repeated failure is logged: the first and every
/// thousandth, so an overload shows in the log without the log becoming the overload.
fn worth_logging(count: u64) -> bool {
    count == 1 || count % 1000 == 0
}
