//! The do-not-call list: numbers that must never be dialed, in clear (opt-outs) or as a salted
//! hash (what remains of an erased customer).

use serde::Serialize;
use sqlx::Row;

use super::{Result, Storage, StorageError, now_ms};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DncEntry {
    pub id: i64,
    pub e164: Option<String>,
    pub reason: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

impl Storage {
    pub async fn add_dnc(
        &self,
        e164: &str,
        reason: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<DncEntry> {
        sqlx::query(
            "INSERT INTO dnc (e164, reason, created_at, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (e164) DO UPDATE SET reason = excluded.reason, expires_at = excluded.expires_at",
        )
        .bind(e164)
        .bind(reason)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        let row =
            sqlx::query("SELECT id, e164, reason, created_at, expires_at FROM dnc WHERE e164 = $1")
                .bind(e164)
                .fetch_one(&self.pool)
                .await?;
        Ok(DncEntry {
            id: row.try_get("id")?,
            e164: row.try_get("e164")?,
            reason: row.try_get("reason")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        })
    }

    pub async fn remove_dnc(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM dnc WHERE id = $1 AND e164 IS NOT NULL")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    /// Opt-outs in clear, newest first (hashed entries of erased customers are not listed).
    pub async fn list_dnc(&self, limit: i64, offset: i64) -> Result<Vec<DncEntry>> {
        let rows = sqlx::query(
            "SELECT id, e164, reason, created_at, expires_at FROM dnc WHERE e164 IS NOT NULL \
             ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DncEntry {
                    id: row.try_get("id")?,
                    e164: row.try_get("e164")?,
                    reason: row.try_get("reason")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// True when the number (or its salted hash) is on the list and the entry has not expired.
    pub async fn is_dnc(&self, e164: &str, number_hash: Option<&str>) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM dnc WHERE (e164 = $1 OR number_hash = $2) AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(e164)
        .bind(number_hash.unwrap_or(""))
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}
