//! Test support: start the real application in-process on port 0, on SQLite (a fresh file) or,
//! when `RINGSIDE_TEST_DATABASE` names a PostgreSQL server, on a fresh database there.

#![allow(dead_code)]

pub mod fake_pbx;
pub mod sip_client;
pub mod webdriver;

use std::net::SocketAddr;
use std::path::PathBuf;

use ringside::auth::{Role, hash_token, new_token};
use ringside::daemon::{AppState, Application};
use ringside::settings::Settings;
use ringside::storage::Storage;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub shutdown: CancellationToken,
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub db: TestDb,
    /// The SIP ingress (UDP and TCP on one address), when the test enabled it.
    pub sip: Option<ringside::ingress::sip::SipIngress>,
}

/// A database made for one test; SQLite files live in a temp dir removed on drop.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new() -> TestDb {
        match std::env::var("RINGSIDE_TEST_DATABASE") {
            Ok(base) if base.starts_with("postgres") => {
                let name = format!("ringside_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Storage::connect(&ringside::settings::DatabaseSettings {
                    url: base.clone(),
                    max_connections: 1,
                    acquire_timeout_ms: 10_000,
                })
                .await
                .expect("connect to the PostgreSQL test server");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(admin.pool())
                    .await
                    .expect("create test database");
                admin.close().await;
                let (prefix, _) = base
                    .rsplit_once('/')
                    .expect("database url with a database name");
                TestDb {
                    url: format!("{prefix}/{name}"),
                    _dir: None,
                }
            }
            _ => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("ringside.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }

    pub fn path(&self) -> Option<PathBuf> {
        self._dir.as_ref().map(|d| d.path().join("ringside.db"))
    }
}

/// Settings for a test: everything on loopback, port 0.
pub fn test_settings(db: &TestDb) -> Settings {
    let mut s = Settings::default();
    s.database.url = db.url.clone();
    s.database.max_connections = 4;
    s.http.listen = "127.0.0.1:0".into();
    s.http.shutdown_grace_ms = 2000;
    s.sip.enabled = false;
    s.sip.listen = "127.0.0.1:0".into();
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    if let Ok(level) = std::env::var("RINGSIDE_TEST_LOG") {
        ringside::telemetry::init(&ringside::settings::LogSettings {
            level,
            ..Default::default()
        });
    }
    let db = TestDb::new().await;
    let mut settings = test_settings(&db);
    configure(&mut settings);
    let app = Application::build(settings).await.expect("build app");
    let addr = app.http_addr();
    let sip = app.sip().cloned();
    let state = app.state().clone();
    let admin_token = new_token();
    state
        .storage
        .create_agent(
            "test-admin",
            Role::Admin,
            &[],
            &hash_token(&admin_token),
            None,
        )
        .await
        .expect("create admin");
    state
        .directory
        .reload(&state.storage)
        .await
        .expect("reload directory");
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run(shutdown.clone()));
    TestApp {
        addr,
        state,
        shutdown,
        handle,
        client: reqwest::Client::new(),
        admin_token,
        db,
        sip,
    }
}

/// An app with SIP enabled on 127.0.0.1, port 0, in the given mode and with more settings.
pub async fn spawn_sip_app(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|settings| {
        settings.sip.enabled = true;
        settings.sip.listen = "127.0.0.1:0".into();
        configure(settings);
    })
    .await
}

impl TestApp {
    /// The SIP address; panics when the test did not enable SIP.
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip
            .as_ref()
            .map(|sip| sip.local_addr())
            .expect("SIP enabled for this test")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Creates an agent with a role and extensions; returns (id, token).
    pub async fn agent(&self, name: &str, role: Role, extensions: &[&str]) -> (i64, String) {
        let token = new_token();
        let exts: Vec<String> = extensions.iter().map(|e| e.to_string()).collect();
        let agent = self
            .state
            .storage
            .create_agent(name, role, &exts, &hash_token(&token), None)
            .await
            .expect("create agent");
        self.state
            .directory
            .reload(&self.state.storage)
            .await
            .expect("reload directory");
        (agent.id, token)
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn patch(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("PATCH")
    }

    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.handle).await;
    }
}

/// Asserts the contract's error shape and returns the code.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_string();
    assert!(
        body["error"]["message"].is_string(),
        "error.message in {body}"
    );
    code
}

/// A console connected over the real WebSocket.
pub struct Console {
    pub ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl TestApp {
    /// Connects a console with the token in `Sec-WebSocket-Protocol`; returns it after `hello`.
    pub async fn console(&self, token: &str) -> Console {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            format!("ringside.v1, {token}").parse().unwrap(),
        );
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket connects");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("ringside.v1")
        );
        let mut console = Console { ws };
        let hello = console.next_json().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        console
    }

    /// Posts a native call event with the app's PBX account.
    pub async fn call_event(&self, body: serde_json::Value) -> reqwest::Response {
        self.post("/api/v1/call-events", &self.admin_token, &body)
            .await
    }
}

impl Console {
    /// The next JSON text message, within 5 s.
    pub async fn next_json(&mut self) -> serde_json::Value {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(15), self.ws.next())
                .await
                .expect("a message within 15 s")
                .expect("socket open")
                .expect("no socket error");
            match msg {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// The next message of this type, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> serde_json::Value {
        loop {
            let v = self.next_json().await;
            if v["type"] == kind {
                return v;
            }
        }
    }

    /// Asserts nothing arrives within `ms`.
    pub async fn expect_silence(&mut self, ms: u64) {
        use futures_util::StreamExt;
        if let Ok(Some(Ok(msg))) =
            tokio::time::timeout(std::time::Duration::from_millis(ms), self.ws.next()).await
        {
            if !matches!(msg, tokio_tungstenite::tungstenite::Message::Ping(_)) {
                panic!("expected silence, got {msg:?}");
            }
        }
    }

    pub async fn send(&mut self, v: serde_json::Value) {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                v.to_string().into(),
            ))
            .await
            .expect("send");
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
