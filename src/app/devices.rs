//! Product instances as operators see them: paged listing with status, removal, transfer.

use super::accounts::{account_named, va_named};
use super::{require, Ctx};
use crate::domain::compliance::{self, InstanceCompliance, VaCompliance};
use crate::domain::roles::{Permission, Principal};
use crate::error::{AppError, AppResult};
use crate::storage::accounts::{self, VirtualAccount};
use crate::storage::audit;
use crate::storage::instances::{self, Instance};
use crate::storage::sync as sync_store;
use std::collections::HashMap;

pub const MAX_PAGE: i64 = 1000;

#[derive(Clone, Debug, serde::Serialize)]
pub struct DeviceView {
    pub instance: Instance,
    pub virtual_account: String,
    pub usage: Vec<(String, i64)>,
    pub compliance: InstanceCompliance,
}

pub struct Page {
    pub devices: Vec<DeviceView>,
    pub total: i64,
}

fn scope_vas(
    c: &rusqlite::Connection,
    account: &str,
    vas: &[String],
) -> AppResult<Vec<VirtualAccount>> {
    let acc = account_named(c, account)?;
    if vas.is_empty() {
        Ok(accounts::list_vas(c, Some(acc.id))?)
    } else {
        vas.iter().map(|v| va_named(c, account, v)).collect()
    }
}

pub async fn list(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    vas: Vec<String>,
    search: Option<String>,
    limit: i64,
    offset: i64,
) -> AppResult<Page> {
    let now = ctx.clock.now();
    let (account, who) = (account.to_string(), who.clone());
    let limit = limit.clamp(1, MAX_PAGE);
    let offset = offset.max(0);
    ctx.store
        .read(move |c| {
            let acc = account_named(c, &account)?;
            require(&who, Permission::Read, Some(acc.id))?;
            let targets = scope_vas(c, &account, &vas)?;
            let ids: Vec<i64> = targets.iter().map(|v| v.id).collect();
            let names: HashMap<i64, String> =
                targets.iter().map(|v| (v.id, v.name.clone())).collect();
            let (rows, total) = instances::page(c, &ids, search.as_deref(), limit, offset)?;
            let mut cache: HashMap<i64, VaCompliance> = HashMap::new();
            let mut devices = Vec::with_capacity(rows.len());
            for inst in rows {
                if let std::collections::hash_map::Entry::Vacant(e) = cache.entry(inst.va_id) {
                    e.insert(super::compliance::va_compliance(c, inst.va_id, now)?);
                }
                let usage = instances::usage_of(c, inst.id)?;
                let u: Vec<(String, u64)> = usage
                    .iter()
                    .map(|(t, n)| (t.clone(), (*n).max(0) as u64))
                    .collect();
                let view = match cache.get(&inst.va_id) {
                    Some(va) => compliance::instance_view(&u, va, inst.last_contact_at, now),
                    None => return Err(AppError::Internal("compliance cache miss".into())),
                };
                devices.push(DeviceView {
                    virtual_account: names.get(&inst.va_id).cloned().unwrap_or_default(),
                    instance: inst,
                    usage,
                    compliance: view,
                });
            }
            Ok(Page { devices, total })
        })
        .await
}

#[derive(Clone, Debug)]
pub struct SudiRef {
    pub pid: String,
    pub serial: String,
}

fn find_in_account(c: &rusqlite::Connection, account_id: i64, s: &SudiRef) -> AppResult<Instance> {
    let inst = instances::find(c, &s.pid, &s.serial)?;
    let inst = match inst {
        Some(i) => i,
        None => {
            return Err(AppError::NotFound(format!(
                "device {}:{} not found",
                s.pid, s.serial
            )))
        }
    };
    let va = accounts::va_by_id(c, inst.va_id)?;
    if va.map(|v| v.account_id) != Some(account_id) {
        return Err(AppError::NotFound(format!(
            "device {}:{} not found in this account",
            s.pid, s.serial
        )));
    }
    Ok(inst)
}

/// Removes devices and returns their licenses; all or none.
pub async fn remove(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    sudis: Vec<SudiRef>,
) -> AppResult<usize> {
    if sudis.is_empty() {
        return Err(AppError::Invalid("no devices named".into()));
    }
    let now = ctx.clock.now();
    let track = ctx.role == crate::config::ServerRole::Satellite;
    let (account, who) = (account.to_string(), who.clone());
    ctx.store
        .write(move |c| {
            let acc = account_named(c, &account)?;
            require(&who, Permission::WriteAccount, Some(acc.id))?;
            for s in &sudis {
                let inst = find_in_account(c, acc.id, s)?;
                if track {
                    let va = accounts::va_by_id(c, inst.va_id)?
                        .map(|v| v.name)
                        .unwrap_or_default();
                    sync_store::record_change(
                        c,
                        "removed",
                        &account,
                        &va,
                        Some(&s.pid),
                        Some(&s.serial),
                        Some(&format!("removed by {}", who.name)),
                        now,
                    )?;
                }
                instances::delete(c, inst.id)?;
                audit::record(
                    c,
                    now,
                    &who.name,
                    "device.remove",
                    &format!("{}:{}", s.pid, s.serial),
                    &account,
                )?;
            }
            Ok(sudis.len())
        })
        .await
}

/// Moves devices, with their usage, to another virtual account of the same account.
pub async fn transfer(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    sudis: Vec<SudiRef>,
    target_va: &str,
) -> AppResult<usize> {
    if sudis.is_empty() {
        return Err(AppError::Invalid("no devices named".into()));
    }
    let now = ctx.clock.now();
    let track = ctx.role == crate::config::ServerRole::Satellite;
    let (account, who, target) = (account.to_string(), who.clone(), target_va.to_string());
    ctx.store
        .write(move |c| {
            let acc = account_named(c, &account)?;
            require(&who, Permission::WriteAccount, Some(acc.id))?;
            let dst = va_named(c, &account, &target)?;
            for s in &sudis {
                let inst = find_in_account(c, acc.id, s)?;
                if track {
                    sync_store::record_change(
                        c,
                        "transferred",
                        &account,
                        &target,
                        Some(&s.pid),
                        Some(&s.serial),
                        Some(&format!("moved by {}", who.name)),
                        now,
                    )?;
                }
                instances::move_to_va(c, inst.id, dst.id)?;
                audit::record(
                    c,
                    now,
                    &who.name,
                    "device.transfer",
                    &format!("{}:{}", s.pid, s.serial),
                    &format!("to {account}/{target}"),
                )?;
            }
            Ok(sudis.len())
        })
        .await
}

/// One device with its status and its most recent events, as the console's detail page shows it.
pub struct DeviceDetail {
    pub device: DeviceView,
    pub events: Vec<instances::Event>,
}

pub async fn detail(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    sudi: SudiRef,
    events: i64,
) -> AppResult<DeviceDetail> {
    let now = ctx.clock.now();
    let (account, who) = (account.to_string(), who.clone());
    let events = events.clamp(0, 500);
    ctx.store
        .read(move |c| {
            let acc = account_named(c, &account)?;
            require(&who, Permission::Read, Some(acc.id))?;
            let inst = find_in_account(c, acc.id, &sudi)?;
            let va = super::compliance::va_compliance(c, inst.va_id, now)?;
            let usage = instances::usage_of(c, inst.id)?;
            let u: Vec<(String, u64)> = usage
                .iter()
                .map(|(t, n)| (t.clone(), (*n).max(0) as u64))
                .collect();
            let view = compliance::instance_view(&u, &va, inst.last_contact_at, now);
            let va_name = accounts::va_by_id(c, inst.va_id)?
                .map(|v| v.name)
                .unwrap_or_default();
            // Events are keyed by serial only; keep those that name another PID out.
            let evs = instances::events_for(c, &inst.udi_serial, events)?
                .into_iter()
                .filter(|e| e.udi_pid.as_deref().is_none_or(|p| p == inst.udi_pid))
                .collect();
            Ok(DeviceDetail {
                device: DeviceView {
                    instance: inst,
                    virtual_account: va_name,
                    usage,
                    compliance: view,
                },
                events: evs,
            })
        })
        .await
}

/// Device counts of one virtual account by standing.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VaStatusCounts {
    pub virtual_account: String,
    pub devices: i64,
    pub authorized: i64,
    pub out_of_compliance: i64,
    pub authorization_expired: i64,
    /// Tags whose pool does not cover their use.
    pub licenses_out_of_compliance: i64,
}

/// Per virtual account of the account: how many devices are fine and how many are not.
/// Works from the VA's compliance and one counting query per VA, never per device.
pub async fn status_counts(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
) -> AppResult<Vec<VaStatusCounts>> {
    let now = ctx.clock.now();
    let (account, who) = (account.to_string(), who.clone());
    ctx.store
        .read(move |c| {
            let acc = account_named(c, &account)?;
            require(&who, Permission::Read, Some(acc.id))?;
            let lapsed_before =
                now - chrono::Duration::days(compliance::AUTHORIZATION_VALIDITY_DAYS);
            let mut out = Vec::new();
            for v in accounts::list_vas(c, Some(acc.id))? {
                let va = super::compliance::va_compliance(c, v.id, now)?;
                let bad: Vec<String> = va
                    .tags
                    .iter()
                    .filter(|t| t.status != compliance::EntitlementStatus::Authorized)
                    .map(|t| t.tag.clone())
                    .collect();
                let (devices, lapsed, ooc) =
                    instances::status_counts(c, v.id, &bad, lapsed_before)?;
                out.push(VaStatusCounts {
                    virtual_account: v.name,
                    devices,
                    authorized: devices - lapsed - ooc,
                    out_of_compliance: ooc,
                    authorization_expired: lapsed,
                    licenses_out_of_compliance: bad.len() as i64,
                });
            }
            Ok(out)
        })
        .await
}
