//! TLS for the console and the device HTTPS listener: a configured certificate or one
//! generated on first start. Private keys are written 0600 and never logged.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    let config = server_config(&cert_path, &key_path)?;
    Ok(TlsMaterial {
        config,
        cert_path,
        generated,
    })
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

/// TLS 1.2 and 1.3 only (all rustls supports), ring's modern suites, HTTP/2 offered.
pub fn server_config(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>, TlsError> {
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
