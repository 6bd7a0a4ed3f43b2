//! Synchronisation with upstream, both roles: enrollment, the satellite's request and
//! import, the authority's answer. Every import or answer is one transaction: a refused
//! file changes nothing.

use super::accounts::{account_named, va_named};
use super::{require, require_authority, Ctx};
use crate::auth::{random_token, token_digest};
use crate::config::ServerRole;
use crate::crypto::ed25519::SyncKeyPair;
use crate::domain::roles::{Permission, Principal};
use crate::error::{AppError, AppResult};
use crate::storage::licenses::{self as store_licenses, NewLicense};
use crate::storage::settings::{get_setting, put_setting};
use crate::storage::sync as store;
use crate::storage::{accounts, audit, is_unique_violation};
use crate::sync::archive::{self, Body, FileKind, Header, Limits, SyncFile};
use crate::sync::model::{Ack, Change, InstanceRecord, PoolLine, SatelliteInfo, Usage, VaPool};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;
use std::io::Write;
use std::path::Path;

pub const KEY_FILE: &str = "sync.key";

mod keys {
    pub const URL: &str = "upstream.url";
    pub const AUTHORITY_KEY: &str = "upstream.authority_key";
    pub const TOKEN: &str = "upstream.enrollment_token";
    pub const SATELLITE_ID: &str = "upstream.satellite_id";
    pub const CA_PEM: &str = "upstream.ca_pem";
    pub const REQUEST_SEQ: &str = "sync.request_sequence";
    pub const IMPORTED_SEQ: &str = "sync.last_imported_response";
    pub const LAST_SUCCESS: &str = "sync.last_success_at";
    pub const LAST_FAILURE: &str = "sync.last_failure_at";
    pub const LAST_FAILURE_REASON: &str = "sync.last_failure";
    pub const LAST_EXPORT: &str = "sync.last_export_at";
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn refuse(e: impl std::fmt::Display) -> AppError {
    AppError::Invalid(format!("sync file refused: {e}"))
}

/// This data dir's signing key for sync files (created 0600 on first use).
pub fn key_pair(data_dir: &Path) -> AppResult<SyncKeyPair> {
    SyncKeyPair::load_or_create(&data_dir.join(KEY_FILE))
        .map_err(|e| AppError::Internal(format!("sync key: {e}")))
}

/// The authority's id as it appears in manifests: derived from its public key.
pub fn authority_id(public_key_b64: &str) -> String {
    format!("authority-{}", &token_digest(public_key_b64)[..16])
}

fn setting(c: &Connection, k: &str) -> AppResult<Option<String>> {
    Ok(get_setting(c, k)?)
}

fn setting_i64(c: &Connection, k: &str) -> AppResult<i64> {
    Ok(setting(c, k)?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

// ---------------------------------------------------------------- authority

pub struct Enrollment {
    pub satellite_id: String,
    pub token: String,
    pub virtual_accounts: Vec<String>,
}

/// Registers a satellite for an account and returns its one-time enrollment token.
pub async fn enroll_create(
    ctx: &Ctx,
    who: &Principal,
    account: &str,
    name: &str,
    vas: Vec<String>,
) -> AppResult<Enrollment> {
    // The role first: whoever may not enroll learns nothing about this server's role.
    require(who, Permission::Administer, None)?;
    require_authority(ctx, "enrolling satellites")?;
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 128 {
        return Err(AppError::Invalid(
            "satellite name must be 1 to 128 characters".into(),
        ));
    }
    let satellite_id = format!(
        "sat-{}",
        hex::encode(
            crate::auth::random_bytes::<8>().map_err(|e| AppError::Internal(e.to_string()))?
        )
    );
    let secret = random_token(32).map_err(|e| AppError::Internal(e.to_string()))?;
    let token = format!("{satellite_id}.{secret}");
    let now = ctx.clock.now();
    let (account, actor) = (account.to_string(), who.name.clone());
    let (sid, tok) = (satellite_id.clone(), token.clone());
    let served = ctx
        .store
        .write(move |c| {
            let acc = account_named(c, &account)?;
            let targets = if vas.is_empty() {
                accounts::list_vas(c, Some(acc.id))?
                    .into_iter()
                    .filter(|v| store::served_by(c, v.id).ok().flatten().is_none())
                    .collect::<Vec<_>>()
            } else {
                vas.iter().map(|v| va_named(c, &account, v)).collect::<AppResult<Vec<_>>>()?
            };
            if targets.is_empty() {
                return Err(AppError::Conflict(format!(
                    "every virtual account of {account} is already served by a satellite; name one with --va"
                )));
            }
            let id = store::insert_satellite(c, &sid, &name, acc.id, &token_digest(&tok), now)?;
            for v in &targets {
                if !store::serve_va(c, id, v.id)? {
                    return Err(AppError::Conflict(format!(
                        "virtual account {} is already served by another satellite: a virtual account is served by one satellite at a time",
                        v.name
                    )));
                }
            }
            let names: Vec<String> = targets.iter().map(|v| v.name.clone()).collect();
            audit::record(c, now, &actor, "satellite.enroll", &sid, &format!("name={name} account={account} vas={}", names.join(",")))?;
            Ok(names)
        })
        .await?;
    Ok(Enrollment {
        satellite_id,
        token,
        virtual_accounts: served,
    })
}

/// Answers a satellite's request file with a response file, in one transaction.
pub async fn answer(ctx: &Ctx, data_dir: &Path, request: Vec<u8>) -> AppResult<Vec<u8>> {
    require_authority(ctx, "answering sync requests")?;
    let keys = key_pair(data_dir)?;
    let me = authority_id(&keys.public_key_b64());
    let now = ctx.clock.now();
    ctx.store
        .write(move |c| answer_tx(c, &keys, &me, &request, now))
        .await
}

fn answer_tx(
    c: &Connection,
    keys: &SyncKeyPair,
    me: &str,
    request: &[u8],
    now: DateTime<Utc>,
) -> AppResult<Vec<u8>> {
    let claimed = archive::read_manifest_unverified(request).map_err(refuse)?;
    let sat = store::satellite(c, &claimed.sender)?.ok_or_else(|| {
        AppError::Unauthorized(format!(
            "sync file refused: unknown satellite {:?}",
            claimed.sender
        ))
    })?;
    // Before enrollment the key comes from the file itself and is proven by the token below.
    let key = sat
        .public_key
        .clone()
        .unwrap_or_else(|| claimed.signer_public_key.clone());
    let file = archive::read(request, &Limits::default(), &key)
        .map_err(|e| AppError::Unauthorized(format!("sync file refused: {e}")))?;
    let m = &file.manifest;
    if m.kind != FileKind::Request {
        return Err(refuse("this is a response file, not a request"));
    }
    if m.receiver != me {
        return Err(refuse(format!(
            "addressed to {:?}, not to this authority ({me})",
            m.receiver
        )));
    }
    let info: SatelliteInfo = archive::parse_member(&file, "satellite.json").map_err(refuse)?;
    if info.satellite_id != sat.satellite_id || info.public_key != key {
        return Err(refuse("satellite.json does not match the signed sender"));
    }
    if sat.public_key.is_none() {
        let presented = info.enrollment_token.as_deref().map(token_digest);
        if presented.is_none() || presented != sat.enrollment_token_hash {
            return Err(AppError::Unauthorized(
                "sync file refused: enrollment token missing, wrong or already used".into(),
            ));
        }
        store::enroll(c, sat.id, &key, now)?;
    }
    let seq = m.sequence as i64;
    let digest = archive::sha256_hex(request);
    if seq == sat.last_request_sequence {
        // The satellite did not get our answer (a cut transfer) and sends the very same
        // file again: answer with the same file, applying nothing twice.
        let (prev_digest, prev) = store::last_exchange(c, sat.id)?;
        if let (Some(d), Some(prev)) = (prev_digest, prev) {
            if d == digest {
                return Ok(prev);
            }
            return Err(refuse(format!(
                "request sequence {seq} was already answered for different content"
            )));
        }
    }
    if seq <= sat.last_request_sequence {
        return Err(refuse(format!(
            "request sequence {seq} is not newer than the last answered ({})",
            sat.last_request_sequence
        )));
    }
    let instances: Vec<InstanceRecord> =
        archive::parse_member(&file, "instances.json").map_err(refuse)?;
    let changes: Vec<Change> = archive::parse_member(&file, "changes.json").map_err(refuse)?;
    let served = store::served_vas(c, sat.id)?;
    store::clear_reported(c, sat.id)?;
    for inst in &instances {
        let Some(va) = accounts::find_va(c, &inst.smart_account, &inst.virtual_account)?
            .filter(|v| served.contains(&v.id))
        else {
            // Instances of a VA this satellite does not serve are ignored, never counted twice.
            continue;
        };
        let usage_json =
            serde_json::to_string(&inst.usage).map_err(|e| AppError::Internal(e.to_string()))?;
        store::insert_reported(
            c,
            sat.id,
            &store::Reported {
                udi_pid: &inst.udi_pid,
                udi_serial: &inst.udi_serial_number,
                va_id: va.id,
                hostname: inst.hostname.as_deref(),
                last_contact_at: &inst.last_contact_at,
                usage_json: &usage_json,
            },
        )?;
        for u in &inst.usage {
            store::add_reported_usage(c, va.id, &u.tag, u.count as i64)?;
        }
    }
    let mut pools = Vec::new();
    for va_id in &served {
        let Some(va) = accounts::va_by_id(c, *va_id)? else {
            continue;
        };
        let licenses = store_licenses::for_va(c, *va_id)?
            .into_iter()
            .map(|l| PoolLine {
                tag: l.tag,
                description: l.description,
                kind: l.kind,
                quantity: l.quantity.max(0) as u64,
                starts_at: l.starts_at.map(rfc3339),
                ends_at: l.ends_at.map(rfc3339),
            })
            .collect();
        pools.push(VaPool {
            smart_account: va.account,
            virtual_account: va.name,
            licenses,
        });
    }
    let acked = changes.iter().map(|ch| ch.id).max().unwrap_or(0);
    let ack = Ack {
        request_sequence: m.sequence,
        changes_acknowledged_through: acked,
        authority_time: rfc3339(now),
        instances_recorded: store::reported_count(c, sat.id)? as u64,
    };
    let response_seq = sat.last_response_sequence + 1;
    let summary = format!(
        "Sync response from {me} to satellite {} ({}), sequence {response_seq}, created {}.\n\
         It answers request {} and acknowledges {} change(s) through id {acked}.\n\
         The authority now holds {} product instance(s) for this satellite.\n\
         License pools for {} virtual account(s):\n{}",
        sat.satellite_id,
        sat.name,
        rfc3339(now),
        m.sequence,
        changes.len(),
        ack.instances_recorded,
        pools.len(),
        pools
            .iter()
            .map(|p| format!(
                "  {}/{}: {}\n",
                p.smart_account,
                p.virtual_account,
                if p.licenses.is_empty() {
                    "no licenses".to_string()
                } else {
                    p.licenses
                        .iter()
                        .map(|l| format!("{} x {}", l.quantity, l.tag))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))
            .collect::<String>()
    );
    let members = vec![
        ("pools.json", json_bytes(&pools)?),
        ("ack.json", json_bytes(&ack)?),
    ];
    let bytes = archive::write(
        Header {
            kind: FileKind::Response,
            sender: me.to_string(),
            receiver: sat.satellite_id.clone(),
            sequence: response_seq as u64,
            created_at: rfc3339(now),
        },
        &members,
        &summary,
        keys,
    )
    .map_err(|e| AppError::Internal(format!("writing the response: {e}")))?;
    store::record_answer(c, sat.id, seq, &digest, response_seq, &bytes, now)?;
    audit::record(
        c,
        now,
        &format!("satellite:{}", sat.satellite_id),
        "sync.answer",
        &sat.name,
        &format!(
            "request={seq} response={response_seq} instances={} changes={}",
            instances.len(),
            changes.len()
        ),
    )?;
    Ok(bytes)
}

fn json_bytes<T: serde::Serialize>(v: &T) -> AppResult<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| AppError::Internal(e.to_string()))
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SatelliteView {
    pub satellite: store::SatelliteRow,
    pub account: String,
    pub virtual_accounts: Vec<String>,
    pub instances_reported: i64,
}

pub async fn satellites(ctx: &Ctx, who: &Principal) -> AppResult<Vec<SatelliteView>> {
    require_authority(ctx, "listing satellites")?;
    require(who, Permission::Read, None)?;
    ctx.store
        .read(|c| {
            let mut out = Vec::new();
            for s in store::satellites(c)? {
                let account = accounts::account_by_id(c, s.account_id)?
                    .map(|a| a.name)
                    .unwrap_or_default();
                let mut vas = Vec::new();
                for id in store::served_vas(c, s.id)? {
                    if let Some(v) = accounts::va_by_id(c, id)? {
                        vas.push(v.name);
                    }
                }
                let n = store::reported_count(c, s.id)?;
                out.push(SatelliteView {
                    satellite: s,
                    account,
                    virtual_accounts: vas,
                    instances_reported: n,
                });
            }
            Ok::<_, AppError>(out)
        })
        .await
}

// ---------------------------------------------------------------- satellite

pub struct UpstreamSpec {
    pub url: String,
    /// Required the first time; omitted later to move an enrolled satellite to a new URL.
    pub enrollment_token: Option<String>,
    pub authority_key_pem: String,
    pub ca_pem: Option<String>,
}

/// Records where and whom to sync with; the authority's key is pinned from here on.
pub async fn upstream_set(ctx: &Ctx, who: &Principal, spec: UpstreamSpec) -> AppResult<String> {
    if ctx.role != ServerRole::Satellite {
        return Err(AppError::Conflict(
            "upstream is set on a satellite, not on an authority".into(),
        ));
    }
    require(who, Permission::Administer, None)?;
    let url =
        url::Url::parse(spec.url.trim()).map_err(|e| AppError::Invalid(format!("--url: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(AppError::Invalid(
            "--url must be an https:// (or http://) URL".into(),
        ));
    }
    let key = crate::crypto::ed25519::parse_public_key_pem(&spec.authority_key_pem)
        .map_err(|e| AppError::Invalid(format!("--authority-key: {e}")))?;
    let token = match &spec.enrollment_token {
        Some(t) => {
            let t = t.trim().to_string();
            let ok = t
                .split_once('.')
                .is_some_and(|(id, secret)| id.starts_with("sat-") && !secret.is_empty());
            if !ok {
                return Err(AppError::Invalid(
                    "--enrollment-token is not a satellite enrollment token".into(),
                ));
            }
            Some(t)
        }
        None => None,
    };
    let existing = ctx.store.read(|c| setting(c, keys::SATELLITE_ID)).await?;
    let satellite_id = match (&token, existing) {
        (Some(t), _) => t.split('.').next().unwrap_or_default().to_string(),
        (None, Some(id)) => id,
        (None, None) => {
            return Err(AppError::Invalid(
                "--enrollment-token is required until this satellite has enrolled".into(),
            ))
        }
    };
    let now = ctx.clock.now();
    let actor = who.name.clone();
    let sid = satellite_id.clone();
    let url_text = url.to_string();
    ctx.store
        .write(move |c| {
            put_setting(c, keys::URL, &url_text)?;
            put_setting(c, keys::AUTHORITY_KEY, &key)?;
            if let Some(t) = &token {
                put_setting(c, keys::TOKEN, t)?;
                // A new token means a new enrollment: sequences start over.
                for k in [keys::REQUEST_SEQ, keys::IMPORTED_SEQ] {
                    c.execute("DELETE FROM settings WHERE key = ?1", [k])?;
                }
            }
            put_setting(c, keys::SATELLITE_ID, &sid)?;
            match &spec.ca_pem {
                Some(p) => put_setting(c, keys::CA_PEM, p)?,
                None => {
                    c.execute("DELETE FROM settings WHERE key = ?1", [keys::CA_PEM])?;
                }
            }
            audit::record(
                c,
                now,
                &actor,
                "upstream.set",
                &url_text,
                &format!("satellite_id={sid}"),
            )?;
            Ok::<_, AppError>(())
        })
        .await?;
    Ok(satellite_id)
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SyncStatus {
    pub configured: bool,
    pub url: Option<String>,
    pub satellite_id: Option<String>,
    pub enrolled: bool,
    pub request_sequence: i64,
    pub last_imported_response: i64,
    pub last_success_at: Option<String>,
    pub last_failure_at: Option<String>,
    pub last_failure: Option<String>,
    pub last_export_at: Option<String>,
    pub pending_changes: i64,
    pub alerts: Vec<String>,
    /// The same alerts under stable keys, for delivery with repeat suppression.
    #[serde(skip)]
    pub alert_items: Vec<SyncAlert>,
}

#[derive(Clone, Debug)]
pub struct SyncAlert {
    pub key: &'static str,
    pub text: String,
    pub since: Option<DateTime<Utc>>,
}

/// Sync state for the CLI, API and console, with overdue alerts.
pub async fn status(ctx: &Ctx, schedule: Option<cron::Schedule>) -> AppResult<SyncStatus> {
    let now = ctx.clock.now();
    let second_last_run = schedule
        .as_ref()
        .and_then(|s| previous_runs(s, now).first().copied());
    ctx.store
        .read(move |c| {
            let get = |k| setting(c, k);
            let mut s = SyncStatus {
                configured: get(keys::URL)?.is_some(),
                url: get(keys::URL)?,
                satellite_id: get(keys::SATELLITE_ID)?,
                enrolled: get(keys::TOKEN)?.is_none() && get(keys::SATELLITE_ID)?.is_some(),
                request_sequence: setting_i64(c, keys::REQUEST_SEQ)?,
                last_imported_response: setting_i64(c, keys::IMPORTED_SEQ)?,
                last_success_at: get(keys::LAST_SUCCESS)?,
                last_failure_at: get(keys::LAST_FAILURE)?,
                last_failure: get(keys::LAST_FAILURE_REASON)?,
                last_export_at: get(keys::LAST_EXPORT)?,
                pending_changes: c.query_row("SELECT COUNT(*) FROM sync_changes", [], |r| r.get(0))?,
                alerts: Vec::new(),
                alert_items: Vec::new(),
            };
            let mut items = Vec::new();
            let last_ok = s
                .last_success_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            if s.configured {
                // Connected: two scheduled runs missed means the last success predates the run before last.
                if let Some(t) = second_last_run {
                    if last_ok.is_none_or(|ok| ok < t) && last_ok.is_some() {
                        items.push(SyncAlert {
                            key: "sync.missed-runs",
                            text: format!(
                                "two scheduled syncs missed: last success {}",
                                last_ok.map(rfc3339).unwrap_or_default()
                            ),
                            since: Some(t),
                        });
                    }
                }
                let overdue = match last_ok {
                    Some(t) => now - t > chrono::Duration::days(30),
                    None => true,
                };
                if overdue {
                    items.push(SyncAlert {
                        key: "sync.overdue",
                        text: match last_ok {
                            Some(t) => format!("no successful sync since {} (more than 30 days): export a request file or check the upstream link", rfc3339(t)),
                            None => "never synchronised with upstream: run `satellite sync now` or exchange files".into(),
                        },
                        since: last_ok.map(|t| t + chrono::Duration::days(30)),
                    });
                }
                if let (Some(f), Some(reason)) = (&s.last_failure_at, &s.last_failure) {
                    if s.last_success_at.as_deref() < Some(f.as_str()) {
                        items.push(SyncAlert {
                            key: "sync.failed",
                            text: format!("last sync failed at {f}: {reason}"),
                            since: DateTime::parse_from_rfc3339(f)
                                .ok()
                                .map(|t| t.with_timezone(&Utc)),
                        });
                    }
                }
            }
            s.alerts = items.iter().map(|a| a.text.clone()).collect();
            s.alert_items = items;
            Ok::<_, AppError>(s)
        })
        .await
}

/// The two most recent scheduled instants before `now`, oldest first.
pub fn previous_runs(schedule: &cron::Schedule, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut upcoming = schedule.after(&now);
    let interval = match (upcoming.next(), upcoming.next()) {
        (Some(a), Some(b)) => b - a,
        _ => return Vec::new(),
    };
    let start = now - interval * 3;
    let runs: Vec<DateTime<Utc>> = schedule.after(&start).take_while(|t| *t <= now).collect();
    runs.iter().rev().take(2).rev().copied().collect()
}

/// Builds the next request file (disconnected mode or online), advancing the sequence.
pub async fn export(ctx: &Ctx, data_dir: &Path) -> AppResult<Vec<u8>> {
    if ctx.role != ServerRole::Satellite {
        return Err(AppError::Conflict(
            "sync requests are exported by a satellite".into(),
        ));
    }
    let keys = key_pair(data_dir)?;
    let now = ctx.clock.now();
    ctx.store
        .write(move |c| {
            let authority_key = setting(c, keys::AUTHORITY_KEY)?
                .ok_or_else(|| AppError::Conflict("no upstream configured: run `satellite upstream set` first".into()))?;
            let satellite_id = setting(c, keys::SATELLITE_ID)?.unwrap_or_default();
            let sequence = setting_i64(c, keys::REQUEST_SEQ)? + 1;
            let info = SatelliteInfo {
                satellite_id: satellite_id.clone(),
                name: crate::tls::host_name(),
                public_key: keys.public_key_b64(),
                enrollment_token: setting(c, keys::TOKEN)?,
                last_imported_response: setting_i64(c, keys::IMPORTED_SEQ)?.max(0) as u64,
                software_version: env!("CARGO_PKG_VERSION").into(),
            };
            // One compact JSON record per line, deflated and hashed as rows stream out of
            // SQLite: a million instances never exist as Rust values at once, nor does the
            // uncompressed member, and the file stays greppable line by line.
            let created_at = rfc3339(now);
            let mut instances_json = archive::StreamedMember::new(archive::INSTANCES, &created_at)
                .map_err(|e| AppError::Internal(format!("writing the request: {e}")))?;
            let mut line: Vec<u8> = Vec::with_capacity(512);
            let mut count: usize = 0;
            let mut failure: Option<String> = None;
            let opened = instances_json.write_all(b"[\n");
            if let Err(e) = opened {
                failure = Some(e.to_string());
            }
            store::export_instances(c, |i| {
                if failure.is_some() {
                    return;
                }
                let rec = InstanceRecord {
                    udi_pid: i.udi_pid,
                    udi_serial_number: i.udi_serial,
                    hostname: i.hostname,
                    smart_account: i.account,
                    virtual_account: i.va,
                    registered_at: rfc3339(i.registered_at),
                    last_contact_at: rfc3339(i.last_contact_at),
                    usage: i.usage.into_iter().map(|(tag, n)| Usage { tag, count: n.max(0) as u64 }).collect(),
                };
                line.clear();
                if count > 0 {
                    line.extend_from_slice(b",\n");
                }
                if let Err(e) = serde_json::to_writer(&mut line, &rec) {
                    failure = Some(format!("encoding instances: {e}"));
                    return;
                }
                if let Err(e) = instances_json.write_all(&line) {
                    failure = Some(e.to_string());
                    return;
                }
                count += 1;
            })?;
            if failure.is_none() {
                if let Err(e) = instances_json.write_all(b"\n]\n") {
                    failure = Some(e.to_string());
                }
            }
            if let Some(e) = failure {
                return Err(AppError::Internal(format!("writing the request: {e}")));
            }
            let changes: Vec<Change> = store::changes(c)?
                .into_iter()
                .map(|ch| Change {
                    id: ch.id.max(0) as u64,
                    at: rfc3339(ch.at),
                    kind: ch.kind,
                    smart_account: ch.account,
                    virtual_account: ch.va,
                    udi_pid: ch.udi_pid,
                    udi_serial_number: ch.udi_serial,
                    detail: ch.detail,
                })
                .collect();
            let summary = format!(
                "Sync request from satellite {satellite_id} ({}) to {}, sequence {sequence}, created {}.\n\
                 It reports {} product instance(s) with their latest usage and {} change(s) since the last acknowledged request.\n\
                 {}",
                info.name,
                authority_id(&authority_key),
                rfc3339(now),
                count,
                changes.len(),
                if info.enrollment_token.is_some() { "It carries the one-time enrollment token of this satellite.\n" } else { "" }
            );
            let satellite_json = json_bytes(&info)?;
            let changes_json = json_bytes(&changes)?;
            let members = vec![
                ("satellite.json", Body::Bytes(&satellite_json)),
                (archive::INSTANCES, Body::Streamed(Box::new(instances_json))),
                ("changes.json", Body::Bytes(&changes_json)),
            ];
            let bytes = archive::write_members(
                Header {
                    kind: FileKind::Request,
                    sender: satellite_id,
                    receiver: authority_id(&authority_key),
                    sequence: sequence as u64,
                    created_at,
                },
                members,
                &summary,
                &keys,
            )
            .map_err(|e| AppError::Internal(format!("writing the request: {e}")))?;
            put_setting(c, keys::REQUEST_SEQ, &sequence.to_string())?;
            put_setting(c, keys::LAST_EXPORT, &rfc3339(now))?;
            Ok(bytes)
        })
        .await
}

pub struct ImportReport {
    pub sequence: u64,
    pub virtual_accounts: usize,
    pub licenses: usize,
    pub changes_acknowledged: usize,
}

/// Applies a response file: all of it in one transaction, or nothing with a one-line reason.
pub async fn import(ctx: &Ctx, who: &str, response: Vec<u8>) -> AppResult<ImportReport> {
    if ctx.role != ServerRole::Satellite {
        return Err(AppError::Conflict(
            "sync responses are imported by a satellite".into(),
        ));
    }
    let now = ctx.clock.now();
    let who = who.to_string();
    ctx.store
        .write(move |c| import_tx(c, &who, &response, now))
        .await
}

fn import_tx(
    c: &Connection,
    who: &str,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> AppResult<ImportReport> {
    let authority_key = setting(c, keys::AUTHORITY_KEY)?.ok_or_else(|| {
        AppError::Conflict("no upstream configured: run `satellite upstream set` first".into())
    })?;
    let me = setting(c, keys::SATELLITE_ID)?.unwrap_or_default();
    let file: SyncFile =
        archive::read(bytes, &Limits::default(), &authority_key).map_err(refuse)?;
    let m = &file.manifest;
    if m.kind != FileKind::Response {
        return Err(refuse("this is a request file, not a response"));
    }
    if m.receiver != me {
        return Err(refuse(format!(
            "addressed to satellite {:?}, not to this one ({me})",
            m.receiver
        )));
    }
    if m.sender != authority_id(&authority_key) {
        return Err(refuse(format!(
            "sent by {:?}, not by the pinned authority",
            m.sender
        )));
    }
    let last = setting_i64(c, keys::IMPORTED_SEQ)?;
    if (m.sequence as i64) <= last {
        return Err(refuse(format!(
            "response sequence {} is not newer than the last imported ({last})",
            m.sequence
        )));
    }
    let pools: Vec<VaPool> = archive::parse_member(&file, "pools.json").map_err(refuse)?;
    let ack: Ack = archive::parse_member(&file, "ack.json").map_err(refuse)?;
    let mut licenses = 0;
    for p in &pools {
        let acc = match accounts::find_account(c, &p.smart_account)? {
            Some(a) => a.id,
            None => accounts::insert_account(c, &p.smart_account, now).map_err(|e| {
                if is_unique_violation(&e) {
                    AppError::Conflict(e.to_string())
                } else {
                    e.into()
                }
            })?,
        };
        let va = match accounts::find_va(c, &p.smart_account, &p.virtual_account)? {
            Some(v) => v.id,
            None => accounts::insert_va(c, acc, &p.virtual_account, now)?,
        };
        let mut lines = Vec::new();
        for l in &p.licenses {
            let parse = |s: &Option<String>| -> AppResult<Option<DateTime<Utc>>> {
                s.as_deref()
                    .map(|t| {
                        DateTime::parse_from_rfc3339(t)
                            .map(|t| t.with_timezone(&Utc))
                            .map_err(|_| refuse(format!("bad date {t:?} in pools.json")))
                    })
                    .transpose()
            };
            if !matches!(l.kind.as_str(), "rtu" | "sia" | "tracking") || l.quantity == 0 {
                return Err(refuse(format!(
                    "pools.json: bad license line for {}",
                    l.tag
                )));
            }
            lines.push((l, parse(&l.starts_at)?, parse(&l.ends_at)?));
        }
        let new: Vec<NewLicense<'_>> = lines
            .iter()
            .map(|(l, s, e)| NewLicense {
                va_id: va,
                tag: &l.tag,
                description: &l.description,
                kind: &l.kind,
                quantity: l.quantity.min(i64::MAX as u64) as i64,
                starts_at: *s,
                ends_at: *e,
            })
            .collect();
        licenses += new.len();
        store_licenses::replace_pool(c, va, &new, now)?;
    }
    let acked = store::ack_changes(
        c,
        ack.changes_acknowledged_through.min(i64::MAX as u64) as i64,
    )?;
    put_setting(c, keys::IMPORTED_SEQ, &m.sequence.to_string())?;
    put_setting(c, keys::LAST_SUCCESS, &rfc3339(now))?;
    c.execute("DELETE FROM settings WHERE key = ?1", [keys::TOKEN])?;
    audit::record(
        c,
        now,
        who,
        "sync.import",
        &m.sender,
        &format!(
            "response={} pools={} licenses={licenses} acked={acked}",
            m.sequence,
            pools.len()
        ),
    )?;
    Ok(ImportReport {
        sequence: m.sequence,
        virtual_accounts: pools.len(),
        licenses,
        changes_acknowledged: acked,
    })
}

/// Records a failed sync for the status and alerts.
pub async fn record_failure(ctx: &Ctx, reason: &str) -> AppResult<()> {
    let now = ctx.clock.now();
    let reason: String = reason.chars().take(500).collect();
    ctx.store
        .write(move |c| {
            put_setting(c, keys::LAST_FAILURE, &rfc3339(now))?;
            put_setting(c, keys::LAST_FAILURE_REASON, &reason)?;
            Ok::<_, AppError>(())
        })
        .await
}

/// The upstream URL and optional pinned CA certificate for online sync.
pub async fn upstream(ctx: &Ctx) -> AppResult<(String, Option<String>)> {
    ctx.store
        .read(|c| {
            let url = setting(c, keys::URL)?.ok_or_else(|| {
                AppError::Conflict(
                    "no upstream configured: run `satellite upstream set` first".into(),
                )
            })?;
            Ok::<_, AppError>((url, setting(c, keys::CA_PEM)?))
        })
        .await
}
