//! Storage: the only module that speaks SQL.
//!
//! One SQL dialect serves SQLite (the embedded default) and PostgreSQL through sqlx's `Any`
//! driver: statements use `$N` parameters (which SQLite understands too), timestamps are unix
//! milliseconds in 64-bit integers, dates are `YYYY-MM-DD` text and flags are 0/1 integers, so
//! the same statement decodes alike on both. Where the two must differ (row locking when tasks are
//! claimed) the code branches on [`DbKind`]. Migrations live in `migrations/{sqlite,postgres}` and
//! are embedded in the binary.

pub mod agents;
pub mod customers;
pub mod dnc;
pub mod events;
pub mod import;
pub mod interactions;
pub mod privacy;
mod readers;

pub(crate) use readers::{Arg, Cols, First, FromCols, int_args};
pub mod reports;
pub mod tasks;

use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};

use crate::settings::DatabaseSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

/// Why a storage call failed, sorted by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database did not answer (pool timed out, connection lost): retry later, answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("not found")]
    NotFound,
    /// A uniqueness or reference rule was broken by the request.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StorageError::NotFound,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed => StorageError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) => {
                let message = db.message().to_string();
                if db.is_unique_violation()
                    || db.is_foreign_key_violation()
                    || db.is_check_violation()
                {
                    StorageError::Conflict(message)
                } else if message.contains("database is locked") {
                    StorageError::Unavailable(message)
                } else {
                    StorageError::Other(message)
                }
            }
            _ => StorageError::Other(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StorageError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StorageError::Other(format!("migration failed: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    pool: AnyPool,
    /// Where write transactions ([`Storage::begin_write`]) run: on SQLite a pool of one
    /// connection, as they take turns at the write gate anyway. SQLite empties a connection's page
    /// cache when it begins a transaction after another connection committed; the one writer is
    /// that other connection only to itself, so its cache stays warm from one commit to the
    /// next, where eight pooled writers each read their pages again. The pool otherwise.
    writer: AnyPool,
    kind: DbKind,
    salt: std::sync::Arc<tokio::sync::OnceCell<String>>,
    /// SQLite's point reads on the calling thread ([`readers`]); none on PostgreSQL.
    readers: Option<std::sync::Arc<readers::Readers>>,
    /// Taken by every write transaction on SQLite, which has one write lock per file: writers
    /// wait for each other here, in turn, instead of in SQLite's busy handler, which polls with
    /// sleeps of 1 ms and more.
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Write transactions waiting at the gate, so a long writer can let them go first.
    writers_waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Token holders found lately ([`Storage::token_holder`]).
    holders: std::sync::Arc<agents::HolderCache>,
}

/// A write transaction ([`Storage::begin_write`]). It derefs to the connection, so statements run
/// on `&mut *tx`; on SQLite it holds the write gate until it is committed or dropped.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.rollback().await
    }

    /// The transaction and the gate it holds, for a holder that keeps both (an import's dry run).
    pub(crate) fn into_parts(
        self,
    ) -> (
        sqlx::Transaction<'static, sqlx::Any>,
        Option<tokio::sync::OwnedMutexGuard<()>>,
    ) {
        (self.tx, self.gate)
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Storage {
    /// Opens the pool; for SQLite the file (and its folder) is created on first run, in WAL mode.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Storage> {
        sqlx::any::install_default_drivers();
        let kind = if settings.url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else {
            DbKind::Postgres
        };
        let mut url = settings.url.clone();
        if kind == DbKind::Sqlite {
            let path = sqlite_path(&url);
            if let Some(parent) = Path::new(&path).parent() {
                if !parent.as_os_str().is_empty() && path != ":memory:" {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StorageError::Other(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
            }
            if !url.contains("mode=") && path != ":memory:" {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        let options = |max_connections: u32| {
            AnyPoolOptions::new()
                .max_connections(max_connections)
                .min_connections(if kind == DbKind::Sqlite { 1 } else { 0 })
                .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if kind == DbKind::Sqlite {
                            // No checkpoint in a commit: see `checkpoint_wal`.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                                 PRAGMA wal_autocheckpoint = 0;",
                            )
                            .await?;
                        }
                        Ok(())
                    })
                })
        };
        let unavailable = |e: sqlx::Error| {
            StorageError::Unavailable(format!(
                "cannot open {}: {e}",
                crate::settings::redact_url(&settings.url)
            ))
        };
        let pool = options(settings.max_connections)
            .connect(&url)
            .await
            .map_err(unavailable)?;
        // An in-memory database is one per connection: it keeps to the one pool.
        let writer = if kind == DbKind::Sqlite && sqlite_path(&url) != ":memory:" {
            options(1).connect(&url).await.map_err(unavailable)?
        } else {
            pool.clone()
        };
        let readers = match kind {
            DbKind::Sqlite => readers::Readers::new(
                &sqlite_path(&settings.url),
                settings.max_connections as usize,
            )
            .map(std::sync::Arc::new),
            DbKind::Postgres => None,
        };
        Ok(Storage {
            pool,
            writer,
            kind,
            salt: Default::default(),
            readers,
            write_gate: Default::default(),
            writers_waiting: Default::default(),
            holders: Default::default(),
        })
    }

    /// A transaction that will write. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first and writes later fails with "database is locked"
    /// when another connection wrote in between, and no busy timeout can save it. Write
    /// transactions of this process take turns at the write gate first (see [`Storage`]); one
    /// must not be begun while the same task holds another.
    pub(crate) async fn begin_write(&self) -> std::result::Result<WriteTx, sqlx::Error> {
        match self.kind {
            DbKind::Sqlite => {
                use std::sync::atomic::Ordering;
                self.writers_waiting.fetch_add(1, Ordering::Relaxed);
                let gate = self.write_gate.clone().lock_owned().await;
                self.writers_waiting.fetch_sub(1, Ordering::Relaxed);
                let tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx {
                    tx,
                    gate: Some(gate),
                })
            }
            DbKind::Postgres => Ok(WriteTx {
                tx: self.writer.begin().await?,
                gate: None,
            }),
        }
    }

    /// Whether another write transaction waits for the one in progress (SQLite). A writer of
    /// many independent rows commits what it has when this is so, and begins again, so a
    /// background batch never holds up a write a caller is waiting for.
    pub(crate) fn writers_waiting(&self) -> bool {
        self.writers_waiting
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<()> {
        match self.kind {
            DbKind::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            DbKind::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        self.restore_deferred_indexes().await?;
        // Make the number salt now: made lazily inside a write transaction it would wait on itself.
        self.number_hash("").await?;
        Ok(())
    }

    /// The salted hash under which an erased customer's number stays on the do-not-call list.
    /// The salt is made once per database and kept in it, so every process agrees on it.
    pub async fn number_hash(&self, e164: &str) -> Result<String> {
        use sha2::{Digest, Sha256};
        let salt = self
            .salt
            .get_or_try_init(|| async {
                let fresh = hex::encode(rand::random::<[u8; 32]>());
                sqlx::query("INSERT INTO settings_kv (key, value) VALUES ('number_salt', $1) ON CONFLICT (key) DO NOTHING")
                    .bind(&fresh)
                    .execute(&self.pool)
                    .await?;
                let row = sqlx::query("SELECT value FROM settings_kv WHERE key = 'number_salt'").fetch_one(&self.pool).await?;
                use sqlx::Row;
                Ok::<String, StorageError>(row.try_get("value")?)
            })
            .await?;
        Ok(hex::encode(Sha256::digest(
            format!("{salt}:{e164}").as_bytes(),
        )))
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Pool figures for metrics: (connections open, idle).
    pub fn pool_usage(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Copies what the write-ahead log holds into the database file (SQLite; nothing to do on
    /// PostgreSQL), without waiting for or holding up readers and writers (a passive
    /// checkpoint). The daemon's connections do not checkpoint when they commit, which would
    /// make the write that crosses SQLite's threshold (a call event, a new contact) wait for
    /// thousands of pages to be copied and synced; the daemon calls this every
    /// [`CHECKPOINT_INTERVAL`] instead. A process that only runs a command checkpoints when it
    /// closes its last connection, as SQLite always does. Returns the log's pages and how many of
    /// them are now in the database file.
    pub async fn checkpoint_wal(&self) -> Result<(i64, i64)> {
        if self.kind != DbKind::Sqlite {
            return Ok((0, 0));
        }
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get(1)?, row.try_get(2)?))
    }

    /// Runs [`Storage::checkpoint_wal`] every [`CHECKPOINT_INTERVAL`] until `shutdown`.
    pub async fn checkpoint_wal_until(&self, shutdown: tokio_util::sync::CancellationToken) {
        if self.kind != DbKind::Sqlite {
            return;
        }
        let mut every = tokio::time::interval(CHECKPOINT_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = every.tick() => {}
            }
            match self.checkpoint_wal().await {
                Ok((log, copied)) => {
                    tracing::trace!(log, copied, "write-ahead log checkpointed")
                }
                Err(error) => tracing::warn!(%error, "write-ahead log checkpoint failed"),
            }
        }
    }
}

/// How often the daemon checkpoints SQLite's write-ahead log ([`Storage::checkpoint_wal`]).
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

fn sqlite_path(url: &str) -> String {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.split('?').next().unwrap_or("").to_string()
}

/// Milliseconds since the Unix epoch, the unit of every stored timestamp.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Ids inlined into an `IN (...)` list. Safe because they are integers from our own rows, and it
/// spares building argument lists of thousands.
pub(crate) fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Parameters for an `IN (...)` list of `ids` numbered from `$start`, the ids padded to a power of
/// two by repeating the last one: the statement text then comes in a handful of sizes, which stay
/// in each connection's statement cache. Ids inlined into the text make a new statement per set
/// of ids; at a thousand pops a second, one per customer pushed every other statement out of the
/// cache, and each query was parsed again.
pub(crate) fn id_params(start: usize, ids: &[i64]) -> (String, Vec<i64>) {
    let mut padded = ids.to_vec();
    if let Some(&last) = ids.last() {
        padded.resize(ids.len().next_power_of_two(), last);
    }
    (placeholders(start, padded.len()), padded)
}

/// `$start, $start+1, ...` for `n` parameters, for `IN (...)` lists.
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    let mut out = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('$');
        out.push_str(&(start + i).to_string());
    }
    out
}

/// Placeholders for a statement with many parameters (multi-row inserts, long `IN` lists):
/// `$start, $start+1, ...` on PostgreSQL, `?, ?, ...` on SQLite, where the statement must then
/// use no `$N` at all. sqlx binds SQLite's `$N` parameters by name and SQLite finds a name by a
/// linear scan, so binding them is quadratic in their number (a fifth of a large import's time
/// at 900 a statement); anonymous `?` are bound by position.
pub(crate) fn bulk_placeholders(sqlite: bool, start: usize, n: usize) -> String {
    if sqlite {
        vec!["?"; n].join(", ")
    } else {
        placeholders(start, n)
    }
}

/// Whether a connection (or a transaction, through `Deref`) is on SQLite.
pub(crate) fn is_sqlite(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME
}

pub(crate) fn flag<R: Cols>(row: &R, column: &str) -> std::result::Result<bool, sqlx::Error> {
    Ok(row.col::<i64>(column)? != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_path_strips_scheme_and_query() {
        assert_eq!(
            sqlite_path("sqlite://data/ringside.db?mode=rwc"),
            "data/ringside.db"
        );
        assert_eq!(sqlite_path("sqlite:data/x.db"), "data/x.db");
        assert_eq!(sqlite_path("sqlite::memory:"), ":memory:");
    }

    #[test]
    fn placeholders_are_numbered_from_start() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(1, 0), "");
    }

    #[test]
    fn id_params_pad_to_a_power_of_two_with_the_last_id() {
        assert_eq!(id_params(2, &[7]), ("$2".to_string(), vec![7]));
        assert_eq!(
            id_params(1, &[4, 5, 6]),
            ("$1, $2, $3, $4".to_string(), vec![4, 5, 6, 6])
        );
        assert_eq!(id_params(1, &[]), (String::new(), vec![]));
    }

    #[test]
    fn bulk_placeholders_are_anonymous_on_sqlite_only() {
        assert_eq!(bulk_placeholders(true, 3, 3), "?, ?, ?");
        assert_eq!(bulk_placeholders(false, 3, 3), "$3, $4, $5");
    }
}
