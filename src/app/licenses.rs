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
