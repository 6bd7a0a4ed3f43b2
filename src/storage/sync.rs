//! Sync bookkeeping in SQL: the authority's satellites and what they reported,
//! the satellite's change log. Row access only; `app::sync` decides.

use super::{from_ts, ts};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct SatelliteRow {
    pub id: i64,
    pub satellite_id: String,
    pub name: String,
    pub account_id: i64,
    #[serde(skip)]
    pub enrollment_token_hash: Option<String>,
    pub public_key: Option<String>,
    pub enrolled_at: Option<DateTime<Utc>>,
    pub last_request_sequence: i64,
    pub last_response_sequence: i64,
    pub last_sync_at: Option<DateTime<Utc>>,
}

const SAT_SELECT: &str =
    "SELECT id, satellite_id, name, account_id, enrollment_token_hash, public_key,
        enrolled_at, last_request_sequence, last_response_sequence, last_sync_at FROM satellites";

fn sat_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SatelliteRow> {
    Ok(SatelliteRow {
        id: r.get(0)?,
        satellite_id: r.get(1)?,
        name: r.get(2)?,
        account_id: r.get(3)?,
        enrollment_token_hash: r.get(4)?,
        public_key: r.get(5)?,
        enrolled_at: r.get::<_, Option<i64>>(6)?.map(from_ts),
        last_request_sequence: r.get(7)?,
        last_response_sequence: r.get(8)?,
        last_sync_at: r.get::<_, Option<i64>>(9)?.map(from_ts),
    })
}

pub fn insert_satellite(
    c: &Connection,
    satellite_id: &str,
    name: &str,
    account_id: i64,
    token_hash: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO satellites (satellite_id, name, account_id, enrollment_token_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![satellite_id, name, account_id, token_hash, ts(now)],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn satellite(c: &Connection, satellite_id: &str) -> rusqlite::Result<Option<SatelliteRow>> {
    c.query_row(
        &format!("{SAT_SELECT} WHERE satellite_id = ?1"),
        [satellite_id],
        sat_row,
    )
    .optional()
}

pub fn satellites(c: &Connection) -> rusqlite::Result<Vec<SatelliteRow>> {
    let mut st = c.prepare(&format!("{SAT_SELECT} ORDER BY name"))?;
    let rows = st.query_map([], sat_row)?;
    rows.collect()
}

/// The stored answer and the digest of the request it answered.
pub fn last_exchange(
    c: &Connection,
    id: i64,
) -> rusqlite::Result<(Option<String>, Option<Vec<u8>>)> {
    c.query_row(
        "SELECT last_request_sha256, last_response FROM satellites WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Pins the satellite's key and consumes its enrollment token.
pub fn enroll(
    c: &Connection,
    id: i64,
    public_key: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE satellites SET public_key = ?2, enrolled_at = ?3, enrollment_token_hash = NULL WHERE id = ?1",
        params![id, public_key, ts(now)],
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn record_answer(
    c: &Connection,
    id: i64,
    request_sequence: i64,
    request_sha256: &str,
    response_sequence: i64,
    response: &[u8],
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE satellites SET last_request_sequence = ?2, last_response_sequence = ?3,
             last_response = ?4, last_sync_at = ?5, last_request_sha256 = ?6 WHERE id = ?1",
        params![
            id,
            request_sequence,
            response_sequence,
            response,
            ts(now),
            request_sha256
        ],
    )?;
    Ok(())
}

/// Assigns a VA to a satellite; false when another satellite already serves it.
pub fn serve_va(c: &Connection, satellite: i64, va_id: i64) -> rusqlite::Result<bool> {
    let n = c.execute(
        "INSERT OR IGNORE INTO satellite_vas (va_id, satellite_id) VALUES (?1, ?2)",
        params![va_id, satellite],
    )?;
    Ok(n == 1)
}

pub fn served_by(c: &Connection, va_id: i64) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        "SELECT satellite_id FROM satellite_vas WHERE va_id = ?1",
        [va_id],
        |r| r.get(0),
    )
    .optional()
}

pub fn served_vas(c: &Connection, satellite: i64) -> rusqlite::Result<Vec<i64>> {
    let mut st =
        c.prepare("SELECT va_id FROM satellite_vas WHERE satellite_id = ?1 ORDER BY va_id")?;
    let rows = st.query_map([satellite], |r| r.get(0))?;
    rows.collect()
}

pub struct Reported<'a> {
    pub udi_pid: &'a str,
    pub udi_serial: &'a str,
    pub va_id: i64,
    pub hostname: Option<&'a str>,
    pub last_contact_at: &'a str,
    pub usage_json: &'a str,
}

pub fn clear_reported(c: &Connection, satellite: i64) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM reported_instances WHERE satellite_id = ?1",
        [satellite],
    )?;
    c.execute(
        "DELETE FROM reported_usage WHERE va_id IN (SELECT va_id FROM satellite_vas WHERE satellite_id = ?1)",
        [satellite],
    )?;
    Ok(())
}

pub fn insert_reported(c: &Connection, satellite: i64, r: &Reported<'_>) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO reported_instances
           (satellite_id, udi_pid, udi_serial, va_id, hostname, last_contact_at, usage_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        satellite,
        r.udi_pid,
        r.udi_serial,
        r.va_id,
        r.hostname,
        r.last_contact_at,
        r.usage_json
    ])?;
    Ok(())
}

pub fn add_reported_usage(c: &Connection, va_id: i64, tag: &str, n: i64) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO reported_usage (va_id, tag, in_use) VALUES (?1, ?2, ?3)
         ON CONFLICT(va_id, tag) DO UPDATE SET in_use = in_use + excluded.in_use",
    )?
    .execute(params![va_id, tag, n])?;
    Ok(())
}

pub fn reported_count(c: &Connection, satellite: i64) -> rusqlite::Result<i64> {
    c.query_row(
        "SELECT COUNT(*) FROM reported_instances WHERE satellite_id = ?1",
        [satellite],
        |r| r.get(0),
    )
}

/// Usage per tag of a VA as its satellite last reported it (authority side).
pub fn reported_usage(c: &Connection, va_id: i64) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut st =
        c.prepare("SELECT tag, in_use FROM reported_usage WHERE va_id = ?1 ORDER BY tag")?;
    let rows = st.query_map([va_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub struct ChangeRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub account: String,
    pub va: String,
    pub udi_pid: Option<String>,
    pub udi_serial: Option<String>,
    pub detail: Option<String>,
}

/// Satellite: remembers a change for the next request.
#[allow(clippy::too_many_arguments)]
pub fn record_change(
    c: &Connection,
    kind: &str,
    account: &str,
    va: &str,
    udi_pid: Option<&str>,
    udi_serial: Option<&str>,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO sync_changes (at, kind, account, va, udi_pid, udi_serial, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![ts(now), kind, account, va, udi_pid, udi_serial, detail])?;
    Ok(())
}

pub fn changes(c: &Connection) -> rusqlite::Result<Vec<ChangeRow>> {
    let mut st = c.prepare("SELECT id, at, kind, account, va, udi_pid, udi_serial, detail FROM sync_changes ORDER BY id")?;
    let rows = st.query_map([], |r| {
        Ok(ChangeRow {
            id: r.get(0)?,
            at: from_ts(r.get(1)?),
            kind: r.get(2)?,
            account: r.get(3)?,
            va: r.get(4)?,
            udi_pid: r.get(5)?,
            udi_serial: r.get(6)?,
            detail: r.get(7)?,
        })
    })?;
    rows.collect()
}

pub fn ack_changes(c: &Connection, through: i64) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM sync_changes WHERE id <= ?1", [through])
}

/// Every instance with account and VA names, in id order (for a sync request).
pub struct InstanceExport {
    pub udi_pid: String,
    pub udi_serial: String,
    pub hostname: Option<String>,
    pub account: String,
    pub va: String,
    pub registered_at: DateTime<Utc>,
    pub last_contact_at: DateTime<Utc>,
    pub usage: Vec<(String, i64)>,
}

pub fn export_instances(
    c: &Connection,
    mut each: impl FnMut(InstanceExport),
) -> rusqlite::Result<()> {
    let mut st = c.prepare(
        "SELECT p.id, p.udi_pid, p.udi_serial, p.hostname, a.name, v.name, p.registered_at, p.last_contact_at,
                u.tag, u.count
           FROM product_instances p
           JOIN virtual_accounts v ON v.id = p.va_id
           JOIN smart_accounts a ON a.id = v.account_id
           LEFT JOIN instance_usage u ON u.instance_id = p.id
          ORDER BY p.id, u.tag",
    )?;
    let mut rows = st.query([])?;
    let mut cur: Option<(i64, InstanceExport)> = None;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        if cur.as_ref().map(|(i, _)| *i) != Some(id) {
            if let Some((_, done)) = cur.take() {
                each(done);
            }
            cur = Some((
                id,
                InstanceExport {
                    udi_pid: r.get(1)?,
                    udi_serial: r.get(2)?,
                    hostname: r.get(3)?,
                    account: r.get(4)?,
                    va: r.get(5)?,
                    registered_at: from_ts(r.get(6)?),
                    last_contact_at: from_ts(r.get(7)?),
                    usage: Vec::new(),
                },
            ));
        }
        if let (Some(tag), Some((_, inst))) = (r.get::<_, Option<String>>(8)?, cur.as_mut()) {
            inst.usage.push((tag, r.get(9)?));
        }
    }
    if let Some((_, done)) = cur {
        each(done);
    }
    Ok(())
}
