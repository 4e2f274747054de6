//! The supervisors' pages in a real headless Chromium, driven over WebDriver: the wallboard shows
//! a call reported to the webhook the moment it rings. Skipped (with a line saying so) where
//! Chromium is not installed, except on CI. `RINGSIDE_SCREENSHOTS=1` refreshes the screenshots
//! kept under `docs/`.

use std::path::Path;
use std::time::Duration;

use ringside::auth::Role;
use serde_json::{Value, json};

use crate::support::webdriver::{Browser, testid};
use crate::support::{TestApp, spawn_app_with};

/// Each browser test, start-up included, must finish within this.
const TEST_LIMIT: Duration = Duration::from_secs(90);
/// How long the page may take to react to something (a click, a server message).
const PAGE_REACTS_WITHIN: Duration = Duration::from_secs(10);

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .unwrap_or_else(|_| panic!("browser test took longer than {TEST_LIMIT:?}"));
}

async fn customer(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/customers", &app.admin_token, &body).await;
    assert_eq!(r.status(), 201, "create customer {body}");
    r.json().await.unwrap()
}

/// Checks the screenshot is a real picture and, on request, keeps it under `docs/`.
fn keep_screenshot(png: &[u8], name: &str) {
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a real screenshot ({} bytes)",
        png.len()
    );
    if std::env::var("RINGSIDE_SCREENSHOTS").as_deref() == Ok("1") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, png).unwrap();
        eprintln!("wrote {}", path.display());
    }
}

#[tokio::test]
async fn the_wallboard_shows_a_ringing_call_live_and_drops_it_when_answered() {
    bounded(async {
        let Some(browser) = Browser::launch_or_skip("the wallboard browser test").await else {
            return;
        };
        let app = spawn_app_with(|s| s.outbound.enabled = false).await;
        let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
        let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
        let (_, lihua) = app.agent("lihua", Role::Agent, &["1002"]).await;
        app.agent("bob", Role::Agent, &["1003"]).await;
        for (name, tier, phone) in [
            ("王建国", "A", "13800138000"),
            ("李娜", "A", "13900139000"),
            ("赵敏", "B", "13700137000"),
        ] {
            customer(&app, json!({"name": name, "tier": tier, "phones": [phone]})).await;
        }
        // Some history for the board: an answered call, a missed one, a running campaign.
        let mut ann_console = app.console(&ann).await;
        let mut lihua_console = app.console(&lihua).await;
        for (id, from, answered) in [("h1", "13900139000", true), ("h2", "13700137000", false)] {
            app.call_event(json!({"event": "ringing", "call_id": id, "from": from, "to": "1002", "agent": "1002"}))
                .await;
            if answered {
                app.call_event(json!({"event": "answered", "call_id": id, "agent": "1002"}))
                    .await;
            }
            app.call_event(json!({"event": "hangup", "call_id": id})).await;
        }
        let campaign: Value = app
            .post(
                "/api/v1/campaigns",
                &sue,
                &json!({"name": "Tier A return visits", "kind": "return_visit", "filter": {"tiers": ["A"]}}),
            )
            .await
            .json()
            .await
            .unwrap();
        let r = app
            .post(&format!("/api/v1/campaigns/{}/start", campaign["id"]), &sue, &json!({}))
            .await;
        assert_eq!(r.status(), 200);
        lihua_console.send(json!({"type": "status", "state": "away"})).await;

        browser
            .goto(&app.url(&format!("/wallboard?token={sue}")))
            .await
            .unwrap();
        browser
            .wait_for_text(&testid("conn-state"), "live", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser
            .wait_for_text(&testid("agents-away"), "1", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        assert_eq!(
            browser.text(&browser.find(&testid("ringing-count")).await.unwrap()).await.unwrap(),
            "0"
        );
        browser
            .wait_for_text(&testid("missed-count"), "1", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser
            .wait_for_text(&testid("answer-rate"), "50%", PAGE_REACTS_WITHIN)
            .await
            .unwrap();

        // A call rings at ann's phone: it appears on the board as it rings.
        let r = app
            .call_event(json!({"event": "ringing", "call_id": "live-1", "from": "138 0013 8000",
                               "to": "1001", "direction": "inbound", "agent": "1001"}))
            .await;
        assert_eq!(r.status(), 202);
        let line = format!("{}[data-call-id=\"live-1\"]", testid("call-line"));
        let element = browser.wait_for(&line, PAGE_REACTS_WITHIN).await.unwrap();
        let text = browser.text(&element).await.unwrap();
        assert!(text.contains("+86138****8000"), "masked number on the line: {text}");
        assert!(text.contains("ann"), "the ringing agent on the line: {text}");
        assert!(!text.contains("13800138000"), "no full number on the board: {text}");
        browser
            .wait_for_text(&testid("ringing-count"), "1", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        ann_console.next_of("screen_pop").await;
        keep_screenshot(&browser.screenshot_png().await.unwrap(), "wallboard.png");

        // Answered: the line goes, ann is on a call.
        app.call_event(json!({"event": "answered", "call_id": "live-1", "agent": "1001"}))
            .await;
        browser
            .wait_for_absence(&line, PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser
            .wait_for_text(&testid("talking-count"), "1", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser
            .wait_for_text(&testid("agents-on_call"), "1", PAGE_REACTS_WITHIN)
            .await
            .unwrap();

        browser.quit().await.unwrap();
        ann_console.close().await;
        lihua_console.close().await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_supervisor_creates_and_starts_a_maintenance_reminder_campaign_from_the_page_and_sees_it_progress()
 {
    bounded(async {
        let Some(browser) = Browser::launch_or_skip("the supervisor page browser test").await
        else {
            return;
        };
        let app = spawn_app_with(|s| {
            s.outbound.dialer = ringside::settings::DialerChoice::Simulated;
            s.outbound.simulated_outcomes = vec!["answered".into()];
            s.outbound.simulated_delay_ms = 50;
            s.outbound.window_start = "00:00".into();
            s.outbound.window_end = "23:59".into();
            s.outbound.call_on_weekends = true;
            s.outbound.scan_interval_secs = 3600;
            // The campaign, not the generators' scan, reminds these customers.
            s.outbound.maintenance_lead_days = 0;
            s.outbound.return_visits.clear();
            s.outbound.birthday_tiers.clear();
        })
        .await;
        let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
        let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
        let soon = (chrono::Utc::now().date_naive() + chrono::Duration::days(10))
            .format("%Y-%m-%d")
            .to_string();
        for (name, phone, vin) in [
            ("王建国", "13800138000", "LSVAU2180N2183001"),
            ("李娜", "13900139000", "LSVAU2180N2183002"),
            ("赵敏", "13700137000", "LSVAU2180N2183003"),
        ] {
            customer(
                &app,
                json!({"name": name, "tier": "A", "phones": [phone],
                       "assets": [{"plate": "沪A·12345", "vin": vin, "model": "Lavida", "next_service_due": soon}]}),
            )
            .await;
        }
        customer(&app, json!({"name": "No car", "phones": ["13600136000"]})).await;
        let mut console = app.console(&ann).await;

        browser
            .goto(&app.url(&format!("/supervisor?token={sue}")))
            .await
            .unwrap();
        browser
            .wait_for_text(&testid("who"), "sue", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        let new = browser.find(&testid("new-campaign")).await.unwrap();
        browser.click(&new).await.unwrap();
        let name = browser
            .wait_for(&testid("campaign-name"), PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser
            .send_keys(&name, "Spring service reminders")
            .await
            .unwrap();
        let kind = browser.find(&testid("campaign-kind")).await.unwrap();
        browser
            .select_option(&kind, "maintenance_reminder")
            .await
            .unwrap();
        let mode = browser.find(&testid("campaign-mode")).await.unwrap();
        browser.select_option(&mode, "progressive").await.unwrap();
        let script = browser.find(&testid("campaign-script")).await.unwrap();
        browser
            .send_keys(&script, "您好，您的爱车即将到保养时间，需要为您预约吗？")
            .await
            .unwrap();
        let due = browser.find(&testid("target-due-days")).await.unwrap();
        browser.send_keys(&due, "30").await.unwrap();
        let create = browser.find(&testid("campaign-create")).await.unwrap();
        browser.click(&create).await.unwrap();

        let row = testid("campaign-row");
        browser
            .wait_for_text(&format!("{row} {}", testid("campaign-state")), "draft", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser
            .wait_for_text(&testid("notice"), "Created", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        let start = browser
            .find(&format!("{row} {}", testid("campaign-start")))
            .await
            .unwrap();
        browser.click(&start).await.unwrap();
        browser
            .wait_for_text(&format!("{row} {}", testid("campaign-state")), "running", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser
            .wait_for_text(&testid("notice"), "3 customers to call", PAGE_REACTS_WITHIN)
            .await
            .unwrap();

        // The simulated dialer places each call as ann is free; she records each result.
        for _ in 0..3 {
            let connected = loop {
                let update = console.next_of("task_update").await;
                if update["state"] == "connected" {
                    break update;
                }
            };
            console
                .send(json!({"type": "task_result", "task_id": connected["task_id"],
                             "outcome": "answered_done", "note": "visit booked"}))
                .await;
            console.next_of("saved").await;
        }
        browser
            .wait_for_text(
                &format!("{row} {}", testid("campaign-progress")),
                "3/3",
                PAGE_REACTS_WITHIN,
            )
            .await
            .unwrap();
        let outcomes = browser
            .text(&browser.find(&format!("{row} td:nth-child(5)")).await.unwrap())
            .await
            .unwrap();
        assert!(outcomes.contains("answered done 3"), "{outcomes}");
        keep_screenshot(&browser.screenshot_png().await.unwrap(), "supervisor.png");

        // The campaign's report, from the reports tab.
        let reports = browser.find(&testid("tab-reports")).await.unwrap();
        browser.click(&reports).await.unwrap();
        let view = browser
            .wait_for(&testid("report-view-campaigns"), PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser.click(&view).await.unwrap();
        browser
            .wait_for_text(&testid("report-table"), "Spring service reminders", PAGE_REACTS_WITHIN)
            .await
            .unwrap();

        browser.quit().await.unwrap();
        console.close().await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_supervisor_moves_a_callback_to_another_agent_and_adds_an_agent_from_the_page() {
    bounded(async {
        let Some(browser) = Browser::launch_or_skip("the callback queue browser test").await else {
            return;
        };
        let app = spawn_app_with(|s| s.outbound.enabled = false).await;
        let (_, sue) = app.agent("sue", Role::Supervisor, &[]).await;
        app.agent("ann", Role::Agent, &["1001"]).await;
        let (bob_id, _) = app.agent("bob", Role::Agent, &["1002"]).await;
        customer(
            &app,
            json!({"name": "王建国", "tier": "A", "phones": ["13800138000"]}),
        )
        .await;
        customer(
            &app,
            json!({"name": "李娜", "tier": "B", "phones": ["13900139000"]}),
        )
        .await;
        for (id, from) in [("m1", "13800138000"), ("m2", "13900139000")] {
            app.call_event(json!({"event": "ringing", "call_id": id, "from": from, "to": "800"}))
                .await;
            app.call_event(json!({"event": "hangup", "call_id": id}))
                .await;
        }

        browser
            .goto(&app.url(&format!("/supervisor?token={sue}")))
            .await
            .unwrap();
        browser
            .wait_for_text(&testid("who"), "sue", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        let tab = browser.find(&testid("tab-callbacks")).await.unwrap();
        browser.click(&tab).await.unwrap();
        browser
            .wait_for_text(&testid("cb-due"), "2", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        let row = format!("{}[data-status=\"due\"]", testid("callback-row"));
        let first = browser.wait_for(&row, PAGE_REACTS_WITHIN).await.unwrap();
        let task_id = browser
            .attribute(&first, "data-task-id")
            .await
            .unwrap()
            .expect("a task id on the row");
        let customer_name = browser
            .text(
                &browser
                    .find_in(&first, &testid("callback-customer"))
                    .await
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(
            ["王建国", "李娜"].contains(&customer_name.as_str()),
            "{customer_name}"
        );
        let select = browser
            .find_in(&first, &testid("reassign-select"))
            .await
            .unwrap();
        browser
            .select_option(&select, &bob_id.to_string())
            .await
            .unwrap();
        let r#move = browser
            .find_in(&first, &testid("reassign-move"))
            .await
            .unwrap();
        browser.click(&r#move).await.unwrap();
        browser
            .wait_for(
                &format!(
                    "{}[data-agent-id=\"{bob_id}\"] {}[data-task-id=\"{task_id}\"]",
                    testid("callback-group"),
                    testid("callback-row")
                ),
                PAGE_REACTS_WITHIN,
            )
            .await
            .unwrap();
        let task: Value = app
            .get(&format!("/api/v1/tasks/{task_id}"), &sue)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(task["preferred_agent_id"], bob_id);

        // A new agent, whose token is shown once and works.
        let tab = browser.find(&testid("tab-agents")).await.unwrap();
        browser.click(&tab).await.unwrap();
        let name = browser
            .wait_for(&testid("agent-name"), PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser.send_keys(&name, "carol").await.unwrap();
        let extensions = browser.find(&testid("agent-extensions")).await.unwrap();
        browser.send_keys(&extensions, "1003, 1004").await.unwrap();
        let add = browser.find(&testid("agent-add")).await.unwrap();
        browser.click(&add).await.unwrap();
        let token = browser
            .wait_for_text(&testid("token-value"), "rs_", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser
            .wait_for(
                &format!("{}[data-agent-name=\"carol\"]", testid("agent-row")),
                PAGE_REACTS_WITHIN,
            )
            .await
            .unwrap();
        let me: Value = app
            .get("/api/v1/agents/me", token.trim())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["name"], "carol");
        assert_eq!(me["role"], "agent");
        assert_eq!(me["extensions"], json!(["1003", "1004"]));

        browser.quit().await.unwrap();
        app.stop().await;
    })
    .await;
}
