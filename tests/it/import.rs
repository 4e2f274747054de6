use ringside::import::{ImportOptions, import_customers};

use crate::support::{TestDb, test_settings};

async fn storage() -> (ringside::storage::Storage, TestDb) {
    let db = TestDb::new().await;
    let settings = test_settings(&db);
    let storage = ringside::storage::Storage::connect(&settings.database)
        .await
        .unwrap();
    storage.migrate().await.unwrap();
    (storage, db)
}

fn options(dry_run: bool) -> ImportOptions {
    ImportOptions {
        country: "CN".into(),
        dry_run,
        batch_size: 2,
    }
}

const CSV: &str = "\u{feff}external_id,name,tier,phone,mobile,birthday,vehicle_plate,vehicle_vin,last_service_date,service_interval_months,tags\n\
C1,王伟,A,010 6552 8899,138 0013 8000,1980-02-03,沪A12345,VIN0001,2026-01-15,6,fleet;vip\n\
C2,Anna Schmidt,b,,+49 30 1234567,,,,,,\n\
C3,,C,13900139000,,,,,,,\n\
C4,Li Na,Q,13700137000,,,,,,,\n\
C5,王伟 (dup by number),A,,0086 138-0013-8000,,,,,,extra\n\
C6,Bad Number,C,12,,,,,,,\n";

#[tokio::test]
async fn import_reports_inserted_merged_and_rejected_lines() {
    let (storage, _db) = storage().await;
    let summary = import_customers(&storage, CSV.as_bytes(), &options(false), |_| {})
        .await
        .unwrap();
    assert_eq!(summary.inserted, 3, "{summary:?}");
    assert_eq!(summary.merged + summary.updated, 1, "{summary:?}");
    let lines: Vec<u64> = summary.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![4, 5], "{summary:?}");
    assert_eq!(summary.invalid_numbers, 1);
    assert_eq!(storage.count_customers().await.unwrap(), 3);

    let n = ringside::phone::normalize("13800138000", "CN");
    let hits = storage.find_phone_hits(&n, 8).await.unwrap();
    assert_eq!(hits.len(), 1);
    let c = storage.customer(hits[0].customer_id).await.unwrap();
    assert_eq!(
        c.name, "王伟 (dup by number)",
        "a later row of the same customer updates it"
    );
    assert_eq!(c.tier, "A");
    assert!(
        c.tags.contains(&"extra".to_string()) && c.tags.contains(&"vip".to_string()),
        "{:?}",
        c.tags
    );
    let assets = storage.assets_of(&[c.id]).await.unwrap();
    assert_eq!(assets[0].next_service_due.as_deref(), Some("2026-07-15"));

    let bad = storage
        .search_customers_by_name("Bad Number", 10, 0)
        .await
        .unwrap();
    assert_eq!(bad[0].phones[0].raw, "12");
    assert!(
        !bad[0].phones[0].valid,
        "invalid numbers are kept raw and flagged"
    );
}

#[tokio::test]
async fn reimporting_the_same_file_updates_instead_of_duplicating() {
    let (storage, _db) = storage().await;
    import_customers(&storage, CSV.as_bytes(), &options(false), |_| {})
        .await
        .unwrap();
    let again = import_customers(&storage, CSV.as_bytes(), &options(false), |_| {})
        .await
        .unwrap();
    assert_eq!(again.inserted, 0, "{again:?}");
    assert_eq!(storage.count_customers().await.unwrap(), 3);
    let c = storage
        .search_customers_by_name("王伟", 10, 0)
        .await
        .unwrap();
    assert_eq!(
        c[0].phones.len(),
        2,
        "no duplicate phones: {:?}",
        c[0].phones
    );
}

#[tokio::test]
async fn dry_run_counts_but_writes_nothing() {
    let (storage, _db) = storage().await;
    let summary = import_customers(&storage, CSV.as_bytes(), &options(true), |_| {})
        .await
        .unwrap();
    assert_eq!(summary.inserted, 3);
    assert!(summary.dry_run);
    assert_eq!(storage.count_customers().await.unwrap(), 0);
}

#[tokio::test]
async fn a_file_without_a_name_column_is_refused_clearly() {
    let (storage, _db) = storage().await;
    let err = import_customers(
        &storage,
        "phone,tier\n123,A\n".as_bytes(),
        &options(false),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().to_lowercase().contains("name"), "{err}");
}

/// Whether the index exists, on either database.
async fn has_index(storage: &ringside::storage::Storage, name: &str) -> bool {
    let sql = match storage.kind() {
        ringside::storage::DbKind::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = $1"
        }
        ringside::storage::DbKind::Postgres => {
            "SELECT COUNT(*) FROM pg_indexes WHERE indexname = $1"
        }
    };
    let n: i64 = sqlx::query_scalar(sql)
        .bind(name)
        .fetch_one(storage.pool())
        .await
        .unwrap();
    n == 1
}

const NUMBER_INDEXES: [&str; 3] = [
    "customer_phones_e164",
    "customer_phones_national",
    "customer_phones_rev",
];

#[tokio::test]
async fn a_bulk_load_into_an_empty_base_ends_with_every_index_in_place() {
    let (storage, _db) = storage().await;
    import_customers(&storage, CSV.as_bytes(), &options(false), |_| {})
        .await
        .unwrap();
    for name in NUMBER_INDEXES
        .into_iter()
        .chain(["customers_name", "assets_next_due"])
    {
        assert!(has_index(&storage, name).await, "{name} after the import");
    }
    // A later row merged into an earlier batch's customer by number although the number index
    // was being rebuilt only at the end.
    assert_eq!(storage.count_customers().await.unwrap(), 3);
}

#[tokio::test]
async fn indexes_an_interrupted_import_left_dropped_come_back_with_migrate() {
    let (storage, _db) = storage().await;
    for name in NUMBER_INDEXES {
        sqlx::query(&format!("DROP INDEX {name}"))
            .execute(storage.pool())
            .await
            .unwrap();
    }
    storage.migrate().await.unwrap();
    for name in NUMBER_INDEXES {
        assert!(has_index(&storage, name).await, "{name} after migrate");
    }
}
