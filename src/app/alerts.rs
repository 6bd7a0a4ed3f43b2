//! The alerts an operator should see now, each under a stable key: sync overdue, virtual
//! accounts out of compliance, SIA grace periods running out, certificates near expiry.
//! Reads only; the cost follows accounts and tags, never the number of product instances.

use super::{sync as app_sync, Ctx};
use crate::config::Config;
use crate::domain::compliance::{EntitlementStatus, GRACE_PERIOD_SECONDS};
use crate::domain::roles::{Permission, Principal};
use crate::error::AppResult;
use crate::storage::{accounts, from_ts, ts};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A SIA grace period ending within this many days is announced.
pub const SIA_GRACE_NOTICE_DAYS: i64 = 14;
/// A certificate expiring within this many days is announced.
pub const CERT_NOTICE_DAYS: i64 = 30;
/// Tags named in one compliance alert; the rest are counted.
const TAGS_NAMED: usize = 5;
/// Certificate files are a few kilobytes; anything larger is not read.
const MAX_CERT_FILE: u64 = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Stays the same while the condition lasts, whatever its text says.
    pub key: String,
    pub severity: Severity,
    pub text: String,
    pub since: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_account: Option<String>,
    /// Whose data this is: account-scoped users see only their accounts' alerts.
    #[serde(skip)]
    pub account_id: Option<i64>,
}

/// What the checks need besides the database: the sync schedule and the certificates in use.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    pub schedule: Option<cron::Schedule>,
    pub certificates: Vec<(String, PathBuf)>,
}

impl Sources {
    pub fn from_config(config: &Config) -> Sources {
        let console = config
            .tls_cert
            .clone()
            .unwrap_or_else(|| config.data_dir.join("tls").join(crate::tls::CERT_FILE));
        let ca = config
            .data_dir
            .join("device-ca")
            .join(crate::crypto::device_ca::CA_CERT_FILE);
        Sources {
            schedule: config.sync_schedule.parse::<cron::Schedule>().ok(),
            certificates: vec![
                ("console TLS certificate".into(), console),
                ("device CA certificate".into(), ca),
            ],
        }
    }
}

/// Every current alert, for delivery. Errors first, then by key.
pub async fn current(ctx: &Ctx, sources: &Sources) -> AppResult<Vec<Alert>> {
    let now = ctx.clock.now();
    let mut out = Vec::new();
    let sync = app_sync::status(ctx, sources.schedule.clone()).await?;
    for a in sync.alert_items {
        out.push(Alert {
            key: a.key.to_string(),
            severity: Severity::Warning,
            text: a.text,
            since: a.since,
            account: None,
            virtual_account: None,
            account_id: None,
        });
    }
    let mut from_db = ctx.store.read(move |c| database_alerts(c, now)).await?;
    out.append(&mut from_db);
    for (label, path) in &sources.certificates {
        if let Some(a) = certificate_alert(label, path, now) {
            out.push(a);
        }
    }
    out.sort_by(|a, b| {
        (a.severity != Severity::Error, &a.key).cmp(&(b.severity != Severity::Error, &b.key))
    });
    Ok(out)
}

/// The alerts `who` may read: system-wide ones need read access to the system, the
/// others read access to their account.
pub async fn visible(ctx: &Ctx, who: &Principal, sources: &Sources) -> AppResult<Vec<Alert>> {
    let mut all = current(ctx, sources).await?;
    all.retain(|a| who.can(Permission::Read, a.account_id));
    Ok(all)
}

fn database_alerts(c: &Connection, now: DateTime<Utc>) -> AppResult<Vec<Alert>> {
    let mut out = Vec::new();
    for va in accounts::list_vas(c, None)? {
        let summary = super::compliance::va_compliance(c, va.id, now)?;
        let short: Vec<_> = summary
            .tags
            .iter()
            .filter(|t| t.status == EntitlementStatus::OutOfCompliance)
            .collect();
        if !short.is_empty() {
            let mut named: Vec<String> = short
                .iter()
                .take(TAGS_NAMED)
                .map(|t| {
                    format!(
                        "{} ({} in use, {} available)",
                        t.tag,
                        t.in_use,
                        t.available + t.covered_by_substitution
                    )
                })
                .collect();
            if short.len() > TAGS_NAMED {
                named.push(format!("and {} more", short.len() - TAGS_NAMED));
            }
            out.push(Alert {
                key: format!("compliance.va.{}", va.id),
                severity: Severity::Error,
                text: format!(
                    "virtual account {} / {} is out of compliance: {}",
                    va.account,
                    va.name,
                    named.join(", ")
                ),
                since: None,
                account: Some(va.account.clone()),
                virtual_account: Some(va.name.clone()),
                account_id: Some(va.account_id),
            });
        }
        // Grace runs only on instances of a VA whose SIA is short, so the others are skipped.
        if !summary.sia_in_compliance() {
            if let Some(a) = sia_grace_alert(c, &va, now)? {
                out.push(a);
            }
        }
    }
    Ok(out)
}

/// Instances of the VA whose SIA grace ends within the notice period or has ended. The
/// partial index on open out-of-compliance spells keeps this to the instances concerned.
fn sia_grace_alert(
    c: &Connection,
    va: &accounts::VirtualAccount,
    now: DateTime<Utc>,
) -> AppResult<Option<Alert>> {
    // Grace ends at ooc_since - used + GRACE; ending before `horizon` means
    // ooc_since - used <= horizon - GRACE.
    let horizon = ts(now) + SIA_GRACE_NOTICE_DAYS * 86_400;
    let mut st = c.prepare_cached(
        "SELECT COUNT(*), MIN(sia_ooc_since - sia_grace_used_seconds), \
                SUM(sia_ooc_since - sia_grace_used_seconds + ?3 <= ?4) \
         FROM product_instances \
         WHERE va_id = ?1 AND sia_ooc_since IS NOT NULL \
           AND sia_ooc_since - sia_grace_used_seconds <= ?2",
    )?;
    let (count, earliest, ended): (i64, Option<i64>, Option<i64>) = st.query_row(
        rusqlite::params![
            va.id,
            horizon - GRACE_PERIOD_SECONDS,
            GRACE_PERIOD_SECONDS,
            ts(now)
        ],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let Some(earliest) = earliest.filter(|_| count > 0) else {
        return Ok(None);
    };
    let first_end = from_ts(earliest.saturating_add(GRACE_PERIOD_SECONDS));
    let ended = ended.unwrap_or(0);
    let text = if ended > 0 {
        format!(
            "virtual account {} / {}: the SIA grace period has ended on {ended} product instance(s) and ends within {SIA_GRACE_NOTICE_DAYS} days on {}; they can no longer upgrade software until SIA licenses are added",
            va.account,
            va.name,
            count - ended
        )
    } else {
        format!(
            "virtual account {} / {}: the SIA grace period of {count} product instance(s) ends within {SIA_GRACE_NOTICE_DAYS} days, first on {}",
            va.account,
            va.name,
            first_end.format("%Y-%m-%d %H:%M UTC")
        )
    };
    Ok(Some(Alert {
        key: format!("sia-grace.va.{}", va.id),
        severity: if ended > 0 {
            Severity::Error
        } else {
            Severity::Warning
        },
        text,
        since: None,
        account: Some(va.account.clone()),
        virtual_account: Some(va.name.clone()),
        account_id: Some(va.account_id),
    }))
}

/// When the PEM certificate at `path` stops being valid, if it can be read.
pub fn certificate_not_after(path: &Path) -> Option<DateTime<Utc>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_CERT_FILE {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let der = CertificateDer::from_pem_slice(&bytes).ok()?;
    crate::crypto::device_ca::der_cert(der.as_ref())
        .ok()
        .map(|c| c.not_after)
}

fn certificate_alert(label: &str, path: &Path, now: DateTime<Utc>) -> Option<Alert> {
    let not_after = certificate_not_after(path)?;
    let left = not_after - now;
    if left > chrono::Duration::days(CERT_NOTICE_DAYS) {
        return None;
    }
    let when = not_after.format("%Y-%m-%d %H:%M UTC");
    let (severity, text) = if left <= chrono::Duration::zero() {
        (
            Severity::Error,
            format!("the {label} ({}) expired on {when}", path.display()),
        )
    } else {
        (
            Severity::Warning,
            format!(
                "the {label} ({}) expires on {when}, in {} day(s)",
                path.display(),
                left.num_days()
            ),
        )
    };
    Some(Alert {
        key: format!("certificate.{}", label.replace(' ', "-")),
        severity,
        text,
        since: None,
        account: None,
        virtual_account: None,
        account_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_far_from_expiry_raises_nothing_and_a_near_one_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pem");
        let mut params = rcgen::CertificateParams::new(vec!["x".into()]).unwrap();
        let not_after = time::OffsetDateTime::now_utc() + time::Duration::days(10);
        params.not_after = not_after;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(&path, cert.pem()).unwrap();
        let now = Utc::now();
        let a = certificate_alert("test certificate", &path, now).expect("alert");
        assert_eq!(a.key, "certificate.test-certificate");
        assert_eq!(a.severity, Severity::Warning);
        assert!(a.text.contains("in 9 day(s)") || a.text.contains("in 10 day(s)"));
        assert!(certificate_alert("t", &path, now - chrono::Duration::days(40)).is_none());
        let expired = certificate_alert("t", &path, now + chrono::Duration::days(11)).unwrap();
        assert_eq!(expired.severity, Severity::Error);
        assert!(certificate_alert("t", &dir.path().join("none"), now).is_none());
    }
}
