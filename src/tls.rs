//! TLS for the console and the device HTTPS listener: a configured certificate or one
//! generated on first start, replaceable while serving. Private keys are written 0600 and
//! never logged.

use crate::crypto::ecdsa::der;
use chrono::{DateTime, SecondsFormat, Utc};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub const CERT_FILE: &str = "console.crt";
pub const KEY_FILE: &str = "console.key";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no usable {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("TLS configuration refused: {0}")]
    Config(String),
}

/// Where the certificate in use came from, for the first log lines and `doctor`.
pub struct TlsMaterial {
    pub config: Arc<ServerConfig>,
    /// The certificate every listener built from `config` presents; replaceable while serving.
    pub live: Arc<LiveCert>,
    pub cert_path: PathBuf,
    pub generated: bool,
}

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Loads the configured pair, or the generated one in `DIR/tls/`, generating it if absent.
pub fn load_or_generate(
    data_dir: &Path,
    configured: Option<(&Path, &Path)>,
    public_host: Option<&str>,
) -> Result<TlsMaterial, TlsError> {
    let (cert_path, key_path, generated) = match configured {
        Some((c, k)) => (c.to_path_buf(), k.to_path_buf(), false),
        None => {
            let dir = data_dir.join("tls");
            let c = dir.join(CERT_FILE);
            let k = dir.join(KEY_FILE);
            if !c.exists() || !k.exists() {
                generate(&dir, &c, &k, public_host)?;
            }
            (c, k, true)
        }
    };
    if recover_staged(&cert_path, &key_path)? {
        tracing::warn!(cert = %cert_path.display(), "finished a certificate replacement that a stop interrupted");
    }
    let live = Arc::new(LiveCert::load(&cert_path, &key_path)?);
    let config = server_config(live.clone())?;
    Ok(TlsMaterial {
        config,
        live,
        cert_path,
        generated,
    })
}

/// The file a replacement of `path` is written to before it is moved into place.
fn staged(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".next");
    path.with_file_name(name)
}

/// Moves a staged pair into place: the key (when still staged), then the chain.
fn roll_forward(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    use crate::crypto::keyfile::rename_synced;
    let (key_next, cert_next) = (staged(key_path), staged(cert_path));
    if key_next.exists() {
        rename_synced(&key_next, key_path).map_err(|source| TlsError::Write {
            path: key_path.to_path_buf(),
            source,
        })?;
    }
    rename_synced(&cert_next, cert_path).map_err(|source| TlsError::Write {
        path: cert_path.to_path_buf(),
        source,
    })
}

/// Finishes or drops a certificate replacement that a crash interrupted. A staged chain
/// means both files were complete: the replacement is finished. A staged key alone means
/// the chain was never written: it is dropped and the old pair stays. Returns whether a
/// replacement was finished.
pub fn recover_staged(cert_path: &Path, key_path: &Path) -> Result<bool, TlsError> {
    if staged(cert_path).exists() {
        roll_forward(cert_path, key_path)?;
        return Ok(true);
    }
    let key_next = staged(key_path);
    if key_next.exists() {
        std::fs::remove_file(&key_next).map_err(|source| TlsError::Write {
            path: key_next.clone(),
            source,
        })?;
    }
    Ok(false)
}

fn generate(
    dir: &Path,
    cert: &Path,
    key: &Path,
    public_host: Option<&str>,
) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let host = host_name();
    let mut names = vec![host.clone(), "localhost".to_string()];
    if let Some(h) = public_host {
        if !names.iter().any(|n| n == h) {
            names.insert(0, h.to_string());
        }
    }
    let mut params =
        CertificateParams::new(names.clone()).map_err(|e| TlsError::Generate(e.to_string()))?;
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names[0].clone());
    dn.push(DnType::OrganizationName, "satellite");
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    // Two years: long enough to forget, short enough that browsers still accept it.
    params.not_after = now + time::Duration::days(730);
    let key_pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let certificate = params
        .self_signed(&key_pair)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    crate::crypto::keyfile::write_secret(key, key_pair.serialize_pem().as_bytes()).map_err(
        |source| TlsError::Write {
            path: key.to_path_buf(),
            source,
        },
    )?;
    crate::crypto::keyfile::write_public(cert, certificate.pem().as_bytes()).map_err(|source| {
        TlsError::Write {
            path: cert.to_path_buf(),
            source,
        }
    })?;
    tracing::info!(cert = %cert.display(), names = ?names, "generated a self-signed certificate");
    Ok(())
}

/// TLS 1.2 and 1.3 only (all rustls supports), ring's modern suites, HTTP/2 offered. The
/// certificate comes from `live` at each handshake, so replacing it needs no restart.
pub fn server_config(live: Arc<LiveCert>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(live);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Largest certificate chain text accepted from an operator.
pub const MAX_CHAIN_PEM: usize = 48 * 1024;
/// Largest private key text accepted from an operator (an RSA-8192 key is about 6.5 KiB).
pub const MAX_KEY_PEM: usize = 16 * 1024;
/// More certificates than this in one chain is a pasting mistake.
pub const MAX_CHAIN_LEN: usize = 8;

/// Why an offered certificate and key were not installed; the text is shown as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CertRefused(pub String);

fn refused(text: impl Into<String>) -> CertRefused {
    CertRefused(text.into())
}

/// What an operator needs to recognise a certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertSummary {
    pub subject: String,
    pub common_name: Option<String>,
    pub issuer: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// SHA-256 of the leaf certificate's DER, colon-separated upper-case hex as browsers show it.
    pub fingerprint_sha256: String,
    /// Certificates in the chain, the leaf included.
    pub chain_length: usize,
}

impl CertSummary {
    /// Names the certificate is valid for, in the order SANs list them.
    pub fn names(&self) -> Vec<String> {
        self.dns_names
            .iter()
            .chain(self.ip_addresses.iter())
            .cloned()
            .collect()
    }
}

/// A certificate chain and its key that parsed, match and are valid now.
pub struct CertPair {
    key: Arc<CertifiedKey>,
    summary: CertSummary,
    chain_pem: String,
    key_pem: String,
}

impl CertPair {
    pub fn summary(&self) -> &CertSummary {
        &self.summary
    }

    /// Parses an operator's PEM texts and refuses anything that would not serve: no or
    /// unreadable certificate, no or unusable key, a key of another certificate, a chain out
    /// of order, a certificate not valid at `now`.
    pub fn parse(
        chain_pem: &str,
        key_pem: &str,
        now: DateTime<Utc>,
    ) -> Result<CertPair, CertRefused> {
        let chain_pem = chain_pem.trim();
        let key_pem = key_pem.trim();
        if chain_pem.is_empty() {
            return Err(refused(
                "paste the certificate chain (PEM, server certificate first)",
            ));
        }
        if key_pem.is_empty() {
            return Err(refused("paste the private key (PEM)"));
        }
        if chain_pem.len() > MAX_CHAIN_PEM {
            return Err(refused(format!(
                "the certificate chain is longer than {} KiB",
                MAX_CHAIN_PEM / 1024
            )));
        }
        if key_pem.len() > MAX_KEY_PEM {
            return Err(refused(format!(
                "the private key is longer than {} KiB",
                MAX_KEY_PEM / 1024
            )));
        }
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|_| refused("the certificate chain is not valid PEM"))?;
        if certs.is_empty() {
            return Err(refused(
                "no certificate found: the chain must hold -----BEGIN CERTIFICATE----- blocks",
            ));
        }
        if certs.len() > MAX_CHAIN_LEN {
            return Err(refused(format!(
                "the chain holds {} certificates; at most {MAX_CHAIN_LEN} are accepted",
                certs.len()
            )));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
            use rustls_pki_types::pem::Error as P;
            if key_pem.contains("ENCRYPTED") {
                refused("the private key is encrypted; remove its passphrase first (openssl pkey -in key.pem -out plain.pem)")
            } else if matches!(e, P::NoItemsFound) {
                refused("no private key found: the key must be a -----BEGIN PRIVATE KEY----- (or RSA / EC PRIVATE KEY) block")
            } else {
                refused("the private key is not valid PEM")
            }
        })?;
        let names = describe(&certs[0]).map_err(|e| {
            refused(format!(
                "the server certificate (the first in the chain) cannot be read: {e}"
            ))
        })?;
        for (i, pair) in certs.windows(2).enumerate() {
            let issuer = raw_names(&pair[0]).map(|n| n.0.to_vec());
            let next = raw_names(&pair[1]).map(|n| n.1.to_vec());
            match (issuer, next) {
                (Ok(a), Ok(b)) if a == b => {}
                (Ok(_), Ok(_)) => {
                    return Err(refused(format!(
                        "certificate {} of the chain did not issue certificate {}: put the server certificate first, then each issuer in turn",
                        i + 2,
                        i + 1
                    )))
                }
                _ => {
                    return Err(refused(format!(
                        "certificate {} of the chain cannot be read",
                        i + 2
                    )))
                }
            }
        }
        let provider = rustls::crypto::ring::default_provider();
        let signing = provider.key_provider.load_private_key(key).map_err(|e| {
            refused(format!(
                "the private key is not a usable RSA, ECDSA or Ed25519 key: {e}"
            ))
        })?;
        let certified = CertifiedKey::new(certs.clone(), signing);
        match certified.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(refused("the private key does not match the certificate"))
            }
            // rustls cannot compare this key type; the handshake will use it as offered.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(e) => {
                return Err(refused(format!(
                    "the server certificate cannot be used: {e}"
                )))
            }
        }
        if now < names.not_before {
            return Err(refused(format!(
                "the certificate is not valid before {}",
                rfc3339(names.not_before)
            )));
        }
        if now >= names.not_after {
            return Err(refused(format!(
                "the certificate expired at {}",
                rfc3339(names.not_after)
            )));
        }
        let summary = summarise(&certs, names);
        Ok(CertPair {
            key: Arc::new(certified),
            summary,
            chain_pem: format!("{chain_pem}\n"),
            key_pem: format!("{key_pem}\n"),
        })
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

struct Described {
    subject: String,
    common_name: Option<String>,
    issuer: String,
    dns: Vec<String>,
    ips: Vec<String>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
}

/// Whole encodings of the issuer and subject names of a certificate.
fn raw_names<'a>(
    cert: &'a CertificateDer<'_>,
) -> Result<(&'a [u8], &'a [u8]), crate::crypto::CryptoError> {
    let mut outer = der::Reader::new(der::single(cert.as_ref(), der::SEQUENCE)?);
    let mut t = der::Reader::new(outer.expect(der::SEQUENCE)?);
    if t.peek_tag() == Some(0xa0) {
        t.read()?;
    }
    t.expect(der::INTEGER)?;
    t.expect(der::SEQUENCE)?;
    let issuer = t.read()?.raw;
    t.expect(der::SEQUENCE)?;
    let subject = t.read()?.raw;
    Ok((issuer, subject))
}

const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// A distinguished name as `CN=…, O=…`, attributes in encoding order; the CN on its own.
fn name_text(name: &[u8]) -> Result<(String, Option<String>), crate::crypto::CryptoError> {
    let mut rdns = der::Reader::new(der::single(name, der::SEQUENCE)?);
    let mut parts = Vec::new();
    let mut cn = None;
    while !rdns.is_empty() {
        let mut set = der::Reader::new(rdns.expect(der::SET)?);
        while !set.is_empty() {
            let mut atv = der::Reader::new(set.expect(der::SEQUENCE)?);
            let oid = atv.expect(der::OID)?;
            let value = String::from_utf8_lossy(atv.read()?.value).into_owned();
            let label = match oid {
                [0x55, 0x04, 0x03] => "CN".to_string(),
                [0x55, 0x04, 0x06] => "C".to_string(),
                [0x55, 0x04, 0x07] => "L".to_string(),
                [0x55, 0x04, 0x08] => "ST".to_string(),
                [0x55, 0x04, 0x0a] => "O".to_string(),
                [0x55, 0x04, 0x0b] => "OU".to_string(),
                other => der::oid_to_string(other),
            };
            if oid == COMMON_NAME && cn.is_none() {
                cn = Some(value.clone());
            }
            parts.push(format!("{label}={value}"));
        }
    }
    Ok((parts.join(", "), cn))
}

fn describe(cert: &CertificateDer<'_>) -> Result<Described, String> {
    let (issuer_raw, subject_raw) = raw_names(cert).map_err(|e| e.to_string())?;
    let (subject, common_name) = name_text(subject_raw).map_err(|e| e.to_string())?;
    let (issuer, _) = name_text(issuer_raw).map_err(|e| e.to_string())?;
    let names = crate::ops::doctor::cert_names(cert.as_ref()).map_err(|e| e.to_string())?;
    Ok(Described {
        subject,
        common_name,
        issuer,
        dns: names.dns,
        ips: names.ips.iter().map(|ip| ip.to_string()).collect(),
        not_before: names.not_before,
        not_after: names.not_after,
    })
}

/// SHA-256 of a DER certificate as `AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn summarise(certs: &[CertificateDer<'static>], d: Described) -> CertSummary {
    CertSummary {
        subject: d.subject,
        common_name: d.common_name,
        issuer: d.issuer,
        dns_names: d.dns,
        ip_addresses: d.ips,
        not_before: d.not_before,
        not_after: d.not_after,
        fingerprint_sha256: certs
            .first()
            .map(|c| fingerprint(c.as_ref()))
            .unwrap_or_default(),
        chain_length: certs.len(),
    }
}

struct Current {
    key: Arc<CertifiedKey>,
    summary: CertSummary,
}

/// The certificate the listeners present: read at every handshake, replaced in place.
pub struct LiveCert {
    current: RwLock<Current>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl std::fmt::Debug for LiveCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCert")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = match self.current.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(current.key.clone())
    }
}

impl LiveCert {
    /// Reads the pair the server starts with. Unlike an operator's upload, an expired or
    /// not yet valid certificate is served rather than refused (`doctor` reports it): a
    /// server that will not start helps nobody replace it.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<LiveCert, TlsError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
            .map_err(|_| TlsError::Pem {
                path: cert_path.to_path_buf(),
                what: "certificate",
            })?
            .collect::<Result<_, _>>()
            .map_err(|_| TlsError::Pem {
                path: cert_path.to_path_buf(),
                what: "certificate",
            })?;
        if certs.is_empty() {
            return Err(TlsError::Pem {
                path: cert_path.to_path_buf(),
                what: "certificate",
            });
        }
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|_| TlsError::Pem {
            path: key_path.to_path_buf(),
            what: "private key",
        })?;
        let provider = rustls::crypto::ring::default_provider();
        let certified = CertifiedKey::from_der(certs.clone(), key, &provider).map_err(|e| {
            TlsError::Config(format!(
                "{} and {}: {e}",
                cert_path.display(),
                key_path.display()
            ))
        })?;
        // rustls accepted the pair; a certificate this summary cannot read is still served.
        let described = describe(&certs[0]).unwrap_or_else(|e| {
            tracing::warn!(cert = %cert_path.display(), error = %e, "cannot summarise the certificate");
            Described {
                subject: format!("(unreadable: {e})"),
                common_name: None,
                issuer: String::new(),
                dns: Vec::new(),
                ips: Vec::new(),
                not_before: DateTime::<Utc>::MIN_UTC,
                not_after: DateTime::<Utc>::MIN_UTC,
            }
        });
        let summary = summarise(&certs, described);
        Ok(LiveCert {
            current: RwLock::new(Current {
                key: Arc::new(certified),
                summary,
            }),
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
        })
    }

    pub fn summary(&self) -> CertSummary {
        match self.current.read() {
            Ok(g) => g.summary.clone(),
            Err(poisoned) => poisoned.into_inner().summary.clone(),
        }
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// Writes the pair where the next start reads it, as a small journal: both files are
    /// first written complete beside their targets (`.next`, the key 0600), then moved into
    /// place, key first. A staged chain marks the replacement as decided, so a crash at
    /// any point leaves either the old pair or, after `recover_staged` at the next start,
    /// the new one; never a key of one and a chain of the other.
    pub fn write_files(&self, pair: &CertPair) -> Result<(), TlsError> {
        use crate::crypto::keyfile;
        let (key_next, cert_next) = (staged(&self.key_path), staged(&self.cert_path));
        let written = keyfile::write_secret(&key_next, pair.key_pem.as_bytes())
            .map_err(|source| TlsError::Write {
                path: key_next.clone(),
                source,
            })
            .and_then(|()| {
                keyfile::write_public(&cert_next, pair.chain_pem.as_bytes()).map_err(|source| {
                    TlsError::Write {
                        path: cert_next.clone(),
                        source,
                    }
                })
            });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&key_next);
            let _ = std::fs::remove_file(&cert_next);
            return Err(e);
        }
        roll_forward(&self.cert_path, &self.key_path)
    }

    /// Serves `pair` from the next handshake on; connections already open keep theirs.
    pub fn swap(&self, pair: CertPair) {
        let next = Current {
            key: pair.key,
            summary: pair.summary,
        };
        match self.current.write() {
            Ok(mut g) => *g = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn pair(cn: &str, days: i64) -> (String, String) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec![cn.to_string()]).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(2);
        params.not_after = now + time::Duration::days(days);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Old pair in place, new pair staged as a crash may leave it; returns the new PEMs.
    fn staged_dir(dir: &Path, stage_key: bool, stage_cert: bool) -> (String, String) {
        let (old_c, old_k) = pair("old.example.net", 90);
        let (new_c, new_k) = pair("new.example.net", 90);
        std::fs::write(dir.join("c.pem"), &old_c).unwrap();
        std::fs::write(dir.join("k.pem"), &old_k).unwrap();
        if stage_key {
            std::fs::write(dir.join("k.pem.next"), &new_k).unwrap();
        }
        if stage_cert {
            std::fs::write(dir.join("c.pem.next"), &new_c).unwrap();
        }
        (new_c, new_k)
    }

    fn served_cn(dir: &Path) -> Option<String> {
        LiveCert::load(&dir.join("c.pem"), &dir.join("k.pem"))
            .unwrap()
            .summary()
            .common_name
    }

    #[test]
    fn an_interrupted_replacement_is_finished_or_dropped_at_start() {
        // Both files staged, nothing moved yet: finished.
        let d = tempfile::tempdir().unwrap();
        staged_dir(d.path(), true, true);
        assert!(recover_staged(&d.path().join("c.pem"), &d.path().join("k.pem")).unwrap());
        assert_eq!(served_cn(d.path()).as_deref(), Some("new.example.net"));
        assert!(!d.path().join("c.pem.next").exists() && !d.path().join("k.pem.next").exists());

        // The key already moved, the chain still staged: finished, and the pair matches.
        let d = tempfile::tempdir().unwrap();
        let (_, new_k) = staged_dir(d.path(), false, true);
        std::fs::write(d.path().join("k.pem"), new_k).unwrap();
        assert!(recover_staged(&d.path().join("c.pem"), &d.path().join("k.pem")).unwrap());
        assert_eq!(served_cn(d.path()).as_deref(), Some("new.example.net"));

        // Only the key staged: the chain never got written, so the old pair stays.
        let d = tempfile::tempdir().unwrap();
        staged_dir(d.path(), true, false);
        assert!(!recover_staged(&d.path().join("c.pem"), &d.path().join("k.pem")).unwrap());
        assert_eq!(served_cn(d.path()).as_deref(), Some("old.example.net"));
        assert!(!d.path().join("k.pem.next").exists());

        // Nothing staged: nothing to do.
        assert!(!recover_staged(&d.path().join("c.pem"), &d.path().join("k.pem")).unwrap());
    }

    #[test]
    fn a_matching_pair_is_summarised() {
        let (c, k) = pair("sat.example.net", 90);
        let p = CertPair::parse(&c, &k, Utc::now()).unwrap();
        let s = p.summary();
        assert_eq!(s.common_name.as_deref(), Some("sat.example.net"));
        assert_eq!(s.subject, "CN=sat.example.net");
        assert_eq!(s.issuer, "CN=sat.example.net");
        assert_eq!(s.dns_names, vec!["sat.example.net".to_string()]);
        assert_eq!(s.fingerprint_sha256.len(), 32 * 3 - 1);
        assert_eq!(s.chain_length, 1);
    }

    #[test]
    fn mismatched_expired_and_garbage_are_refused_with_reasons() {
        let (c1, _) = pair("a.example.net", 90);
        let (_, k2) = pair("b.example.net", 90);
        let e = CertPair::parse(&c1, &k2, Utc::now()).err().unwrap();
        assert_eq!(e.0, "the private key does not match the certificate");

        let (c, k) = pair("old.example.net", 30);
        let e = CertPair::parse(&c, &k, Utc::now() + Duration::days(31))
            .err()
            .unwrap();
        assert!(e.0.contains("expired"), "{e}");

        let e = CertPair::parse("hello", &k, Utc::now()).err().unwrap();
        assert!(e.0.contains("no certificate found"), "{e}");
        let e = CertPair::parse(&c, "hello", Utc::now()).err().unwrap();
        assert!(e.0.contains("no private key found"), "{e}");
        let broken = c.replace("MII", "!!!");
        assert!(CertPair::parse(&broken, &k, Utc::now()).is_err());
        let e = CertPair::parse(&"x".repeat(MAX_CHAIN_PEM + 1), &k, Utc::now())
            .err()
            .unwrap();
        assert!(e.0.contains("longer than"), "{e}");
    }

    #[test]
    fn a_chain_out_of_order_is_refused() {
        let (c1, k1) = pair("a.example.net", 90);
        let (c2, _) = pair("b.example.net", 90);
        let e = CertPair::parse(&format!("{c1}{c2}"), &k1, Utc::now())
            .err()
            .unwrap();
        assert!(e.0.contains("did not issue"), "{e}");
    }
}
