//! The agent WebSocket `GET /ws`: authentication before the upgrade, then one task per connection
//! that forwards the hub's messages and handles the agent's (ack, disposition, select_customer,
//! status).
//!
//! Limits: messages over 64 KiB close the socket (1009); more than 20 messages a second for 5 s
//! closes it (1008); a console that answers no ping for 90 s is closed. What the agent sends is
//! checked against what they were sent: a disposition or a customer pick is accepted only for a
//! call whose pop this agent holds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, request_token};
use crate::auth::{Role, hash_token};
use crate::console::messages;
use crate::daemon::AppState;
use crate::hub::{AgentStatus, Outgoing};
use crate::metrics::WsRefusal;
use crate::storage::agents::Agent;
use crate::storage::interactions::NewInteraction;
use crate::storage::now_ms;

pub const PROTOCOL: &str = "ringside.v1";
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The socket's read buffer. tungstenite allocates it up front and fills it with zeros on the
/// first read, so its default of 128 KiB was 128 KiB of resident memory per idle console; what
/// agents send (acks, statuses, dispositions) is small, and a larger message grows the buffer
/// for as long as it needs.
const READ_BUFFER_BYTES: usize = 1024;
const PING_EVERY: Duration = Duration::from_secs(30);
const SILENCE_LIMIT: Duration = Duration::from_secs(90);

/// Agent → server messages.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AgentMessage {
    Ack {
        seq: u64,
    },
    Disposition {
        call_id: String,
        code: String,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        satisfaction: Option<i64>,
    },
    SelectCustomer {
        call_id: String,
        customer_id: i64,
    },
    Status {
        state: String,
    },
    AcceptTask {
        task_id: i64,
    },
    TaskResult {
        task_id: i64,
        outcome: String,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        satisfaction: Option<i64>,
    },
}

/// The token from `Sec-WebSocket-Protocol: ringside.v1, TOKEN`, else `?token=`.
fn ws_token(parts: &Parts) -> Option<String> {
    let offered: Vec<String> = parts
        .headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if offered.iter().any(|p| p == PROTOCOL) {
        if let Some(token) = offered.into_iter().find(|p| p != PROTOCOL) {
            return Some(token);
        }
    }
    request_token(parts).filter(|t| !t.is_empty())
}

/// Same origin as the page (Host), or listed in `http.allowed_origins`; no Origin (non-browser) is allowed.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return true;
    };
    if allowed.iter().any(|a| a == origin || a == "*") {
        return true;
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Checks a WebSocket request before the upgrade, for every socket ringside serves: the Origin
/// against the allow-list, the token (`Sec-WebSocket-Protocol: ringside.v1, TOKEN` or `?token=`)
/// and the caller's role (`permitted`). On refusal, the HTTP answer to send instead (401, 403).
pub async fn authenticate(
    state: &AppState,
    parts: &mut Parts,
    permitted: fn(Role) -> bool,
) -> Result<(Agent, WebSocketUpgrade), Response> {
    if !origin_allowed(&parts.headers, &state.settings.http.allowed_origins) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this Origin may not open a ringside WebSocket",
        )
        .into_response());
    }
    let Some(token) = ws_token(parts).filter(|t| t.len() <= 256) else {
        return Err(ApiError::unauthorized().into_response());
    };
    let agent = match state.storage.agent_by_token_hash(&hash_token(&token)).await {
        Ok(Some(agent)) if permitted(agent.role) => agent,
        Ok(Some(_)) => return Err(ApiError::forbidden().into_response()),
        Ok(None) => return Err(ApiError::unauthorized().into_response()),
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    match <WebSocketUpgrade as axum::extract::FromRequestParts<AppState>>::from_request_parts(
        parts, state,
    )
    .await
    {
        Ok(ws) => Ok((agent, ws)),
        Err(rejection) => Err(rejection.into_response()),
    }
}

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    let (agent, ws) = match authenticate(&state, &mut parts, Role::is_staff).await {
        Ok(pair) => pair,
        Err(refusal) => return refusal,
    };
    tracing::info!(agent = agent.id, %peer, "console connected");
    ws.protocols([PROTOCOL])
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| serve(socket, state, agent))
}

async fn serve(socket: WebSocket, state: AppState, agent: Agent) {
    let Some(mut conn) = state.hub.connect(agent.id).await else {
        return;
    };
    // Futures awaited once, or per message, are boxed: inline they would size every idle
    // connection's task for their largest state.
    if let Err(e) = Box::pin(
        state
            .storage
            .set_agent_status(agent.id, AgentStatus::Ready.as_str()),
    )
    .await
    {
        tracing::warn!(error = %e, "could not store agent status");
    }
    let (mut sink, mut stream) = socket.split();
    let hello = json!({
        "type": "hello",
        "agent": {"id": agent.id, "name": agent.name, "role": agent.role, "extensions": agent.extensions, "status": "ready"},
        "dispositions": state.settings.console.dispositions.iter().map(|d| json!({"code": d.code, "label": d.label})).collect::<Vec<_>>(),
        "server_time": now_ms(),
    });
    if sink
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        state.hub.disconnect(agent.id, conn.id).await;
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
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
        tokio::select! {
            outgoing = conn.rx.recv() => match outgoing {
                Some(Outgoing::Text(text)) => {
                    if sink.send(Message::Text(text.as_ref().into())).await.is_err() { break; }
                }
                Some(Outgoing::Close(code, reason)) => { let _ = sink.send(close_with(code, reason)).await; break; }
                None => { let _ = sink.send(close_with(1013, "too slow")).await; break; }
            },
            incoming = stream.next() => {
                let message = match incoming {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => {
                        if is_too_large(e) {
                            state.metrics.ws_refused(WsRefusal::Size);
                        }
                        break;
                    }
                    None => break,
                };
                last_heard = Instant::now();
                if window_start.elapsed() > Duration::from_secs(5) {
                    window_start = Instant::now();
                    window_count = 0;
                }
                window_count += 1;
                if window_count > 100 {
                    tracing::warn!(agent = agent.id, "console sends too many messages; closed");
                    state.metrics.ws_refused(WsRefusal::Rate);
                    let _ = sink.send(close_with(1008, "too many messages")).await;
                    break;
                }
                match message {
                    Message::Text(text) => {
                        if let Some(reply) = Box::pin(handle(&state, &agent, text.as_str())).await {
                            if sink.send(Message::Text(reply.to_string().into())).await.is_err() { break; }
                        }
                    }
                    Message::Binary(_) => {
                        let reply = messages::error("unsupported", "binary messages are not understood; send JSON text");
                        if sink.send(Message::Text(reply.to_string().into())).await.is_err() { break; }
                    }
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    let _ = sink.send(close_with(1001, "no answer to ping")).await;
                    break;
                }
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() { break; }
            }
        }
    }
    state.hub.disconnect(agent.id, conn.id).await;
    tracing::info!(agent = agent.id, "console disconnected");
}

/// Whether a read failed because the message was over the size limit.
fn is_too_large(error: axum::Error) -> bool {
    matches!(
        error.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// Handles one message from an agent; returns the direct reply, if any.
async fn handle(state: &AppState, agent: &Agent, text: &str) -> Option<Value> {
    let not_understood = |e: serde_json::Error| {
        Some(messages::error(
            "invalid_message",
            &format!("not a message this server understands: {e}"),
        ))
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return not_understood(e),
    };
    // As at the REST door: text PostgreSQL could not store is refused on every database alike.
    if crate::api::holds_nul(&value) {
        return Some(messages::error("invalid_message", crate::api::NUL_REFUSED));
    }
    let message: AgentMessage = match serde_json::from_value(value) {
        Ok(m) => m,
        Err(e) => return not_understood(e),
    };
    match message {
        AgentMessage::Ack { seq } => {
            state.hub.ack(agent.id, seq).await;
            None
        }
        AgentMessage::Status { state: s } => {
            let status = match s.as_str() {
                "ready" => AgentStatus::Ready,
                "away" => AgentStatus::Away,
                _ => {
                    return Some(messages::error(
                        "invalid_status",
                        "state must be ready or away",
                    ));
                }
            };
            state.hub.set_status(agent.id, status).await;
            state.engine.nudge();
            if let Err(e) = state
                .storage
                .set_agent_status(agent.id, status.as_str())
                .await
            {
                tracing::warn!(error = %e, "could not store agent status");
            }
            Some(messages::status(status.as_str()))
        }
        AgentMessage::Disposition {
            call_id,
            code,
            note,
            satisfaction,
        } => Some(disposition(state, agent, &call_id, &code, note.as_deref(), satisfaction).await),
        AgentMessage::SelectCustomer {
            call_id,
            customer_id,
        } => select_customer(state, agent, &call_id, customer_id).await,
        AgentMessage::AcceptTask { task_id } => {
            match state.engine.accept(agent.id, task_id).await {
                Ok(()) => None,
                Err(e) => Some(messages::task_error(task_id, e.code, &e.message)),
            }
        }
        AgentMessage::TaskResult {
            task_id,
            outcome,
            note,
            satisfaction,
        } => match state
            .engine
            .result(agent.id, task_id, &outcome, note.as_deref(), satisfaction)
            .await
        {
            Ok(()) => Some(serde_json::json!({"type": "saved", "task_id": task_id})),
            Err(e) => Some(messages::task_error(task_id, e.code, &e.message)),
        },
    }
}

async fn disposition(
    state: &AppState,
    agent: &Agent,
    call_id: &str,
    code: &str,
    note: Option<&str>,
    satisfaction: Option<i64>,
) -> Value {
    if !state
        .settings
        .console
        .dispositions
        .iter()
        .any(|d| d.code == code)
    {
        return messages::error(
            "invalid_disposition",
            &format!("`{code}` is not a configured disposition code"),
        );
    }
    if note.is_some_and(|n| n.chars().count() > 4000) {
        return messages::error("invalid_note", "the note is longer than 4000 characters");
    }
    if satisfaction.is_some_and(|s| !(1..=5).contains(&s)) {
        return messages::error("invalid_satisfaction", "satisfaction must be 1 to 5");
    }
    if !state.hub.holds_pop(agent.id, call_id).await {
        return messages::error("unknown_call", "no pop of this call was sent to you");
    }
    let result = async {
        let id = match state.storage.call_interaction(call_id).await? {
            Some(existing) => existing.id,
            None => {
                // The call is still going on: record it now; its end fills in the times.
                let matched = state.calls.matched(call_id).await;
                let customer_id = matched
                    .as_ref()
                    .and_then(|m| m.best())
                    .map(|c| c.customer.id);
                state
                    .storage
                    .add_interaction(&NewInteraction {
                        customer_id,
                        call_id: Some(call_id.to_string()),
                        kind: "call".into(),
                        direction: Some("inbound".into()),
                        number_e164: matched.and_then(|m| m.number),
                        agent_id: Some(agent.id),
                        started_at: now_ms(),
                        ..Default::default()
                    })
                    .await?
                    .id
            }
        };
        state
            .storage
            .set_disposition(id, code, note, satisfaction, Some(agent.id))
            .await?;
        if code == "callback_requested" {
            let interaction = state.storage.interaction(id).await?;
            if let (Some(customer_id), Some(number)) =
                (interaction.customer_id, interaction.number_e164.as_deref())
            {
                crate::outbound::generators::requested_callback(
                    &state.storage,
                    &state.settings,
                    customer_id,
                    number,
                    now_ms() + 3_600_000,
                    Some(agent.id),
                    note,
                )
                .await?;
            }
        }
        if code == "complaint" {
            if let Some(customer_id) = state.storage.interaction(id).await?.customer_id {
                let summary = note
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or("Complaint recorded on a call");
                state
                    .storage
                    .open_complaint(customer_id, summary, Some(agent.id), Some(agent.id))
                    .await?;
            }
        }
        Ok::<i64, crate::storage::StorageError>(id)
    }
    .await;
    match result {
        Ok(id) => messages::saved(call_id, id),
        Err(e) => {
            tracing::warn!(error = %e, "disposition not saved");
            messages::error("not_saved", "the disposition could not be saved; try again")
        }
    }
}

async fn select_customer(
    state: &AppState,
    agent: &Agent,
    call_id: &str,
    customer_id: i64,
) -> Option<Value> {
    if !state.hub.holds_pop(agent.id, call_id).await {
        return Some(messages::error(
            "unknown_call",
            "no pop of this call was sent to you",
        ));
    }
    let Some(mut matched) = state.calls.matched(call_id).await else {
        return Some(messages::error(
            "unknown_call",
            "this call is over or was never matched",
        ));
    };
    let Some(pos) = matched
        .ranked
        .iter()
        .position(|c| c.customer.id == customer_id)
    else {
        return Some(messages::error(
            "unknown_customer",
            "that customer is not a candidate for this call",
        ));
    };
    let chosen = matched.ranked.remove(pos);
    matched.ranked.insert(0, chosen);
    matched.kind = crate::matching::MatchKind::Remembered;
    state.calls.set_match(call_id, matched.clone());
    if let Ok(Some(interaction)) = state.storage.call_interaction(call_id).await {
        if let Err(e) = state
            .storage
            .set_interaction_customer(interaction.id, customer_id)
            .await
        {
            tracing::warn!(error = %e, "could not move the call to the chosen customer");
        }
    }
    if let Some(number) = &matched.number {
        if let Err(e) = state
            .storage
            .remember_choice(number, customer_id, Some(agent.id))
            .await
        {
            tracing::warn!(error = %e, "could not remember the customer choice");
        }
    }
    let live = state.calls.live().await;
    let call = live
        .iter()
        .find(|c| c.call_id == call_id || c.aliases.iter().any(|a| a == call_id));
    let (direction, caller, dialed) = match call {
        Some(c) => (c.direction, c.caller.clone(), c.dialed.clone()),
        None => (crate::call::Direction::Inbound, None, None),
    };
    match crate::console::pop::build(
        &state.storage,
        &state.settings,
        call_id,
        direction,
        caller.as_ref(),
        dialed.as_ref(),
        &matched,
    )
    .await
    {
        Ok(body) => {
            state.hub.repop(agent.id, call_id.to_string(), body).await;
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not rebuild the pop");
            Some(messages::error(
                "not_saved",
                "the choice could not be applied; try again",
            ))
        }
    }
}
