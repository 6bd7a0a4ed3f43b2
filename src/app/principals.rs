//! Console users, API clients and bearer tokens: who may call, and as whom.

use super::accounts::account_named;
use super::{require, Ctx};
use crate::auth::{
    check_password_strength, hash_password, random_token, token_digest, verify_password,
};
use crate::domain::names::UserName;
use crate::domain::roles::{Permission, Principal, Role};
use crate::error::{AppError, AppResult};
use crate::storage::principals::{self as store, ApiClient, User};
use crate::storage::{audit, is_unique_violation};
use chrono::Duration;
use rusqlite::Connection;

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

fn account_ids(c: &Connection, names: &[String]) -> AppResult<Vec<i64>> {
    names
        .iter()
        .map(|n| account_named(c, n).map(|a| a.id))
        .collect()
}

pub async fn add_user(
    ctx: &Ctx,
    who: &Principal,
    name: &str,
    role: Role,
    password: &str,
    accounts: Vec<String>,
) -> AppResult<User> {
    require(who, Permission::Administer, None)?;
    let name = UserName::parse(name)?;
    // The REST API addresses a user as one path segment (`/api/v1/users/{name}/...`).
    if name.as_str().contains('/') {
        return Err(AppError::Invalid("user name must not contain '/'".into()));
    }
    check_password_strength(password).map_err(AppError::Invalid)?;
    if role == Role::AccountAdmin && accounts.is_empty() {
        return Err(AppError::Invalid(
            "an account-admin needs at least one --account".into(),
        ));
    }
    let hash = hash_password(password).map_err(internal)?;
    let now = ctx.clock.now();
    let actor = who.name.clone();
    ctx.store
        .write(move |c| {
            let ids = account_ids(c, &accounts)?;
            let id = store::insert_user(c, name.as_str(), &hash, role, now).map_err(|e| {
                if is_unique_violation(&e) {
                    AppError::Conflict(format!("user {name:?} already exists"))
                } else {
                    e.into()
                }
            })?;
            store::set_accounts(c, "user", id, &ids)?;
            audit::record(
                c,
                now,
                &actor,
                "user.add",
                name.as_str(),
                &format!("role={} accounts={}", role, accounts.join(",")),
            )?;
            Ok(User {
                id,
                name: name.to_string(),
                password_hash: String::new(),
                role,
                accounts: ids,
                disabled: false,
            })
        })
        .await
}

/// Creates the first system-admin of a new data dir. Returns the generated password when
/// none was supplied, so the caller can show it once.
pub fn bootstrap_admin(ctx: &Ctx, supplied: Option<String>) -> AppResult<Option<String>> {
    let count = ctx
        .store
        .read_blocking(|c| Ok::<_, AppError>(store::count_users(c)?))?;
    if count > 0 {
        return Ok(None);
    }
    let (password, generated) = match supplied {
        Some(p) => {
            check_password_strength(&p)
                .map_err(|e| AppError::Invalid(format!("SATELLITE_ADMIN_PASSWORD: {e}")))?;
            (p, false)
        }
        None => (random_token(18).map_err(internal)?, true),
    };
    let hash = hash_password(&password).map_err(internal)?;
    let now = ctx.clock.now();
    ctx.store.write_blocking(move |c| {
        // Another process may have initialised the dir in the meantime.
        if store::count_users(c)? > 0 {
            return Ok::<_, AppError>(());
        }
        store::insert_user(c, "admin", &hash, Role::SystemAdmin, now)?;
        audit::record(
            c,
            now,
            "system",
            "user.add",
            "admin",
            "role=system-admin (initial)",
        )?;
        Ok(())
    })?;
    Ok(generated.then_some(password))
}

/// Checks a console login; the same answer for an unknown user and a wrong password.
pub async fn login(ctx: &Ctx, name: &str, password: &str) -> AppResult<Principal> {
    let name = name.to_string();
    let user = ctx
        .store
        .read(move |c| Ok::<_, AppError>(store::find_user(c, &name)?))
        .await?;
    let denied = || AppError::Unauthorized("invalid user name or password".into());
    match user {
        Some(u) if !u.disabled => {
            let pw = password.to_string();
            let hash = u.password_hash.clone();
            let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
                .await
                .unwrap_or(false);
            if ok {
                Ok(Principal {
                    name: u.name,
                    role: u.role,
                    accounts: u.accounts,
                })
            } else {
                Err(denied())
            }
        }
        _ => {
            // Spend the same effort as a real check so timing does not reveal user names.
            let pw = password.to_string();
            let _ = tokio::task::spawn_blocking(move || {
                verify_password(&pw, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            })
            .await;
            Err(denied())
        }
    }
}

pub async fn change_password(
    ctx: &Ctx,
    who: &Principal,
    current: &str,
    new: &str,
) -> AppResult<()> {
    login(ctx, &who.name, current).await?;
    check_password_strength(new).map_err(AppError::Invalid)?;
    let hash = hash_password(new).map_err(internal)?;
    let name = who.name.clone();
    let now = ctx.clock.now();
    ctx.store
        .write(move |c| {
            let u = store::find_user(c, &name)?
                .ok_or_else(|| AppError::NotFound(format!("user {name:?} not found")))?;
            store::set_password(c, u.id, &hash)?;
            audit::record(c, now, &name, "user.password", &name, "")?;
            Ok(())
        })
        .await
}

pub struct NewClient {
    pub client: ApiClient,
    pub secret: String,
}

pub async fn create_api_client(
    ctx: &Ctx,
    who: &Principal,
    name: &str,
    role: Role,
    accounts: Vec<String>,
) -> AppResult<NewClient> {
    require(who, Permission::Administer, None)?;
    let name = UserName::parse(name)?;
    if role == Role::AccountAdmin && accounts.is_empty() {
        return Err(AppError::Invalid(
            "an account-admin client needs at least one --account".into(),
        ));
    }
    let client_id = format!("sat-{}", random_token(12).map_err(internal)?);
    let secret = random_token(32).map_err(internal)?;
    let hash = hash_password(&secret).map_err(internal)?;
    let now = ctx.clock.now();
    let actor = who.name.clone();
    let client = ctx
        .store
        .write(move |c| {
            let ids = account_ids(c, &accounts)?;
            let id = store::insert_client(c, name.as_str(), &client_id, &hash, role, &actor, now)?;
            store::set_accounts(c, "client", id, &ids)?;
            audit::record(
                c,
                now,
                &actor,
                "api-client.create",
                &client_id,
                &format!("name={name} role={role}"),
            )?;
            Ok::<_, AppError>(ApiClient {
                id,
                name: name.to_string(),
                client_id,
                secret_hash: String::new(),
                role,
                accounts: ids,
                created_at: now,
                revoked: false,
            })
        })
        .await?;
    Ok(NewClient { client, secret })
}

pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: i64,
}

/// The OAuth client-credentials grant.
pub async fn issue_access_token(
    ctx: &Ctx,
    client_id: &str,
    secret: &str,
    lifetime_seconds: i64,
) -> AppResult<IssuedToken> {
    let id = client_id.to_string();
    let client = ctx
        .store
        .read(move |c| Ok::<_, AppError>(store::find_client(c, &id)?))
        .await?;
    let denied = || AppError::Unauthorized("invalid client credentials".into());
    let client = match client {
        Some(k) if !k.revoked => k,
        _ => return Err(denied()),
    };
    let (pw, hash) = (secret.to_string(), client.secret_hash.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        return Err(denied());
    }
    let token = random_token(32).map_err(internal)?;
    let digest = token_digest(&token);
    let now = ctx.clock.now();
    let expires = now + Duration::seconds(lifetime_seconds);
    ctx.store
        .write(move |c| {
            store::insert_access_token(c, &digest, client.id, now, expires)?;
            Ok::<_, AppError>(())
        })
        .await?;
    Ok(IssuedToken {
        access_token: token,
        expires_in: lifetime_seconds,
    })
}

/// The principal behind a bearer token, if it is known and not expired.
pub async fn principal_for_bearer(ctx: &Ctx, token: &str) -> AppResult<Principal> {
    let digest = token_digest(token);
    let now = ctx.clock.now();
    let found = ctx
        .store
        .read(move |c| Ok::<_, AppError>(store::client_for_access_token(c, &digest)?))
        .await?;
    match found {
        Some((k, exp)) if exp > now && !k.revoked => Ok(Principal {
            name: format!("client:{}", k.name),
            role: k.role,
            accounts: k.accounts,
        }),
        Some(_) => Err(AppError::Unauthorized("access token expired".into())),
        None => Err(AppError::Unauthorized("unknown access token".into())),
    }
}

pub async fn list_users(ctx: &Ctx, who: &Principal) -> AppResult<Vec<User>> {
    require(who, Permission::Administer, None)?;
    ctx.store
        .read(|c| Ok::<_, AppError>(store::list_users(c)?))
        .await
}

pub async fn list_api_clients(ctx: &Ctx, who: &Principal) -> AppResult<Vec<ApiClient>> {
    require(who, Permission::Administer, None)?;
    ctx.store
        .read(|c| Ok::<_, AppError>(store::list_clients(c)?))
        .await
}

/// Revokes an API client; its bearer tokens stop working at once.
pub async fn revoke_api_client(ctx: &Ctx, who: &Principal, client_id: &str) -> AppResult<()> {
    require(who, Permission::Administer, None)?;
    let now = ctx.clock.now();
    let (client_id, actor) = (client_id.trim().to_string(), who.name.clone());
    ctx.store
        .write(move |c| {
            if !store::revoke_client(c, &client_id, now)? {
                return Err(AppError::NotFound(format!(
                    "no active API client {client_id:?}"
                )));
            }
            audit::record(c, now, &actor, "api-client.revoke", &client_id, "")?;
            Ok(())
        })
        .await
}

/// Refuses a change that would lock the operators out: acting on oneself, or taking away
/// the last system admin who can still sign in.
fn guard_user_change(c: &Connection, who: &str, user: &User, what: &str) -> AppResult<()> {
    if user.name == who {
        return Err(AppError::Conflict(format!(
            "you cannot {what} your own user; ask another system-admin"
        )));
    }
    if user.role == Role::SystemAdmin && !user.disabled && store::count_enabled_admins(c)? <= 1 {
        return Err(AppError::Conflict(format!(
            "cannot {what} {:?}: it is the last enabled system-admin; add or enable another first",
            user.name
        )));
    }
    Ok(())
}

fn user_named(c: &Connection, name: &str) -> AppResult<User> {
    store::find_user(c, name)?.ok_or_else(|| AppError::NotFound(format!("no user {name:?}")))
}

/// Disables or enables a console user. Disabling ends the user's sessions at once and
/// refuses further logins; the user and their history stay.
pub async fn set_user_disabled(
    ctx: &Ctx,
    who: &Principal,
    name: &str,
    disabled: bool,
) -> AppResult<User> {
    require(who, Permission::Administer, None)?;
    let name = UserName::parse(name)?;
    let now = ctx.clock.now();
    let actor = who.name.clone();
    ctx.store
        .write(move |c| {
            let mut user = user_named(c, name.as_str())?;
            if user.disabled == disabled {
                return Ok(user);
            }
            if disabled {
                guard_user_change(c, &actor, &user, "disable")?;
                store::set_user_disabled(c, user.id, Some(now))?;
                let ended = crate::storage::sessions::delete_for_user(c, user.id)?;
                audit::record(
                    c,
                    now,
                    &actor,
                    "user.disable",
                    &user.name,
                    &format!("sessions ended={ended}"),
                )?;
            } else {
                store::set_user_disabled(c, user.id, None)?;
                audit::record(c, now, &actor, "user.enable", &user.name, "")?;
            }
            user.disabled = disabled;
            Ok(user)
        })
        .await
}

/// Deletes a console user and their sessions; the audit log keeps their name.
pub async fn delete_user(ctx: &Ctx, who: &Principal, name: &str) -> AppResult<()> {
    require(who, Permission::Administer, None)?;
    let name = UserName::parse(name)?;
    let now = ctx.clock.now();
    let actor = who.name.clone();
    ctx.store
        .write(move |c| {
            let user = user_named(c, name.as_str())?;
            guard_user_change(c, &actor, &user, "delete")?;
            store::delete_user(c, user.id)?;
            audit::record(
                c,
                now,
                &actor,
                "user.delete",
                &user.name,
                &format!("role={}", user.role),
            )?;
            Ok(())
        })
        .await
}
