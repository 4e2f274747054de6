//! Point reads on SQLite through rusqlite, on the calling thread.
//!
//! sqlx runs each SQLite connection on a worker thread of its own: a query is sent to it over a
//! channel and its rows come back the same way, two thread hand-offs that cost several times the
//! indexed lookup itself (a phone lookup on a million customers takes a few microseconds in
//! SQLite and some 50 µs through sqlx). The reads on the hot path of every call (looking the
//! number up, loading the candidates, building the pop's card) and of every authenticated request
//! go through here instead: a handful of read-only connections to the same file, each used by one
//! caller at a time and run right on the caller's thread, as a short lock would be.
//!
//! [`Storage::select`] is the one door: the same SQL (with sqlx's `$N` parameters) and the same
//! row mapping ([`FromCols`], written once against [`Cols`]) serve rusqlite on SQLite and sqlx on
//! PostgreSQL, so no statement is written twice.
//!
//! Only lookups through an index belong here, never a scan: they hold up the async worker thread
//! they run on. In WAL mode a reader never waits for writers; when SQLite still answers busy (a
//! WAL being recovered), or for an in-memory database other connections cannot open, the caller
//! falls back to the pool.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use rusqlite::types::{ToSql, ToSqlOutput};
use sqlx::any::AnyRow;

use super::{Result, Storage, StorageError};

/// A column value both drivers decode alike (integers, text, their `Option`s).
pub(crate) trait Column:
    for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + rusqlite::types::FromSql
{
}

impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + rusqlite::types::FromSql
{
}

/// A row of either driver, read by column name.
pub(crate) trait Cols {
    fn col<T: Column>(&self, name: &str) -> std::result::Result<T, sqlx::Error>;
    fn first<T: Column>(&self) -> std::result::Result<T, sqlx::Error>;
}

impl Cols for AnyRow {
    fn col<T: Column>(&self, name: &str) -> std::result::Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, name)
    }

    fn first<T: Column>(&self) -> std::result::Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, 0)
    }
}

impl Cols for rusqlite::Row<'_> {
    fn col<T: Column>(&self, name: &str) -> std::result::Result<T, sqlx::Error> {
        self.get(name).map_err(|e| decode_error(name, e))
    }

    fn first<T: Column>(&self) -> std::result::Result<T, sqlx::Error> {
        self.get(0).map_err(|e| decode_error("0", e))
    }
}

fn decode_error(column: &str, e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(e),
    }
}

/// A row's first column, for statements that select one value.
pub(crate) struct First<T>(pub T);

impl<T: Column> FromCols for First<T> {
    fn from_cols<R: Cols>(row: &R) -> std::result::Result<Self, sqlx::Error> {
        Ok(First(row.first()?))
    }
}

/// What a row of a [`Storage::select`] becomes.
pub(crate) trait FromCols: Sized {
    fn from_cols<R: Cols>(row: &R) -> std::result::Result<Self, sqlx::Error>;
}

/// A parameter of a [`Storage::select`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Int(i64),
    Text(&'a str),
}

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Arg::Int(i) => i.to_sql(),
            Arg::Text(t) => t.to_sql(),
        }
    }
}

/// `Arg::Int` for each id.
pub(crate) fn int_args(ids: &[i64]) -> impl Iterator<Item = Arg<'static>> + '_ {
    ids.iter().map(|id| Arg::Int(*id))
}

impl Storage {
    /// Runs a read-only statement and maps its rows: on SQLite through [`Readers`] (the pool when
    /// they are busy), on PostgreSQL through the pool. `sql` numbers its parameters `$1`, `$2`...
    /// as every statement here does; `args[n - 1]` is `$n`.
    pub(crate) async fn select<T: FromCols>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<T>> {
        if let Some(readers) = &self.readers {
            let read = readers.read(|conn| {
                let mut statement = conn.prepare_cached(sql)?;
                bind_numbered(&mut statement, args)?;
                let mut rows = statement.raw_query();
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(T::from_cols(row));
                }
                Ok(out)
            });
            if let Some(rows) = read {
                return rows?
                    .into_iter()
                    .map(|row| row.map_err(StorageError::from))
                    .collect();
            }
        }
        let mut query = sqlx::query(sql);
        for arg in args {
            query = match arg {
                Arg::Int(i) => query.bind(*i),
                Arg::Text(t) => query.bind(*t),
            };
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| T::from_cols(row).map_err(StorageError::from))
            .collect()
    }
}

/// Binds `$n` (or `?n`) to `args[n - 1]`, as sqlx does on SQLite: SQLite itself numbers `$n`
/// parameters in the order they first appear, which is not always `n`.
fn bind_numbered(
    statement: &mut rusqlite::CachedStatement<'_>,
    args: &[Arg<'_>],
) -> rusqlite::Result<()> {
    for index in 1..=statement.parameter_count() {
        let n = statement
            .parameter_name(index)
            .and_then(|name| name.get(1..))
            .and_then(|digits| digits.parse::<usize>().ok())
            .unwrap_or(index);
        let arg = args
            .get(n.wrapping_sub(1))
            .ok_or(rusqlite::Error::InvalidParameterCount(n, args.len()))?;
        statement.raw_bind_parameter(index, arg)?;
    }
    Ok(())
}

/// No memory map: whenever a read transaction finds that another connection wrote, SQLite unmaps
/// the whole file, and every page is faulted in again, which under the daemon's steady writes
/// cost more than the reads it saved (BENCHMARKS.md, screen pop).
const MMAP_BYTES: i64 = 0;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Connections kept for reuse; more are opened when all are in use and closed after.
    keep: usize,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("path", &self.path).finish()
    }
}

impl Readers {
    /// Readers of the database file at `path`; none for an in-memory database.
    pub(crate) fn new(path: &str, keep: usize) -> Option<Readers> {
        if path.is_empty() || path == ":memory:" {
            return None;
        }
        Some(Readers {
            path: PathBuf::from(path),
            idle: Mutex::new(Vec::new()),
            keep: keep.max(1),
        })
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Busy means "ask the pool", at once: this runs on an async worker thread.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        Ok(conn)
    }

    /// Runs `read` on an idle connection (or a new one). `None` when SQLite is busy: the caller
    /// reads through the pool instead.
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<Result<T>> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle.map(Ok).unwrap_or_else(|| self.open()) {
            Ok(conn) => conn,
            Err(e) => return busy_or(e),
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.keep {
            idle.push(conn);
        }
        drop(idle);
        match result {
            Ok(value) => Some(Ok(value)),
            Err(e) => busy_or(e),
        }
    }
}

/// `None` for "busy, use the pool", else the error as the pool's would be.
fn busy_or<T>(e: rusqlite::Error) -> Option<Result<T>> {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked) => None,
        Some(rusqlite::ErrorCode::CannotOpen) => {
            Some(Err(StorageError::Unavailable(e.to_string())))
        }
        _ => Some(Err(StorageError::Other(e.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_bind_by_their_number_not_their_place() {
        let conn = Connection::open_in_memory().unwrap();
        let mut statement = conn
            .prepare_cached("SELECT $2 || '-' || $1 || '-' || $2")
            .unwrap();
        bind_numbered(&mut statement, &[Arg::Text("a"), Arg::Int(7)]).unwrap();
        let mut rows = statement.raw_query();
        let value: String = rows.next().unwrap().unwrap().get(0).unwrap();
        assert_eq!(value, "7-a-7");
        drop(rows);
        let mut statement = conn.prepare_cached("SELECT $3").unwrap();
        assert!(bind_numbered(&mut statement, &[Arg::Int(1)]).is_err());
    }

    #[test]
    fn an_in_memory_database_has_no_readers() {
        assert!(Readers::new(":memory:", 4).is_none());
        assert!(Readers::new("", 4).is_none());
    }

    #[test]
    fn reads_a_file_another_connection_writes_and_keeps_its_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (7);",
            )
            .unwrap();
        let readers = Readers::new(path.to_str().unwrap(), 1).unwrap();
        let read = || {
            readers
                .read(|c| c.query_row("SELECT SUM(n) FROM t", [], |r| r.get::<_, i64>(0)))
                .unwrap()
                .unwrap()
        };
        assert_eq!(read(), 7);
        writer.execute("INSERT INTO t VALUES (5)", []).unwrap();
        assert_eq!(read(), 12, "a committed write is seen by the next read");
        assert_eq!(readers.idle.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_missing_file_is_unavailable_and_bad_sql_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let gone = Readers::new(dir.path().join("none.db").to_str().unwrap(), 1).unwrap();
        assert!(matches!(
            gone.read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))),
            Some(Err(StorageError::Unavailable(_)))
        ));
        let path = dir.path().join("r.db");
        Connection::open(&path).unwrap();
        let readers = Readers::new(path.to_str().unwrap(), 1).unwrap();
        assert!(matches!(
            readers
                .read(|c| c.query_row("SELECT nothing FROM nowhere", [], |r| r.get::<_, i64>(0))),
            Some(Err(StorageError::Other(_)))
        ));
    }
}
