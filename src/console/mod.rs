//! What agents and supervisors look at: the console page (served from files embedded in the
//! binary, no build step), the agent WebSocket, and the screen-pop content.
//!
//! The console module and `api` are the only places that define JSON shapes sent to clients.

pub mod messages;
pub mod pop;
pub mod supervisor;
pub mod wallboard;
pub mod ws;

use axum::http::header;
use axum::response::{Html, IntoResponse};

const INDEX_HTML: &str = include_str!("static/index.html");
const CONSOLE_JS: &str = include_str!("static/console.js");
const CONSOLE_CSS: &str = include_str!("static/console.css");

pub async fn index() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Html(INDEX_HTML))
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CONSOLE_JS,
    )
}

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CONSOLE_CSS,
    )
}
