//! `/api/v1/customers`: create, read, update, delete and search customer records.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Deserializer, Serialize};

use super::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Caller, Paging};
use crate::daemon::AppState;
use crate::phone;
use crate::storage::customers::{
    Asset, AssetDraft, Customer, CustomerDraft, CustomerPatch, NewPhone,
};
use crate::storage::interactions::{Complaint, Interaction};

/// A phone as clients send it: a bare string, or an object with kind and primary flag.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PhoneInput {
    Plain(String),
    Detailed {
        #[serde(alias = "raw")]
        number: String,
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        primary: Option<bool>,
    },
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetInput {
    #[serde(default)]
    pub kind: Option<String>,
    pub plate: Option<String>,
    pub vin: Option<String>,
    pub model: Option<String>,
    #[schema(format = Date)]
    pub purchase_date: Option<String>,
    #[schema(format = Date)]
    pub last_service_date: Option<String>,
    pub service_interval_months: Option<i64>,
    pub service_interval_km: Option<i64>,
    pub mileage_km: Option<i64>,
    #[schema(format = Date)]
    pub next_service_due: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    pub external_id: Option<String>,
    #[schema(pattern = r"^\s*[AaBbCc]\s*$")]
    pub tier: Option<String>,
    #[serde(default)]
    pub key_account: bool,
    pub account_manager: Option<String>,
    #[schema(format = Date)]
    pub birthday: Option<String>,
    #[schema(example = "Asia/Shanghai")]
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub consent_calls: Option<bool>,
    #[schema(max_length = 4000)]
    pub notes: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub tags: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub phones: Vec<PhoneInput>,
    #[serde(default)]
    pub assets: Vec<AssetInput>,
}

/// Distinguishes a missing field (leave alone) from `null` (clear it).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Some(Option::deserialize(d)?))
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerUpdate {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub external_id: Option<Option<String>>,
    #[schema(pattern = r"^\s*[AaBbCc]\s*$")]
    pub tier: Option<String>,
    pub key_account: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub account_manager: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(format = Date)]
    pub birthday: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(example = "Asia/Shanghai")]
    pub timezone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub language: Option<Option<String>>,
    pub consent_calls: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(max_length = 4000)]
    pub notes: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub email: Option<Option<String>>,
    pub provisional: Option<bool>,
    pub tags: Option<Vec<String>>,
    #[schema(max_items = 20)]
    pub phones: Option<Vec<PhoneInput>>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerSearch {
    /// A phone number in any format.
    pub phone: Option<String>,
    /// Part of a name.
    pub q: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    pub paging: Paging,
}

/// A customer with everything the console and the API show about it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerView {
    #[serde(flatten)]
    pub customer: Customer,
    pub assets: Vec<Asset>,
    pub interactions: Vec<Interaction>,
    pub complaints: Vec<Complaint>,
}

const MAX_TEXT: usize = 4000;

fn check_text(field: &str, value: Option<&str>, max: usize) -> ApiResult<()> {
    if let Some(v) = value {
        if v.chars().count() > max {
            return Err(ApiError::unprocessable(
                "invalid_field",
                format!("{field} is longer than {max} characters"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn check_tier(tier: &str) -> ApiResult<String> {
    let t = tier.trim().to_ascii_uppercase();
    if matches!(t.as_str(), "A" | "B" | "C") {
        Ok(t)
    } else {
        Err(ApiError::unprocessable(
            "invalid_field",
            "tier must be A, B or C",
        ))
    }
}

fn check_date(field: &str, value: Option<&str>) -> ApiResult<()> {
    if let Some(v) = value {
        if chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_err() {
            return Err(ApiError::unprocessable(
                "invalid_field",
                format!("{field} must be a date YYYY-MM-DD"),
            ));
        }
    }
    Ok(())
}

fn check_timezone(value: Option<&str>) -> ApiResult<()> {
    if let Some(v) = value {
        if v.parse::<chrono_tz::Tz>().is_err() {
            return Err(ApiError::unprocessable(
                "invalid_field",
                format!("timezone `{v}` is not an IANA time zone"),
            ));
        }
    }
    Ok(())
}

fn phones_from(input: &[PhoneInput], country: &str) -> ApiResult<Vec<NewPhone>> {
    if input.len() > 20 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "at most 20 phones per customer",
        ));
    }
    let mut out: Vec<NewPhone> = Vec::with_capacity(input.len());
    for p in input {
        let (number, kind, primary) = match p {
            PhoneInput::Plain(n) => (n.as_str(), None, None),
            PhoneInput::Detailed {
                number,
                kind,
                primary,
            } => (number.as_str(), kind.clone(), *primary),
        };
        if number.trim().is_empty() || number.len() > 64 {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "a phone number must have 1 to 64 characters",
            ));
        }
        out.push(NewPhone {
            normalized: phone::normalize(number, country),
            kind: kind.unwrap_or_else(|| "other".into()),
            primary: primary.unwrap_or(false),
        });
    }
    if !out.is_empty() && !out.iter().any(|p| p.primary) {
        out[0].primary = true;
    }
    Ok(out)
}

fn asset_from(a: &AssetInput) -> ApiResult<AssetDraft> {
    for (field, v) in [
        ("purchase_date", &a.purchase_date),
        ("last_service_date", &a.last_service_date),
        ("next_service_due", &a.next_service_due),
    ] {
        check_date(field, v.as_deref())?;
    }
    let mut draft = AssetDraft {
        kind: a.kind.clone().unwrap_or_else(|| "vehicle".into()),
        plate: a.plate.clone(),
        vin: a.vin.clone(),
        model: a.model.clone(),
        purchase_date: a.purchase_date.clone(),
        last_service_date: a.last_service_date.clone(),
        service_interval_months: a.service_interval_months,
        service_interval_km: a.service_interval_km,
        mileage_km: a.mileage_km,
        next_service_due: a.next_service_due.clone(),
    };
    if draft.next_service_due.is_none() {
        draft.next_service_due = crate::import::next_service_due(
            draft
                .last_service_date
                .as_deref()
                .or(draft.purchase_date.as_deref()),
            draft.service_interval_months,
        );
    }
    Ok(draft)
}

pub(crate) fn draft_from(input: &CustomerInput, country: &str) -> ApiResult<CustomerDraft> {
    let name = input.name.trim();
    if name.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "name must not be empty",
        ));
    }
    check_text("name", Some(name), 200)?;
    check_text("notes", input.notes.as_deref(), MAX_TEXT)?;
    check_date("birthday", input.birthday.as_deref())?;
    check_timezone(input.timezone.as_deref())?;
    if input.tags.len() > 50
        || input
            .tags
            .iter()
            .any(|t| t.trim().is_empty() || t.len() > 64)
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "tags: at most 50, each 1 to 64 characters",
        ));
    }
    Ok(CustomerDraft {
        external_id: input.external_id.clone(),
        name: name.to_string(),
        tier: check_tier(input.tier.as_deref().unwrap_or("C"))?,
        key_account: input.key_account,
        account_manager: input
            .account_manager
            .clone()
            .filter(|s| !s.trim().is_empty()),
        birthday: input.birthday.clone(),
        timezone: input.timezone.clone(),
        language: input.language.clone(),
        consent_calls: input.consent_calls.unwrap_or(true),
        notes: input.notes.clone(),
        email: input.email.clone(),
        provisional: false,
        tags: input.tags.iter().map(|t| t.trim().to_string()).collect(),
        phones: phones_from(&input.phones, country)?,
        assets: input
            .assets
            .iter()
            .map(asset_from)
            .collect::<ApiResult<_>>()?,
    })
}

#[utoipa::path(post, path = "/customers", tag = "customers",
    request_body = CustomerInput,
    responses((status = 201, description = "Created", body = CustomerView), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<CustomerInput>,
) -> ApiResult<impl IntoResponse> {
    caller.require_staff()?;
    let draft = draft_from(&input, &state.settings.numbers.default_country)?;
    let customer = state.storage.create_customer(&draft).await?;
    state
        .storage
        .audit(&caller.actor(), "create", Some(customer.id), None)
        .await?;
    let view = view_of(&state, customer).await?;
    Ok((StatusCode::CREATED, ApiJson(view)))
}

pub async fn view_of(state: &AppState, customer: Customer) -> ApiResult<CustomerView> {
    let ids = [customer.id];
    let (assets, interactions, complaints) = tokio::try_join!(
        state.storage.assets_of(&ids),
        state.storage.list_interactions(Some(customer.id), 20, 0),
        state.storage.complaints_of(&ids, false),
    )?;
    Ok(CustomerView {
        customer,
        assets,
        interactions,
        complaints,
    })
}

#[utoipa::path(get, path = "/customers/{id}", tag = "customers", params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, description = "The customer with assets, recent interactions and complaints", body = CustomerView), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<CustomerView>> {
    caller.require_staff()?;
    let customer = state.storage.customer(id).await?;
    state
        .storage
        .audit(&caller.actor(), "view", Some(id), None)
        .await?;
    Ok(ApiJson(view_of(&state, customer).await?))
}

#[utoipa::path(method(patch, put), path = "/customers/{id}", tag = "customers", params(("id" = i64, Path, description = "Customer id")),
    request_body(content = CustomerUpdate, description = "Only the fields given change; `null` clears a field"),
    responses((status = 200, description = "Updated", body = CustomerView), (status = 404, description = "No such record", body = crate::api::ErrorBody), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<CustomerUpdate>,
) -> ApiResult<ApiJson<CustomerView>> {
    caller.require_staff()?;
    if let Some(name) = &input.name {
        if name.trim().is_empty() {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "name must not be empty",
            ));
        }
        check_text("name", Some(name), 200)?;
    }
    if let Some(Some(notes)) = &input.notes {
        check_text("notes", Some(notes), MAX_TEXT)?;
    }
    if let Some(Some(b)) = &input.birthday {
        check_date("birthday", Some(b))?;
    }
    if let Some(Some(tz)) = &input.timezone {
        check_timezone(Some(tz))?;
    }
    let patch = CustomerPatch {
        external_id: input.external_id.clone(),
        name: input.name.as_ref().map(|n| n.trim().to_string()),
        tier: input.tier.as_deref().map(check_tier).transpose()?,
        key_account: input.key_account,
        account_manager: input.account_manager.clone(),
        birthday: input.birthday.clone(),
        timezone: input.timezone.clone(),
        language: input.language.clone(),
        consent_calls: input.consent_calls,
        notes: input.notes.clone(),
        email: input.email.clone(),
        provisional: input.provisional,
        tags: input.tags.clone(),
        phones: input
            .phones
            .as_deref()
            .map(|p| phones_from(p, &state.settings.numbers.default_country))
            .transpose()?,
    };
    let customer = state.storage.update_customer(id, &patch).await?;
    state
        .storage
        .audit(&caller.actor(), "update", Some(id), None)
        .await?;
    Ok(ApiJson(view_of(&state, customer).await?))
}

#[utoipa::path(delete, path = "/customers/{id}", tag = "customers", params(("id" = i64, Path, description = "Customer id")),
    responses((status = 204, description = "Deleted"), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    caller.require_supervisor()?;
    state.storage.delete_customer(id).await?;
    state
        .storage
        .audit(&caller.actor(), "delete", Some(id), None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /customers?phone=...` (any format) or `?q=name`, else all, newest first.
#[utoipa::path(get, path = "/customers", tag = "customers", params(CustomerSearch, crate::api::Paging),
    responses((status = 200, description = "Matching customers", body = Vec<Customer>), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<CustomerSearch>,
) -> ApiResult<ApiJson<Vec<Customer>>> {
    caller.require_staff()?;
    let (limit, offset) = (query.paging.limit()?, query.paging.offset()?);
    if let Some(raw) = query.phone.as_deref() {
        if raw.trim().is_empty() || raw.len() > 64 {
            return Err(ApiError::bad_request(
                "invalid_query",
                "phone must have 1 to 64 characters",
            ));
        }
        let number = phone::normalize(raw, &state.settings.numbers.default_country);
        let hits = state
            .storage
            .find_phone_hits(&number, state.settings.numbers.trailing_digits)
            .await?;
        let mut ids: Vec<i64> = Vec::new();
        for hit in hits {
            if !ids.contains(&hit.customer_id) {
                ids.push(hit.customer_id);
            }
        }
        return Ok(ApiJson(state.storage.customers_by_ids(&ids).await?));
    }
    if let Some(q) = query.q.as_deref() {
        if q.len() > 200 {
            return Err(ApiError::bad_request("invalid_query", "q is too long"));
        }
        return Ok(ApiJson(
            state
                .storage
                .search_customers_by_name(q.trim(), limit, offset)
                .await?,
        ));
    }
    Ok(ApiJson(state.storage.list_customers(limit, offset).await?))
}

#[utoipa::path(post, path = "/customers/{id}/assets", tag = "customers", params(("id" = i64, Path, description = "Customer id")),
    request_body = AssetInput,
    responses((status = 201, description = "Created", body = Asset), (status = 404, description = "No such record", body = crate::api::ErrorBody), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 409, description = "Conflicts with a stored record", body = crate::api::ErrorBody), (status = 413, description = "Body too large", body = crate::api::ErrorBody), (status = 415, description = "Not `Content-Type: application/json`", body = crate::api::ErrorBody), (status = 422, description = "A field is missing or invalid", body = crate::api::ErrorBody)))]
pub async fn add_asset(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<AssetInput>,
) -> ApiResult<impl IntoResponse> {
    caller.require_staff()?;
    state.storage.customer(id).await?;
    let asset = state.storage.add_asset(id, &asset_from(&input)?).await?;
    Ok((StatusCode::CREATED, ApiJson(asset)))
}

#[utoipa::path(get, path = "/customers/{id}/assets", tag = "customers", params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, description = "The customer's assets", body = Vec<Asset>), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody)))]
pub async fn assets(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Vec<Asset>>> {
    caller.require_staff()?;
    state.storage.customer(id).await?;
    Ok(ApiJson(state.storage.assets_of(&[id]).await?))
}
