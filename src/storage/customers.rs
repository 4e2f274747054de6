//! Customers, their phone numbers, tags and assets.
//!
//! A customer always travels with its tags and phones; the extended view used by the API and
//! the screen pop adds assets, recent interactions, open complaints and tasks. Lists are loaded
//! with one query per table for the whole set of customers, never one query per customer.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{
    Arg, Cols, FromCols, Result, Storage, StorageError, bulk_placeholders, flag, id_params,
    int_args, is_sqlite, now_ms, placeholders,
};
use crate::phone::Normalized;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Phone {
    pub id: i64,
    pub raw: String,
    pub e164: Option<String>,
    pub national: Option<String>,
    pub extension: Option<String>,
    pub kind: String,
    pub primary: bool,
    pub valid: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Customer {
    pub id: i64,
    pub external_id: Option<String>,
    pub name: String,
    pub tier: String,
    pub key_account: bool,
    pub account_manager: Option<String>,
    pub birthday: Option<String>,
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub consent_calls: bool,
    pub notes: Option<String>,
    pub email: Option<String>,
    pub provisional: bool,
    pub tags: Vec<String>,
    pub phones: Vec<Phone>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Asset {
    pub id: i64,
    pub customer_id: i64,
    pub kind: String,
    pub plate: Option<String>,
    pub vin: Option<String>,
    pub model: Option<String>,
    pub purchase_date: Option<String>,
    pub last_service_date: Option<String>,
    pub service_interval_months: Option<i64>,
    pub service_interval_km: Option<i64>,
    pub mileage_km: Option<i64>,
    pub next_service_due: Option<String>,
}

/// A phone number to store: the raw form as given plus what normalization made of it.
#[derive(Debug, Clone)]
pub struct NewPhone {
    pub normalized: Normalized,
    pub kind: String,
    pub primary: bool,
}

/// The fields of a customer as written by the API, the importer and the demo loader.
#[derive(Debug, Clone, Default)]
pub struct CustomerDraft {
    pub external_id: Option<String>,
    pub name: String,
    pub tier: String,
    pub key_account: bool,
    pub account_manager: Option<String>,
    pub birthday: Option<String>,
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub consent_calls: bool,
    pub notes: Option<String>,
    pub email: Option<String>,
    pub provisional: bool,
    pub tags: Vec<String>,
    pub phones: Vec<NewPhone>,
    pub assets: Vec<AssetDraft>,
}

#[derive(Debug, Clone, Default)]
pub struct AssetDraft {
    pub kind: String,
    pub plate: Option<String>,
    pub vin: Option<String>,
    pub model: Option<String>,
    pub purchase_date: Option<String>,
    pub last_service_date: Option<String>,
    pub service_interval_months: Option<i64>,
    pub service_interval_km: Option<i64>,
    pub mileage_km: Option<i64>,
    pub next_service_due: Option<String>,
}

/// A partial update: `None` leaves a field as it is; `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    pub external_id: Option<Option<String>>,
    pub name: Option<String>,
    pub tier: Option<String>,
    pub key_account: Option<bool>,
    pub account_manager: Option<Option<String>>,
    pub birthday: Option<Option<String>>,
    pub timezone: Option<Option<String>>,
    pub language: Option<Option<String>>,
    pub consent_calls: Option<bool>,
    pub notes: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub provisional: Option<bool>,
    pub tags: Option<Vec<String>>,
    /// Replaces all phones when given.
    pub phones: Option<Vec<NewPhone>>,
}

/// How a phone row matched a looked-up number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberMatch {
    Exact,
    National,
    TrailingDigits,
}

#[derive(Debug, Clone)]
pub struct PhoneHit {
    pub customer_id: i64,
    pub phone_id: i64,
    pub primary: bool,
    pub how: NumberMatch,
}

/// A phone row as [`Storage::find_phone_hits`] reads it.
struct HitRow {
    phone_id: i64,
    customer_id: i64,
    primary: bool,
}

impl FromCols for HitRow {
    fn from_cols<R: Cols>(row: &R) -> std::result::Result<Self, sqlx::Error> {
        Ok(HitRow {
            phone_id: row.col("id")?,
            customer_id: row.col("customer_id")?,
            primary: flag(row, "is_primary")?,
        })
    }
}

struct TagRow {
    customer_id: i64,
    tag: String,
}

impl FromCols for TagRow {
    fn from_cols<R: Cols>(row: &R) -> std::result::Result<Self, sqlx::Error> {
        Ok(TagRow {
            customer_id: row.col("customer_id")?,
            tag: row.col("tag")?,
        })
    }
}

/// One lookup of [`Storage::find_phone_hits`]: the first that finds rows answers, and the
/// trailing-digits one answers even empty.
struct PhoneHitStep {
    how: NumberMatch,
    sql: &'static str,
    args: Vec<String>,
}

/// The lookups for a number, in the order they are tried: E.164, national number (six digits
/// or more), trailing digits (a range on the reversed national number, so one index serves).
fn phone_hit_steps(number: &Normalized, trailing_digits: usize) -> Vec<PhoneHitStep> {
    let mut steps = Vec::with_capacity(3);
    if let Some(e164) = &number.e164 {
        steps.push(PhoneHitStep {
            how: NumberMatch::Exact,
            sql: "SELECT id, customer_id, is_primary FROM customer_phones WHERE e164 = $1 LIMIT 50",
            args: vec![e164.clone()],
        });
    }
    if let Some(national) = number.national.as_deref().filter(|n| n.len() >= 6) {
        steps.push(PhoneHitStep {
            how: NumberMatch::National,
            sql: "SELECT id, customer_id, is_primary FROM customer_phones WHERE national = $1 LIMIT 50",
            args: vec![national.to_string()],
        });
    }
    if trailing_digits > 0 {
        let digits: String = number
            .national
            .as_deref()
            .or(number.e164.as_deref())
            .unwrap_or(&number.raw)
            .chars()
            .filter(|c| c.is_ascii_digit())
            .collect();
        if digits.len() >= trailing_digits {
            let tail = reverse_digits(&digits[digits.len() - trailing_digits..]);
            let upper = format!("{tail}:"); // ':' sorts right after '9'
            steps.push(PhoneHitStep {
                how: NumberMatch::TrailingDigits,
                sql: "SELECT id, customer_id, is_primary FROM customer_phones \
                      WHERE rev_national >= $1 AND rev_national < $2 LIMIT 50",
                args: vec![tail, upper],
            });
        }
    }
    steps
}

const CUSTOMER_COLUMNS: &str = "id, external_id, name, tier, key_account, account_manager, birthday, timezone, \
     language, consent_calls, notes, email, provisional, created_at, updated_at";

impl FromCols for Customer {
    fn from_cols<R: Cols>(row: &R) -> std::result::Result<Self, sqlx::Error> {
        Ok(Customer {
            id: row.col("id")?,
            external_id: row.col("external_id")?,
            name: row.col("name")?,
            tier: row.col("tier")?,
            key_account: flag(row, "key_account")?,
            account_manager: row.col("account_manager")?,
            birthday: row.col("birthday")?,
            timezone: row.col("timezone")?,
            language: row.col("language")?,
            consent_calls: flag(row, "consent_calls")?,
            notes: row.col("notes")?,
            email: row.col("email")?,
            provisional: flag(row, "provisional")?,
            tags: Vec::new(),
            phones: Vec::new(),
            created_at: row.col("created_at")?,
            updated_at: row.col("updated_at")?,
        })
    }
}

impl FromCols for (i64, Phone) {
    fn from_cols<R: Cols>(row: &R) -> std::result::Result<Self, sqlx::Error> {
        Ok((
            row.col("customer_id")?,
            Phone {
                id: row.col("id")?,
                raw: row.col("raw")?,
                e164: row.col("e164")?,
                national: row.col("national")?,
                extension: row.col("extension")?,
                kind: row.col("kind")?,
                primary: flag(row, "is_primary")?,
                valid: flag(row, "valid")?,
            },
        ))
    }
}

impl FromCols for Asset {
    fn from_cols<R: Cols>(row: &R) -> std::result::Result<Self, sqlx::Error> {
        Ok(Asset {
            id: row.col("id")?,
            customer_id: row.col("customer_id")?,
            kind: row.col("kind")?,
            plate: row.col("plate")?,
            vin: row.col("vin")?,
            model: row.col("model")?,
            purchase_date: row.col("purchase_date")?,
            last_service_date: row.col("last_service_date")?,
            service_interval_months: row.col("service_interval_months")?,
            service_interval_km: row.col("service_interval_km")?,
            mileage_km: row.col("mileage_km")?,
            next_service_due: row.col("next_service_due")?,
        })
    }
}

/// Reversed national digits: a trailing-digits match becomes an indexed prefix range.
pub fn reverse_digits(national: &str) -> String {
    national.chars().rev().collect()
}

impl Storage {
    /// Loads customers with their tags and phones, in the order of `ids` (missing ones are skipped).
    pub async fn customers_by_ids(&self, ids: &[i64]) -> Result<Vec<Customer>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let (list, params) = id_params(1, chunk);
            let args: Vec<Arg> = int_args(&params).collect();
            let customers: Vec<Customer> = self
                .select(
                    &format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id IN ({list})"),
                    &args,
                )
                .await?;
            let mut by_id: HashMap<i64, Customer> =
                customers.into_iter().map(|c| (c.id, c)).collect();
            let tags: Vec<TagRow> = self
                .select(
                    &format!(
                        "SELECT customer_id, tag FROM customer_tags WHERE customer_id IN ({list}) ORDER BY tag"
                    ),
                    &args,
                )
                .await?;
            for TagRow { customer_id, tag } in tags {
                if let Some(c) = by_id.get_mut(&customer_id) {
                    c.tags.push(tag);
                }
            }
            let phones: Vec<(i64, Phone)> = self
                .select(
                    &format!(
                        "SELECT id, customer_id, raw, e164, national, extension, kind, is_primary, valid \
                         FROM customer_phones WHERE customer_id IN ({list}) ORDER BY is_primary DESC, id"
                    ),
                    &args,
                )
                .await?;
            for (id, phone) in phones {
                if let Some(c) = by_id.get_mut(&id) {
                    c.phones.push(phone);
                }
            }
            for id in chunk {
                if let Some(c) = by_id.remove(id) {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    pub async fn customer(&self, id: i64) -> Result<Customer> {
        self.customers_by_ids(&[id])
            .await?
            .pop()
            .ok_or(StorageError::NotFound)
    }

    /// Creates a customer with its phones, tags and assets in one transaction.
    pub async fn create_customer(&self, draft: &CustomerDraft) -> Result<Customer> {
        let mut tx = self.begin_write().await?;
        let id = insert_customer(&mut tx, draft, now_ms()).await?;
        insert_phones(&mut tx, id, &draft.phones).await?;
        insert_tags(&mut tx, id, &draft.tags).await?;
        for asset in &draft.assets {
            insert_asset(&mut tx, id, asset, now_ms()).await?;
        }
        tx.commit().await?;
        self.customer(id).await
    }

    pub async fn update_customer(&self, id: i64, patch: &CustomerPatch) -> Result<Customer> {
        let mut current = self.customer(id).await?;
        let p = patch.clone();
        if let Some(v) = p.external_id {
            current.external_id = v;
        }
        if let Some(v) = p.name {
            current.name = v;
        }
        if let Some(v) = p.tier {
            current.tier = v;
        }
        if let Some(v) = p.key_account {
            current.key_account = v;
        }
        if let Some(v) = p.account_manager {
            current.account_manager = v;
        }
        if let Some(v) = p.birthday {
            current.birthday = v;
        }
        if let Some(v) = p.timezone {
            current.timezone = v;
        }
        if let Some(v) = p.language {
            current.language = v;
        }
        if let Some(v) = p.consent_calls {
            current.consent_calls = v;
        }
        if let Some(v) = p.notes {
            current.notes = v;
        }
        if let Some(v) = p.email {
            current.email = v;
        }
        if let Some(v) = p.provisional {
            current.provisional = v;
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE customers SET external_id = $1, name = $2, tier = $3, key_account = $4, account_manager = $5, \
             birthday = $6, timezone = $7, language = $8, consent_calls = $9, notes = $10, email = $11, \
             provisional = $12, updated_at = $13 WHERE id = $14",
        )
        .bind(&current.external_id)
        .bind(&current.name)
        .bind(&current.tier)
        .bind(current.key_account as i64)
        .bind(&current.account_manager)
        .bind(&current.birthday)
        .bind(&current.timezone)
        .bind(&current.language)
        .bind(current.consent_calls as i64)
        .bind(&current.notes)
        .bind(&current.email)
        .bind(current.provisional as i64)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(tags) = &patch.tags {
            sqlx::query("DELETE FROM customer_tags WHERE customer_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            insert_tags(&mut tx, id, tags).await?;
        }
        if let Some(phones) = &patch.phones {
            sqlx::query("DELETE FROM customer_phones WHERE customer_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            insert_phones(&mut tx, id, phones).await?;
        }
        tx.commit().await?;
        self.customer(id).await
    }

    pub async fn delete_customer(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM customers WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    /// Customers whose name contains `q` (case-insensitive for ASCII), newest first.
    pub async fn search_customers_by_name(
        &self,
        q: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Customer>> {
        let pattern = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let rows = sqlx::query(
            "SELECT id FROM customers WHERE LOWER(name) LIKE LOWER($1) ESCAPE '\\' ORDER BY id DESC LIMIT $2 OFFSET $3",
        )
        .bind(pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<std::result::Result<_, _>>()?;
        self.customers_by_ids(&ids).await
    }

    pub async fn list_customers(&self, limit: i64, offset: i64) -> Result<Vec<Customer>> {
        let rows = sqlx::query("SELECT id FROM customers ORDER BY id DESC LIMIT $1 OFFSET $2")
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<std::result::Result<_, _>>()?;
        self.customers_by_ids(&ids).await
    }

    pub async fn count_customers(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM customers")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Phone rows matching a number: exact E.164 first, then the national number, then (when
    /// `trailing_digits` > 0) the last N digits. Stops at the first kind that finds anything.
    /// At most 50 rows per kind.
    pub async fn find_phone_hits(
        &self,
        number: &Normalized,
        trailing_digits: usize,
    ) -> Result<Vec<PhoneHit>> {
        for step in phone_hit_steps(number, trailing_digits) {
            let args: Vec<Arg> = step.args.iter().map(|a| Arg::Text(a)).collect();
            let rows: Vec<HitRow> = self.select(step.sql, &args).await?;
            if !rows.is_empty() || step.how == NumberMatch::TrailingDigits {
                return Ok(rows
                    .into_iter()
                    .map(|r| PhoneHit {
                        customer_id: r.customer_id,
                        phone_id: r.phone_id,
                        primary: r.primary,
                        how: step.how,
                    })
                    .collect());
            }
        }
        Ok(Vec::new())
    }

    pub async fn assets_of(&self, customer_ids: &[i64]) -> Result<Vec<Asset>> {
        if customer_ids.is_empty() {
            return Ok(Vec::new());
        }
        let (list, params) = id_params(1, customer_ids);
        let args: Vec<Arg> = int_args(&params).collect();
        self.select(
            &format!(
                "SELECT * FROM assets WHERE customer_id IN ({list}) ORDER BY next_service_due"
            ),
            &args,
        )
        .await
    }

    pub async fn add_asset(&self, customer_id: i64, asset: &AssetDraft) -> Result<Asset> {
        let mut tx = self.begin_write().await?;
        let id = insert_asset(&mut tx, customer_id, asset, now_ms()).await?;
        tx.commit().await?;
        let row = sqlx::query("SELECT * FROM assets WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(Asset::from_cols(&row)?)
    }

    /// Customer ids already holding one of these E.164 numbers, for merging imports by number.
    pub async fn customers_by_e164(&self, numbers: &[String]) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        for chunk in numbers.chunks(400) {
            if chunk.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT e164, customer_id FROM customer_phones WHERE e164 IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for n in chunk {
                q = q.bind(n);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.insert(row.try_get("e164")?, row.try_get("customer_id")?);
            }
        }
        Ok(out)
    }

    pub async fn customers_by_external_id(&self, ids: &[String]) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(400) {
            if chunk.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT external_id, id FROM customers WHERE external_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for n in chunk {
                q = q.bind(n);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.insert(row.try_get("external_id")?, row.try_get("id")?);
            }
        }
        Ok(out)
    }
}

pub(crate) async fn insert_customer(
    tx: &mut sqlx::AnyConnection,
    d: &CustomerDraft,
    now: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO customers (external_id, name, tier, key_account, account_manager, birthday, timezone, \
         language, consent_calls, notes, email, provisional, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING id",
    )
    .bind(&d.external_id)
    .bind(&d.name)
    .bind(if d.tier.is_empty() { "C" } else { d.tier.as_str() })
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
    .fetch_one(&mut *tx)
    .await?;
    Ok(row.try_get("id")?)
}

/// Updates the fields an import row carries; empty fields in the row leave stored values alone.
pub(crate) async fn merge_customer(
    tx: &mut sqlx::AnyConnection,
    id: i64,
    d: &CustomerDraft,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE customers SET name = $1, tier = $2, key_account = $3, \
         account_manager = COALESCE($4, account_manager), birthday = COALESCE($5, birthday), \
         timezone = COALESCE($6, timezone), language = COALESCE($7, language), consent_calls = $8, \
         notes = COALESCE($9, notes), email = COALESCE($10, email), \
         external_id = COALESCE(external_id, $11), provisional = 0, updated_at = $12 WHERE id = $13",
    )
    .bind(&d.name)
    .bind(if d.tier.is_empty() { "C" } else { d.tier.as_str() })
    .bind(d.key_account as i64)
    .bind(&d.account_manager)
    .bind(&d.birthday)
    .bind(&d.timezone)
    .bind(&d.language)
    .bind(d.consent_calls as i64)
    .bind(&d.notes)
    .bind(&d.email)
    .bind(&d.external_id)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Inserts phones in one multi-row statement per 250 numbers.
pub(crate) async fn insert_phones_for(
    tx: &mut sqlx::AnyConnection,
    phones: &[(i64, &NewPhone)],
) -> Result<()> {
    const COLS: usize = 9;
    let sqlite = is_sqlite(tx);
    for chunk in phones.chunks(250) {
        let mut sql = String::from(
            "INSERT INTO customer_phones (customer_id, raw, e164, national, rev_national, extension, kind, is_primary, valid) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&bulk_placeholders(sqlite, i * COLS + 1, COLS));
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for (customer_id, p) in chunk {
            let n = &p.normalized;
            q = q
                .bind(*customer_id)
                .bind(&n.raw)
                .bind(&n.e164)
                .bind(&n.national)
                .bind(n.national.as_deref().map(reverse_digits))
                .bind(&n.extension)
                .bind(&p.kind)
                .bind(p.primary as i64)
                .bind(n.valid as i64);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

async fn insert_phones(tx: &mut sqlx::AnyConnection, id: i64, phones: &[NewPhone]) -> Result<()> {
    let list: Vec<(i64, &NewPhone)> = phones.iter().map(|p| (id, p)).collect();
    insert_phones_for(tx, &list).await
}

pub(crate) async fn insert_tags_for(
    tx: &mut sqlx::AnyConnection,
    tags: &[(i64, &str)],
) -> Result<()> {
    let sqlite = is_sqlite(tx);
    for chunk in tags.chunks(500) {
        let mut sql = String::from("INSERT INTO customer_tags (customer_id, tag) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&bulk_placeholders(sqlite, i * 2 + 1, 2));
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT DO NOTHING");
        let mut q = sqlx::query(&sql);
        for (id, tag) in chunk {
            q = q.bind(*id).bind(*tag);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

async fn insert_tags(tx: &mut sqlx::AnyConnection, id: i64, tags: &[String]) -> Result<()> {
    let list: Vec<(i64, &str)> = tags.iter().map(|t| (id, t.as_str())).collect();
    insert_tags_for(tx, &list).await
}

pub(crate) async fn insert_asset(
    tx: &mut sqlx::AnyConnection,
    customer_id: i64,
    a: &AssetDraft,
    now: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO assets (customer_id, kind, plate, vin, model, purchase_date, last_service_date, \
         service_interval_months, service_interval_km, mileage_km, next_service_due, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
         ON CONFLICT (vin) DO UPDATE SET plate = COALESCE(excluded.plate, assets.plate), \
         model = COALESCE(excluded.model, assets.model), \
         last_service_date = COALESCE(excluded.last_service_date, assets.last_service_date), \
         service_interval_months = COALESCE(excluded.service_interval_months, assets.service_interval_months), \
         service_interval_km = COALESCE(excluded.service_interval_km, assets.service_interval_km), \
         mileage_km = COALESCE(excluded.mileage_km, assets.mileage_km), \
         next_service_due = COALESCE(excluded.next_service_due, assets.next_service_due), \
         updated_at = excluded.updated_at RETURNING id",
    )
    .bind(customer_id)
    .bind(if a.kind.is_empty() { "vehicle" } else { a.kind.as_str() })
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
    .fetch_one(&mut *tx)
    .await?;
    Ok(row.try_get("id")?)
}
