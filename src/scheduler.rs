//! Background jobs of a serving process: daily usage snapshots and the nonce sweep.
//! Each job reads the one clock and writes through the store; none holds state of its own.

use crate::app::Ctx;
use crate::error::AppError;
use crate::storage::{accounts, instances, snapshots};
use chrono::{DateTime, Duration, Utc};
use std::str::FromStr;

/// Nonces older than this cannot pass the clock-skew check any more, so they can go.
const NONCE_RETENTION: Duration = Duration::hours(3);
pub use crate::app::settings::SNAPSHOT_SCHEDULE;

/// Writes today's snapshot for every virtual account (idempotent: a rerun overwrites).
pub async fn snapshot_usage(ctx: &Ctx, now: DateTime<Utc>) -> Result<usize, AppError> {
    let day = now.format("%Y-%m-%d").to_string();
    ctx.store
        .write(move |c| {
            let mut n = 0;
            for va in accounts::list_vas(c, None)? {
                let summary = crate::app::compliance::va_compliance(c, va.id, now)?;
                for t in summary.tags {
                    snapshots::put(
                        c,
                        &snapshots::Snapshot {
                            day: day.clone(),
                            va_id: va.id,
                            tag: t.tag,
                            in_use: t.in_use as i64,
                            available: t.available as i64,
                        },
                    )?;
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
}

pub async fn purge_nonces(ctx: &Ctx, now: DateTime<Utc>) -> Result<usize, AppError> {
    ctx.store
        .write(move |c| Ok(instances::purge_nonces(c, now - NONCE_RETENTION)?))
        .await
}

/// Sleeps until the schedule's next instant on the satellite's clock.
async fn sleep_until_next(ctx: &Ctx, schedule: &cron::Schedule) {
    let now = ctx.clock.now();
    let wait = schedule
        .after(&now)
        .next()
        .map(|t| (t - now).to_std().unwrap_or_default())
        .unwrap_or(std::time::Duration::from_secs(3600));
    tokio::time::sleep(wait).await;
}

/// Connected mode: one online sync at each scheduled instant, when an upstream is set.
/// A schedule changed meanwhile takes effect at once: the wait starts over with it.
fn start_sync(
    ctx: Ctx,
    data_dir: std::path::PathBuf,
    mut schedule: tokio::sync::watch::Receiver<crate::app::settings::ActiveSchedule>,
) {
    tokio::spawn(async move {
        loop {
            let current = schedule.borrow_and_update().schedule.clone();
            tokio::select! {
                _ = sleep_until_next(&ctx, current.schedule()) => {}
                changed = schedule.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    tracing::info!(schedule = %schedule.borrow().schedule.as_str(), "scheduled sync follows the new schedule");
                    continue;
                }
            }
            if crate::app::sync::upstream(&ctx).await.is_err() {
                tracing::info!("scheduled sync skipped: no upstream configured");
                continue;
            }
            match crate::sync::online::sync_now(
                &ctx,
                &data_dir,
                &crate::sync::online::RetryPolicy::from_env(),
            )
            .await
            {
                Ok(r) => tracing::info!(response = r.sequence, "scheduled sync done"),
                Err(e) => {
                    tracing::warn!(error = %e, "scheduled sync failed; serving from the last pool")
                }
            }
        }
    });
}

/// Starts the jobs on the current runtime; they end with it.
pub fn start(
    ctx: Ctx,
    config: &crate::config::Config,
    sync_schedule: &crate::app::settings::LiveSchedule,
) {
    if ctx.role == crate::config::ServerRole::Satellite {
        start_sync(
            ctx.clone(),
            config.data_dir.clone(),
            sync_schedule.subscribe(),
        );
    }
    let snap_ctx = ctx.clone();
    tokio::spawn(async move {
        let schedule = match cron::Schedule::from_str(SNAPSHOT_SCHEDULE) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "snapshot schedule invalid");
                return;
            }
        };
        loop {
            sleep_until_next(&snap_ctx, &schedule).await;
            match snapshot_usage(&snap_ctx, snap_ctx.clock.now()).await {
                Ok(n) => tracing::info!(rows = n, "daily usage snapshot taken"),
                Err(e) => tracing::warn!(error = %e, "usage snapshot failed"),
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = purge_nonces(&ctx, ctx.clock.now()).await {
                tracing::warn!(error = %e, "nonce sweep failed");
            }
        }
    });
}
