//! The alert loop: hourly, and at once when notification settings change, it reads the
//! current alerts and hands the due ones to syslog, email and webhook. Failures are logged
//! and recorded; they never stop the server.

use crate::app::alerts::{self, Alert, Sources};
use crate::app::notifications::{self, Channel, Targets};
use crate::app::Ctx;
use crate::ops::notify;
use crate::ops::syslog::{self, AlertSink, Severity, CHECK_EVERY};
use chrono::Local;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Asks the loop for a check now; a request made during a check is kept for the next one.
#[derive(Clone, Debug, Default)]
pub struct Trigger(Arc<tokio::sync::Notify>);

impl Trigger {
    pub fn check_now(&self) {
        self.0.notify_one();
    }
}

/// One channel's memory: what was sent when, and to which target, so a new target
/// gets every current alert at once.
#[derive(Debug, Default)]
struct ChannelState {
    target: String,
    sink: AlertSink,
}

impl ChannelState {
    fn retarget(&mut self, target: String) {
        if self.target != target {
            *self = ChannelState {
                target,
                sink: AlertSink::default(),
            };
        }
    }
}

#[derive(Debug, Default)]
pub struct LoopState {
    syslog: AlertSink,
    email: ChannelState,
    webhook: ChannelState,
}

fn keys(alerts: &[Alert]) -> Vec<String> {
    alerts.iter().map(|a| a.key.clone()).collect()
}

fn pick(alerts: &[Alert], due: &[String]) -> Vec<Alert> {
    alerts
        .iter()
        .filter(|a| due.contains(&a.key))
        .cloned()
        .collect()
}

fn fingerprint<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

async fn channel(
    ctx: &Ctx,
    ch: Channel,
    target: Option<String>,
    state: &mut ChannelState,
    targets: &Targets,
    all: &[Alert],
) {
    let Some(target) = target else {
        *state = ChannelState::default();
        return;
    };
    state.retarget(target);
    let due = state.sink.due(&keys(all), Instant::now());
    if due.is_empty() {
        return;
    }
    if !notify::deliver(ctx, ch, targets, &pick(all, &due)).await {
        state.sink.forget(&due);
    }
}

/// One check. Returns the alerts it found.
pub async fn check_once(
    ctx: &Ctx,
    sources: &Sources,
    syslog_socket: Option<&std::path::Path>,
    state: &mut LoopState,
) -> Vec<Alert> {
    let all = match alerts::current(ctx, sources).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "reading the current alerts failed");
            return Vec::new();
        }
    };
    for a in pick(&all, &state.syslog.due(&keys(&all), Instant::now())) {
        tracing::warn!(alert = %a.text, key = %a.key, "alert");
        if let Some(socket) = syslog_socket {
            let what = if a.key.starts_with("sync.") {
                "sync alert"
            } else {
                "alert"
            };
            let severity = match a.severity {
                alerts::Severity::Error => Severity::Error,
                alerts::Severity::Warning => Severity::Warning,
            };
            let packet = syslog::format_rfc3164(
                severity,
                Local::now(),
                &crate::tls::host_name(),
                std::process::id(),
                &format!("{what}: {}", a.text),
            );
            if let Err(e) = syslog::send(socket, &packet) {
                tracing::warn!(error = %e, "sending an alert to syslog failed");
            }
        }
    }
    let targets = match notifications::targets(ctx).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "reading the notification settings failed");
            return all;
        }
    };
    // The password is part of the target: a corrected password retries at once.
    let email_target = targets.email.as_ref().map(|(s, p)| {
        format!(
            "{}{}",
            fingerprint(s),
            p.as_ref()
                .map(|p| crate::auth::token_digest(p.expose()))
                .unwrap_or_default()
        )
    });
    let webhook_target = targets.webhook.as_ref().map(fingerprint);
    channel(
        ctx,
        Channel::Email,
        email_target,
        &mut state.email,
        &targets,
        &all,
    )
    .await;
    channel(
        ctx,
        Channel::Webhook,
        webhook_target,
        &mut state.webhook,
        &targets,
        &all,
    )
    .await;
    all
}

/// Starts the loop on the current runtime; the first check runs at once so a restart
/// does not hide a standing alert for an hour.
pub fn start(
    ctx: Ctx,
    config: &crate::config::Config,
    sync_schedule: &crate::app::settings::LiveSchedule,
    trigger: Trigger,
) {
    let socket: Option<PathBuf> = config.syslog.then(|| config.syslog_socket.clone());
    let mut sources = Sources::from_config(config);
    let live = sync_schedule.clone();
    tokio::spawn(async move {
        let mut state = LoopState::default();
        let mut tick = tokio::time::interval(CHECK_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = trigger.0.notified() => {}
            }
            // The schedule in force, which the settings page may have changed.
            sources.schedule = Some(live.cron());
            check_once(&ctx, &sources, socket.as_deref(), &mut state).await;
        }
    });
}
