//! `GET /metrics`: counters move where things happen, labels are right, and the whole text is
//! well-formed Prometheus (OpenMetrics) exposition.

use std::collections::HashMap;

use ringside::auth::Role;
use serde_json::{Value, json};

use crate::support::sip_client::{UdpPeer, options};
use crate::support::{TestApp, spawn_app_with, spawn_sip_app};

/// A scrape: the samples by `name{labels}` as written, after checking every line.
struct Scrape {
    samples: HashMap<String, f64>,
    families: HashMap<String, String>,
}

impl Scrape {
    fn value(&self, sample: &str) -> f64 {
        *self
            .samples
            .get(sample)
            .unwrap_or_else(|| panic!("no sample {sample} in {:?}", self.samples.keys()))
    }
}

async fn scrape(app: &TestApp) -> Scrape {
    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse_exposition(&response.text().await.expect("body"))
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `k="v",k2="v2"` with `\\`, `\"` and `\n` escapes; panics on anything else.
fn check_labels(labels: &str, line: &str) {
    let mut rest = labels;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label without =\" in {line}"));
        assert!(
            is_metric_name(key) && !key.contains(':'),
            "bad label name {key} in {line}"
        );
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    let escaped = chars.next().map(|(_, c)| c);
                    assert!(
                        matches!(escaped, Some('\\' | '"' | 'n')),
                        "bad escape in {line}"
                    );
                }
                Some((i, '"')) => break i,
                Some(_) => {}
                None => panic!("unterminated label value in {line}"),
            }
        };
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
        if !rest.is_empty() {
            assert!(!rest.starts_with(','), "empty label in {line}");
        }
    }
}

/// Checks the text line by line: comments are HELP/TYPE/UNIT/EOF for a `ringside_` family, every
/// sample belongs to the family typed just before it, label sets parse, values are numbers, and
/// `# EOF` ends it.
fn parse_exposition(text: &str) -> Scrape {
    const TYPES: [&str; 8] = [
        "counter",
        "gauge",
        "histogram",
        "gaugehistogram",
        "summary",
        "info",
        "stateset",
        "unknown",
    ];
    let mut samples = HashMap::new();
    let mut families = HashMap::new();
    let mut current: Option<(String, String)> = None;
    let mut saw_eof = false;
    for line in text.lines() {
        assert!(!saw_eof, "text after # EOF: {line}");
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let keyword = parts.next().unwrap_or_default();
            let name = parts.next().unwrap_or_default();
            let rest = parts.next().unwrap_or_default();
            assert!(
                is_metric_name(name) && name.starts_with("ringside_"),
                "bad family name in {line}"
            );
            match keyword {
                "HELP" => assert!(!rest.is_empty(), "empty help in {line}"),
                "UNIT" => {}
                "TYPE" => {
                    assert!(TYPES.contains(&rest), "unknown type in {line}");
                    assert!(
                        families
                            .insert(name.to_string(), rest.to_string())
                            .is_none(),
                        "family {name} typed twice"
                    );
                    current = Some((name.to_string(), rest.to_string()));
                }
                other => panic!("unknown comment {other} in {line}"),
            }
            continue;
        }
        assert!(!line.trim().is_empty(), "blank line in the exposition");
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("sample without a value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("value {v} is not a number in {line}")),
        };
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unterminated labels in {line}"));
                check_labels(labels, line);
                name
            }
            None => series,
        };
        assert!(is_metric_name(name), "bad metric name in {line}");
        let (family, kind) = current
            .as_ref()
            .unwrap_or_else(|| panic!("sample before any TYPE: {line}"));
        let suffix = name
            .strip_prefix(family.as_str())
            .unwrap_or_else(|| panic!("sample {name} outside its family {family}"));
        let allowed: &[&str] = match kind.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        };
        assert!(
            allowed.contains(&suffix),
            "sample {name} does not fit {kind} {family}"
        );
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "series {series} twice"
        );
    }
    assert!(saw_eof, "the exposition ends with # EOF");
    Scrape { samples, families }
}

#[tokio::test]
async fn a_webhook_event_and_a_console_move_the_counters_and_the_text_parses() {
    let app = spawn_app_with(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let before = scrape(&app).await;
    assert_eq!(
        before.value("ringside_call_events_total{source=\"webhook\"}"),
        0.0
    );
    assert_eq!(before.value("ringside_ws_connections"), 0.0);
    assert_eq!(before.value("ringside_pop_latency_seconds_count"), 0.0);
    assert_eq!(before.families["ringside_pop_latency_seconds"], "histogram");
    assert_eq!(before.families["ringside_tasks"], "gauge");
    assert!(before.value("ringside_db_pool_connections") >= 1.0);
    assert!(
        !before.families.contains_key("ringside_sip_requests_in"),
        "no SIP figures while SIP is off"
    );

    let mut console = app.console(&ann).await;
    let r = app
        .call_event(json!({"event": "ringing", "call_id": "m1", "from": "13800138000", "to": "1001", "agent": "1001"}))
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(console.next_of("screen_pop").await["call_id"], "m1");

    let after = scrape(&app).await;
    assert_eq!(
        after.value("ringside_call_events_total{source=\"webhook\"}"),
        1.0
    );
    assert_eq!(
        after.value("ringside_call_events_total{source=\"sip\"}"),
        0.0
    );
    assert_eq!(after.value("ringside_pops_sent_total"), 1.0);
    assert_eq!(after.value("ringside_ws_connections"), 1.0);
    assert_eq!(after.value("ringside_agents_ready"), 1.0);
    assert_eq!(after.value("ringside_pop_latency_seconds_count"), 1.0);
    assert_eq!(
        after.value("ringside_pop_latency_seconds_bucket{le=\"+Inf\"}"),
        1.0
    );
    assert_eq!(after.value("ringside_calls_active{state=\"ringing\"}"), 1.0);

    // An oversized console message is refused (and the socket closed).
    console.send(Value::String("x".repeat(70 * 1024))).await;
    let refused = wait_for(&app, |s| {
        s.value("ringside_ws_messages_refused_total{reason=\"size\"}") == 1.0
    })
    .await;
    assert_eq!(refused.value("ringside_ws_connections"), 0.0);
    assert_eq!(
        refused.value("ringside_ws_messages_refused_total{reason=\"rate\"}"),
        0.0
    );
    app.stop().await;
}

/// Scrapes until `check` holds (within 10 s): the console socket closes on its own task.
async fn wait_for(app: &TestApp, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s = scrape(app).await;
        if check(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met; last scrape {:?}",
            s.samples
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn tasks_by_state_come_from_the_database_and_http_429s_are_counted() {
    let app = spawn_app_with(|s| s.http.rate_limit_per_token = 1).await;
    let r = app
        .post(
            "/api/v1/customers",
            &app.admin_token,
            &json!({"name": "Wang", "phones": ["13800138009"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let customer: Value = r.json().await.unwrap();
    // The token's bucket holds two requests: the next ones are refused until it refills.
    let mut limited = 0;
    for _ in 0..5 {
        let r = app
            .post(
                "/api/v1/tasks",
                &app.admin_token,
                &json!({"customer_id": customer["id"]}),
            )
            .await;
        if r.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 1, "the limit refused something");
    let s = scrape(&app).await;
    assert_eq!(s.value("ringside_http_rate_limited_total"), limited as f64);
    let pending = s
        .samples
        .iter()
        .filter(|(k, _)| k.starts_with("ringside_tasks{"))
        .map(|(_, v)| *v)
        .sum::<f64>();
    assert!(
        pending >= 1.0,
        "the created task is counted: {:?}",
        s.samples
    );
    app.stop().await;
}

#[tokio::test]
async fn the_sip_cores_own_counters_are_exported_with_their_labels() {
    let app = spawn_sip_app(|_| {}).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    peer.send(&options(peer.local(), app.sip_addr(), "UDP"))
        .await;
    peer.expect(200).await;
    peer.send("this is not SIP\r\n\r\n").await;
    let s = wait_for(&app, |s| {
        s.value("ringside_sip_drops_total{reason=\"unparseable\"}") == 1.0
    })
    .await;
    assert_eq!(
        s.value("ringside_sip_requests_in_total{method=\"OPTIONS\"}"),
        1.0
    );
    assert_eq!(
        s.value("ringside_sip_responses_out_total{class=\"2xx\"}"),
        1.0
    );
    assert_eq!(s.value("ringside_sip_bans_total"), 0.0);
    assert_eq!(s.families["ringside_sip_drops"], "counter");
    app.stop().await;
}

#[tokio::test]
async fn dial_attempts_are_counted_by_outcome() {
    let app = spawn_app_with(|s| {
        s.outbound.dialer = ringside::settings::DialerChoice::Simulated;
        s.outbound.simulated_outcomes = vec!["busy".into()];
        s.outbound.simulated_delay_ms = 50;
        s.outbound.window_start = "00:00".into();
        s.outbound.window_end = "23:59".into();
        s.outbound.scan_interval_secs = 3600;
        s.outbound.return_visits.clear();
        s.outbound.birthday_tiers.clear();
    })
    .await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let customer: Value = app
        .post(
            "/api/v1/customers",
            &app.admin_token,
            &json!({"name": "Li", "phones": ["13800138005"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let task: Value = app
        .post(
            "/api/v1/tasks",
            &app.admin_token,
            &json!({"customer_id": customer["id"]}),
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
    assert_eq!(console.next_of("task_update").await["outcome"], "busy");
    let s = scrape(&app).await;
    assert_eq!(
        s.value("ringside_dial_attempts_total{outcome=\"busy\"}"),
        1.0
    );
    assert_eq!(
        s.value("ringside_dial_attempts_total{outcome=\"answered\"}"),
        0.0
    );
    app.stop().await;
}
