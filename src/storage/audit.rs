//! The audit log: one row for every change made by a person or an API client.
//! Written in the same transaction as the change it describes.

use super::{from_ts, ts};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

pub fn record(
    c: &Connection,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![ts(at), actor, action, target, detail],
    )?;
    Ok(())
}

/// Newest first; `filter` matches actor, action or target by substring.
pub fn list(
    c: &Connection,
    filter: Option<&str>,
    limit: i64,
    offset: i64,
) -> rusqlite::Result<Vec<AuditEntry>> {
    let pattern = filter.map(|f| format!("%{f}%"));
    let mut st = c.prepare(
        "SELECT id, at, actor, action, target, detail FROM audit_log
         WHERE ?1 IS NULL OR actor LIKE ?1 OR action LIKE ?1 OR target LIKE ?1
         ORDER BY id DESC LIMIT ?2 OFFSET ?3",
    )?;
    let rows = st.query_map(params![pattern, limit, offset], |r| {
        Ok(AuditEntry {
            id: r.get(0)?,
            at: from_ts(r.get(1)?),
            actor: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            detail: r.get(5)?,
        })
    })?;
    rows.collect()
}
