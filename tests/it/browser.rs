//! The agent console in a real headless Chromium, driven over WebDriver: the page's own
//! JavaScript connects the WebSocket, renders the pop a webhook event causes, and sends the
//! disposition the agent types, which must land in the database. Skipped (with a line saying so)
//! where Chromium is not installed, except on CI.

use std::path::Path;
use std::time::Duration;

use ringside::auth::Role;
use serde_json::{Value, json};

use crate::support::webdriver::{Browser, testid};
use crate::support::{TestApp, spawn_app};

/// Each browser test, start-up included, must finish within this.
const TEST_LIMIT: Duration = Duration::from_secs(60);
/// How long the page may take to react to something (a click, a server message).
const PAGE_REACTS_WITHIN: Duration = Duration::from_secs(10);

async fn create_customer(app: &TestApp, body: Value) -> Value {
    let response = app.post("/api/v1/customers", &app.admin_token, &body).await;
    assert_eq!(response.status(), 201, "create customer {body}");
    response.json().await.unwrap()
}

/// Opens the console with the token in the address, as a supervisor's link would, and signs in.
async fn sign_in(browser: &Browser, app: &TestApp, token: &str) {
    browser
        .goto(&app.url(&format!("/?token={token}")))
        .await
        .unwrap();
    let token_field = browser
        .wait_for(&testid("token"), PAGE_REACTS_WITHIN)
        .await
        .unwrap();
    assert_eq!(
        browser.property(&token_field, "value").await.unwrap(),
        token,
        "the token field is prefilled from ?token="
    );
    let connect = browser.find(&testid("connect")).await.unwrap();
    browser.click(&connect).await.unwrap();
    browser
        .wait_for_text(&testid("conn-state"), "connected", PAGE_REACTS_WITHIN)
        .await
        .unwrap();
}

fn card(call_id: &str) -> String {
    format!("{}[data-call-id=\"{call_id}\"]", testid("pop-card"))
}

fn in_card(call_id: &str, id: &str) -> String {
    format!("{} {}", card(call_id), testid(id))
}

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .unwrap_or_else(|_| panic!("browser test took longer than {TEST_LIMIT:?}"));
}

#[tokio::test]
async fn an_event_posted_to_the_webhook_pops_the_card_in_the_browser_and_a_typed_disposition_lands_in_the_database()
 {
    bounded(async {
        let Some(browser) = Browser::launch_or_skip("the browser pop test").await else {
            return;
        };
        let app = spawn_app().await;
        let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
        let customer = create_customer(
            &app,
            json!({
                "name": "王建国", "tier": "A", "key_account": true, "account_manager": "ann",
                "language": "zh", "timezone": "Asia/Shanghai", "tags": ["fleet", "X5"],
                "notes": "Prefers calls after 10:00. Fleet of four cars.",
                "phones": ["+86 138 0013 8000"],
            }),
        )
        .await;
        let customer_id = customer["id"].as_i64().unwrap();
        let complaint = app
            .post(
                "/api/v1/complaints",
                &app.admin_token,
                &json!({"customer_id": customer_id, "summary": "空调异响，第二次返修"}),
            )
            .await;
        assert_eq!(complaint.status(), 201);
        let earlier = app
            .post(
                "/api/v1/interactions",
                &app.admin_token,
                &json!({"customer_id": customer_id, "kind": "call", "direction": "inbound",
                        "disposition": "info_given", "note": "询问保养价格"}),
            )
            .await;
        assert_eq!(earlier.status(), 201);

        sign_in(&browser, &app, &ann).await;
        assert_eq!(
            browser
                .text(&browser.find(&testid("agent-name")).await.unwrap())
                .await
                .unwrap(),
            "ann"
        );

        let ringing = app
            .call_event(
                json!({"event": "ringing", "call_id": "browser-1", "from": "138 0013 8000",
                               "to": "1001", "direction": "inbound", "agent": "1001"}),
            )
            .await;
        assert_eq!(ringing.status(), 202);
        let pop = browser
            .wait_for(&card("browser-1"), PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        assert_eq!(
            browser
                .attribute(&pop, "data-call-id")
                .await
                .unwrap()
                .as_deref(),
            Some("browser-1")
        );
        let shown = |id: &'static str| {
            let browser = &browser;
            let pop = &pop;
            async move {
                let element = browser.find_in(pop, &testid(id)).await.unwrap();
                browser.text(&element).await.unwrap()
            }
        };
        browser
            .wait_for_text(
                &in_card("browser-1", "customer-name"),
                "王建国",
                PAGE_REACTS_WITHIN,
            )
            .await
            .unwrap();
        assert_eq!(shown("customer-name").await, "王建国");
        assert_eq!(shown("tier").await, "A");
        // Rendered upper-case by the style sheet; the page's own words are lower-case.
        assert_eq!(shown("card-state").await.to_lowercase(), "ringing");
        let mut hint_codes = Vec::new();
        for hint in browser.find_all_in(&pop, &testid("hint")).await.unwrap() {
            hint_codes.push(browser.attribute(&hint, "data-code").await.unwrap());
        }
        assert!(
            hint_codes.contains(&Some("vip".into())),
            "the tier A hint is shown: {hint_codes:?}"
        );

        let answered = app
            .call_event(json!({"event": "answered", "call_id": "browser-1", "agent": "1001"}))
            .await;
        assert_eq!(answered.status(), 202);
        browser
            .wait_for_text(
                &in_card("browser-1", "card-state"),
                "on call",
                PAGE_REACTS_WITHIN,
            )
            .await
            .unwrap();

        let note = "预约周五上午保养 — booked Friday 9:00";
        let code = browser
            .find_in(&pop, &testid("disposition-code"))
            .await
            .unwrap();
        browser
            .select_option(&code, "service_booked")
            .await
            .unwrap();
        let note_field = browser
            .find_in(&pop, &testid("disposition-note"))
            .await
            .unwrap();
        browser.send_keys(&note_field, note).await.unwrap();
        let save = browser
            .find_in(&pop, &testid("disposition-save"))
            .await
            .unwrap();
        browser.click(&save).await.unwrap();
        browser
            .wait_for(
                &in_card("browser-1", "disposition-saved"),
                PAGE_REACTS_WITHIN,
            )
            .await
            .unwrap();

        let png = browser.screenshot_png().await.unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "a real screenshot ({} bytes)",
            png.len()
        );
        // The committed screenshot is refreshed only on request, so ordinary runs leave the tree clean.
        if std::env::var("RINGSIDE_SCREENSHOTS").as_deref() == Ok("1") {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console.png");
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &png).unwrap();
            eprintln!("wrote {}", path.display());
        }

        let path = format!("/api/v1/interactions?customer_id={customer_id}");
        let mut recorded = Value::Null;
        for _ in 0..50 {
            let interactions: Value = app.get(&path, &app.admin_token).await.json().await.unwrap();
            recorded = interactions
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["call_id"] == "browser-1")
                .cloned()
                .unwrap_or(Value::Null);
            if recorded["disposition"] == "service_booked" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(recorded["disposition"], "service_booked", "{recorded}");
        assert_eq!(recorded["note"], note, "{recorded}");
        assert_eq!(recorded["agent"], "ann", "{recorded}");

        browser.quit().await.unwrap();
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_pop_is_withdrawn_in_the_browser_when_another_agent_answers() {
    bounded(async {
        let Some(browser) = Browser::launch_or_skip("the browser withdrawal test").await else {
            return;
        };
        let app = spawn_app().await;
        let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
        app.agent("bob", Role::Agent, &["1002"]).await;
        create_customer(
            &app,
            json!({"name": "李娜", "tier": "B", "phones": ["13900139000"]}),
        )
        .await;
        sign_in(&browser, &app, &ann).await;

        // The helpdesk CTI form, as JSON, ringing both agents' phones.
        let ringing = app
            .call_event(
                json!({"event": "newCall", "callId": "w1", "from": "13900139000",
                               "to": "800", "direction": "in", "user": ["1001", "1002"]}),
            )
            .await;
        assert_eq!(ringing.status(), 202);
        browser
            .wait_for(&card("w1"), PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser
            .wait_for_text(&in_card("w1", "customer-name"), "李娜", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser
            .wait_for_text(&in_card("w1", "card-state"), "ringing", PAGE_REACTS_WITHIN)
            .await
            .unwrap();

        let answered = app
            .call_event(json!({"event": "answer", "callId": "w1", "answeringNumber": "1002"}))
            .await;
        assert_eq!(answered.status(), 202);
        browser
            .wait_for_text(
                &in_card("w1", "card-state"),
                "answered elsewhere",
                PAGE_REACTS_WITHIN,
            )
            .await
            .unwrap();
        browser
            .wait_for_text(&card("w1"), "answered by bob", PAGE_REACTS_WITHIN)
            .await
            .unwrap();
        browser
            .wait_for_absence(&card("w1"), Duration::from_secs(6))
            .await
            .unwrap();

        browser.quit().await.unwrap();
        app.stop().await;
    })
    .await;
}
