//! `satellite doctor`: checks a deployment (certificate names and expiry, clock, host name,
//! listeners, database, key modes, sync) and says what to fix. It only reads; it never repairs.

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::ecdsa::der;
use crate::crypto::CryptoError;
use crate::server::Surface;
use crate::storage::{migrate, settings, DB_FILE};
use crate::tls;
use chrono::{DateTime, Duration, NaiveDateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::fmt;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A certificate expiring sooner than this is a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub level: Level,
    pub name: String,
    pub detail: String,
    /// What the operator should do; set for every warn and fail.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &str, detail: impl Into<String>) -> Check {
        Check {
            level: Level::Ok,
            name: name.into(),
            detail: detail.into(),
            fix: None,
        }
    }
    fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            level: Level::Warn,
            name: name.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            level: Level::Fail,
            name: name.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.level.as_str(), self.name, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "; fix: {fix}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("no PEM certificate in it")]
    NoCertificate,
    #[error("cannot decode it: {0}")]
    Der(#[from] CryptoError),
    #[error("cannot decode a validity time")]
    Time,
}

/// What the doctor needs from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertNames {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl CertNames {
    pub fn all(&self) -> Vec<String> {
        self.dns
            .iter()
            .cloned()
            .chain(self.ips.iter().map(IpAddr::to_string))
            .collect()
    }

    /// True when a client connecting to `host` accepts these names (exact or one-label wildcard).
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return self.ips.contains(&ip);
        }
        self.dns.iter().any(|n| {
            let n = n.trim_end_matches('.').to_ascii_lowercase();
            match n.strip_prefix("*.") {
                Some(suffix) => host
                    .split_once('.')
                    .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
                None => n == host,
            }
        })
    }
}

const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
const DNS_NAME: u8 = 0x82;
const IP_ADDRESS: u8 = 0x87;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;

fn bad_ip() -> CertError {
    CertError::Der(CryptoError::Der("bad IP address in subjectAltName"))
}

fn cert_time(tlv: der::Tlv<'_>) -> Result<DateTime<Utc>, CertError> {
    let text = std::str::from_utf8(tlv.value).map_err(|_| CertError::Time)?;
    let full = match (tlv.tag, text.len()) {
        // RFC 5280: two-digit years 50..99 are 19xx, the rest 20xx.
        (0x17, 13) => {
            let yy: u32 = text
                .get(..2)
                .and_then(|s| s.parse().ok())
                .ok_or(CertError::Time)?;
            format!("{}{text}", if yy >= 50 { "19" } else { "20" })
        }
        (0x18, 15) => text.to_string(),
        _ => return Err(CertError::Time),
    };
    NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%SZ")
        .map(|t| t.and_utc())
        .map_err(|_| CertError::Time)
}

/// Reads the subjectAltName entries and validity of a DER certificate, whatever its key type.
pub fn cert_names(cert_der: &[u8]) -> Result<CertNames, CertError> {
    let mut outer = der::Reader::new(der::single(cert_der, der::SEQUENCE)?);
    let mut t = der::Reader::new(outer.expect(der::SEQUENCE)?);
    if t.peek_tag() == Some(0xa0) {
        t.read()?;
    }
    t.expect(der::INTEGER)?;
    t.expect(der::SEQUENCE)?;
    t.expect(der::SEQUENCE)?;
    let mut validity = der::Reader::new(t.expect(der::SEQUENCE)?);
    let not_before = cert_time(validity.read()?)?;
    let not_after = cert_time(validity.read()?)?;
    t.expect(der::SEQUENCE)?;
    t.expect(der::SEQUENCE)?;
    let mut names = CertNames {
        dns: Vec::new(),
        ips: Vec::new(),
        not_before,
        not_after,
    };
    while !t.is_empty() {
        let item = t.read()?;
        if item.tag != 0xa3 {
            continue;
        }
        let mut exts = der::Reader::new(der::single(item.value, der::SEQUENCE)?);
        while !exts.is_empty() {
            let mut ext = der::Reader::new(exts.expect(der::SEQUENCE)?);
            let oid = ext.expect(der::OID)?;
            if ext.peek_tag() == Some(BOOLEAN) {
                ext.read()?;
            }
            let value = ext.expect(OCTET_STRING)?;
            if oid != SUBJECT_ALT_NAME {
                continue;
            }
            let mut general = der::Reader::new(der::single(value, der::SEQUENCE)?);
            while !general.is_empty() {
                let g = general.read()?;
                match g.tag {
                    DNS_NAME => names
                        .dns
                        .push(String::from_utf8_lossy(g.value).into_owned()),
                    IP_ADDRESS => match g.value.len() {
                        4 => {
                            let b: [u8; 4] = g.value.try_into().map_err(|_| bad_ip())?;
                            names.ips.push(IpAddr::from(b));
                        }
                        16 => {
                            let b: [u8; 16] = g.value.try_into().map_err(|_| bad_ip())?;
                            names.ips.push(IpAddr::from(b));
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
    }
    Ok(names)
}

/// The first certificate of a PEM file.
pub fn read_pem_cert(path: &Path) -> Result<CertNames, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let der = CertificateDer::pem_slice_iter(&bytes)
        .next()
        .ok_or_else(|| CertError::NoCertificate.to_string())?
        .map_err(|_| CertError::NoCertificate.to_string())?;
    cert_names(der.as_ref()).map_err(|e| e.to_string())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Names and validity of the console/device certificate against the host routers use.
pub fn check_certificate(config: &Config, host: &str, now: DateTime<Utc>) -> Vec<Check> {
    let (path, configured) = match &config.tls_cert {
        Some(p) => (p.clone(), true),
        None => (config.data_dir.join("tls").join(tls::CERT_FILE), false),
    };
    let host_source = if config.public_host.is_some() {
        "public_host"
    } else {
        "this machine's host name"
    };
    if !configured && !path.exists() {
        return vec![Check::warn(
            "certificate",
            format!("{} does not exist yet", path.display()),
            format!("start `satellite serve` once: it generates one for {host}, localhost and 127.0.0.1"),
        )];
    }
    let names = match read_pem_cert(&path) {
        Ok(n) => n,
        Err(e) => {
            return vec![Check::fail(
                "certificate",
                format!("{}: {e}", path.display()),
                "point tls_cert at a PEM certificate chain (leaf first)",
            )]
        }
    };
    let regenerate = if configured {
        format!("set tls_cert/tls_key to a certificate whose subjectAltName includes {host}")
    } else {
        format!(
            "remove {} and {} and restart `satellite serve` to generate one for {host}, or set tls_cert/tls_key",
            path.display(),
            path.with_file_name(tls::KEY_FILE).display()
        )
    };
    let mut out = Vec::new();
    if names.covers(host) {
        out.push(Check::ok(
            "certificate",
            format!("{} names {} ({host_source})", path.display(), host),
        ));
    } else {
        let listed = names.all();
        out.push(Check::fail(
            "certificate",
            format!(
                "{} names {} but not {host} ({host_source}); routers and browsers reaching {host} will refuse it",
                path.display(),
                if listed.is_empty() {
                    "nothing (no subjectAltName)".to_string()
                } else {
                    listed.join(", ")
                }
            ),
            regenerate.clone(),
        ));
    }
    out.push(expiry_check(
        "certificate-expiry",
        &path,
        &names,
        now,
        &regenerate,
    ));
    out
}

fn expiry_check(
    name: &str,
    path: &Path,
    names: &CertNames,
    now: DateTime<Utc>,
    fix: &str,
) -> Check {
    let left = names.not_after - now;
    if names.not_before > now {
        Check::fail(
            name,
            format!(
                "{} is not valid before {}",
                path.display(),
                rfc3339(names.not_before)
            ),
            "check the clock, or use a certificate valid now",
        )
    } else if left <= Duration::zero() {
        Check::fail(
            name,
            format!("{} expired {}", path.display(), rfc3339(names.not_after)),
            fix,
        )
    } else if left < Duration::days(EXPIRY_WARNING_DAYS) {
        Check::warn(
            name,
            format!(
                "{} expires {} (in {} days)",
                path.display(),
                rfc3339(names.not_after),
                left.num_days()
            ),
            fix,
        )
    } else {
        Check::ok(
            name,
            format!(
                "valid until {} ({} days)",
                rfc3339(names.not_after),
                left.num_days()
            ),
        )
    }
}

/// The device CA issues router ID certificates; its expiry ends every registration.
pub fn check_device_ca(data_dir: &Path, now: DateTime<Utc>) -> Check {
    let path = data_dir
        .join("device-ca")
        .join(crate::crypto::device_ca::CA_CERT_FILE);
    if !path.exists() {
        return Check::ok(
            "device-ca",
            "not created yet (the first `serve` creates it)",
        );
    }
    match read_pem_cert(&path) {
        Ok(n) => expiry_check(
            "device-ca",
            &path,
            &n,
            now,
            "plan a new device CA: every router must register again afterwards",
        ),
        Err(e) => Check::fail(
            "device-ca",
            format!("{}: {e}", path.display()),
            "restore the device-ca directory from a backup (`satellite restore`)",
        ),
    }
}

pub fn check_clock(clock: &Clock) -> Check {
    if clock.is_shifted() {
        Check::warn(
            "clock",
            format!(
                "SATELLITE_CLOCK_OFFSET shifts the clock by {clock}: time rules run at {}",
                rfc3339(clock.now())
            ),
            "unset SATELLITE_CLOCK_OFFSET outside of expiry drills",
        )
    } else {
        Check::ok("clock", format!("{} (no offset)", rfc3339(clock.now())))
    }
}

pub fn check_resolves(host: &str) -> Check {
    match (host, 443).to_socket_addrs() {
        Ok(addrs) => {
            let mut list: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
            list.sort();
            list.dedup();
            if list.is_empty() {
                Check::warn(
                    "host-name",
                    format!("{host} resolves to no address"),
                    format!("add {host} to DNS (or /etc/hosts), or set public_host to a name that resolves"),
                )
            } else {
                Check::ok(
                    "host-name",
                    format!("{host} resolves to {}", list.join(", ")),
                )
            }
        }
        Err(e) => Check::warn(
            "host-name",
            format!("{host} does not resolve here: {e}"),
            format!(
                "add {host} to DNS (or /etc/hosts), or set public_host to a name that resolves"
            ),
        ),
    }
}

/// Tries to bind the address: free and in use (by a running satellite, usually) both pass.
pub fn check_listener(surface: Surface, addr: SocketAddr) -> Check {
    let name = format!("listener {}", surface.name());
    if addr.port() == 0 {
        return Check::ok(&name, format!("{addr}: a free port is picked at start"));
    }
    match TcpListener::bind(addr) {
        Ok(l) => {
            drop(l);
            Check::ok(&name, format!("{addr} free"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Check::ok(&name, format!("{addr} in use (a running satellite?)"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Check::fail(
            &name,
            format!("{addr}: permission denied"),
            format!(
                "ports below 1024 need root or CAP_NET_BIND_SERVICE (`setcap cap_net_bind_service=+ep` on the binary), or choose another with {}",
                surface.option()
            ),
        ),
        Err(e) => Check::fail(
            &name,
            format!("{addr}: {e}"),
            format!("choose another address with {}", surface.option()),
        ),
    }
}

/// Integrity and schema version of the database, read without creating anything.
pub fn check_database(data_dir: &Path) -> Check {
    let path = data_dir.join(DB_FILE);
    if !path.exists() {
        return Check::warn(
            "database",
            format!("{} does not exist", path.display()),
            "check --data / SATELLITE_DATA; any command initialises a new data dir",
        );
    }
    let probe = || -> rusqlite::Result<(i64, Vec<String>, Option<String>)> {
        let c = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(std::time::Duration::from_secs(10))?;
        c.execute_batch("PRAGMA query_only = ON;")?;
        let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let problems = super::backup::integrity_problems(&c)?;
        let role = if version > 0 {
            settings::get_setting(&c, "role").ok().flatten()
        } else {
            None
        };
        Ok((version, problems, role))
    };
    let supported = migrate::latest_version();
    match probe() {
        Err(e) => Check::fail(
            "database",
            format!("{}: {e}", path.display()),
            "restore the data dir from a backup (`satellite restore`) if the file is damaged",
        ),
        Ok((_, problems, _)) if !problems.is_empty() => Check::fail(
            "database",
            format!(
                "{} fails its integrity check: {}",
                path.display(),
                problems.join("; ")
            ),
            "stop the satellite and restore the data dir from a backup (`satellite restore`)",
        ),
        Ok((version, _, _)) if version > supported => Check::fail(
            "database",
            format!("schema version {version} is newer than this binary supports ({supported})"),
            "run the newer satellite binary that wrote it",
        ),
        Ok((version, _, role)) => {
            let state = if version == supported {
                "current".to_string()
            } else {
                format!("migrated to {supported} at next start")
            };
            Check::ok(
                "database",
                format!(
                    "integrity ok, schema version {version} ({state}), role {}",
                    role.as_deref().unwrap_or("satellite")
                ),
            )
        }
    }
}

fn key_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => key_files(&path, out),
            Ok(m) if m.is_file() && path.extension().is_some_and(|x| x == "key") => out.push(path),
            _ => {}
        }
    }
}

/// Private keys readable by group or others are refused at start; say so beforehand.
pub fn check_key_modes(config: &Config) -> Check {
    let mut keys = Vec::new();
    key_files(&config.data_dir, &mut keys);
    if let Some(k) = &config.tls_key {
        keys.push(k.clone());
    }
    let open: Vec<String> = keys
        .iter()
        .filter(|k| {
            std::fs::metadata(k)
                .map(|m| m.permissions().mode() & 0o077 != 0)
                .unwrap_or(false)
        })
        .map(|k| k.display().to_string())
        .collect();
    if open.is_empty() {
        Check::ok(
            "key-files",
            format!(
                "{} private key file(s), none readable by others",
                keys.len()
            ),
        )
    } else {
        Check::fail(
            "key-files",
            format!("readable by group or others: {}", open.join(", ")),
            format!("chmod 600 {}", open.join(" ")),
        )
    }
}

/// A satellite whose last successful sync is older than this is warned about.
pub const SYNC_WARN_DAYS: i64 = 30;
/// ...and older than this fails: its pool no longer reflects what was bought.
pub const SYNC_FAIL_DAYS: i64 = 90;
/// An authority warns about satellites silent for longer than this.
pub const SATELLITE_SILENT_DAYS: i64 = 30;

/// Setting keys written by `app::sync`; a test below writes through it and reads them here.
const UPSTREAM_URL: &str = "upstream.url";
const LAST_SUCCESS: &str = "sync.last_success_at";
const LAST_FAILURE: &str = "sync.last_failure_at";
const LAST_FAILURE_REASON: &str = "sync.last_failure";

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Sync health from the database: on a satellite the age of the last success and the last
/// failure's reason; on an authority the satellites it has not heard from.
pub fn check_sync(config: &Config, now: DateTime<Utc>) -> Check {
    let path = config.data_dir.join(DB_FILE);
    if !path.exists() {
        return Check::ok("sync", "no database yet");
    }
    let read = || -> rusqlite::Result<Check> {
        let c = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(std::time::Duration::from_secs(10))?;
        c.execute_batch("PRAGMA query_only = ON;")?;
        let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < 2 {
            // Before the sync schema nothing can have been configured.
            return Ok(Check::ok("sync", "not configured (no upstream set)"));
        }
        let stored = settings::get_setting(&c, "role")?;
        let authority = match config.role {
            Some(r) => r == crate::config::ServerRole::Authority,
            None => stored.as_deref() == Some("authority"),
        };
        if authority {
            authority_sync(&c, now)
        } else {
            satellite_sync(&c, now)
        }
    };
    read().unwrap_or_else(|e| {
        Check::fail(
            "sync",
            format!("cannot read the sync state from {}: {e}", path.display()),
            "see the database check above",
        )
    })
}

fn satellite_sync(c: &Connection, now: DateTime<Utc>) -> rusqlite::Result<Check> {
    let Some(url) = settings::get_setting(c, UPSTREAM_URL)? else {
        return Ok(Check::ok("sync", "not configured (no upstream set)"));
    };
    let success = settings::get_setting(c, LAST_SUCCESS)?;
    let success_at = success.as_deref().and_then(parse_time);
    let failure_at = settings::get_setting(c, LAST_FAILURE)?;
    let reason = settings::get_setting(c, LAST_FAILURE_REASON)?;
    // Only a failure after the last success says something about the link now.
    let failure = match (&failure_at, failure_at.as_deref().and_then(parse_time)) {
        (Some(text), Some(t)) if success_at.is_none_or(|s| t > s) => Some(format!(
            "; last failure {text}: {}",
            reason.as_deref().unwrap_or("no reason recorded")
        )),
        _ => None,
    }
    .unwrap_or_default();
    let fix = "run `satellite sync now` and read its error, or carry files: `satellite sync export`, `satellite sync answer` on the authority, `satellite sync import`";
    let Some(t) = success_at else {
        return Ok(Check::warn(
            "sync",
            format!("upstream {url}: never synchronised{failure}"),
            fix,
        ));
    };
    let age = (now - t).num_days();
    let detail = format!(
        "upstream {url}: last success {} ({age} days ago){failure}",
        rfc3339(t)
    );
    Ok(if age > SYNC_FAIL_DAYS {
        Check::fail(
            "sync",
            format!("{detail}; more than {SYNC_FAIL_DAYS} days"),
            fix,
        )
    } else if age > SYNC_WARN_DAYS {
        Check::warn(
            "sync",
            format!("{detail}; more than {SYNC_WARN_DAYS} days"),
            fix,
        )
    } else {
        Check::ok("sync", detail)
    })
}

fn authority_sync(c: &Connection, now: DateTime<Utc>) -> rusqlite::Result<Check> {
    let mut st = c.prepare(
        "SELECT satellite_id, name, last_sync_at, created_at FROM satellites ORDER BY satellite_id",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if rows.is_empty() {
        return Ok(Check::ok("sync", "authority: no satellites enrolled"));
    }
    let limit = now - Duration::days(SATELLITE_SILENT_DAYS);
    let silent: Vec<String> = rows
        .iter()
        .filter_map(|(id, name, last, created)| {
            // A satellite that never synced is judged from when it was registered.
            let seen = crate::storage::from_ts(last.unwrap_or(*created));
            (seen < limit).then(|| match last {
                Some(_) => format!("{id} ({name}, last sync {})", rfc3339(seen)),
                None => format!("{id} ({name}, never synced, enrolled {})", rfc3339(seen)),
            })
        })
        .collect();
    Ok(if silent.is_empty() {
        Check::ok(
            "sync",
            format!(
                "authority: {} satellite(s), all heard from within {SATELLITE_SILENT_DAYS} days",
                rows.len()
            ),
        )
    } else {
        Check::warn(
            "sync",
            format!(
                "authority: {} of {} satellite(s) not heard from in {SATELLITE_SILENT_DAYS} days: {}",
                silent.len(),
                rows.len(),
                silent.join(", ")
            ),
            "check each site's link to this authority (`satellite sync status` there), or answer its request files with `satellite sync answer`",
        )
    })
}

/// Every check, in the order they are printed.
pub fn run(config: &Config, clock: &Clock) -> Vec<Check> {
    let now = clock.now();
    let host = config.public_host.clone().unwrap_or_else(tls::host_name);
    let mut checks = check_certificate(config, &host, now);
    checks.push(check_device_ca(&config.data_dir, now));
    checks.push(check_clock(clock));
    checks.push(check_resolves(&host));
    for (surface, addr) in [
        (Surface::Console, config.console_addr),
        (Surface::DeviceHttp, config.device_http_addr),
        (Surface::DeviceHttps, config.device_https_addr),
    ] {
        checks.push(check_listener(surface, addr));
    }
    checks.push(check_database(&config.data_dir));
    checks.push(check_key_modes(config));
    checks.push(check_sync(config, now));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_for(names: &[&str]) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([10, 0, 0, 7].into()));
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_dns_and_ip_names_and_matches_hosts() {
        let n = cert_names(&cert_for(&["sat.example.com", "*.lab.example.com"])).unwrap();
        assert_eq!(n.dns, vec!["sat.example.com", "*.lab.example.com"]);
        assert_eq!(n.ips, vec![IpAddr::from([10, 0, 0, 7])]);
        assert!(n.covers("SAT.example.com."));
        assert!(n.covers("r1.lab.example.com"));
        assert!(!n.covers("lab.example.com"));
        assert!(!n.covers("a.r1.lab.example.com"));
        assert!(n.covers("10.0.0.7"));
        assert!(!n.covers("10.0.0.8"));
        assert!(!n.covers("wrong.example"));
        assert!(n.not_after > n.not_before);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(cert_names(b"").is_err());
        assert!(cert_names(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
    }

    #[test]
    fn mismatch_fails_with_a_fix_naming_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let tls_dir = dir.path().join("tls");
        std::fs::create_dir_all(&tls_dir).unwrap();
        let pem = crate::crypto::ecdsa::pem_encode("CERTIFICATE", &cert_for(&["right.example"]));
        std::fs::write(tls_dir.join(tls::CERT_FILE), pem).unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            public_host: Some("wrong.example".into()),
            ..Config::default()
        };
        let checks = check_certificate(&config, "wrong.example", Utc::now());
        assert_eq!(checks[0].level, Level::Fail);
        let line = checks[0].to_string();
        assert!(line.starts_with("fail certificate: "), "{line}");
        assert!(
            line.contains("right.example") && line.contains("fix:"),
            "{line}"
        );
        assert_eq!(checks[1].level, Level::Ok, "{}", checks[1]);
        let ok = check_certificate(&config, "right.example", Utc::now());
        assert_eq!(ok[0].level, Level::Ok);
        let late = check_certificate(
            &config,
            "right.example",
            Utc::now() + Duration::days(800_000),
        );
        assert_eq!(late[1].level, Level::Fail, "{}", late[1]);
    }

    #[test]
    fn busy_listener_passes_and_missing_database_warns() {
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = check_listener(Surface::Console, busy.local_addr().unwrap());
        assert_eq!(c.level, Level::Ok);
        assert!(c.detail.contains("in use"), "{c}");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check_database(dir.path()).level, Level::Warn);
        assert!(!dir.path().join(DB_FILE).exists(), "doctor creates nothing");
    }

    use crate::storage::StorageError;

    fn store_with(role: &str) -> (tempfile::TempDir, crate::app::Ctx) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::storage::Store::open(dir.path()).unwrap();
        let r = role.to_string();
        store
            .write_blocking(move |c| {
                settings::put_setting(c, "role", &r).map_err(StorageError::from)
            })
            .unwrap();
        let role = crate::config::ServerRole::parse(role).unwrap();
        let ctx = crate::app::Ctx {
            store,
            clock: Clock::system(),
            role,
        };
        (dir, ctx)
    }

    fn config_for(dir: &Path) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        }
    }

    #[test]
    fn satellite_sync_age_warns_then_fails_and_names_the_failure() {
        let (dir, ctx) = store_with("satellite");
        let config = config_for(dir.path());
        let now = Utc::now();
        let c = check_sync(&config, now);
        assert_eq!(c.level, Level::Ok, "{c}");
        assert!(c.detail.contains("not configured"), "{c}");
        ctx.store
            .write_blocking(|c| {
                settings::put_setting(c, UPSTREAM_URL, "https://auth:8443/")
                    .map_err(StorageError::from)
            })
            .unwrap();
        let c = check_sync(&config, now);
        assert_eq!(c.level, Level::Warn, "{c}");
        assert!(c.detail.contains("never"), "{c}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(crate::app::sync::record_failure(
            &ctx,
            "authority refused: bad token",
        ))
        .unwrap();
        let c = check_sync(&config, now);
        assert!(c.detail.contains("bad token"), "{c}");
        let put = |days: i64| {
            let t = rfc3339(now - Duration::days(days));
            ctx.store
                .write_blocking(move |c| {
                    settings::put_setting(c, LAST_SUCCESS, &t).map_err(StorageError::from)
                })
                .unwrap();
        };
        put(2);
        let c = check_sync(&config, now);
        assert_eq!(c.level, Level::Ok, "{c}");
        assert!(
            c.detail.contains("bad token"),
            "a later failure is news: {c}"
        );
        let earlier = rfc3339(now - Duration::days(5));
        ctx.store
            .write_blocking(move |c| {
                settings::put_setting(c, LAST_FAILURE, &earlier).map_err(StorageError::from)
            })
            .unwrap();
        let c = check_sync(&config, now);
        assert!(
            !c.detail.contains("bad token"),
            "an older failure is not news: {c}"
        );
        put(31);
        assert_eq!(check_sync(&config, now).level, Level::Warn);
        put(91);
        let c = check_sync(&config, now);
        assert_eq!(c.level, Level::Fail, "{c}");
        assert!(c.to_string().contains("fix: "), "{c}");
        ctx.store.close();
    }

    #[test]
    fn authority_warns_about_silent_satellites() {
        let (dir, ctx) = store_with("authority");
        let config = config_for(dir.path());
        let now = Utc::now();
        assert!(check_sync(&config, now).detail.contains("no satellites"));
        ctx.store
            .write_blocking(move |c| {
                let acc = crate::storage::accounts::insert_account(c, "Acme", now)?;
                let old = now - Duration::days(40);
                let a = crate::storage::sync::insert_satellite(c, "sat-a", "east", acc, "h1", old)?;
                crate::storage::sync::record_answer(
                    c,
                    a,
                    1,
                    "d",
                    1,
                    b"r",
                    now - Duration::days(1),
                )?;
                crate::storage::sync::insert_satellite(c, "sat-b", "west", acc, "h2", old)?;
                Ok::<_, StorageError>(())
            })
            .unwrap();
        let c = check_sync(&config, now);
        assert_eq!(c.level, Level::Warn, "{c}");
        assert!(
            c.detail.contains("sat-b") && !c.detail.contains("sat-a"),
            "{c}"
        );
        let c = check_sync(&config, now - Duration::days(20));
        assert_eq!(c.level, Level::Ok, "{c}");
        ctx.store.close();
    }

    #[test]
    fn shifted_clock_warns() {
        let c = check_clock(&Clock::with_offset(Duration::days(91)));
        assert_eq!(c.level, Level::Warn);
        assert_eq!(check_clock(&Clock::system()).level, Level::Ok);
    }
}
