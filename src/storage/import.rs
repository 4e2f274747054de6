//! Bulk writes for the customer import: a batch of drafts merged into the database in one
//! transaction, with one lookup query per kind of key for the whole batch and multi-row inserts
//! for new customers, their phones, tags and assets. Statements are what an import pays for (each
//! is a round trip to the database, or to SQLite's worker thread), so a batch of 1,000 rows costs
//! a few dozen statements, not one per row.
//!
//! Rows are merged when they share an external id or an E.164 number, with a customer already
//! stored or with another row of the same batch; the caller keeps batches in file order so the
//! first row of a customer creates it and later ones enrich it.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::customers::{
    AssetDraft, CustomerDraft, NewPhone, insert_phones_for, insert_tags_for, merge_customer,
};
use super::{DbKind, Result, Storage, StorageError, bulk_placeholders, now_ms};

/// Rows per multi-row statement (3,000 to 3,600 parameters; SQLite takes up to 32,766 and
/// PostgreSQL 65,535). Each statement costs a round trip to SQLite's worker thread, which on a
/// busy machine is mostly waiting to be scheduled, so fewer, larger statements go faster.
const CUSTOMER_ROWS: usize = 256;
const ASSET_ROWS: usize = 256;
/// Keys per `IN (...)` lookup.
const LOOKUP_KEYS: usize = 1000;

/// What happened to each draft of a batch, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOutcome {
    Inserted,
    /// Merged into a customer stored before this batch.
    Updated,
    /// Merged into an earlier row of the same batch (a duplicate in the file).
    MergedInBatch,
}

/// How SQLite is set up on the import's connection while the import lasts: a page cache (in KiB)
/// with room for the indexes' working set, so random inserts into the number indexes of a large
/// base do not read pages back from the file; statement journals in memory (a multi-row insert
/// keeps one in case a row breaks a constraint half-way, and on disk they were most of an
/// import's writes); and a checkpoint every 8,192 WAL pages instead of 1,000, so an index page
/// that many batches touch is copied back to the database file once, not after every batch.
const IMPORT_PRAGMAS: [(&str, i64); 3] = [
    ("cache_size", -128 * 1024),
    ("temp_store", 2),
    ("wal_autocheckpoint", 8192),
];

/// The indexes an import into an empty base builds once at the end instead of row by row:
/// the ones no step of the import reads (it merges rows by external id, through the unique
/// column's own index, and by E.164 number, through [`NumberIds`]). Adding a row to each costs a
/// random B-tree insert, most of a large import's time; building one from the loaded table is a
/// sort. Names and columns as in the first migration; [`Storage::restore_deferred_indexes`] puts
/// back any an interrupted import left dropped.
const DEFERRED_INDEXES: [(&str, &str); 7] = [
    ("customers_name", "customers (name)"),
    ("customers_account_manager", "customers (account_manager)"),
    ("customer_tags_tag", "customer_tags (tag)"),
    ("customer_phones_e164", "customer_phones (e164)"),
    ("customer_phones_national", "customer_phones (national)"),
    ("customer_phones_rev", "customer_phones (rev_national)"),
    ("assets_next_due", "assets (next_service_due)"),
];

/// The E.164 numbers stored so far by an import into an empty base, and their customers: what
/// the import would otherwise look up through `customer_phones_e164` (dropped while it runs).
/// Numbers are kept as integers (`+4930123456` as 4930123456; E.164 has at most 15 digits),
/// a tenth of the memory of strings for a million customers.
#[derive(Default)]
struct NumberIds {
    digits: HashMap<u64, i64>,
    /// Anything that is not `+` and digits, which the normalizer never makes.
    other: HashMap<String, i64>,
}

impl NumberIds {
    fn key(e164: &str) -> Option<u64> {
        let digits = e164.strip_prefix('+')?;
        if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    fn get(&self, e164: &str) -> Option<i64> {
        match Self::key(e164) {
            Some(k) => self.digits.get(&k).copied(),
            None => self.other.get(e164).copied(),
        }
    }

    /// Records the number's customer unless it already has one (the first stays, as merging
    /// keeps the customer a number first led to).
    fn add(&mut self, e164: &str, customer_id: i64) {
        match Self::key(e164) {
            Some(k) => {
                self.digits.entry(k).or_insert(customer_id);
            }
            None => {
                self.other.entry(e164.to_string()).or_insert(customer_id);
            }
        }
    }
}

/// An open import transaction; batches written through it become visible on `commit`.
pub struct ImportTx<'c> {
    tx: sqlx::Transaction<'c, sqlx::Any>,
    /// A dry run's transaction holds the daemon's write gate, as every write transaction does.
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Bulk statements use anonymous placeholders on SQLite ([`bulk_placeholders`]).
    sqlite: bool,
    /// For an import into an empty base, the numbers stored so far (else they are looked up).
    numbers: Option<&'c mut NumberIds>,
}

/// One connection held for a whole import, so that each batch finds the pages the batch before
/// it left in the connection's cache (a pool hands out its connections in turn, and on SQLite a
/// connection's cache is only as good as what it last read). On SQLite the connection is set up
/// for bulk writes ([`IMPORT_PRAGMAS`]) and put back as it was by [`Importer::finish`].
pub struct Importer {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    sqlite: bool,
    /// The SQLite settings [`IMPORT_PRAGMAS`] changed, as they were before.
    restore: Vec<(&'static str, i64)>,
    /// Set when the import began on an empty base: [`DEFERRED_INDEXES`] are dropped until
    /// [`Importer::finish`], and the numbers stored are kept here.
    bulk: Option<NumberIds>,
}

impl Storage {
    /// A transaction for a whole dry run (rolled back at the end).
    pub async fn begin_import(&self) -> Result<ImportTx<'static>> {
        let (tx, gate) = self.begin_write().await?.into_parts();
        Ok(ImportTx {
            tx,
            _gate: gate,
            sqlite: self.kind == DbKind::Sqlite,
            numbers: None,
        })
    }

    /// Creates any of [`DEFERRED_INDEXES`] that is missing: an import into an empty base that
    /// stopped before its end leaves them dropped. Run by `migrate` and before each import; a
    /// no-op when they are there.
    pub async fn restore_deferred_indexes(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        create_deferred_indexes(&mut conn).await
    }

    /// The connection a (non-dry) import writes through. On an empty base, the import is a bulk
    /// load: [`DEFERRED_INDEXES`] are dropped now and built by [`Importer::finish`].
    pub async fn importer(&self) -> Result<Importer> {
        let mut conn = self.pool.acquire().await?;
        create_deferred_indexes(&mut conn).await?;
        let empty = sqlx::query("SELECT id FROM customers LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?
            .is_none();
        let bulk = if empty {
            for (name, _) in DEFERRED_INDEXES {
                sqlx::query(&format!("DROP INDEX IF EXISTS {name}"))
                    .execute(&mut *conn)
                    .await?;
            }
            Some(NumberIds::default())
        } else {
            None
        };
        let sqlite = self.kind == DbKind::Sqlite;
        let mut restore = Vec::new();
        if sqlite {
            for (name, value) in IMPORT_PRAGMAS {
                let row = sqlx::query(&format!("PRAGMA {name}"))
                    .fetch_one(&mut *conn)
                    .await?;
                restore.push((name, row.try_get::<i64, _>(0)?));
                sqlx::query(&format!("PRAGMA {name} = {value}"))
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(Importer {
            conn,
            sqlite,
            restore,
            bulk,
        })
    }
}

async fn create_deferred_indexes(conn: &mut sqlx::AnyConnection) -> Result<()> {
    for (name, on) in DEFERRED_INDEXES {
        sqlx::query(&format!("CREATE INDEX IF NOT EXISTS {name} ON {on}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl Importer {
    /// Begins one batch's transaction (`BEGIN IMMEDIATE` on SQLite, as every write transaction).
    pub async fn begin(&mut self) -> Result<ImportTx<'_>> {
        let tx = if self.sqlite {
            sqlx::Connection::begin_with(&mut *self.conn, "BEGIN IMMEDIATE").await?
        } else {
            sqlx::Connection::begin(&mut *self.conn).await?
        };
        Ok(ImportTx {
            tx,
            _gate: None,
            sqlite: self.sqlite,
            numbers: self.bulk.as_mut(),
        })
    }

    /// Builds the indexes a bulk load deferred and gives the connection back to the pool set up
    /// as it was.
    pub async fn finish(mut self) -> Result<()> {
        if self.bulk.is_some() {
            create_deferred_indexes(&mut self.conn).await?;
        }
        for (name, value) in &self.restore {
            sqlx::query(&format!("PRAGMA {name} = {value}"))
                .execute(&mut *self.conn)
                .await?;
        }
        Ok(())
    }
}

impl ImportTx<'_> {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }

    async fn lookup(&mut self, sql_head: &str, keys: &[String]) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        for chunk in keys.chunks(LOOKUP_KEYS) {
            if chunk.is_empty() {
                continue;
            }
            let sql = format!(
                "{sql_head} IN ({})",
                bulk_placeholders(self.sqlite, 1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q.bind(k);
            }
            for row in q.fetch_all(&mut *self.tx).await? {
                out.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
            }
        }
        Ok(out)
    }

    /// Writes one batch; returns each draft's outcome in order.
    pub async fn write_batch(&mut self, drafts: &[CustomerDraft]) -> Result<Vec<RowOutcome>> {
        let now = now_ms();
        let ext_ids: Vec<String> = drafts
            .iter()
            .filter_map(|d| d.external_id.clone())
            .collect();
        let numbers: Vec<String> = drafts
            .iter()
            .flat_map(|d| d.phones.iter().filter_map(|p| p.normalized.e164.clone()))
            .collect();
        let stored_by_ext = self
            .lookup(
                "SELECT external_id, id FROM customers WHERE external_id",
                &ext_ids,
            )
            .await?;
        let stored_by_number = match self.numbers.as_deref() {
            Some(stored) => numbers
                .iter()
                .filter_map(|n| stored.get(n).map(|id| (n.clone(), id)))
                .collect(),
            None => {
                self.lookup(
                    "SELECT e164, customer_id FROM customer_phones WHERE e164",
                    &numbers,
                )
                .await?
            }
        };

        // Decide, in file order, where each draft goes.
        enum Target {
            Stored(i64),
            Pending(usize),
        }
        let mut pending: Vec<CustomerDraft> = Vec::new();
        let mut pending_by_ext: HashMap<String, usize> = HashMap::new();
        let mut pending_by_number: HashMap<String, usize> = HashMap::new();
        let mut updates: Vec<(i64, &CustomerDraft)> = Vec::new();
        let mut outcomes = Vec::with_capacity(drafts.len());
        for d in drafts {
            let e164s = || d.phones.iter().filter_map(|p| p.normalized.e164.as_deref());
            let target = d
                .external_id
                .as_ref()
                .and_then(|x| {
                    stored_by_ext
                        .get(x)
                        .map(|id| Target::Stored(*id))
                        .or_else(|| pending_by_ext.get(x).map(|i| Target::Pending(*i)))
                })
                .or_else(|| {
                    e164s().find_map(|n| stored_by_number.get(n).map(|id| Target::Stored(*id)))
                })
                .or_else(|| {
                    e164s().find_map(|n| pending_by_number.get(n).map(|i| Target::Pending(*i)))
                });
            match target {
                Some(Target::Stored(id)) => {
                    updates.push((id, d));
                    outcomes.push(RowOutcome::Updated);
                }
                Some(Target::Pending(i)) => {
                    absorb(&mut pending[i], d);
                    for n in e164s() {
                        pending_by_number.entry(n.to_string()).or_insert(i);
                    }
                    if let Some(x) = &d.external_id {
                        pending_by_ext.entry(x.clone()).or_insert(i);
                    }
                    outcomes.push(RowOutcome::MergedInBatch);
                }
                None => {
                    let i = pending.len();
                    pending.push(d.clone());
                    for n in e164s() {
                        pending_by_number.entry(n.to_string()).or_insert(i);
                    }
                    if let Some(x) = &d.external_id {
                        pending_by_ext.insert(x.clone(), i);
                    }
                    outcomes.push(RowOutcome::Inserted);
                }
            }
        }

        // Phones already on the customers being updated, so a re-import adds no duplicates.
        let mut known_phones: HashSet<(i64, String)> = HashSet::new();
        if !updates.is_empty() {
            let ids: Vec<String> = updates.iter().map(|(id, _)| id.to_string()).collect();
            let rows = sqlx::query(&format!(
                "SELECT customer_id, raw, e164 FROM customer_phones WHERE customer_id IN ({})",
                ids.join(",")
            ))
            .fetch_all(&mut *self.tx)
            .await?;
            for row in rows {
                let id: i64 = row.try_get("customer_id")?;
                let e164: Option<String> = row.try_get("e164")?;
                let raw: String = row.try_get("raw")?;
                known_phones.insert((id, e164.unwrap_or(raw)));
            }
        }

        let mut phone_rows: Vec<(i64, &NewPhone)> = Vec::new();
        let mut tag_rows: Vec<(i64, &str)> = Vec::new();
        let mut asset_rows: Vec<(i64, &AssetDraft)> = Vec::new();
        for (id, d) in &updates {
            merge_customer(&mut self.tx, *id, d, now).await?;
            for p in &d.phones {
                let key = p
                    .normalized
                    .e164
                    .clone()
                    .unwrap_or_else(|| p.normalized.raw.clone());
                if known_phones.insert((*id, key)) {
                    phone_rows.push((*id, p));
                }
            }
            tag_rows.extend(d.tags.iter().map(|t| (*id, t.as_str())));
            asset_rows.extend(d.assets.iter().map(|a| (*id, a)));
        }
        let ids = self.insert_customers(&pending, now).await?;
        for (d, id) in pending.iter().zip(ids) {
            phone_rows.extend(d.phones.iter().map(|p| (id, p)));
            tag_rows.extend(d.tags.iter().map(|t| (id, t.as_str())));
            asset_rows.extend(d.assets.iter().map(|a| (id, a)));
        }
        insert_phones_for(&mut self.tx, &phone_rows).await?;
        if let Some(stored) = self.numbers.as_deref_mut() {
            for (id, p) in &phone_rows {
                if let Some(e164) = &p.normalized.e164 {
                    stored.add(e164, *id);
                }
            }
        }
        insert_tags_for(&mut self.tx, &tag_rows).await?;
        self.upsert_assets(&asset_rows, now).await?;
        Ok(outcomes)
    }

    /// Inserts new customers, `CUSTOMER_ROWS` to a statement; returns their ids in draft order.
    ///
    /// Ids come back through `RETURNING`, whose row order neither database promises. Both assign
    /// the ids of one statement in the order of its `VALUES` rows (SQLite: the next rowid per row;
    /// PostgreSQL: `nextval` per row as the rows are scanned), so the returned ids, sorted, are
    /// the drafts' ids in order. Each returned row's external id and name are checked against its
    /// draft, so a database that ever did otherwise would fail the batch, never mix customers up.
    async fn insert_customers(&mut self, drafts: &[CustomerDraft], now: i64) -> Result<Vec<i64>> {
        const COLS: usize = 14;
        let mut ids = Vec::with_capacity(drafts.len());
        for chunk in drafts.chunks(CUSTOMER_ROWS) {
            let mut sql = String::from(
                "INSERT INTO customers (external_id, name, tier, key_account, account_manager, birthday, \
                 timezone, language, consent_calls, notes, email, provisional, created_at, updated_at) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                sql.push_str(&bulk_placeholders(self.sqlite, 1 + i * COLS, COLS));
                sql.push(')');
            }
            sql.push_str(" RETURNING id, external_id, name");
            let mut q = sqlx::query(&sql);
            for d in chunk {
                q = q
                    .bind(&d.external_id)
                    .bind(&d.name)
                    .bind(if d.tier.is_empty() {
                        "C"
                    } else {
                        d.tier.as_str()
                    })
                    .bind(d.key_account as i64)
                    .bind(&d.account_manager)
                    .bind(&d.birthday)
                    .bind(&d.timezone)
                    .bind(&d.language)
                    .bind(d.consent_calls as i64)
                    .bind(&d.notes)
                    .bind(&d.email)
                    .bind(d.provisional as i64)
                    .bind(now)
                    .bind(now);
            }
            let mut rows = q
                .fetch_all(&mut *self.tx)
                .await?
                .into_iter()
                .map(|r| {
                    Ok((
                        r.try_get::<i64, _>("id")?,
                        r.try_get::<Option<String>, _>("external_id")?,
                        r.try_get::<String, _>("name")?,
                    ))
                })
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?;
            rows.sort_unstable_by_key(|(id, _, _)| *id);
            if rows.len() != chunk.len()
                || rows
                    .iter()
                    .zip(chunk)
                    .any(|((_, ext, name), d)| *ext != d.external_id || *name != d.name)
            {
                return Err(StorageError::Other(
                    "the database returned new customer ids out of insertion order".into(),
                ));
            }
            ids.extend(rows.into_iter().map(|(id, _, _)| id));
        }
        Ok(ids)
    }

    /// Inserts assets or, for a VIN already stored, updates it with the fields the row gives;
    /// `ASSET_ROWS` to a statement.
    async fn upsert_assets(&mut self, assets: &[(i64, &AssetDraft)], now: i64) -> Result<()> {
        const COLS: usize = 13;
        // One statement may not update a row twice (PostgreSQL refuses), so assets repeating a
        // VIN are folded first into what one upsert after the other would leave.
        let mut rows: Vec<(i64, AssetDraft)> = Vec::with_capacity(assets.len());
        let mut by_vin: HashMap<&str, usize> = HashMap::new();
        for (customer_id, a) in assets {
            match a.vin.as_deref().and_then(|v| by_vin.get(v).copied()) {
                Some(i) => fold_asset(&mut rows[i].1, a),
                None => {
                    if let Some(vin) = a.vin.as_deref() {
                        by_vin.insert(vin, rows.len());
                    }
                    rows.push((*customer_id, (*a).clone()));
                }
            }
        }
        for chunk in rows.chunks(ASSET_ROWS) {
            let mut sql = String::from(
                "INSERT INTO assets (customer_id, kind, plate, vin, model, purchase_date, last_service_date, \
                 service_interval_months, service_interval_km, mileage_km, next_service_due, created_at, updated_at) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                sql.push_str(&bulk_placeholders(self.sqlite, 1 + i * COLS, COLS));
                sql.push(')');
            }
            sql.push_str(
                " ON CONFLICT (vin) DO UPDATE SET plate = COALESCE(excluded.plate, assets.plate), \
                 model = COALESCE(excluded.model, assets.model), \
                 last_service_date = COALESCE(excluded.last_service_date, assets.last_service_date), \
                 service_interval_months = COALESCE(excluded.service_interval_months, assets.service_interval_months), \
                 service_interval_km = COALESCE(excluded.service_interval_km, assets.service_interval_km), \
                 mileage_km = COALESCE(excluded.mileage_km, assets.mileage_km), \
                 next_service_due = COALESCE(excluded.next_service_due, assets.next_service_due), \
                 updated_at = excluded.updated_at",
            );
            let mut q = sqlx::query(&sql);
            for (customer_id, a) in chunk {
                q = q
                    .bind(*customer_id)
                    .bind(if a.kind.is_empty() {
                        "vehicle"
                    } else {
                        a.kind.as_str()
                    })
                    .bind(&a.plate)
                    .bind(&a.vin)
                    .bind(&a.model)
                    .bind(&a.purchase_date)
                    .bind(&a.last_service_date)
                    .bind(a.service_interval_months)
                    .bind(a.service_interval_km)
                    .bind(a.mileage_km)
                    .bind(&a.next_service_due)
                    .bind(now)
                    .bind(now);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}

/// A later asset row with the same VIN, applied as the upsert applies it to a stored asset: its
/// non-empty service fields win; owner, kind and purchase date stay those of the first.
fn fold_asset(into: &mut AssetDraft, later: &AssetDraft) {
    macro_rules! later_wins {
        ($($f:ident),*) => { $( if later.$f.is_some() { into.$f = later.$f.clone(); } )* };
    }
    later_wins!(
        plate,
        model,
        last_service_date,
        service_interval_months,
        service_interval_km,
        mileage_km,
        next_service_due
    );
}

/// Folds a later row of the same customer into the pending draft the way a stored customer is
/// updated ([`merge_customer`]): the later row's name, tier and flags win, its empty optional
/// fields keep what was there, and new numbers, tags and assets are added.
fn absorb(into: &mut CustomerDraft, d: &CustomerDraft) {
    into.name = d.name.clone();
    into.tier = d.tier.clone();
    into.key_account = d.key_account;
    into.consent_calls = d.consent_calls;
    for p in &d.phones {
        let same = |q: &NewPhone| match (&q.normalized.e164, &p.normalized.e164) {
            (Some(a), Some(b)) => a == b,
            _ => q.normalized.raw == p.normalized.raw,
        };
        if !into.phones.iter().any(same) {
            let mut p = p.clone();
            p.primary = false;
            into.phones.push(p);
        }
    }
    for t in &d.tags {
        if !into.tags.contains(t) {
            into.tags.push(t.clone());
        }
    }
    into.assets.extend(d.assets.iter().cloned());
    macro_rules! fill {
        ($($f:ident),*) => { $( if into.$f.is_none() { into.$f = d.$f.clone(); } )* };
    }
    fill!(
        external_id,
        account_manager,
        birthday,
        timezone,
        language,
        notes,
        email
    );
}
