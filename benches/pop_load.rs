//! Screen-pop load: 5,000 agent consoles on WebSockets, call events posted to the webhook at a
//! steady rate, and the time from the start of each `POST /api/v1/call-events` to the pop's
//! arrival on the socket of the agent whose extension rings.
//!
//! The program is two processes. This one builds the database (100,000 imported customers with
//! messy numbers, 5,000 agents each with an extension and a token of their own, a PBX account)
//! and runs the daemon in-process (`daemon::Application::build`, port 0, the default settings
//! except that SIP and the outbound engine are off). It then starts itself again as the load
//! generator: the consoles (tokio-tungstenite, each from its own loopback address, as consoles on
//! a floor come from their own machines) and the PBX posting events. Two processes so that the
//! clients' sockets and buffers are not counted in the server's memory: the daemon's resident
//! memory is read before and after the consoles connect, and the difference divided by their
//! number is the memory per idle connection.
//!
//! Each call rings one random agent's extension (`agent`: the extension), from a random
//! customer's number in a messy format (5% from numbers nobody has, which become provisional
//! contacts as the default settings ask), and is hung up unanswered 2 s later (so it is recorded
//! as a missed call and a callback task). Consoles answer each pop with an `ack`, as the page does.
//! A pop is lost when its ringing event was accepted (202) and no pop for that call reached the
//! ringing agent by the end.
//!
//! `cargo bench --bench pop_load` (SQLite in a temp dir), or with
//! `RINGSIDE_BENCH_DATABASE=postgres://postgres@127.0.0.1:5432/test`. Knobs:
//! `RINGSIDE_BENCH_CONSOLES` (5000), `RINGSIDE_BENCH_ROWS` (customers, 100000),
//! `RINGSIDE_BENCH_EVENTS_PER_SEC` (500: ringing and hangup events together),
//! `RINGSIDE_BENCH_SECS` (60), `RINGSIDE_BENCH_POOL` (the daemon's `database.max_connections`,
//! default 8), `RINGSIDE_BENCH_LOG` (a log filter for the daemon, e.g. `ringside::calls=debug`). Run without `--bench` (as `cargo test --all-targets` does) it makes a
//! quick smoke run: 20 consoles, 500 customers, 20 events/s for 2 s.

#[allow(dead_code)]
#[path = "import.rs"]
mod import_bench;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringside::auth::{Role, hash_token, new_token};
use ringside::daemon::Application;
use ringside::settings::Settings;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use import_bench::{
    BenchDb, generate_and_import, load_average, messy_mobile, mobile_of, rows_from_env, smoke,
};

/// Set in the load generator's environment: the file with everything it needs.
const CLIENT_ENV: &str = "RINGSIDE_POP_LOAD_PLAN";
/// How long a call rings before its hangup is posted.
const RING_MS: u64 = 2000;
/// Consoles connecting at once.
const CONNECT_PARALLEL: usize = 50;
/// After the last event, how long pops still in flight are waited for.
const DRAIN: Duration = Duration::from_secs(10);

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

/// 5,000 sockets here, 5,000 more ends in the other process, plus the database: raise the soft
/// limit on open files to the hard one.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

/// This process's resident memory, in bytes.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1e6
}

fn main() {
    let fd_limit = raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match std::env::var(CLIENT_ENV) {
        Ok(plan) => rt.block_on(load_generator(plan)),
        Err(_) => rt.block_on(server(fd_limit)),
    }
}

/// What the load generator is told, as JSON in a file.
#[derive(serde::Serialize, serde::Deserialize)]
struct Plan {
    addr: SocketAddr,
    pbx_token: String,
    /// Console `i`'s token and extension.
    consoles: Vec<(String, String)>,
    customers: usize,
    events_per_sec: usize,
    secs: u64,
}

/// The load generator's figures, one JSON line on its stdout.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Figures {
    connected: usize,
    connect_failed: usize,
    connect_secs: f64,
    calls: usize,
    events_posted: usize,
    events_rejected: usize,
    pops: usize,
    pops_lost: usize,
    pops_misrouted: usize,
    pops_with_customer: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    post_p50_ms: f64,
    post_p99_ms: f64,
    ended_p50_ms: f64,
    ended_p99_ms: f64,
    /// The same latencies split: callers with a customer, and new callers (provisional contacts).
    known_p50_ms: f64,
    known_p99_ms: f64,
    new_callers: usize,
    new_p50_ms: f64,
    new_p99_ms: f64,
    consoles_closed: usize,
}

async fn server(fd_limit: u64) {
    let quick = smoke();
    let consoles = env_number("RINGSIDE_BENCH_CONSOLES", if quick { 20 } else { 5000 });
    let customers = rows_from_env(if quick { 500 } else { 100_000 });
    let events_per_sec = env_number(
        "RINGSIDE_BENCH_EVENTS_PER_SEC",
        if quick { 20 } else { 500 },
    );
    let secs = env_number("RINGSIDE_BENCH_SECS", if quick { 2 } else { 60 }) as u64;
    println!("load average before the run: {}", load_average());
    let db = BenchDb::open(8).await;
    let (_, summary, import_secs) = generate_and_import(&db.storage, customers).await;
    let mut plan = Plan {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        pbx_token: new_token(),
        consoles: Vec::with_capacity(consoles),
        customers,
        events_per_sec,
        secs,
    };
    db.storage
        .create_agent("pbx", Role::Pbx, &[], &hash_token(&plan.pbx_token), None)
        .await
        .expect("pbx account");
    for i in 0..consoles {
        let token = new_token();
        let extension = format!("{}", 20_000 + i);
        db.storage
            .create_agent(
                &format!("agent{i:04}"),
                Role::Agent,
                std::slice::from_ref(&extension),
                &hash_token(&token),
                None,
            )
            .await
            .expect("agent");
        plan.consoles.push((token, extension));
    }

    if let Ok(level) = std::env::var("RINGSIDE_BENCH_LOG") {
        ringside::telemetry::init(&ringside::settings::LogSettings {
            level,
            ..Default::default()
        });
    }
    let mut settings = Settings::default();
    settings.database.url = db.url.clone();
    if let Some(pool) = std::env::var("RINGSIDE_BENCH_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        settings.database.max_connections = pool;
    }
    settings.http.listen = "127.0.0.1:0".into();
    settings.sip.enabled = false;
    settings.outbound.enabled = false;
    let app = Application::build(settings).await.expect("build app");
    plan.addr = app.http_addr();
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(app.run(shutdown.clone()));
    println!(
        "pop load on {}: {} customers (imported {} rows in {import_secs:.1} s), {consoles} agents with extensions, \
         {events_per_sec} events/s for {secs} s, open files limit {fd_limit}",
        db.label(),
        state.storage.count_customers().await.expect("count"),
        summary.rows,
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_vec(&plan).expect("plan")).expect("write plan");
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("own path"))
        .env(CLIENT_ENV, &plan_path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the load generator");
    let mut to_child = child.stdin.take().expect("child stdin");
    let mut from_child = BufReader::new(child.stdout.take().expect("child stdout")).lines();

    // Settle, then the baseline: the daemon started, customers and agents loaded, no console.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = rss_bytes();
    to_child.write_all(b"connect\n").await.expect("tell child");
    let mut figures = Figures::default();
    let mut rss_after = 0;
    while let Some(line) = from_child.next_line().await.expect("child output") {
        if line.starts_with("connected") {
            // Let the connection tasks reach their idle state before reading memory.
            tokio::time::sleep(Duration::from_secs(2)).await;
            rss_after = rss_bytes();
            let floor = state.hub.snapshot().await;
            println!(
                "{line}; the hub holds {} connections of {} agents",
                floor.connections, floor.agents_connected
            );
            to_child.write_all(b"go\n").await.expect("tell child");
        } else if let Some(result) = line.strip_prefix("figures ") {
            figures = serde_json::from_str(result).expect("figures");
            break;
        } else {
            println!("{line}");
        }
    }
    let _ = child.wait().await;
    let counters = &state.hub.counters;
    let per_connection = (rss_after.saturating_sub(rss_before)) as f64 / figures.connected as f64;
    println!(
        "connected {} consoles in {:.1} s ({} failed); daemon RSS {:.1} MB → {:.1} MB: {:.1} KB per idle connection",
        figures.connected,
        figures.connect_secs,
        figures.connect_failed,
        rss_before as f64 / 1e6,
        rss_after as f64 / 1e6,
        per_connection / 1024.0,
    );
    println!(
        "{} calls, {} events posted ({} not accepted); hub: {} pops sent, {} slow consoles dropped; {} consoles closed by the server",
        figures.calls,
        figures.events_posted,
        figures.events_rejected,
        counters.pops_sent.load(Ordering::Relaxed),
        counters.slow_disconnects.load(Ordering::Relaxed),
        figures.consoles_closed,
    );
    println!(
        "event→pop of callers with a customer: p50 {:.2} ms, p99 {:.2} ms; of {} new callers (a provisional contact created): p50 {:.2} ms, p99 {:.2} ms",
        figures.known_p50_ms,
        figures.known_p99_ms,
        figures.new_callers,
        figures.new_p50_ms,
        figures.new_p99_ms,
    );
    println!(
        "| database | event→pop p50 | p99 | max | pops | lost | misrouted | with customer | POST p50 / p99 | hangup→ended p50 / p99 | KB per idle connection |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {:.2} ms | {:.2} ms | {:.1} ms | {} | {} | {} | {} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.1} |",
        db.label(),
        figures.p50_ms,
        figures.p99_ms,
        figures.max_ms,
        figures.pops,
        figures.pops_lost,
        figures.pops_misrouted,
        figures.pops_with_customer,
        figures.post_p50_ms,
        figures.post_p99_ms,
        figures.ended_p50_ms,
        figures.ended_p99_ms,
        per_connection / 1024.0,
    );
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), daemon).await;
    db.drop_database().await;
}

/// Shared between the consoles and the poster (in the load generator process).
struct Shared {
    base: Instant,
    /// Per call: the console that should get its pop.
    target: Vec<u32>,
    /// Per call: nanoseconds after `base` when its ringing POST started (0 = not yet).
    ring_started: Vec<AtomicU64>,
    /// Per call: the ringing event was accepted.
    accepted: Vec<AtomicBool>,
    /// Per call: nanoseconds from POST start to the pop's arrival (0 = no pop yet).
    pop_latency: Vec<AtomicU64>,
    hangup_started: Vec<AtomicU64>,
    ended_latency: Vec<AtomicU64>,
    misrouted: AtomicUsize,
    with_customer: AtomicUsize,
    closed: AtomicUsize,
}

impl Shared {
    fn since_base(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// The call index from `"call_id": "load-N"`.
fn call_index(v: &Value) -> Option<usize> {
    v["call_id"].as_str()?.strip_prefix("load-")?.parse().ok()
}

async fn console(
    i: usize,
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => break,
            m = ws.next() => m,
        };
        let Some(Ok(message)) = message else {
            shared.closed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let arrived = shared.since_base();
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let Some(call) = call_index(&v).filter(|c| *c < shared.target.len()) else {
            continue;
        };
        match v["type"].as_str() {
            Some("screen_pop") => {
                if shared.target[call] as usize != i {
                    shared.misrouted.fetch_add(1, Ordering::Relaxed);
                } else {
                    let started = shared.ring_started[call].load(Ordering::Acquire);
                    let _ = shared.pop_latency[call].compare_exchange(
                        0,
                        arrived.saturating_sub(started).max(1),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                    if !v["customer"].is_null() {
                        shared.with_customer.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if let Some(seq) = v["seq"].as_u64() {
                    let ack = json!({"type": "ack", "seq": seq}).to_string();
                    if ws.send(Message::Text(ack.into())).await.is_err() {
                        shared.closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
            Some("call_update") if v["state"] == "ended" => {
                let started = shared.hangup_started[call].load(Ordering::Acquire);
                if started > 0 {
                    let _ = shared.ended_latency[call].compare_exchange(
                        0,
                        arrived.saturating_sub(started).max(1),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                }
            }
            _ => {}
        }
    }
    let _ = ws.close(None).await;
}

/// Connects console `i` from its own loopback address (127.1.x.y).
async fn connect(
    i: usize,
    addr: SocketAddr,
    token: &str,
) -> Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, String> {
    let local = Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(IpAddr::V4(local), 0))
        .map_err(|e| e.to_string())?;
    let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("ringside.v1, {token}")
            .parse()
            .map_err(|_| "token header".to_string())?,
    );
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"hello\"") => Ok(ws),
        other => Err(format!("no hello: {other:?}")),
    }
}

async fn load_generator(plan_path: String) {
    let plan: Plan =
        serde_json::from_slice(&std::fs::read(&plan_path).expect("read plan")).expect("parse plan");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let _ = lines.next_line().await; // "connect"

    let calls_per_sec = (plan.events_per_sec / 2).max(1);
    let calls = calls_per_sec * plan.secs as usize;
    let mut rng = StdRng::seed_from_u64(11);
    let target: Vec<u32> = (0..calls)
        .map(|_| rng.gen_range(0..plan.consoles.len()) as u32)
        .collect();
    let mut unknown = vec![false; calls];
    let callers: Vec<String> = (0..calls)
        .map(|k| {
            let customer = if rng.gen_ratio(1, 20) {
                unknown[k] = true;
                plan.customers + k // nobody has this number
            } else {
                rng.gen_range(0..plan.customers)
            };
            messy_mobile(&mobile_of(customer), &mut rng)
        })
        .collect();
    let zeroes = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
    let shared = Arc::new(Shared {
        base: Instant::now(),
        target,
        ring_started: zeroes(calls),
        accepted: (0..calls).map(|_| AtomicBool::new(false)).collect(),
        pop_latency: zeroes(calls),
        hangup_started: zeroes(calls),
        ended_latency: zeroes(calls),
        misrouted: AtomicUsize::new(0),
        with_customer: AtomicUsize::new(0),
        closed: AtomicUsize::new(0),
    });

    // Connect every console, CONNECT_PARALLEL at a time.
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let mut connectors = Vec::new();
    for _ in 0..CONNECT_PARALLEL {
        let (plan, next, shared, stop) = (plan.clone(), next.clone(), shared.clone(), stop.clone());
        connectors.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0, 0);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= plan.consoles.len() {
                    break;
                }
                match connect(i, plan.addr, &plan.consoles[i].0).await {
                    Ok(ws) => {
                        ok += 1;
                        tokio::spawn(console(i, ws, shared.clone(), stop.clone()));
                    }
                    Err(e) => {
                        failed += 1;
                        if failed <= 3 {
                            eprintln!("console {i} did not connect: {e}");
                        }
                    }
                }
            }
            (ok, failed)
        }));
    }
    let mut figures = Figures::default();
    for c in connectors {
        let (ok, failed) = c.await.expect("connector");
        figures.connected += ok;
        figures.connect_failed += failed;
    }
    figures.connect_secs = t0.elapsed().as_secs_f64();
    println!("connected {} consoles", figures.connected);
    let _ = lines.next_line().await; // "go"

    // The PBX: ringing at calls_per_sec, each call hung up RING_MS later; every POST on a task of
    // its own so a slow answer never delays the next event (an open-loop load).
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("http client");
    let url = format!("http://{}/api/v1/call-events", plan.addr);
    let posts = Arc::new(std::sync::Mutex::new(Vec::<u64>::with_capacity(calls * 2)));
    let rejected = Arc::new(AtomicUsize::new(0));
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut in_flight = tokio::task::JoinSet::new();
    for (k, caller) in callers.iter().enumerate().take(calls) {
        let at = start + Duration::from_nanos(k as u64 * 1_000_000_000 / calls_per_sec as u64);
        tokio::time::sleep_until(at).await;
        let ring = json!({
            "event": "ringing", "call_id": format!("load-{k}"), "from": caller,
            "to": "010-6000 0000", "direction": "inbound",
            "agent": plan.consoles[shared.target[k] as usize].1,
        })
        .to_string();
        let hangup = json!({"event": "hangup", "call_id": format!("load-{k}"), "cause": "ORIGINATOR_CANCEL"})
            .to_string();
        let (client, url, token, shared, posts, rejected) = (
            client.clone(),
            url.clone(),
            plan.pbx_token.clone(),
            shared.clone(),
            posts.clone(),
            rejected.clone(),
        );
        in_flight.spawn(async move {
            let post = |body: String, slot: &AtomicU64| {
                let started = Instant::now();
                slot.store(shared.since_base(), Ordering::Release);
                let request = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send();
                async move {
                    let accepted = matches!(request.await, Ok(r) if r.status() == 202);
                    (accepted, started.elapsed().as_nanos() as u64)
                }
            };
            let (accepted, took) = post(ring, &shared.ring_started[k]).await;
            shared.accepted[k].store(accepted, Ordering::Release);
            let mut took_all = vec![took];
            if !accepted {
                rejected.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep_until(at + Duration::from_millis(RING_MS)).await;
            let (accepted, took) = post(hangup, &shared.hangup_started[k]).await;
            if !accepted {
                rejected.fetch_add(1, Ordering::Relaxed);
            }
            took_all.push(took);
            posts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(took_all);
        });
        // Reap finished posts as we go so the set stays small.
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}

    // Pops still in flight get DRAIN to arrive.
    let deadline = Instant::now() + DRAIN;
    let missing = |s: &Shared| {
        (0..calls)
            .filter(|&k| {
                s.accepted[k].load(Ordering::Acquire)
                    && s.pop_latency[k].load(Ordering::Acquire) == 0
            })
            .count()
    };
    while missing(&shared) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();

    let collect = |v: &[AtomicU64]| {
        let mut out: Vec<u64> = v
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .filter(|&n| n > 0)
            .collect();
        out.sort_unstable();
        out
    };
    let latencies = collect(&shared.pop_latency);
    let split = |new: bool| {
        let mut out: Vec<u64> = (0..calls)
            .filter(|&k| unknown[k] == new)
            .map(|k| shared.pop_latency[k].load(Ordering::Acquire))
            .filter(|&n| n > 0)
            .collect();
        out.sort_unstable();
        out
    };
    let (known, new) = (split(false), split(true));
    figures.known_p50_ms = pct(&known, 0.5);
    figures.known_p99_ms = pct(&known, 0.99);
    figures.new_callers = new.len();
    figures.new_p50_ms = pct(&new, 0.5);
    figures.new_p99_ms = pct(&new, 0.99);
    let ended = collect(&shared.ended_latency);
    let mut posts = std::mem::take(&mut *posts.lock().unwrap_or_else(|p| p.into_inner()));
    posts.sort_unstable();
    figures.calls = calls;
    figures.events_posted = calls * 2;
    figures.events_rejected = rejected.load(Ordering::Relaxed);
    figures.pops = latencies.len();
    figures.pops_lost = missing(&shared);
    figures.pops_misrouted = shared.misrouted.load(Ordering::Relaxed);
    figures.pops_with_customer = shared.with_customer.load(Ordering::Relaxed);
    figures.p50_ms = pct(&latencies, 0.5);
    figures.p99_ms = pct(&latencies, 0.99);
    figures.max_ms = latencies.last().copied().unwrap_or(0) as f64 / 1e6;
    figures.post_p50_ms = pct(&posts, 0.5);
    figures.post_p99_ms = pct(&posts, 0.99);
    figures.ended_p50_ms = pct(&ended, 0.5);
    figures.ended_p99_ms = pct(&ended, 0.99);
    figures.consoles_closed = shared.closed.load(Ordering::Relaxed);
    println!(
        "figures {}",
        serde_json::to_string(&figures).expect("figures")
    );
}
