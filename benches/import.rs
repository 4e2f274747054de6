//! Customer CSV import throughput: rows/s for a large file of messy, realistic rows (numbers in
//! every format agents' spreadsheets hold, two phone columns, a vehicle, ~0.5% repeated numbers,
//! ~1% numbers that cannot be made valid, ~0.1% rows without a name), imported through
//! `ringside::import::import_customers` exactly as `ringside import customers` does.
//!
//! `cargo bench --bench import` (SQLite in a temp dir), or with
//! `RINGSIDE_BENCH_DATABASE=postgres://postgres@127.0.0.1:5432/test` (a fresh database is created
//! there and dropped). `RINGSIDE_BENCH_ROWS` sets the row count (default 1,000,000; 2,000 when
//! run without `--bench`, as `cargo test --all-targets` does).
//!
//! The `lookup` and `pop_load` benches include this file as a module for its generator and its
//! database setup, so everything but `main` is shared.

use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringside::import::{ImportOptions, ImportSummary, import_customers};
use ringside::settings::DatabaseSettings;
use ringside::storage::{DbKind, Storage};

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs the program without it, and
/// then it makes a quick smoke run at a small size that proves it still works.
pub fn smoke() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// Row count from `RINGSIDE_BENCH_ROWS`, else `default`.
pub fn rows_from_env(default: usize) -> usize {
    std::env::var("RINGSIDE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

/// The machine's load average (1, 5, 15 min), printed before a run: other work on the machine
/// shows in the figures.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A database for one bench run: SQLite in a temp dir, or a fresh PostgreSQL database when
/// `RINGSIDE_BENCH_DATABASE` names a server. `drop_database` removes the PostgreSQL one.
pub struct BenchDb {
    pub url: String,
    pub storage: Storage,
    admin: Option<(Storage, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl BenchDb {
    pub async fn open(max_connections: u32) -> BenchDb {
        match std::env::var("RINGSIDE_BENCH_DATABASE") {
            Ok(base) if base.starts_with("postgres") => {
                let admin = Storage::connect(&DatabaseSettings {
                    url: base.clone(),
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
                let (prefix, _) = base.rsplit_once('/').expect("url with a database");
                let url = format!("{prefix}/{name}");
                let storage = connect(&url, max_connections).await;
                BenchDb {
                    url,
                    storage,
                    admin: Some((admin, name)),
                    _dir: None,
                }
            }
            _ => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                let storage = connect(&url, max_connections).await;
                BenchDb {
                    url,
                    storage,
                    admin: None,
                    _dir: Some(dir),
                }
            }
        }
    }

    pub fn label(&self) -> &'static str {
        if self.storage.kind() == DbKind::Postgres {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }

    /// Closes the pool and drops the PostgreSQL database (the SQLite temp dir goes on drop).
    pub async fn drop_database(self) {
        self.storage.close().await;
        if let Some((admin, name)) = self.admin {
            let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(admin.pool())
                .await;
            admin.close().await;
        }
    }
}

async fn connect(url: &str, max_connections: u32) -> Storage {
    let storage = Storage::connect(&DatabaseSettings {
        url: url.to_string(),
        max_connections,
        acquire_timeout_ms: 30_000,
    })
    .await
    .expect("bench database");
    storage.migrate().await.expect("migrate");
    storage
}

/// Customer `i`'s mobile number, national significant digits (11, unique per `i` < 10^8).
pub fn mobile_of(i: usize) -> String {
    const PREFIXES: [&str; 6] = ["138", "139", "150", "186", "177", "135"];
    format!("{}{:08}", PREFIXES[i % PREFIXES.len()], i)
}

/// Customer `i`'s Beijing landline, national significant digits (10: area code 10 + 8 digits).
pub fn landline_of(i: usize) -> String {
    format!("10{}{:07}", 6 + (i / 10_000_000) % 3, i % 10_000_000)
}

/// The E.164 form of national significant digits.
pub fn e164_of(national: &str) -> String {
    format!("+86{national}")
}

fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0xFF10 + d).unwrap_or(c),
            None => c,
        })
        .collect()
}

/// A mobile number as people write it: one of a dozen formats.
pub fn messy_mobile(national: &str, rng: &mut impl Rng) -> String {
    let (a, b, c) = (&national[..3], &national[3..7], &national[7..]);
    match rng.gen_range(0..12) {
        0 => national.to_string(),
        1 => format!("{a} {b} {c}"),
        2 => format!("{a}-{b}-{c}"),
        3 => format!("{a}.{b}.{c}"),
        4 => format!("+86 {a} {b} {c}"),
        5 => format!("+86-{a}-{b}-{c}"),
        6 => format!("0086 {national}"),
        7 => format!("0086-{a}-{b}-{c}"),
        8 => format!("(+86) {a} {b} {c}"),
        9 => full_width(national),
        10 => format!("+86{national}"),
        _ => format!(" {a}{b} {c} "),
    }
}

/// A Beijing landline as people write it, with the trunk 0, brackets and sometimes an extension.
pub fn messy_landline(national: &str, rng: &mut impl Rng) -> String {
    let (area, a, b) = (&national[..2], &national[2..6], &national[6..]);
    let number = match rng.gen_range(0..8) {
        0 => format!("0{area}-{a}{b}"),
        1 => format!("(0{area}) {a} {b}"),
        2 => format!("0{area} {a}-{b}"),
        3 => format!("+86 {area} {a} {b}"),
        4 => format!("+86 (0){area} {a} {b}"),
        5 => format!("0086{area}{a}{b}"),
        6 => format!("0{area}.{a}.{b}"),
        _ => full_width(&format!("0{area}-{a}{b}")),
    };
    match rng.gen_range(0..10) {
        0 => format!("{number} ext. {}", rng.gen_range(1..999)),
        1 => format!("{number} 转{}", rng.gen_range(1..999)),
        2 => format!("{number} x{}", rng.gen_range(1..99)),
        _ => number,
    }
}

/// Numbers nobody can dial: too short, too long, letters.
fn invalid_number(rng: &mut impl Rng) -> String {
    match rng.gen_range(0..4) {
        0 => format!("{}", rng.gen_range(100..99_999)),
        1 => format!("1{:013}", rng.gen_range(0..9_999_999_999_999u64)),
        2 => "n/a".to_string(),
        _ => format!("+86 999 {}", rng.gen_range(1000..9999)),
    }
}

const SURNAMES: [&str; 10] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "Smith", "Müller",
];
const GIVEN: [&str; 8] = ["建国", "娜", "伟", "芳", "秀英", "Anna", "Wei", "强"];
const MODELS: [&str; 5] = ["Camry", "Model 3", "Passat", "CR-V", "汉 EV"];
const TIERS: [&str; 6] = ["A", "B", "C", "gold", "银", ""];

/// What [`write_csv`] put in the file, to check the import's counts against.
#[derive(Debug, Default)]
pub struct Generated {
    pub rows: usize,
    pub repeated_numbers: usize,
    pub invalid_numbers: usize,
    pub nameless: usize,
}

/// Writes `n` customer rows to `path`. Row `i` has `mobile_of(i)` (in a messy format) and, on
/// two rows in three, `landline_of(i)`, unless it repeats an earlier row's mobile (~0.5%) or its
/// mobile is replaced with an invalid number (~1%).
pub fn write_csv(path: &Path, n: usize, seed: u64) -> Generated {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("csv"));
    let mut generated = Generated::default();
    writeln!(
        out,
        "external_id,name,tier,phone,phone2,vehicle_plate,vehicle_vin,vehicle_model,last_service_date,service_interval_months,mileage_km,tags"
    )
    .expect("write");
    let mut w = csv::Writer::from_writer(out);
    for i in 0..n {
        let roll: f64 = rng.r#gen();
        let phone = if roll < 0.005 && i > 0 {
            generated.repeated_numbers += 1;
            messy_mobile(&mobile_of(rng.gen_range(0..i)), &mut rng)
        } else if roll < 0.015 {
            generated.invalid_numbers += 1;
            invalid_number(&mut rng)
        } else {
            messy_mobile(&mobile_of(i), &mut rng)
        };
        let phone2 = if i % 3 == 2 {
            String::new()
        } else {
            messy_landline(&landline_of(i), &mut rng)
        };
        let name = if rng.gen_ratio(1, 1000) {
            generated.nameless += 1;
            String::new()
        } else {
            format!(
                "{}{}",
                SURNAMES[rng.gen_range(0..SURNAMES.len())],
                GIVEN[rng.gen_range(0..GIVEN.len())]
            )
        };
        let has_vehicle = i % 2 == 0;
        let field = |s: String| if has_vehicle { s } else { String::new() };
        w.write_record([
            format!("EXT{i:08}"),
            name,
            TIERS[i % TIERS.len()].to_string(),
            phone,
            phone2,
            field(format!(
                "京{}{:05}",
                (b'A' + (i % 26) as u8) as char,
                i % 100_000
            )),
            field(format!("LSV{:014}", i)),
            field(MODELS[i % MODELS.len()].to_string()),
            field(format!("2025-{:02}-{:02}", 1 + i % 12, 1 + i % 28)),
            field(["6", "12", ""][i % 3].to_string()),
            field(format!("{}", (i * 37) % 150_000)),
            ["vip;fleet", "", "wechat", "", "回访"][i % 5].to_string(),
        ])
        .expect("write row");
        generated.rows += 1;
    }
    w.flush().expect("flush");
    generated
}

/// Rows per batch: 1,000 as `ringside import customers` writes them, or `RINGSIDE_BENCH_BATCH`.
pub fn batch_size() -> usize {
    std::env::var("RINGSIDE_BENCH_BATCH")
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(1000)
}

/// Writes `n` rows to a temp CSV and imports them; returns the summary and the import's seconds
/// (the CSV writing is not timed).
pub async fn generate_and_import(storage: &Storage, n: usize) -> (Generated, ImportSummary, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("customers.csv");
    let generated = write_csv(&path, n, 42);
    let file = BufReader::with_capacity(1 << 20, std::fs::File::open(&path).expect("open csv"));
    let options = ImportOptions {
        country: "CN".into(),
        dry_run: false,
        batch_size: batch_size(),
    };
    let t0 = Instant::now();
    let summary = import_customers(storage, file, &options, |_| {})
        .await
        .expect("import");
    (generated, summary, t0.elapsed().as_secs_f64())
}

#[allow(dead_code)]
fn main() {
    let n = rows_from_env(if smoke() { 2_000 } else { 1_000_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("load average before the run: {}", load_average());
        let db = BenchDb::open(8).await;
        println!(
            "customer import on {}: {n} rows, batches of {}",
            db.label(),
            batch_size()
        );
        let (generated, summary, secs) = generate_and_import(&db.storage, n).await;
        let customers = db.storage.count_customers().await.expect("count");
        println!("| rows | seconds | rows/s | inserted | updated | merged | rejected | invalid numbers | customers |");
        println!("|---|---|---|---|---|---|---|---|---|");
        println!(
            "| {} | {secs:.1} | {:.0} | {} | {} | {} | {} | {} | {customers} |",
            summary.rows,
            summary.rows as f64 / secs,
            summary.inserted,
            summary.updated,
            summary.merged,
            summary.rejected.len(),
            summary.invalid_numbers,
        );
        println!(
            "generated: {} repeated numbers, {} invalid numbers, {} rows without a name",
            generated.repeated_numbers, generated.invalid_numbers, generated.nameless
        );
        db.drop_database().await;
    });
}
