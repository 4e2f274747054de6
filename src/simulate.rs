//! `ringside simulate call`: rings a call at a running daemon through its own webhook, exactly as
//! a PBX would, so a newcomer can see a pop without a phone system.
//!
//! It signs in as the built-in `simulator` PBX account, creating it on first use, with a token
//! that expires after ten minutes.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use crate::auth::{Role, hash_token, new_token};
use crate::cli::SimulateCall;
use crate::settings::Settings;
use crate::storage::{Storage, StorageError, now_ms};

const SIMULATOR: &str = "simulator";

pub async fn call(settings: &Settings, call: SimulateCall) -> anyhow::Result<ExitCode> {
    let base = match call.url.clone() {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let addr: std::net::SocketAddr = settings.http.listen.parse()?;
            if addr.port() == 0 {
                eprintln!(
                    "ringside: http.listen uses port 0; give the daemon's address with --url"
                );
                return Ok(ExitCode::from(2));
            }
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                addr.ip().to_string()
            };
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            format!("http://{host}:{}", addr.port())
        }
    };
    let token = simulator_token(settings).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let call_id = format!("sim-{}", uuid::Uuid::new_v4());
    let post = |body: serde_json::Value| {
        let client = client.clone();
        let url = format!("{base}/api/v1/call-events");
        let token = token.clone();
        async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if !status.is_success() {
                anyhow::bail!("the daemon answered {status}: {text}");
            }
            Ok::<_, anyhow::Error>(())
        }
    };
    let mut ringing =
        json!({"event": "ringing", "call_id": call_id, "from": call.from, "direction": "inbound"});
    if let Some(to) = &call.to {
        ringing["to"] = json!(to);
        ringing["agent"] = json!(to);
    }
    post(ringing).await?;
    println!(
        "call {call_id} from {} ringing{}",
        call.from,
        call.to
            .as_deref()
            .map(|t| format!(" at {t}"))
            .unwrap_or_default()
    );
    let started = std::time::Instant::now();
    if let Some(after) = call.answer_after {
        tokio::time::sleep(Duration::from_secs_f64(after.max(0.0))).await;
        let mut answered = json!({"event": "answered", "call_id": call_id, "from": call.from, "direction": "inbound"});
        if let Some(to) = &call.to {
            answered["agent"] = json!(to);
        }
        post(answered).await?;
        println!("call {call_id} answered");
    }
    if let Some(after) = call.hangup_after {
        let left = Duration::from_secs_f64(after.max(0.0)).saturating_sub(started.elapsed());
        tokio::time::sleep(left).await;
        post(json!({"event": "hangup", "call_id": call_id, "from": call.from, "direction": "inbound", "cause": "normal_clearing"}))
            .await?;
        println!("call {call_id} hung up");
    }
    Ok(ExitCode::SUCCESS)
}

async fn simulator_token(settings: &Settings) -> anyhow::Result<String> {
    let storage = Storage::connect(&settings.database).await?;
    storage.migrate().await?;
    let token = new_token();
    let expires = Some(now_ms() + 10 * 60 * 1000);
    match storage.agent_by_name(SIMULATOR).await {
        Ok(agent) if agent.role == Role::Pbx => {
            storage
                .add_token(agent.id, &hash_token(&token), expires)
                .await?;
        }
        Ok(_) => anyhow::bail!("an agent named `{SIMULATOR}` exists but is not a pbx account"),
        Err(StorageError::NotFound) => {
            storage
                .create_agent(SIMULATOR, Role::Pbx, &[], &hash_token(&token), expires)
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    storage.close().await;
    Ok(token)
}
