//! Feeds the pure compliance engine from storage: pool, transfers and usage totals of a VA.

use crate::domain::catalog::LicenseKind;
use crate::domain::compliance::{va_summary, PoolLicense, TagAdjustment, VaCompliance};
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
    Ok(va_summary(&pool, &transfers, &in_use, now))
}
