//! Daily usage snapshots per virtual account and tag, for trends and reports.

use rusqlite::{params, Connection};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub day: String,
    pub va_id: i64,
    pub tag: String,
    pub in_use: i64,
    pub available: i64,
}

pub fn put(c: &Connection, s: &Snapshot) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO usage_snapshots (day, va_id, tag, in_use, available) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(va_id, tag, day) DO UPDATE SET in_use = excluded.in_use, available = excluded.available",
    )?
    .execute(params![s.day, s.va_id, s.tag, s.in_use, s.available])?;
    Ok(())
}

pub fn for_va(c: &Connection, va_id: i64, since_day: &str) -> rusqlite::Result<Vec<Snapshot>> {
    let mut st = c.prepare_cached(
        "SELECT day, va_id, tag, in_use, available FROM usage_snapshots
          WHERE va_id = ?1 AND day >= ?2 ORDER BY tag, day",
    )?;
    let rows = st.query_map(params![va_id, since_day], |r| {
        Ok(Snapshot {
            day: r.get(0)?,
            va_id: r.get(1)?,
            tag: r.get(2)?,
            in_use: r.get(3)?,
            available: r.get(4)?,
        })
    })?;
    rows.collect()
}
