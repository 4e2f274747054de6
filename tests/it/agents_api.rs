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
