//! Product instances, their latest usage, seen nonces and device events in SQL.
//! Every usage change also moves the `usage_totals` aggregate, in the same transaction.

use super::licenses::bump_usage_total;
use super::{from_ts, ts};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Instance {
    pub id: i64,
    pub udi_pid: String,
    pub udi_serial: String,
    pub hostname: Option<String>,
    pub software_version: Option<String>,
    pub va_id: i64,
    pub public_key: String,
    pub export_controlled: bool,
    pub registered_at: DateTime<Utc>,
    pub last_renewed_at: DateTime<Utc>,
    pub id_cert_serial: String,
    pub id_cert_not_after: DateTime<Utc>,
    pub last_contact_at: DateTime<Utc>,
    pub last_authorized_at: Option<DateTime<Utc>>,
    pub sia_grace_used_seconds: i64,
    pub sia_ooc_since: Option<DateTime<Utc>>,
}

const SELECT: &str =
    "SELECT id, udi_pid, udi_serial, hostname, software_version, va_id, public_key,
        export_controlled, registered_at, last_renewed_at, id_cert_serial, id_cert_not_after,
        last_contact_at, last_authorized_at, sia_grace_used_seconds, sia_ooc_since
   FROM product_instances";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Instance> {
    Ok(Instance {
        id: r.get(0)?,
        udi_pid: r.get(1)?,
        udi_serial: r.get(2)?,
        hostname: r.get(3)?,
        software_version: r.get(4)?,
        va_id: r.get(5)?,
        public_key: r.get(6)?,
        export_controlled: r.get(7)?,
        registered_at: from_ts(r.get(8)?),
        last_renewed_at: from_ts(r.get(9)?),
        id_cert_serial: r.get(10)?,
        id_cert_not_after: from_ts(r.get(11)?),
        last_contact_at: from_ts(r.get(12)?),
        last_authorized_at: r.get::<_, Option<i64>>(13)?.map(from_ts),
        sia_grace_used_seconds: r.get(14)?,
        sia_ooc_since: r.get::<_, Option<i64>>(15)?.map(from_ts),
    })
}

pub fn find(c: &Connection, pid: &str, serial: &str) -> rusqlite::Result<Option<Instance>> {
    c.prepare_cached(&format!("{SELECT} WHERE udi_serial = ?1 AND udi_pid = ?2"))?
        .query_row([serial, pid], row)
        .optional()
}

pub fn by_id(c: &Connection, id: i64) -> rusqlite::Result<Option<Instance>> {
    c.prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
        .query_row([id], row)
        .optional()
}

/// Moves the per-VA instance count; called in the same transaction as the change.
fn bump_count(c: &Connection, va_id: i64, delta: i64) -> rusqlite::Result<()> {
    if delta > 0 {
        c.prepare_cached(
            "INSERT INTO va_instance_counts (va_id, instances) VALUES (?1, ?2)
             ON CONFLICT(va_id) DO UPDATE SET instances = instances + excluded.instances",
        )?
        .execute(params![va_id, delta])?;
    } else if delta < 0 {
        c.prepare_cached(
            "UPDATE va_instance_counts SET instances = instances + ?2 WHERE va_id = ?1",
        )?
        .execute(params![va_id, delta])?;
    }
    Ok(())
}

pub struct Registration<'a> {
    pub udi_pid: &'a str,
    pub udi_serial: &'a str,
    pub hostname: Option<&'a str>,
    pub software_version: Option<&'a str>,
    pub va_id: i64,
    pub public_key: &'a str,
    pub export_controlled: bool,
    pub token_id: Option<i64>,
    pub id_cert_serial: &'a str,
    pub id_cert_not_after: DateTime<Utc>,
}

/// Creates the instance, or re-registers an existing one (new key, maybe a new VA):
/// its usage moves with it so the aggregates stay exact.
pub fn upsert_registration(
    c: &Connection,
    r: &Registration<'_>,
    now: DateTime<Utc>,
) -> rusqlite::Result<i64> {
    if let Some(old) = find(c, r.udi_pid, r.udi_serial)? {
        if old.va_id != r.va_id {
            bump_count(c, old.va_id, -1)?;
            bump_count(c, r.va_id, 1)?;
            for (tag, count) in usage_of(c, old.id)? {
                bump_usage_total(c, old.va_id, &tag, -count)?;
                bump_usage_total(c, r.va_id, &tag, count)?;
            }
        }
        c.prepare_cached(
            "UPDATE product_instances SET hostname = ?2, software_version = ?3, va_id = ?4, public_key = ?5,
                 export_controlled = ?6, token_id = ?7, registered_at = ?8, last_renewed_at = ?8,
                 id_cert_serial = ?9, id_cert_not_after = ?10, last_contact_at = ?8
             WHERE id = ?1",
        )?
        .execute(params![
            old.id,
            r.hostname,
            r.software_version,
            r.va_id,
            r.public_key,
            r.export_controlled,
            r.token_id,
            ts(now),
            r.id_cert_serial,
            ts(r.id_cert_not_after)
        ])?;
        return Ok(old.id);
    }
    c.prepare_cached(
        "INSERT INTO product_instances (udi_pid, udi_serial, hostname, software_version, va_id, public_key,
             export_controlled, token_id, registered_at, last_renewed_at, id_cert_serial, id_cert_not_after,
             last_contact_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?9)",
    )?
    .execute(params![
        r.udi_pid,
        r.udi_serial,
        r.hostname,
        r.software_version,
        r.va_id,
        r.public_key,
        r.export_controlled,
        r.token_id,
        ts(now),
        r.id_cert_serial,
        ts(r.id_cert_not_after)
    ])?;
    bump_count(c, r.va_id, 1)?;
    Ok(c.last_insert_rowid())
}

pub fn record_renewal(
    c: &Connection,
    id: i64,
    cert_serial: &str,
    not_after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE product_instances SET last_renewed_at = ?2, id_cert_serial = ?3, id_cert_not_after = ?4,
             last_contact_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, ts(now), cert_serial, ts(not_after)])?;
    Ok(())
}

/// Updates what each message tells about the device itself.
pub fn touch(
    c: &Connection,
    id: i64,
    hostname: Option<&str>,
    software_version: Option<&str>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE product_instances SET last_contact_at = ?2, hostname = ?3,
             software_version = COALESCE(?4, software_version) WHERE id = ?1",
    )?
    .execute(params![id, ts(now), hostname, software_version])?;
    Ok(())
}

pub fn set_authorized(
    c: &Connection,
    id: i64,
    now: DateTime<Utc>,
    grace_used: i64,
    ooc_since: Option<DateTime<Utc>>,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE product_instances SET last_authorized_at = ?2, last_contact_at = ?2,
             sia_grace_used_seconds = ?3, sia_ooc_since = ?4 WHERE id = ?1",
    )?
    .execute(params![id, ts(now), grace_used, ooc_since.map(ts)])?;
    Ok(())
}

pub fn usage_of(c: &Connection, id: i64) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut st = c.prepare_cached(
        "SELECT tag, count FROM instance_usage WHERE instance_id = ?1 ORDER BY tag",
    )?;
    let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Replaces the instance's usage with a full report and moves the VA aggregates by the difference.
pub fn replace_usage(
    c: &Connection,
    id: i64,
    va_id: i64,
    new: &[(String, i64)],
) -> rusqlite::Result<()> {
    let old = usage_of(c, id)?;
    let mut delta: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for (t, n) in &old {
        *delta.entry(t.as_str()).or_default() -= n;
    }
    for (t, n) in new {
        *delta.entry(t.as_str()).or_default() += n;
    }
    if delta.values().all(|d| *d == 0) && old.len() == new.iter().filter(|u| u.1 > 0).count() {
        return Ok(());
    }
    c.prepare_cached("DELETE FROM instance_usage WHERE instance_id = ?1")?
        .execute([id])?;
    let mut ins = c.prepare_cached(
        "INSERT INTO instance_usage (instance_id, tag, count) VALUES (?1, ?2, ?3)",
    )?;
    for (t, n) in new {
        if *n > 0 {
            ins.execute(params![id, t, n])?;
        }
    }
    for (t, d) in delta {
        bump_usage_total(c, va_id, t, d)?;
    }
    Ok(())
}

/// Deletes the instance and returns its licenses to the pool.
pub fn delete(c: &Connection, id: i64) -> rusqlite::Result<bool> {
    let Some(inst) = by_id(c, id)? else {
        return Ok(false);
    };
    for (tag, count) in usage_of(c, id)? {
        bump_usage_total(c, inst.va_id, &tag, -count)?;
    }
    bump_count(c, inst.va_id, -1)?;
    c.prepare_cached("DELETE FROM product_instances WHERE id = ?1")?
        .execute([id])?;
    Ok(true)
}

/// Moves an instance to another VA, usage and aggregates included.
pub fn move_to_va(c: &Connection, id: i64, to_va: i64) -> rusqlite::Result<bool> {
    let Some(inst) = by_id(c, id)? else {
        return Ok(false);
    };
    if inst.va_id == to_va {
        return Ok(true);
    }
    for (tag, count) in usage_of(c, id)? {
        bump_usage_total(c, inst.va_id, &tag, -count)?;
        bump_usage_total(c, to_va, &tag, count)?;
    }
    bump_count(c, inst.va_id, -1)?;
    bump_count(c, to_va, 1)?;
    c.prepare_cached("UPDATE product_instances SET va_id = ?2 WHERE id = ?1")?
        .execute(params![id, to_va])?;
    Ok(true)
}

/// Records a nonce; false when it was seen before (a replay).
pub fn claim_nonce(
    c: &Connection,
    serial: &str,
    nonce: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let n = c
        .prepare_cached(
            "INSERT OR IGNORE INTO seen_nonces (udi_serial, nonce, seen_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![serial, nonce, ts(now)])?;
    Ok(n == 1)
}

/// Forgets nonces older than the clock-skew window can replay.
pub fn purge_nonces(c: &Connection, before: DateTime<Utc>) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM seen_nonces WHERE seen_at < ?1", [ts(before)])
}

pub struct NewEvent<'a> {
    pub udi_pid: Option<&'a str>,
    pub udi_serial: Option<&'a str>,
    pub kind: &'a str,
    pub message_type: &'a str,
    pub message_id: &'a str,
    pub detail: &'a str,
}

pub fn insert_event(c: &Connection, e: &NewEvent<'_>, now: DateTime<Utc>) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "INSERT INTO device_events (udi_pid, udi_serial, kind, message_type, message_id, detail, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![e.udi_pid, e.udi_serial, e.kind, e.message_type, e.message_id, e.detail, ts(now)])?;
    Ok(c.last_insert_rowid())
}

#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub id: i64,
    pub udi_pid: Option<String>,
    pub udi_serial: Option<String>,
    pub kind: String,
    pub message_type: String,
    pub message_id: String,
    pub detail: String,
    pub received_at: DateTime<Utc>,
}

pub fn events_for(c: &Connection, serial: &str, limit: i64) -> rusqlite::Result<Vec<Event>> {
    let mut st = c.prepare_cached(
        "SELECT id, udi_pid, udi_serial, kind, message_type, message_id, detail, received_at
           FROM device_events WHERE udi_serial = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![serial, limit], |r| {
        Ok(Event {
            id: r.get(0)?,
            udi_pid: r.get(1)?,
            udi_serial: r.get(2)?,
            kind: r.get(3)?,
            message_type: r.get(4)?,
            message_id: r.get(5)?,
            detail: r.get(6)?,
            received_at: from_ts(r.get(7)?),
        })
    })?;
    rows.collect()
}

/// One page of instances, newest id last, with a VA filter and a search on serial, PID or hostname.
pub fn page(
    c: &Connection,
    va_ids: &[i64],
    search: Option<&str>,
    limit: i64,
    offset: i64,
) -> rusqlite::Result<(Vec<Instance>, i64)> {
    let va_list = va_ids
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut filter = format!("va_id IN ({va_list})");
    let pattern = search.map(|s| format!("{}%", s.replace(['%', '_'], "")));
    if pattern.is_some() {
        filter.push_str(" AND (udi_serial LIKE ?1 OR udi_pid LIKE ?1 OR hostname LIKE ?1)");
    } else {
        filter.push_str(" AND ?1 IS NULL");
    }
    if pattern.is_none() {
        // The maintained count, and the offset skipped on the (va_id, id) index alone
        // before any row is read: both stay cheap at a million instances.
        let total: i64 = c.query_row(
            &format!("SELECT COALESCE(SUM(instances), 0) FROM va_instance_counts WHERE va_id IN ({va_list})"),
            [],
            |r| r.get(0),
        )?;
        let mut st = c.prepare(&format!(
            "{SELECT} WHERE va_id IN ({va_list}) AND id >= COALESCE(
                 (SELECT id FROM product_instances WHERE va_id IN ({va_list}) ORDER BY id LIMIT 1 OFFSET ?2),
                 9223372036854775807)
             ORDER BY id LIMIT ?1"
        ))?;
        let rows = st.query_map(params![limit, offset], row)?;
        return Ok((rows.collect::<Result<_, _>>()?, total));
    }
    let total: i64 = c.query_row(
        &format!("SELECT COUNT(*) FROM product_instances WHERE {filter}"),
        [&pattern],
        |r| r.get(0),
    )?;
    let mut st = c.prepare(&format!(
        "{SELECT} WHERE {filter} ORDER BY id LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = st.query_map(params![pattern, limit, offset], row)?;
    Ok((rows.collect::<Result<_, _>>()?, total))
}

/// (devices, devices silent since before `lapsed_before`, other devices using one of `bad_tags`)
/// of one virtual account.
pub fn status_counts(
    c: &Connection,
    va_id: i64,
    bad_tags: &[String],
    lapsed_before: DateTime<Utc>,
) -> rusqlite::Result<(i64, i64, i64)> {
    let (total, lapsed): (i64, i64) = c
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(last_contact_at <= ?2), 0)
               FROM product_instances WHERE va_id = ?1",
        )?
        .query_row(params![va_id, ts(lapsed_before)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    if bad_tags.is_empty() {
        return Ok((total, lapsed, 0));
    }
    // The tags travel as one JSON array so the statement text stays fixed.
    let tags = serde_json::to_string(bad_tags).unwrap_or_else(|_| "[]".into());
    let ooc: i64 = c
        .prepare_cached(
            "SELECT COUNT(DISTINCT p.id) FROM product_instances p
               JOIN instance_usage u ON u.instance_id = p.id
              WHERE p.va_id = ?1 AND p.last_contact_at > ?2
                AND u.tag IN (SELECT value FROM json_each(?3))",
        )?
        .query_row(params![va_id, ts(lapsed_before), tags], |r| r.get(0))?;
    Ok((total, lapsed, ooc))
}
