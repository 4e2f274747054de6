//! The wallboard: `GET /wallboard`, a page for a screen across the call-centre floor, and its live
//! data over `GET /ws/wallboard` (a supervisor's or admin's token, checked exactly as the console
//! socket checks it: [`ws::authenticate`]).
//!
//! Each socket gets a snapshot when it opens, another after every change on the floor (a call
//! rings, is answered or ends, an agent comes, goes or changes state: [`Hub::changes`]), at most
//! one per [`DEBOUNCE`], and a fresh one every [`REFRESH`] for the figures only the database
//! knows (callbacks, reminders, campaigns, today's answer rate). A snapshot is small and built in a
//! few indexed queries; at most [`MAX_VIEWERS`] wallboards are served at once. Callers' numbers
//! are masked: the board is meant to be seen by a room.
//!
//! [`Hub::changes`]: crate::hub::Hub::changes

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use chrono_tz::Tz;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;

use super::ws::{self, PROTOCOL};
use crate::api::ApiError;
use crate::auth::Role;
use crate::call::CallState;
use crate::daemon::AppState;
use crate::storage::{StorageError, now_ms};

const PAGE_HTML: &str = include_str!("static/wallboard.html");
const PAGE_JS: &str = include_str!("static/wallboard.js");
const PAGE_CSS: &str = include_str!("static/wallboard.css");

/// Least time between two snapshots sent because something changed.
pub const DEBOUNCE: Duration = Duration::from_millis(500);
/// A snapshot is sent at least this often, with fresh database figures.
pub const REFRESH: Duration = Duration::from_secs(3);
/// A callback due for longer than this is overdue (the supervisor page uses the same limit).
pub const OVERDUE_AFTER_MS: i64 = 30 * 60_000;
/// Wallboard sockets served at once.
pub const MAX_VIEWERS: usize = 64;
/// Unanswered calls listed by name (the counts cover them all).
const MAX_LISTED_CALLS: usize = 30;
/// The wallboard sends nothing but pongs and a close; anything bigger is refused.
const MAX_MESSAGE_BYTES: usize = 4 * 1024;
const PING_EVERY: Duration = Duration::from_secs(30);
const SILENCE_LIMIT: Duration = Duration::from_secs(90);

static VIEWERS: AtomicUsize = AtomicUsize::new(0);

/// One open wallboard socket; counted while it lives.
struct Viewer;

impl Viewer {
    fn enter() -> Option<Viewer> {
        VIEWERS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_VIEWERS).then_some(n + 1)
            })
            .ok()
            .map(|_| Viewer)
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        VIEWERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `{"type": "wallboard", ...}`: everything the board shows.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Server time (unix ms); ages on the page count from here.
    pub at: i64,
    pub timezone: String,
    pub calls: CallsPanel,
    pub agents: AgentsPanel,
    pub missed: MissedPanel,
    pub callbacks: CallbacksPanel,
    pub reminders: RemindersPanel,
    pub campaigns: Vec<CampaignPanel>,
    pub today: TodayPanel,
}

/// Calls going on now.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallsPanel {
    /// Ringing at agents' phones (inbound) or at the customer's (outbound).
    pub ringing: usize,
    /// Waiting in a queue with no agent's phone ringing.
    pub waiting: usize,
    /// Answered (transfers included).
    pub talking: usize,
    /// When the longest-unanswered inbound call began (unix ms).
    pub oldest_unanswered_at: Option<i64>,
    /// Unanswered calls, oldest first (at most 30).
    pub unanswered: Vec<CallLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallLine {
    pub call_id: String,
    /// `ringing` or `waiting`.
    pub state: &'static str,
    pub direction: &'static str,
    /// The customer's number, masked (`+86138****8000`).
    pub number: Option<String>,
    pub since: i64,
    /// Agents whose phones ring for it.
    pub agents: Vec<String>,
    /// The queue it waits in, when named.
    pub queue: Option<String>,
}

/// Every agent in one state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AgentsPanel {
    pub on_call: Vec<AgentLine>,
    pub ready: Vec<AgentLine>,
    pub away: Vec<AgentLine>,
    pub offline: Vec<AgentLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentLine {
    pub id: i64,
    pub name: String,
}

/// Missed calls whose callback has not been dialed yet.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MissedPanel {
    pub waiting: i64,
    pub oldest_at: Option<i64>,
}

/// Callbacks owed (after a missed call, or requested).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallbacksPanel {
    pub open: i64,
    /// Due now (overdue ones included).
    pub due: i64,
    /// Due for longer than `overdue_after_secs`.
    pub overdue: i64,
    pub overdue_after_secs: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RemindersPanel {
    /// Service reminders still owed and due by the end of today.
    pub due_today: i64,
    /// Reminders that reached the customer today.
    pub done_today: i64,
}

/// A running or paused campaign.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignPanel {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub state: String,
    pub tasks: i64,
    /// Closed tasks (done, failed, cancelled, expired).
    pub closed: i64,
    /// Of which the customer was reached.
    pub reached: i64,
    pub in_call: i64,
    /// `closed / tasks`, 0 to 1.
    pub progress: f64,
}

/// Today's inbound calls (local day in `outbound.default_timezone`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TodayPanel {
    pub date: String,
    pub offered: i64,
    pub answered: i64,
    pub missed: i64,
    pub abandoned: i64,
    /// `answered / offered`; null before the first call.
    pub answer_rate: Option<f64>,
}

/// Builds a snapshot of the floor now.
pub async fn snapshot(state: &AppState) -> Result<Snapshot, StorageError> {
    let now = now_ms();
    let tz: Tz = state
        .settings
        .outbound
        .default_timezone
        .parse()
        .unwrap_or(chrono_tz::Asia::Shanghai);
    let today = Utc::now().with_timezone(&tz).date_naive();
    let day_start = crate::api::reports::day_start(tz, today);
    let day_end = today.succ_opt().map_or(day_start + 86_400_000, |d| {
        crate::api::reports::day_start(tz, d)
    });
    let storage = &state.storage;
    let live = state.calls.live().await;
    let floor = state.hub.snapshot().await;
    let figures = storage
        .floor_figures(now, now - OVERDUE_AFTER_MS, day_start, day_end)
        .await?;
    let counts = storage.call_counts(day_start, day_start, day_end).await?;
    let agents = storage.list_agents().await?;

    let name_of = |id: i64| {
        state
            .directory
            .name_of(id)
            .unwrap_or_else(|| format!("#{id}"))
    };
    let mut calls = CallsPanel::default();
    let mut talking_agents: Vec<i64> = figures.agents_on_outbound.clone();
    let mut unanswered: Vec<CallLine> = Vec::new();
    for call in &live {
        match call.state {
            CallState::Answered | CallState::Transferring => {
                calls.talking += 1;
                talking_agents.extend(call.answered_by.map(|a| a.0));
            }
            CallState::Ringing | CallState::Queued => {
                let waiting = call.state == CallState::Queued;
                if waiting {
                    calls.waiting += 1;
                } else {
                    calls.ringing += 1;
                }
                let inbound = call.direction == crate::call::Direction::Inbound;
                if inbound {
                    calls.oldest_unanswered_at = Some(
                        calls
                            .oldest_unanswered_at
                            .map_or(call.started_at_ms, |t| t.min(call.started_at_ms)),
                    );
                }
                let remote = if inbound { &call.caller } else { &call.dialed };
                unanswered.push(CallLine {
                    call_id: call.call_id.clone(),
                    state: if waiting { "waiting" } else { "ringing" },
                    direction: call.direction.as_str(),
                    number: remote
                        .as_ref()
                        .map(|p| crate::phone::mask(p.e164.as_deref().unwrap_or(&p.raw))),
                    since: call.started_at_ms,
                    agents: call.ringing_agents.iter().map(|a| name_of(a.0)).collect(),
                    queue: call.queues.iter().flatten().next().cloned(),
                });
            }
        }
    }
    unanswered.sort_by_key(|c| c.since);
    unanswered.truncate(MAX_LISTED_CALLS);
    calls.unanswered = unanswered;

    let mut panel = AgentsPanel::default();
    for agent in agents.iter().filter(|a| !a.disabled && a.role.is_staff()) {
        let connected = floor.connected_agent_ids.contains(&agent.id);
        let line = AgentLine {
            id: agent.id,
            name: agent.name.clone(),
        };
        if talking_agents.contains(&agent.id) {
            panel.on_call.push(line);
        } else if floor.ready_agent_ids.contains(&agent.id) {
            panel.ready.push(line);
        } else if connected {
            panel.away.push(line);
        } else if agent.role == Role::Agent {
            // Supervisors and admins count only while they are at a console.
            panel.offline.push(line);
        }
    }

    let mut today_panel = TodayPanel {
        date: today.format("%Y-%m-%d").to_string(),
        ..Default::default()
    };
    for c in counts.iter().filter(|c| c.direction == "inbound") {
        match c.category.as_str() {
            "answered" => today_panel.answered += c.count,
            "missed" => today_panel.missed += c.count,
            "abandoned" => today_panel.abandoned += c.count,
            _ => {}
        }
    }
    today_panel.offered = today_panel.answered + today_panel.missed + today_panel.abandoned;
    today_panel.answer_rate = (today_panel.offered > 0).then(|| {
        ((today_panel.answered as f64 / today_panel.offered as f64) * 1000.0).round() / 1000.0
    });

    let campaigns = figures
        .campaigns
        .iter()
        .map(|c| {
            let count = |states: &[&str]| -> i64 {
                c.tasks_by_state
                    .iter()
                    .filter(|(s, _)| states.contains(&s.as_str()))
                    .map(|(_, n)| n)
                    .sum()
            };
            let tasks = c.tasks_by_state.iter().map(|(_, n)| n).sum::<i64>();
            let closed = count(&["done", "failed", "cancelled", "expired"]);
            CampaignPanel {
                id: c.id,
                name: c.name.clone(),
                kind: c.kind.clone(),
                state: c.state.clone(),
                tasks,
                closed,
                reached: count(&["done"]),
                in_call: count(&["dialing", "connected"]),
                progress: if tasks > 0 {
                    ((closed as f64 / tasks as f64) * 1000.0).round() / 1000.0
                } else {
                    0.0
                },
            }
        })
        .collect();

    Ok(Snapshot {
        kind: "wallboard",
        at: now,
        timezone: tz.name().to_string(),
        calls,
        agents: panel,
        missed: MissedPanel {
            waiting: figures.missed_waiting,
            oldest_at: figures.oldest_missed_at,
        },
        callbacks: CallbacksPanel {
            open: figures.callbacks_open,
            due: figures.callbacks_due,
            overdue: figures.callbacks_overdue,
            overdue_after_secs: OVERDUE_AFTER_MS / 1000,
        },
        reminders: RemindersPanel {
            due_today: figures.reminders_due_today,
            done_today: figures.reminders_done_today,
        },
        campaigns,
        today: today_panel,
    })
}

pub async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Html(PAGE_HTML))
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE_JS,
    )
}

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE_CSS,
    )
}

/// `GET /ws/wallboard`.
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    let (agent, socket) =
        match ws::authenticate(&state, &mut parts, Role::is_supervisor_or_admin).await {
            Ok(pair) => pair,
            Err(refusal) => return refusal,
        };
    let Some(viewer) = Viewer::enter() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_wallboards",
            format!("at most {MAX_VIEWERS} wallboards are served at once"),
        )
        .into_response();
    };
    tracing::info!(agent = agent.id, %peer, "wallboard connected");
    socket
        .protocols([PROTOCOL])
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            serve(socket, state).await;
            drop(viewer);
            tracing::info!(agent = agent.id, "wallboard disconnected");
        })
}

/// The snapshot as a text frame, or an error message the page shows while keeping its figures.
async fn snapshot_message(state: &AppState) -> Message {
    let text = match snapshot(state).await {
        Ok(s) => serde_json::to_string(&s).unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "wallboard snapshot failed");
            super::messages::error(
                "unavailable",
                "the figures could not be read; showing the last ones",
            )
            .to_string()
        }
    };
    Message::Text(text.into())
}

async fn serve(socket: WebSocket, state: AppState) {
    let mut changes = state.hub.changes();
    changes.mark_unchanged();
    let (mut sink, mut stream) = socket.split();
    if sink.send(snapshot_message(&state).await).await.is_err() {
        return;
    }
    let mut last_sent = Instant::now();
    let mut changed = false;
    let mut refresh = tokio::time::interval(REFRESH);
    refresh.reset();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let mut last_heard = Instant::now();
    let mut window_start = Instant::now();
    let mut window_count = 0u32;
    let close_with = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        let send_now = tokio::select! {
            seen = changes.changed(), if !changed => {
                if seen.is_err() {
                    let _ = sink.send(close_with(1001, "server shutting down")).await;
                    break;
                }
                changed = true;
                false
            }
            _ = tokio::time::sleep_until((last_sent + DEBOUNCE).into()), if changed => true,
            _ = refresh.tick() => true,
            incoming = stream.next() => {
                match incoming {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                }
                last_heard = Instant::now();
                if window_start.elapsed() > Duration::from_secs(5) {
                    window_start = Instant::now();
                    window_count = 0;
                }
                window_count += 1;
                if window_count > 100 {
                    let _ = sink.send(close_with(1008, "too many messages")).await;
                    break;
                }
                false
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    let _ = sink.send(close_with(1001, "no answer to ping")).await;
                    break;
                }
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
                false
            }
        };
        if send_now {
            changes.mark_unchanged();
            changed = false;
            if sink.send(snapshot_message(&state).await).await.is_err() {
                break;
            }
            last_sent = Instant::now();
            refresh.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_are_counted_and_capped() {
        let before = VIEWERS.load(Ordering::Acquire);
        let viewers: Vec<Viewer> = std::iter::from_fn(Viewer::enter)
            .take(MAX_VIEWERS + 5)
            .collect();
        assert_eq!(viewers.len(), MAX_VIEWERS - before);
        assert!(Viewer::enter().is_none());
        drop(viewers);
        assert_eq!(VIEWERS.load(Ordering::Acquire), before);
    }
}
