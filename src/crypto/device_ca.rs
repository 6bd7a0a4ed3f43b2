//! The satellite's device CA: issues ID certificates carrying a device's SUDI, and holds the key that signs responses.
//! It must never issue for a key or SUDI it has not checked, nor silently replace a CA whose key has gone missing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rcgen::string::PrintableString;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, PublicKeyData, SerialNumber,
    SignatureAlgorithm, PKCS_ECDSA_P256_SHA256,
};
use ring::rand::{SecureRandom as _, SystemRandom};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

use super::ecdsa::{der, oid, pem_encode, CryptoError, SigningKey, VerifyingKey};
use super::keyfile;

pub const CA_KEY_FILE: &str = "device-ca.key";
pub const CA_CERT_FILE: &str = "device-ca.crt";
pub const RESPONSE_KEY_FILE: &str = "response-signing.key";
pub const RESPONSE_CERT_FILE: &str = "response-signing.crt";

/// Lifetime of an ID certificate; the caller decides when to renew.
pub const ID_CERT_VALIDITY_DAYS: i64 = 365;
const CA_VALIDITY_MONTHS: u32 = 20 * 12;
/// The CA and response certificates start slightly in the past so that a
/// device whose clock trails ours still accepts them right after creation.
const CA_BACKDATE_SECONDS: i64 = 3600;
/// X.520 bounds commonName and serialNumber to 64 characters; with the
/// `PID:` / ` SN:` decoration that leaves 56 for the two parts together.
const MAX_SUDI_LEN: usize = 56;
const MAX_CERT_FILE: u64 = 64 * 1024;
/// Last second representable in both X.509 and the certificate library.
const MAX_CERT_TIMESTAMP: i64 = 253_402_300_799;

const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const SERIAL_NUMBER_ARCS: [u64; 4] = [2, 5, 4, 5];

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },
    #[error(
        "{} is missing while {} exists; restore it from a backup, or remove both to start a new CA \
         (every device must then register again)",
        missing.display(),
        present.display()
    )]
    MissingKey { missing: PathBuf, present: PathBuf },
    #[error("device public key: {0}")]
    DeviceKey(CryptoError),
    #[error("invalid SUDI: {0}")]
    InvalidSudi(String),
    #[error("time {0} cannot be written in a certificate")]
    TimeOutOfRange(DateTime<Utc>),
    #[error("key generation failed: {0}")]
    KeyGeneration(CryptoError),
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// A freshly issued ID certificate and the facts the caller records about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub pem: String,
    pub serial_hex: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

/// The device CA and the response-signing key it certifies.
#[derive(Debug)]
pub struct DeviceCa {
    ca_key: SigningKey,
    ca_params: CertificateParams,
    ca_cert_pem: String,
    response_key: SigningKey,
    response_cert_pem: String,
}

// rcgen signs through these traits; implementing them on our own key type
// keeps a single P-256 implementation (ring) behind every signature we make.
impl PublicKeyData for SigningKey {
    fn der_bytes(&self) -> &[u8] {
        self.public_point()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for SigningKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.sign_der(msg)
            .map_err(|_| rcgen::Error::RingUnspecified)
    }
}

impl PublicKeyData for VerifyingKey {
    fn der_bytes(&self) -> &[u8] {
        self.public_point()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

impl DeviceCa {
    /// Loads the CA and response-signing key from `dir`, creating whatever is
    /// absent. `common_name` only matters when the CA certificate is created.
    pub fn load_or_create(
        dir: &Path,
        common_name: &str,
        now: DateTime<Utc>,
    ) -> Result<DeviceCa, CaError> {
        let now = whole_seconds(now)?;
        let ca_key_path = dir.join(CA_KEY_FILE);
        let ca_cert_path = dir.join(CA_CERT_FILE);
        let ca_key = load_or_create_key(&ca_key_path, &ca_cert_path)?;

        let (ca_params, ca_cert_der) = match read_cert(&ca_cert_path)? {
            Some(der) => (ca_params_from_cert(&der, &ca_key, &ca_cert_path)?, der),
            None => {
                let not_before = backdated(now)?;
                let not_after = now
                    .checked_add_months(Months::new(CA_VALIDITY_MONTHS))
                    .ok_or(CaError::TimeOutOfRange(now))?;
                let params = new_ca_params(common_name, not_before, not_after)?;
                let cert = params.self_signed(&ca_key)?;
                write_cert(&ca_cert_path, cert.der())?;
                (params, cert.der().to_vec())
            }
        };

        let resp_key_path = dir.join(RESPONSE_KEY_FILE);
        let resp_cert_path = dir.join(RESPONSE_CERT_FILE);
        let response_key = load_or_create_key(&resp_key_path, &resp_cert_path)?;
        let ca_verifier = ca_key.verifying_key();
        let response_cert_der = match read_cert(&resp_cert_path)? {
            Some(der) => {
                check_issued_cert(&der, &response_key, &ca_cert_der, &ca_verifier).map_err(
                    |reason| CaError::BadFile {
                        path: resp_cert_path.clone(),
                        reason,
                    },
                )?;
                der
            }
            None => {
                let ca_not_after = der_cert(&ca_cert_der)
                    .map_err(|e| bad_file(&ca_cert_path, e))?
                    .not_after;
                let der =
                    issue_response_cert(&ca_params, &ca_key, &response_key, now, ca_not_after)?;
                write_cert(&resp_cert_path, &der)?;
                der
            }
        };

        Ok(DeviceCa {
            ca_key,
            ca_params,
            ca_cert_pem: pem_encode("CERTIFICATE", &ca_cert_der),
            response_key,
            response_cert_pem: pem_encode("CERTIFICATE", &response_cert_der),
        })
    }

    /// Issues (or renews) a device's ID certificate for `device_public_key_pem`,
    /// valid for exactly 365 days from `now`.
    pub fn issue_id_cert(
        &self,
        udi_pid: &str,
        udi_serial: &str,
        device_public_key_pem: &str,
        now: DateTime<Utc>,
    ) -> Result<IssuedCert, CaError> {
        check_sudi(udi_pid, udi_serial)?;
        let device_key =
            VerifyingKey::from_spki_pem(device_public_key_pem).map_err(CaError::DeviceKey)?;
        let not_before = whole_seconds(now)?;
        let not_after = not_before
            .checked_add_signed(Duration::days(ID_CERT_VALIDITY_DAYS))
            .ok_or(CaError::TimeOutOfRange(now))?;

        let serial = random_serial()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{udi_pid}:{udi_serial}"));
        let sudi = PrintableString::try_from(format!("PID:{udi_pid} SN:{udi_serial}"))
            .map_err(|e| CaError::InvalidSudi(e.to_string()))?;
        dn.push(
            DnType::CustomDnType(SERIAL_NUMBER_ARCS.to_vec()),
            DnValue::PrintableString(sudi),
        );
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        set_validity(&mut params, not_before, not_after)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;

        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&device_key, &issuer)?;
        Ok(IssuedCert {
            pem: pem_encode("CERTIFICATE", cert.der()),
            serial_hex: hex::encode(serial),
            not_before,
            not_after,
        })
    }

    /// The chain a device needs to check responses: response-signing
    /// certificate first, then the CA certificate.
    pub fn ca_chain_pem(&self) -> Vec<String> {
        vec![self.response_cert_pem.clone(), self.ca_cert_pem.clone()]
    }

    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    pub fn response_signer(&self) -> &SigningKey {
        &self.response_key
    }

    pub fn response_key_id(&self) -> String {
        self.response_key.key_id()
    }
}

fn bad_file(path: &Path, reason: impl std::fmt::Display) -> CaError {
    CaError::BadFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Loads a private key, or creates one when neither it nor its certificate
/// exists. A certificate without its key means a lost key, which only an
/// operator can resolve; a key without its certificate is an interrupted
/// first start, and the certificate is simply made again.
fn load_or_create_key(key_path: &Path, cert_path: &Path) -> Result<SigningKey, CaError> {
    match keyfile::read_secret(key_path) {
        Ok(bytes) => {
            let text =
                String::from_utf8(bytes).map_err(|_| bad_file(key_path, "not a PEM file"))?;
            SigningKey::from_pkcs8_pem(&text).map_err(|e| bad_file(key_path, e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if cert_path.exists() {
                return Err(CaError::MissingKey {
                    missing: key_path.to_path_buf(),
                    present: cert_path.to_path_buf(),
                });
            }
            let key = SigningKey::generate().map_err(CaError::KeyGeneration)?;
            keyfile::write_secret(key_path, key.to_pkcs8_pem().as_bytes()).map_err(|source| {
                CaError::Io {
                    path: key_path.to_path_buf(),
                    source,
                }
            })?;
            Ok(key)
        }
        Err(source) => Err(CaError::Io {
            path: key_path.to_path_buf(),
            source,
        }),
    }
}

fn read_cert(path: &Path) -> Result<Option<Vec<u8>>, CaError> {
    let io_err = |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    if meta.len() > MAX_CERT_FILE {
        return Err(bad_file(path, "too large for a certificate"));
    }
    let bytes = fs::read(path).map_err(io_err)?;
    let der = CertificateDer::from_pem_slice(&bytes).map_err(|e| bad_file(path, e))?;
    Ok(Some(der.as_ref().to_vec()))
}

fn write_cert(path: &Path, der: &[u8]) -> Result<(), CaError> {
    keyfile::write_public(path, pem_encode("CERTIFICATE", der).as_bytes()).map_err(|source| {
        CaError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn new_ca_params(
    common_name: &str,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<CertificateParams, CaError> {
    let mut params = ca_issuer_params(common_name);
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    set_validity(&mut params, not_before, not_after)?;
    Ok(params)
}

/// The fields rcgen's issuer takes from the CA: name, key usages and key
/// identifier method. Built the same way at creation and on reload so that
/// every certificate names its issuer with the CA's exact subject bytes.
fn ca_issuer_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    // Path length 0: this CA only ever certifies end entities.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// Rebuilds the issuer parameters from a stored CA certificate after checking
/// that it belongs to the stored key.
fn ca_params_from_cert(
    cert_der: &[u8],
    key: &SigningKey,
    path: &Path,
) -> Result<CertificateParams, CaError> {
    let cert = der_cert(cert_der).map_err(|e| bad_file(path, e))?;
    if cert.spki != key.spki_der() {
        return Err(bad_file(
            path,
            format!("certificate does not match the key in {CA_KEY_FILE}"),
        ));
    }
    let attrs = name_attributes(cert.subject).map_err(|e| bad_file(path, e))?;
    let common_name = match attrs.as_slice() {
        [attr] if attr.oid == oid::COMMON_NAME && attr.tag == UTF8_STRING => attr.value.clone(),
        _ => {
            return Err(bad_file(
                path,
                "the CA subject must be a single UTF-8 common name",
            ))
        }
    };
    Ok(ca_issuer_params(&common_name))
}

fn issue_response_cert(
    ca_params: &CertificateParams,
    ca_key: &SigningKey,
    response_key: &SigningKey,
    now: DateTime<Utc>,
    ca_not_after: DateTime<Utc>,
) -> Result<Vec<u8>, CaError> {
    let ca_name = match ca_params.distinguished_name.get(&DnType::CommonName) {
        Some(DnValue::Utf8String(s)) => s.clone(),
        _ => String::from("device CA"),
    };
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{ca_name} response signing"));
    params.distinguished_name = dn;
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    set_validity(&mut params, backdated(now)?, ca_not_after)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let issuer = Issuer::from_params(ca_params, ca_key);
    let cert = params.signed_by(response_key, &issuer)?;
    Ok(cert.der().to_vec())
}

/// Checks that a stored certificate certifies `key` and was signed by the CA,
/// so a CA replaced without its response certificate is noticed.
fn check_issued_cert(
    cert_der: &[u8],
    key: &SigningKey,
    ca_cert_der: &[u8],
    ca: &VerifyingKey,
) -> Result<(), String> {
    let cert = der_cert(cert_der).map_err(|e| e.to_string())?;
    let ca_cert = der_cert(ca_cert_der).map_err(|e| e.to_string())?;
    if cert.spki != key.spki_der() {
        return Err(format!(
            "certificate does not match the key in {RESPONSE_KEY_FILE}"
        ));
    }
    if cert.issuer != ca_cert.subject || ca.verify_der(cert.tbs, cert.signature).is_err() {
        return Err(format!(
            "certificate was not issued by the CA in {CA_CERT_FILE}; remove it to issue a new one"
        ));
    }
    Ok(())
}

fn check_sudi(pid: &str, serial: &str) -> Result<(), CaError> {
    for (what, value) in [("PID", pid), ("serial number", serial)] {
        if value.is_empty() {
            return Err(CaError::InvalidSudi(format!("empty {what}")));
        }
        // Letters, digits and the punctuation seen in Cisco PIDs, all within
        // PrintableString; ':' and ' ' are excluded because they separate the
        // parts of the subject.
        if let Some(c) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-./+=".contains(*c)))
        {
            return Err(CaError::InvalidSudi(format!(
                "{what} contains {c:?}; only letters, digits and - . / + = are allowed"
            )));
        }
    }
    if pid.len() + serial.len() > MAX_SUDI_LEN {
        return Err(CaError::InvalidSudi(format!(
            "PID and serial number together exceed {MAX_SUDI_LEN} characters"
        )));
    }
    Ok(())
}

fn random_serial() -> Result<[u8; 16], CaError> {
    let mut serial = [0u8; 16];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| CaError::KeyGeneration(CryptoError::Rng))?;
    // A positive integer with a non-zero first byte encodes as exactly these
    // 16 bytes, so the recorded hex matches the certificate.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(serial)
}

fn whole_seconds(t: DateTime<Utc>) -> Result<DateTime<Utc>, CaError> {
    let secs = t.timestamp();
    if !(0..=MAX_CERT_TIMESTAMP).contains(&secs) {
        return Err(CaError::TimeOutOfRange(t));
    }
    DateTime::from_timestamp(secs, 0).ok_or(CaError::TimeOutOfRange(t))
}

fn backdated(now: DateTime<Utc>) -> Result<DateTime<Utc>, CaError> {
    whole_seconds(now - Duration::seconds(CA_BACKDATE_SECONDS))
}

fn set_validity(
    params: &mut CertificateParams,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<(), CaError> {
    // rcgen takes the `time` crate's type; building it from the epoch avoids
    // a second date library among our own dependencies.
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + std::time::Duration::from_secs(epoch_seconds(not_before)?);
    params.not_after = epoch + std::time::Duration::from_secs(epoch_seconds(not_after)?);
    Ok(())
}

fn epoch_seconds(t: DateTime<Utc>) -> Result<u64, CaError> {
    u64::try_from(whole_seconds(t)?.timestamp()).map_err(|_| CaError::TimeOutOfRange(t))
}

const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The parts of an X.509 certificate that checks of our own certificates need.
#[derive(Debug, Clone)]
pub struct DerCert<'a> {
    /// The whole TBSCertificate encoding: what the signature covers.
    pub tbs: &'a [u8],
    pub serial: &'a [u8],
    /// Whole encodings of the issuer and subject names.
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// Whole SubjectPublicKeyInfo encoding.
    pub spki: &'a [u8],
    /// Content of the Extensions sequence, when present.
    pub extensions: Option<&'a [u8]>,
    pub signature: &'a [u8],
}

pub fn der_cert(cert_der: &[u8]) -> Result<DerCert<'_>, CryptoError> {
    let body = der::single(cert_der, der::SEQUENCE)?;
    let mut r = der::Reader::new(body);
    let tbs = r.read()?;
    let sig_alg = r.expect(der::SEQUENCE)?;
    let sig_bits = r.expect(der::BIT_STRING)?;
    r.finish()?;
    if tbs.tag != der::SEQUENCE {
        return Err(CryptoError::Der("certificate body is not a sequence"));
    }
    let mut a = der::Reader::new(sig_alg);
    if a.expect(der::OID)? != ECDSA_WITH_SHA256 {
        return Err(CryptoError::UnsupportedKey(
            "certificate is not signed with ecdsa-with-SHA256".into(),
        ));
    }
    let signature = match sig_bits.split_first() {
        Some((0, sig)) => sig,
        _ => return Err(CryptoError::Der("signature bit string is not byte aligned")),
    };

    let mut t = der::Reader::new(tbs.value);
    if t.peek_tag() == Some(0xa0) {
        t.read()?;
    }
    let serial = t.expect(der::INTEGER)?;
    t.expect(der::SEQUENCE)?;
    let issuer = t.read()?;
    let validity = t.expect(der::SEQUENCE)?;
    let subject = t.read()?;
    let spki = t.read()?;
    let mut extensions = None;
    while !t.is_empty() {
        let item = t.read()?;
        if item.tag == 0xa3 {
            extensions = Some(der::single(item.value, der::SEQUENCE)?);
        }
    }
    if issuer.tag != der::SEQUENCE || subject.tag != der::SEQUENCE || spki.tag != der::SEQUENCE {
        return Err(CryptoError::Der("certificate fields out of order"));
    }
    let mut v = der::Reader::new(validity);
    let not_before = der_time(v.read()?)?;
    let not_after = der_time(v.read()?)?;
    v.finish()?;
    Ok(DerCert {
        tbs: tbs.raw,
        serial,
        issuer: issuer.raw,
        subject: subject.raw,
        not_before,
        not_after,
        spki: spki.raw,
        extensions,
        signature,
    })
}

fn der_time(tlv: der::Tlv<'_>) -> Result<DateTime<Utc>, CryptoError> {
    // Times are ASCII; checking that first makes every slice below land on a
    // character boundary.
    if !tlv.value.is_ascii() {
        return Err(CryptoError::Der("bad time"));
    }
    let text = std::str::from_utf8(tlv.value).map_err(|_| CryptoError::Der("bad time"))?;
    let full = match (tlv.tag, text.len()) {
        // RFC 5280: two-digit years 50..99 are 19xx, 00..49 are 20xx.
        (UTC_TIME, 13) => {
            let yy: u32 = text
                .get(..2)
                .and_then(|s| s.parse().ok())
                .ok_or(CryptoError::Der("bad time"))?;
            format!("{}{}", if yy >= 50 { "19" } else { "20" }, text)
        }
        (GENERALIZED_TIME, 15) => text.to_string(),
        _ => return Err(CryptoError::Der("bad time")),
    };
    let digits = full
        .strip_suffix('Z')
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(CryptoError::Der("bad time"))?;
    let num = |range: std::ops::Range<usize>| -> Result<u32, CryptoError> {
        digits
            .get(range)
            .and_then(|s| s.parse().ok())
            .ok_or(CryptoError::Der("bad time"))
    };
    let year = i32::try_from(num(0..4)?).map_err(|_| CryptoError::Der("bad time"))?;
    let date = NaiveDate::from_ymd_opt(year, num(4..6)?, num(6..8)?)
        .ok_or(CryptoError::Der("bad time"))?;
    let time = NaiveTime::from_hms_opt(num(8..10)?, num(10..12)?, num(12..14)?)
        .ok_or(CryptoError::Der("bad time"))?;
    Ok(NaiveDateTime::new(date, time).and_utc())
}

/// One attribute of a distinguished name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAttribute {
    pub oid: Vec<u8>,
    pub tag: u8,
    pub value: String,
}

/// Lists the attributes of a Name (whole encoding), refusing multi-valued RDNs.
pub fn name_attributes(name_der: &[u8]) -> Result<Vec<NameAttribute>, CryptoError> {
    let mut rdns = der::Reader::new(der::single(name_der, der::SEQUENCE)?);
    let mut out = Vec::new();
    while !rdns.is_empty() {
        let set = rdns.expect(der::SET)?;
        let atv = der::single(set, der::SEQUENCE)?;
        let mut r = der::Reader::new(atv);
        let attr_oid = r.expect(der::OID)?;
        let value = r.read()?;
        r.finish()?;
        if value.tag != UTF8_STRING && value.tag != PRINTABLE_STRING {
            return Err(CryptoError::Der(
                "name attribute is not a UTF-8 or printable string",
            ));
        }
        let text =
            std::str::from_utf8(value.value).map_err(|_| CryptoError::Der("name is not UTF-8"))?;
        out.push(NameAttribute {
            oid: attr_oid.to_vec(),
            tag: value.tag,
            value: text.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, 9, 26, 53).unwrap() + Duration::nanoseconds(589_793_238)
    }

    fn pem_der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Content of the extension with `ext_oid`, if the certificate has it.
    fn extension<'a>(cert: &DerCert<'a>, ext_oid: &[u8]) -> Option<&'a [u8]> {
        let mut exts = der::Reader::new(cert.extensions?);
        while !exts.is_empty() {
            let mut e = der::Reader::new(exts.expect(der::SEQUENCE).unwrap());
            let id = e.expect(der::OID).unwrap();
            let mut next = e.read().unwrap();
            if next.tag == 0x01 {
                next = e.read().unwrap();
            }
            if id == ext_oid {
                return Some(next.value);
            }
        }
        None
    }

    const SERIAL_NUMBER_OID: &[u8] = &[0x55, 0x04, 0x05];
    const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    const CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

    #[test]
    fn creates_ca_and_response_key_with_safe_modes() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DeviceCa::load_or_create(dir.path(), "Satellite Device CA", now()).unwrap();
        assert_eq!(mode(&dir.path().join(CA_KEY_FILE)), 0o600);
        assert_eq!(mode(&dir.path().join(RESPONSE_KEY_FILE)), 0o600);
        assert_eq!(mode(&dir.path().join(CA_CERT_FILE)), 0o644);
        assert_eq!(mode(&dir.path().join(RESPONSE_CERT_FILE)), 0o644);

        let ca_der = pem_der(ca.ca_cert_pem());
        let cert = der_cert(&ca_der).unwrap();
        assert_eq!(cert.issuer, cert.subject);
        let attrs = name_attributes(cert.subject).unwrap();
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].value, "Satellite Device CA");
        // 20 years, starting an hour early.
        assert_eq!(
            cert.not_before,
            whole_seconds(now()).unwrap() - Duration::hours(1)
        );
        assert_eq!(
            cert.not_after,
            Utc.with_ymd_and_hms(2046, 3, 14, 9, 26, 53).unwrap()
        );
        // Self-signed with its own key.
        let ca_key = VerifyingKey::from_spki_der(cert.spki).unwrap();
        ca_key.verify_der(cert.tbs, cert.signature).unwrap();
        // cA = TRUE, pathLen 0; keyCertSign set.
        let bc = extension(&cert, BASIC_CONSTRAINTS).unwrap();
        assert_eq!(bc, &[0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00]);
        let ku = der::single(extension(&cert, KEY_USAGE).unwrap(), der::BIT_STRING).unwrap();
        assert_ne!(ku[1] & 0x04, 0);
    }

    #[test]
    fn load_or_create_twice_gives_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let a = DeviceCa::load_or_create(dir.path(), "CA one", now()).unwrap();
        let later = now() + Duration::days(30);
        let b = DeviceCa::load_or_create(dir.path(), "another name", later).unwrap();
        assert_eq!(a.ca_chain_pem(), b.ca_chain_pem());
        assert_eq!(a.response_key_id(), b.response_key_id());
        assert_eq!(a.ca_key.key_id(), b.ca_key.key_id());
    }

    #[test]
    fn response_chain_verifies_against_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DeviceCa::load_or_create(dir.path(), "CA", now()).unwrap();
        let chain = ca.ca_chain_pem();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1], ca.ca_cert_pem());
        let resp_der = pem_der(&chain[0]);
        let ca_der = pem_der(&chain[1]);
        let resp = der_cert(&resp_der).unwrap();
        let ca_cert = der_cert(&ca_der).unwrap();
        assert_eq!(resp.issuer, ca_cert.subject);
        assert_eq!(resp.not_after, ca_cert.not_after);
        VerifyingKey::from_spki_der(ca_cert.spki)
            .unwrap()
            .verify_der(resp.tbs, resp.signature)
            .unwrap();
        // A response signed with the signer verifies with the certified key.
        let leaf = VerifyingKey::from_spki_der(resp.spki).unwrap();
        assert_eq!(leaf.key_id(), ca.response_key_id());
        let sig = ca
            .response_signer()
            .sign_b64(b"{\"status\":\"SUCCESS\"}")
            .unwrap();
        leaf.verify_b64(b"{\"status\":\"SUCCESS\"}", &sig).unwrap();
    }

    #[test]
    fn issued_id_cert_carries_sudi_key_and_one_year() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DeviceCa::load_or_create(dir.path(), "CA", now()).unwrap();
        let device = SigningKey::generate().unwrap();
        let issued = ca
            .issue_id_cert(
                "NCS-5501-SE",
                "FOC2231R0ZX",
                &device.public_key_pem(),
                now(),
            )
            .unwrap();
        assert_eq!(issued.not_before, whole_seconds(now()).unwrap());
        assert_eq!(issued.not_after - issued.not_before, Duration::days(365));
        assert_eq!(issued.serial_hex.len(), 32);

        let der = pem_der(&issued.pem);
        let cert = der_cert(&der).unwrap();
        assert_eq!(cert.not_before, issued.not_before);
        assert_eq!(cert.not_after, issued.not_after);
        assert_eq!(hex::encode(cert.serial), issued.serial_hex);
        assert_eq!(cert.spki, device.spki_der());
        let ca_der = pem_der(ca.ca_cert_pem());
        let ca_cert = der_cert(&ca_der).unwrap();
        assert_eq!(cert.issuer, ca_cert.subject);
        VerifyingKey::from_spki_der(ca_cert.spki)
            .unwrap()
            .verify_der(cert.tbs, cert.signature)
            .unwrap();

        let attrs = name_attributes(cert.subject).unwrap();
        let cn = attrs.iter().find(|a| a.oid == oid::COMMON_NAME).unwrap();
        assert_eq!(cn.value, "NCS-5501-SE:FOC2231R0ZX");
        let sn = attrs.iter().find(|a| a.oid == SERIAL_NUMBER_OID).unwrap();
        assert_eq!(sn.value, "PID:NCS-5501-SE SN:FOC2231R0ZX");
        assert_eq!(sn.tag, PRINTABLE_STRING);

        let eku = extension(&cert, EXT_KEY_USAGE).unwrap();
        assert_eq!(der::single(eku, der::SEQUENCE).unwrap()[2..], *CLIENT_AUTH);
    }

    #[test]
    fn issued_id_cert_passes_webpki_client_verification() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DeviceCa::load_or_create(dir.path(), "CA", now()).unwrap();
        let device = SigningKey::generate().unwrap();
        let issued = ca
            .issue_id_cert("ASR-9901", "FOC1234ABCD", &device.public_key_pem(), now())
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(pem_der(ca.ca_cert_pem())))
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let leaf = CertificateDer::from(pem_der(&issued.pem));
        let at = |t: DateTime<Utc>| {
            rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                u64::try_from(t.timestamp()).unwrap(),
            ))
        };
        verifier
            .verify_client_cert(&leaf, &[], at(now() + Duration::days(100)))
            .unwrap();
        assert!(verifier
            .verify_client_cert(&leaf, &[], at(now() + Duration::days(366)))
            .is_err());
    }

    #[test]
    fn renewal_and_reload_issue_under_the_same_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let first = DeviceCa::load_or_create(dir.path(), "CA", now()).unwrap();
        let device = SigningKey::generate().unwrap();
        let a = first
            .issue_id_cert("N540X-8Z16G", "FOC9", &device.public_key_pem(), now())
            .unwrap();
        drop(first);
        let reloaded = DeviceCa::load_or_create(dir.path(), "CA", now()).unwrap();
        let later = now() + Duration::days(180);
        let b = reloaded
            .issue_id_cert("N540X-8Z16G", "FOC9", &device.public_key_pem(), later)
            .unwrap();
        assert_ne!(a.serial_hex, b.serial_hex);
        assert_eq!(b.not_after - b.not_before, Duration::days(365));
        let (da, db) = (pem_der(&a.pem), pem_der(&b.pem));
        let (ca_cert, cb_cert) = (der_cert(&da).unwrap(), der_cert(&db).unwrap());
        assert_eq!(ca_cert.issuer, cb_cert.issuer);
        assert_eq!(ca_cert.subject, cb_cert.subject);
        // Authority key identifiers agree too.
        let aki = [0x55, 0x1d, 0x23];
        assert_eq!(extension(&ca_cert, &aki), extension(&cb_cert, &aki));
        assert!(extension(&ca_cert, &aki).is_some());
    }

    #[test]
    fn rejects_bad_device_keys_and_sudis() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DeviceCa::load_or_create(dir.path(), "CA", now()).unwrap();
        let key = SigningKey::generate().unwrap().public_key_pem();
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
            .unwrap()
            .public_key_pem();
        assert!(matches!(
            ca.issue_id_cert("PID", "SN", &p384, now()),
            Err(CaError::DeviceKey(CryptoError::UnsupportedKey(_)))
        ));
        assert!(matches!(
            ca.issue_id_cert("PID", "SN", "junk", now()),
            Err(CaError::DeviceKey(CryptoError::Pem(_)))
        ));
        for (pid, sn) in [
            ("", "SN"),
            ("PID", ""),
            ("P:ID", "SN"),
            ("PID", "S N"),
            ("PID", "SN\n"),
            ("PÏD", "SN"),
            (&"P".repeat(40)[..], &"S".repeat(17)[..]),
        ] {
            assert!(
                matches!(
                    ca.issue_id_cert(pid, sn, &key, now()),
                    Err(CaError::InvalidSudi(_))
                ),
                "{pid:?} {sn:?}"
            );
        }
        assert!(matches!(
            ca.issue_id_cert("PID", "SN", &key, Utc.timestamp_opt(-5, 0).unwrap()),
            Err(CaError::TimeOutOfRange(_))
        ));
    }

    #[test]
    fn refuses_readable_ca_key() {
        let dir = tempfile::tempdir().unwrap();
        DeviceCa::load_or_create(dir.path(), "CA", now()).unwrap();
        let key = dir.path().join(CA_KEY_FILE);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let err = DeviceCa::load_or_create(dir.path(), "CA", now()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn missing_ca_key_is_not_silently_replaced() {
        let dir = tempfile::tempdir().unwrap();
        DeviceCa::load_or_create(dir.path(), "CA", now()).unwrap();
        fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
        assert!(matches!(
            DeviceCa::load_or_create(dir.path(), "CA", now()),
            Err(CaError::MissingKey { .. })
        ));
    }

    #[test]
    fn missing_certificates_are_made_again_from_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let a = DeviceCa::load_or_create(dir.path(), "CA", now()).unwrap();
        fs::remove_file(dir.path().join(RESPONSE_CERT_FILE)).unwrap();
        let b = DeviceCa::load_or_create(dir.path(), "CA", now()).unwrap();
        assert_eq!(a.response_key_id(), b.response_key_id());
        assert_eq!(a.ca_cert_pem(), b.ca_cert_pem());
    }

    #[test]
    fn response_cert_from_another_ca_is_refused() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        DeviceCa::load_or_create(one.path(), "CA", now()).unwrap();
        DeviceCa::load_or_create(two.path(), "CA", now()).unwrap();
        for f in [RESPONSE_KEY_FILE, RESPONSE_CERT_FILE] {
            fs::copy(two.path().join(f), one.path().join(f)).unwrap();
        }
        fs::set_permissions(
            one.path().join(RESPONSE_KEY_FILE),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        match DeviceCa::load_or_create(one.path(), "CA", now()) {
            Err(CaError::BadFile { reason, .. }) => {
                assert!(reason.contains("not issued"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mismatched_ca_cert_is_refused() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        DeviceCa::load_or_create(one.path(), "CA", now()).unwrap();
        DeviceCa::load_or_create(two.path(), "CA", now()).unwrap();
        fs::copy(two.path().join(CA_CERT_FILE), one.path().join(CA_CERT_FILE)).unwrap();
        assert!(matches!(
            DeviceCa::load_or_create(one.path(), "CA", now()),
            Err(CaError::BadFile { .. })
        ));
    }

    #[test]
    fn der_time_handles_both_encodings() {
        let utc = der::Reader::new(b"\x17\x0d491231235959Z").read().unwrap();
        assert_eq!(
            der_time(utc).unwrap(),
            Utc.with_ymd_and_hms(2049, 12, 31, 23, 59, 59).unwrap()
        );
        let gen = der::Reader::new(b"\x18\x0f20500101000000Z").read().unwrap();
        assert_eq!(
            der_time(gen).unwrap(),
            Utc.with_ymd_and_hms(2050, 1, 1, 0, 0, 0).unwrap()
        );
        let bad = der::Reader::new(b"\x17\x0d491331235959Z").read().unwrap();
        assert!(der_time(bad).is_err());
        let odd = der::Reader::new("\x17\x0d\u{20ac}1231235959".as_bytes())
            .read()
            .unwrap();
        assert!(der_time(odd).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_certificate_bytes_never_panic(bytes in proptest::collection::vec(0u8..=255, 0..400)) {
            let _ = der_cert(&bytes);
            let _ = name_attributes(&bytes);
        }

        #[test]
        fn arbitrary_time_bytes_never_panic(tag in proptest::sample::select(vec![UTC_TIME, GENERALIZED_TIME]), value in proptest::collection::vec(0u8..=255, 13..=15)) {
            let mut encoded = vec![tag, u8::try_from(value.len()).unwrap()];
            encoded.extend_from_slice(&value);
            let _ = der_time(der::Reader::new(&encoded).read().unwrap());
        }

        #[test]
        fn mutated_certificates_never_panic(pos in 0usize..600, byte in 0u8..=255) {
            let key = SigningKey::generate().unwrap();
            let mut params = CertificateParams::default();
            params.is_ca = IsCa::ExplicitNoCa;
            let mut der = params.self_signed(&key).unwrap().der().to_vec();
            let at = pos % der.len();
            der[at] = byte;
            if let Ok(cert) = der_cert(&der) {
                let _ = name_attributes(cert.subject);
                let _ = name_attributes(cert.issuer);
            }
        }
    }
}
