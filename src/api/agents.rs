//! `/api/v1/agents`: who may log in, with which role and extensions; tokens issued and revoked.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiPath, ApiResult, Caller};
use crate::auth::{Role, hash_token, new_token};
use crate::daemon::AppState;
use crate::storage::agents::Agent;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    pub role: Role,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub extensions: Vec<String>,
    /// Token lifetime in days; none = until revoked.
    #[schema(minimum = 1, maximum = 3650)]
    pub token_days: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentUpdate {
    /// A new role: admins only (a supervisor manages agents but promotes nobody); nobody
    /// changes their own.
    pub role: Option<Role>,
    pub extensions: Option<Vec<String>>,
    pub disabled: Option<bool>,
    pub status: Option<String>,
}

/// An agent with its freshly issued token: the only time the token is ever shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub agent: Agent,
    pub token: String,
    pub token_expires_at: Option<i64>,
}

pub(crate) fn check_agent_name(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "name must have 1 to 100 characters",
        ));
    }
    Ok(())
}

pub(crate) fn check_extensions(extensions: &[String]) -> ApiResult<()> {
    if extensions.len() > 20
        || extensions.iter().any(|e| {
            e.is_empty()
                || e.len() > 32
                || !e
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+*#-_.".contains(c))
        })
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "extensions: at most 20, each 1 to 32 characters of letters, digits and + * # - _ .",
        ));
    }
    Ok(())
}

/// Supervisors manage agents; only admins create supervisors, admins and PBX accounts.
fn may_manage(caller: &Caller, role: Role) -> ApiResult<()> {
    match caller.role() {
        Role::Admin => Ok(()),
        Role::Supervisor if role == Role::Agent => Ok(()),
        _ => Err(ApiError::forbidden()),
    }
}

#[utoipa::path(post, path = "/agents", tag = "agents", request_body = AgentInput,
    responses((status = 201, description = "Created; the token is shown this once", body = IssuedToken), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<AgentInput>,
) -> ApiResult<impl IntoResponse> {
    may_manage(&caller, input.role)?;
    check_agent_name(&input.name)?;
    check_extensions(&input.extensions)?;
    let token = new_token();
    let expires = match input.token_days {
        Some(d) if !(1..=3650).contains(&d) => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "token_days must be between 1 and 3650",
            ));
        }
        Some(d) => Some(crate::storage::now_ms() + d * 86_400_000),
        None => None,
    };
    let agent = state
        .storage
        .create_agent(
            input.name.trim(),
            input.role,
            &input.extensions,
            &hash_token(&token),
            expires,
        )
        .await?;
    state.directory.reload(&state.storage).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(IssuedToken {
            agent,
            token,
            token_expires_at: expires,
        }),
    ))
}

#[utoipa::path(get, path = "/agents", tag = "agents",
    responses((status = 200, description = "Every agent", body = Vec<Agent>)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<ApiJson<Vec<Agent>>> {
    caller.require_supervisor()?;
    Ok(ApiJson(state.storage.list_agents().await?))
}

/// The caller's own record (the console uses it to show who is logged in).
#[utoipa::path(get, path = "/agents/me", tag = "agents",
    responses((status = 200, description = "The caller", body = Agent)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<ApiJson<Agent>> {
    let mut agent = caller.agent;
    agent.extensions = state.storage.extensions_of(agent.id).await?;
    Ok(ApiJson(agent))
}

#[utoipa::path(get, path = "/agents/{id}", tag = "agents", params(("id" = i64, Path, description = "Agent id")),
    responses((status = 200, description = "The agent", body = Agent), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Agent>> {
    if caller.agent.id != id {
        caller.require_supervisor()?;
    }
    Ok(ApiJson(state.storage.agent(id).await?))
}

#[utoipa::path(patch, path = "/agents/{id}", tag = "agents", params(("id" = i64, Path, description = "Agent id")), request_body = AgentUpdate,
    responses((status = 200, description = "Updated", body = Agent), (status = 404, description = "No such record", body = crate::api::ErrorBody), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<AgentUpdate>,
) -> ApiResult<ApiJson<Agent>> {
    let target = state.storage.agent(id).await?;
    may_manage(&caller, target.role)?;
    if let Some(role) = input.role.filter(|r| *r != target.role) {
        may_manage(&caller, role)?;
        if id == caller.agent.id {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "own_role",
                "nobody changes their own role; ask another admin",
            ));
        }
        state.storage.set_agent_role(id, role).await?;
    }
    if let Some(exts) = &input.extensions {
        check_extensions(exts)?;
        state.storage.set_agent_extensions(id, exts).await?;
    }
    if let Some(disabled) = input.disabled {
        state.storage.set_agent_disabled(id, disabled).await?;
    }
    if let Some(status) = &input.status {
        if !matches!(status.as_str(), "ready" | "away") {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "status must be ready or away",
            ));
        }
        state.storage.set_agent_status(id, status).await?;
    }
    state.directory.reload(&state.storage).await?;
    Ok(ApiJson(state.storage.agent(id).await?))
}

/// Issues a new token for an agent (the old ones stay valid until revoked).
#[utoipa::path(post, path = "/agents/{id}/tokens", tag = "agents", params(("id" = i64, Path, description = "Agent id")),
    responses((status = 201, description = "A new token, shown this once", body = IssuedToken), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody)))]
pub async fn issue_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<impl IntoResponse> {
    let agent = state.storage.agent(id).await?;
    may_manage(&caller, agent.role)?;
    let token = new_token();
    state
        .storage
        .add_token(id, &hash_token(&token), None)
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(IssuedToken {
            agent,
            token,
            token_expires_at: None,
        }),
    ))
}

/// Revokes every token of an agent.
#[utoipa::path(delete, path = "/agents/{id}/tokens", tag = "agents", params(("id" = i64, Path, description = "Agent id")),
    responses((status = 204, description = "Every token of the agent revoked"), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody)))]
pub async fn revoke_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let agent = state.storage.agent(id).await?;
    may_manage(&caller, agent.role)?;
    state.storage.revoke_tokens(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
