//! Purchased licenses, transfers between virtual accounts and usage totals in SQL.
//! Raw rows only; compliance is computed by `domain::compliance`.

use super::{from_ts, ts};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LicenseRow {
    pub id: i64,
    pub va_id: i64,
    pub tag: String,
    pub description: String,
    pub kind: String,
    pub quantity: i64,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

pub struct NewLicense<'a> {
    pub va_id: i64,
    pub tag: &'a str,
    pub description: &'a str,
    pub kind: &'a str,
    pub quantity: i64,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

pub fn insert(c: &Connection, l: &NewLicense<'_>, now: DateTime<Utc>) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO licenses (va_id, tag, description, kind, quantity, starts_at, ends_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            l.va_id,
            l.tag,
            l.description,
            l.kind,
            l.quantity,
            l.starts_at.map(ts),
            l.ends_at.map(ts),
            ts(now)
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn for_va(c: &Connection, va_id: i64) -> rusqlite::Result<Vec<LicenseRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, va_id, tag, description, kind, quantity, starts_at, ends_at
           FROM licenses WHERE va_id = ?1 ORDER BY tag, id",
    )?;
    let rows = st.query_map([va_id], |r| {
        Ok(LicenseRow {
            id: r.get(0)?,
            va_id: r.get(1)?,
            tag: r.get(2)?,
            description: r.get(3)?,
            kind: r.get(4)?,
            quantity: r.get(5)?,
            starts_at: r.get::<_, Option<i64>>(6)?.map(from_ts),
            ends_at: r.get::<_, Option<i64>>(7)?.map(from_ts),
        })
    })?;
    rows.collect()
}

/// Replaces the whole pool of a virtual account (a satellite applying upstream's answer).
pub fn replace_pool(
    c: &Connection,
    va_id: i64,
    pool: &[NewLicense<'_>],
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.execute("DELETE FROM licenses WHERE va_id = ?1", [va_id])?;
    for l in pool {
        insert(c, l, now)?;
    }
    Ok(())
}

pub fn insert_transfer(
    c: &Connection,
    from_va: i64,
    to_va: i64,
    tag: &str,
    quantity: i64,
    by: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO license_transfers (from_va_id, to_va_id, tag, quantity, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![from_va, to_va, tag, quantity, ts(now), by],
    )?;
    Ok(c.last_insert_rowid())
}

/// Net transfers per tag for a virtual account: (transferred in, transferred out).
pub fn transfers_for_va(
    c: &Connection,
    va_id: i64,
) -> rusqlite::Result<BTreeMap<String, (u64, u64)>> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut st = c.prepare_cached(
        "SELECT tag, SUM(CASE WHEN to_va_id = ?1 THEN quantity ELSE 0 END),
                     SUM(CASE WHEN from_va_id = ?1 THEN quantity ELSE 0 END)
           FROM license_transfers WHERE to_va_id = ?1 OR from_va_id = ?1 GROUP BY tag",
    )?;
    let rows = st.query_map([va_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (tag, i, o) = row?;
        out.insert(tag, (i.max(0) as u64, o.max(0) as u64));
    }
    Ok(out)
}

/// The maintained aggregate of usage per tag for a virtual account.
pub fn usage_totals(c: &Connection, va_id: i64) -> rusqlite::Result<BTreeMap<String, u64>> {
    let mut st =
        c.prepare_cached("SELECT tag, in_use FROM usage_totals WHERE va_id = ?1 AND in_use > 0")?;
    let rows = st.query_map([va_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (tag, n) = row?;
        out.insert(tag, n.max(0) as u64);
    }
    Ok(out)
}

/// Adds `delta` to one aggregate cell; called in the same transaction as the usage change.
pub fn bump_usage_total(c: &Connection, va_id: i64, tag: &str, delta: i64) -> rusqlite::Result<()> {
    if delta == 0 {
        return Ok(());
    }
    if delta < 0 {
        // A decrement always follows the increment that created the row; the CHECK
        // would refuse an upsert's proposed negative row before the conflict is seen.
        c.prepare_cached(
            "UPDATE usage_totals SET in_use = in_use + ?3 WHERE va_id = ?1 AND tag = ?2",
        )?
        .execute(params![va_id, tag, delta])?;
        return Ok(());
    }
    c.prepare_cached(
        "INSERT INTO usage_totals (va_id, tag, in_use) VALUES (?1, ?2, ?3)
         ON CONFLICT(va_id, tag) DO UPDATE SET in_use = in_use + excluded.in_use",
    )?
    .execute(params![va_id, tag, delta])?;
    Ok(())
}
