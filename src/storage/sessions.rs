//! Console sessions in SQL, keyed by a digest of the session id.
//! Never stores or receives a session id in clear; expiry rules belong to the caller.

use super::principals::{self, User};
use super::{from_ts, ts};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

/// A stored session with the user it belongs to.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub id_hash: String,
    pub user: User,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

pub fn insert(
    c: &Connection,
    id_hash: &str,
    user_id: i64,
    csrf_token: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO console_sessions (id_hash, user_id, csrf_token, created_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![id_hash, user_id, csrf_token, ts(now)])?;
    Ok(())
}

pub fn find(c: &Connection, id_hash: &str) -> rusqlite::Result<Option<SessionRow>> {
    let found = c
        .prepare_cached(
            "SELECT s.id_hash, u.name, s.csrf_token, s.created_at, s.last_seen_at
               FROM console_sessions s JOIN users u ON u.id = s.user_id
              WHERE s.id_hash = ?1",
        )?
        .query_row([id_hash], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    let Some((id_hash, name, csrf_token, created, seen)) = found else {
        return Ok(None);
    };
    Ok(principals::find_user(c, &name)?.map(|user| SessionRow {
        id_hash,
        user,
        csrf_token,
        created_at: from_ts(created),
        last_seen_at: from_ts(seen),
    }))
}

pub fn touch(c: &Connection, id_hash: &str, now: DateTime<Utc>) -> rusqlite::Result<()> {
    c.prepare_cached("UPDATE console_sessions SET last_seen_at = ?2 WHERE id_hash = ?1")?
        .execute(params![id_hash, ts(now)])?;
    Ok(())
}

pub fn delete(c: &Connection, id_hash: &str) -> rusqlite::Result<bool> {
    Ok(
        c.prepare_cached("DELETE FROM console_sessions WHERE id_hash = ?1")?
            .execute([id_hash])?
            > 0,
    )
}

/// Ends every session of a user except `keep` (the one that asked).
pub fn delete_for_user_except(c: &Connection, user_id: i64, keep: &str) -> rusqlite::Result<usize> {
    c.execute(
        "DELETE FROM console_sessions WHERE user_id = ?1 AND id_hash <> ?2",
        params![user_id, keep],
    )
}

/// Ends every session of a user (disabled or deleted).
pub fn delete_for_user(c: &Connection, user_id: i64) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM console_sessions WHERE user_id = ?1", [user_id])
}

/// Drops sessions idle since before `idle_before` or created before `created_before`.
pub fn purge(
    c: &Connection,
    idle_before: DateTime<Utc>,
    created_before: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    c.execute(
        "DELETE FROM console_sessions WHERE last_seen_at < ?1 OR created_at < ?2",
        params![ts(idle_before), ts(created_before)],
    )
}
