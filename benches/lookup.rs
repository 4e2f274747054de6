//! Lookup by phone on a large customer base: lookups/s and latency percentiles through the storage
//! layer, the calls `GET /api/v1/customers?phone=` and the screen pop's matcher make, side by side
//! with a bare indexed `SELECT ... WHERE e164 = $1` through sqlx's own driver on the same database.
//!
//! The customers are generated and imported as in the `import` bench (1,000,000 by default, with
//! messy numbers); lookups are for random customers' mobile or landline numbers as people type
//! them, so some miss (the ~1% of customers whose number could not be made valid). Three paths:
//!
//! - `find_phone_hits`: the storage call for an already normalized number (the matcher's first
//!   step): the phone rows holding that E.164 (else national, else trailing digits).
//! - `normalize + hits + customers`: what the API does for `?phone=`: normalize the raw text,
//!   find the hits, load those customers with their tags and phones.
//! - `bare SELECT`: `SELECT customer_id FROM customer_phones WHERE e164 = $1` on a native
//!   `SqlitePool`/`PgPool` with the same number of connections: the floor.
//!
//! `cargo bench --bench lookup` (SQLite in a temp dir), or with
//! `RINGSIDE_BENCH_DATABASE=postgres://postgres@127.0.0.1:5432/test`. `RINGSIDE_BENCH_ROWS` sets
//! the customer count (default 1,000,000), `RINGSIDE_BENCH_LOOKUPS` the lookups per measurement
//! (default 100,000). Run without `--bench` (as `cargo test --all-targets` does) it makes a quick
//! smoke run of 2,000 customers and 2,000 lookups.

#[allow(dead_code)]
#[path = "import.rs"]
mod import_bench;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringside::phone::{self, Normalized};
use ringside::settings::Settings;
use ringside::storage::{DbKind, Storage};

use import_bench::{
    BenchDb, generate_and_import, landline_of, load_average, messy_landline, messy_mobile,
    mobile_of, rows_from_env, smoke,
};

/// Connections in the pools (the daemon's default `database.max_connections`).
const POOL: u32 = 8;
/// Concurrent lookups measured: one at a time (pure latency), then loads that keep the pool busy.
const CONCURRENCY: [usize; 3] = [1, 8, 32];

type Lookup = Arc<dyn Fn(usize) -> Pin<Box<dyn Future<Output = usize> + Send>> + Send + Sync>;

struct Measured {
    per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    found: usize,
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

/// Runs `count` lookups (inputs `0..count`, wrapping) on `concurrency` tasks; each lookup returns
/// how many customers it found.
async fn measure(lookup: &Lookup, count: usize, concurrency: usize) -> Measured {
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let lookup = lookup.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count / concurrency + 1);
            let mut found = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let started = Instant::now();
                found += usize::from(lookup(i).await > 0);
                latencies.push(started.elapsed().as_nanos() as u64);
            }
            (latencies, found)
        }));
    }
    let mut all = Vec::with_capacity(count);
    let mut found = 0;
    for w in workers {
        let (latencies, f) = w.await.expect("lookup worker");
        all.extend(latencies);
        found += f;
    }
    let secs = t0.elapsed().as_secs_f64();
    all.sort_unstable();
    Measured {
        per_sec: count as f64 / secs,
        p50_us: pct(&all, 0.5),
        p99_us: pct(&all, 0.99),
        max_us: all.last().copied().unwrap_or(0) as f64 / 1000.0,
        found,
    }
}

/// The floor: a bare indexed select on a native sqlx pool (no `Any` layer, no ringside code).
async fn bare_lookup(db: &BenchDb, numbers: Arc<Vec<Normalized>>) -> Lookup {
    let sql = "SELECT customer_id FROM customer_phones WHERE e164 = $1";
    let e164 = move |numbers: &[Normalized], i: usize| {
        numbers[i % numbers.len()].e164.clone().unwrap_or_default()
    };
    if db.storage.kind() == DbKind::Postgres {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(POOL)
            .connect(&db.url)
            .await
            .expect("native PostgreSQL pool");
        Arc::new(move |i| {
            let pool = pool.clone();
            let number = e164(&numbers, i);
            Box::pin(async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .bind(number)
                    .fetch_all(&pool)
                    .await
                    .expect("bare select")
                    .len()
            })
        })
    } else {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(POOL)
            .connect(&db.url)
            .await
            .expect("native SQLite pool");
        Arc::new(move |i| {
            let pool = pool.clone();
            let number = e164(&numbers, i);
            Box::pin(async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .bind(number)
                    .fetch_all(&pool)
                    .await
                    .expect("bare select")
                    .len()
            })
        })
    }
}

fn main() {
    let quick = smoke();
    let n = rows_from_env(if quick { 2_000 } else { 1_000_000 });
    let count: usize = std::env::var("RINGSIDE_BENCH_LOOKUPS")
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(if quick { 2_000 } else { 100_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("load average before the run: {}", load_average());
        let db = BenchDb::open(POOL).await;
        let (_, summary, secs) = generate_and_import(&db.storage, n).await;
        println!(
            "lookup by phone on {}: {} customers (imported in {secs:.1} s), {count} lookups per measurement, pools of {POOL}",
            db.label(),
            db.storage.count_customers().await.expect("count")
        );
        assert_eq!(summary.rows as usize, n);

        let settings = Arc::new(Settings::default());
        let country = settings.numbers.default_country.clone();
        let mut rng = StdRng::seed_from_u64(7);
        let raw: Arc<Vec<String>> = Arc::new(
            (0..count)
                .map(|_| {
                    let i = rng.gen_range(0..n);
                    if rng.gen_ratio(4, 5) {
                        messy_mobile(&mobile_of(i), &mut rng)
                    } else {
                        messy_landline(&landline_of(i), &mut rng)
                    }
                })
                .collect(),
        );
        let normalized: Arc<Vec<Normalized>> =
            Arc::new(raw.iter().map(|r| phone::normalize(r, &country)).collect());

        let storage: Storage = db.storage.clone();
        let hits: Lookup = {
            let (storage, numbers, settings) =
                (storage.clone(), normalized.clone(), settings.clone());
            Arc::new(move |i| {
                let (storage, numbers, settings) =
                    (storage.clone(), numbers.clone(), settings.clone());
                Box::pin(async move {
                    storage
                        .find_phone_hits(
                            &numbers[i % numbers.len()],
                            settings.numbers.trailing_digits,
                        )
                        .await
                        .expect("find_phone_hits")
                        .len()
                })
            })
        };
        let full: Lookup = {
            let (storage, raw, settings) = (storage.clone(), raw.clone(), settings.clone());
            Arc::new(move |i| {
                let (storage, raw, settings) = (storage.clone(), raw.clone(), settings.clone());
                Box::pin(async move {
                    let number =
                        phone::normalize(&raw[i % raw.len()], &settings.numbers.default_country);
                    let found = storage
                        .find_phone_hits(&number, settings.numbers.trailing_digits)
                        .await
                        .expect("find_phone_hits");
                    let mut ids: Vec<i64> = Vec::new();
                    for hit in found {
                        if !ids.contains(&hit.customer_id) {
                            ids.push(hit.customer_id);
                        }
                    }
                    storage
                        .customers_by_ids(&ids)
                        .await
                        .expect("customers_by_ids")
                        .len()
                })
            })
        };
        let bare = bare_lookup(&db, normalized.clone()).await;

        // One pass over the inputs first, so every path meets the same warm caches.
        measure(&bare, count, 8).await;

        println!(
            "| path | concurrent | lookups/s | p50 µs | p99 µs | max µs | found | vs bare (lookups/s) |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for concurrency in CONCURRENCY {
            let floor = measure(&bare, count, concurrency).await;
            for (name, lookup) in [
                ("find_phone_hits", &hits),
                ("normalize + hits + customers", &full),
            ] {
                let m = measure(lookup, count, concurrency).await;
                println!(
                    "| {name} | {concurrency} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1}% | {:.2} |",
                    m.per_sec,
                    m.p50_us,
                    m.p99_us,
                    m.max_us,
                    100.0 * m.found as f64 / count as f64,
                    m.per_sec / floor.per_sec
                );
            }
            println!(
                "| bare SELECT (native driver) | {concurrency} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1}% | 1.00 |",
                floor.per_sec,
                floor.p50_us,
                floor.p99_us,
                floor.max_us,
                100.0 * floor.found as f64 / count as f64,
            );
        }
        db.drop_database().await;
    });
}
