//! What the supervisor page needs from the REST API beyond the outbound engine's own routes:
//! campaigns from an uploaded list, a campaign's own calling hours, the callback queue with
//! customers' names and reassignment that gives the new agent the first turn, and role changes.

use ringside::auth::Role;
use ringside::settings::{DialerChoice, Settings};
use ringside::storage::now_ms;
use serde_json::{Value, json};

use crate::support::{TestApp, error_code, spawn_app_with};

fn quiet(s: &mut Settings) {
    s.outbound.enabled = false;
}

fn simulated(s: &mut Settings) {
    s.outbound.dialer = DialerChoice::Simulated;
    s.outbound.simulated_outcomes = vec!["answered".into()];
    s.outbound.simulated_delay_ms = 50;
    s.outbound.window_start = "00:00".into();
    s.outbound.window_end = "23:59".into();
    s.outbound.call_on_weekends = true;
    s.outbound.scan_interval_secs = 3600;
    s.outbound.return_visits.clear();
    s.outbound.birthday_tiers.clear();
}

async fn customer(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/customers", &app.admin_token, &body).await;
    assert_eq!(r.status(), 201, "create customer {body}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn an_uploaded_list_is_matched_by_number_and_external_id_and_a_list_matching_nobody_calls_nobody()
 {
    let app = spawn_app_with(quiet).await;
    let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
    let wang = customer(
        &app,
        json!({"name": "Wang", "tier": "A", "phones": ["13800138000"]}),
    )
    .await;
    let li = customer(
        &app,
        json!({"name": "Li", "tier": "B", "phones": ["13900139000"]}),
    )
    .await;
    let zhao = customer(
        &app,
        json!({"name": "Zhao", "tier": "A", "external_id": "C-3", "phones": ["13700137000"]}),
    )
    .await;
    customer(
        &app,
        json!({"name": "Not listed", "tier": "A", "phones": ["13600136000"]}),
    )
    .await;

    let r = app
        .post(
            "/api/v1/campaigns",
            &sue,
            &json!({"name": "From the spreadsheet", "kind": "care_call",
                    "filter": {"phones": ["138 0013 8000", "+86 139-0013-9000", "12"], "external_ids": ["C-3", "C-404"]}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let campaign: Value = r.json().await.unwrap();
    let list = &campaign["list"];
    assert_eq!(list["given"], 5, "{campaign}");
    assert_eq!(list["matched"], 3, "{campaign}");
    assert_eq!(list["customers"], 3, "{campaign}");
    assert_eq!(list["unmatched_count"], 2, "{campaign}");
    assert_eq!(list["unmatched"], json!(["12", "C-404"]));
    let mut listed: Vec<i64> = campaign["filter"]["customer_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    listed.sort_unstable();
    let mut expected: Vec<i64> = [&wang, &li, &zhao]
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    expected.sort_unstable();
    assert_eq!(listed, expected);
    assert_eq!(campaign["filter"]["only_listed"], true);
    assert!(
        campaign["filter"].get("phones").is_none(),
        "the raw list is not kept: {campaign}"
    );
    let read: Value = app
        .get(&format!("/api/v1/campaigns/{}", campaign["id"]), &sue)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        read.get("list").is_none(),
        "the match report comes with the upload only"
    );
    let started: Value = app
        .post(
            &format!("/api/v1/campaigns/{}/start", campaign["id"]),
            &sue,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(started["progress"]["total"], 3);

    // A list and a filter: the listed customers the filter keeps.
    let both: Value = app
        .post(
            "/api/v1/campaigns",
            &sue,
            &json!({"name": "Listed tier A", "filter": {"tiers": ["A"], "phones": ["13800138000", "13900139000"]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let started: Value = app
        .post(
            &format!("/api/v1/campaigns/{}/start", both["id"]),
            &sue,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        started["progress"]["total"], 1,
        "only Wang is listed and tier A"
    );

    // A list that matched nobody calls nobody, never everyone.
    let nobody: Value = app
        .post(
            "/api/v1/campaigns",
            &sue,
            &json!({"name": "Typos", "filter": {"phones": ["13500135000"]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(nobody["list"]["matched"], 0);
    let started: Value = app
        .post(
            &format!("/api/v1/campaigns/{}/start", nobody["id"]),
            &sue,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(started["progress"]["total"], 0, "{started}");

    // Entries are bounded (and a list too big for the request body gets 413 before that).
    let r = app
        .post(
            "/api/v1/campaigns",
            &sue,
            &json!({"name": "Garbled", "filter": {"external_ids": ["x".repeat(65)]}}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "invalid_field");
    app.stop().await;
}

#[tokio::test]
async fn a_campaigns_own_hours_narrow_the_calling_window() {
    // Hours that are closed now in the customers' zone.
    let now_local = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .time();
    let start = (now_local + chrono::Duration::hours(2))
        .format("%H:%M")
        .to_string();
    let end = (now_local + chrono::Duration::hours(3))
        .format("%H:%M")
        .to_string();
    let app = spawn_app_with(simulated).await;
    let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let c = customer(
        &app,
        json!({"name": "Night owl", "tier": "A", "timezone": "Asia/Shanghai", "phones": ["13800138000"]}),
    )
    .await;
    let campaign: Value = app
        .post(
            "/api/v1/campaigns",
            &sue,
            &json!({"name": "Evening calls", "kind": "care_call", "filter": {"customer_ids": [c["id"]]},
                    "window_start": start, "window_end": end}),
        )
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .post(
            &format!("/api/v1/campaigns/{}/start", campaign["id"]),
            &sue,
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut console = app.console(&ann).await;
    console.expect_silence(2500).await;
    let tasks: Value = app
        .get(
            &format!("/api/v1/tasks?campaign_id={}", campaign["id"]),
            &sue,
        )
        .await
        .json()
        .await
        .unwrap();
    let task = &tasks[0];
    assert_eq!(task["state"], "pending", "{task}");
    assert_eq!(task["attempts"], 0);
    assert!(
        task["not_before"].as_i64().unwrap() > now_ms() + 3_600_000,
        "moved to the campaign's opening: {task}"
    );
    console.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_callback_queue_names_its_customers_and_a_reassigned_callback_waits_for_its_new_agent()
{
    let app = spawn_app_with(simulated).await;
    let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
    let (ann_id, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let (bob_id, bob) = app.agent("bob", Role::Agent, &["1002"]).await;
    let (pbx_id, _) = app.agent("pbx", Role::Pbx, &[]).await;
    customer(
        &app,
        json!({"name": "Wang", "tier": "B", "phones": ["13800138000"]}),
    )
    .await;
    customer(
        &app,
        json!({"name": "Li", "tier": "B", "phones": ["13900139000"]}),
    )
    .await;
    // Two missed calls while nobody is online: two callbacks in the pool, Wang's first.
    for (id, from) in [("m-wang", "13800138000"), ("m-li", "13900139000")] {
        app.call_event(json!({"event": "ringing", "call_id": id, "from": from, "to": "800"}))
            .await;
        app.call_event(json!({"event": "hangup", "call_id": id}))
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut queue: Vec<Value> = Vec::new();
    for _ in 0..100 {
        let v: Value = app
            .get(
                "/api/v1/tasks?state=pending&kind=missed_call_callback",
                &sue,
            )
            .await
            .json()
            .await
            .unwrap();
        queue = v.as_array().cloned().unwrap_or_default();
        if queue.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(queue.len(), 2, "{queue:?}");
    let names: Vec<&str> = queue
        .iter()
        .map(|t| t["customer_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Wang", "Li"]);
    assert!(queue.iter().all(|t| t["customer_tier"] == "B"));
    let (wang_task, li_task) = (queue[0]["id"].clone(), queue[1]["id"].clone());

    // Agents may not reassign; nobody reassigns to the PBX account.
    let r = app
        .patch(
            &format!("/api/v1/tasks/{wang_task}"),
            &ann,
            &json!({"preferred_agent_id": bob_id}),
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .patch(
            &format!("/api/v1/tasks/{wang_task}"),
            &sue,
            &json!({"preferred_agent_id": pbx_id}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "unknown_agent");

    let before = now_ms();
    let moved: Value = app
        .patch(
            &format!("/api/v1/tasks/{wang_task}"),
            &sue,
            &json!({"preferred_agent_id": bob_id}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(moved["preferred_agent_id"], bob_id);
    let pool_after = moved["pool_after"].as_i64().expect("pool_after set");
    assert!(
        pool_after >= before + 3_600_000,
        "bob has the first turn: {moved}"
    );
    // Li's callback goes to bob and back to the pool: anyone's at once.
    app.patch(
        &format!("/api/v1/tasks/{li_task}"),
        &sue,
        &json!({"preferred_agent_id": bob_id}),
    )
    .await;
    let pooled: Value = app
        .patch(
            &format!("/api/v1/tasks/{li_task}"),
            &sue,
            &json!({"preferred_agent_id": null}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(pooled["preferred_agent_id"].is_null());
    assert!(pooled["pool_after"].is_null());

    // Bob comes online first and is offered Wang's callback; ann then gets Li's, never Wang's.
    let mut bob_console = app.console(&bob).await;
    let offer = bob_console.next_of("task_offer").await;
    assert_eq!(offer["task"]["id"], wang_task, "{offer}");
    let mut ann_console = app.console(&ann).await;
    let offer = ann_console.next_of("task_offer").await;
    assert_eq!(offer["task"]["id"], li_task, "{offer}");
    let task: Value = app
        .get(&format!("/api/v1/tasks/{wang_task}"), &sue)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(task["assigned_agent_id"], json!(bob_id));
    assert_ne!(task["assigned_agent_id"], json!(ann_id));
    bob_console.close().await;
    ann_console.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_admin_changes_roles_a_supervisor_promotes_nobody_and_nobody_changes_their_own() {
    let app = spawn_app_with(quiet).await;
    let (sue_id, sue) = app.agent("sue", Role::Supervisor, &[]).await;
    let (ann_id, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let r = app
        .patch(
            &format!("/api/v1/agents/{ann_id}"),
            &sue,
            &json!({"role": "supervisor"}),
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .patch(
            &format!("/api/v1/agents/{sue_id}"),
            &sue,
            &json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status(), 403);
    // Supervisors still manage agents' extensions, and naming the same role changes nothing.
    let r = app
        .patch(
            &format!("/api/v1/agents/{ann_id}"),
            &sue,
            &json!({"role": "agent", "extensions": ["1001", "1009"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .patch(
            &format!("/api/v1/agents/{ann_id}"),
            &app.admin_token,
            &json!({"role": "supervisor"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let promoted: Value = r.json().await.unwrap();
    assert_eq!(promoted["role"], "supervisor");
    assert_eq!(promoted["extensions"], json!(["1001", "1009"]));
    // Ann's token now opens what supervisors may open.
    assert_eq!(app.get("/api/v1/reports/calls", &ann).await.status(), 200);
    let me: Value = app
        .get("/api/v1/agents/me", &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .patch(
            &format!("/api/v1/agents/{}", me["id"]),
            &app.admin_token,
            &json!({"role": "agent"}),
        )
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "own_role");
    let r = app
        .patch(
            &format!("/api/v1/agents/{ann_id}"),
            &app.admin_token,
            &json!({"role": "boss"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    app.stop().await;
}

#[tokio::test]
async fn the_supervisor_page_and_its_files_are_served() {
    let app = spawn_app_with(quiet).await;
    let page = app.client.get(app.url("/supervisor")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/supervisor.js") && html.contains("/supervisor.css"));
    for (path, kind) in [
        ("/supervisor.js", "text/javascript"),
        ("/supervisor.css", "text/css"),
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
    app.stop().await;
}
