//! The REST API under `/api/v1`: JSON in and out, bearer-token auth, errors as
//! `{"error": {"code", "message"}}`.
//!
//! Handlers are thin: they check the caller's role, turn JSON into storage drafts and storage
//! records into JSON. Every rejection of the framework (bad JSON, wrong query, body too large,
//! unknown route) is rewritten into the contract's error shape here.

pub mod agents;
pub mod campaigns;
pub mod customers;
pub mod limits;
pub mod openapi;
pub mod privacy;
pub mod records;
pub mod reports;
pub mod tasks;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::{Role, hash_token};
use crate::daemon::AppState;
use crate::storage::StorageError;
use crate::storage::agents::Agent;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role may not do this",
        )
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }
}

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, snake_case code programs can branch on (`not_found`, `invalid_field`, ...).
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => ApiError::not_found("no such record"),
            StorageError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            StorageError::Unavailable(m) => {
                tracing::warn!(error = %m, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is not answering; try again",
                )
            }
            StorageError::Other(m) => {
                tracing::error!(error = %m, "storage error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `Json<T>` whose rejections speak the contract's error shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(v)) => v,
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        if holds_nul(&value) {
            return Err(nul_refused());
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| ApiError::unprocessable("invalid_field", e.to_string()))
    }
}

/// Whether any string (or key) in `value` holds a NUL character. PostgreSQL's text cannot store
/// one (SQLite can), so text with NUL is refused at the door on every database alike.
pub(crate) fn holds_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// Why text with NUL is refused, wherever it came in.
pub(crate) const NUL_REFUSED: &str = "text must not contain NUL characters";

fn nul_refused() -> ApiError {
    ApiError::unprocessable("invalid_field", NUL_REFUSED)
}

pub(crate) fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::unprocessable("invalid_field", e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("invalid_json", e.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) => {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "request body is too large",
                )
            } else {
                ApiError::bad_request("unreadable_body", e.body_text())
            }
        }
        other => ApiError::bad_request("invalid_json", other.body_text()),
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Query<T>` with contract-shaped rejections.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // `%00` is the only way a NUL reaches a query string (see `holds_nul`).
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(ApiError::bad_request(
                "invalid_query",
                "the query must not contain NUL characters",
            ));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(ApiQuery(q.0)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", e.body_text())
}

/// `Path<T>` with contract-shaped rejections.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => Ok(ApiPath(p.0)),
            Err(e) => Err(path_rejection(e)),
        }
    }
}

fn path_rejection(e: PathRejection) -> ApiError {
    ApiError::bad_request("invalid_path", e.body_text())
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Without its extensions (see [`Storage::token_holder`](crate::storage::Storage::token_holder)).
    pub agent: Agent,
    /// The client's address, for the audit trail.
    pub source: Option<String>,
}

impl Caller {
    pub fn role(&self) -> Role {
        self.agent.role
    }

    /// The caller as the audit trail records them.
    pub fn actor(&self) -> crate::storage::privacy::Actor {
        crate::storage::privacy::Actor {
            id: Some(self.agent.id),
            name: Some(self.agent.name.clone()),
            role: Some(self.agent.role.as_str().into()),
            source: self.source.clone(),
        }
    }

    /// Fails with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> ApiResult<()> {
        if roles.contains(&self.agent.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    pub fn require_staff(&self) -> ApiResult<()> {
        self.require(&[Role::Agent, Role::Supervisor, Role::Admin])
    }

    pub fn require_supervisor(&self) -> ApiResult<()> {
        self.require(&[Role::Supervisor, Role::Admin])
    }
}

/// The token of a request: `Authorization: Bearer T`, else `?token=T`.
pub fn request_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let value = value.trim();
        if let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        {
            return Some(token.trim().to_string());
        }
    }
    parts.uri.query().and_then(|q| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v)
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = request_token(parts).ok_or_else(ApiError::unauthorized)?;
        if token.is_empty() || token.len() > 256 {
            return Err(ApiError::unauthorized());
        }
        match state.storage.token_holder(&hash_token(&token)).await? {
            Some(agent) => Ok(Caller {
                agent,
                source: parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.ip().to_string()),
            }),
            None => Err(ApiError::unauthorized()),
        }
    }
}

/// Paging shared by list endpoints: `?limit=` (1..=500, default 50) and `?offset=`.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// How many records (1 to 500; 50 when absent).
    #[serde(default, deserialize_with = "lenient_i64")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// How many records to skip.
    #[serde(default, deserialize_with = "lenient_i64")]
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// A number from a query string. Paging is `#[serde(flatten)]`ed into other query types, and
/// flattened fields reach serde as strings, so they must accept `"50"` as well as `50`.
fn lenient_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum NumOrText {
        Num(i64),
        Text(String),
    }
    match Option::<NumOrText>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrText::Num(n)) => Ok(Some(n)),
        Some(NumOrText::Text(t)) if t.trim().is_empty() => Ok(None),
        Some(NumOrText::Text(t)) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{t}` is not a whole number"))),
    }
}

impl Paging {
    pub fn limit(&self) -> ApiResult<i64> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=500).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::bad_request(
                "invalid_query",
                "limit must be between 1 and 500",
            )),
        }
    }
    pub fn offset(&self) -> ApiResult<i64> {
        match self.offset {
            None => Ok(0),
            Some(n) if n >= 0 => Ok(n),
            Some(_) => Err(ApiError::bad_request(
                "invalid_query",
                "offset must not be negative",
            )),
        }
    }
}

pub async fn not_found_fallback() -> ApiError {
    ApiError::not_found("no such route")
}
