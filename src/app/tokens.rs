//! Registration tokens: create, list, revoke.

use super::accounts::{account_named, va_named};
use super::{require, Ctx};
use crate::auth::random_token;
use crate::domain::roles::{Permission, Principal};
use crate::domain::tokens::{Token, TokenSpec};
use crate::error::{AppError, AppResult};
use crate::storage::audit;
use crate::storage::tokens::{self as store_tokens, NewToken};

pub async fn create(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    va: &str,
    spec: TokenSpec,
) -> AppResult<Token> {
    let now = ctx.clock.now();
    let value = random_token(48).map_err(|e| AppError::Internal(e.to_string()))?;
    let (account, va, who) = (account.to_string(), va.to_string(), who.clone());
    ctx.store
        .write(move |c| {
            let v = va_named(c, &account, &va)?;
            require(&who, Permission::WriteAccount, Some(v.account_id))?;
            let expires_at = spec.expires_at(now);
            let id = store_tokens::insert(
                c,
                &NewToken {
                    token: &value,
                    va_id: v.id,
                    description: &spec.description,
                    created_at: now,
                    expires_at,
                    max_uses: spec.max_uses,
                    export_controlled: spec.export_controlled,
                    created_by: &who.name,
                },
            )?;
            let detail = format!(
                "days={} max_uses={} export_controlled={}",
                spec.days,
                spec.max_uses.map(|m| m.to_string()).unwrap_or("-".into()),
                spec.export_controlled
            );
            // The audit trail names the token by id: the value itself is a credential.
            audit::record(
                c,
                now,
                &who.name,
                "token.create",
                &format!("{account}/{va} token#{id}"),
                &detail,
            )?;
            Ok(Token {
                id,
                token: value,
                account: v.account,
                virtual_account: v.name,
                va_id: v.id,
                description: spec.description,
                created_at: now,
                expires_at,
                max_uses: spec.max_uses,
                uses: 0,
                export_controlled: spec.export_controlled,
                created_by: who.name.clone(),
                revoked_at: None,
            })
        })
        .await
}

/// Tokens of one virtual account, or of a whole account when `va` is `None`.
pub async fn list(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    va: Option<&str>,
) -> AppResult<Vec<Token>> {
    let (account, va, who) = (account.to_string(), va.map(str::to_string), who.clone());
    ctx.store
        .read(move |c| {
            let acc = account_named(c, &account)?;
            require(&who, Permission::Read, Some(acc.id))?;
            match va {
                Some(va) => {
                    let v = va_named(c, &account, &va)?;
                    Ok(store_tokens::list_for_va(c, v.id)?)
                }
                None => Ok(store_tokens::list_all(c, Some(acc.id))?),
            }
        })
        .await
}

/// Revokes each named token of the virtual account; all or nothing.
pub async fn revoke(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    va: Option<&str>,
    values: Vec<String>,
) -> AppResult<Vec<Token>> {
    if values.is_empty() {
        return Err(AppError::Invalid("no tokens named to revoke".into()));
    }
    let now = ctx.clock.now();
    let (account, va, who) = (account.to_string(), va.map(str::to_string), who.clone());
    ctx.store
        .write(move |c| {
            let acc = account_named(c, &account)?;
            require(&who, Permission::WriteAccount, Some(acc.id))?;
            let va_id = match &va {
                Some(va) => Some(va_named(c, &account, va)?.id),
                None => None,
            };
            let mut out = Vec::new();
            for value in &values {
                let t = store_tokens::find(c, value)?
                    .filter(|t| t.account == acc.name && va_id.is_none_or(|id| id == t.va_id))
                    .ok_or_else(|| {
                        AppError::NotFound(format!(
                            "token {}… not found in this account",
                            value.chars().take(8).collect::<String>()
                        ))
                    })?;
                if store_tokens::revoke(c, t.id, &who.name, now)? {
                    audit::record(
                        c,
                        now,
                        &who.name,
                        "token.revoke",
                        &format!("{}/{} token#{}", t.account, t.virtual_account, t.id),
                        "",
                    )?;
                }
                out.push(Token {
                    revoked_at: Some(t.revoked_at.unwrap_or(now)),
                    ..t
                });
            }
            Ok(out)
        })
        .await
}
