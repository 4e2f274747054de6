//! Asterisk AMI and FreeSWITCH event socket end to end, against fake peers that speak the real
//! protocols: pops from queue calls, withdrawal, abandoned calls, originate outcomes, hostile
//! byte streams, refused logins.

use std::time::Duration;

use ringside::auth::Role;
use ringside::ingress::ami::{AmiClient, AmiDeps};
use ringside::ingress::esl::EslClient;
use ringside::outbound::dialer::{DialOutcome, DialRequest, Dialer};
use ringside::settings::{AmiServer, EslServer};
use serde_json::{Value, json};

use crate::support::fake_pbx::{FakeAmi, FakeEsl, ami_event, ami_queue_call_ringing};
use crate::support::{TestApp, spawn_app_with};

fn ami_server(fake: &FakeAmi, secret: &str, md5: bool) -> AmiServer {
    let toml = format!(
        "host = \"127.0.0.1\"\nport = {}\nusername = \"ringside\"\nsecret = \"{secret}\"\nmd5 = {md5}\noriginate_channel = \"PJSIP/{{number}}\"\n",
        fake.addr.port()
    );
    config::Config::builder()
        .add_source(config::File::from_str(&toml, config::FileFormat::Toml))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap()
}

fn esl_server(fake: &FakeEsl, password: &str) -> EslServer {
    let toml = format!(
        "host = \"127.0.0.1\"\nport = {}\npassword = \"{password}\"\n",
        fake.addr.port()
    );
    config::Config::builder()
        .add_source(config::File::from_str(&toml, config::FileFormat::Toml))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap()
}

async fn wait_for(mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not met within 5 s");
}

async fn customer(app: &TestApp, name: &str, phone: &str) -> Value {
    app.post(
        "/api/v1/customers",
        &app.admin_token,
        &json!({"name": name, "phones": [phone]}),
    )
    .await
    .json()
    .await
    .unwrap()
}

#[tokio::test]
async fn an_asterisk_queue_call_pops_both_ringing_agents_and_is_withdrawn_for_the_one_who_did_not_answer()
 {
    let fake = FakeAmi::start("ringside", "s3cret").await;
    let server = ami_server(&fake, "s3cret", true);
    let app = spawn_app_with(move |s| s.ami.servers.push(server)).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let (_, bob) = app.agent("bob", Role::Agent, &["1002"]).await;
    customer(&app, "王建国", "+86 138 0013 8000").await;
    let mut a = app.console(&ann).await;
    let mut b = app.console(&bob).await;
    wait_for(|| {
        fake.script().logins == 1
            && fake
                .script()
                .actions
                .contains(&"CoreShowChannels".to_string())
    })
    .await;
    assert!(
        fake.script().actions.contains(&"Challenge".to_string()),
        "MD5 login used the challenge"
    );

    let linked = "1700000000.11";
    fake.push(&ami_queue_call_ringing(linked));
    let pa = a.next_of("screen_pop").await;
    let pb = b.next_of("screen_pop").await;
    assert_eq!(pa["call_id"], linked);
    assert_eq!(pa["customer"]["name"], "王建国");
    assert_eq!(pb["customer"]["name"], "王建国");
    // Bob answers: Asterisk reports the end of Ann's dial, Bob's connect and the bridge.
    fake.push(&ami_event(&[
        ("Event", "DialEnd"),
        ("Privilege", "call,all"),
        ("Channel", "PJSIP/trunk-00000001"),
        ("Uniqueid", linked),
        ("Linkedid", linked),
        ("DestChannel", "PJSIP/1001-00000002"),
        ("DestUniqueid", "1700000000.112"),
        ("DestLinkedid", linked),
        ("DialStatus", "CANCEL"),
    ]));
    fake.push(&ami_event(&[
        ("Event", "AgentConnect"),
        ("Privilege", "agent,all"),
        ("Channel", "PJSIP/trunk-00000001"),
        ("Uniqueid", linked),
        ("Linkedid", linked),
        ("DestChannel", "PJSIP/1002-00000003"),
        ("DestUniqueid", "1700000000.113"),
        ("Queue", "support"),
        ("Interface", "PJSIP/1002"),
        ("MemberName", "Agent 1002"),
        ("HoldTime", "4"),
        ("RingTime", "4"),
    ]));
    let withdrawn = a.next_json().await;
    assert!(
        withdrawn["type"] == "pop_withdrawn" || withdrawn["state"] == "answered_elsewhere",
        "Ann's pop goes away: {withdrawn}"
    );
    let ub = b.next_of("call_update").await;
    assert_eq!(ub["state"], "answered");
    fake.push(&ami_event(&[
        ("Event", "Hangup"),
        ("Privilege", "call,all"),
        ("Channel", "PJSIP/trunk-00000001"),
        ("Uniqueid", linked),
        ("Linkedid", linked),
        ("CallerIDNum", "13800138000"),
        ("Cause", "16"),
        ("Cause-txt", "Normal Clearing"),
    ]));
    let ended = b.next_of("call_update").await;
    assert_eq!(ended["state"], "ended");
    assert_eq!(ended["outcome"], "answered");
    app.stop().await;
}

#[tokio::test]
async fn a_call_abandoned_in_an_asterisk_queue_becomes_a_callback() {
    let fake = FakeAmi::start("ringside", "pw").await;
    let server = ami_server(&fake, "pw", false);
    let app = spawn_app_with(move |s| {
        s.ami.servers.push(server);
        s.outbound.enabled = false;
    })
    .await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let c = customer(&app, "Li Na", "13900139000").await;
    let mut a = app.console(&ann).await;
    wait_for(|| fake.script().logins == 1).await;
    let linked = "1700000001.5";
    fake.push(&ami_event(&[
        ("Event", "Newchannel"),
        ("Channel", "PJSIP/trunk-00000009"),
        ("CallerIDNum", "13900139000"),
        ("Exten", "800"),
        ("Uniqueid", linked),
        ("Linkedid", linked),
    ]));
    fake.push(&ami_event(&[
        ("Event", "AgentCalled"),
        ("Channel", "PJSIP/trunk-00000009"),
        ("CallerIDNum", "13900139000"),
        ("Uniqueid", linked),
        ("Linkedid", linked),
        ("DestChannel", "PJSIP/1001-0000000a"),
        ("DestUniqueid", "1700000001.6"),
        ("Queue", "support"),
        ("Interface", "PJSIP/1001"),
    ]));
    a.next_of("screen_pop").await;
    fake.push(&ami_event(&[
        ("Event", "AgentRingNoAnswer"),
        ("Channel", "PJSIP/trunk-00000009"),
        ("Uniqueid", linked),
        ("Linkedid", linked),
        ("Interface", "PJSIP/1001"),
        ("Queue", "support"),
    ]));
    assert_eq!(a.next_json().await["type"], "pop_withdrawn");
    fake.push(&ami_event(&[
        ("Event", "QueueCallerAbandon"),
        ("Channel", "PJSIP/trunk-00000009"),
        ("Uniqueid", linked),
        ("Linkedid", linked),
        ("Queue", "support"),
        ("Position", "1"),
        ("OriginalPosition", "1"),
        ("HoldTime", "35"),
    ]));
    fake.push(&ami_event(&[
        ("Event", "Hangup"),
        ("Channel", "PJSIP/trunk-00000009"),
        ("Uniqueid", linked),
        ("Linkedid", linked),
        ("Cause", "16"),
        ("Cause-txt", "Normal Clearing"),
    ]));
    let mut tasks = Value::Null;
    for _ in 0..100 {
        tasks = app
            .get(
                &format!("/api/v1/tasks?customer_id={}", c["id"]),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        if tasks.as_array().is_some_and(|t| !t.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(tasks[0]["kind"], "missed_call_callback", "{tasks}");
    let calls: Value = app
        .get(
            &format!("/api/v1/interactions?customer_id={}", c["id"]),
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(calls[0]["outcome"], "abandoned");
    app.stop().await;
}

fn request(attempt: i64, agent: Option<&str>) -> DialRequest {
    DialRequest {
        task_id: 70 + attempt,
        attempt_id: attempt,
        fence: 1,
        number_e164: "+8613800138000".into(),
        agent_extension: agent.map(String::from),
        caller_id: None,
        ring_timeout_secs: 5,
    }
}

fn row(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn after_a_reconnect_the_resync_finds_phones_ringing_and_callers_waiting_in_queues() {
    let fake = FakeAmi::start("ringside", "pw").await;
    let server = ami_server(&fake, "pw", false);
    let app = spawn_app_with(move |s| s.ami.servers.push(server)).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    customer(&app, "王建国", "+86 138 0013 8000").await;
    let waiting = customer(&app, "李娜", "+86 139 0013 9000").await;
    let mut a = app.console(&ann).await;
    wait_for(|| fake.script().actions.contains(&"QueueStatus".to_string())).await;

    // While the connection is down, a call starts ringing Ann's phone and another caller joins
    // the queue; ringside hears of neither but through the resync.
    {
        let mut s = fake.script();
        s.channels = vec![
            row(&[
                ("Channel", "PJSIP/trunk-00000020"),
                ("ChannelState", "6"),
                ("ChannelStateDesc", "Up"),
                ("CallerIDNum", "13800138000"),
                ("CallerIDName", "Wang"),
                ("ConnectedLineNum", "<unknown>"),
                ("ConnectedLineName", "<unknown>"),
                ("Context", "from-trunk"),
                ("Exten", "800"),
                ("Priority", "3"),
                ("Uniqueid", "1700000005.1"),
                ("Linkedid", "1700000005.1"),
                ("Application", "Queue"),
                ("ApplicationData", "support"),
                ("Duration", "00:00:09"),
                ("BridgeId", ""),
            ]),
            row(&[
                ("Channel", "PJSIP/1001-00000021"),
                ("ChannelState", "5"),
                ("ChannelStateDesc", "Ringing"),
                ("CallerIDNum", "1001"),
                ("CallerIDName", "Agent 1001"),
                ("ConnectedLineNum", "13800138000"),
                ("ConnectedLineName", "Wang"),
                ("Context", "from-queue"),
                ("Exten", "1001"),
                ("Priority", "1"),
                ("Uniqueid", "1700000005.2"),
                ("Linkedid", "1700000005.1"),
                ("Application", "AppQueue"),
                ("ApplicationData", "(Outgoing Line)"),
                ("Duration", "00:00:04"),
                ("BridgeId", ""),
            ]),
        ];
        s.queue_entries = vec![row(&[
            ("Queue", "support"),
            ("Position", "1"),
            ("Channel", "PJSIP/trunk-00000022"),
            ("Uniqueid", "1700000006.1"),
            ("CallerIDNum", "13900139000"),
            ("CallerIDName", "Li"),
            ("ConnectedLineNum", "<unknown>"),
            ("ConnectedLineName", "<unknown>"),
            ("Wait", "12"),
            ("Priority", "0"),
        ])];
    }
    fake.push_and_close("");
    let pop = a.next_of("screen_pop").await;
    assert_eq!(pop["call_id"], "1700000005.1");
    assert_eq!(
        pop["customer"]["name"], "王建国",
        "the caller, not the agent's own number"
    );
    assert_eq!(fake.script().logins, 2);

    let mut live = Value::Null;
    for _ in 0..100 {
        live = app
            .get("/api/v1/calls", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        if live.as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["call_id"] == "1700000006.1" && c["dialed"]["raw"] == "support")
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let queued = live
        .as_array()
        .and_then(|c| c.iter().find(|c| c["call_id"] == "1700000006.1"))
        .unwrap_or_else(|| panic!("the waiting caller is a live call: {live}"));
    assert_eq!(queued["caller"]["e164"], "+8613900139000");
    assert_eq!(queued["dialed"]["raw"], "support");
    assert_eq!(queued["ringing_agents"], json!([]));

    // The waiting caller gives up: a missed call and a callback for that customer.
    fake.push(&ami_event(&[
        ("Event", "QueueCallerAbandon"),
        ("Privilege", "agent,all"),
        ("Channel", "PJSIP/trunk-00000022"),
        ("Uniqueid", "1700000006.1"),
        ("Linkedid", "1700000006.1"),
        ("Queue", "support"),
        ("Position", "1"),
        ("OriginalPosition", "1"),
        ("HoldTime", "40"),
    ]));
    let mut tasks = Value::Null;
    for _ in 0..100 {
        tasks = app
            .get(
                &format!("/api/v1/tasks?customer_id={}", waiting["id"]),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        if tasks.as_array().is_some_and(|t| !t.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(tasks[0]["kind"], "missed_call_callback", "{tasks}");
    app.stop().await;
}

#[tokio::test]
async fn asterisk_originate_outcomes_come_back_answered_busy_and_failed() {
    let fake = FakeAmi::start("ringside", "pw").await;
    let app = spawn_app_with(|s| s.outbound.enabled = false).await;
    let deps = AmiDeps {
        calls: app.state.calls.clone(),
        settings: app.state.settings.clone(),
        directory: app.state.directory.clone(),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (client, _task) = AmiClient::start(ami_server(&fake, "pw", false), deps, shutdown.clone());
    wait_for(|| fake.script().logins == 1).await;
    fake.script()
        .outcomes
        .extend([("Success", "4"), ("Failure", "5"), ("Failure", "0")]);
    assert_eq!(
        client.place(request(1, Some("1001"))).await,
        DialOutcome::Answered
    );
    assert_eq!(
        client.place(request(2, Some("1001"))).await,
        DialOutcome::Busy
    );
    assert!(matches!(
        client.place(request(3, None)).await,
        DialOutcome::Failed { .. }
    ));
    let originates = fake.script().originates.clone();
    assert_eq!(originates.len(), 3);
    assert_eq!(
        originates[0].1, "PJSIP/1001",
        "the agent's phone rings first"
    );
    assert_eq!(originates[0].2, "+8613800138000");
    assert!(
        originates[0].3.contains(&"RINGSIDE_TASK=71".to_string())
            && originates[0].3.contains(&"RINGSIDE_ATTEMPT=1".to_string())
    );
    assert_eq!(originates[2].1, "PJSIP/+8613800138000");
    shutdown.cancel();
    app.stop().await;
}

#[tokio::test]
async fn the_ami_client_copes_with_dribbled_bytes_garbage_and_a_connection_cut_mid_message() {
    let fake = FakeAmi::start("ringside", "pw").await;
    let server = ami_server(&fake, "pw", false);
    let app = spawn_app_with(move |s| s.ami.servers.push(server)).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut a = app.console(&ann).await;
    wait_for(|| fake.script().logins == 1).await;
    fake.script().one_byte_at_a_time = true;
    fake.push("this line is garbage\r\n");
    let linked = "1700000002.1";
    fake.push(&ami_event(&[
        ("Event", "DialBegin"),
        ("Channel", "PJSIP/trunk-0000000c"),
        ("CallerIDNum", "13600136000"),
        ("Uniqueid", linked),
        ("Linkedid", linked),
        ("DestChannel", "PJSIP/1001-0000000d"),
        ("DestUniqueid", "1700000002.2"),
        ("DialString", "1001"),
    ]));
    assert_eq!(a.next_of("screen_pop").await["call_id"], linked);
    fake.script().one_byte_at_a_time = false;
    // Half a message, then the PBX goes away: the client reconnects and logs in again.
    fake.push_and_close("Event: Hangup\r\nChannel: PJSIP/trunk-0000000c\r\nUniq");
    wait_for(|| fake.script().logins >= 2).await;
    fake.push(&ami_event(&[
        ("Event", "Hangup"),
        ("Channel", "PJSIP/trunk-0000000c"),
        ("Uniqueid", linked),
        ("Linkedid", linked),
        ("Cause", "16"),
    ]));
    assert_eq!(a.next_of("call_update").await["state"], "ended");
    app.stop().await;
}

#[tokio::test]
async fn a_refused_ami_login_is_retried_slowly_not_in_a_tight_loop() {
    let fake = FakeAmi::start("ringside", "right").await;
    let app = spawn_app_with(|s| s.outbound.enabled = false).await;
    let deps = AmiDeps {
        calls: app.state.calls.clone(),
        settings: app.state.settings.clone(),
        directory: app.state.directory.clone(),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (client, _task) =
        AmiClient::start(ami_server(&fake, "wrong", false), deps, shutdown.clone());
    wait_for(|| fake.script().failed_logins == 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        fake.script().failed_logins,
        1,
        "no second attempt within seconds of a refusal"
    );
    assert_eq!(
        client
            .counters
            .login_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // Outbound calls asked for meanwhile fail clearly instead of hanging.
    let outcome = tokio::time::timeout(Duration::from_secs(30), client.place(request(9, None)))
        .await
        .unwrap();
    assert!(
        matches!(outcome, DialOutcome::Failed { .. } | DialOutcome::Unknown),
        "{outcome:?}"
    );
    shutdown.cancel();
    app.stop().await;
}

#[tokio::test]
async fn a_freeswitch_callcenter_call_pops_and_is_withdrawn_when_another_agent_answers() {
    let fake = FakeEsl::start("ClueCon").await;
    let server = esl_server(&fake, "ClueCon");
    let app = spawn_app_with(move |s| s.esl.servers.push(server)).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let (_, bob) = app.agent("bob", Role::Agent, &["1002"]).await;
    customer(&app, "Anna Schmidt", "+49 30 1234567").await;
    let mut a = app.console(&ann).await;
    let mut b = app.console(&bob).await;
    wait_for(|| {
        fake.script().auths == 1
            && fake
                .script()
                .commands
                .iter()
                .any(|c| c.starts_with("event json"))
    })
    .await;
    let member = "5f1c2b9a-7d3e-4a51-9c2b-0d6e8f1a2b3c";
    for agent in ["1001", "1002"] {
        fake.push_event(&[
            ("Event-Name", "CUSTOM"),
            ("Event-Subclass", "callcenter::info"),
            ("CC-Queue", "support@default"),
            ("CC-Action", "agent-offering"),
            ("CC-Agent", &format!("{agent}@default")),
            ("CC-Member-UUID", "m-1"),
            ("CC-Member-Session-UUID", member),
            ("CC-Member-CID-Name", "Anna"),
            ("CC-Member-CID-Number", "+49301234567"),
        ]);
    }
    assert_eq!(
        a.next_of("screen_pop").await["customer"]["name"],
        "Anna Schmidt"
    );
    assert_eq!(b.next_of("screen_pop").await["call_id"], member);
    fake.push_event(&[
        ("Event-Name", "CUSTOM"),
        ("Event-Subclass", "callcenter::info"),
        ("CC-Queue", "support@default"),
        ("CC-Action", "bridge-agent-start"),
        ("CC-Agent", "1002@default"),
        ("CC-Member-Session-UUID", member),
        ("CC-Member-CID-Number", "+49301234567"),
    ]);
    assert_eq!(
        a.next_of("call_update").await["state"],
        "answered_elsewhere"
    );
    assert_eq!(b.next_of("call_update").await["state"], "answered");
    fake.push_event(&[
        ("Event-Name", "CHANNEL_HANGUP_COMPLETE"),
        ("Unique-ID", member),
        ("Channel-Call-UUID", member),
        ("Call-Direction", "inbound"),
        ("Caller-Caller-ID-Number", "+49301234567"),
        ("Hangup-Cause", "NORMAL_CLEARING"),
    ]);
    assert_eq!(b.next_of("call_update").await["state"], "ended");
    app.stop().await;
}

#[tokio::test]
async fn freeswitch_bgapi_originate_outcomes_come_back() {
    let fake = FakeEsl::start("ClueCon").await;
    let app = spawn_app_with(|s| s.outbound.enabled = false).await;
    let deps = AmiDeps {
        calls: app.state.calls.clone(),
        settings: app.state.settings.clone(),
        directory: app.state.directory.clone(),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (client, _task) = EslClient::start(esl_server(&fake, "ClueCon"), deps, shutdown.clone());
    wait_for(|| fake.script().auths == 1).await;
    fake.script().outcomes.extend([
        "+OK 0d3c2b1a-0000-4000-8000-000000000001\n",
        "-ERR USER_BUSY\n",
        "-ERR NO_ANSWER\n",
    ]);
    assert_eq!(
        client.place(request(1, Some("1001"))).await,
        DialOutcome::Answered
    );
    assert_eq!(
        client.place(request(2, Some("1001"))).await,
        DialOutcome::Busy
    );
    assert_eq!(client.place(request(3, None)).await, DialOutcome::NoAnswer);
    let originates = fake.script().originates.clone();
    assert!(
        originates[0]
            .1
            .contains("user/1001 &bridge(sofia/gateway/default/+8613800138000)"),
        "{}",
        originates[0].1
    );
    assert!(originates[0].1.contains("ringside_task=71"));
    shutdown.cancel();
    // A refused password is reported and not hammered.
    let bad = FakeEsl::start("ClueCon").await;
    let deps = AmiDeps {
        calls: app.state.calls.clone(),
        settings: app.state.settings.clone(),
        directory: app.state.directory.clone(),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let (client, _task) = EslClient::start(esl_server(&bad, "wrong"), deps, stop.clone());
    wait_for(|| bad.script().failed_auths == 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(bad.script().failed_auths, 1);
    assert_eq!(
        client
            .counters
            .auth_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    stop.cancel();
    app.stop().await;
}

#[tokio::test]
async fn one_call_reported_by_the_webhook_and_by_asterisk_pops_once() {
    let fake = FakeAmi::start("ringside", "pw").await;
    let server = ami_server(&fake, "pw", false);
    let app = spawn_app_with(move |s| s.ami.servers.push(server)).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    customer(&app, "Zhao", "13700137001").await;
    let mut a = app.console(&ann).await;
    wait_for(|| fake.script().logins == 1).await;
    // The helpdesk's webhook and Asterisk both report the call, under their own ids.
    app.call_event(json!({"event": "ringing", "call_id": "helpdesk-77", "from": "13700137001", "agent": "1001"})).await;
    let linked = "1700000009.1";
    fake.push(&ami_event(&[
        ("Event", "DialBegin"),
        ("Channel", "PJSIP/trunk-00000011"),
        ("CallerIDNum", "13700137001"),
        ("Uniqueid", linked),
        ("Linkedid", linked),
        ("DestChannel", "PJSIP/1001-00000012"),
        ("DestUniqueid", "1700000009.2"),
        ("DialString", "1001"),
    ]));
    let pop = a.next_of("screen_pop").await;
    assert_eq!(pop["customer"]["name"], "Zhao");
    a.expect_silence(700).await;
    // Either source's answer reaches the one call.
    fake.push(&ami_event(&[
        ("Event", "DialEnd"),
        ("Channel", "PJSIP/trunk-00000011"),
        ("Uniqueid", linked),
        ("Linkedid", linked),
        ("DestChannel", "PJSIP/1001-00000012"),
        ("DestUniqueid", "1700000009.2"),
        ("DialStatus", "ANSWER"),
    ]));
    let update = a.next_of("call_update").await;
    assert_eq!(update["state"], "answered");
    assert_eq!(update["call_id"], pop["call_id"]);
    let live: Value = app
        .get("/api/v1/calls", &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        live.as_array().unwrap().len(),
        1,
        "one call, two sources: {live}"
    );
    app.stop().await;
}
