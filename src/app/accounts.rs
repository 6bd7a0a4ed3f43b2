//! Smart accounts, virtual accounts and EULA acceptance.

use super::{require, Ctx};
use crate::domain::names::{AccountName, VaName};
use crate::domain::roles::{Permission, Principal};
use crate::error::{AppError, AppResult};
use crate::storage::accounts::{self, Account, VirtualAccount};
use crate::storage::{audit, is_unique_violation};
use rusqlite::Connection;

pub fn account_named(c: &Connection, name: &str) -> AppResult<Account> {
    accounts::find_account(c, name)?
        .ok_or_else(|| AppError::NotFound(format!("smart account {name:?} not found")))
}

pub fn va_named(c: &Connection, account: &str, va: &str) -> AppResult<VirtualAccount> {
    account_named(c, account)?;
    accounts::find_va(c, account, va)?.ok_or_else(|| {
        AppError::NotFound(format!(
            "virtual account {va:?} not found in smart account {account:?}"
        ))
    })
}

pub async fn create_account(ctx: &Ctx, who: &Principal, name: &str) -> AppResult<Account> {
    require(who, Permission::Administer, None)?;
    let name = AccountName::parse(name)?;
    let now = ctx.clock.now();
    let actor = who.name.clone();
    ctx.store
        .write(move |c| {
            let id = accounts::insert_account(c, name.as_str(), now).map_err(|e| {
                if is_unique_violation(&e) {
                    AppError::Conflict(format!("smart account {name:?} already exists"))
                } else {
                    e.into()
                }
            })?;
            audit::record(c, now, &actor, "account.create", name.as_str(), "")?;
            Ok(Account {
                id,
                name: name.to_string(),
                eula_accepted_at: None,
                eula_accepted_by: None,
            })
        })
        .await
}

pub async fn create_va(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    va: &str,
) -> AppResult<VirtualAccount> {
    let va = VaName::parse(va)?;
    let account = account.to_string();
    let now = ctx.clock.now();
    let who = who.clone();
    ctx.store
        .write(move |c| {
            let acc = account_named(c, &account)?;
            require(&who, Permission::Administer, Some(acc.id))?;
            let id = accounts::insert_va(c, acc.id, va.as_str(), now).map_err(|e| {
                if is_unique_violation(&e) {
                    AppError::Conflict(format!(
                        "virtual account {:?} already exists in {account:?}",
                        va.as_str()
                    ))
                } else {
                    e.into()
                }
            })?;
            audit::record(
                c,
                now,
                &who.name,
                "va.create",
                &format!("{account}/{va}"),
                "",
            )?;
            Ok(VirtualAccount {
                id,
                account_id: acc.id,
                account: acc.name,
                name: va.to_string(),
            })
        })
        .await
}

pub async fn accept_eula(ctx: &Ctx, who: &Principal, account: &str) -> AppResult<Account> {
    let account = account.to_string();
    let now = ctx.clock.now();
    let who = who.clone();
    ctx.store
        .write(move |c| {
            let acc = account_named(c, &account)?;
            require(&who, Permission::WriteAccount, Some(acc.id))?;
            if acc.eula_accepted_at.is_some() {
                return Ok(acc);
            }
            accounts::accept_eula(c, acc.id, &who.name, now)?;
            audit::record(c, now, &who.name, "eula.accept", &account, "")?;
            Ok(Account {
                eula_accepted_at: Some(now),
                eula_accepted_by: Some(who.name.clone()),
                ..acc
            })
        })
        .await
}

/// Accounts the principal may read.
pub async fn list_accounts(ctx: &Ctx, who: &Principal) -> AppResult<Vec<Account>> {
    let who = who.clone();
    ctx.store
        .read(move |c| {
            let all = accounts::list_accounts(c)?;
            Ok(all
                .into_iter()
                .filter(|a| who.can(Permission::Read, Some(a.id)))
                .collect())
        })
        .await
}

/// Names of the accounts `who` may read, by id: for showing a user's or client's scope.
pub async fn names_by_id(
    ctx: &Ctx,
    who: &Principal,
) -> AppResult<std::collections::HashMap<i64, String>> {
    Ok(list_accounts(ctx, who)
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect())
}

pub async fn list_vas(ctx: &Ctx, who: &Principal, account: &str) -> AppResult<Vec<VirtualAccount>> {
    let who = who.clone();
    let account = account.to_string();
    ctx.store
        .read(move |c| {
            let acc = account_named(c, &account)?;
            require(&who, Permission::Read, Some(acc.id))?;
            Ok(accounts::list_vas(c, Some(acc.id))?)
        })
        .await
}
