//! Purchased licenses: entry on the authority, listing with compliance, transfers.

use super::accounts::va_named;
use super::{require, require_authority, Ctx};
use crate::domain::names::EntitlementTag;
use crate::domain::roles::{Permission, Principal};
use crate::error::{AppError, AppResult};
use crate::storage::audit;
use crate::storage::licenses::{self as store, LicenseRow, NewLicense};
use chrono::{DateTime, Utc};

pub struct LicenseSpec {
    pub tag: EntitlementTag,
    pub description: Option<String>,
    pub kind: String,
    pub quantity: i64,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

impl LicenseSpec {
    pub fn check(&self) -> AppResult<()> {
        if !matches!(self.kind.as_str(), "rtu" | "sia" | "tracking") {
            return Err(AppError::Invalid(format!(
                "license kind {:?} must be rtu, sia or tracking",
                self.kind
            )));
        }
        if !(1..=10_000_000).contains(&self.quantity) {
            return Err(AppError::Invalid(format!(
                "quantity must be between 1 and 10000000 (got {})",
                self.quantity
            )));
        }
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at) {
            if e <= s {
                return Err(AppError::Invalid(
                    "license end must be after its start".into(),
                ));
            }
        }
        Ok(())
    }
}

pub async fn add(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    va: &str,
    spec: LicenseSpec,
) -> AppResult<LicenseRow> {
    require_authority(ctx, "adding purchased licenses")?;
    require(who, Permission::Administer, None)?;
    spec.check()?;
    let now = ctx.clock.now();
    let (account, va, actor) = (account.to_string(), va.to_string(), who.name.clone());
    ctx.store
        .write(move |c| {
            let v = va_named(c, &account, &va)?;
            let description = spec.description.clone().unwrap_or_default();
            let id = store::insert(
                c,
                &NewLicense {
                    va_id: v.id,
                    tag: spec.tag.as_str(),
                    description: &description,
                    kind: &spec.kind,
                    quantity: spec.quantity,
                    starts_at: spec.starts_at,
                    ends_at: spec.ends_at,
                },
                now,
            )?;
            audit::record(
                c,
                now,
                &actor,
                "license.add",
                &format!("{account}/{va}"),
                &format!(
                    "tag={} kind={} quantity={}",
                    spec.tag, spec.kind, spec.quantity
                ),
            )?;
            Ok(LicenseRow {
                id,
                va_id: v.id,
                tag: spec.tag.to_string(),
                description,
                kind: spec.kind,
                quantity: spec.quantity,
                starts_at: spec.starts_at,
                ends_at: spec.ends_at,
            })
        })
        .await
}

/// One line of the licenses listing: a tag's compliance in one virtual account.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LicenseLine {
    pub virtual_account: String,
    pub compliance: crate::domain::compliance::TagCompliance,
}

/// Compliance per virtual account and tag for the named VAs (all of the account when empty).
pub async fn list(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    vas: Vec<String>,
) -> AppResult<Vec<LicenseLine>> {
    let now = ctx.clock.now();
    let (account, who) = (account.to_string(), who.clone());
    ctx.store
        .read(move |c| {
            let acc = super::accounts::account_named(c, &account)?;
            require(&who, Permission::Read, Some(acc.id))?;
            let targets = if vas.is_empty() {
                crate::storage::accounts::list_vas(c, Some(acc.id))?
            } else {
                vas.iter()
                    .map(|v| va_named(c, &account, v))
                    .collect::<AppResult<Vec<_>>>()?
            };
            let mut out = Vec::new();
            for v in targets {
                let summary = super::compliance::va_compliance(c, v.id, now)?;
                out.extend(summary.tags.into_iter().map(|t| LicenseLine {
                    virtual_account: v.name.clone(),
                    compliance: t,
                }));
            }
            Ok(out)
        })
        .await
}

pub struct TransferItem {
    pub tag: EntitlementTag,
    pub quantity: i64,
    pub target_va: String,
}

/// Moves unused licenses between virtual accounts of one smart account, all items or none.
pub async fn transfer(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    from_va: &str,
    items: Vec<TransferItem>,
) -> AppResult<usize> {
    if items.is_empty() {
        return Err(AppError::Invalid("no licenses named to transfer".into()));
    }
    let now = ctx.clock.now();
    let track = ctx.role == crate::config::ServerRole::Satellite;
    let (account, from_va, who) = (account.to_string(), from_va.to_string(), who.clone());
    ctx.store
        .write(move |c| {
            let src = va_named(c, &account, &from_va)?;
            require(&who, Permission::WriteAccount, Some(src.account_id))?;
            for item in &items {
                if item.quantity < 1 {
                    return Err(AppError::Invalid(format!(
                        "quantity for {} must be at least 1",
                        item.tag
                    )));
                }
                let dst = va_named(c, &account, &item.target_va)?;
                if dst.id == src.id {
                    return Err(AppError::Invalid(
                        "source and target virtual account are the same".into(),
                    ));
                }
                // Re-read after each item so several items of one tag cannot overdraw.
                let summary = super::compliance::va_compliance(c, src.id, now)?;
                let spare = summary
                    .tag(item.tag.as_str())
                    .map(|t| t.available.saturating_sub(t.in_use + t.substituted_to))
                    .unwrap_or(0);
                if item.quantity as u64 > spare {
                    return Err(AppError::Conflict(format!(
                        "cannot transfer {} x {} from {from_va}: only {spare} available",
                        item.quantity, item.tag
                    )));
                }
                store::insert_transfer(
                    c,
                    src.id,
                    dst.id,
                    item.tag.as_str(),
                    item.quantity,
                    &who.name,
                    now,
                )?;
                audit::record(
                    c,
                    now,
                    &who.name,
                    "license.transfer",
                    &format!("{account}/{from_va} -> {account}/{}", dst.name),
                    &format!("tag={} quantity={}", item.tag, item.quantity),
                )?;
                if track {
                    crate::storage::sync::record_change(
                        c,
                        "license_transferred",
                        &account,
                        &from_va,
                        None,
                        None,
                        Some(&format!("{} x {} to {}", item.quantity, item.tag, dst.name)),
                        now,
                    )?;
                }
            }
            Ok(items.len())
        })
        .await
}

/// Daily snapshots of one virtual account since `days` ago.
pub async fn usage_history(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    va: &str,
    days: i64,
) -> AppResult<Vec<crate::storage::snapshots::Snapshot>> {
    let since = (ctx.clock.now() - chrono::Duration::days(days.clamp(1, 3660)))
        .format("%Y-%m-%d")
        .to_string();
    let (account, va, who) = (account.to_string(), va.to_string(), who.clone());
    ctx.store
        .read(move |c| {
            let v = va_named(c, &account, &va)?;
            require(&who, Permission::Read, Some(v.account_id))?;
            Ok(crate::storage::snapshots::for_va(c, v.id, &since)?)
        })
        .await
}
