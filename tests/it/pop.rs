//! Inbound screen pop end to end: webhook → call model → matching → hub → WebSocket.

use ringside::auth::Role;
use serde_json::{Value, json};

use crate::support::{TestApp, error_code, spawn_app};

async fn customer(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/customers", &app.admin_token, &body).await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

#[tokio::test]
async fn ringing_pops_the_right_card_only_to_the_ringing_agent() {
    let app = spawn_app().await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let (_, bob) = app.agent("bob", Role::Agent, &["1002"]).await;
    let c = customer(&app, json!({"name": "王建国", "tier": "A", "key_account": true, "account_manager": "ann", "phones": ["+86 138 0013 8000"]})).await;
    let mut ann_console = app.console(&ann).await;
    let mut bob_console = app.console(&bob).await;

    let r = app.call_event(json!({"event": "ringing", "call_id": "c1", "from": "0086-138-0013-8000", "to": "1001", "agent": "1001"})).await;
    assert_eq!(r.status(), 202);
    let pop = ann_console.next_of("screen_pop").await;
    assert_eq!(pop["call_id"], "c1");
    assert_eq!(pop["caller"]["e164"], "+8613800138000");
    assert_eq!(pop["customer"]["id"], c["id"]);
    assert_eq!(pop["customer"]["tier"], "A");
    assert_eq!(pop["customer"]["account_manager"], "ann");
    assert!(pop["seq"].is_u64());
    let hint_codes: Vec<&str> = pop["hints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["code"].as_str().unwrap())
        .collect();
    assert!(
        hint_codes.contains(&"vip") && hint_codes.contains(&"key_account"),
        "{hint_codes:?}"
    );
    bob_console.expect_silence(300).await;

    // The pop is in the audit trail: whose card was shown, to whom, by a call.
    let url = format!("/api/v1/audit?customer_id={}", c["id"]);
    let mut entries = Value::Null;
    for _ in 0..100 {
        entries = app.get(&url, &app.admin_token).await.json().await.unwrap();
        if entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "pop")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pop_entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "pop")
        .unwrap_or_else(|| panic!("no pop in the audit trail: {entries}"));
    assert_eq!(pop_entry["source"], "call");
    assert!(
        pop_entry["detail"].as_str().unwrap().contains("agents"),
        "{pop_entry}"
    );
    app.stop().await;
}

#[tokio::test]
async fn answered_by_one_agent_is_withdrawn_for_the_others() {
    let app = spawn_app().await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let (_, bob) = app.agent("bob", Role::Agent, &["1002"]).await;
    customer(&app, json!({"name": "Li Na", "phones": ["13900139000"]})).await;
    let mut a = app.console(&ann).await;
    let mut b = app.console(&bob).await;
    // The helpdesk CTI form, ringing two agents, as a form post.
    let r = app
        .client
        .post(app.url("/api/v1/call-events"))
        .bearer_auth(&app.admin_token)
        .form(&[
            ("event", "newCall"),
            ("callId", "q1"),
            ("from", "13900139000"),
            ("to", "800"),
            ("direction", "in"),
            ("user[]", "1001"),
            ("user[]", "1002"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(a.next_of("screen_pop").await["customer"]["name"], "Li Na");
    assert_eq!(b.next_of("screen_pop").await["customer"]["name"], "Li Na");
    app.call_event(json!({"event": "answer", "callId": "q1", "answeringNumber": "1002"}))
        .await;
    let ua = a.next_of("call_update").await;
    assert_eq!(ua["state"], "answered_elsewhere");
    assert_eq!(ua["by"], "bob");
    let ub = b.next_of("call_update").await;
    assert_eq!(ub["state"], "answered");
    app.call_event(json!({"event": "hangup", "callId": "q1", "cause": "normal_clearing"}))
        .await;
    let ended = b.next_of("call_update").await;
    assert_eq!(ended["state"], "ended");
    assert_eq!(ended["outcome"], "answered");
    a.expect_silence(300).await;
    app.stop().await;
}

#[tokio::test]
async fn an_unanswered_call_is_recorded_as_missed() {
    let app = spawn_app().await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let c = customer(&app, json!({"name": "Zhou", "phones": ["13700137000"]})).await;
    let mut a = app.console(&ann).await;
    app.call_event(
        json!({"event": "ringing", "call_id": "m1", "from": "13700137000", "agent": "ann"}),
    )
    .await;
    a.next_of("screen_pop").await;
    app.call_event(json!({"event": "hangup", "call_id": "m1", "cause": "ORIGINATOR_CANCEL"}))
        .await;
    assert_eq!(a.next_of("call_update").await["outcome"], "missed");
    let mut recorded = Value::Null;
    for _ in 0..50 {
        recorded = app
            .get(
                &format!("/api/v1/interactions?customer_id={}", c["id"]),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        if recorded.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(recorded[0]["outcome"], "missed", "{recorded}");
    assert_eq!(recorded[0]["call_id"], "m1");
    assert_eq!(recorded[0]["number_e164"], "+8613700137000");
    app.stop().await;
}

#[tokio::test]
async fn unacknowledged_pops_are_replayed_after_a_reconnect() {
    let app = spawn_app().await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut a = app.console(&ann).await;
    app.call_event(
        json!({"event": "ringing", "call_id": "r1", "from": "13600136000", "agent": "1001"}),
    )
    .await;
    app.call_event(
        json!({"event": "ringing", "call_id": "r2", "from": "13600136001", "agent": "1001"}),
    )
    .await;
    let first = a.next_of("screen_pop").await;
    let second = a.next_of("screen_pop").await;
    a.send(json!({"type": "ack", "seq": first["seq"]})).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    a.close().await;
    let mut again = app.console(&ann).await;
    let replayed = again.next_of("screen_pop").await;
    assert_eq!(replayed["call_id"], second["call_id"]);
    assert_eq!(replayed["seq"], second["seq"]);
    again.expect_silence(300).await;
    app.stop().await;
}

#[tokio::test]
async fn a_disposition_typed_on_the_console_lands_on_the_customer() {
    let app = spawn_app().await;
    let (ann_id, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let c = customer(&app, json!({"name": "Wu", "phones": ["13500135000"]})).await;
    let mut a = app.console(&ann).await;
    app.call_event(
        json!({"event": "ringing", "call_id": "d1", "from": "13500135000", "agent": "1001"}),
    )
    .await;
    a.next_of("screen_pop").await;
    app.call_event(json!({"event": "answered", "call_id": "d1", "agent": "1001"}))
        .await;
    a.send(json!({"type": "disposition", "call_id": "d1", "code": "service_booked", "note": "Saturday 9:00"})).await;
    let saved = a.next_of("saved").await;
    assert_eq!(saved["call_id"], "d1");
    a.send(json!({"type": "disposition", "call_id": "d1", "code": "made_up"}))
        .await;
    assert_eq!(a.next_of("error").await["code"], "invalid_disposition");
    a.send(json!({"type": "disposition", "call_id": "someone-elses", "code": "resolved"}))
        .await;
    assert_eq!(a.next_of("error").await["code"], "unknown_call");
    app.call_event(json!({"event": "hangup", "call_id": "d1"}))
        .await;
    a.next_of("call_update").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let list: Value = app
        .get(
            &format!("/api/v1/interactions?customer_id={}", c["id"]),
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "one interaction per call: {list}"
    );
    assert_eq!(list[0]["disposition"], "service_booked");
    assert_eq!(list[0]["note"], "Saturday 9:00");
    assert_eq!(list[0]["agent_id"], ann_id);
    assert_eq!(list[0]["outcome"], "answered");
    app.stop().await;
}

#[tokio::test]
async fn shared_numbers_give_ranked_candidates_and_the_choice_is_remembered() {
    let app = spawn_app().await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let husband = customer(&app, json!({"name": "张伟", "tier": "B", "phones": [{"number": "13900139000", "primary": true}]})).await;
    let wife = customer(
        &app,
        json!({"name": "张丽", "tier": "C", "phones": ["010 6552 8899", "13900139000"]}),
    )
    .await;
    let mut a = app.console(&ann).await;
    app.call_event(
        json!({"event": "ringing", "call_id": "s1", "from": "13900139000", "agent": "1001"}),
    )
    .await;
    let pop = a.next_of("screen_pop").await;
    assert_eq!(pop["customer"]["id"], husband["id"]);
    assert_eq!(pop["candidates"][0]["customer"]["id"], wife["id"]);
    assert!(
        pop["match"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("primary"))
    );
    a.send(json!({"type": "select_customer", "call_id": "s1", "customer_id": wife["id"]}))
        .await;
    let repop = a.next_of("screen_pop").await;
    assert_eq!(repop["call_id"], "s1");
    assert_eq!(repop["customer"]["id"], wife["id"]);
    app.call_event(json!({"event": "hangup", "call_id": "s1"}))
        .await;
    app.call_event(
        json!({"event": "ringing", "call_id": "s2", "from": "+86 139 0013 9000", "agent": "1001"}),
    )
    .await;
    let next = a.next_of("screen_pop").await;
    assert_eq!(next["call_id"], "s2");
    assert_eq!(
        next["customer"]["id"], wife["id"],
        "the remembered choice ranks first"
    );
    assert_eq!(next["match"]["kind"], "remembered");
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_caller_becomes_a_provisional_contact_and_withheld_pops_as_unknown() {
    let app = spawn_app().await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut a = app.console(&ann).await;
    app.call_event(
        json!({"event": "ringing", "call_id": "u1", "from": "13311112222", "agent": "1001"}),
    )
    .await;
    let pop = a.next_of("screen_pop").await;
    assert_eq!(pop["customer"]["provisional"], true);
    assert_eq!(pop["match"]["created"], true);
    let found: Value = app
        .get("/api/v1/customers?phone=13311112222", &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found[0]["id"], pop["customer"]["id"]);
    app.call_event(
        json!({"event": "ringing", "call_id": "u2", "from": "anonymous", "agent": "1001"}),
    )
    .await;
    let pop = a.next_of("screen_pop").await;
    assert!(pop["customer"].is_null());
    assert_eq!(pop["match"]["kind"], "withheld");
    app.stop().await;
}

#[tokio::test]
async fn a_call_naming_no_agent_pops_to_every_ready_agent_but_not_to_away_ones() {
    let app = spawn_app().await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let (_, bob) = app.agent("bob", Role::Agent, &["1002"]).await;
    let mut a = app.console(&ann).await;
    let mut b = app.console(&bob).await;
    b.send(json!({"type": "status", "state": "away"})).await;
    assert_eq!(b.next_of("status").await["state"], "away");
    app.call_event(
        json!({"event": "ringing", "call_id": "b1", "from": "13800000001", "to": "4000"}),
    )
    .await;
    assert_eq!(a.next_of("screen_pop").await["call_id"], "b1");
    b.expect_silence(300).await;
    app.stop().await;
}

#[tokio::test]
async fn bad_call_events_get_clear_errors() {
    let app = spawn_app().await;
    let r = app
        .call_event(json!({"event": "exploded", "call_id": "x"}))
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "unknown_event");
    let r = app.call_event(json!({"event": "ringing"})).await;
    assert_eq!(r.status(), 422);
    let r = app.call_event(json!([1, 2])).await;
    assert_eq!(r.status(), 400);
    let r = app
        .call_event(json!({"event": "ringing", "call_id": "x".repeat(5000)}))
        .await;
    assert_eq!(r.status(), 422);
    let big = "y".repeat(100 * 1024);
    let r = app
        .call_event(json!({"event": "ringing", "call_id": "x", "from": big}))
        .await;
    assert_eq!(r.status(), 413);
    let (_, agent) = app.agent("ann", Role::Agent, &[]).await;
    let r = app
        .post(
            "/api/v1/call-events",
            &agent,
            &json!({"event": "ringing", "call_id": "x"}),
        )
        .await;
    assert_eq!(r.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn websocket_refuses_missing_wrong_and_pbx_tokens_and_foreign_origins() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app().await;
    let (_, ann) = app.agent("ann", Role::Agent, &[]).await;
    let (_, pbx) = app.agent("pbx", Role::Pbx, &[]).await;
    let status = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Ok(_) => 101,
        Err(e) => panic!("{e}"),
    };
    let url = format!("ws://{}/ws", app.addr);
    assert_eq!(
        status(tokio_tungstenite::connect_async(url.clone()).await),
        401
    );
    assert_eq!(
        status(tokio_tungstenite::connect_async(format!("{url}?token=rs_nope")).await),
        401
    );
    assert_eq!(
        status(tokio_tungstenite::connect_async(format!("{url}?token={pbx}")).await),
        403
    );
    assert_eq!(
        status(tokio_tungstenite::connect_async(format!("{url}?token={ann}")).await),
        101
    );
    let mut req = format!("{url}?token={ann}").into_client_request().unwrap();
    req.headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    assert_eq!(status(tokio_tungstenite::connect_async(req).await), 403);
    let mut req = format!("{url}?token={ann}").into_client_request().unwrap();
    req.headers_mut()
        .insert("Origin", format!("http://{}", app.addr).parse().unwrap());
    assert_eq!(status(tokio_tungstenite::connect_async(req).await), 101);
    app.stop().await;
}

#[tokio::test]
async fn garbage_from_a_console_gets_an_error_and_the_socket_stays_open() {
    let app = spawn_app().await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut a = app.console(&ann).await;
    use futures_util::SinkExt;
    a.ws.send(tokio_tungstenite::tungstenite::Message::Text("{{{{".into()))
        .await
        .unwrap();
    assert_eq!(a.next_of("error").await["code"], "invalid_message");
    a.send(json!({"type": "teleport"})).await;
    assert_eq!(a.next_of("error").await["code"], "invalid_message");
    // A NUL in a note is refused as at the REST door, on SQLite as on PostgreSQL.
    a.send(json!({"type": "disposition", "call_id": "g0", "code": "resolved", "note": "a\u{0}b"}))
        .await;
    let refused = a.next_of("error").await;
    assert_eq!(refused["code"], "invalid_message");
    assert!(
        refused["message"].as_str().unwrap().contains("NUL"),
        "{refused}"
    );
    app.call_event(
        json!({"event": "ringing", "call_id": "g1", "from": "13800000002", "agent": "1001"}),
    )
    .await;
    assert_eq!(a.next_of("screen_pop").await["call_id"], "g1");
    app.stop().await;
}
