//! Access control and abuse resistance: the authorization matrix (every route × role) and rate limits.

use ringside::auth::Role;
use serde_json::{Value, json};

use crate::support::{error_code, spawn_app_with};

#[tokio::test]
async fn every_route_answers_each_role_as_expected() {
    let app = spawn_app_with(|s| s.outbound.enabled = false).await;
    let (_, agent) = app.agent("al", Role::Agent, &["1001"]).await;
    let (sup_id, sup) = app.agent("sue", Role::Supervisor, &[]).await;
    let (_, pbx) = app.agent("pbx", Role::Pbx, &[]).await;
    let admin = app.admin_token.clone();
    let c: Value = app
        .post(
            "/api/v1/customers",
            &admin,
            &json!({"name": "Matrix", "phones": ["13800138050"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let cid = c["id"].as_i64().unwrap();
    let complaint: Value = app
        .post(
            "/api/v1/complaints",
            &admin,
            &json!({"customer_id": cid, "summary": "x"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let task: Value = app
        .post("/api/v1/tasks", &admin, &json!({"customer_id": cid}))
        .await
        .json()
        .await
        .unwrap();
    let campaign: Value = app
        .post("/api/v1/campaigns", &admin, &json!({"name": "m"}))
        .await
        .json()
        .await
        .unwrap();

    // (method, path, body, [none, agent, supervisor, admin, pbx]) — 0 means "2xx".
    let ok = 0;
    let routes: Vec<(&str, String, Value, [u16; 5])> = vec![
        (
            "GET",
            "/api/v1/customers".into(),
            json!(null),
            [401, ok, ok, ok, 403],
        ),
        (
            "POST",
            "/api/v1/customers".into(),
            json!({"name": "n"}),
            [401, ok, ok, ok, 403],
        ),
        (
            "GET",
            format!("/api/v1/customers/{cid}"),
            json!(null),
            [401, ok, ok, ok, 403],
        ),
        (
            "PATCH",
            format!("/api/v1/customers/{cid}"),
            json!({"notes": "n"}),
            [401, ok, ok, ok, 403],
        ),
        (
            "GET",
            format!("/api/v1/customers/{cid}/assets"),
            json!(null),
            [401, ok, ok, ok, 403],
        ),
        (
            "GET",
            format!("/api/v1/customers/{cid}/export"),
            json!(null),
            [401, 403, 403, ok, 403],
        ),
        (
            "GET",
            "/api/v1/interactions".into(),
            json!(null),
            [401, ok, ok, ok, 403],
        ),
        (
            "GET",
            "/api/v1/complaints".into(),
            json!(null),
            [401, ok, ok, ok, 403],
        ),
        (
            "GET",
            format!("/api/v1/complaints/{}", complaint["id"]),
            json!(null),
            [401, ok, ok, ok, 403],
        ),
        (
            "GET",
            "/api/v1/dnc".into(),
            json!(null),
            [401, ok, ok, ok, 403],
        ),
        (
            "GET",
            "/api/v1/agents".into(),
            json!(null),
            [401, 403, ok, ok, 403],
        ),
        (
            "GET",
            "/api/v1/agents/me".into(),
            json!(null),
            [401, ok, ok, ok, ok],
        ),
        (
            "GET",
            format!("/api/v1/agents/{sup_id}"),
            json!(null),
            [401, 403, ok, ok, 403],
        ),
        (
            "GET",
            "/api/v1/calls".into(),
            json!(null),
            [401, ok, ok, ok, 403],
        ),
        (
            "POST",
            "/api/v1/call-events".into(),
            json!({"event": "hangup", "call_id": "zz"}),
            [401, 403, 403, ok, ok],
        ),
        (
            "GET",
            "/api/v1/tasks".into(),
            json!(null),
            [401, ok, ok, ok, 403],
        ),
        (
            "GET",
            format!("/api/v1/tasks/{}", task["id"]),
            json!(null),
            [401, ok, ok, ok, 403],
        ),
        (
            "PATCH",
            format!("/api/v1/tasks/{}", task["id"]),
            json!({"not_before": 1}),
            [401, 403, ok, ok, 403],
        ),
        (
            "GET",
            "/api/v1/campaigns".into(),
            json!(null),
            [401, ok, ok, ok, 403],
        ),
        (
            "POST",
            "/api/v1/campaigns".into(),
            json!({"name": "x"}),
            [401, 403, ok, ok, 403],
        ),
        (
            "GET",
            format!("/api/v1/campaigns/{}", campaign["id"]),
            json!(null),
            [401, ok, ok, ok, 403],
        ),
        (
            "GET",
            "/api/v1/audit".into(),
            json!(null),
            [401, 403, 403, ok, 403],
        ),
    ];
    let tokens: [Option<&str>; 5] = [None, Some(&agent), Some(&sup), Some(&admin), Some(&pbx)];
    for (method, path, body, expected) in &routes {
        for (who, token) in tokens.iter().enumerate() {
            let mut req = app.client.request(method.parse().unwrap(), app.url(path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if !body.is_null() {
                req = req.json(body);
            }
            let status = req.send().await.unwrap().status().as_u16();
            let want = expected[who];
            if want == 0 {
                assert!(
                    (200..300).contains(&status),
                    "{method} {path} as role #{who}: {status}"
                );
            } else {
                assert_eq!(status, want, "{method} {path} as role #{who}");
            }
        }
    }
    // Destructive routes last, by the roles allowed to use them.
    assert_eq!(
        app.delete(&format!("/api/v1/customers/{cid}"), &agent)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.post(&format!("/api/v1/customers/{cid}/erase"), &sup, &json!({}))
            .await
            .status(),
        403
    );
    assert_eq!(
        app.delete(&format!("/api/v1/customers/{cid}"), &sup)
            .await
            .status(),
        204
    );
    app.stop().await;
}

#[tokio::test]
async fn clients_over_the_rate_limit_get_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.http.rate_limit_per_address = 5;
        s.http.rate_limit_per_token = 0;
    })
    .await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..15 {
        let r = app.get("/api/v1/agents/me", &app.admin_token).await;
        statuses.push(r.status().as_u16());
        last = Some(r);
    }
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let r = last.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(error_code(r).await, "rate_limited");
    app.stop().await;
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_refused_by_rest_and_websocket() {
    use ringside::auth::{hash_token, new_token};
    let app = spawn_app_with(|_| {}).await;
    let expired = new_token();
    app.state
        .storage
        .create_agent(
            "old",
            Role::Agent,
            &[],
            &hash_token(&expired),
            Some(ringside::storage::now_ms() - 1000),
        )
        .await
        .unwrap();
    let (id, revoked) = app.agent("gone", Role::Agent, &[]).await;
    app.state.storage.revoke_tokens(id).await.unwrap();
    for token in [&expired, &revoked] {
        assert_eq!(app.get("/api/v1/agents/me", token).await.status(), 401);
        let url = format!("ws://{}/ws?token={token}", app.addr);
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 401)
            }
            other => panic!("expected 401, got {:?}", other.map(|_| ())),
        }
    }
    app.stop().await;
}
