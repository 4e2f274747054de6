//! Supervisors' reports over data made the way production makes it: calls reported to the
//! webhook, dispositions and task results sent from a console over the real WebSocket, campaigns
//! run by the engine with the simulated dialer. Numbers are checked in JSON and CSV.

use std::time::{Duration, Instant};

use ringside::auth::Role;
use ringside::settings::{DialerChoice, Settings};
use serde_json::{Value, json};

use crate::support::{TestApp, error_code, spawn_app_with};

/// Today in the reports' default zone (`outbound.default_timezone`).
fn today() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d")
        .to_string()
}

fn simulated(outcomes: &[&str]) -> impl FnOnce(&mut Settings) {
    let outcomes: Vec<String> = outcomes.iter().map(|s| s.to_string()).collect();
    move |s| {
        s.outbound.dialer = DialerChoice::Simulated;
        s.outbound.simulated_outcomes = outcomes;
        s.outbound.simulated_delay_ms = 50;
        s.outbound.window_start = "00:00".into();
        s.outbound.window_end = "23:59".into();
        s.outbound.call_on_weekends = true;
        s.outbound.scan_interval_secs = 3600;
        s.outbound.return_visits.clear();
        s.outbound.birthday_tiers.clear();
    }
}

fn quiet(s: &mut Settings) {
    s.outbound.enabled = false;
}

async fn customer(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/customers", &app.admin_token, &body).await;
    assert_eq!(r.status(), 201, "create customer {body}");
    r.json().await.unwrap()
}

async fn report(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app.get(path, token).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// Polls a report until `ready` holds (calls are recorded just after their hangup is accepted).
async fn report_when(
    app: &TestApp,
    token: &str,
    path: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = report(app, token, path).await;
        if ready(&v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ring(app: &TestApp, call_id: &str, from: &str, agent: Option<&str>) {
    let mut body = json!({"event": "ringing", "call_id": call_id, "from": from, "to": "800", "direction": "inbound"});
    if let Some(agent) = agent {
        body["agent"] = json!(agent);
    }
    assert_eq!(app.call_event(body).await.status(), 202);
}

async fn event(app: &TestApp, body: Value) {
    assert_eq!(app.call_event(body).await.status(), 202);
}

#[tokio::test]
async fn the_calls_report_counts_answered_missed_and_abandoned_calls_by_day_and_hour_as_json_and_csv()
 {
    let app = spawn_app_with(quiet).await;
    let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    customer(
        &app,
        json!({"name": "Wang", "tier": "A", "phones": ["13800138000"]}),
    )
    .await;
    customer(
        &app,
        json!({"name": "Li", "tier": "B", "phones": ["13900139000"]}),
    )
    .await;
    customer(&app, json!({"name": "Zhao", "phones": ["13700137000"]})).await;

    ring(&app, "answered-1", "13800138000", Some("1001")).await;
    event(
        &app,
        json!({"event": "answered", "call_id": "answered-1", "agent": "1001"}),
    )
    .await;
    event(&app, json!({"event": "hangup", "call_id": "answered-1"})).await;
    ring(&app, "missed-1", "13900139000", Some("1001")).await;
    event(&app, json!({"event": "hangup", "call_id": "missed-1"})).await;
    ring(&app, "abandoned-1", "13700137000", None).await;
    event(
        &app,
        json!({"event": "abandoned", "call_id": "abandoned-1"}),
    )
    .await;
    event(&app, json!({"event": "ringing", "call_id": "out-1", "from": "1001", "to": "13800138000", "direction": "outbound", "agent": "1001"})).await;
    event(
        &app,
        json!({"event": "answered", "call_id": "out-1", "agent": "1001"}),
    )
    .await;
    event(&app, json!({"event": "hangup", "call_id": "out-1"})).await;

    let day = today();
    let path = format!("/api/v1/reports/calls?from={day}&to={day}");
    let r = report_when(&app, &sue, &path, |r| {
        r["totals"]["inbound"] == 3 && r["totals"]["outbound"] == 1
    })
    .await;
    assert_eq!(r["report"], "calls");
    assert_eq!(r["timezone"], "Asia/Shanghai");
    assert_eq!(r["by"], "day");
    assert_eq!(
        (r["from"].as_str(), r["to"].as_str()),
        (Some(day.as_str()), Some(day.as_str()))
    );
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{r}");
    for row in [&rows[0], &r["totals"]] {
        assert_eq!(row["inbound"], 3, "{row}");
        assert_eq!(row["inbound_answered"], 1, "{row}");
        assert_eq!(row["inbound_missed"], 1, "{row}");
        assert_eq!(row["inbound_abandoned"], 1, "{row}");
        assert_eq!(row["outbound"], 1, "{row}");
        assert_eq!(row["outbound_answered"], 1, "{row}");
        assert_eq!(row["answer_rate"], 0.3333, "{row}");
        assert_eq!(row["abandon_rate"], 0.3333, "{row}");
    }
    assert_eq!(rows[0]["period"], day.as_str());
    assert_eq!(r["totals"]["period"], "total");

    // By hour: 24 rows for the day, the calls in the current local hour.
    let hour = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%H")
        .to_string()
        .parse::<i64>()
        .unwrap();
    let by_hour = report(&app, &sue, &format!("{path}&by=hour")).await;
    let hours = by_hour["rows"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    let busy: Vec<&Value> = hours.iter().filter(|h| h["inbound"] != 0).collect();
    // A call made just before the hour turned may sit in the previous hour.
    assert!(
        busy.iter()
            .all(|h| h["hour"] == hour || h["hour"] == hour - 1),
        "{busy:?}"
    );
    assert_eq!(
        busy.iter()
            .map(|h| h["inbound"].as_i64().unwrap())
            .sum::<i64>(),
        3
    );
    let of_day = report(&app, &sue, &format!("{path}&by=hour_of_day")).await;
    assert_eq!(of_day["rows"].as_array().unwrap().len(), 24);
    assert_eq!(of_day["rows"][0]["period"], "00:00");

    // The service level of the same calls.
    let rates = report(
        &app,
        &sue,
        &format!("/api/v1/reports/answer-rates?from={day}&to={day}&within=60"),
    )
    .await;
    let t = &rates["totals"];
    assert_eq!(
        (t["offered"].as_i64(), t["answered"].as_i64()),
        (Some(3), Some(1)),
        "{t}"
    );
    assert_eq!(
        (t["missed"].as_i64(), t["abandoned"].as_i64()),
        (Some(1), Some(1)),
        "{t}"
    );
    assert_eq!(t["missed_rate"], 0.3333);
    assert_eq!(t["answered_within"], 1);
    assert!(
        t["wait_p50_secs"]
            .as_i64()
            .is_some_and(|s| (0..60).contains(&s)),
        "{t}"
    );

    // CSV by query and by Accept header: a header line, one row per day, the totals last.
    let csv = app
        .client
        .get(app.url(&format!("{path}&format=csv")))
        .bearer_auth(&sue)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(
        csv.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(&format!("ringside-calls-{day}-{day}.csv"))
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "period,date,hour,inbound,inbound_answered,inbound_missed,inbound_abandoned,inbound_other,\
         outbound,outbound_answered,attempts,attempts_answered,answer_rate,abandon_rate"
    );
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[1],
        format!("{day},{day},,3,1,1,1,0,1,1,0,0,0.3333,0.3333")
    );
    assert!(lines[2].starts_with("total,,,3,1,1,1,0,1,1,"), "{text}");
    let accept = app
        .client
        .get(app.url(&path))
        .bearer_auth(&sue)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(accept.text().await.unwrap(), text);

    // A day without calls has a zero row and no rates.
    let empty = report(
        &app,
        &sue,
        "/api/v1/reports/calls?from=2020-01-01&to=2020-01-02",
    )
    .await;
    assert_eq!(empty["rows"].as_array().unwrap().len(), 2);
    assert_eq!(empty["totals"]["inbound"], 0);
    assert!(empty["totals"]["answer_rate"].is_null());

    // Agents may not read reports; nobody without a token may.
    assert_eq!(app.get(&path, &ann).await.status(), 403);
    let anonymous = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn bad_report_parameters_are_refused_with_the_contract_error() {
    let app = spawn_app_with(quiet).await;
    let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
    for path in [
        "/api/v1/reports/calls?from=2024-13-01",
        "/api/v1/reports/calls?from=yesterday",
        "/api/v1/reports/calls?from=2024-05-02&to=2024-05-01",
        "/api/v1/reports/calls?from=2022-01-01&to=2024-01-01",
        "/api/v1/reports/calls?by=week",
        "/api/v1/reports/calls?tz=Mars/Olympus",
        "/api/v1/reports/calls?format=xml",
        "/api/v1/reports/answer-rates?within=-1",
        "/api/v1/reports/answer-rates?within=soon",
        "/api/v1/reports/satisfaction?by=weather",
        "/api/v1/reports/reminders?disposition=no_such_code",
        "/api/v1/reports/reminders?window_days=0",
        "/api/v1/reports/campaigns?campaign_id=x",
    ] {
        let r = app.get(path, &sue).await;
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(error_code(r).await, "invalid_query", "{path}");
    }
    let r = app
        .get("/api/v1/reports/campaigns?campaign_id=999", &sue)
        .await;
    assert_eq!(r.status(), 404);
    let r = app.get("/api/v1/reports/nothing", &sue).await;
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn the_callback_report_measures_missed_call_to_first_dial_and_satisfaction_is_reported_by_tier_and_agent()
 {
    let app = spawn_app_with(simulated(&["answered"])).await;
    let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
    let (ann_id, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    customer(
        &app,
        json!({"name": "Wang", "tier": "A", "phones": ["13800138000"]}),
    )
    .await;
    customer(
        &app,
        json!({"name": "Li", "tier": "B", "phones": ["13900139000"]}),
    )
    .await;
    let started = Instant::now();

    // Wang's call is missed; ann comes online, is offered the callback, dials it and reports.
    ring(&app, "miss-wang", "13800138000", Some("1001")).await;
    event(&app, json!({"event": "hangup", "call_id": "miss-wang"})).await;
    let mut console = app.console(&ann).await;
    let offer = console.next_of("task_offer").await;
    assert_eq!(offer["task"]["kind"], "missed_call_callback");
    let task_id = offer["task"]["id"].clone();
    console
        .send(json!({"type": "accept_task", "task_id": task_id}))
        .await;
    assert_eq!(console.next_of("task_update").await["state"], "dialing");
    assert_eq!(console.next_of("task_update").await["state"], "connected");
    console
        .send(json!({"type": "task_result", "task_id": task_id, "outcome": "answered_done", "satisfaction": 4}))
        .await;
    assert_eq!(console.next_of("saved").await["task_id"], task_id);
    console.close().await;
    let elapsed_secs = started.elapsed().as_secs() as i64 + 1;

    // Li's call is missed while nobody is online: owed, not called back yet.
    ring(&app, "miss-li", "13900139000", None).await;
    event(&app, json!({"event": "hangup", "call_id": "miss-li"})).await;

    let day = today();
    let path = format!("/api/v1/reports/callbacks?from={day}&to={day}");
    let r = report_when(&app, &sue, &path, |r| r["totals"]["callbacks"] == 2).await;
    let t = &r["totals"];
    assert_eq!(t["missed_calls"], 2, "{r}");
    assert_eq!(t["callbacks"], 2, "{r}");
    assert_eq!(t["called_back"], 1, "{r}");
    assert_eq!(t["not_called_back"], 1, "{r}");
    assert_eq!(t["customer_got_through"], 0, "{r}");
    let p50 = t["delay_p50_secs"].as_i64().expect("a delay");
    assert!(
        (0..=elapsed_secs).contains(&p50),
        "{p50} within {elapsed_secs}"
    );
    assert_eq!(t["delay_max_secs"], p50);
    assert_eq!(r["rows"][0], {
        let mut row = t.clone();
        row["period"] = json!(day);
        row["date"] = json!(day);
        row
    });

    // The dial shows in the calls report as ringside's own attempt.
    let calls = report(
        &app,
        &sue,
        &format!("/api/v1/reports/calls?from={day}&to={day}"),
    )
    .await;
    assert_eq!(calls["totals"]["attempts"], 1);
    assert_eq!(calls["totals"]["attempts_answered"], 1);

    let by_tier = report(
        &app,
        &sue,
        &format!("/api/v1/reports/satisfaction?from={day}&to={day}"),
    )
    .await;
    assert_eq!(by_tier["by"], "tier");
    let rows = by_tier["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{by_tier}");
    assert_eq!(rows[0]["group"], "A");
    assert_eq!(rows[0]["responses"], 1);
    assert_eq!(rows[0]["score_4"], 1);
    assert_eq!(rows[0]["average"], 4.0);
    assert_eq!(rows[0]["satisfied"], 1.0);
    let by_agent = report(
        &app,
        &sue,
        &format!("/api/v1/reports/satisfaction?from={day}&to={day}&by=agent&format=json"),
    )
    .await;
    assert_eq!(by_agent["rows"][0]["group"], "ann");
    assert_eq!(by_agent["rows"][0]["agent_id"], ann_id);
    let csv = app
        .client
        .get(app.url(&format!(
            "/api/v1/reports/satisfaction?from={day}&to={day}&by=agent&format=csv"
        )))
        .bearer_auth(&sue)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv,
        format!(
            "group,agent_id,responses,average,score_1,score_2,score_3,score_4,score_5,satisfied\n\
             ann,{ann_id},1,4.0,0,0,0,1,0,1.0\ntotal,,1,4.0,0,0,0,1,0,1.0\n"
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn a_maintenance_campaign_reports_its_outcomes_and_the_visits_booked_after_its_reminders() {
    let app = spawn_app_with(|s| {
        simulated(&["answered", "busy"])(s);
        // The campaign, not the generators' scan, reminds these customers.
        s.outbound.maintenance_lead_days = 0;
    })
    .await;
    let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let soon = (chrono::Utc::now().date_naive() + chrono::Duration::days(5))
        .format("%Y-%m-%d")
        .to_string();
    for (name, phone, vin) in [("Wang", "13800138000", "V1"), ("Li", "13900139000", "V2")] {
        customer(
            &app,
            json!({"name": name, "phones": [phone], "assets": [{"plate": name, "vin": vin, "next_service_due": soon}]}),
        )
        .await;
    }
    customer(&app, json!({"name": "Not due", "phones": ["13700137000"]})).await;
    let campaign: Value = app
        .post(
            "/api/v1/campaigns",
            &sue,
            &json!({"name": "Spring service", "kind": "maintenance_reminder", "mode": "progressive",
                    "script": "Your service is due.", "filter": {"service_due_within_days": 30},
                    "max_concurrent": 1, "calls_per_minute": 60}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = campaign["id"].as_i64().unwrap();
    let started = app
        .post(&format!("/api/v1/campaigns/{id}/start"), &sue, &json!({}))
        .await;
    assert_eq!(started.status(), 200);

    // Progressive: the engine dials as soon as ann is ready. The first call is answered, the
    // second busy (the simulated dialer's outcomes in turn).
    let mut console = app.console(&ann).await;
    let dialing = console.next_of("task_update").await;
    assert_eq!(dialing["state"], "dialing");
    let reached_task = dialing["task_id"].clone();
    assert_eq!(console.next_of("task_update").await["state"], "connected");
    console
        .send(json!({"type": "task_result", "task_id": reached_task, "outcome": "answered_done", "note": "will book"}))
        .await;
    assert_eq!(console.next_of("saved").await["task_id"], reached_task);
    let busy = console.next_of("task_update").await;
    assert_eq!(busy["state"], "dialing");
    let failed = console.next_of("task_update").await;
    assert_eq!(failed["outcome"], "busy");

    // The reached customer calls in and books the visit: the agent records the disposition.
    let task: Value = app
        .get(&format!("/api/v1/tasks/{reached_task}"), &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    let reached: Value = app
        .get(
            &format!("/api/v1/customers/{}", task["customer_id"]),
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    let number = reached["phones"][0]["e164"].as_str().unwrap().to_string();
    ring(&app, "booking-1", &number, Some("1001")).await;
    assert_eq!(console.next_of("screen_pop").await["call_id"], "booking-1");
    event(
        &app,
        json!({"event": "answered", "call_id": "booking-1", "agent": "1001"}),
    )
    .await;
    console
        .send(json!({"type": "disposition", "call_id": "booking-1", "code": "service_booked", "note": "Friday 9:00"}))
        .await;
    assert_eq!(console.next_of("saved").await["call_id"], "booking-1");

    let day = today();
    let report_path = format!("/api/v1/reports/campaigns?from={day}&to={day}");
    let r = report(&app, &sue, &report_path).await;
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{r}");
    let c = &rows[0];
    assert_eq!(c["campaign_id"], id);
    assert_eq!(c["name"], "Spring service");
    assert_eq!(c["kind"], "maintenance_reminder");
    assert_eq!(c["tasks"], 2, "{c}");
    assert_eq!(c["done"], 1, "{c}");
    assert_eq!(c["pending"], 1, "a busy number is retried later: {c}");
    assert_eq!(c["result_answered_done"], 1, "{c}");
    assert_eq!(c["attempts"], 2, "{c}");
    assert_eq!(c["attempts_answered"], 1, "{c}");
    assert_eq!(c["attempts_busy"], 1, "{c}");
    assert_eq!(c["completion"], 0.5, "{c}");
    assert_eq!(c["reach_rate"], 1.0, "{c}");
    let one = report(
        &app,
        &sue,
        &format!("/api/v1/reports/campaigns?campaign_id={id}&from=2020-01-01&to=2020-01-01"),
    )
    .await;
    assert_eq!(
        one["rows"][0]["campaign_id"], id,
        "a campaign asked for by id, whatever its date"
    );
    let csv = app
        .client
        .get(app.url(&format!("{report_path}&format=csv")))
        .bearer_auth(&sue)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.starts_with("campaign_id,name,kind,mode,state,created,tasks,pending,in_call,done,"),
        "{header}"
    );
    assert_eq!(csv.lines().count(), 2, "a header and one campaign: {csv}");

    let reminders = report_when(
        &app,
        &sue,
        &format!("/api/v1/reports/reminders?from={day}&to={day}"),
        |r| r["totals"]["bookings"] == 1,
    )
    .await;
    let t = &reminders["totals"];
    assert_eq!(t["reminders_reached"], 1, "{reminders}");
    assert_eq!(t["reminders_failed"], 0, "{reminders}");
    assert_eq!(t["bookings"], 1, "{reminders}");
    assert_eq!(t["bookings_after_reminder"], 1, "{reminders}");
    assert_eq!(t["conversion"], 1.0, "{reminders}");
    let csv = app
        .client
        .get(app.url(&format!("/api/v1/reports/reminders?from={day}&to={day}")))
        .bearer_auth(&sue)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv,
        format!(
            "period,date,hour,reminders_reached,reminders_failed,bookings,bookings_after_reminder,conversion\n\
             {day},{day},,1,0,1,1,1.0\ntotal,,,1,0,1,1,1.0\n"
        )
    );
    app.stop().await;
}
