use std::time::Duration;

use ringside::auth::Role;
use serde_json::{Value, json};

use crate::support::{error_code, spawn_app};

#[tokio::test]
async fn admin_creates_an_agent_whose_token_works_once_shown() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/agents",
            &app.admin_token,
            &json!({"name": "alice", "role": "agent", "extensions": ["1001", "1002"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    assert_eq!(created["extensions"], json!(["1001", "1002"]));
    let me: Value = app
        .get("/api/v1/agents/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "alice");
    assert!(me.get("token").is_none());
    let listed: Value = app
        .get("/api/v1/agents", &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a.get("token").is_none() && a.get("token_hash").is_none())
    );
    let stored = app.state.storage.agent_by_name("alice").await.unwrap();
    assert_eq!(stored.role, Role::Agent);
    app.stop().await;
}

#[tokio::test]
async fn revoked_tokens_stop_working() {
    let app = spawn_app().await;
    let (id, token) = app.agent("alice", Role::Agent, &[]).await;
    assert_eq!(app.get("/api/v1/agents/me", &token).await.status(), 200);
    assert_eq!(
        app.delete(&format!("/api/v1/agents/{id}/tokens"), &app.admin_token)
            .await
            .status(),
        204
    );
    assert_eq!(app.get("/api/v1/agents/me", &token).await.status(), 401);
    let fresh: Value = app
        .post(
            &format!("/api/v1/agents/{id}/tokens"),
            &app.admin_token,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        app.get("/api/v1/agents/me", fresh["token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn a_disabled_agents_token_stops_working_at_once_though_it_was_just_used() {
    let app = spawn_app().await;
    let (id, token) = app.agent("alice", Role::Agent, &[]).await;
    assert_eq!(app.get("/api/v1/agents/me", &token).await.status(), 200);
    let patched = app
        .patch(
            &format!("/api/v1/agents/{id}"),
            &app.admin_token,
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    assert_eq!(app.get("/api/v1/agents/me", &token).await.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn a_token_stops_working_when_it_expires_though_it_was_just_used() {
    use ringside::auth::{hash_token, new_token};
    let app = spawn_app().await;
    let token = new_token();
    let expires_at = ringside::storage::now_ms() + 400;
    app.state
        .storage
        .create_agent(
            "brief",
            Role::Agent,
            &[],
            &hash_token(&token),
            Some(expires_at),
        )
        .await
        .unwrap();
    assert_eq!(app.get("/api/v1/agents/me", &token).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.get("/api/v1/agents/me", &token).await.status(), 401);
    app.stop().await;
}

/// Another process (here a second connection to the same database, as `ringside agent revoke`
/// opens) revokes a token the daemon has just seen: the daemon refuses it within
/// `TOKEN_HOLDER_TTL`.
#[tokio::test]
async fn a_token_revoked_by_another_process_stops_working_within_the_holder_ttl() {
    use ringside::storage::agents::TOKEN_HOLDER_TTL;
    let app = spawn_app().await;
    let (id, token) = app.agent("alice", Role::Agent, &[]).await;
    assert_eq!(app.get("/api/v1/agents/me", &token).await.status(), 200);
    let mut settings = ringside::settings::Settings::default();
    settings.database.url = app.db.url.clone();
    let other = ringside::storage::Storage::connect(&settings.database)
        .await
        .unwrap();
    assert_eq!(other.revoke_tokens(id).await.unwrap(), 1);
    let revoked_at = std::time::Instant::now();
    loop {
        let status = app.get("/api/v1/agents/me", &token).await.status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < TOKEN_HOLDER_TTL + Duration::from_secs(1),
            "still accepted {:?} after the revocation",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    other.close().await;
    app.stop().await;
}

#[tokio::test]
async fn supervisors_manage_agents_but_not_admins() {
    let app = spawn_app().await;
    let (_, sup) = app.agent("sue", Role::Supervisor, &[]).await;
    let (_, agent) = app.agent("al", Role::Agent, &[]).await;
    assert_eq!(
        app.post(
            "/api/v1/agents",
            &sup,
            &json!({"name": "bo", "role": "agent"})
        )
        .await
        .status(),
        201
    );
    let r = app
        .post(
            "/api/v1/agents",
            &sup,
            &json!({"name": "root", "role": "admin"}),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "forbidden");
    assert_eq!(app.get("/api/v1/agents", &agent).await.status(), 403);
    let r = app
        .post(
            "/api/v1/agents",
            &app.admin_token,
            &json!({"name": "al", "role": "agent"}),
        )
        .await;
    assert_eq!(r.status(), 409, "duplicate name");
    let r = app
        .post(
            "/api/v1/agents",
            &app.admin_token,
            &json!({"name": "x", "role": "king"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    app.stop().await;
}
