//! `GET /metrics`: what the daemon is doing, as Prometheus text (OpenMetrics), every name
//! prefixed `ringside_`.
//!
//! Two kinds of figures. Counters and the latency histogram that nothing else keeps live in
//! [`Metrics`], and are bumped where the thing happens (the call service counts events in, the hub
//! observes pop latency, the console socket counts refused messages, the outbound engine counts
//! dial outcomes). Figures that a component already keeps (the SIP core's `SipCounters`, the hub's
//! `HubCounters`, the HTTP rate limiter's rejections) or that are a state rather than a count
//! (connections, live calls, tasks by state, the database pool) are read when Prometheus scrapes,
//! so nothing is counted twice. Tasks by state come from the database; that answer is cached for
//! [`TASKS_CACHE`] so a scraper, however eager, costs at most one query per period.
//!
//! The registry is built afresh for each scrape from clones of the live metrics (they share their
//! values), so there is no global state and several applications in one process (the tests) each
//! count their own.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::call::Source;
use crate::daemon::AppState;

/// How long the task counts read from the database are reused.
pub const TASKS_CACHE: Duration = Duration::from_secs(5);

/// The content type of OpenMetrics text, which Prometheus scrapes natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Call-event sources always shown, at zero until their first event.
const SOURCES: [Source; 4] = [Source::Webhook, Source::Sip, Source::Ami, Source::Esl];

/// Why a console message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsRefusal {
    /// Larger than the console socket's message limit.
    Size,
    /// Over the console socket's message rate.
    Rate,
}

impl WsRefusal {
    fn as_str(self) -> &'static str {
        match self {
            WsRefusal::Size => "size",
            WsRefusal::Rate => "rate",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// One label whose name is only known at run time (the SIP counters name their own).
type OneLabel = [(&'static str, &'static str); 1];

/// Tasks by state and when they were read.
type TaskCounts = (Instant, Vec<(String, i64)>);

/// The metrics nothing else keeps. Cheap to share: every field is a handle on shared values.
#[derive(Debug)]
pub struct Metrics {
    call_events: Family<SourceLabel, Counter>,
    pop_latency: Histogram,
    ws_refused: Family<ReasonLabel, Counter>,
    dial_attempts: Family<OutcomeLabel, Counter>,
    tasks: tokio::sync::Mutex<Option<TaskCounts>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let call_events = Family::default();
        for source in SOURCES {
            let _ = call_events.get_or_create_owned(&SourceLabel {
                source: source.as_str(),
            });
        }
        let ws_refused = Family::default();
        for reason in [WsRefusal::Size, WsRefusal::Rate] {
            let _ = ws_refused.get_or_create_owned(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        let dial_attempts = Family::default();
        for outcome in ["answered", "busy", "no_answer", "failed", "unknown"] {
            let _ = dial_attempts.get_or_create_owned(&OutcomeLabel {
                outcome: outcome.to_string(),
            });
        }
        Metrics {
            call_events,
            // 1 ms to about 8 s: a pop is meant to take milliseconds; the tail shows trouble.
            pop_latency: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 14),
            ),
            ws_refused,
            dial_attempts,
            tasks: tokio::sync::Mutex::new(None),
        }
    }

    /// A call event was accepted (journaled) from `source`.
    pub fn call_event(&self, source: Source) {
        self.call_events
            .get_or_create(&SourceLabel {
                source: source.as_str(),
            })
            .inc();
    }

    /// A pop was queued on a console connection `since` its event was received.
    pub fn pop_queued(&self, since: Instant) {
        self.pop_latency.observe(since.elapsed().as_secs_f64());
    }

    /// A console message was refused (and its socket closed).
    pub fn ws_refused(&self, why: WsRefusal) {
        self.ws_refused
            .get_or_create(&ReasonLabel {
                reason: why.as_str(),
            })
            .inc();
    }

    /// A dial attempt ended with `outcome` (`answered`, `busy`, `no_answer`, `failed`, ...).
    pub fn dial_attempt(&self, outcome: &str) {
        self.dial_attempts
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Tasks by state, from the database at most once per [`TASKS_CACHE`]; the last answer when
    /// the database does not answer, none when it never did.
    async fn task_states(&self, state: &AppState) -> Vec<(String, i64)> {
        let mut cache = self.tasks.lock().await;
        if let Some((at, counts)) = cache.as_ref() {
            if at.elapsed() < TASKS_CACHE {
                return counts.clone();
            }
        }
        match state.storage.task_counts().await {
            Ok(rows) => {
                let mut by_state: Vec<(String, i64)> = Vec::new();
                for (_kind, task_state, n) in rows {
                    match by_state.iter_mut().find(|(s, _)| *s == task_state) {
                        Some((_, total)) => *total += n,
                        None => by_state.push((task_state, n)),
                    }
                }
                by_state.sort();
                *cache = Some((Instant::now(), by_state.clone()));
                by_state
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: task counts not read");
                cache.as_ref().map(|(_, c)| c.clone()).unwrap_or_default()
            }
        }
    }
}

fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

/// The whole exposition, read now.
pub async fn render(state: &AppState) -> String {
    let metrics = &state.metrics;
    let mut registry = Registry::with_prefix("ringside");

    registry.register(
        "call_events",
        "Call events accepted (journaled), by the ingress they came from",
        metrics.call_events.clone(),
    );
    let hub = &state.hub.counters;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    registry.register(
        "pops_sent",
        "Screen pops queued on agent connections",
        counter(load(&hub.pops_sent)),
    );
    registry.register(
        "pops_replayed",
        "Unacknowledged pops sent again to a reconnecting console",
        counter(load(&hub.replays)),
    );
    registry.register(
        "call_updates_sent",
        "Call updates (answered, answered elsewhere, ended) queued on agent connections",
        counter(load(&hub.updates_sent)),
    );
    registry.register(
        "pop_latency_seconds",
        "Time from a call event reaching the call service to its pop being queued on a connection",
        metrics.pop_latency.clone(),
    );

    let floor = state.hub.snapshot().await;
    registry.register(
        "ws_connections",
        "Console WebSocket connections open",
        gauge(floor.connections as i64),
    );
    registry.register(
        "agents_ready",
        "Agents connected and ready",
        gauge(floor.agents_ready as i64),
    );
    registry.register(
        "ws_slow_disconnects",
        "Console connections dropped because their queue was full",
        counter(load(&hub.slow_disconnects)),
    );
    registry.register(
        "ws_messages_refused",
        "Console messages refused (socket closed) for size or rate",
        metrics.ws_refused.clone(),
    );
    registry.register(
        "http_rate_limited",
        "HTTP requests answered 429",
        counter(load(&state.rate_limiter.rejected)),
    );

    let calls = state.calls.counts().await;
    let live: Family<StateLabel, Gauge> = Family::default();
    for (name, n) in [
        ("ringing", calls.ringing),
        ("queued", calls.queued),
        ("answered", calls.answered),
        ("transferring", calls.transferring),
    ] {
        live.get_or_create(&StateLabel { state: name.into() })
            .set(n as i64);
    }
    registry.register("calls_active", "Calls going on now, by state", live);

    let tasks: Family<StateLabel, Gauge> = Family::default();
    for task_state in crate::api::tasks::STATES {
        let _ = tasks.get_or_create_owned(&StateLabel {
            state: task_state.to_string(),
        });
    }
    for (task_state, n) in metrics.task_states(state).await {
        tasks
            .get_or_create(&StateLabel { state: task_state })
            .set(n);
    }
    registry.register(
        "tasks",
        "Outbound tasks by state (read from the database, cached briefly)",
        tasks,
    );
    registry.register(
        "dial_attempts",
        "Dial attempts by outcome",
        metrics.dial_attempts.clone(),
    );

    let (size, idle) = state.storage.pool_usage();
    registry.register(
        "db_pool_connections",
        "Database connections open",
        gauge(i64::from(size)),
    );
    registry.register(
        "db_pool_idle_connections",
        "Database connections open and idle",
        gauge(idle as i64),
    );
    registry.register(
        "db_pool_max_connections",
        "Database connections allowed (database.max_connections)",
        gauge(i64::from(state.settings.database.max_connections)),
    );

    if let Some(sip) = &state.sip {
        register_sip(&mut registry, sip.counters());
    }

    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::warn!(error = %e, "metrics: encoding failed");
    }
    text
}

/// The SIP core's own counters, as they name themselves (`sip_..._total`, one label at most).
fn register_sip(registry: &mut Registry, counters: &crate::ingress::sip::SipCounters) {
    let mut families: Vec<(&'static str, Family<OneLabel, Counter>)> = Vec::new();
    let mut plain: Vec<(&'static str, u64)> = Vec::new();
    for sample in counters.samples() {
        let name = sample.name.strip_suffix("_total").unwrap_or(sample.name);
        match sample.label {
            Some((label, value)) => {
                let family = match families.iter().position(|(n, _)| *n == name) {
                    Some(i) => &families[i].1,
                    None => {
                        families.push((name, Family::default()));
                        &families[families.len() - 1].1
                    }
                };
                family.get_or_create(&[(label, value)]).inc_by(sample.value);
            }
            None => plain.push((name, sample.value)),
        }
    }
    for (name, family) in families {
        registry.register(name, sip_help(name), family);
    }
    for (name, value) in plain {
        registry.register(name, sip_help(name), counter(value));
    }
}

fn sip_help(name: &str) -> &'static str {
    match name {
        "sip_requests_in" => "SIP requests received, by method",
        "sip_responses_in" => "SIP responses received",
        "sip_responses_out" => "SIP responses sent, by status class",
        "sip_drops" => "SIP messages (or the work they caused) dropped, by reason",
        "sip_bans" => "SIP sources banned for flooding",
        "sip_events_submitted" => "Call events the SIP ingress handed to the call service",
        "sip_retransmissions_absorbed" => "SIP request retransmissions absorbed by a transaction",
        "sip_retransmissions_sent" => "SIP responses retransmitted on a timer",
        "sip_tcp_connections_accepted" => "SIP TCP connections accepted",
        _ => "SIP counter",
    }
}

/// `GET /metrics`.
pub async fn serve(State(state): State<AppState>) -> Response {
    let text = render(&state).await;
    (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}
