//! `POST /api/v1/call-events`: a PBX or a script reports a call event over HTTP.
//!
//! Two body forms are accepted, as JSON or as a URL-encoded form: the native one
//! (`event` = `ringing` | `answered` | `hangup`, `call_id`, `from`, `to`, `direction`, `agent`,
//! `cause`) and the generic CTI form helpdesk products use (`event` = `newCall` | `answer` |
//! `hangup`, `callId`, `from`, `to`, `direction` = `in` | `out`, `user[]`, `answeringNumber`,
//! `cause`). The event is acknowledged (202) only once it is in the journal.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::api::{ApiError, ApiJson, ApiResult, Caller};
use crate::auth::Role;
use crate::call::{AgentId, Audience, CallEvent, Direction, EventKind, Party, Source};
use crate::calls::SubmitError;
use crate::daemon::AppState;
use crate::matching;
use crate::storage::now_ms;

use super::webhook_body::{self, BodyError, RawEvent};

/// The body `POST /call-events` accepts, as the document describes it. The parser
/// (`webhook_body`, fuzzed on its own) reads it field by field, so this type only describes it.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CallEventBody {
    /// Native: `ringing`, `answered`, `hangup` (also `abandoned`, `transferred`); CTI form:
    /// `newCall`, `answer`, `hangup`.
    event: String,
    /// The PBX's call id (native form).
    call_id: Option<String>,
    /// The PBX's call id (CTI form).
    #[serde(rename = "callId")]
    call_id_cti: Option<String>,
    /// The caller's number (any format).
    from: Option<String>,
    /// The number, extension or queue dialed.
    to: Option<String>,
    /// `inbound` | `outbound` (also `in` | `out`); inbound when absent.
    direction: Option<String>,
    /// The agent (name as given to `agent add`, or extension) whose phone rings or answered.
    agent: Option<String>,
    /// CTI form: the agents whose phones ring (`user[]` in a form).
    #[serde(default)]
    user: Vec<String>,
    /// CTI form: the extension that answered.
    #[serde(rename = "answeringNumber")]
    answering_number: Option<String>,
    /// Why the call ended (hangup).
    cause: Option<String>,
    /// Unix milliseconds of the event at the source; now when absent.
    timestamp: Option<i64>,
}

/// The answer to an accepted call event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventAccepted {
    pub accepted: bool,
    /// The event's place in the journal.
    pub id: i64,
    pub call_id: String,
}

/// A number as reported and as normalized.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PartyView {
    pub raw: String,
    pub e164: Option<String>,
}

/// A call going on now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LiveCallView {
    pub call_id: String,
    /// Other ids the same call is known by (one per source that reported it).
    pub aliases: Vec<String>,
    /// `ringing`, `queued`, `answered`, `transferring`.
    pub state: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    pub caller: Option<PartyView>,
    pub dialed: Option<PartyView>,
    /// Unix milliseconds.
    pub started_at: i64,
    pub answered_at: Option<i64>,
    /// The agent who answered.
    pub answered_by: Option<String>,
    /// Agents whose phones ring for it now.
    pub ringing_agents: Vec<String>,
    /// Where it was reported from: `webhook`, `sip`, `ami`, `esl`.
    pub sources: Vec<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_event", message)
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<RawEvent> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    webhook_body::parse(content_type, body).map_err(|e| match e {
        BodyError::Form(m) => ApiError::bad_request("invalid_form", m),
        BodyError::UnsupportedMediaType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            e.to_string(),
        ),
        BodyError::Json(m) => ApiError::bad_request("invalid_json", m),
        BodyError::NotObject => ApiError::bad_request("invalid_json", e.to_string()),
        BodyError::Invalid(m) => invalid(m),
    })
}

fn bounded<'a>(field: &str, v: Option<&'a str>, max: usize) -> ApiResult<Option<&'a str>> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.len() > max => Err(invalid(format!("{field} is longer than {max} bytes"))),
        // Stored as text, which PostgreSQL refuses with a NUL in it.
        Some(s) if s.contains('\0') => {
            Err(invalid(format!("{field} must not contain NUL characters")))
        }
        other => Ok(other),
    }
}

/// Turns a received body into a call event, resolving agents through the directory.
fn to_call_event(state: &AppState, raw: RawEvent) -> ApiResult<CallEvent> {
    let event = raw
        .event
        .as_deref()
        .map(str::trim)
        .ok_or_else(|| invalid("missing field `event`"))?;
    let call_id = bounded(
        "call_id",
        raw.call_id.as_deref().or(raw.call_id_cti.as_deref()),
        crate::call::MAX_CALL_ID_BYTES,
    )?
    .ok_or_else(|| invalid("missing field `call_id` (or `callId`)"))?
    .to_string();
    let from = bounded("from", raw.from.as_deref(), 128)?;
    let to = bounded("to", raw.to.as_deref(), 128)?;
    let agent = bounded("agent", raw.agent.as_deref(), 128)?;
    let answering = bounded("answeringNumber", raw.answering_number.as_deref(), 128)?;
    let cause = bounded("cause", raw.cause.as_deref(), 128)?.map(String::from);
    if raw.user.len() > 100 || raw.user.iter().any(|u| u.len() > 128 || u.contains('\0')) {
        return Err(invalid(
            "user[]: at most 100 entries of 128 bytes, without NUL characters",
        ));
    }
    let direction = match raw.direction.as_deref().map(str::trim) {
        None | Some("") | Some("inbound") | Some("in") | Some("incoming") => Direction::Inbound,
        Some("outbound") | Some("out") | Some("outgoing") => Direction::Outbound,
        Some(other) => {
            return Err(invalid(format!(
                "direction `{other}` is not inbound/outbound (in/out)"
            )));
        }
    };
    let settings = &state.settings;
    let dialed_raw = to.map(|t| Party::new(t, None));
    let (caller, dialed) = match direction {
        Direction::Inbound => (
            from.map(|f| matching::party(settings, f, dialed_raw.as_ref())),
            to.map(|t| matching::party(settings, t, None)),
        ),
        Direction::Outbound => (
            from.map(|f| matching::party(settings, f, None)),
            to.map(|t| matching::party(settings, t, None)),
        ),
    };
    // Named agents: `agent`, else `user[]`; unknown names pop to nobody rather than to everyone.
    let named: Vec<&str> = agent
        .into_iter()
        .chain(raw.user.iter().map(|u| u.trim()).filter(|u| !u.is_empty()))
        .collect();
    let resolve = |names: &[&str]| -> Vec<AgentId> {
        let mut ids = Vec::new();
        for n in names {
            match state.directory.resolve(n) {
                Some(id) if !ids.contains(&AgentId(id)) => ids.push(AgentId(id)),
                Some(_) => {}
                None => tracing::info!(
                    agent = n,
                    "call event names an agent ringside does not know"
                ),
            }
        }
        ids
    };
    let audience = || -> Audience {
        if !named.is_empty() {
            return Audience::Agents(resolve(&named));
        }
        if let Some(to) = to {
            if let Some(id) = state.directory.resolve(to) {
                return Audience::Agents(vec![AgentId(id)]);
            }
            if settings.console.queues.iter().any(|q| q.name == to) {
                return Audience::Queue(Some(to.to_string()));
            }
        }
        Audience::Queue(None)
    };
    let kind = match event {
        "ringing" | "newCall" | "ring" | "new_call" => EventKind::Ringing {
            audience: audience(),
        },
        "answered" | "answer" => {
            let who: Vec<&str> = agent
                .or(answering)
                .into_iter()
                .chain(if agent.is_none() && answering.is_none() {
                    named.clone()
                } else {
                    Vec::new()
                })
                .collect();
            EventKind::Answered {
                by: resolve(&who).into_iter().next(),
            }
        }
        "hangup" | "hangUp" | "ended" => EventKind::Hangup {
            cause,
            answered_elsewhere: false,
        },
        "abandoned" => EventKind::Abandoned,
        "transferred" | "transfer" => EventKind::Transferred { to: audience() },
        other => {
            return Err(ApiError::unprocessable(
                "unknown_event",
                format!(
                    "event `{other}` is not one of ringing, answered, hangup (or newCall, answer, hangup)"
                ),
            ));
        }
    };
    Ok(CallEvent {
        source: Source::Webhook,
        call_id,
        at_ms: raw
            .timestamp
            .filter(|t| (now_ms() - t).abs() < 86_400_000)
            .unwrap_or_else(now_ms),
        direction,
        caller,
        dialed,
        kind,
    })
}

#[utoipa::path(post, path = "/call-events", tag = "calls",
    request_body(description = "A call event, native or in the generic CTI form, as JSON or a URL-encoded form",
        content((CallEventBody = "application/json"), (CallEventBody = "application/x-www-form-urlencoded"))),
    responses((status = 202, description = "Journaled; it will be acted on", body = EventAccepted), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn receive(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    caller.require(&[Role::Pbx, Role::Admin])?;
    let raw = parse_body(&headers, &body)?;
    let event = to_call_event(&state, raw)?;
    let call_id = event.call_id.clone();
    match state.calls.submit(event).await {
        Ok(id) => Ok((
            StatusCode::ACCEPTED,
            ApiJson(EventAccepted {
                accepted: true,
                id,
                call_id,
            }),
        )),
        Err(SubmitError::Storage(e)) => Err(e.into()),
        Err(SubmitError::Stopped) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the daemon is stopping; send again",
        )),
    }
}

/// `GET /api/v1/calls`: the calls going on now.
#[utoipa::path(get, path = "/calls", tag = "calls",
    responses((status = 200, description = "The calls going on now", body = Vec<LiveCallView>)))]
pub async fn live_calls(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiJson<Vec<LiveCallView>>> {
    caller.require_staff()?;
    let calls = state.calls.live().await;
    let party = |p: &Party| PartyView {
        raw: p.raw.clone(),
        e164: p.e164.clone(),
    };
    let list = calls
        .iter()
        .map(|c| LiveCallView {
            call_id: c.call_id.clone(),
            aliases: c.aliases.clone(),
            state: c.state.as_str().to_string(),
            direction: c.direction.as_str().to_string(),
            caller: c.caller.as_ref().map(party),
            dialed: c.dialed.as_ref().map(party),
            started_at: c.started_at_ms,
            answered_at: c.answered_at_ms,
            answered_by: c.answered_by.and_then(|a| state.directory.name_of(a.0)),
            ringing_agents: c
                .ringing_agents
                .iter()
                .filter_map(|a| state.directory.name_of(a.0))
                .collect(),
            sources: c.sources.iter().map(|s| s.as_str().to_string()).collect(),
        })
        .collect();
    Ok(ApiJson(list))
}
