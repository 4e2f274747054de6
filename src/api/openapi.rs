//! The REST API's routes and its OpenAPI 3 document, from one list.
//!
//! Every `/api/v1` route is registered here through `utoipa_axum`'s `routes!`, which reads the
//! path and methods from the handler's `#[utoipa::path]` attribute: the router and the document
//! are built from the same declarations, so a route cannot be served without being documented
//! (tests/it/openapi.rs also probes the running server for any that slipped past). What every
//! authenticated operation shares (bearer security, 401/403/429/500/503 in the error shape) is
//! added once by [`CommonResponses`] rather than repeated on each handler.

use std::sync::LazyLock;

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder, SecurityRequirement};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::{agents, campaigns, customers, privacy, records, reports, tasks};
use crate::daemon::AppState;
use crate::ingress::webhook;

/// Where the API is mounted.
pub const PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ringside",
        description = "Joins a call centre's phone system to its customer records. Every route but \
                       this document takes `Authorization: Bearer TOKEN` (or `?token=`); errors are \
                       `{\"error\": {\"code\", \"message\"}}`.",
    ),
    components(schemas(super::ErrorBody, super::campaigns::CampaignAction)),
    tags(
        (name = "customers", description = "Customer records, their phones and assets"),
        (name = "records", description = "Interactions, complaints and the do-not-call list"),
        (name = "agents", description = "Who may log in, and their tokens"),
        (name = "calls", description = "Call events in, and the calls going on now"),
        (name = "tasks", description = "Outbound calls ringside owes"),
        (name = "campaigns", description = "Supervisors' outbound campaigns"),
        (name = "privacy", description = "Export, erasure and the audit trail"),
        (name = "reports", description = "Supervisors' reports over a range of days, as JSON or CSV"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

/// The routes under [`PREFIX`], each with its part of the document.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(customers::search, customers::create))
        .routes(routes!(
            customers::read,
            customers::update,
            customers::delete
        ))
        .routes(routes!(customers::assets, customers::add_asset))
        .routes(routes!(privacy::export))
        .routes(routes!(privacy::erase))
        .routes(routes!(privacy::audit))
        .routes(routes!(
            records::list_interactions,
            records::create_interaction
        ))
        .routes(routes!(records::list_complaints, records::create_complaint))
        .routes(routes!(records::read_complaint, records::update_complaint))
        .routes(routes!(records::list_dnc, records::add_dnc))
        .routes(routes!(records::remove_dnc))
        .routes(routes!(agents::list, agents::create))
        .routes(routes!(agents::me))
        .routes(routes!(agents::read, agents::update))
        .routes(routes!(agents::issue_token, agents::revoke_tokens))
        .routes(routes!(webhook::live_calls))
        .routes(routes!(webhook::receive).layer(DefaultBodyLimit::max(64 * 1024)))
        .routes(routes!(tasks::list, tasks::create))
        .routes(routes!(tasks::read, tasks::update))
        .routes(routes!(tasks::cancel))
        .routes(routes!(campaigns::list, campaigns::create))
        .routes(routes!(campaigns::read, campaigns::update))
        .routes(routes!(campaigns::action))
        .routes(routes!(reports::calls))
        .routes(routes!(reports::answer_rates))
        .routes(routes!(reports::callbacks))
        .routes(routes!(reports::campaigns))
        .routes(routes!(reports::satisfaction))
        .routes(routes!(reports::reminders))
        .routes(routes!(document))
        .fallback(super::not_found_fallback)
}

/// The API router, mounted at [`PREFIX`], and its document.
fn mounted() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(PREFIX, routes())
        .split_for_parts();
    // After the routes: a modifier given to `#[openapi]` would run before any path exists.
    CommonResponses.modify(&mut document);
    nullable_generic_totals(&mut document);
    (router, document)
}

/// The `/api/v1` routes, ready to merge into the daemon's router.
pub fn router() -> axum::Router<AppState> {
    mounted().0
}

/// The OpenAPI document of the whole REST API.
pub fn document_value() -> utoipa::openapi::OpenApi {
    mounted().1
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    document_value()
        .to_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"document not serialized: {e}\"}}"))
});

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3 document of this API", content_type = "application/json", body = Object))
)]
pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

/// `Report<R>.totals` is an `Option<R>`, but utoipa inlines a generic parameter's schema without
/// its `null` (the reports answer `"totals": null` when there is nothing to total).
fn nullable_generic_totals(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{Object, OneOfBuilder, Schema, Type};
    let Some(components) = document.components.as_mut() else {
        return;
    };
    for (name, schema) in components.schemas.iter_mut() {
        if !name.starts_with("Report_") {
            continue;
        }
        let RefOr::T(Schema::Object(report)) = schema else {
            continue;
        };
        if let Some(totals) = report.properties.remove("totals") {
            let nullable = OneOfBuilder::new()
                .item(totals)
                .item(Object::with_type(Type::Null))
                .build();
            report
                .properties
                .insert("totals".into(), RefOr::T(Schema::OneOf(nullable)));
        }
    }
}

/// Bearer security and the error answers every authenticated operation can give.
struct CommonResponses;

const COMMON: &[(&str, &str)] = &[
    (
        "401",
        "No token, or a token that is unknown, expired or revoked",
    ),
    ("403", "The caller's role may not do this"),
    (
        "429",
        "Too many requests; `Retry-After` says when to try again",
    ),
    ("500", "Internal error"),
    (
        "503",
        "The database is not answering, or the daemon is stopping; try again",
    ),
];

/// An error answer in the contract's shape.
pub fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorBody",
                ))))
                .build(),
        )
        .build()
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An agent's token (`ringside agent add` prints it)"))
                    .build(),
            ),
        );
        let mut ids = std::collections::HashSet::new();
        for item in openapi.paths.paths.values_mut() {
            for (method, operation) in [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ]
            .into_iter()
            .filter_map(|(m, o)| o.as_mut().map(|o| (m, o)))
            {
                // Handlers are named for their module (`update`, `list`): the tag makes the id
                // unique, the method tells apart one handler serving two (PATCH and PUT).
                let name = operation.operation_id.clone().unwrap_or_default();
                let tag = operation
                    .tags
                    .as_ref()
                    .and_then(|t| t.first().cloned())
                    .unwrap_or_default();
                let mut id = format!("{tag}_{name}");
                if !ids.insert(id.clone()) {
                    id = format!("{tag}_{name}_{method}");
                    ids.insert(id.clone());
                }
                operation.operation_id = Some(id);
                // `security(())` on a handler marks it open (this document).
                let open = operation
                    .security
                    .as_ref()
                    .is_some_and(|s| s.iter().all(|r| *r == SecurityRequirement::default()));
                if open {
                    operation.security = None;
                    continue;
                }
                operation.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
                for (status, description) in COMMON {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::T(error_response(description)));
                }
            }
        }
    }
}
