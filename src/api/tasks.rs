//! `/api/v1/tasks`: the outbound calls ringside owes (callbacks, reminders, visits, surveys,
//! care calls, campaign calls): list, read with attempts, request, reassign, cancel.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Caller, Paging};
use crate::daemon::AppState;
use crate::outbound::{KINDS, priority};
use crate::phone;
use crate::storage::now_ms;
use crate::storage::tasks::{Attempt, NewTask, Task, TaskFilter};

/// Every state a task can be in.
pub const STATES: &[&str] = &[
    "pending",
    "reserved",
    "dialing",
    "connected",
    "done",
    "failed",
    "cancelled",
    "expired",
];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// One of the task states.
    pub state: Option<String>,
    /// One of the task kinds.
    pub kind: Option<String>,
    /// Supervisors: this agent's tasks (agents always see their own).
    pub agent_id: Option<i64>,
    /// This campaign's tasks.
    pub campaign_id: Option<i64>,
    /// This customer's tasks.
    pub customer_id: Option<i64>,
    #[serde(flatten)]
    #[param(ignore)]
    pub paging: Paging,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    /// Defaults to `requested_callback`.
    pub kind: Option<String>,
    pub customer_id: i64,
    /// The number to call (any format); defaults to the customer's primary number.
    pub number: Option<String>,
    /// Unix milliseconds; defaults to now.
    pub not_before: Option<i64>,
    pub deadline: Option<i64>,
    pub preferred_agent_id: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskUpdate {
    /// Reassign to this agent (null = the pool).
    #[serde(default, deserialize_with = "nullable")]
    pub preferred_agent_id: Option<Option<i64>>,
    pub not_before: Option<i64>,
}

/// A task in a list, with its customer's name and tier (for the supervisor's callback queue).
#[derive(Debug, Serialize)]
pub struct TaskListItem {
    #[serde(flatten)]
    pub task: Task,
    pub customer_name: Option<String>,
    pub customer_tier: Option<String>,
}

fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    #[serde(flatten)]
    pub task: Task,
    pub attempt_list: Vec<Attempt>,
}

#[utoipa::path(get, path = "/tasks", tag = "tasks", params(TaskQuery, crate::api::Paging),
    responses((status = 200, description = "Tasks", body = Vec<Task>), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TaskQuery>,
) -> ApiResult<ApiJson<Vec<TaskListItem>>> {
    caller.require_staff()?;
    if q.state.as_deref().is_some_and(|s| !STATES.contains(&s)) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("state must be one of {}", STATES.join(", ")),
        ));
    }
    if q.kind.as_deref().is_some_and(|k| !KINDS.contains(&k)) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("kind must be one of {}", KINDS.join(", ")),
        ));
    }
    // Agents see their own queue; supervisors see everyone's.
    let agent_id = if caller.role().is_supervisor_or_admin() {
        q.agent_id
    } else {
        Some(caller.agent.id)
    };
    let filter = TaskFilter {
        state: q.state,
        kind: q.kind,
        agent_id,
        campaign_id: q.campaign_id,
        customer_id: q.customer_id,
    };
    let tasks = state
        .storage
        .list_tasks(&filter, q.paging.limit()?, q.paging.offset()?)
        .await?;
    let mut ids: Vec<i64> = tasks.iter().filter_map(|t| t.customer_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let customers: std::collections::HashMap<i64, (String, String)> = state
        .storage
        .customers_by_ids(&ids)
        .await?
        .into_iter()
        .map(|c| (c.id, (c.name, c.tier)))
        .collect();
    Ok(ApiJson(
        tasks
            .into_iter()
            .map(|task| {
                let customer = task.customer_id.and_then(|id| customers.get(&id));
                TaskListItem {
                    customer_name: customer.map(|(name, _)| name.clone()),
                    customer_tier: customer.map(|(_, tier)| tier.clone()),
                    task,
                }
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", params(("id" = i64, Path, description = "Task id")),
    responses((status = 200, description = "The task with its attempts", body = TaskView), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<TaskView>> {
    caller.require_staff()?;
    let task = state.storage.task(id).await?;
    let attempt_list = state.storage.attempts_of(id).await?;
    Ok(ApiJson(TaskView { task, attempt_list }))
}

/// Requests an outbound call (a callback for a time, a visit, ...); idempotent per customer and kind.
#[utoipa::path(post, path = "/tasks", tag = "tasks", request_body = TaskInput,
    responses((status = 201, description = "Created", body = Task), (status = 200, description = "The same request was already open: that task", body = Task), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<TaskInput>,
) -> ApiResult<impl IntoResponse> {
    caller.require_staff()?;
    let kind = input.kind.unwrap_or_else(|| "requested_callback".into());
    if !KINDS.contains(&kind.as_str()) || kind == "campaign" {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "kind must be a task kind other than campaign (campaigns make their own)",
        ));
    }
    if input
        .reason
        .as_deref()
        .is_some_and(|r| r.chars().count() > 500)
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "reason is longer than 500 characters",
        ));
    }
    let customer = state
        .storage
        .customer(input.customer_id)
        .await
        .map_err(|_| {
            ApiError::unprocessable(
                "unknown_customer",
                format!("customer {} does not exist", input.customer_id),
            )
        })?;
    let number = match input.number.as_deref() {
        Some(raw) => phone::normalize(raw, &state.settings.numbers.default_country)
            .e164
            .ok_or_else(|| ApiError::unprocessable("invalid_number", "not a valid phone number"))?,
        None => state
            .storage
            .primary_number(customer.id)
            .await?
            .ok_or_else(|| {
                ApiError::unprocessable("no_number", "the customer has no valid number")
            })?,
    };
    if let Some(agent) = input.preferred_agent_id {
        state.storage.agent(agent).await.map_err(|_| {
            ApiError::unprocessable("unknown_agent", format!("agent {agent} does not exist"))
        })?;
    }
    let now = now_ms();
    let not_before = input.not_before.unwrap_or(now);
    let preferred = input.preferred_agent_id.or_else(|| {
        customer
            .account_manager
            .as_deref()
            .and_then(|m| state.directory.id_by_name(m))
    });
    let (task, created) = state
        .storage
        .create_task(&NewTask {
            kind: kind.clone(),
            customer_id: Some(customer.id),
            number_e164: number,
            not_before,
            deadline: input.deadline.or(Some(
                not_before + state.settings.outbound.callback_deadline_hours * 3_600_000,
            )),
            priority: priority(&kind, Some(&customer.tier), customer.key_account),
            preferred_agent_id: preferred,
            pool_after: preferred
                .map(|_| not_before + state.settings.outbound.preferred_agent_wait_secs * 1000),
            max_attempts: state.settings.outbound.max_attempts,
            reason: input
                .reason
                .or_else(|| Some(format!("requested by {}", caller.agent.name))),
            idempotency_key: Some(format!("{kind}:{}:api", customer.id)),
            ..Default::default()
        })
        .await?;
    state.engine.nudge();
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        ApiJson(task),
    ))
}

/// Reassigns a pending task to another agent (or the pool) or moves its time.
#[utoipa::path(patch, path = "/tasks/{id}", tag = "tasks", params(("id" = i64, Path, description = "Task id")), request_body = TaskUpdate,
    responses((status = 200, description = "Updated", body = Task), (status = 404, description = "No such record", body = crate::api::ErrorBody), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<TaskUpdate>,
) -> ApiResult<ApiJson<Task>> {
    caller.require_supervisor()?;
    let current = state.storage.task(id).await?;
    let agent = match input.preferred_agent_id {
        Some(Some(a)) => {
            let known = state.storage.agent(a).await.ok();
            if !known.is_some_and(|k| k.role.is_staff() && !k.disabled) {
                return Err(ApiError::unprocessable(
                    "unknown_agent",
                    format!("agent {a} does not exist or cannot take calls"),
                ));
            }
            Some(a)
        }
        Some(None) => None,
        None => current.preferred_agent_id,
    };
    // A task moved to an agent waits for them as a fresh one would; one put back in the pool is
    // anyone's at once.
    let pool_after = match input.preferred_agent_id {
        Some(Some(a)) if Some(a) != current.preferred_agent_id => {
            let due = input.not_before.unwrap_or(current.not_before).max(now_ms());
            Some(Some(
                due + state.settings.outbound.preferred_agent_wait_secs * 1000,
            ))
        }
        Some(None) => Some(None),
        _ => None,
    };
    let task = state
        .storage
        .reassign_task(id, agent, input.not_before, pool_after)
        .await?;
    state.engine.nudge();
    Ok(ApiJson(task))
}

#[utoipa::path(post, path = "/tasks/{id}/cancel", tag = "tasks", params(("id" = i64, Path, description = "Task id")),
    responses((status = 200, description = "Cancelled", body = Task), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody), (status = 409, description = "The task is already closed", body = crate::api::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Task>> {
    caller.require_staff()?;
    let task = state.storage.task(id).await?;
    if !caller.role().is_supervisor_or_admin()
        && task.assigned_agent_id != Some(caller.agent.id)
        && task.preferred_agent_id != Some(caller.agent.id)
    {
        return Err(ApiError::forbidden());
    }
    if !state
        .storage
        .close_task(id, None, "cancelled", "cancelled_by_user", None, None)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_cancellable",
            format!("task {id} is {}", task.state),
        ));
    }
    Ok(ApiJson(state.storage.task(id).await?))
}
