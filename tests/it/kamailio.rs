//! Kamailio end to end (Debian package `kamailio`): the shipped `deploy/kamailio/kamailio.cfg` runs
//! on a loopback port in front of SIPp phones (tests/sipp/kamailio_phone_*.xml, registered by the
//! test) and SIPp callers (tests/sipp/kamailio_caller_*.xml), with ringside in-process as the
//! extra branch (monitor mode) or as the redirect server (redirect mode). The agent's console is
//! connected over the real WebSocket. Where a person acts on what the console shows (the agent
//! picks up, the caller gives up), the test tells that SIPp with an INFO in the call, so nothing
//! depends on timing. Without `kamailio` or `sipp` these tests print that they were skipped,
//! unless `CI` is set: then they fail.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ringside::auth::Role;
use ringside::settings::SipMode;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::support::sip_client::UdpPeer;
use crate::support::{TestApp, spawn_sip_app};

/// The longest a SIPp run may take before the test fails.
const SIPP_DEADLINE: Duration = Duration::from_secs(60);
/// How long Kamailio may take to answer its first OPTIONS.
const KAMAILIO_START: Duration = Duration::from_secs(15);
/// Attempts at a free port before giving up (a port found free can be taken before it is used).
const PORT_ATTEMPTS: usize = 5;

/// `name` on PATH, or in the sbin directories where Debian puts `kamailio`.
fn binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Whether Kamailio and SIPp are installed; prints why not, and fails under CI.
fn tools_available(test: &str) -> bool {
    for (tool, package) in [("kamailio", "kamailio"), ("sipp", "sip-tester")] {
        if binary(tool).is_none() {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: {tool} is not installed (apt-get install {package}) and CI is set");
            }
            eprintln!("skipping {test}: {tool} is not installed (apt-get install {package})");
            return false;
        }
    }
    true
}

/// A loopback port that was free on UDP and TCP a moment ago.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let port = udp.local_addr().expect("local address").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Sends SIGTERM (or another signal) to a whole process group.
fn signal_group(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([signal, "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

/// Kamailio running the shipped configuration, in its own process group.
struct Kamailio {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kamailio {
    /// Starts Kamailio on a free loopback port with ringside at `ringside`, in monitor mode or
    /// (with `redirect`) in redirect mode, and waits until it answers OPTIONS.
    async fn start(ringside: SocketAddr, redirect: bool) -> Kamailio {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kamailio/kamailio.cfg");
        for _ in 0..PORT_ATTEMPTS {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let log = dir.path().join("kamailio.log");
            let mut command = Command::new(binary("kamailio").expect("kamailio"));
            command
                .arg("-f")
                .arg(&config)
                .args(["-A", "LISTEN_ADDR=127.0.0.1"])
                .args(["-A", &format!("LISTEN_PORT={port}")])
                .args(["-A", &format!("RINGSIDE=\"{ringside}\"")])
                // Foreground, log to stderr, two workers, little memory.
                .args(["-DD", "-E", "-n", "2", "-m", "32", "-M", "4", "-w"])
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log file"))
                .process_group(0);
            if redirect {
                command.args(["-A", "RINGSIDE_REDIRECT"]);
            }
            let child = command.spawn().expect("kamailio starts");
            let mut kamailio = Kamailio {
                child,
                addr: loopback(port),
                log,
                _dir: dir,
            };
            if kamailio.answers_options().await {
                return kamailio;
            }
            let log = kamailio.log_text();
            kamailio.stop().await;
            assert!(
                log.contains("Address already in use"),
                "kamailio did not start:\n{log}"
            );
        }
        panic!("kamailio found no free port in {PORT_ATTEMPTS} attempts");
    }

    /// Whether Kamailio answers an OPTIONS to itself with 200 before it exits or time runs out.
    async fn answers_options(&mut self) -> bool {
        let peer = UdpPeer::bind(self.addr).await;
        let deadline = Instant::now() + KAMAILIO_START;
        while Instant::now() < deadline {
            if self.child.try_wait().expect("kamailio status").is_some() {
                return false;
            }
            let id = unique();
            peer.send(&format!(
                "OPTIONS sip:{kamailio} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch=z9hG4bK{id}\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:probe@{local}>;tag={tag}\r\n\
                 To: <sip:{kamailio}>\r\n\
                 Call-ID: {id}@probe\r\n\
                 CSeq: 1 OPTIONS\r\n\
                 Content-Length: 0\r\n\r\n",
                kamailio = self.addr,
                local = peer.local(),
                tag = &id[..8],
            ))
            .await;
            if let Some(answer) = peer.recv(Duration::from_millis(200)).await {
                return answer.status_code() == Some(200);
            }
        }
        false
    }

    /// Registers `phone` as the phone of `extension`, with tests/sipp/kamailio_register.xml.
    async fn register(&self, extension: &str, phone: SocketAddr) {
        let phone = phone.to_string();
        let run = Sipp::start(
            "kamailio_register.xml",
            Some(self.addr),
            extension,
            None,
            &["-key", "phone", &phone],
        )
        .await
        .finish()
        .await;
        assert!(run.success, "register {extension}: {}", run.output);
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops Kamailio and its workers (SIGTERM to the group, SIGKILL if that is not enough).
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            signal_group(pid, "-TERM");
            if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
                .await
                .is_err()
            {
                signal_group(pid, "-KILL");
                let _ = self.child.wait().await;
            }
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // A test that failed half-way leaves no Kamailio workers behind.
        if let Ok(None) = self.child.try_wait()
            && let Some(pid) = self.child.id()
        {
            signal_group(pid, "-KILL");
        }
    }
}

/// One SIPp instance playing a phone (UAS) or a caller (UAC), bound to a known loopback port so
/// the test can signal it.
struct Sipp {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// How a SIPp run ended.
struct SippRun {
    success: bool,
    output: String,
}

impl Sipp {
    /// An agent's phone for `extension`, waiting for calls.
    async fn phone(scenario: &str, extension: &str) -> Sipp {
        Sipp::start(scenario, None, extension, None, &[]).await
    }

    /// A caller dialing `dialed` through Kamailio from the number `caller`.
    async fn caller(
        kamailio: &Kamailio,
        scenario: &str,
        dialed: &str,
        caller: &str,
        extra: &[&str],
    ) -> Sipp {
        Sipp::start(scenario, Some(kamailio.addr), dialed, Some(caller), extra).await
    }

    /// Runs `scenario` with `-s service`, against `remote` (a UAC) or waiting for calls (a UAS),
    /// with `caller` as field 0 of the `-inf` file.
    async fn start(
        scenario: &str,
        remote: Option<SocketAddr>,
        service: &str,
        caller: Option<&str>,
        extra: &[&str],
    ) -> Sipp {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(scenario);
        for _ in 0..PORT_ATTEMPTS {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let mut command = Command::new(binary("sipp").expect("sipp"));
            if let Some(remote) = remote {
                command.arg(remote.to_string());
            }
            if let Some(caller) = caller {
                let callers = dir.path().join("callers.csv");
                std::fs::write(&callers, format!("SEQUENTIAL\n{caller};\n")).expect("callers");
                command.arg("-inf").arg(callers);
            }
            command
                .arg("-sf")
                .arg(&path)
                .args(["-p", &port.to_string(), "-i", "127.0.0.1", "-s", service])
                .args(["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"])
                .args(["-trace_err", "-error_file"])
                .arg(dir.path().join("errors.log"))
                .args(["-trace_msg", "-message_file"])
                .arg(dir.path().join("messages.log"))
                .args(extra)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(dir.path().join("screen.log")).expect("screen"))
                .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("stderr"))
                .kill_on_drop(true);
            let mut child = command.spawn().expect("sipp starts");
            // Bound once the port can no longer be bound here; retried if SIPp exits first.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if child.try_wait().expect("sipp status").is_some() {
                    break;
                }
                if UdpSocket::bind(("127.0.0.1", port)).is_err() {
                    return Sipp {
                        child,
                        addr: loopback(port),
                        dir,
                    };
                }
                assert!(Instant::now() < deadline, "sipp did not bind {port}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        panic!("sipp found no free port in {PORT_ATTEMPTS} attempts");
    }

    /// Tells this SIPp to go on (the agent picks up, the caller gives up): an INFO in the call.
    /// Sent once this SIPp has the call: an INFO that reaches a phone before Kamailio's INVITE
    /// (the pop can come first, in redirect mode always) would make SIPp abort that Call-ID and
    /// drop the INVITE that follows.
    async fn signal(&self, call_id: &str) {
        let messages = self.dir.path().join("messages.log");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&messages).is_ok_and(|m| m.contains(call_id))
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let peer = UdpPeer::bind(self.addr).await;
        let id = unique();
        peer.send(&format!(
            "INFO sip:test@{sipp} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{id}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:test@{local}>;tag={tag}\r\n\
             To: <sip:test@{sipp}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 100 INFO\r\n\
             Content-Length: 0\r\n\r\n",
            sipp = self.addr,
            local = peer.local(),
            tag = &id[..8],
        ))
        .await;
    }

    async fn finish(mut self) -> SippRun {
        let status = tokio::time::timeout(SIPP_DEADLINE, self.child.wait())
            .await
            .expect("sipp finishes in time")
            .expect("sipp runs");
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        SippRun {
            success: status.success(),
            output: format!(
                "{}\n{}\n{}",
                read("stderr.log"),
                read("errors.log"),
                read("screen.log")
            ),
        }
    }
}

async fn customer(app: &TestApp, body: Value) -> Value {
    let response = app.post("/api/v1/customers", &app.admin_token, &body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// GETs `path` until the JSON list it returns has an entry, for at most 10 s.
async fn first_listed(app: &TestApp, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list: Value = app.get(path, &app.admin_token).await.json().await.unwrap();
        if let Some(first) = list.as_array().and_then(|items| items.first()) {
            return first.clone();
        }
        assert!(Instant::now() < deadline, "{path} stayed empty");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn kamailio_forks_to_the_phone_and_ringside_and_the_answer_withdraws_the_pop() {
    if !tools_available("kamailio_forks_to_the_phone_and_ringside") {
        return;
    }
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    customer(
        &app,
        json!({"name": "王建国", "tier": "A", "phones": ["+86 138 0013 8000"]}),
    )
    .await;
    let mut console = app.console(&ann).await;
    let kamailio = Kamailio::start(app.sip_addr(), false).await;
    let phone = Sipp::phone("kamailio_phone_answers.xml", "1001").await;
    kamailio.register("1001", phone.addr).await;

    let caller = Sipp::caller(
        &kamailio,
        "kamailio_caller_answered.xml",
        "1001",
        "13800138000",
        &["-d", "200"],
    )
    .await;
    // Ringside's branch pops the card while the phone rings.
    let pop = console.next_of("screen_pop").await;
    assert_eq!(pop["caller"]["e164"], "+8613800138000");
    assert_eq!(pop["customer"]["name"], "王建国");
    let call_id = pop["call_id"].as_str().expect("call_id");
    // Ann picks up her phone; Kamailio cancels ringside's branch with Reason: SIP;cause=200.
    phone.signal(call_id).await;
    let update = console.next_of("call_update").await;
    assert_eq!(update["call_id"], call_id);
    assert_eq!(update["state"], "answered_elsewhere", "{update}");

    let caller = caller.finish().await;
    assert!(caller.success, "caller: {}", caller.output);
    let phone = phone.finish().await;
    assert!(phone.success, "phone: {}", phone.output);
    kamailio.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn kamailio_caller_who_hangs_up_first_leaves_a_missed_call_and_a_callback_task() {
    if !tools_available("kamailio_caller_who_hangs_up_first") {
        return;
    }
    // The outbound engine would offer the callback at once; this test only looks for it.
    let app = spawn_sip_app(|settings| settings.outbound.enabled = false).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let zhou = customer(&app, json!({"name": "Zhou", "phones": ["13700137000"]})).await;
    let mut console = app.console(&ann).await;
    let kamailio = Kamailio::start(app.sip_addr(), false).await;
    let phone = Sipp::phone("kamailio_phone_rings.xml", "1001").await;
    kamailio.register("1001", phone.addr).await;

    let caller = Sipp::caller(
        &kamailio,
        "kamailio_caller_hangs_up.xml",
        "1001",
        "13700137000",
        &[],
    )
    .await;
    let pop = console.next_of("screen_pop").await;
    assert_eq!(pop["customer"]["name"], "Zhou");
    let call_id = pop["call_id"].as_str().expect("call_id");
    // The caller gives up; Kamailio cancels both branches with plain CANCELs.
    caller.signal(call_id).await;
    let update = console.next_of("call_update").await;
    assert_eq!(update["call_id"], call_id);
    assert_eq!(update["state"], "ended", "{update}");
    assert_eq!(update["outcome"], "missed", "{update}");

    let caller = caller.finish().await;
    assert!(caller.success, "caller: {}", caller.output);
    let phone = phone.finish().await;
    assert!(phone.success, "phone: {}", phone.output);
    let recorded = first_listed(
        &app,
        &format!("/api/v1/interactions?customer_id={}", zhou["id"]),
    )
    .await;
    assert_eq!(recorded["call_id"], call_id);
    assert_eq!(recorded["outcome"], "missed", "{recorded}");
    let task = first_listed(
        &app,
        &format!(
            "/api/v1/tasks?customer_id={}&kind=missed_call_callback",
            zhou["id"]
        ),
    )
    .await;
    assert_eq!(task["state"], "pending", "{task}");
    kamailio.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn kamailio_follows_ringsides_redirect_to_the_account_managers_phone() {
    if !tools_available("kamailio_follows_ringsides_redirect") {
        return;
    }
    let app = spawn_sip_app(|settings| settings.sip.mode = SipMode::Redirect).await;
    app.agent("ann", Role::Agent, &["1001"]).await;
    let (_, bob) = app.agent("bob", Role::Agent, &["1002"]).await;
    customer(
        &app,
        json!({"name": "王建国", "key_account": true, "account_manager": "bob",
               "phones": ["+86 138 0013 8000"]}),
    )
    .await;
    let mut console = app.console(&bob).await;
    let kamailio = Kamailio::start(app.sip_addr(), true).await;
    let phone = Sipp::phone("kamailio_phone_answers.xml", "1002").await;
    kamailio.register("1002", phone.addr).await;

    // The hotline number is nobody's phone: only ringside's 302 can make bob's phone ring.
    let caller = Sipp::caller(
        &kamailio,
        "kamailio_caller_answered.xml",
        "800",
        "13800138000",
        &["-d", "200"],
    )
    .await;
    let pop = console.next_of("screen_pop").await;
    assert_eq!(pop["customer"]["account_manager"], "bob");
    phone
        .signal(pop["call_id"].as_str().expect("call_id"))
        .await;

    let caller = caller.finish().await;
    assert!(caller.success, "caller: {}", caller.output);
    let phone = phone.finish().await;
    assert!(phone.success, "bob's phone: {}", phone.output);
    kamailio.stop().await;
    app.stop().await;
}
