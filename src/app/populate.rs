//! Bulk registration of synthetic product instances for scale measurements, through the
//! same storage write path routers use (instance upsert plus usage aggregates), batched.

use super::accounts::va_named;
use super::{require, Ctx};
use crate::domain::roles::{Permission, Principal};
use crate::error::{AppError, AppResult};
use crate::simulate::device::fleet_member;
use crate::storage::instances::{self, Registration};

/// Registers `count` synthetic instances into a VA, `batch` per transaction; returns the count.
pub async fn populate(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    va: &str,
    count: u64,
    batch: u64,
    mut progress: impl FnMut(u64),
) -> AppResult<u64> {
    require(who, Permission::Administer, None)?;
    let (account, va) = (account.to_string(), va.to_string());
    let target = ctx.store.read(move |c| va_named(c, &account, &va)).await?;
    let batch = batch.clamp(1, 50_000);
    let mut done = 0;
    while done < count {
        let n = batch.min(count - done);
        let start = done;
        let now = ctx.clock.now();
        let va_id = target.id;
        ctx.store
            .write(move |c| {
                for i in start..start + n {
                    let ch = fleet_member(i, 7);
                    let id = instances::upsert_registration(
                        c,
                        &Registration {
                            udi_pid: &ch.pid,
                            udi_serial: &ch.serial,
                            hostname: ch.hostname.as_deref(),
                            software_version: Some(&ch.software_version),
                            va_id,
                            public_key: "synthetic",
                            export_controlled: false,
                            token_id: None,
                            id_cert_serial: "synthetic",
                            id_cert_not_after: now + chrono::Duration::days(365),
                        },
                        now,
                    )?;
                    let usage: Vec<(String, i64)> = ch
                        .entitlements()
                        .into_iter()
                        .map(|(t, n)| (t, i64::from(n)))
                        .collect();
                    instances::replace_usage(c, id, va_id, &usage)?;
                }
                Ok::<_, AppError>(())
            })
            .await?;
        done += n;
        progress(done);
    }
    Ok(done)
}
