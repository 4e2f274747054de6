//! `/api/v1/campaigns`: supervisors' outbound campaigns: create (target filter or a list of
//! customers, script, window, pacing, mode), start, pause, resume, stop, and progress.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, ApiJson, ApiPath, ApiResult, Caller};
use crate::daemon::AppState;
use crate::storage::now_ms;
use crate::storage::tasks::{Campaign, CampaignDraft, NewTask};

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetFilter {
    #[serde(default)]
    #[schema(max_items = 3)]
    pub tiers: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tags: Vec<String>,
    /// Customers with a vehicle due for service within this many days.
    pub service_due_within_days: Option<i64>,
    /// An explicit list (e.g. uploaded).
    #[serde(default)]
    pub customer_ids: Vec<i64>,
    /// An uploaded list of phone numbers (any format), matched to customers when the campaign
    /// is saved: the matches join `customer_ids`, the rest are reported in `list`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<String>,
    /// An uploaded list of customers' external ids (as imported), matched likewise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_ids: Vec<String>,
    /// The targets are `customer_ids` and no one else: set when a list was uploaded, so a list
    /// that matched nobody calls nobody (an empty filter would call everyone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub only_listed: bool,
}

/// How an uploaded list matched the customers on file.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ListMatch {
    /// Entries given (numbers and external ids).
    pub given: usize,
    /// Entries that matched a customer.
    pub matched: usize,
    /// Distinct customers the list added.
    pub customers: usize,
    /// Entries that matched nobody (the first 50).
    pub unmatched: Vec<String>,
    pub unmatched_count: usize,
}

/// Entries an uploaded list may have.
const MAX_LIST: usize = 100_000;

/// Matches an uploaded list (`phones`, `external_ids`) to customers and moves the matches into
/// `customer_ids`; returns how it matched, or `None` when no list was given.
async fn resolve_list(state: &AppState, filter: &mut TargetFilter) -> ApiResult<Option<ListMatch>> {
    if filter.phones.is_empty() && filter.external_ids.is_empty() {
        return Ok(None);
    }
    let given = filter.phones.len() + filter.external_ids.len();
    if given > MAX_LIST
        || filter
            .phones
            .iter()
            .chain(&filter.external_ids)
            .any(|e| e.len() > 64)
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "filter: a list has at most 100000 entries of up to 64 characters",
        ));
    }
    let country = &state.settings.numbers.default_country;
    let numbers: Vec<(String, Option<String>)> = std::mem::take(&mut filter.phones)
        .into_iter()
        .map(|raw| {
            let e164 = crate::phone::normalize(&raw, country).e164;
            (raw, e164)
        })
        .collect();
    let valid: Vec<String> = numbers.iter().filter_map(|(_, e)| e.clone()).collect();
    let by_number = state.storage.customers_by_e164(&valid).await?;
    let external_ids: Vec<String> = std::mem::take(&mut filter.external_ids)
        .into_iter()
        .map(|e| e.trim().to_string())
        .collect();
    let by_external = state
        .storage
        .customers_by_external_id(&external_ids)
        .await?;
    let mut report = ListMatch {
        given,
        ..Default::default()
    };
    let mut found: Vec<i64> = Vec::new();
    let hits = numbers
        .iter()
        .map(|(raw, e164)| (raw, e164.as_ref().and_then(|e| by_number.get(e))))
        .chain(external_ids.iter().map(|e| (e, by_external.get(e))));
    for (entry, hit) in hits {
        match hit {
            Some(id) => {
                report.matched += 1;
                found.push(*id);
            }
            None => {
                report.unmatched_count += 1;
                if report.unmatched.len() < 50 {
                    report.unmatched.push(entry.clone());
                }
            }
        }
    }
    found.sort_unstable();
    found.dedup();
    found.retain(|id| !filter.customer_ids.contains(id));
    report.customers = found.len();
    filter.customer_ids.extend(found);
    filter.only_listed = true;
    Ok(Some(report))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// `maintenance_reminder`, `return_visit`, `satisfaction_survey`, `care_call` or `custom`.
    #[serde(default = "default_kind")]
    #[schema(
        pattern = "^(maintenance_reminder|return_visit|satisfaction_survey|care_call|custom)$"
    )]
    pub kind: String,
    #[schema(max_length = 10000)]
    pub script: Option<String>,
    #[serde(default)]
    pub filter: TargetFilter,
    #[serde(default = "default_mode")]
    #[schema(pattern = "^(preview|progressive)$")]
    pub mode: String,
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 500)]
    pub max_concurrent: i64,
    #[serde(default = "ten")]
    #[schema(minimum = 1, maximum = 10000)]
    pub calls_per_minute: i64,
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$", example = "09:00")]
    pub window_start: Option<String>,
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$", example = "18:00")]
    pub window_end: Option<String>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
}

fn default_kind() -> String {
    "custom".into()
}
fn default_mode() -> String {
    "preview".into()
}
fn one() -> i64 {
    1
}
fn ten() -> i64 {
    10
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    #[serde(flatten)]
    pub campaign: Campaign,
    pub progress: Progress,
    /// How an uploaded list matched (in the answer to the create or edit that uploaded it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<ListMatch>,
}

#[derive(Debug, Serialize, Default, utoipa::ToSchema)]
pub struct Progress {
    pub total: i64,
    pub by_state: serde_json::Map<String, Value>,
    pub by_outcome: serde_json::Map<String, Value>,
}

fn draft_from(input: CampaignInput) -> ApiResult<CampaignDraft> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "name must have 1 to 200 characters",
        ));
    }
    if !matches!(
        input.kind.as_str(),
        "maintenance_reminder" | "return_visit" | "satisfaction_survey" | "care_call" | "custom"
    ) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "kind must be maintenance_reminder, return_visit, satisfaction_survey, care_call or custom",
        ));
    }
    if !matches!(input.mode.as_str(), "preview" | "progressive") {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "mode must be preview or progressive",
        ));
    }
    if !(1..=500).contains(&input.max_concurrent) || !(1..=10_000).contains(&input.calls_per_minute)
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "max_concurrent 1..500, calls_per_minute 1..10000",
        ));
    }
    for (field, v) in [
        ("window_start", &input.window_start),
        ("window_end", &input.window_end),
    ] {
        if let Some(v) = v {
            chrono::NaiveTime::parse_from_str(v, "%H:%M").map_err(|_| {
                ApiError::unprocessable("invalid_field", format!("{field} must be HH:MM"))
            })?;
        }
    }
    if input
        .script
        .as_deref()
        .is_some_and(|s| s.chars().count() > 10_000)
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "script is longer than 10000 characters",
        ));
    }
    let f = &input.filter;
    if f.tiers
        .iter()
        .any(|t| !matches!(t.as_str(), "A" | "B" | "C"))
        || f.customer_ids.len() > 100_000
        || f.tags.len() > 20
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "filter: tiers A/B/C, at most 20 tags and 100000 customers",
        ));
    }
    Ok(CampaignDraft {
        name: name.to_string(),
        kind: input.kind,
        script: input.script,
        filter: serde_json::to_value(&input.filter).unwrap_or(Value::Null),
        mode: input.mode,
        max_concurrent: input.max_concurrent,
        calls_per_minute: input.calls_per_minute,
        window_start: input.window_start,
        window_end: input.window_end,
        starts_at: input.starts_at,
        ends_at: input.ends_at,
    })
}

async fn view(state: &AppState, campaign: Campaign) -> ApiResult<CampaignView> {
    let (by_state, by_outcome) = state.storage.campaign_progress(campaign.id).await?;
    let mut progress = Progress::default();
    for (s, n) in by_state {
        progress.total += n;
        progress.by_state.insert(s, Value::from(n));
    }
    for (o, n) in by_outcome {
        progress.by_outcome.insert(o, Value::from(n));
    }
    Ok(CampaignView {
        campaign,
        progress,
        list: None,
    })
}

#[utoipa::path(get, path = "/campaigns", tag = "campaigns",
    responses((status = 200, description = "Campaigns with their progress", body = Vec<CampaignView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiJson<Vec<CampaignView>>> {
    caller.require_staff()?;
    let mut out = Vec::new();
    for c in state.storage.list_campaigns().await? {
        out.push(view(&state, c).await?);
    }
    Ok(ApiJson(out))
}

#[utoipa::path(post, path = "/campaigns", tag = "campaigns", request_body = CampaignInput,
    responses((status = 201, description = "Created (as a draft)", body = CampaignView), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(mut input): ApiJson<CampaignInput>,
) -> ApiResult<impl IntoResponse> {
    caller.require_supervisor()?;
    let list = resolve_list(&state, &mut input.filter).await?;
    let draft = draft_from(input)?;
    let campaign = state
        .storage
        .create_campaign(&draft, Some(caller.agent.id))
        .await?;
    let mut answer = view(&state, campaign).await?;
    answer.list = list;
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

#[utoipa::path(get, path = "/campaigns/{id}", tag = "campaigns", params(("id" = i64, Path, description = "Campaign id")),
    responses((status = 200, description = "The campaign with its progress", body = CampaignView), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<CampaignView>> {
    caller.require_staff()?;
    let campaign = state.storage.campaign(id).await?;
    Ok(ApiJson(view(&state, campaign).await?))
}

#[utoipa::path(patch, path = "/campaigns/{id}", tag = "campaigns", params(("id" = i64, Path, description = "Campaign id")), request_body = CampaignInput,
    responses((status = 200, description = "Updated", body = CampaignView), (status = 404, description = "No such record", body = crate::api::ErrorBody), (status = 409, description = "The campaign is running: pause it first", body = crate::api::ErrorBody), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(mut input): ApiJson<CampaignInput>,
) -> ApiResult<ApiJson<CampaignView>> {
    caller.require_supervisor()?;
    let current = state.storage.campaign(id).await?;
    if !matches!(current.state.as_str(), "draft" | "paused") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "campaign_running",
            "pause the campaign before editing it",
        ));
    }
    let list = resolve_list(&state, &mut input.filter).await?;
    let campaign = state
        .storage
        .update_campaign(id, &draft_from(input)?)
        .await?;
    let mut answer = view(&state, campaign).await?;
    answer.list = list;
    Ok(ApiJson(answer))
}

/// What `POST /campaigns/{id}/{action}` may ask (the document's list; `action` matches on these).
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum CampaignAction {
    Start,
    Pause,
    Resume,
    Stop,
}

/// `POST /campaigns/{id}/start|pause|resume|stop`.
#[utoipa::path(post, path = "/campaigns/{id}/{action}", tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id"), ("action" = CampaignAction, Path, description = "What to do")),
    responses((status = 200, description = "The campaign in its new state", body = CampaignView), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody), (status = 409, description = "Not possible from the campaign's state", body = crate::api::ErrorBody)))]
pub async fn action(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, action)): ApiPath<(i64, String)>,
) -> ApiResult<ApiJson<CampaignView>> {
    caller.require_supervisor()?;
    let campaign = state.storage.campaign(id).await?;
    let conflict = |m: String| ApiError::new(StatusCode::CONFLICT, "invalid_transition", m);
    let next = match (action.as_str(), campaign.state.as_str()) {
        ("start", "draft") => {
            materialize(&state, &campaign).await?;
            "running"
        }
        ("pause", "running") => "paused",
        ("resume", "paused") => "running",
        ("stop", "running" | "paused" | "draft") => {
            state.storage.cancel_campaign_tasks(id).await?;
            "stopped"
        }
        ("start" | "pause" | "resume" | "stop", from) => {
            return Err(conflict(format!(
                "cannot {action} a campaign that is {from}"
            )));
        }
        _ => {
            return Err(ApiError::not_found(
                "no such campaign action (start, pause, resume, stop)",
            ));
        }
    };
    let campaign = state.storage.set_campaign_state(id, next).await?;
    state.engine.nudge();
    Ok(ApiJson(view(&state, campaign).await?))
}

/// Turns the campaign's target filter into tasks (one per customer, idempotent).
async fn materialize(state: &AppState, campaign: &Campaign) -> ApiResult<u64> {
    let filter: TargetFilter = serde_json::from_value(campaign.filter.clone()).unwrap_or_default();
    if filter.only_listed && filter.customer_ids.is_empty() {
        return Ok(0);
    }
    let due_before = filter.service_due_within_days.map(|d| {
        (chrono::Utc::now().date_naive() + chrono::Duration::days(d))
            .format("%Y-%m-%d")
            .to_string()
    });
    let targets = state
        .storage
        .campaign_targets(
            &filter.tiers,
            &filter.tags,
            due_before.as_deref(),
            &filter.customer_ids,
            200_000,
        )
        .await?;
    let now = now_ms();
    let start = campaign.starts_at.unwrap_or(now).max(now);
    let mut created = 0;
    for (customer_id, number, manager) in targets {
        let preferred = manager
            .as_deref()
            .and_then(|m| state.directory.id_by_name(m));
        let (_, new) = state
            .storage
            .create_task(&NewTask {
                kind: "campaign".into(),
                customer_id: Some(customer_id),
                number_e164: number,
                campaign_id: Some(campaign.id),
                not_before: start,
                deadline: campaign.ends_at,
                priority: crate::outbound::priority("campaign", None, false),
                preferred_agent_id: preferred,
                pool_after: preferred.map(|_| start),
                max_attempts: state.settings.outbound.max_attempts,
                reason: Some(format!("campaign: {}", campaign.name)),
                idempotency_key: Some(format!("campaign:{}:{customer_id}", campaign.id)),
                ..Default::default()
            })
            .await?;
        created += new as u64;
    }
    Ok(created)
}
