//! The real `ringside` executable, started as a user would.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::TestDb;

fn ringside() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringside"));
    c.env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("RINGSIDE__") {
            c.env_remove(k);
        }
    }
    c
}

fn write_config(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("ringside.toml");
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn unknown_config_key_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[http]\nlisten = \"127.0.0.1:0\"\nlisen_typo = 1\n",
    );
    let out = ringside()
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lisen_typo"), "{err}");
}

#[test]
fn bad_config_value_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[numbers]\ndefault_country = \"XX\"\n");
    let out = ringside()
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("numbers.default_country"));

    let out = ringside()
        .args(["check-config", "--config"])
        .arg(&cfg)
        .env("RINGSIDE__NUMBERS__DEFAULT_COUNTRY", "DE")
        .env("RINGSIDE__HTTP__LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http.listen"));
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[numbers]\ndefault_country = \"XX\"\n");
    let out = ringside()
        .args(["check-config", "--config"])
        .arg(&cfg)
        .env("RINGSIDE__NUMBERS__DEFAULT_COUNTRY", "DE")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_usage_exits_2_and_missing_config_file_exits_2() {
    assert_eq!(
        ringside().arg("frobnicate").output().unwrap().status.code(),
        Some(2)
    );
    assert_eq!(
        ringside()
            .args(["agent", "add", "x", "--role", "king"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
    let out = ringside()
        .args(["migrate", "--config", "/nonexistent/ringside.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn agent_add_prints_a_token_the_daemon_accepts() {
    let db = TestDb::new().await;
    let out = ringside()
        .args([
            "agent",
            "add",
            "alice",
            "--role",
            "agent",
            "--extension",
            "1001",
            "--extension",
            "1002",
        ])
        .env("RINGSIDE__DATABASE__URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("rs_"), "{token}");

    let mut daemon = Daemon::start(&db.url, &[]);
    let me: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{}/api/v1/agents/me", daemon.addr))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "alice");
    assert_eq!(me["extensions"], serde_json::json!(["1001", "1002"]));
    daemon.stop_gracefully();
}

#[tokio::test]
async fn serve_on_port_0_logs_its_address_answers_healthz_and_stops_on_sigterm() {
    let db = TestDb::new().await;
    let mut daemon = Daemon::start(&db.url, &[]);
    let r = reqwest::get(format!("http://{}/healthz", daemon.addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let code = daemon.stop_gracefully();
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn serve_demo_loads_customers_and_prints_the_demo_token() {
    let db = TestDb::new().await;
    let mut daemon = Daemon::start(&db.url, &["--demo"]);
    let customers: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v1/customers?phone=13800138000",
            daemon.addr
        ))
        .bearer_auth("demo-agent-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(customers[0]["tier"], "A", "{customers}");
    assert!(
        daemon.stdout.contains("demo-agent-token"),
        "{}",
        daemon.stdout
    );
    daemon.stop_gracefully();
}

pub struct Daemon {
    child: std::process::Child,
    pub addr: String,
    pub stdout: String,
}

impl Daemon {
    /// Starts `ringside serve` on port 0 and waits for the logged address.
    pub fn start(db_url: &str, extra: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_config(dir.path(), "[sip]\nenabled = false\n");
        let mut child = ringside()
            .arg("serve")
            .args(extra)
            .arg("--config")
            .arg(&cfg)
            .env("RINGSIDE__DATABASE__URL", db_url)
            .env("RINGSIDE__HTTP__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(pos) = line.find("http_addr=") {
                    let addr = line[pos + 10..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send(addr);
                }
            }
        });
        let (out_tx, out_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = out_tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = rx
            .recv_timeout(deadline - Instant::now())
            .expect("daemon logged its http address");
        std::thread::sleep(Duration::from_millis(50));
        let stdout: Vec<String> = out_rx.try_iter().collect();
        std::mem::forget(dir);
        Daemon {
            child,
            addr,
            stdout: stdout.join("\n"),
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop_gracefully(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
