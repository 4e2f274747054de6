//! The call-event journal: every accepted event is written here before it is acknowledged, and
//! marked processed once the call model has taken it, so a crash between the two loses nothing.

use sqlx::Row;

use super::privacy::PopViewed;
use super::{Result, Storage, now_ms};

#[derive(Debug, Clone)]
pub struct JournaledEvent {
    pub id: i64,
    pub source: String,
    pub body: String,
    pub received_at: i64,
}

/// The most rows per multi-row INSERT (three parameters each). Modest, because SQLite finds each
/// `$N` parameter sqlx binds by a linear scan of the statement's parameters.
const JOURNAL_ROWS_PER_STATEMENT: usize = 64;
/// The most ids per `IN (...)` list when marking events processed.
const JOURNAL_IDS_PER_STATEMENT: usize = 128;
/// Statement sizes adding up to `count`: `max` as often as it fits, then powers of two. Batches
/// come in every size, but their statements in at most a dozen, so the few prepared statements
/// stay in the connection's statement cache (a new statement per size would be parsed every
/// time and push the pop's queries out of the cache).
pub(super) fn statement_sizes(count: usize, max: usize) -> Vec<usize> {
    let mut sizes = vec![max; count / max];
    let mut left = count % max;
    let mut size = max;
    while left > 0 {
        size /= 2;
        if left >= size {
            sizes.push(size);
            left -= size;
        }
    }
    sizes
}

impl Storage {
    pub async fn journal_event(&self, source: &str, body: &str) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO call_events (source, body, received_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(source)
        .bind(body)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Journals `events` (source, body), marks the events `processed` were processed and records
    /// the pops `viewed` in the audit trail, in one write transaction; returns the new events' ids
    /// in the order given. Under load the call service hands in hundreds at once, so the journal
    /// costs one commit per batch rather than two per event and one per pop.
    pub async fn journal_batch(
        &self,
        events: &[(&str, &str)],
        processed: &[i64],
        viewed: &[PopViewed],
    ) -> Result<Vec<i64>> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let mut ids = Vec::with_capacity(events.len());
        let mut rest = events;
        for size in statement_sizes(events.len(), JOURNAL_ROWS_PER_STATEMENT) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let values: Vec<String> = (0..size)
                .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
                .collect();
            let sql = format!(
                "INSERT INTO call_events (source, body, received_at) VALUES {} RETURNING id",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for (source, body) in chunk {
                query = query.bind(*source).bind(*body).bind(now);
            }
            let rows = query.fetch_all(&mut *tx).await?;
            let mut chunk_ids = rows
                .iter()
                .map(|r| r.try_get::<i64, _>("id"))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            // RETURNING promises no order, but both databases number the rows of one VALUES list
            // in its order (SQLite: max rowid + 1; PostgreSQL: the identity sequence), so the
            // ids sorted are the events' ids in the order given.
            chunk_ids.sort_unstable();
            if chunk_ids.len() != size {
                return Err(super::StorageError::Other(format!(
                    "journal insert returned {} ids for {size} events",
                    chunk_ids.len()
                )));
            }
            ids.extend(chunk_ids);
        }
        let mut rest = processed;
        for size in statement_sizes(processed.len(), JOURNAL_IDS_PER_STATEMENT) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let placeholders: Vec<String> = (0..size).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "UPDATE call_events SET processed_at = $1 WHERE id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(now);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(&mut *tx).await?;
        }
        super::privacy::audit_pops(&mut tx, viewed).await?;
        tx.commit().await?;
        Ok(ids)
    }

    pub async fn mark_event_processed(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE call_events SET processed_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Events accepted but never processed (the daemon stopped in between), oldest first.
    pub async fn unprocessed_events(&self, limit: i64) -> Result<Vec<JournaledEvent>> {
        let rows = sqlx::query(
            "SELECT id, source, body, received_at FROM call_events WHERE processed_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JournaledEvent {
                    id: r.try_get("id")?,
                    source: r.try_get("source")?,
                    body: r.try_get("body")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }

    /// Drops processed events older than `before` (the journal is not an archive).
    pub async fn prune_events(&self, before: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM call_events WHERE processed_at IS NOT NULL AND processed_at < $1",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::statement_sizes;

    #[test]
    fn statement_sizes_add_up_and_come_from_a_fixed_set() {
        for count in 0..2_000 {
            let sizes = statement_sizes(count, 256);
            assert_eq!(sizes.iter().sum::<usize>(), count);
            assert!(
                sizes.iter().all(|s| s.is_power_of_two() && *s <= 256),
                "{sizes:?}"
            );
        }
        assert_eq!(statement_sizes(300, 256), vec![256, 32, 8, 4]);
    }
}
