//! Outbound task queue throughput: enqueues/s, claims+completions/s and lateness (how long after
//! its `not_before` a task is claimed), through ringside's storage layer, side by side with a bare
//! claim loop (`UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)`) on the same database.
//!
//! `cargo bench --bench tasks` (SQLite in a temp dir), or with
//! `RINGSIDE_BENCH_DATABASE=postgres://postgres@127.0.0.1:5432/test` (a fresh database is created
//! there and dropped). `RINGSIDE_BENCH_TASKS` sets the task count (default 20000).

use std::time::{Duration, Instant};

use ringside::settings::DatabaseSettings;
use ringside::storage::tasks::NewTask;
use ringside::storage::{DbKind, Storage, now_ms};

const WORKERS: usize = 4;
const BATCH: i64 = 10;

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn open() -> (
    Storage,
    Option<(Storage, String)>,
    Option<tempfile::TempDir>,
) {
    match std::env::var("RINGSIDE_BENCH_DATABASE") {
        Ok(url) if url.starts_with("postgres") => {
            let admin = Storage::connect(&DatabaseSettings {
                url: url.clone(),
                max_connections: 1,
                acquire_timeout_ms: 10_000,
            })
            .await
            .expect("postgres");
            let name = format!("ringside_bench_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(admin.pool())
                .await
                .expect("create db");
            let (prefix, _) = url.rsplit_once('/').expect("url with a database");
            let s = Storage::connect(&DatabaseSettings {
                url: format!("{prefix}/{name}"),
                max_connections: 16,
                acquire_timeout_ms: 30_000,
            })
            .await
            .expect("bench db");
            s.migrate().await.expect("migrate");
            (s, Some((admin, name)), None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            let s = Storage::connect(&DatabaseSettings {
                url,
                max_connections: 8,
                acquire_timeout_ms: 30_000,
            })
            .await
            .expect("sqlite");
            s.migrate().await.expect("migrate");
            (s, None, Some(dir))
        }
    }
}

/// Enqueues `n` tasks due over `due_over_ms` from a start far enough ahead that enqueueing is over
/// before the first falls due (so lateness measures the queue, not the enqueueing).
async fn enqueue(s: &Storage, n: usize, due_over_ms: i64) -> f64 {
    let start = now_ms() + if due_over_ms > 0 { 1000 + n as i64 } else { 0 };
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for w in 0..8 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            for i in (w..n).step_by(8) {
                let due = start + (i as i64 * due_over_ms) / n as i64;
                let t = NewTask {
                    kind: "campaign".into(),
                    number_e164: format!("+86138{:08}", i),
                    not_before: due,
                    priority: (i % 3) as i64,
                    max_attempts: 3,
                    idempotency_key: Some(format!("bench:{due}:{i}")),
                    ..Default::default()
                };
                loop {
                    match s.create_task(&t).await {
                        Ok(_) => break,
                        Err(ringside::storage::StorageError::Unavailable(_)) => {
                            tokio::task::yield_now().await
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("enqueuer");
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

/// Workers claim due tasks and complete them; returns (claims+completions/s, lateness ms sorted).
async fn drain(s: &Storage, n: usize) -> (f64, Vec<i64>) {
    let t0 = Instant::now();
    let claimed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut first_claim: Option<Instant> = None;
    let mut handles = Vec::new();
    for _ in 0..WORKERS {
        let s = s.clone();
        let claimed = claimed.clone();
        handles.push(tokio::spawn(async move {
            use std::sync::atomic::Ordering;
            let mut late = Vec::new();
            let mut first = None;
            let deadline = Instant::now() + Duration::from_secs(300);
            while claimed.load(Ordering::Relaxed) < n && Instant::now() < deadline {
                let now = now_ms();
                match s.claim_due(now, BATCH, 60_000).await {
                    Ok(batch) if batch.is_empty() => {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Ok(batch) => {
                        first.get_or_insert_with(Instant::now);
                        claimed.fetch_add(batch.len(), Ordering::Relaxed);
                        for t in batch {
                            late.push((now - t.not_before).max(0));
                            let _ = s
                                .close_task(
                                    t.id,
                                    Some(t.fence),
                                    "done",
                                    "answered_done",
                                    None,
                                    None,
                                )
                                .await;
                        }
                    }
                    Err(_) => tokio::task::yield_now().await,
                }
            }
            (late, first)
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        let (late, first) = h.await.expect("worker");
        all.extend(late);
        first_claim = match (first_claim, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let secs = first_claim
        .map(|f| f.elapsed())
        .unwrap_or_else(|| t0.elapsed())
        .as_secs_f64();
    all.sort_unstable();
    assert_eq!(all.len(), n, "every task claimed exactly once");
    (n as f64 / secs.max(0.001), all)
}

/// The same work with a bare table and the textbook claim statement, for comparison.
async fn bare_loop(s: &Storage, n: usize, due_over_ms: i64) -> (f64, f64, Vec<i64>) {
    let pool = s.pool().clone();
    let pg = s.kind() == DbKind::Postgres;
    let id_col = if pg {
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    } else {
        "INTEGER PRIMARY KEY"
    };
    sqlx::query(&format!("CREATE TABLE bench_jobs (id {id_col}, due BIGINT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', fence BIGINT NOT NULL DEFAULT 0)"))
        .execute(&pool)
        .await
        .expect("bench table");
    sqlx::query("CREATE INDEX bench_jobs_due ON bench_jobs (state, due)")
        .execute(&pool)
        .await
        .expect("index");
    let start = now_ms() + if due_over_ms > 0 { 1000 + n as i64 } else { 0 };
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for w in 0..8 {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            for i in (w..n).step_by(8) {
                let due = start + (i as i64 * due_over_ms) / n as i64;
                while sqlx::query("INSERT INTO bench_jobs (due) VALUES ($1)")
                    .bind(due)
                    .execute(&pool)
                    .await
                    .is_err()
                {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("enqueuer");
    }
    let enq = n as f64 / t0.elapsed().as_secs_f64();
    let lock = if pg { " FOR UPDATE SKIP LOCKED" } else { "" };
    let claim = format!(
        "UPDATE bench_jobs SET state = 'claimed', fence = fence + 1 WHERE id IN (SELECT id FROM bench_jobs WHERE state = 'pending' AND due <= $1 ORDER BY due LIMIT $2{lock}) AND state = 'pending' RETURNING id, due"
    );
    let t0 = Instant::now();
    let claimed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..WORKERS {
        let pool = pool.clone();
        let claim = claim.clone();
        let claimed = claimed.clone();
        handles.push(tokio::spawn(async move {
            use sqlx::Row;
            let mut late = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(300);
            while claimed.load(std::sync::atomic::Ordering::Relaxed) < n
                && Instant::now() < deadline
            {
                let now = now_ms();
                match sqlx::query(&claim)
                    .bind(now)
                    .bind(BATCH)
                    .fetch_all(&pool)
                    .await
                {
                    Ok(rows) if rows.is_empty() => {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Ok(rows) => {
                        claimed.fetch_add(rows.len(), std::sync::atomic::Ordering::Relaxed);
                        for r in rows {
                            let id: i64 = r.try_get("id").unwrap_or(0);
                            let due: i64 = r.try_get("due").unwrap_or(now);
                            late.push((now - due).max(0));
                            let _ =
                                sqlx::query("UPDATE bench_jobs SET state = 'done' WHERE id = $1")
                                    .bind(id)
                                    .execute(&pool)
                                    .await;
                        }
                    }
                    Err(_) => tokio::task::yield_now().await,
                }
            }
            late
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("worker"));
    }
    let secs = t0.elapsed().as_secs_f64();
    all.sort_unstable();
    (enq, n as f64 / secs.max(0.001), all)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and gets a quick smoke run
    // that proves the program still works without taking the test suite's time.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("RINGSIDE_BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 200 } else { 20_000 });
    let spread_ms: i64 = if smoke { 1_000 } else { 10_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (s, pg, _dir) = open().await;
        let db = if s.kind() == DbKind::Postgres { "PostgreSQL" } else { "SQLite" };
        println!("task queue on {db}: {n} tasks, {WORKERS} workers claiming {BATCH} at a time");
        // Throughput: everything due at once.
        let enq = enqueue(&s, n, 0).await;
        let (done, _) = drain(&s, n).await;
        // Lateness: a quarter as many tasks falling due over 10 s (1 s in a smoke run), claimed as they
        // fall due.
        let paced = n / 4;
        let (s2, pg2, _dir2) = open().await;
        enqueue(&s2, paced, spread_ms).await;
        let (_, late) = drain(&s2, paced).await;
        let (b_enq, b_done, _) = bare_loop(&s, n, 0).await;
        let (_, _, b_late) = {
            let (s3, pg3, _dir3) = open().await;
            let r = bare_loop(&s3, paced, spread_ms).await;
            if let Some((admin, name)) = pg3 {
                s3.close().await;
                let _ = sqlx::query(&format!("DROP DATABASE {name}")).execute(admin.pool()).await;
            }
            r
        };
        println!("| measure | ringside | bare claim loop | ratio |");
        println!("|---|---|---|---|");
        println!("| enqueues/s | {enq:.0} | {b_enq:.0} | {:.2} |", enq / b_enq);
        println!("| claims+completions/s | {done:.0} | {b_done:.0} | {:.2} |", done / b_done);
        println!(
            "| lateness p50 / p99 / max (ms), {} tasks/s falling due | {} / {} / {} | {} / {} / {} | |",
            paced as i64 * 1000 / spread_ms,
            pct(&late, 0.5),
            pct(&late, 0.99),
            late.last().copied().unwrap_or(0),
            pct(&b_late, 0.5),
            pct(&b_late, 0.99),
            b_late.last().copied().unwrap_or(0)
        );
        for (store, drop) in [(s, pg), (s2, pg2)] {
            store.close().await;
            if let Some((admin, name)) = drop {
                let _ = sqlx::query(&format!("DROP DATABASE {name}")).execute(admin.pool()).await;
            }
        }
    });
}
