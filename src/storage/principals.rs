//! Console users, API clients and their bearer tokens in SQL.
//! Only hashes of secrets are stored here; hashing itself is done by `auth`.

use super::{from_ts, ts};
use crate::domain::roles::Role;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    pub accounts: Vec<i64>,
    pub disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiClient {
    pub id: i64,
    pub name: String,
    pub client_id: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub role: Role,
    pub accounts: Vec<i64>,
    pub created_at: DateTime<Utc>,
    pub revoked: bool,
}

fn role_col(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Role> {
    let s: String = r.get(i)?;
    Role::parse(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn accounts_of(c: &Connection, kind: &str, id: i64) -> rusqlite::Result<Vec<i64>> {
    let mut st = c.prepare_cached(
        "SELECT account_id FROM principal_accounts WHERE principal_kind = ?1 AND principal_id = ?2 ORDER BY account_id",
    )?;
    let rows = st.query_map(params![kind, id], |r| r.get(0))?;
    rows.collect()
}

pub fn set_accounts(c: &Connection, kind: &str, id: i64, accounts: &[i64]) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM principal_accounts WHERE principal_kind = ?1 AND principal_id = ?2",
        params![kind, id],
    )?;
    for a in accounts {
        c.execute(
            "INSERT OR IGNORE INTO principal_accounts (principal_kind, principal_id, account_id) VALUES (?1, ?2, ?3)",
            params![kind, id, a],
        )?;
    }
    Ok(())
}

pub fn insert_user(
    c: &Connection,
    name: &str,
    password_hash: &str,
    role: Role,
    now: DateTime<Utc>,
) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO users (name, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, password_hash, role.as_str(), ts(now)],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn set_password(c: &Connection, id: i64, password_hash: &str) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE users SET password_hash = ?2 WHERE id = ?1",
        params![id, password_hash],
    )?;
    Ok(())
}

pub fn find_user(c: &Connection, name: &str) -> rusqlite::Result<Option<User>> {
    let u = c
        .query_row(
            "SELECT id, name, password_hash, role, disabled_at FROM users WHERE name = ?1",
            [name],
            |r| {
                Ok(User {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    password_hash: r.get(2)?,
                    role: role_col(r, 3)?,
                    accounts: Vec::new(),
                    disabled: r.get::<_, Option<i64>>(4)?.is_some(),
                })
            },
        )
        .optional()?;
    match u {
        Some(mut u) => {
            u.accounts = accounts_of(c, "user", u.id)?;
            Ok(Some(u))
        }
        None => Ok(None),
    }
}

pub fn list_users(c: &Connection) -> rusqlite::Result<Vec<User>> {
    let mut st = c.prepare("SELECT name FROM users ORDER BY name")?;
    let names: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for n in names {
        if let Some(u) = find_user(c, &n)? {
            out.push(u);
        }
    }
    Ok(out)
}

/// Sets or clears a user's disabled mark; false when no such user exists.
pub fn set_user_disabled(
    c: &Connection,
    id: i64,
    disabled_at: Option<DateTime<Utc>>,
) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE users SET disabled_at = ?2 WHERE id = ?1",
        params![id, disabled_at.map(ts)],
    )? == 1)
}

/// Deletes a user with their account scope; their sessions go with them (cascade).
pub fn delete_user(c: &Connection, id: i64) -> rusqlite::Result<bool> {
    c.execute(
        "DELETE FROM principal_accounts WHERE principal_kind = 'user' AND principal_id = ?1",
        [id],
    )?;
    c.execute("DELETE FROM console_sessions WHERE user_id = ?1", [id])?;
    Ok(c.execute("DELETE FROM users WHERE id = ?1", [id])? == 1)
}

/// System admins who can still sign in.
pub fn count_enabled_admins(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row(
        "SELECT COUNT(*) FROM users WHERE role = 'system-admin' AND disabled_at IS NULL",
        [],
        |r| r.get(0),
    )
}

pub fn count_users(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
}

pub fn insert_client(
    c: &Connection,
    name: &str,
    client_id: &str,
    secret_hash: &str,
    role: Role,
    created_by: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO api_clients (name, client_id, secret_hash, role, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            name,
            client_id,
            secret_hash,
            role.as_str(),
            ts(now),
            created_by
        ],
    )?;
    Ok(c.last_insert_rowid())
}

fn client_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiClient> {
    Ok(ApiClient {
        id: r.get(0)?,
        name: r.get(1)?,
        client_id: r.get(2)?,
        secret_hash: r.get(3)?,
        role: role_col(r, 4)?,
        accounts: Vec::new(),
        created_at: from_ts(r.get(5)?),
        revoked: r.get::<_, Option<i64>>(6)?.is_some(),
    })
}

const CLIENT_SELECT: &str =
    "SELECT id, name, client_id, secret_hash, role, created_at, revoked_at FROM api_clients";

pub fn find_client(c: &Connection, client_id: &str) -> rusqlite::Result<Option<ApiClient>> {
    let found = c
        .query_row(
            &format!("{CLIENT_SELECT} WHERE client_id = ?1"),
            [client_id],
            client_row,
        )
        .optional()?;
    match found {
        Some(mut k) => {
            k.accounts = accounts_of(c, "client", k.id)?;
            Ok(Some(k))
        }
        None => Ok(None),
    }
}

pub fn list_clients(c: &Connection) -> rusqlite::Result<Vec<ApiClient>> {
    let mut st = c.prepare(&format!("{CLIENT_SELECT} ORDER BY name"))?;
    let mut out: Vec<ApiClient> = st.query_map([], client_row)?.collect::<Result<_, _>>()?;
    for k in &mut out {
        k.accounts = accounts_of(c, "client", k.id)?;
    }
    Ok(out)
}

pub fn revoke_client(
    c: &Connection,
    client_id: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE api_clients SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
        params![client_id, ts(now)],
    )?;
    c.execute(
        "DELETE FROM access_tokens WHERE client_id IN (SELECT id FROM api_clients WHERE client_id = ?1)",
        [client_id],
    )?;
    Ok(n == 1)
}

pub fn insert_access_token(
    c: &Connection,
    token_hash: &str,
    client: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    // Expired tokens are swept here so the table stays the size of the live set.
    c.execute(
        "DELETE FROM access_tokens WHERE expires_at <= ?1",
        [ts(now)],
    )?;
    c.execute(
        "INSERT INTO access_tokens (token_hash, client_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![token_hash, client, ts(now), ts(expires_at)],
    )?;
    Ok(())
}

/// The client behind a bearer token, with the token's expiry.
pub fn client_for_access_token(
    c: &Connection,
    token_hash: &str,
) -> rusqlite::Result<Option<(ApiClient, DateTime<Utc>)>> {
    let found = c
        .query_row(
            "SELECT k.id, k.name, k.client_id, k.secret_hash, k.role, k.created_at, k.revoked_at, t.expires_at
               FROM access_tokens t JOIN api_clients k ON k.id = t.client_id
              WHERE t.token_hash = ?1",
            [token_hash],
            |r| Ok((client_row(r)?, from_ts(r.get(7)?))),
        )
        .optional()?;
    match found {
        Some((mut k, exp)) => {
            k.accounts = accounts_of(c, "client", k.id)?;
            Ok(Some((k, exp)))
        }
        None => Ok(None),
    }
}
