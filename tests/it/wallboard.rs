//! The wallboard socket `GET /ws/wallboard`: a snapshot on connect, then the floor as it changes
//! (a call reported to the webhook rings, is answered and ends), with the database's figures
//! (missed calls owed, callbacks, reminders, campaigns, today's answer rate). Authenticated like
//! the console socket, for supervisors and admins only.

use std::time::{Duration, Instant};

use ringside::auth::Role;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{Console, TestApp, spawn_app_with};

fn quiet(s: &mut ringside::settings::Settings) {
    s.outbound.enabled = false;
}

/// Opens the wallboard socket with the token in `Sec-WebSocket-Protocol`, as the page does.
async fn wallboard(app: &TestApp, token: &str) -> Console {
    let mut request = format!("ws://{}/ws/wallboard", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("ringside.v1, {token}").parse().unwrap(),
    );
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the wallboard socket opens");
    assert_eq!(response.headers()["sec-websocket-protocol"], "ringside.v1");
    Console { ws }
}

/// The HTTP status a refused upgrade answers.
async fn refused(app: &TestApp, path: &str, headers: &[(&'static str, String)]) -> u16 {
    let mut request = format!("ws://{}{path}", app.addr)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!(
            "expected a refused upgrade, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}

/// Reads snapshots until one satisfies `wanted` (within 10 s); returns it.
async fn snapshot_where(board: &mut Console, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        let message = board.next_json().await;
        assert_eq!(message["type"], "wallboard", "{message}");
        if wanted(&message) {
            return message;
        }
        last = message;
    }
    panic!("no snapshot with {what} within 10 s; the last was {last}");
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_wallboard_gets_a_snapshot_on_connect_and_follows_a_webhook_call_from_ringing_to_its_end()
 {
    let app = spawn_app_with(quiet).await;
    let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    app.agent("bob", Role::Agent, &["1002"]).await;
    let r = app
        .post(
            "/api/v1/customers",
            &app.admin_token,
            &json!({"name": "Wang", "tier": "A", "phones": ["13800138000"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let mut console = app.console(&ann).await;

    let mut board = wallboard(&app, &sue).await;
    let first = board.next_json().await;
    assert_eq!(first["type"], "wallboard", "{first}");
    assert_eq!(first["timezone"], "Asia/Shanghai");
    assert_eq!(first["calls"]["ringing"], 0);
    assert_eq!(names(&first["agents"]["ready"]), ["ann"]);
    assert_eq!(names(&first["agents"]["offline"]), ["bob"]);
    assert!(first["today"]["answer_rate"].is_null());

    let sent = Instant::now();
    let r = app
        .call_event(
            json!({"event": "ringing", "call_id": "wb-1", "from": "13800138000",
                           "to": "1001", "direction": "inbound", "agent": "1001"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let ringing = snapshot_where(&mut board, "the call ringing", |s| {
        s["calls"]["ringing"] == 1
    })
    .await;
    eprintln!("ringing call on the wallboard after {:?}", sent.elapsed());
    let line = &ringing["calls"]["unanswered"][0];
    assert_eq!(line["call_id"], "wb-1");
    assert_eq!(line["state"], "ringing");
    assert_eq!(line["agents"], json!(["ann"]));
    assert_eq!(
        line["number"], "+86138****8000",
        "the number is masked on a board a room can see"
    );
    assert!(ringing["calls"]["oldest_unanswered_at"].is_i64());

    console.next_of("screen_pop").await;
    app.call_event(json!({"event": "answered", "call_id": "wb-1", "agent": "1001"}))
        .await;
    let talking = snapshot_where(&mut board, "the call answered", |s| {
        s["calls"]["talking"] == 1
    })
    .await;
    assert_eq!(talking["calls"]["ringing"], 0);
    assert_eq!(names(&talking["agents"]["on_call"]), ["ann"]);
    assert!(talking["agents"]["ready"].as_array().unwrap().is_empty());

    app.call_event(json!({"event": "hangup", "call_id": "wb-1"}))
        .await;
    let ended = snapshot_where(&mut board, "the call ended and counted", |s| {
        s["calls"]["talking"] == 0 && s["today"]["offered"] == 1
    })
    .await;
    assert_eq!(ended["calls"]["ringing"], 0);
    assert!(ended["calls"]["unanswered"].as_array().unwrap().is_empty());
    assert_eq!(ended["today"]["answered"], 1);
    assert_eq!(ended["today"]["answer_rate"], 1.0);
    assert_eq!(names(&ended["agents"]["ready"]), ["ann"]);

    // A missed call: owed a callback, not called back yet.
    app.call_event(json!({"event": "ringing", "call_id": "wb-2", "from": "13800138000", "to": "1001", "agent": "1001"}))
        .await;
    app.call_event(json!({"event": "hangup", "call_id": "wb-2"}))
        .await;
    let missed = snapshot_where(&mut board, "the missed call owed", |s| {
        s["missed"]["waiting"] == 1
    })
    .await;
    assert!(missed["missed"]["oldest_at"].is_i64());
    assert_eq!(missed["callbacks"]["due"], 1);
    assert_eq!(missed["callbacks"]["overdue"], 0);
    assert_eq!(missed["today"]["missed"], 1);
    assert_eq!(missed["today"]["answer_rate"], 0.5);

    // The agent steps away: the board moves her without waiting for the periodic refresh.
    console
        .send(json!({"type": "status", "state": "away"}))
        .await;
    let away = snapshot_where(&mut board, "ann away", |s| {
        names(&s["agents"]["away"]) == ["ann"]
    })
    .await;
    assert!(away["agents"]["ready"].as_array().unwrap().is_empty());
    console.close().await;
    snapshot_where(&mut board, "ann offline", |s| {
        names(&s["agents"]["offline"]).contains(&"ann")
    })
    .await;
    board.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_wallboard_shows_campaign_progress_and_the_reminders_due_today() {
    let app = spawn_app_with(|s| {
        quiet(s);
        s.outbound.return_visits.clear();
        s.outbound.birthday_tiers.clear();
    })
    .await;
    let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
    let due = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    for (name, phone, vin) in [("Wang", "13800138000", "V1"), ("Li", "13900139000", "V2")] {
        let r = app
            .post(
                "/api/v1/customers",
                &app.admin_token,
                &json!({"name": name, "tier": "A", "phones": [phone], "assets": [{"vin": vin, "next_service_due": due}]}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    let st = &app.state;
    let scanned = ringside::outbound::generators::scan(
        &st.storage,
        &st.settings,
        &st.directory,
        chrono::Utc::now().date_naive(),
    )
    .await
    .unwrap();
    assert_eq!(scanned.maintenance_reminders, 2);
    let campaign: Value = app
        .post(
            "/api/v1/campaigns",
            &sue,
            &json!({"name": "Tier A care", "kind": "care_call", "filter": {"tiers": ["A"]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = campaign["id"].as_i64().unwrap();
    let r = app
        .post(&format!("/api/v1/campaigns/{id}/start"), &sue, &json!({}))
        .await;
    assert_eq!(r.status(), 200);

    let mut board = wallboard(&app, &app.admin_token).await;
    let s = board.next_json().await;
    assert_eq!(s["reminders"]["due_today"], 2, "{s}");
    assert_eq!(s["reminders"]["done_today"], 0);
    let campaigns = s["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1, "{s}");
    assert_eq!(campaigns[0]["name"], "Tier A care");
    assert_eq!(campaigns[0]["state"], "running");
    assert_eq!(campaigns[0]["tasks"], 2);
    assert_eq!(campaigns[0]["closed"], 0);
    assert_eq!(campaigns[0]["progress"], 0.0);

    // Paused shows as paused; a stopped campaign leaves the board at the next refresh.
    app.post(&format!("/api/v1/campaigns/{id}/pause"), &sue, &json!({}))
        .await;
    snapshot_where(&mut board, "the campaign paused", |s| {
        s["campaigns"][0]["state"] == "paused"
    })
    .await;
    app.post(&format!("/api/v1/campaigns/{id}/stop"), &sue, &json!({}))
        .await;
    snapshot_where(&mut board, "no campaign", |s| {
        s["campaigns"].as_array().is_some_and(|c| c.is_empty())
    })
    .await;
    board.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_wallboard_socket_is_for_supervisors_and_checks_the_origin_before_the_upgrade() {
    let app = spawn_app_with(quiet).await;
    let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let (_, pbx) = app.agent("pbx", Role::Pbx, &[]).await;
    let protocol = |token: &str| ("Sec-WebSocket-Protocol", format!("ringside.v1, {token}"));
    assert_eq!(refused(&app, "/ws/wallboard", &[]).await, 401);
    assert_eq!(
        refused(&app, "/ws/wallboard", &[protocol("rs_nonsense")]).await,
        401
    );
    assert_eq!(refused(&app, "/ws/wallboard", &[protocol(&ann)]).await, 403);
    assert_eq!(refused(&app, "/ws/wallboard", &[protocol(&pbx)]).await, 403);
    assert_eq!(
        refused(
            &app,
            "/ws/wallboard",
            &[protocol(&sue), ("Origin", "http://evil.example".into())]
        )
        .await,
        403
    );
    // `?token=` for tools that cannot set the header, and the page's own origin.
    let mut request = format!("ws://{}/ws/wallboard?token={sue}", app.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Origin", format!("http://{}", app.addr).parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut board = Console { ws };
    assert_eq!(board.next_json().await["type"], "wallboard");
    board.close().await;

    let page = app.client.get(app.url("/wallboard")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/wallboard.js"));
    for (path, kind) in [
        ("/wallboard.js", "text/javascript"),
        ("/wallboard.css", "text/css"),
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
    app.stop().await;
}
