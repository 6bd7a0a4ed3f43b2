//! Feeds the pure compliance engine from storage: pool, transfers and usage totals of a VA.

use crate::domain::catalog::LicenseKind;
use crate::domain::catalog::LicenseKind as Kind;
use crate::domain::compliance::{va_summary_with, PoolLicense, TagAdjustment, VaCompliance};
use crate::storage::licenses;
use chrono::{DateTime, Utc};
use rusqlite::Connection;

pub fn pool_of(c: &Connection, va_id: i64) -> rusqlite::Result<Vec<PoolLicense>> {
    Ok(licenses::for_va(c, va_id)?
        .into_iter()
        .map(|l| PoolLicense {
            kind: LicenseKind::parse(&l.kind).unwrap_or(LicenseKind::Rtu),
            tag: l.tag,
            quantity: l.quantity.max(0) as u64,
            starts_at: l.starts_at,
            ends_at: l.ends_at,
        })
        .collect())
}

pub fn transfers_of(c: &Connection, va_id: i64) -> rusqlite::Result<Vec<TagAdjustment>> {
    Ok(licenses::transfers_for_va(c, va_id)?
        .into_iter()
        .map(|(tag, (i, o))| TagAdjustment {
            tag,
            delta: i as i64 - o as i64,
        })
        .collect())
}

/// Compliance of one virtual account from its stored pool and maintained usage totals:
/// cost proportional to the VA's pool and tags, never to its number of instances.
pub fn va_compliance(
    c: &Connection,
    va_id: i64,
    now: DateTime<Utc>,
) -> rusqlite::Result<VaCompliance> {
    let pool = pool_of(c, va_id)?;
    let transfers = transfers_of(c, va_id)?;
    let in_use = licenses::usage_totals(c, va_id)?;
    let steps = hierarchy(c)?;
    let lookup = |higher: &str, lower: &str| {
        // SIA never substitutes, whatever a row in the table says.
        if crate::domain::catalog::kind_of(higher) == Some(Kind::Sia) {
            return None;
        }
        steps
            .iter()
            .find(|(h, l, _)| h == higher && l == lower)
            .map(|(_, _, f)| *f)
    };
    Ok(va_summary_with(&pool, &transfers, &in_use, now, &lookup))
}

/// The deployment's RTU hierarchy, seeded by `schema/0003_hierarchy.sql`.
pub fn hierarchy(c: &Connection) -> rusqlite::Result<Vec<(String, String, u32)>> {
    let mut st = c.prepare_cached("SELECT higher_tag, lower_tag, factor FROM license_hierarchy")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get::<_, i64>(2)?.clamp(2, 1_000) as u32,
        ))
    })?;
    rows.collect()
}
