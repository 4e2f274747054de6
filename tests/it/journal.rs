//! The call-event journal under batching: one transaction takes many events and the marks of the
//! events processed meanwhile, each event keeps its own id, and a submitter hears back only once
//! its event is in a committed batch.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use ringside::auth::Role;
use ringside::settings::DatabaseSettings;
use ringside::storage::Storage;
use serde_json::json;

use crate::support::{TestDb, spawn_app_with};

async fn storage(db: &TestDb) -> Storage {
    let storage = Storage::connect(&DatabaseSettings {
        url: db.url.clone(),
        max_connections: 2,
        acquire_timeout_ms: 10_000,
    })
    .await
    .expect("connect");
    storage.migrate().await.expect("migrate");
    storage
}

#[tokio::test]
async fn a_journal_batch_gives_each_event_its_own_id_and_marks_the_processed_ones() {
    let db = TestDb::new().await;
    let storage = storage(&db).await;
    // More rows than one INSERT statement takes, so the batch spans statements.
    let bodies: Vec<String> = (0..1_200).map(|i| format!("{{\"n\":{i}}}")).collect();
    let rows: Vec<(&str, &str)> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| (if i % 2 == 0 { "sip" } else { "webhook" }, body.as_str()))
        .collect();
    let ids = storage
        .journal_batch(&rows, &[], &[])
        .await
        .expect("journal");
    assert_eq!(ids.len(), rows.len());
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids ascend");

    let journaled: HashMap<i64, (String, String)> = storage
        .unprocessed_events(10_000)
        .await
        .expect("read back")
        .into_iter()
        .map(|event| (event.id, (event.source, event.body)))
        .collect();
    for (id, (source, body)) in ids.iter().zip(&rows) {
        assert_eq!(
            journaled.get(id),
            Some(&(source.to_string(), body.to_string())),
            "event {id}"
        );
    }

    // The next batch marks the first 700 processed while it journals one more.
    let more = storage
        .journal_batch(&[("ami", "{\"n\":\"late\"}")], &ids[..700], &[])
        .await
        .expect("journal and mark");
    let left: Vec<i64> = storage
        .unprocessed_events(10_000)
        .await
        .expect("read back")
        .into_iter()
        .map(|event| event.id)
        .collect();
    let expected: Vec<i64> = ids[700..].iter().chain(&more).copied().collect();
    assert_eq!(left, expected);

    // Marks alone are a batch too.
    storage
        .journal_batch(&[], &expected, &[])
        .await
        .expect("mark");
    assert!(storage.unprocessed_events(10).await.unwrap().is_empty());
    storage.close().await;
}

#[tokio::test]
async fn concurrent_webhook_events_are_each_acknowledged_once_journaled_and_all_pop() {
    const CALLS: usize = 300;
    let app = spawn_app_with(|settings| settings.console.queue_capacity = 2 * CALLS).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut console = app.console(&ann).await;

    let answers = join_all((0..CALLS).map(|i| {
        app.call_event(json!({
            "event": "ringing", "call_id": format!("batch-{i}"),
            "from": format!("1390013{i:04}"), "to": "1001", "agent": "1001"
        }))
    }))
    .await;
    for answer in answers {
        assert_eq!(answer.status(), 202);
    }
    // Acknowledged means journaled: every event is in the journal by now.
    let journaled: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM call_events")
        .fetch_one(app.state.storage.pool())
        .await
        .expect("count");
    assert_eq!(journaled as usize, CALLS);
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..CALLS {
        let pop = console.next_of("screen_pop").await;
        seen.push(pop["call_id"].as_str().unwrap_or_default().to_owned());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), CALLS, "one pop per call");

    // And each is marked processed soon after, without another event to carry the marks.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app
        .state
        .storage
        .unprocessed_events(1)
        .await
        .expect("journal")
        .is_empty()
    {
        assert!(Instant::now() < deadline, "events left unmarked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn commits_leave_the_write_ahead_log_to_the_checkpoint_which_copies_all_of_it() {
    let db = TestDb::new().await;
    let storage = storage(&db).await;
    let events: Vec<(String, String)> = (0..200)
        .map(|n| ("webhook".to_string(), format!("{{\"n\":{n}}}")))
        .collect();
    let rows: Vec<(&str, &str)> = events
        .iter()
        .map(|(source, body)| (source.as_str(), body.as_str()))
        .collect();
    for _ in 0..20 {
        storage.journal_batch(&rows, &[], &[]).await.expect("batch");
    }
    let (log, copied) = storage.checkpoint_wal().await.expect("checkpoint");
    match storage.kind() {
        ringside::storage::DbKind::Sqlite => {
            assert!(log > 0, "the commits were left in the log");
            assert_eq!(
                copied, log,
                "a passive checkpoint with nobody reading copies it all"
            );
        }
        ringside::storage::DbKind::Postgres => assert_eq!((log, copied), (0, 0)),
    }
}
