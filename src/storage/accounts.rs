//! Smart accounts and virtual accounts in SQL.
//! Plain row access; whether a change is allowed is decided by the caller.

use super::{from_ts, ts};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub eula_accepted_at: Option<DateTime<Utc>>,
    pub eula_accepted_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VirtualAccount {
    pub id: i64,
    pub account_id: i64,
    pub account: String,
    pub name: String,
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get(0)?,
        name: r.get(1)?,
        eula_accepted_at: r.get::<_, Option<i64>>(2)?.map(from_ts),
        eula_accepted_by: r.get(3)?,
    })
}

pub fn insert_account(c: &Connection, name: &str, now: DateTime<Utc>) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO smart_accounts (name, created_at) VALUES (?1, ?2)",
        params![name, ts(now)],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn find_account(c: &Connection, name: &str) -> rusqlite::Result<Option<Account>> {
    c.query_row(
        "SELECT id, name, eula_accepted_at, eula_accepted_by FROM smart_accounts WHERE name = ?1",
        [name],
        account_row,
    )
    .optional()
}

pub fn account_by_id(c: &Connection, id: i64) -> rusqlite::Result<Option<Account>> {
    c.query_row(
        "SELECT id, name, eula_accepted_at, eula_accepted_by FROM smart_accounts WHERE id = ?1",
        [id],
        account_row,
    )
    .optional()
}

pub fn list_accounts(c: &Connection) -> rusqlite::Result<Vec<Account>> {
    let mut st = c.prepare(
        "SELECT id, name, eula_accepted_at, eula_accepted_by FROM smart_accounts ORDER BY name",
    )?;
    let rows = st.query_map([], account_row)?;
    rows.collect()
}

pub fn accept_eula(
    c: &Connection,
    account_id: i64,
    by: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE smart_accounts SET eula_accepted_at = ?2, eula_accepted_by = ?3 WHERE id = ?1",
        params![account_id, ts(now), by],
    )?;
    Ok(())
}

pub fn insert_va(
    c: &Connection,
    account_id: i64,
    name: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO virtual_accounts (account_id, name, created_at) VALUES (?1, ?2, ?3)",
        params![account_id, name, ts(now)],
    )?;
    Ok(c.last_insert_rowid())
}

fn va_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VirtualAccount> {
    Ok(VirtualAccount {
        id: r.get(0)?,
        account_id: r.get(1)?,
        account: r.get(2)?,
        name: r.get(3)?,
    })
}

const VA_SELECT: &str = "SELECT v.id, v.account_id, a.name, v.name FROM virtual_accounts v JOIN smart_accounts a ON a.id = v.account_id";

pub fn find_va(
    c: &Connection,
    account: &str,
    va: &str,
) -> rusqlite::Result<Option<VirtualAccount>> {
    c.query_row(
        &format!("{VA_SELECT} WHERE a.name = ?1 AND v.name = ?2"),
        [account, va],
        va_row,
    )
    .optional()
}

pub fn va_by_id(c: &Connection, id: i64) -> rusqlite::Result<Option<VirtualAccount>> {
    c.query_row(&format!("{VA_SELECT} WHERE v.id = ?1"), [id], va_row)
        .optional()
}

pub fn list_vas(c: &Connection, account_id: Option<i64>) -> rusqlite::Result<Vec<VirtualAccount>> {
    let mut st = c.prepare(&format!(
        "{VA_SELECT} WHERE ?1 IS NULL OR v.account_id = ?1 ORDER BY a.name, v.name"
    ))?;
    let rows = st.query_map([account_id], va_row)?;
    rows.collect()
}
