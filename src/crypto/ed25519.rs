//! Ed25519 keys that sign and verify sync files, and the PEM form operators move between sites.
//! It must never accept a public key other than a raw 32-byte Ed25519 key, nor store a private key readable by others.

use std::io;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};
use rustls_pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};

use super::ecdsa::{
    der, oid, pem_decode, pem_encode, CryptoError, MAX_PRIVATE_PEM, MAX_PUBLIC_PEM,
};
use super::keyfile;

const PUBLIC_KEY_LEN: usize = 32;
const SIGNATURE_LEN: usize = 64;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), up to the key bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Failures of loading or creating a key file.
#[derive(Debug, thiserror::Error)]
pub enum SyncKeyError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {source}", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: CryptoError,
    },
}

/// The key a site signs its sync files with.
pub struct SyncKeyPair {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SyncKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the public half may ever be printed.
        f.debug_struct("SyncKeyPair")
            .field("public_key", &self.public_key_b64())
            .finish_non_exhaustive()
    }
}

impl SyncKeyPair {
    pub fn generate() -> Result<Self, CryptoError> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| CryptoError::Rng)?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// Accepts PKCS#8 v1 (OpenSSL's output) as well as v2 (ours).
    pub fn from_pkcs8_der(pkcs8: &[u8]) -> Result<Self, CryptoError> {
        // The "unchecked" variant only skips the public-key consistency check
        // that v1 documents cannot offer; v2 documents are still checked.
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| CryptoError::KeyRejected(e.to_string()))?;
        Ok(Self {
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, CryptoError> {
        let der: PrivatePkcs8KeyDer<'static> = pem_decode(pem, MAX_PRIVATE_PEM)?;
        Self::from_pkcs8_der(der.secret_pkcs8_der())
    }

    pub fn to_pkcs8_pem(&self) -> String {
        pem_encode("PRIVATE KEY", &self.pkcs8)
    }

    /// Loads the key at `path`, or creates it (mode 0600) when absent.
    pub fn load_or_create(path: &Path) -> Result<Self, SyncKeyError> {
        let io_err = |source| SyncKeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let key_err = |source| SyncKeyError::Key {
            path: path.to_path_buf(),
            source,
        };
        match keyfile::read_secret(path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| key_err(CryptoError::Pem("file is not text".into())))?;
                Self::from_pkcs8_pem(&text).map_err(key_err)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let pair = Self::generate().map_err(key_err)?;
                keyfile::write_secret(path, pair.to_pkcs8_pem().as_bytes()).map_err(io_err)?;
                Ok(pair)
            }
            Err(e) => Err(io_err(e)),
        }
    }

    pub fn public_key_bytes(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The raw 32-byte public key in standard base64: the pinned form.
    pub fn public_key_b64(&self) -> String {
        STANDARD.encode(self.public_key_bytes())
    }

    /// The public key as a SubjectPublicKeyInfo "PUBLIC KEY" PEM.
    pub fn public_key_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.public_key_bytes());
        pem_encode("PUBLIC KEY", &der)
    }

    pub fn sign_b64(&self, msg: &[u8]) -> String {
        STANDARD.encode(self.pair.sign(msg).as_ref())
    }
}

/// Checks an Ed25519 signature against a pinned base64 public key.
pub fn verify_b64(public_key_b64: &str, msg: &[u8], sig_b64: &str) -> Result<(), CryptoError> {
    let public = decode_public_key_b64(public_key_b64)?;
    // Both lengths are fixed, so a longer input cannot be a signature at all.
    if sig_b64.len() > SIGNATURE_LEN * 2 {
        return Err(CryptoError::BadSignature);
    }
    let sig = STANDARD
        .decode(sig_b64)
        .map_err(|_| CryptoError::BadBase64)?;
    if sig.len() != SIGNATURE_LEN {
        return Err(CryptoError::BadSignature);
    }
    UnparsedPublicKey::new(&ED25519, &public)
        .verify(msg, &sig)
        .map_err(|_| CryptoError::BadSignature)
}

fn decode_public_key_b64(public_key_b64: &str) -> Result<Vec<u8>, CryptoError> {
    let bad =
        || CryptoError::UnsupportedKey("Ed25519 public key must be 32 bytes in base64".into());
    if public_key_b64.len() > PUBLIC_KEY_LEN * 2 {
        return Err(bad());
    }
    let bytes = STANDARD.decode(public_key_b64.trim()).map_err(|_| bad())?;
    if bytes.len() != PUBLIC_KEY_LEN {
        return Err(bad());
    }
    Ok(bytes)
}

/// Reads an Ed25519 "PUBLIC KEY" PEM and returns the key in the pinned base64 form.
pub fn parse_public_key_pem(pem: &str) -> Result<String, CryptoError> {
    let spki: SubjectPublicKeyInfoDer<'static> = pem_decode(pem, MAX_PUBLIC_PEM)?;
    let body = der::single(spki.as_ref(), der::SEQUENCE)?;
    let mut r = der::Reader::new(body);
    let alg = r.expect(der::SEQUENCE)?;
    let bits = r.expect(der::BIT_STRING)?;
    r.finish()?;

    let mut a = der::Reader::new(alg);
    let alg_oid = a.expect(der::OID)?;
    if alg_oid != oid::ED25519 {
        let name = match alg_oid {
            oid::EC_PUBLIC_KEY => "an EC key".to_string(),
            oid::RSA_ENCRYPTION => "an RSA key".to_string(),
            other => format!("algorithm {}", der::oid_to_string(other)),
        };
        return Err(CryptoError::UnsupportedKey(format!(
            "{name}; an Ed25519 key is required"
        )));
    }
    // RFC 8410 says the parameters must be absent.
    if !a.is_empty() {
        return Err(CryptoError::Der("Ed25519 algorithm with parameters"));
    }
    match bits.split_first() {
        Some((0, key)) if key.len() == PUBLIC_KEY_LEN => Ok(STANDARD.encode(key)),
        Some((0, key)) => Err(CryptoError::UnsupportedKey(format!(
            "Ed25519 key of {} bytes; 32 are required",
            key.len()
        ))),
        _ => Err(CryptoError::Der(
            "public key bit string is not byte aligned",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Generated by `openssl genpkey -algorithm ED25519` (a PKCS#8 v1 document).
    const OPENSSL_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIO9rp9In0SYGJzE2bQafEXDBJxen+R315+dO6a7PH3rL
-----END PRIVATE KEY-----
";
    const OPENSSL_PUB: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA1iTXsVci21UwbkmGleW5ocjHJa/N2nQAVd1RRHZV5Gg=
-----END PUBLIC KEY-----
";
    /// `openssl pkeyutl -sign -rawin` over "satellite interop".
    const OPENSSL_SIG: &str =
        "jNZY1u2vPLjzx+bCHQh3lHVV55MSQCLABeATKODnKqt8YLdi6UQvBPTJSITMfOCMzw5QA+EBtK8j5nbx3qXaDw==";
    const P256_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE33aF8BnPz1/5b3oN3zCLMJfSvvtk
5p3zRVw/6Xn/hpowxrTRCyiJT4kuGb6KL9CsKxzzIG63oh+6mOUBqFQKOQ==
-----END PUBLIC KEY-----
";

    #[test]
    fn sign_verify_round_trip() {
        let kp = SyncKeyPair::generate().unwrap();
        let sig = kp.sign_b64(b"sync file");
        verify_b64(&kp.public_key_b64(), b"sync file", &sig).unwrap();
    }

    #[test]
    fn tampered_message_and_wrong_key_are_bad_signatures() {
        let a = SyncKeyPair::generate().unwrap();
        let b = SyncKeyPair::generate().unwrap();
        let sig = a.sign_b64(b"sync file");
        assert_eq!(
            verify_b64(&a.public_key_b64(), b"sync filE", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            verify_b64(&b.public_key_b64(), b"sync file", &sig),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn malformed_inputs_have_distinct_errors() {
        let kp = SyncKeyPair::generate().unwrap();
        let pk = kp.public_key_b64();
        assert_eq!(verify_b64(&pk, b"m", "%%%"), Err(CryptoError::BadBase64));
        assert_eq!(
            verify_b64(&pk, b"m", "AAAA"),
            Err(CryptoError::BadSignature)
        );
        assert!(matches!(
            verify_b64("AAAA", b"m", &kp.sign_b64(b"m")),
            Err(CryptoError::UnsupportedKey(_))
        ));
        assert!(matches!(
            verify_b64("not base64", b"m", &kp.sign_b64(b"m")),
            Err(CryptoError::UnsupportedKey(_))
        ));
    }

    #[test]
    fn pem_round_trip() {
        let kp = SyncKeyPair::generate().unwrap();
        assert_eq!(
            parse_public_key_pem(&kp.public_key_pem()).unwrap(),
            kp.public_key_b64()
        );
        let again = SyncKeyPair::from_pkcs8_pem(&kp.to_pkcs8_pem()).unwrap();
        assert_eq!(again.public_key_b64(), kp.public_key_b64());
    }

    #[test]
    fn interoperates_with_openssl() {
        let pk = parse_public_key_pem(OPENSSL_PUB).unwrap();
        verify_b64(&pk, b"satellite interop", OPENSSL_SIG).unwrap();
        let kp = SyncKeyPair::from_pkcs8_pem(OPENSSL_KEY).unwrap();
        assert_eq!(kp.public_key_b64(), pk);
        assert_eq!(kp.public_key_pem(), OPENSSL_PUB);
        // Ed25519 is deterministic: the same key signs the same bytes identically.
        assert_eq!(kp.sign_b64(b"satellite interop"), OPENSSL_SIG);
    }

    #[test]
    fn other_keys_in_pem_are_refused() {
        match parse_public_key_pem(P256_PUB) {
            Err(CryptoError::UnsupportedKey(m)) => assert!(m.contains("EC key"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_public_key_pem("garbage"),
            Err(CryptoError::Pem(_))
        ));
    }

    #[test]
    fn load_or_create_persists_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.key");
        let first = SyncKeyPair::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = SyncKeyPair::load_or_create(&path).unwrap();
        assert_eq!(first.public_key_b64(), second.public_key_b64());
    }

    #[test]
    fn load_or_create_refuses_readable_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.key");
        SyncKeyPair::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SyncKeyPair::load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn load_or_create_reports_a_corrupt_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.key");
        keyfile::write_secret(&path, b"not a key").unwrap();
        assert!(matches!(
            SyncKeyPair::load_or_create(&path),
            Err(SyncKeyError::Key { .. })
        ));
    }
}
