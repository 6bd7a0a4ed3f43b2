//! SQLite storage: the database file, its migrations, one batching writer and pooled readers.
//! Nothing here knows HTTP or licensing rules; callers hand in closures over a connection.

pub mod accounts;
pub mod audit;
pub mod instances;
pub mod licenses;
pub mod migrate;
pub mod principals;
pub mod sessions;
pub mod settings;
pub mod snapshots;
pub mod sync;
pub mod tokens;
mod writer;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use writer::WriterStats;

pub const DB_FILE: &str = "satellite.db";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database pool error: {0}")]
    Pool(#[from] r2d2::Error),
    #[error(
        "database schema version {found} is newer than this satellite supports ({supported}); run a newer satellite binary"
    )]
    NewerSchema { found: i64, supported: i64 },
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl StorageError {
    /// Full disk, read-only file or a lock held too long: the client may retry later.
    pub fn is_retryable(&self) -> bool {
        match self {
            StorageError::Unavailable(_) | StorageError::WriterGone | StorageError::Pool(_) => true,
            StorageError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    ErrorCode::DiskFull
                        | ErrorCode::ReadOnly
                        | ErrorCode::DatabaseBusy
                        | ErrorCode::DatabaseLocked
                        | ErrorCode::CannotOpen
                        | ErrorCode::SystemIoFailure
                )
            ),
            _ => false,
        }
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: writer::Writer,
}

/// Distinct statements a connection keeps prepared: the device protocol alone uses more
/// than rusqlite's default of 16, and a statement pushed out is parsed again on next use.
const STATEMENT_CACHE: usize = 128;

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;",
    )
}

impl Store {
    /// Opens (creating if needed) `DIR/satellite.db`, migrates it and starts the writer.
    pub fn open(data_dir: &Path) -> Result<Store, StorageError> {
        std::fs::create_dir_all(data_dir)?;
        Self::open_file(&data_dir.join(DB_FILE))
    }

    pub fn open_file(path: &Path) -> Result<Store, StorageError> {
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // WAL is switched once here, before any pool exists: doing it per pooled
        // connection races and gives "database is locked" at start.
        conn.busy_timeout(Duration::from_secs(10))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StorageError::Unavailable(format!(
                "could not switch {} to WAL (journal_mode is {mode})",
                path.display()
            )));
        }
        configure(&conn)?;
        migrate::apply(&mut conn)?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|c| {
                configure(c)?;
                c.execute_batch("PRAGMA query_only = ON;")
            });
        let readers = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        let writer = writer::Writer::start(conn);
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                readers,
                writer,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` inside the writer's current batch transaction and waits until that
    /// batch is committed: an `Ok` here means the change is durable. An `Err` from
    /// `f` rolls back only `f`'s own changes (a savepoint), not its batch mates'.
    pub async fn write<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        self.inner.writer.submit(f).await
    }

    /// Same as [`Store::write`] for callers outside an async runtime.
    pub fn write_blocking<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        self.inner.writer.submit_blocking(f)
    }

    /// Runs `f` on a pooled read-only connection off the async executor.
    pub async fn read<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let pool = self.inner.readers.clone();
        match tokio::task::spawn_blocking(move || {
            let conn = pool.get().map_err(StorageError::from)?;
            f(&conn)
        })
        .await
        {
            Ok(r) => r,
            Err(e) => Err(E::from(StorageError::Unavailable(format!(
                "read task failed: {e}"
            )))),
        }
    }

    /// [`Store::read`] for a short indexed lookup on a hot path: when a pooled connection
    /// is free at once, `f` runs right here, saving two thread hand-offs; otherwise it
    /// waits for one off the executor like [`Store::read`].
    pub async fn read_quick<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        match self.inner.readers.try_get() {
            Some(conn) => f(&conn),
            None => self.read(f).await,
        }
    }

    pub fn read_blocking<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E>,
        E: From<StorageError>,
    {
        let conn = self.inner.readers.get().map_err(StorageError::from)?;
        f(&conn)
    }

    pub fn writer_stats(&self) -> WriterStats {
        self.inner.writer.stats()
    }

    /// Stops the writer after it has committed everything already submitted.
    pub fn close(&self) {
        self.inner.writer.stop();
    }
}

/// Seconds since the epoch, the database's time unit.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp()
}

pub fn from_ts(s: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(s, 0).unwrap_or_default()
}

/// True when an insert hit a UNIQUE or PRIMARY KEY constraint.
pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}
