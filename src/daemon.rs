//! The daemon: builds every component from the settings, binds the sockets, and is the only
//! place that spawns long-lived tasks. Shutdown is one `CancellationToken`: listeners stop
//! accepting, in-flight requests finish (bounded by `http.shutdown_grace_ms`), then the database
//! pool is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::trace::TraceLayer;

use crate::api;
use crate::calls::{CallDeps, Calls};
use crate::console;
use crate::directory::Directory;
use crate::hub::{Hub, HubConfig};
use crate::ingress;
use crate::outbound::dialer::Dialer;
use crate::outbound::engine::{Engine, EngineDeps};
use crate::settings::DialerChoice;
use crate::settings::Settings;
use crate::storage::Storage;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub storage: Storage,
    pub directory: Arc<Directory>,
    pub hub: Hub,
    pub calls: Calls,
    pub engine: Engine,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub rate_limiter: Arc<api::limits::RateLimiter>,
    /// The SIP ingress (its counters), when `sip.enabled`.
    pub sip: Option<ingress::sip::SipIngress>,
}

pub struct Application {
    state: AppState,
    http: TcpListener,
    http_addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// The SIP ingress, when `sip.enabled`.
    sip: Option<ingress::sip::SipIngress>,
}

impl Application {
    /// Connects and migrates the database and binds the sockets; nothing runs until [`run`](Self::run).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let storage = Storage::connect(&settings.database).await?;
        storage.migrate().await?;
        let directory = Arc::new(Directory::load(&storage).await?);
        let http = TcpListener::bind(&settings.http.listen)
            .await
            .with_context(|| format!("cannot listen on http.listen = {}", settings.http.listen))?;
        let http_addr = http.local_addr()?;
        let settings = Arc::new(settings);
        // Components start now, under a token `run` cancels, so the journal replay happens before serving.
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let hub_config = HubConfig {
            queue_capacity: settings.console.queue_capacity,
            replay_window: Duration::from_secs(settings.console.replay_window_secs),
            queues: settings
                .console
                .queues
                .iter()
                .map(|q| (q.name.clone(), q.agents.clone()))
                .collect(),
        };
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let (hub, hub_task) = Hub::start(
            hub_config,
            directory.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            let _ = hub_task.await;
        });
        let deps = CallDeps {
            storage: storage.clone(),
            settings: settings.clone(),
            directory: directory.clone(),
            hub: hub.clone(),
            metrics: metrics.clone(),
        };
        let checkpoints = storage.clone();
        let stop_checkpoints = shutdown.clone();
        tasks.spawn(async move { checkpoints.checkpoint_wal_until(stop_checkpoints).await });
        let (calls, calls_task) = Calls::start(deps, shutdown.clone()).await?;
        tasks.spawn(async move {
            let _ = calls_task.await;
        });
        // PBX manager clients: call events in, and the dialers for outbound calls.
        let pbx_deps = crate::ingress::ami::AmiDeps {
            calls: calls.clone(),
            settings: settings.clone(),
            directory: directory.clone(),
        };
        let mut ami_clients = Vec::new();
        for server in &settings.ami.servers {
            let (client, task) = crate::ingress::ami::AmiClient::start(
                server.clone(),
                pbx_deps.clone(),
                shutdown.clone(),
            );
            tasks.spawn(async move {
                let _ = task.await;
            });
            ami_clients.push(client);
        }
        let mut esl_clients = Vec::new();
        for server in &settings.esl.servers {
            let (client, task) = crate::ingress::esl::EslClient::start(
                server.clone(),
                pbx_deps.clone(),
                shutdown.clone(),
            );
            tasks.spawn(async move {
                let _ = task.await;
            });
            esl_clients.push(client);
        }
        let engine = Engine::new(EngineDeps {
            storage: storage.clone(),
            settings: settings.clone(),
            directory: directory.clone(),
            hub: hub.clone(),
            dialer: dialer_for(&settings, ami_clients.first(), esl_clients.first()),
            metrics: metrics.clone(),
        });
        if settings.outbound.enabled {
            let task = engine.spawn(shutdown.clone());
            tasks.spawn(async move {
                let _ = task.await;
            });
        }
        // SIP binds here (so port 0 is known before `run`) and answers at once.
        let sip = if settings.sip.enabled {
            let deps = ingress::sip::SipDeps {
                settings: settings.clone(),
                storage: storage.clone(),
                directory: directory.clone(),
                calls: calls.clone(),
            };
            Some(ingress::sip::SipIngress::start(deps, shutdown.clone(), &tasks).await?)
        } else {
            None
        };
        let rate_limiter = Arc::new(api::limits::RateLimiter::new(
            settings.http.rate_limit_per_address,
            settings.http.rate_limit_per_token,
        ));
        let state = AppState {
            settings,
            storage,
            directory,
            hub,
            calls,
            engine,
            metrics,
            rate_limiter,
            sip: sip.clone(),
        };
        Ok(Application {
            state,
            http,
            http_addr,
            shutdown,
            tasks,
            sip,
        })
    }

    /// The address SIP listens on (UDP and TCP), when `sip.enabled`.
    pub fn sip_addr(&self) -> Option<SocketAddr> {
        self.sip.as_ref().map(ingress::sip::SipIngress::local_addr)
    }

    /// The SIP ingress (its address and counters), when `sip.enabled`.
    pub fn sip(&self) -> Option<&ingress::sip::SipIngress> {
        self.sip.as_ref()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled, then winds down gracefully.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            state,
            http,
            http_addr,
            shutdown: components,
            tasks,
            sip: _,
        } = self;
        tracing::info!(%http_addr, "http listening");
        {
            let components = components.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                shutdown.cancelled().await;
                components.cancel();
            });
        }

        {
            let state = state.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                // Loaded at build already: the first reload is a minute from now.
                let period = Duration::from_secs(60);
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tick.tick() => {
                            if let Err(e) = state.directory.reload(&state.storage).await {
                                tracing::warn!(error = %e, "agent directory reload failed");
                            }
                        }
                    }
                }
            });
        }

        let grace = Duration::from_millis(state.settings.http.shutdown_grace_ms);
        let app = router(state.clone());
        let server_shutdown = shutdown.clone();
        let server = axum::serve(
            http,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { server_shutdown.cancelled().await });
        let result = tokio::select! {
            r = server => r.context("http server failed"),
            _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("in-flight requests did not finish within the grace period");
                Ok(())
            }
        };
        tasks.close();
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!("background tasks did not stop within the grace period");
        }
        state.storage.close().await;
        tracing::info!("stopped");
        result
    }
}

/// The dialer the settings ask for.
fn dialer_for(
    settings: &Settings,
    ami: Option<&crate::ingress::ami::AmiClient>,
    esl: Option<&crate::ingress::esl::EslClient>,
) -> Option<Arc<dyn Dialer>> {
    let ami = ami.map(|c| Arc::new(c.clone()) as Arc<dyn Dialer>);
    let esl = esl.map(|c| Arc::new(c.clone()) as Arc<dyn Dialer>);
    match settings.outbound.dialer {
        DialerChoice::Simulated => {
            tracing::warn!("outbound dialer is SIMULATED: no real calls are placed");
            Some(Arc::new(crate::outbound::simulated::SimulatedDialer::new(
                &settings.outbound.simulated_outcomes,
                Duration::from_millis(settings.outbound.simulated_delay_ms),
            )))
        }
        DialerChoice::Ami => ami,
        DialerChoice::Esl => esl,
        DialerChoice::Auto => ami.or(esl),
        DialerChoice::Manual => None,
    }
}

/// Every HTTP route of the daemon.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.http.body_limit_bytes;
    let limiter = state.rate_limiter.clone();
    // Every /api/v1 route, declared once with its OpenAPI description (`api::openapi`).
    let api = api::openapi::router();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::serve))
        .route("/", get(console::index))
        .route("/console.js", get(console::script))
        .route("/console.css", get(console::stylesheet))
        .route("/ws", get(console::ws::upgrade))
        .route("/wallboard", get(console::wallboard::page))
        .route("/wallboard.js", get(console::wallboard::script))
        .route("/wallboard.css", get(console::wallboard::stylesheet))
        .route("/ws/wallboard", get(console::wallboard::upgrade))
        .route("/supervisor", get(console::supervisor::page))
        .route("/supervisor.js", get(console::supervisor::script))
        .route("/supervisor.css", get(console::supervisor::stylesheet))
        .merge(api)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            limiter,
            api::limits::limit,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if state.storage.ping().await {
        (StatusCode::OK, axum::Json(json!({"status": "ok"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "database": "not answering"})),
        )
    }
}
