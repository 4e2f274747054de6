use ringside::auth::Role;
use serde_json::{Value, json};

use crate::support::{error_code, spawn_app};

#[tokio::test]
async fn healthz_answers_ok_when_the_database_answers() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    app.stop().await;
}

#[tokio::test]
async fn customer_round_trip_create_read_update_delete() {
    let app = spawn_app().await;
    let t = &app.admin_token;
    let created = app
        .post(
            "/api/v1/customers",
            t,
            &json!({
                "name": "王建国", "tier": "a", "key_account": true, "account_manager": "demo",
                "birthday": "1978-05-04", "timezone": "Asia/Shanghai", "tags": ["fleet", "vip"],
                "phones": ["138 0013 8000", {"number": "010-6552 8899", "kind": "work"}],
                "assets": [{"plate": "沪A88888", "vin": "LSV123", "model": "Magotan", "last_service_date": "2026-01-10", "service_interval_months": 6}]
            }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let c: Value = created.json().await.unwrap();
    let id = c["id"].as_i64().unwrap();
    assert_eq!(c["tier"], "A");
    assert_eq!(c["phones"][0]["e164"], "+8613800138000");
    assert_eq!(c["phones"][0]["raw"], "138 0013 8000");
    assert_eq!(c["phones"][0]["primary"], true);
    assert_eq!(c["phones"][1]["e164"], "+861065528899");
    assert_eq!(c["assets"][0]["next_service_due"], "2026-07-10");
    assert_eq!(c["tags"], json!(["fleet", "vip"]));

    let read: Value = app
        .get(&format!("/api/v1/customers/{id}"), t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["name"], "王建国");
    assert!(read["interactions"].is_array() && read["complaints"].is_array());

    let updated = app
        .patch(
            &format!("/api/v1/customers/{id}"),
            t,
            &json!({"tier": "B", "notes": "prefers mornings", "account_manager": null}),
        )
        .await;
    assert_eq!(updated.status(), 200);
    let u: Value = updated.json().await.unwrap();
    assert_eq!(u["tier"], "B");
    assert_eq!(u["notes"], "prefers mornings");
    assert!(u["account_manager"].is_null());
    assert_eq!(
        u["phones"].as_array().unwrap().len(),
        2,
        "phones untouched by a patch without phones"
    );

    assert_eq!(
        app.delete(&format!("/api/v1/customers/{id}"), t)
            .await
            .status(),
        204
    );
    let gone = app.get(&format!("/api/v1/customers/{id}"), t).await;
    assert_eq!(gone.status(), 404);
    assert_eq!(error_code(gone).await, "not_found");
    app.stop().await;
}

#[tokio::test]
async fn search_by_phone_finds_the_customer_in_any_format() {
    let app = spawn_app().await;
    let t = &app.admin_token;
    let c: Value = app
        .post(
            "/api/v1/customers",
            t,
            &json!({"name": "Li Na", "phones": ["+86 138-0013-8000"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    for form in [
        "13800138000",
        "+8613800138000",
        "0086 138 0013 8000",
        "(138) 0013-8000",
        "８６１３８００１３８０００",
    ] {
        let url = format!("/api/v1/customers?phone={}", urlencode(form));
        let found: Value = app.get(&url, t).await.json().await.unwrap();
        assert_eq!(
            found.as_array().map(|a| a.len()),
            Some(1),
            "form {form}: {found}"
        );
        assert_eq!(found[0]["id"], c["id"], "form {form}");
    }
    let none: Value = app
        .get("/api/v1/customers?phone=13900000000", t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!([]));
    app.stop().await;
}

#[tokio::test]
async fn search_by_name_is_a_substring_match() {
    let app = spawn_app().await;
    let t = &app.admin_token;
    for name in ["Anna Schmidt", "Hanna Berg", "王伟"] {
        app.post("/api/v1/customers", t, &json!({"name": name}))
            .await;
    }
    let found: Value = app
        .get("/api/v1/customers?q=anna", t)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let found: Value = app
        .get(&format!("/api/v1/customers?q={}", urlencode("王")), t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found[0]["name"], "王伟");
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_get_contract_errors() {
    let app = spawn_app().await;
    let t = &app.admin_token;
    let r = app
        .client
        .post(app.url("/api/v1/customers"))
        .bearer_auth(t)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "invalid_json");

    let r = app
        .post("/api/v1/customers", t, &json!({"name": "x", "tier": "Z"}))
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "invalid_field");

    let r = app
        .post(
            "/api/v1/customers",
            t,
            &json!({"name": "x", "colour": "red"}),
        )
        .await;
    assert_eq!(r.status(), 422);

    let r = app
        .post("/api/v1/customers", t, &json!({"tier": "A"}))
        .await;
    assert_eq!(r.status(), 422);

    let huge = "x".repeat(2 * 1024 * 1024);
    let r = app
        .post("/api/v1/customers", t, &json!({"name": huge}))
        .await;
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "payload_too_large");

    let r = app.get("/api/v1/customers/not-a-number", t).await;
    assert_eq!(r.status(), 400);
    let r = app.get("/api/v1/no-such-thing", t).await;
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "not_found");
    app.stop().await;
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/api/v1/customers"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "unauthorized");
    let r = app.get("/api/v1/customers", "rs_wrong").await;
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(app.url(&format!("/api/v1/customers?token={}", app.admin_token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "?token= is accepted too");
    app.stop().await;
}

#[tokio::test]
async fn pbx_accounts_cannot_read_customers_and_agents_cannot_delete() {
    let app = spawn_app().await;
    let (_, pbx) = app.agent("pbx", Role::Pbx, &[]).await;
    let (_, agent) = app.agent("alice", Role::Agent, &["1001"]).await;
    assert_eq!(app.get("/api/v1/customers", &pbx).await.status(), 403);
    let c: Value = app
        .post("/api/v1/customers", &agent, &json!({"name": "Bob"}))
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .delete(&format!("/api/v1/customers/{}", c["id"]), &agent)
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "forbidden");
    app.stop().await;
}

#[tokio::test]
async fn complaints_are_owned_by_the_first_contact() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.agent("alice", Role::Agent, &["1001"]).await;
    let c: Value = app
        .post("/api/v1/customers", &alice, &json!({"name": "Bob"}))
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .post(
            "/api/v1/complaints",
            &alice,
            &json!({"customer_id": c["id"], "summary": "late delivery"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let complaint: Value = r.json().await.unwrap();
    assert_eq!(complaint["owner"], alice_id);
    assert_eq!(complaint["owner_name"], "alice");
    assert_eq!(complaint["status"], "open");
    let closed: Value = app
        .patch(
            &format!("/api/v1/complaints/{}", complaint["id"]),
            &alice,
            &json!({"status": "closed", "resolution": "refund"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(closed["status"], "closed");
    assert!(closed["closed_at"].is_i64());
    let view: Value = app
        .get(&format!("/api/v1/customers/{}", c["id"]), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["complaints"][0]["resolution"], "refund");
    app.stop().await;
}

#[tokio::test]
async fn dnc_entries_are_normalized_and_listed() {
    let app = spawn_app().await;
    let t = &app.admin_token;
    let r = app
        .post(
            "/api/v1/dnc",
            t,
            &json!({"number": "0086 138 0013 8000", "reason": "asked not to be called"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["e164"], "+8613800138000");
    let list: Value = app.get("/api/v1/dnc", t).await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(
        app.state
            .storage
            .is_dnc("+8613800138000", None)
            .await
            .unwrap()
    );
    let r = app
        .post("/api/v1/dnc", t, &json!({"number": "hello"}))
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        app.delete(&format!("/api/v1/dnc/{}", e["id"]), t)
            .await
            .status(),
        204
    );
    assert!(
        !app.state
            .storage
            .is_dnc("+8613800138000", None)
            .await
            .unwrap()
    );
    app.stop().await;
}

#[tokio::test]
async fn notes_become_interactions_on_the_customer() {
    let app = spawn_app().await;
    let (_, alice) = app.agent("alice", Role::Agent, &[]).await;
    let c: Value = app
        .post("/api/v1/customers", &alice, &json!({"name": "Bob"}))
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .post(
            "/api/v1/interactions",
            &alice,
            &json!({"customer_id": c["id"], "note": "called about brakes", "satisfaction": 4}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let list: Value = app
        .get(
            &format!("/api/v1/interactions?customer_id={}", c["id"]),
            &alice,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["note"], "called about brakes");
    assert_eq!(list[0]["agent"], "alice");
    let r = app
        .post(
            "/api/v1/interactions",
            &alice,
            &json!({"customer_id": 999999, "note": "x"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    app.stop().await;
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
