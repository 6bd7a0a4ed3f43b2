//! Server settings an administrator changes while serving: the TLS certificate of the
//! listeners and the online-sync schedule. Each change is checked, audited and applied at once.

use super::{require, Ctx};
use crate::config::ServerRole;
use crate::domain::roles::{Permission, Principal};
use crate::domain::schedule::CronSchedule;
use crate::error::{AppError, AppResult};
use crate::storage::{audit, settings};
use crate::tls::{CertPair, CertSummary, LiveCert};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::watch;

/// Settings key of the operator's sync schedule; absent means the configured one applies.
pub const SYNC_SCHEDULE_KEY: &str = "schedule.sync";
/// Daily usage snapshots: 00:05 UTC.
pub const SNAPSHOT_SCHEDULE: &str = "0 5 0 * * *";
/// Upcoming runs shown for each schedule.
pub const NEXT_RUNS: usize = 3;

/// Serialises changes, so the files, the audit trail and what is served agree on the order.
static CHANGE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The sync schedule in force and whether an operator set it.
#[derive(Clone, Debug)]
pub struct ActiveSchedule {
    pub schedule: CronSchedule,
    pub overridden: bool,
}

/// The sync schedule the scheduler follows: changed here, watched there.
#[derive(Clone)]
pub struct LiveSchedule {
    configured: String,
    tx: Arc<watch::Sender<ActiveSchedule>>,
}

impl LiveSchedule {
    /// The stored override if there is one and it still parses, else `configured`. A
    /// database that cannot be read now does not stop the server: the configured
    /// schedule applies until the next change.
    pub async fn open(ctx: &Ctx, configured: &str) -> AppResult<LiveSchedule> {
        let active = match effective(ctx, configured).await {
            Ok(a) => a,
            Err(AppError::Storage(e)) => {
                tracing::warn!(error = %e, "reading the sync schedule failed; the configured one applies");
                ActiveSchedule {
                    schedule: CronSchedule::parse(configured, ctx.clock.now())
                        .map_err(|e| AppError::Invalid(format!("sync_schedule: {e}")))?,
                    overridden: false,
                }
            }
            Err(e) => return Err(e),
        };
        let (tx, _) = watch::channel(active);
        Ok(LiveSchedule {
            configured: configured.to_string(),
            tx: Arc::new(tx),
        })
    }

    pub fn current(&self) -> ActiveSchedule {
        self.tx.borrow().clone()
    }

    /// The cron schedule in force now.
    pub fn cron(&self) -> cron::Schedule {
        self.tx.borrow().schedule.schedule().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<ActiveSchedule> {
        self.tx.subscribe()
    }

    /// The schedule from the configuration (file, environment or default).
    pub fn configured(&self) -> &str {
        &self.configured
    }
}

/// The sync schedule in force for a data dir, for processes that do not serve (the CLI).
pub async fn effective(ctx: &Ctx, configured: &str) -> AppResult<ActiveSchedule> {
    let now = ctx.clock.now();
    let stored = ctx
        .store
        .read(|c| Ok::<_, AppError>(settings::get_setting(c, SYNC_SCHEDULE_KEY)?))
        .await?;
    if let Some(text) = stored {
        match CronSchedule::parse(&text, now) {
            Ok(schedule) => {
                return Ok(ActiveSchedule {
                    schedule,
                    overridden: true,
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "stored sync schedule unusable; the configured one applies")
            }
        }
    }
    let schedule = CronSchedule::parse(configured, now)
        .map_err(|e| AppError::Invalid(format!("sync_schedule: {e}")))?;
    Ok(ActiveSchedule {
        schedule,
        overridden: false,
    })
}

/// One schedule as the settings page and the API show it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub schedule: String,
    /// `settings` (set by an operator), `config` (file, environment or default) or `built-in`.
    pub source: &'static str,
    /// The configured schedule a reset returns to; for the sync schedule only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configured: Option<String>,
    /// False when this server's role does not run the job.
    pub active: bool,
    pub next_runs: Vec<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedules {
    pub sync: ScheduleView,
    pub snapshot: ScheduleView,
}

fn sync_view(ctx: &Ctx, live: &LiveSchedule, now: DateTime<Utc>) -> ScheduleView {
    let a = live.current();
    ScheduleView {
        schedule: a.schedule.as_str().to_string(),
        source: if a.overridden { "settings" } else { "config" },
        configured: Some(live.configured().to_string()),
        active: ctx.role == ServerRole::Satellite,
        next_runs: a.schedule.next_runs(now, NEXT_RUNS),
    }
}

pub fn schedules(ctx: &Ctx, who: &Principal, live: &LiveSchedule) -> AppResult<Schedules> {
    require(who, Permission::Administer, None)?;
    let now = ctx.clock.now();
    let snapshot = CronSchedule::parse(SNAPSHOT_SCHEDULE, now)
        .map_err(|e| AppError::Internal(format!("snapshot schedule: {e}")))?;
    Ok(Schedules {
        sync: sync_view(ctx, live, now),
        snapshot: ScheduleView {
            schedule: snapshot.as_str().to_string(),
            source: "built-in",
            configured: None,
            active: true,
            next_runs: snapshot.next_runs(now, NEXT_RUNS),
        },
    })
}

/// Sets the sync schedule, or with `None` (or blank) returns to the configured one. The
/// scheduler follows from its next wait on; a refused schedule changes nothing.
pub async fn set_sync_schedule(
    ctx: &Ctx,
    who: &Principal,
    live: &LiveSchedule,
    text: Option<&str>,
) -> AppResult<Schedules> {
    require(who, Permission::Administer, None)?;
    let now = ctx.clock.now();
    let requested = text.map(str::trim).filter(|t| !t.is_empty());
    let next = match requested {
        Some(t) => ActiveSchedule {
            schedule: CronSchedule::parse(t, now)
                .map_err(|e| AppError::Invalid(format!("sync schedule refused: {e}")))?,
            overridden: true,
        },
        None => ActiveSchedule {
            schedule: CronSchedule::parse(live.configured(), now)
                .map_err(|e| AppError::Invalid(format!("sync_schedule: {e}")))?,
            overridden: false,
        },
    };
    let _order = CHANGE.lock().await;
    let previous = live.current().schedule.as_str().to_string();
    let (actor, value, overridden) = (
        who.name.clone(),
        next.schedule.as_str().to_string(),
        next.overridden,
    );
    ctx.store
        .write(move |c| {
            if overridden {
                settings::put_setting(c, SYNC_SCHEDULE_KEY, &value)?;
            } else {
                settings::delete_setting(c, SYNC_SCHEDULE_KEY)?;
            }
            let detail = if overridden {
                format!("schedule={value} previous={previous}")
            } else {
                format!("schedule={value} (configured) previous={previous}")
            };
            audit::record(c, now, &actor, "settings.sync_schedule", "sync", &detail)?;
            Ok::<_, AppError>(())
        })
        .await?;
    live.tx.send_replace(next);
    tracing::info!(schedule = %live.current().schedule.as_str(), "sync schedule changed");
    schedules(ctx, who, live)
}

/// The certificate the console and device HTTPS listeners present.
pub fn certificate(who: &Principal, live: &LiveCert) -> AppResult<CertSummary> {
    require(who, Permission::Administer, None)?;
    Ok(live.summary())
}

/// Checks an operator's certificate chain and key, writes them where the server reads them
/// at start, records the change and serves the new certificate from the next handshake on.
/// The audit row is committed only if both files were written.
pub async fn replace_certificate(
    ctx: &Ctx,
    who: &Principal,
    live: &Arc<LiveCert>,
    chain_pem: &str,
    key_pem: &str,
) -> AppResult<CertSummary> {
    require(who, Permission::Administer, None)?;
    let now = ctx.clock.now();
    let pair = CertPair::parse(chain_pem, key_pem, now)
        .map_err(|e| AppError::Invalid(format!("certificate refused: {e}")))?;
    let _order = CHANGE.lock().await;
    let previous = live.summary();
    let files = live.clone();
    let actor = who.name.clone();
    let pair = ctx
        .store
        .write(move |c| {
            let s = pair.summary();
            let detail = format!(
                "subject={} names={} not_after={} sha256={} previous_sha256={}",
                s.subject,
                s.names().join(","),
                s.not_after.format("%Y-%m-%dT%H:%M:%SZ"),
                s.fingerprint_sha256,
                previous.fingerprint_sha256
            );
            audit::record(c, now, &actor, "settings.certificate", "tls", &detail)?;
            files.write_files(&pair).map_err(|e| {
                AppError::Unavailable(format!("{e}; the certificate was not changed"))
            })?;
            Ok::<_, AppError>(pair)
        })
        .await?;
    let summary = pair.summary().clone();
    live.swap(pair);
    tracing::info!(
        subject = %summary.subject,
        sha256 = %summary.fingerprint_sha256,
        not_after = %summary.not_after,
        "TLS certificate replaced"
    );
    Ok(summary)
}
