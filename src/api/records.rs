//! `/api/v1/interactions`, `/api/v1/complaints` and `/api/v1/dnc`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Caller, Paging};
use crate::daemon::AppState;
use crate::phone;
use crate::storage::dnc::DncEntry;
use crate::storage::interactions::{Complaint, Interaction, NewInteraction};
use crate::storage::now_ms;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InteractionQuery {
    /// Only this customer's interactions.
    pub customer_id: Option<i64>,
    #[serde(flatten)]
    #[param(ignore)]
    pub paging: Paging,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractionInput {
    pub customer_id: i64,
    /// `note`, `call`, `visit`, `email`, `survey`.
    #[serde(default = "default_kind")]
    #[schema(pattern = "^(note|call|visit|email|survey|sms)$")]
    pub kind: String,
    #[schema(pattern = "^(inbound|outbound)$")]
    pub direction: Option<String>,
    pub disposition: Option<String>,
    #[schema(max_length = 4000)]
    pub note: Option<String>,
    #[schema(minimum = 1, maximum = 5)]
    pub satisfaction: Option<i64>,
    pub call_id: Option<String>,
}

fn default_kind() -> String {
    "note".into()
}

#[utoipa::path(get, path = "/interactions", tag = "records", params(InteractionQuery, crate::api::Paging),
    responses((status = 200, description = "Interactions, newest first", body = Vec<Interaction>), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody)))]
pub async fn list_interactions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<InteractionQuery>,
) -> ApiResult<ApiJson<Vec<Interaction>>> {
    caller.require_staff()?;
    Ok(ApiJson(
        state
            .storage
            .list_interactions(q.customer_id, q.paging.limit()?, q.paging.offset()?)
            .await?,
    ))
}

#[utoipa::path(post, path = "/interactions", tag = "records", request_body = InteractionInput,
    responses((status = 201, description = "Recorded", body = Interaction), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn create_interaction(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<InteractionInput>,
) -> ApiResult<impl IntoResponse> {
    caller.require_staff()?;
    if !matches!(
        input.kind.as_str(),
        "note" | "call" | "visit" | "email" | "survey" | "sms"
    ) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "kind must be note, call, visit, email, sms or survey",
        ));
    }
    if let Some(d) = &input.direction {
        if !matches!(d.as_str(), "inbound" | "outbound") {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "direction must be inbound or outbound",
            ));
        }
    }
    if let Some(s) = input.satisfaction {
        if !(1..=5).contains(&s) {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "satisfaction must be 1 to 5",
            ));
        }
    }
    if input
        .note
        .as_deref()
        .is_some_and(|n| n.chars().count() > 4000)
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "note is longer than 4000 characters",
        ));
    }
    state
        .storage
        .customer(input.customer_id)
        .await
        .map_err(|_| {
            ApiError::unprocessable(
                "unknown_customer",
                format!("customer {} does not exist", input.customer_id),
            )
        })?;
    let now = now_ms();
    let created = state
        .storage
        .add_interaction(&NewInteraction {
            customer_id: Some(input.customer_id),
            call_id: input.call_id,
            kind: input.kind,
            direction: input.direction,
            agent_id: Some(caller.agent.id),
            started_at: now,
            ended_at: Some(now),
            disposition: input.disposition,
            note: input.note,
            satisfaction: input.satisfaction,
            ..Default::default()
        })
        .await?;
    Ok((StatusCode::CREATED, ApiJson(created)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComplaintQuery {
    /// `open`, `in_progress` or `closed`.
    pub status: Option<String>,
    /// Only this customer's complaints.
    pub customer_id: Option<i64>,
    #[serde(flatten)]
    #[param(ignore)]
    pub paging: Paging,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintInput {
    pub customer_id: i64,
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub summary: String,
    /// Agent id of the owner; defaults to the person opening it (first-contact responsibility).
    pub owner: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintUpdate {
    #[schema(pattern = "^(open|in_progress|closed)$")]
    pub status: String,
    pub resolution: Option<String>,
    pub owner: Option<i64>,
}

fn check_status(status: &str) -> ApiResult<()> {
    if matches!(status, "open" | "in_progress" | "closed") {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid_field",
            "status must be open, in_progress or closed",
        ))
    }
}

#[utoipa::path(get, path = "/complaints", tag = "records", params(ComplaintQuery, crate::api::Paging),
    responses((status = 200, description = "Complaints", body = Vec<Complaint>), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn list_complaints(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ComplaintQuery>,
) -> ApiResult<ApiJson<Vec<Complaint>>> {
    caller.require_staff()?;
    if let Some(s) = &q.status {
        check_status(s)?;
    }
    if let Some(id) = q.customer_id {
        let mut all = state.storage.complaints_of(&[id], false).await?;
        if let Some(s) = &q.status {
            all.retain(|c| &c.status == s);
        }
        return Ok(ApiJson(all));
    }
    Ok(ApiJson(
        state
            .storage
            .list_complaints(q.status.as_deref(), q.paging.limit()?, q.paging.offset()?)
            .await?,
    ))
}

#[utoipa::path(post, path = "/complaints", tag = "records", request_body = ComplaintInput,
    responses((status = 201, description = "Opened", body = Complaint), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn create_complaint(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<ComplaintInput>,
) -> ApiResult<impl IntoResponse> {
    caller.require_staff()?;
    let summary = input.summary.trim();
    if summary.is_empty() || summary.chars().count() > 2000 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "summary must have 1 to 2000 characters",
        ));
    }
    state
        .storage
        .customer(input.customer_id)
        .await
        .map_err(|_| {
            ApiError::unprocessable(
                "unknown_customer",
                format!("customer {} does not exist", input.customer_id),
            )
        })?;
    if let Some(owner) = input.owner {
        state.storage.agent(owner).await.map_err(|_| {
            ApiError::unprocessable("unknown_agent", format!("agent {owner} does not exist"))
        })?;
    }
    let complaint = state
        .storage
        .open_complaint(
            input.customer_id,
            summary,
            Some(caller.agent.id),
            input.owner,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(complaint)))
}

#[utoipa::path(get, path = "/complaints/{id}", tag = "records", params(("id" = i64, Path, description = "Complaint id")),
    responses((status = 200, description = "The complaint", body = Complaint), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody)))]
pub async fn read_complaint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Complaint>> {
    caller.require_staff()?;
    Ok(ApiJson(state.storage.complaint(id).await?))
}

#[utoipa::path(patch, path = "/complaints/{id}", tag = "records", params(("id" = i64, Path, description = "Complaint id")), request_body = ComplaintUpdate,
    responses((status = 200, description = "Updated (closing one schedules a return visit and a survey)", body = Complaint), (status = 404, description = "No such record", body = crate::api::ErrorBody), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn update_complaint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<ComplaintUpdate>,
) -> ApiResult<ApiJson<Complaint>> {
    caller.require_staff()?;
    check_status(&input.status)?;
    let before = state.storage.complaint(id).await?;
    let complaint = state
        .storage
        .update_complaint(id, &input.status, input.resolution.as_deref(), input.owner)
        .await?;
    if complaint.status == "closed" && before.status != "closed" {
        crate::outbound::generators::complaint_closed(&state.storage, &state.settings, &complaint)
            .await?;
        state.engine.nudge();
    }
    Ok(ApiJson(complaint))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DncInput {
    pub number: String,
    pub reason: Option<String>,
    /// Unix milliseconds after which the entry lapses; none = for good.
    pub expires_at: Option<i64>,
}

#[utoipa::path(get, path = "/dnc", tag = "records", params(crate::api::Paging),
    responses((status = 200, description = "The do-not-call list", body = Vec<DncEntry>), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody)))]
pub async fn list_dnc(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<Paging>,
) -> ApiResult<ApiJson<Vec<DncEntry>>> {
    caller.require_staff()?;
    Ok(ApiJson(
        state.storage.list_dnc(p.limit()?, p.offset()?).await?,
    ))
}

/// Adds a number to the do-not-call list (any agent may record a customer's opt-out).
#[utoipa::path(post, path = "/dnc", tag = "records", request_body = DncInput,
    responses((status = 201, description = "Added", body = DncEntry), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn add_dnc(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<DncInput>,
) -> ApiResult<impl IntoResponse> {
    caller.require_staff()?;
    let number = phone::normalize(&input.number, &state.settings.numbers.default_country);
    let Some(e164) = number.e164 else {
        return Err(ApiError::unprocessable(
            "invalid_number",
            "not a valid phone number",
        ));
    };
    let entry = state
        .storage
        .add_dnc(&e164, input.reason.as_deref(), input.expires_at)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(entry)))
}

#[utoipa::path(delete, path = "/dnc/{id}", tag = "records", params(("id" = i64, Path, description = "Entry id")),
    responses((status = 204, description = "Removed"), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody)))]
pub async fn remove_dnc(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    caller.require_supervisor()?;
    state.storage.remove_dnc(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
