//! Customers' data rights and the audit trail: `GET /customers/{id}/export` (everything held on
//! one customer, as JSON), `POST /customers/{id}/erase`, and `GET /audit` (admins only; there is no
//! route that changes or deletes an audit entry, and the database refuses it too).

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiPath, ApiQuery, ApiResult, Caller, Paging};
use crate::auth::Role;
use crate::daemon::AppState;
use crate::storage::customers::{Asset, Customer};
use crate::storage::interactions::{Complaint, Interaction};
use crate::storage::privacy::{AuditEntry, Erasure};
use crate::storage::tasks::{Attempt, Task, TaskFilter};

/// Everything ringside holds on one customer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerExport {
    /// Unix milliseconds.
    pub exported_at: i64,
    pub customer: Customer,
    pub assets: Vec<Asset>,
    pub interactions: Vec<Interaction>,
    pub complaints: Vec<Complaint>,
    pub tasks: Vec<Task>,
    pub attempts: Vec<Attempt>,
    pub audit: Vec<AuditEntry>,
}

/// `GET /customers/{id}/export`.
#[utoipa::path(get, path = "/customers/{id}/export", tag = "privacy", params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, description = "Everything held on the customer", body = CustomerExport), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<CustomerExport>> {
    caller.require(&[Role::Admin])?;
    let s = &state.storage;
    let customer = s.customer(id).await?;
    let assets = s.assets_of(&[id]).await?;
    let interactions = s.list_interactions(Some(id), 100_000, 0).await?;
    let complaints = s.complaints_of(&[id], false).await?;
    let tasks = s
        .list_tasks(
            &TaskFilter {
                customer_id: Some(id),
                ..Default::default()
            },
            100_000,
            0,
        )
        .await?;
    let mut attempts = Vec::new();
    for t in &tasks {
        attempts.extend(s.attempts_of(t.id).await?);
    }
    let audit = s.audit_entries(Some(id), None, None, 100_000, 0).await?;
    s.audit(&caller.actor(), "export", Some(id), None).await?;
    Ok(ApiJson(CustomerExport {
        exported_at: crate::storage::now_ms(),
        customer,
        assets,
        interactions,
        complaints,
        tasks,
        attempts,
        audit,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureReport {
    pub erased: bool,
    pub customer_id: i64,
    #[serde(flatten)]
    pub report: Erasure,
}

/// Erases a customer; only salted hashes of their numbers remain, so they are never called again
/// and pop as unknown.
#[utoipa::path(post, path = "/customers/{id}/erase", tag = "privacy", params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, description = "Erased; only salted hashes of the numbers remain", body = ErasureReport), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody), (status = 404, description = "No such record", body = crate::api::ErrorBody)))]
pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<ErasureReport>> {
    caller.require(&[Role::Admin])?;
    let report = state.storage.erase_customer(id).await?;
    state
        .storage
        .audit(
            &caller.actor(),
            "erase",
            Some(id),
            Some(&format!("{} numbers suppressed", report.numbers_suppressed)),
        )
        .await?;
    Ok(ApiJson(ErasureReport {
        erased: true,
        customer_id: id,
        report,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries about this customer.
    pub customer_id: Option<i64>,
    /// Entries by this agent.
    pub actor_id: Option<i64>,
    /// Unix milliseconds.
    pub since: Option<i64>,
    #[serde(flatten)]
    #[param(ignore)]
    pub paging: Paging,
}

#[utoipa::path(get, path = "/audit", tag = "privacy", params(AuditQuery, crate::api::Paging),
    responses((status = 200, description = "Audit entries, newest first", body = Vec<AuditEntry>), (status = 400, description = "Malformed JSON, query or path", body = crate::api::ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<ApiJson<Vec<AuditEntry>>> {
    caller.require(&[Role::Admin])?;
    Ok(ApiJson(
        state
            .storage
            .audit_entries(
                q.customer_id,
                q.actor_id,
                q.since,
                q.paging.limit()?,
                q.paging.offset()?,
            )
            .await?,
    ))
}
