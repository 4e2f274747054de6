//! Crash safety of outbound dialing: the real daemon is killed with SIGKILL again and again while
//! it dials 1,000 campaign tasks through a fake Asterisk; the fake PBX's own count of `Originate`
//! actions proves no task was dialed twice, and the database proves none was lost.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringside::auth::{Role, hash_token, new_token};
use ringside::settings::DatabaseSettings;
use ringside::storage::tasks::{CampaignDraft, NewTask, TaskFilter};
use ringside::storage::{Storage, now_ms};

use crate::support::TestDb;
use crate::support::fake_pbx::FakeAmi;

const TASKS: usize = 1000;
const AGENTS: usize = 10;

fn start_daemon(config: &std::path::Path, db_url: &str) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringside"))
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .env("RINGSIDE__DATABASE__URL", db_url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ringside");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let debug = std::env::var("RINGSIDE_TEST_LOG").is_ok();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if debug {
                eprintln!("daemon: {line}");
            }
            if let Some(pos) = line.find("http_addr=") {
                let _ = tx.send(
                    line[pos + 10..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                );
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("daemon logged its address");
    (child, addr)
}

/// Consoles that accept every outbound result at once, as agents would after each call.
async fn agents_online(addr: &str, tokens: &[String]) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    for token in tokens {
        let url = format!("ws://{addr}/ws?token={token}");
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else {
            continue;
        };
        handles.push(tokio::spawn(async move {
            use futures_util::{SinkExt, StreamExt};
            while let Some(Ok(msg)) = ws.next().await {
                let tokio_tungstenite::tungstenite::Message::Text(text) = msg else { continue };
                let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                if v["type"] == "task_update" && v["state"] == "connected" {
                    let reply = serde_json::json!({"type": "task_result", "task_id": v["task_id"], "outcome": "answered_done"});
                    if ws.send(tokio_tungstenite::tungstenite::Message::Text(reply.to_string().into())).await.is_err() {
                        break;
                    }
                }
            }
        }));
    }
    handles
}

#[tokio::test]
async fn killing_the_daemon_repeatedly_never_dials_a_task_twice_and_loses_none() {
    let fake = FakeAmi::start("ringside", "pw").await;
    let db = TestDb::new().await;
    let storage = Storage::connect(&DatabaseSettings {
        url: db.url.clone(),
        max_connections: 4,
        acquire_timeout_ms: 30_000,
    })
    .await
    .unwrap();
    storage.migrate().await.unwrap();
    let mut tokens = Vec::new();
    for i in 0..AGENTS {
        let token = new_token();
        storage
            .create_agent(
                &format!("a{i}"),
                Role::Agent,
                &[format!("{}", 2001 + i)],
                &hash_token(&token),
                None,
            )
            .await
            .unwrap();
        tokens.push(token);
    }
    let campaign = storage
        .create_campaign(
            &CampaignDraft {
                name: "crash".into(),
                kind: "custom".into(),
                filter: serde_json::json!({}),
                mode: "progressive".into(),
                max_concurrent: AGENTS as i64,
                calls_per_minute: 100_000,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    storage
        .set_campaign_state(campaign.id, "running")
        .await
        .unwrap();
    for i in 0..TASKS {
        storage
            .create_task(&NewTask {
                kind: "campaign".into(),
                number_e164: format!("+8613{:09}", i),
                campaign_id: Some(campaign.id),
                not_before: now_ms() - 1000,
                max_attempts: 5,
                idempotency_key: Some(format!("crash:{i}")),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    // Every call is busy: retried only an hour later, so within the test a second Originate for a
    // task could only come from a blind redial.
    fake.script()
        .outcomes
        .extend((0..TASKS * 2).map(|_| ("Failure", "5")));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ringside.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:0\"\nrate_limit_per_address = 0\nrate_limit_per_token = 0\n[sip]\nenabled = false\n\
             [outbound]\ndialer = \"ami\"\nwindow_start = \"00:00\"\nwindow_end = \"23:59\"\nretry_busy_secs = 3600\n\
             unknown_guard_secs = 3600\noffer_timeout_secs = 5\ndial_lease_secs = 5\nmax_attempts_per_day = 5\nreturn_visits = []\nbirthday_tiers = []\n\
             [[ami.servers]]\nhost = \"127.0.0.1\"\nport = {}\nusername = \"ringside\"\nsecret = \"pw\"\noriginate_channel = \"PJSIP/{{number}}\"\n",
            fake.addr.port()
        ),
    )
    .unwrap();

    let deadline = Instant::now()
        + Duration::from_secs(
            std::env::var("RINGSIDE_CRASH_SECS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(150),
        );
    let mut kills = 0;
    let attempted = || async {
        storage
            .list_tasks(
                &TaskFilter {
                    campaign_id: Some(campaign.id),
                    ..Default::default()
                },
                5000,
                0,
            )
            .await
            .unwrap()
            .iter()
            .filter(|t| t.attempts > 0)
            .count()
    };
    loop {
        let (mut child, addr) = start_daemon(&config, &db.url);
        let consoles = agents_online(&addr, &tokens).await;
        let done_before = attempted().await;
        let finished = done_before >= TASKS;
        let run_for = if finished {
            1500
        } else {
            1200 + (kills * 337 % 1500) as u64
        };
        tokio::time::sleep(Duration::from_millis(run_for)).await;
        if finished || Instant::now() > deadline {
            // A last, clean stop.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
            for c in consoles {
                c.abort();
            }
            break;
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        kills += 1;
        for c in consoles {
            c.abort();
        }
    }

    // The PBX's own count: no task was ever dialed twice.
    let mut per_task: HashMap<String, usize> = HashMap::new();
    for (_, _, _, vars) in fake.script().originates.iter() {
        let task = vars
            .iter()
            .find_map(|v| v.strip_prefix("RINGSIDE_TASK="))
            .unwrap_or("?")
            .to_string();
        *per_task.entry(task).or_default() += 1;
    }
    let twice: Vec<_> = per_task.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "tasks dialed twice: {twice:?}");
    // Nothing lost: every task is still in the database, each dial has its attempt row.
    let tasks = storage
        .list_tasks(
            &TaskFilter {
                campaign_id: Some(campaign.id),
                ..Default::default()
            },
            5000,
            0,
        )
        .await
        .unwrap();
    assert_eq!(tasks.len(), TASKS);
    for t in &tasks {
        let dialed = per_task.get(&t.id.to_string()).copied().unwrap_or(0);
        let attempts = storage.attempts_of(t.id).await.unwrap();
        assert!(
            attempts.len() >= dialed,
            "task {} dialed {dialed} times with {} attempt rows",
            t.id,
            attempts.len()
        );
        assert!(
            attempts.len() <= 1,
            "task {} has {} attempts within the guard time",
            t.id,
            attempts.len()
        );
    }
    let dialed = per_task.len();
    let attempted = tasks.iter().filter(|t| t.attempts > 0).count();
    println!(
        "{kills} SIGKILLs, {dialed} of {TASKS} tasks dialed once, none twice; {attempted} attempted"
    );
    assert!(kills >= 5, "the daemon was killed {kills} times");
    // Every task was taken up: dialed once, or (killed between the attempt row and the Originate)
    // held as unknown rather than dialed blindly.
    assert_eq!(attempted, TASKS, "tasks never attempted were lost");
}
