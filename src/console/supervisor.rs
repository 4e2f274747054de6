//! The supervisor page `GET /supervisor`: campaigns (create from a filter or an uploaded list,
//! start, pause, resume, stop, progress), the callback queue (reassign), agents (add, roles,
//! extensions, tokens) and reports (view, CSV). A static page embedded in the binary, no build
//! step; it signs in with a supervisor or admin token and does everything through `/api/v1`, so
//! it can do nothing the REST API does not allow that token.

use axum::http::header;
use axum::response::{Html, IntoResponse};

const PAGE_HTML: &str = include_str!("static/supervisor.html");
const PAGE_JS: &str = include_str!("static/supervisor.js");
const PAGE_CSS: &str = include_str!("static/supervisor.css");

pub async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Html(PAGE_HTML))
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE_JS,
    )
}

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE_CSS,
    )
}
