//! Registration tokens in SQL.
//! Row access only; the token rules live in `domain::tokens`.

use super::{from_ts, ts};
use crate::domain::tokens::Token;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

pub struct NewToken<'a> {
    pub token: &'a str,
    pub va_id: i64,
    pub description: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub max_uses: Option<i64>,
    pub export_controlled: bool,
    pub created_by: &'a str,
}

pub fn insert(c: &Connection, t: &NewToken<'_>) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO registration_tokens
           (token, va_id, description, created_at, expires_at, max_uses, export_controlled, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            t.token,
            t.va_id,
            t.description,
            ts(t.created_at),
            ts(t.expires_at),
            t.max_uses,
            t.export_controlled,
            t.created_by
        ],
    )?;
    Ok(c.last_insert_rowid())
}

const SELECT: &str = "SELECT t.id, t.token, a.name, v.name, t.va_id, t.description, t.created_at,
        t.expires_at, t.max_uses, t.uses, t.export_controlled, t.created_by, t.revoked_at
   FROM registration_tokens t
   JOIN virtual_accounts v ON v.id = t.va_id
   JOIN smart_accounts a ON a.id = v.account_id";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Token> {
    Ok(Token {
        id: r.get(0)?,
        token: r.get(1)?,
        account: r.get(2)?,
        virtual_account: r.get(3)?,
        va_id: r.get(4)?,
        description: r.get(5)?,
        created_at: from_ts(r.get(6)?),
        expires_at: from_ts(r.get(7)?),
        max_uses: r.get(8)?,
        uses: r.get(9)?,
        export_controlled: r.get(10)?,
        created_by: r.get(11)?,
        revoked_at: r.get::<_, Option<i64>>(12)?.map(from_ts),
    })
}

pub fn find(c: &Connection, token: &str) -> rusqlite::Result<Option<Token>> {
    c.query_row(&format!("{SELECT} WHERE t.token = ?1"), [token], row)
        .optional()
}

pub fn list_for_va(c: &Connection, va_id: i64) -> rusqlite::Result<Vec<Token>> {
    let mut st = c.prepare(&format!("{SELECT} WHERE t.va_id = ?1 ORDER BY t.id DESC"))?;
    let rows = st.query_map([va_id], row)?;
    rows.collect()
}

pub fn list_all(c: &Connection, account_id: Option<i64>) -> rusqlite::Result<Vec<Token>> {
    let mut st = c.prepare(&format!(
        "{SELECT} WHERE ?1 IS NULL OR v.account_id = ?1 ORDER BY t.id DESC"
    ))?;
    let rows = st.query_map([account_id], row)?;
    rows.collect()
}

/// Marks a token revoked; returns false when it was not found or already revoked.
pub fn revoke(c: &Connection, id: i64, by: &str, now: DateTime<Utc>) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE registration_tokens SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, ts(now), by],
    )?;
    Ok(n == 1)
}

pub fn record_use(c: &Connection, id: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE registration_tokens SET uses = uses + 1 WHERE id = ?1",
        [id],
    )?;
    Ok(())
}
