//! The SIP flows driven by SIPp (Debian package `sip-tester`) with the scenarios in tests/sipp,
//! against the daemon on 127.0.0.1 and a random port. Without `sipp` installed these tests print
//! that they were skipped, unless `CI` is set: then a missing `sipp` fails them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ringside::auth::Role;
use serde_json::json;

use crate::support::{TestApp, spawn_sip_app};

/// The longest a SIPp run may take before the test fails.
const SIPP_DEADLINE: Duration = Duration::from_secs(60);

fn sipp_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("sipp"))
        .find(|candidate| candidate.is_file())
}

/// Whether SIPp tests can run; prints why not, and fails under CI.
fn sipp_available(test: &str) -> bool {
    if sipp_binary().is_some() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: sipp is not installed (apt-get install sip-tester) and CI is set");
    }
    eprintln!("skipping {test}: sipp is not installed (apt-get install sip-tester)");
    false
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// One finished SIPp run.
struct SippRun {
    success: bool,
    output: String,
    logs: String,
}

/// Runs `scenario` against the app: `calls` calls to `extension`, the caller `caller`.
async fn sipp(
    app: &TestApp,
    scenario_file: &str,
    extension: &str,
    caller: &str,
    calls: u32,
    extra: &[&str],
) -> SippRun {
    let dir = tempfile::tempdir().unwrap();
    let callers = dir.path().join("callers.csv");
    std::fs::write(&callers, format!("SEQUENTIAL\n{caller};\n")).unwrap();
    let logs = dir.path().join("logs.log");
    let errors = dir.path().join("errors.log");
    let mut command = tokio::process::Command::new(sipp_binary().expect("sipp"));
    command
        .arg(app.sip_addr().to_string())
        .arg("-sf")
        .arg(scenario(scenario_file))
        .arg("-inf")
        .arg(&callers)
        .args(["-s", extension, "-i", "127.0.0.1", "-m", &calls.to_string()])
        .args(["-r", "20", "-nostdin", "-timeout", "30s", "-timeout_error"])
        .args(["-trace_err", "-error_file"])
        .arg(&errors)
        .args(["-trace_logs", "-log_file"])
        .arg(&logs)
        .args(extra)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(SIPP_DEADLINE, command.output())
        .await
        .expect("sipp finishes in time")
        .expect("sipp runs");
    let text = format!(
        "{}{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(&errors).unwrap_or_default()
    );
    SippRun {
        success: output.status.success(),
        output: text,
        logs: std::fs::read_to_string(&logs).unwrap_or_default(),
    }
}

#[tokio::test]
async fn sipp_options_gets_200() {
    if !sipp_available("sipp_options_gets_200") {
        return;
    }
    let app = spawn_sip_app(|_| {}).await;
    let run = sipp(&app, "options.xml", "ringside", "13800138000", 3, &[]).await;
    assert!(run.success, "{}", run.output);
    app.stop().await;
}

#[tokio::test]
async fn sipp_invite_cancel_gets_100_180_then_200_and_487_and_pops_each_call() {
    if !sipp_available("sipp_invite_cancel") {
        return;
    }
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut console = app.console(&ann).await;
    // -d: each call rings for 300 ms, long enough for its pop to be built before the CANCEL (a
    // pop for a call that is already over is not sent).
    let run = sipp(
        &app,
        "invite_cancel.xml",
        "1001",
        "13800138000",
        5,
        &["-d", "300"],
    )
    .await;
    assert!(run.success, "{}", run.output);
    let mut pops = 0;
    let mut ended = 0;
    while pops < 5 || ended < 5 {
        let message = console.next_json().await;
        match message["type"].as_str() {
            Some("screen_pop") => pops += 1,
            Some("call_update") if message["state"] == "ended" => ended += 1,
            _ => {}
        }
    }
    let counters = app.sip.as_ref().unwrap().counters();
    assert_eq!(counters.total_drops(), 0);
    app.stop().await;
}

#[tokio::test]
async fn sipp_cancel_answered_elsewhere_reaches_the_console_after_the_pop() {
    if !sipp_available("sipp_cancel_answered_elsewhere") {
        return;
    }
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut console = app.console(&ann).await;
    // -d: ring for a second before the CANCEL, as a phone would.
    let run = sipp(
        &app,
        "cancel_answered_elsewhere.xml",
        "1001",
        "13900139000",
        1,
        &["-d", "1000"],
    )
    .await;
    assert!(run.success, "{}", run.output);
    let pop = console.next_json().await;
    assert_eq!(pop["type"], "screen_pop", "{pop}");
    let update = console.next_of("call_update").await;
    assert_eq!(update["call_id"], pop["call_id"]);
    assert_eq!(update["state"], "answered_elsewhere");
    app.stop().await;
}

#[tokio::test]
async fn sipp_redirect_gets_302_to_the_account_managers_extension() {
    if !sipp_available("sipp_redirect") {
        return;
    }
    let app = spawn_sip_app(|settings| {
        settings.sip.mode = ringside::settings::SipMode::Redirect;
    })
    .await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    app.agent("bob", Role::Agent, &["1002"]).await;
    let response = app
        .post(
            "/api/v1/customers",
            &app.admin_token,
            &json!({"name": "王建国", "key_account": true, "account_manager": "ann",
                    "phones": ["+86 138 0013 8000"]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let mut console = app.console(&ann).await;
    let run = sipp(&app, "redirect.xml", "800", "13800138000", 1, &[]).await;
    assert!(run.success, "{}", run.output);
    // The Contact is the account manager's extension at the Request-URI host.
    assert!(
        run.logs.contains("contact:  <sip:1001@127.0.0.1>")
            || run.logs.contains("contact: <sip:1001@127.0.0.1>"),
        "{}",
        run.logs
    );
    let pop = console.next_of("screen_pop").await;
    assert_eq!(pop["customer"]["account_manager"], "ann");
    app.stop().await;
}

#[tokio::test]
async fn sipp_retransmissions_pop_once_and_the_487_comes_again_before_the_ack() {
    if !sipp_available("sipp_retransmissions") {
        return;
    }
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut console = app.console(&ann).await;
    // -nr: SIPp neither retransmits nor swallows repeated responses, so the scenario sees each.
    let run = sipp(
        &app,
        "retransmissions.xml",
        "1001",
        "13900139000",
        1,
        &["-nr", "-d", "300"],
    )
    .await;
    assert!(run.success, "{}", run.output);
    let pop = console.next_json().await;
    assert_eq!(pop["type"], "screen_pop", "{pop}");
    let next = console.next_json().await;
    assert_eq!(
        next["type"], "call_update",
        "one pop only, then the end: {next}"
    );
    let counters = app.sip.as_ref().unwrap().counters();
    assert!(counters.retransmissions_absorbed() >= 1);
    assert!(
        counters.retransmissions_sent() >= 2,
        "the 180 again and the 487 on Timer G"
    );
    app.stop().await;
}

#[tokio::test]
async fn sipp_over_tcp_runs_the_same_flow() {
    if !sipp_available("sipp_over_tcp") {
        return;
    }
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut console = app.console(&ann).await;
    let run = sipp(
        &app,
        "invite_cancel.xml",
        "1001",
        "13800138000",
        3,
        &["-t", "t1", "-d", "300"],
    )
    .await;
    assert!(run.success, "{}", run.output);
    for _ in 0..3 {
        console.next_of("screen_pop").await;
    }
    let options = sipp(&app, "options.xml", "ringside", "1", 1, &["-t", "t1"]).await;
    assert!(options.success, "{}", options.output);
    app.stop().await;
}
