//! Console sessions: start one after a checked login, resolve a presented id, end it.
//! Only digests of session ids reach storage; a session never outlives its user's account.

use super::Ctx;
use crate::auth::{random_token, token_digest};
use crate::domain::roles::Principal;
use crate::error::{AppError, AppResult};
use crate::storage::{audit, sessions as store};
use chrono::{DateTime, Duration, Utc};

/// A session unused this long is over.
pub const IDLE_HOURS: i64 = 8;
/// Even a busy session ends this long after login, so a stolen cookie has a bounded life.
pub const ABSOLUTE_HOURS: i64 = 24;
/// Last-seen is written at most this often: a write per page view would cost the writer.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// Returned once at login: the id goes into the cookie and is never stored.
pub struct NewSession {
    pub id: String,
    pub csrf_token: String,
}

/// A live session as the console and the API see it.
#[derive(Clone, Debug)]
pub struct ActiveSession {
    pub id_hash: String,
    pub csrf_token: String,
    pub principal: Principal,
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

fn is_live(created: DateTime<Utc>, seen: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < seen + Duration::hours(IDLE_HOURS) && now < created + Duration::hours(ABSOLUTE_HOURS)
}

/// Starts a session for a principal that `principals::login` accepted. Any session the
/// browser still presented is dropped, so the id always changes at login.
pub async fn start(ctx: &Ctx, who: &Principal, replaces: Option<&str>) -> AppResult<NewSession> {
    let id = random_token(32).map_err(internal)?;
    let csrf_token = random_token(32).map_err(internal)?;
    let id_hash = token_digest(&id);
    let old = replaces.map(token_digest);
    let now = ctx.clock.now();
    let name = who.name.clone();
    let csrf = csrf_token.clone();
    ctx.store
        .write(move |c| {
            if let Some(old) = &old {
                store::delete(c, old)?;
            }
            store::purge(
                c,
                now - Duration::hours(IDLE_HOURS),
                now - Duration::hours(ABSOLUTE_HOURS),
            )?;
            let user = crate::storage::principals::find_user(c, &name)?
                .ok_or_else(|| AppError::Unauthorized("invalid user name or password".into()))?;
            store::insert(c, &id_hash, user.id, &csrf, now)?;
            audit::record(c, now, &name, "console.login", &name, "")?;
            Ok::<_, AppError>(())
        })
        .await?;
    Ok(NewSession { id, csrf_token })
}

/// The session behind a cookie value, if it is known, live and its user still enabled.
pub async fn resolve(ctx: &Ctx, id: &str) -> AppResult<Option<ActiveSession>> {
    let id_hash = token_digest(id);
    let now = ctx.clock.now();
    let lookup = id_hash.clone();
    let row = ctx
        .store
        .read(move |c| Ok::<_, AppError>(store::find(c, &lookup)?))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if row.user.disabled || !is_live(row.created_at, row.last_seen_at, now) {
        return Ok(None);
    }
    if (now - row.last_seen_at).num_seconds() >= TOUCH_EVERY_SECONDS {
        let h = id_hash.clone();
        ctx.store
            .write(move |c| Ok::<_, AppError>(store::touch(c, &h, now)?))
            .await?;
    }
    Ok(Some(ActiveSession {
        id_hash,
        csrf_token: row.csrf_token,
        principal: Principal {
            name: row.user.name,
            role: row.user.role,
            accounts: row.user.accounts,
        },
    }))
}

/// Logout: the session row goes, so the cookie is worthless even if kept.
pub async fn end(ctx: &Ctx, session: &ActiveSession) -> AppResult<()> {
    let h = session.id_hash.clone();
    let name = session.principal.name.clone();
    let now = ctx.clock.now();
    ctx.store
        .write(move |c| {
            if store::delete(c, &h)? {
                audit::record(c, now, &name, "console.logout", &name, "")?;
            }
            Ok::<_, AppError>(())
        })
        .await
}

/// Changes the signed-in user's password and ends their other sessions, which may be
/// the reason the password is being changed.
pub async fn change_password(
    ctx: &Ctx,
    session: &ActiveSession,
    current: &str,
    new: &str,
) -> AppResult<usize> {
    super::principals::change_password(ctx, &session.principal, current, new).await?;
    let (name, keep) = (session.principal.name.clone(), session.id_hash.clone());
    ctx.store
        .write(move |c| {
            let user = crate::storage::principals::find_user(c, &name)?
                .ok_or_else(|| AppError::NotFound(format!("user {name:?} not found")))?;
            Ok::<_, AppError>(store::delete_for_user_except(c, user.id, &keep)?)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_after_idle_time_or_absolute_age() {
        let t0 = Utc::now();
        assert!(is_live(t0, t0, t0 + Duration::hours(7)));
        assert!(!is_live(t0, t0, t0 + Duration::hours(8)));
        let busy = t0 + Duration::hours(23);
        assert!(is_live(t0, busy, busy));
        assert!(!is_live(t0, busy, t0 + Duration::hours(24)));
    }
}
