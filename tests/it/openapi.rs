//! `GET /api/v1/openapi.json`: a sound OpenAPI 3 document that covers every route the server
//! answers under `/api/v1`, and nothing it does not.
//!
//! The router is built from the same `#[utoipa::path]` declarations as the document, so drift
//! needs a route registered some other way. To catch that too, the coverage test asks the running
//! server: every path-like string literal in `src/` is tried under `/api/v1` with each method and
//! no token. A route answers 401 (or another error of its own), an unknown path the API's "no
//! such route" 404, a known path with a method it does not serve 405: whatever is routed must be
//! in the document, and whatever the document lists must be routed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::support::{TestApp, spawn_app};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("GET openapi.json");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    );
    response.json().await.expect("the document is JSON")
}

/// `/customers/{id}` → `/customers/{}`: templates compared without their parameters' names.
fn shape(template: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// The document's operations: path shape (without `/api/v1`) → methods.
fn documented(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .map(|(path, item)| {
            let relative = path
                .strip_prefix("/api/v1")
                .unwrap_or_else(|| panic!("{path} is outside /api/v1"));
            let methods = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| m.to_string())
                .collect();
            (shape(relative), methods)
        })
        .collect()
}

/// Path-like string literals in the crate's source: every candidate route.
fn path_literals() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                for literal in text.split('"').skip(1).step_by(2) {
                    let ok = literal.starts_with('/')
                        && literal.len() > 1
                        && literal
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "/_-.{}".contains(c));
                    if ok {
                        let literal = literal.strip_prefix("/api/v1").unwrap_or(literal);
                        if literal.starts_with('/') {
                            found.insert(literal.to_string());
                        }
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    found
}

/// How the server answers `method` on `/api/v1{path}` (parameters filled in) without a token.
async fn probe(app: &TestApp, method: &str, path: &str) -> Routing {
    let concrete = path
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let response = app
        .client
        .request(method, app.url(&format!("/api/v1{concrete}")))
        .send()
        .await
        .expect("probe");
    match response.status().as_u16() {
        405 => Routing::WrongMethod,
        404 => {
            let body: Value = response.json().await.unwrap_or_default();
            if body["error"]["message"] == "no such route" {
                Routing::Unknown
            } else {
                Routing::Served
            }
        }
        _ => Routing::Served,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Routing {
    Served,
    WrongMethod,
    Unknown,
}

#[tokio::test]
async fn every_api_route_the_server_answers_is_in_the_document_and_back() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let documented = documented(&doc);
    let literals = path_literals();
    assert!(
        literals.contains("/customers/{id}") && literals.contains("/openapi.json"),
        "the source scan finds the routes"
    );

    let mut missing = Vec::new();
    for literal in &literals {
        for method in METHODS {
            if probe(&app, method, literal).await == Routing::Served
                && !documented
                    .get(&shape(literal))
                    .is_some_and(|m| m.contains(method))
            {
                missing.push(format!("{} /api/v1{literal}", method.to_uppercase()));
            }
        }
    }
    assert!(missing.is_empty(), "served but not documented: {missing:?}");

    let mut stale = Vec::new();
    for (path, methods) in &documented {
        for method in METHODS {
            let routed = probe(&app, method, path).await == Routing::Served;
            if routed != methods.contains(method) {
                stale.push(format!(
                    "{} /api/v1{path}: documented {}, served {routed}",
                    method.to_uppercase(),
                    methods.contains(method)
                ));
            }
        }
    }
    assert!(stale.is_empty(), "document and router disagree: {stale:?}");
    app.stop().await;
}

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_sound_and_describes_auth_and_errors() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    assert_eq!(doc["info"]["title"], "ringside");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in &all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "$ref {r} has no schema"
        );
    }

    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            let responses = op["responses"].as_object().unwrap();
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
            if path == "/api/v1/openapi.json" {
                assert!(op.get("security").is_none(), "the document is open");
                continue;
            }
            assert_eq!(
                op["security"],
                serde_json::json!([{"bearer": []}]),
                "{method} {path}"
            );
            for status in ["401", "403", "429", "500", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} documents {status}"
                );
            }
            if path.contains('{') {
                assert!(
                    responses.contains_key("404"),
                    "{method} {path} documents 404"
                );
            }
        }
    }

    // A report answers `"totals": null` when there is nothing to total (schemathesis found the
    // document saying otherwise).
    let totals = &doc["components"]["schemas"]["Report_CampaignRow"]["properties"]["totals"];
    assert!(
        totals["oneOf"]
            .as_array()
            .is_some_and(|alts| alts.contains(&serde_json::json!({"type": "null"}))),
        "{totals}"
    );

    // The error shape the document promises is the one the API sends.
    let r = app.get("/api/v1/customers/999999", &app.admin_token).await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    let detail = &doc["components"]["schemas"]["ErrorDetail"]["required"];
    assert_eq!(*detail, serde_json::json!(["code", "message"]));
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string());
    app.stop().await;
}

/// Found by schemathesis on PostgreSQL: a NUL in any text made the database refuse the statement
/// and the API answer 500 (SQLite stores it). Text with NUL is now refused up front, alike on both.
#[tokio::test]
async fn text_with_a_nul_character_is_refused_not_a_server_error() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/customers",
            &app.admin_token,
            &serde_json::json!({"name": "Wang\u{0}Wei"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(crate::support::error_code(r).await, "invalid_field");
    let r = app
        .get("/api/v1/customers?q=Wang%00", &app.admin_token)
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(crate::support::error_code(r).await, "invalid_query");
    let r = app
        .call_event(
            serde_json::json!({"event": "ringing", "call_id": "n\u{0}1", "from": "13800138000"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    // A backslash followed by `u0000` is ordinary text.
    let r = app
        .post(
            "/api/v1/customers",
            &app.admin_token,
            &serde_json::json!({"name": "Wang \\u0000 Wei"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    app.stop().await;
}
