//! Versioned schema migrations embedded from `schema/`, applied in order at open.
//! Each runs in its own transaction together with the version bump; a newer database is refused.

use super::StorageError;
use rusqlite::Connection;

/// (version, SQL). Versions are dense and start at 1; `PRAGMA user_version` holds the applied one.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../schema/0001_initial.sql")),
    (2, include_str!("../../schema/0002_sync.sql")),
    (3, include_str!("../../schema/0003_hierarchy.sql")),
    (4, include_str!("../../schema/0004_sessions.sql")),
    (5, include_str!("../../schema/0005_va_instance_counts.sql")),
    (6, include_str!("../../schema/0006_sia_grace_index.sql")),
];

pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

pub fn current_version(conn: &Connection) -> Result<i64, StorageError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

pub fn apply(conn: &mut Connection) -> Result<(), StorageError> {
    apply_up_to(conn, latest_version())
}

/// Applies migrations up to `target`; used directly by upgrade tests that build old databases.
pub fn apply_up_to(conn: &mut Connection, target: i64) -> Result<(), StorageError> {
    let found = current_version(conn)?;
    let supported = latest_version();
    if found > supported {
        return Err(StorageError::NewerSchema { found, supported });
    }
    for (version, sql) in MIGRATIONS {
        if *version <= found || *version > target {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}
