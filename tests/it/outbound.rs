//! Outbound: generators, the offer/dial/result flow over the real WebSocket with the simulated
//! dialer, the rules (DNC, window), campaigns, crash safety and claim exclusivity.

use std::collections::HashSet;

use ringside::auth::Role;
use ringside::settings::DialerChoice;
use ringside::storage::now_ms;
use ringside::storage::tasks::{NewTask, TaskFilter};
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_app_with};

async fn customer(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/customers", &app.admin_token, &body).await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn tasks(app: &TestApp, query: &str) -> Vec<Value> {
    let v: Value = app
        .get(&format!("/api/v1/tasks?{query}"), &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    v.as_array()
        .cloned()
        .unwrap_or_else(|| panic!("task list: {v}"))
}

async fn eventually<F, Fut>(mut check: F) -> Vec<Value>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Vec<Value>>,
{
    for _ in 0..100 {
        let v = check().await;
        if !v.is_empty() {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Vec::new()
}

fn quiet_outbound(s: &mut ringside::settings::Settings) {
    // Tests drive generators themselves; the engine must not offer tasks nobody expects.
    s.outbound.enabled = false;
}

#[tokio::test]
async fn a_missed_call_creates_one_callback_merges_further_misses_and_is_cancelled_when_the_customer_gets_through()
 {
    let app = spawn_app_with(quiet_outbound).await;
    let c = customer(&app, json!({"name": "Zhou", "phones": ["13700137000"]})).await;
    for (i, event) in ["m1", "m2"].iter().enumerate() {
        app.call_event(
            json!({"event": "ringing", "call_id": event, "from": "13700137000", "to": "800"}),
        )
        .await;
        app.call_event(json!({"event": "hangup", "call_id": event}))
            .await;
        let list = eventually(|| async {
            tasks(
                &app,
                &format!("customer_id={}&kind=missed_call_callback", c["id"]),
            )
            .await
            .into_iter()
            .filter(|t| t["merged_count"] == i)
            .collect()
        })
        .await;
        let inter: Value = app
            .get(
                &format!("/api/v1/interactions?customer_id={}", c["id"]),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list.len(), 1, "after miss {i}: {list:?} {inter}");
        assert_eq!(list[0]["state"], "pending");
    }
    app.call_event(
        json!({"event": "ringing", "call_id": "in3", "from": "13700137000", "to": "800"}),
    )
    .await;
    app.call_event(json!({"event": "answered", "call_id": "in3"}))
        .await;
    app.call_event(json!({"event": "hangup", "call_id": "in3"}))
        .await;
    let cancelled = eventually(|| async {
        tasks(&app, &format!("customer_id={}&state=cancelled", c["id"])).await
    })
    .await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["outcome"], "customer_got_through");
    app.stop().await;
}

#[tokio::test]
async fn calls_ending_together_are_all_recorded_with_one_callback_per_customer() {
    let app = spawn_app_with(quiet_outbound).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let c = customer(
            &app,
            json!({"name": format!("Burst {n}"), "phones": [format!("1370013710{n}")]}),
        )
        .await;
        ids.push(c["id"].as_i64().unwrap());
    }
    // Four missed calls from each customer, and then one answered call from the first: the
    // recorder takes many of them in one transaction.
    let mut posts = Vec::new();
    for round in 0..4 {
        for n in 0..5 {
            let call = format!("burst-{round}-{n}");
            posts.push(json!({"event": "ringing", "call_id": call, "from": format!("1370013710{n}"), "to": "800"}));
            posts.push(json!({"event": "hangup", "call_id": call}));
        }
    }
    for event in posts {
        app.call_event(event).await;
    }
    let pending = eventually(|| async {
        let open = tasks(&app, "kind=missed_call_callback&state=pending").await;
        let merged: i64 = open.iter().filter_map(|t| t["merged_count"].as_i64()).sum();
        if open.len() == 5 && merged == 15 {
            open
        } else {
            Vec::new()
        }
    })
    .await;
    assert_eq!(
        pending.len(),
        5,
        "one callback per customer, three misses merged into each"
    );
    for id in &ids {
        let list: Value = app
            .get(
                &format!("/api/v1/interactions?customer_id={id}"),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        let calls = list.as_array().map(|a| a.len()).unwrap_or_default();
        assert_eq!(calls, 4, "customer {id}: {list}");
    }
    app.call_event(
        json!({"event": "ringing", "call_id": "burst-in", "from": "13700137100", "to": "800"}),
    )
    .await;
    app.call_event(json!({"event": "answered", "call_id": "burst-in"}))
        .await;
    app.call_event(json!({"event": "hangup", "call_id": "burst-in"}))
        .await;
    let cancelled = eventually(|| async {
        tasks(&app, &format!("customer_id={}&state=cancelled", ids[0])).await
    })
    .await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["outcome"], "customer_got_through");
    assert_eq!(
        tasks(&app, "kind=missed_call_callback&state=pending")
            .await
            .len(),
        4
    );
    app.stop().await;
}

#[tokio::test]
async fn closing_a_complaint_schedules_a_return_visit_by_its_owner_and_a_survey() {
    let app = spawn_app_with(quiet_outbound).await;
    let (ann_id, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let c = customer(
        &app,
        json!({"name": "Bob", "tier": "A", "phones": ["13800138001"]}),
    )
    .await;
    let complaint: Value = app
        .post(
            "/api/v1/complaints",
            &ann,
            &json!({"customer_id": c["id"], "summary": "late repair"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .patch(
            &format!("/api/v1/complaints/{}", complaint["id"]),
            &ann,
            &json!({"status": "closed"}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let list = tasks(&app, &format!("customer_id={}", c["id"])).await;
    let kinds: HashSet<&str> = list.iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        HashSet::from(["return_visit", "satisfaction_survey"])
    );
    assert!(list.iter().all(|t| t["preferred_agent_id"] == ann_id));
    // Closing again creates nothing more.
    app.patch(
        &format!("/api/v1/complaints/{}", complaint["id"]),
        &ann,
        &json!({"status": "open"}),
    )
    .await;
    app.patch(
        &format!("/api/v1/complaints/{}", complaint["id"]),
        &ann,
        &json!({"status": "closed"}),
    )
    .await;
    assert_eq!(
        tasks(&app, &format!("customer_id={}", c["id"])).await.len(),
        2
    );
    app.stop().await;
}

#[tokio::test]
async fn the_scan_creates_one_maintenance_reminder_per_due_cycle() {
    let app = spawn_app_with(|s| {
        quiet_outbound(s);
        s.outbound.return_visits.clear();
        s.outbound.birthday_tiers.clear();
    })
    .await;
    let soon = (chrono::Utc::now().date_naive() + chrono::Duration::days(5))
        .format("%Y-%m-%d")
        .to_string();
    let later = (chrono::Utc::now().date_naive() + chrono::Duration::days(90))
        .format("%Y-%m-%d")
        .to_string();
    let due = customer(&app, json!({"name": "Due", "phones": ["13800138002"], "assets": [{"plate": "沪A1", "vin": "V1", "next_service_due": soon}]})).await;
    customer(&app, json!({"name": "Later", "phones": ["13800138003"], "assets": [{"plate": "沪A2", "vin": "V2", "next_service_due": later}]})).await;
    let st = &app.state;
    let today = chrono::Utc::now().date_naive();
    let first =
        ringside::outbound::generators::scan(&st.storage, &st.settings, &st.directory, today)
            .await
            .unwrap();
    let second =
        ringside::outbound::generators::scan(&st.storage, &st.settings, &st.directory, today)
            .await
            .unwrap();
    assert_eq!(first.maintenance_reminders, 1);
    assert_eq!(second.maintenance_reminders, 0);
    let list = tasks(&app, "kind=maintenance_reminder").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["customer_id"], due["id"]);
    app.stop().await;
}

fn simulated(outcomes: &[&str]) -> impl FnOnce(&mut ringside::settings::Settings) {
    let outcomes: Vec<String> = outcomes.iter().map(|s| s.to_string()).collect();
    move |s| {
        s.outbound.dialer = DialerChoice::Simulated;
        s.outbound.simulated_outcomes = outcomes;
        s.outbound.simulated_delay_ms = 50;
        s.outbound.window_start = "00:00".into();
        s.outbound.window_end = "23:59".into();
        s.outbound.scan_interval_secs = 3600;
        s.outbound.return_visits.clear();
        s.outbound.birthday_tiers.clear();
    }
}

#[tokio::test]
async fn an_offered_task_is_accepted_dialed_connected_and_its_result_lands_on_the_customer() {
    let app = spawn_app_with(simulated(&["answered"])).await;
    let (ann_id, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let c = customer(
        &app,
        json!({"name": "Wang", "tier": "A", "phones": ["13800138004"]}),
    )
    .await;
    let r = app
        .post(
            "/api/v1/tasks",
            &app.admin_token,
            &json!({"customer_id": c["id"], "reason": "asked for a call"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let task: Value = r.json().await.unwrap();
    let mut console = app.console(&ann).await;
    let offer = console.next_of("task_offer").await;
    assert_eq!(offer["task"]["id"], task["id"]);
    assert_eq!(offer["task"]["customer"]["name"], "Wang");
    console
        .send(json!({"type": "accept_task", "task_id": task["id"]}))
        .await;
    assert_eq!(console.next_of("task_update").await["state"], "dialing");
    assert_eq!(console.next_of("task_update").await["state"], "connected");
    console
        .send(json!({"type": "task_result", "task_id": task["id"], "outcome": "answered_done", "note": "booked Saturday", "satisfaction": 5}))
        .await;
    assert_eq!(console.next_of("saved").await["task_id"], task["id"]);
    let done: Value = app
        .get(&format!("/api/v1/tasks/{}", task["id"]), &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["state"], "done");
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["attempt_list"][0]["outcome"], "answered");
    let history: Value = app
        .get(
            &format!("/api/v1/interactions?customer_id={}", c["id"]),
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history[0]["direction"], "outbound");
    assert_eq!(history[0]["note"], "booked Saturday");
    assert_eq!(history[0]["satisfaction"], 5);
    assert_eq!(history[0]["agent_id"], ann_id);
    app.stop().await;
}

#[tokio::test]
async fn a_busy_outcome_schedules_a_retry_and_a_number_on_the_dnc_list_is_never_dialed() {
    let app = spawn_app_with(simulated(&["busy"])).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let c = customer(&app, json!({"name": "Li", "phones": ["13800138005"]})).await;
    let task: Value = app
        .post(
            "/api/v1/tasks",
            &app.admin_token,
            &json!({"customer_id": c["id"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut console = app.console(&ann).await;
    console.next_of("task_offer").await;
    console
        .send(json!({"type": "accept_task", "task_id": task["id"]}))
        .await;
    assert_eq!(console.next_of("task_update").await["state"], "dialing");
    let failed = console.next_of("task_update").await;
    assert_eq!(failed["outcome"], "busy");
    let t: Value = app
        .get(&format!("/api/v1/tasks/{}", task["id"]), &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t["state"], "pending");
    assert!(
        t["not_before"].as_i64().unwrap() > now_ms() + 600_000,
        "retried later: {t}"
    );

    let d = customer(
        &app,
        json!({"name": "Opted Out", "phones": ["13800138006"]}),
    )
    .await;
    let task: Value = app
        .post(
            "/api/v1/tasks",
            &app.admin_token,
            &json!({"customer_id": d["id"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let offer = console.next_of("task_offer").await;
    assert_eq!(offer["task"]["id"], task["id"]);
    // The customer opts out while the offer is on screen: the dial is refused in the attempt's transaction.
    app.post(
        "/api/v1/dnc",
        &app.admin_token,
        &json!({"number": "13800138006"}),
    )
    .await;
    console
        .send(json!({"type": "accept_task", "task_id": task["id"]}))
        .await;
    let withdrawn = console.next_of("task_withdrawn").await;
    assert_eq!(withdrawn["reason"], "dnc");
    let t: Value = app
        .get(&format!("/api/v1/tasks/{}", task["id"]), &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t["state"], "cancelled");
    assert_eq!(t["attempts"], 0);
    assert!(
        t["attempt_list"].as_array().unwrap().is_empty(),
        "no attempt row for a DNC number"
    );
    app.stop().await;
}

#[tokio::test]
async fn tasks_outside_the_customers_calling_window_wait_for_it() {
    // A window that is closed now in the customer's zone.
    let now_local = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .time();
    let start = (now_local + chrono::Duration::hours(2))
        .format("%H:%M")
        .to_string();
    let end = (now_local + chrono::Duration::hours(3))
        .format("%H:%M")
        .to_string();
    let app = spawn_app_with(move |s| {
        simulated(&["answered"])(s);
        s.outbound.window_start = start;
        s.outbound.window_end = end;
    })
    .await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let c = customer(
        &app,
        json!({"name": "Night", "timezone": "Asia/Shanghai", "phones": ["13800138007"]}),
    )
    .await;
    let task: Value = app
        .post(
            "/api/v1/tasks",
            &app.admin_token,
            &json!({"customer_id": c["id"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut console = app.console(&ann).await;
    console.expect_silence(2500).await;
    let t: Value = app
        .get(&format!("/api/v1/tasks/{}", task["id"]), &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t["state"], "pending");
    assert!(
        t["not_before"].as_i64().unwrap() > now_ms() + 3_600_000,
        "moved to the window's opening: {t}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_campaign_targets_by_filter_and_can_be_paused_and_stopped() {
    let app = spawn_app_with(quiet_outbound).await;
    let (_, sup) = app.agent("sue", Role::Supervisor, &[]).await;
    let (_, agent) = app.agent("al", Role::Agent, &[]).await;
    for (name, tier, phone) in [
        ("A1", "A", "13800138010"),
        ("A2", "A", "13800138011"),
        ("C1", "C", "13800138012"),
    ] {
        customer(&app, json!({"name": name, "tier": tier, "phones": [phone]})).await;
    }
    let body = json!({"name": "Tier A care", "kind": "care_call", "script": "Hello!", "filter": {"tiers": ["A"]}, "mode": "preview", "max_concurrent": 2, "calls_per_minute": 10});
    assert_eq!(
        app.post("/api/v1/campaigns", &agent, &body).await.status(),
        403
    );
    let r = app.post("/api/v1/campaigns", &sup, &body).await;
    assert_eq!(r.status(), 201);
    let campaign: Value = r.json().await.unwrap();
    assert_eq!(campaign["state"], "draft");
    let id = campaign["id"].as_i64().unwrap();
    let started: Value = app
        .post(&format!("/api/v1/campaigns/{id}/start"), &sup, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(started["state"], "running");
    assert_eq!(started["progress"]["total"], 2);
    assert_eq!(started["progress"]["by_state"]["pending"], 2);
    let r = app
        .post(&format!("/api/v1/campaigns/{id}/start"), &sup, &json!({}))
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        app.post(&format!("/api/v1/campaigns/{id}/pause"), &sup, &json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post(&format!("/api/v1/campaigns/{id}/resume"), &sup, &json!({}))
            .await
            .status(),
        200
    );
    let stopped: Value = app
        .post(&format!("/api/v1/campaigns/{id}/stop"), &sup, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stopped["state"], "stopped");
    assert_eq!(stopped["progress"]["by_state"]["cancelled"], 2);
    assert_eq!(
        app.post(&format!("/api/v1/campaigns/{id}/explode"), &sup, &json!({}))
            .await
            .status(),
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn a_dialing_attempt_left_by_a_dead_process_is_held_as_unknown_not_redialed() {
    let app = spawn_app_with(quiet_outbound).await;
    let c = customer(&app, json!({"name": "Crash", "phones": ["13800138020"]})).await;
    let s = &app.state.storage;
    let (task, _) = s
        .create_task(&NewTask {
            kind: "requested_callback".into(),
            customer_id: c["id"].as_i64(),
            number_e164: "+8613800138020".into(),
            not_before: now_ms() - 1000,
            max_attempts: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    let claimed = s.claim_due(now_ms(), 10, 60_000).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let started = s
        .start_attempt(
            &ringside::storage::tasks::AttemptStart {
                task_id: task.id,
                fence: claimed[0].fence,
                agent_id: None,
                dialer: "test",
                lease_ms: 15 * 60_000,
            },
            |_| 0,
            |_, _| Ok(()),
        )
        .await
        .unwrap()
        .expect("attempt starts");
    // The process dies here. Later, once the lease has lapsed, another engine reconciles.
    let later = now_ms() + 16 * 60_000;
    let (_, held) = s.reclaim_expired_leases(later, 900_000).await.unwrap();
    assert_eq!(held, 1);
    let t = s.task(task.id).await.unwrap();
    assert_eq!(t.state, "pending");
    assert_eq!(t.outcome.as_deref(), Some("unknown"));
    assert!(t.not_before >= later + 900_000, "held for the guard time");
    let attempts = s.attempts_of(task.id).await.unwrap();
    assert_eq!(attempts[0].id, started.1.id);
    assert_eq!(attempts[0].state, "unknown");
    assert!(
        s.claim_due(later, 10, 60_000).await.unwrap().is_empty(),
        "not claimable during the guard time"
    );
    // The stale fence can no longer move the task.
    assert!(
        !s.retry_task(task.id, claimed[0].fence, 0, "x")
            .await
            .unwrap()
            || s.task(task.id).await.unwrap().fence == claimed[0].fence
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_claimers_never_claim_the_same_task() {
    let app = spawn_app_with(quiet_outbound).await;
    let s = app.state.storage.clone();
    for i in 0..200 {
        s.create_task(&NewTask {
            kind: "campaign".into(),
            number_e164: format!("+86138{:08}", i),
            not_before: now_ms() - 1000,
            max_attempts: 5,
            idempotency_key: Some(format!("k{i}")),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    // Two independent pools (as two processes would have) claiming in parallel.
    let settings = ringside::settings::DatabaseSettings {
        url: app.db.url.clone(),
        max_connections: 4,
        acquire_timeout_ms: 10_000,
    };
    let other = ringside::storage::Storage::connect(&settings)
        .await
        .unwrap();
    let claim_all = |s: ringside::storage::Storage| async move {
        let mut got = Vec::new();
        loop {
            match s.claim_due(now_ms(), 7, 60_000).await {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => got.extend(batch.into_iter().map(|t| t.id)),
                Err(ringside::storage::StorageError::Unavailable(_)) => {
                    tokio::task::yield_now().await
                }
                Err(e) => panic!("{e}"),
            }
        }
        got
    };
    let (a, b) = tokio::join!(
        tokio::spawn(claim_all(s.clone())),
        tokio::spawn(claim_all(other))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let all: HashSet<i64> = a.iter().chain(b.iter()).copied().collect();
    assert_eq!(
        a.len() + b.len(),
        200,
        "every task claimed once ({} + {})",
        a.len(),
        b.len()
    );
    assert_eq!(all.len(), 200, "no task claimed twice");
    let left = s
        .list_tasks(
            &TaskFilter {
                state: Some("pending".into()),
                ..Default::default()
            },
            10,
            0,
        )
        .await
        .unwrap();
    assert!(left.is_empty());
    app.stop().await;
}
