//! ES256 (ECDSA P-256 with SHA-256, DER signatures, base64 on the wire) keys, plus the DER and PEM helpers shared by the crypto modules.
//! It must never accept a key that is not exactly an uncompressed P-256 point, nor let one error stand for another.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_ASN1_SIGNING,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};

/// Largest PEM text accepted for a public key: a P-256 key needs under 200 bytes,
/// so anything near this is not what we asked for.
pub const MAX_PUBLIC_PEM: usize = 4 * 1024;
/// Largest PEM text accepted for a private key.
pub const MAX_PRIVATE_PEM: usize = 16 * 1024;
/// A DER ECDSA P-256 signature is at most 72 bytes (96 base64 characters);
/// anything far longer is refused before spending time decoding it.
const MAX_SIG_B64: usize = 256;

/// Failures of parsing keys and checking signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("input is {size} bytes, more than the {limit} accepted")]
    TooLarge { size: usize, limit: usize },
    #[error("cannot read PEM: {0}")]
    Pem(String),
    #[error("malformed DER: {0}")]
    Der(&'static str),
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    #[error("private key rejected: {0}")]
    KeyRejected(String),
    #[error("signature is not valid base64")]
    BadBase64,
    #[error("signature does not verify")]
    BadSignature,
    #[error("the system random number generator failed")]
    Rng,
}

/// DER object identifiers (content bytes only) that the crypto modules recognise.
pub(crate) mod oid {
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub const SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    pub const SECP521R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    pub const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
}

/// A minimal strict DER reader: definite, minimally encoded lengths and
/// low-number tags only, which is all that keys and certificates use.
pub(crate) mod der {
    use super::CryptoError;

    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;

    /// One element: its tag, its content and its whole encoding.
    #[derive(Debug, Clone, Copy)]
    pub struct Tlv<'a> {
        pub tag: u8,
        pub value: &'a [u8],
        pub raw: &'a [u8],
    }

    #[derive(Debug, Clone)]
    pub struct Reader<'a> {
        data: &'a [u8],
    }

    impl<'a> Reader<'a> {
        pub fn new(data: &'a [u8]) -> Self {
            Self { data }
        }

        pub fn is_empty(&self) -> bool {
            self.data.is_empty()
        }

        pub fn peek_tag(&self) -> Option<u8> {
            self.data.first().copied()
        }

        pub fn read(&mut self) -> Result<Tlv<'a>, CryptoError> {
            let data = self.data;
            let (&tag, rest) = data.split_first().ok_or(CryptoError::Der("truncated"))?;
            if tag & 0x1f == 0x1f {
                return Err(CryptoError::Der("multi-byte tag"));
            }
            let (&first, rest) = rest.split_first().ok_or(CryptoError::Der("truncated"))?;
            let (len, rest) = if first < 0x80 {
                (usize::from(first), rest)
            } else {
                let n = usize::from(first & 0x7f);
                if n == 0 {
                    return Err(CryptoError::Der("indefinite length"));
                }
                if n > 4 || rest.len() < n {
                    return Err(CryptoError::Der("bad length"));
                }
                let (len_bytes, rest) = rest.split_at(n);
                if len_bytes[0] == 0 {
                    return Err(CryptoError::Der("non-minimal length"));
                }
                let len = len_bytes
                    .iter()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                if len < 0x80 {
                    return Err(CryptoError::Der("non-minimal length"));
                }
                (len, rest)
            };
            if rest.len() < len {
                return Err(CryptoError::Der("truncated"));
            }
            let (value, rest) = rest.split_at(len);
            let header_len = data.len() - rest.len() - len;
            self.data = rest;
            Ok(Tlv {
                tag,
                value,
                raw: &data[..header_len + len],
            })
        }

        /// Reads the next element and returns its content if it has `tag`.
        pub fn expect(&mut self, tag: u8) -> Result<&'a [u8], CryptoError> {
            let tlv = self.read()?;
            if tlv.tag != tag {
                return Err(CryptoError::Der("unexpected element"));
            }
            Ok(tlv.value)
        }

        /// Fails unless everything was consumed: trailing bytes hide ambiguity.
        pub fn finish(&self) -> Result<(), CryptoError> {
            if self.data.is_empty() {
                Ok(())
            } else {
                Err(CryptoError::Der("trailing data"))
            }
        }
    }

    /// Parses `input` as exactly one element with `tag` and returns its content.
    pub fn single(input: &[u8], tag: u8) -> Result<&[u8], CryptoError> {
        let mut r = Reader::new(input);
        let value = r.expect(tag)?;
        r.finish()?;
        Ok(value)
    }

    /// Renders an OID in dotted form, for error messages only.
    pub fn oid_to_string(content: &[u8]) -> String {
        let mut arcs: Vec<u128> = Vec::new();
        let mut acc: u128 = 0;
        for &b in content {
            acc = acc.saturating_mul(128) | u128::from(b & 0x7f);
            if b & 0x80 == 0 {
                arcs.push(acc);
                acc = 0;
            }
        }
        let mut parts: Vec<String> = Vec::with_capacity(arcs.len() + 1);
        if let Some((&first, rest)) = arcs.split_first() {
            let (a, b) = match first {
                0..=39 => (0, first),
                40..=79 => (1, first - 40),
                _ => (2, first - 80),
            };
            parts.push(a.to_string());
            parts.push(b.to_string());
            parts.extend(rest.iter().map(u128::to_string));
        }
        parts.join(".")
    }
}

/// Encodes DER as PEM with 64-column lines, as OpenSSL and most tools expect.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for (i, c) in b64.chars().enumerate() {
        if i > 0 && i % 64 == 0 {
            out.push('\n');
        }
        out.push(c);
    }
    out.push_str("\n-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Decodes the first PEM section of `T`'s kind, refusing oversized input first.
pub(crate) fn pem_decode<T: PemObject>(input: &str, limit: usize) -> Result<T, CryptoError> {
    if input.len() > limit {
        return Err(CryptoError::TooLarge {
            size: input.len(),
            limit,
        });
    }
    T::from_pem_slice(input.as_bytes()).map_err(|e| CryptoError::Pem(e.to_string()))
}

/// First 16 bytes of SHA-256 over the SPKI DER, in hex: short enough for a
/// header field, long enough that distinct keys never collide in practice.
pub(crate) fn spki_key_id(spki_der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
    hex::encode(&digest.as_ref()[..16])
}

/// Fixed DER prefix of a P-256 SubjectPublicKeyInfo, up to the point itself.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn p256_spki_der(point: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(P256_SPKI_PREFIX.len() + point.len());
    out.extend_from_slice(&P256_SPKI_PREFIX);
    out.extend_from_slice(point);
    out
}

/// Extracts the uncompressed point of a P-256 SubjectPublicKeyInfo, saying
/// precisely what is wrong with anything else.
fn parse_p256_spki(spki_der: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let spki = der::single(spki_der, der::SEQUENCE)?;
    let mut r = der::Reader::new(spki);
    let alg = r.expect(der::SEQUENCE)?;
    let bits = r.expect(der::BIT_STRING)?;
    r.finish()?;

    let mut a = der::Reader::new(alg);
    let alg_oid = a.expect(der::OID)?;
    match alg_oid {
        oid::EC_PUBLIC_KEY => {}
        oid::RSA_ENCRYPTION => {
            return Err(CryptoError::UnsupportedKey(
                "RSA key; an EC P-256 (prime256v1) key is required".into(),
            ))
        }
        oid::ED25519 => {
            return Err(CryptoError::UnsupportedKey(
                "Ed25519 key; an EC P-256 (prime256v1) key is required".into(),
            ))
        }
        other => {
            return Err(CryptoError::UnsupportedKey(format!(
                "key algorithm {}; an EC P-256 (prime256v1) key is required",
                der::oid_to_string(other)
            )))
        }
    }
    let params = a.read()?;
    a.finish()?;
    if params.tag != der::OID {
        return Err(CryptoError::UnsupportedKey(
            "EC key without a named curve (explicit parameters are not accepted)".into(),
        ));
    }
    match params.value {
        oid::PRIME256V1 => {}
        oid::SECP384R1 => {
            return Err(CryptoError::UnsupportedKey(
                "curve P-384 (secp384r1); only P-256 (prime256v1) is accepted".into(),
            ))
        }
        oid::SECP521R1 => {
            return Err(CryptoError::UnsupportedKey(
                "curve P-521 (secp521r1); only P-256 (prime256v1) is accepted".into(),
            ))
        }
        other => {
            return Err(CryptoError::UnsupportedKey(format!(
                "curve {}; only P-256 (prime256v1) is accepted",
                der::oid_to_string(other)
            )))
        }
    }

    let (&unused_bits, point) = bits
        .split_first()
        .ok_or(CryptoError::Der("empty bit string"))?;
    if unused_bits != 0 {
        return Err(CryptoError::Der(
            "public key bit string is not byte aligned",
        ));
    }
    match point.first() {
        Some(0x04) if point.len() == 65 => Ok(point.to_vec()),
        Some(0x02 | 0x03) => Err(CryptoError::UnsupportedKey(
            "compressed EC point; an uncompressed 65-byte point is required".into(),
        )),
        _ => Err(CryptoError::UnsupportedKey(format!(
            "EC point of {} bytes; an uncompressed 65-byte point is required",
            point.len()
        ))),
    }
}

/// A P-256 private key used to sign with ES256.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    spki_der: Vec<u8>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private half must never reach a log through Debug.
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn generate() -> Result<Self, CryptoError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| CryptoError::Rng)?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// Accepts a PKCS#8 "PRIVATE KEY" PEM (as written by this module, rcgen or OpenSSL).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, CryptoError> {
        let der: PrivatePkcs8KeyDer<'static> = pem_decode(pem, MAX_PRIVATE_PEM)?;
        Self::from_pkcs8_der(der.secret_pkcs8_der())
    }

    pub fn from_pkcs8_der(pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng)
            .map_err(|e| CryptoError::KeyRejected(e.to_string()))?;
        let spki_der = p256_spki_der(pair.public_key().as_ref());
        Ok(Self {
            pair,
            pkcs8: pkcs8.to_vec(),
            spki_der,
            rng,
        })
    }

    pub fn to_pkcs8_pem(&self) -> String {
        pem_encode("PRIVATE KEY", &self.pkcs8)
    }

    pub fn public_key_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki_der)
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The uncompressed 65-byte public point.
    pub fn public_point(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            point: self.public_point().to_vec(),
            spki_der: self.spki_der.clone(),
        }
    }

    /// Signs and returns the ASN.1 DER signature.
    pub fn sign_der(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let sig = self
            .pair
            .sign(&self.rng, msg)
            .map_err(|_| CryptoError::Rng)?;
        Ok(sig.as_ref().to_vec())
    }

    /// Signs and returns the DER signature in standard base64, the wire form.
    pub fn sign_b64(&self, msg: &[u8]) -> Result<String, CryptoError> {
        Ok(STANDARD.encode(self.sign_der(msg)?))
    }

    pub fn key_id(&self) -> String {
        spki_key_id(&self.spki_der)
    }
}

/// A P-256 public key that checks ES256 signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    point: Vec<u8>,
    spki_der: Vec<u8>,
}

impl VerifyingKey {
    /// Accepts only a "PUBLIC KEY" PEM holding an uncompressed P-256 key.
    /// Whether the point lies on the curve is checked by every verification.
    pub fn from_spki_pem(pem: &str) -> Result<Self, CryptoError> {
        let der: SubjectPublicKeyInfoDer<'static> = pem_decode(pem, MAX_PUBLIC_PEM)?;
        Self::from_spki_der(der.as_ref())
    }

    pub fn from_spki_der(spki_der: &[u8]) -> Result<Self, CryptoError> {
        if spki_der.len() > MAX_PUBLIC_PEM {
            return Err(CryptoError::TooLarge {
                size: spki_der.len(),
                limit: MAX_PUBLIC_PEM,
            });
        }
        let point = parse_p256_spki(spki_der)?;
        // Re-encoding from the point makes the key id independent of how the
        // sender happened to encode an equivalent key.
        let spki_der = p256_spki_der(&point);
        Ok(Self { point, spki_der })
    }

    pub fn verify_b64(&self, msg: &[u8], sig_b64: &str) -> Result<(), CryptoError> {
        if sig_b64.len() > MAX_SIG_B64 {
            return Err(CryptoError::BadSignature);
        }
        let sig = STANDARD
            .decode(sig_b64)
            .map_err(|_| CryptoError::BadBase64)?;
        self.verify_der(msg, &sig)
    }

    pub fn verify_der(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(msg, sig)
            .map_err(|_| CryptoError::BadSignature)
    }

    pub fn spki_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki_der)
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub fn public_point(&self) -> &[u8] {
        &self.point
    }

    pub fn key_id(&self) -> String {
        spki_key_id(&self.spki_der)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{KeyPair, SigningKey as _, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384};

    const OPENSSL_P256_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2dCNW1D8kc+aj6+1
slf0VGjY+WiXejLdHY5vWeuxCpWhRANCAATfdoXwGc/PX/lveg3fMIswl9K++2Tm
nfNFXD/pef+GmjDGtNELKIlPiS4Zvoov0KwrHPMgbreiH7qY5QGoVAo5
-----END PRIVATE KEY-----
";
    const OPENSSL_P256_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE33aF8BnPz1/5b3oN3zCLMJfSvvtk
5p3zRVw/6Xn/hpowxrTRCyiJT4kuGb6KL9CsKxzzIG63oh+6mOUBqFQKOQ==
-----END PUBLIC KEY-----
";
    /// `openssl dgst -sha256 -sign` over "satellite interop".
    const OPENSSL_SIG: &str = "MEQCIEBGimq7o/GoztPtm/1zl2JRWXfKj19dVRst2jLrRlLyAiBITHBYaiBQD2aKNSPJpsXZNl1tb6KvJSGMDhpP5qEB1Q==";
    /// sha256 of the SPKI DER, as printed by `openssl pkey -pubout -outform DER | sha256sum`.
    const OPENSSL_KEY_ID: &str = "7bf62db37c47f164e8b1efcdad02188a";
    const OPENSSL_COMPRESSED_PUB: &str = "-----BEGIN PUBLIC KEY-----
MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgAD33aF8BnPz1/5b3oN3zCLMJfSvvtk
5p3zRVw/6Xn/hpo=
-----END PUBLIC KEY-----
";
    const RSA_PUB: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC5qEkuKMhVJZis8E4AbZ1Y8Wwo
skCvObOziLjvrEs4+Kkgf8bH7mg+SRbyOGB2zPyLAErNbm/88eV1Qv/O0Gh4KmcR
3RDNBp/vMH7DxLSJlMO6/JR76zhTEVJ5o07zJ9bnjC1+KlN3+dqwL/yo4IvQxlwo
OZkR5/bWN8w5Xjt5vQIDAQAB
-----END PUBLIC KEY-----
";
    const ED25519_PUB: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA1iTXsVci21UwbkmGleW5ocjHJa/N2nQAVd1RRHZV5Gg=
-----END PUBLIC KEY-----
";

    fn unsupported(pem: &str) -> String {
        match VerifyingKey::from_spki_pem(pem) {
            Err(CryptoError::UnsupportedKey(m)) => m,
            other => panic!("expected UnsupportedKey, got {other:?}"),
        }
    }

    #[test]
    fn sign_verify_round_trip() {
        let key = SigningKey::generate().unwrap();
        let vk = VerifyingKey::from_spki_pem(&key.public_key_pem()).unwrap();
        let sig = key.sign_b64(b"payload").unwrap();
        vk.verify_b64(b"payload", &sig).unwrap();
        assert_eq!(vk.key_id(), key.key_id());
        assert_eq!(vk.key_id().len(), 32);
        assert_eq!(vk.spki_pem(), key.public_key_pem());
    }

    #[test]
    fn tampered_message_is_bad_signature() {
        let key = SigningKey::generate().unwrap();
        let sig = key.sign_b64(b"payload").unwrap();
        assert_eq!(
            key.verifying_key().verify_b64(b"payloae", &sig),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn wrong_key_is_bad_signature() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        let sig = a.sign_b64(b"m").unwrap();
        assert_eq!(
            b.verifying_key().verify_b64(b"m", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_ne!(a.key_id(), b.key_id());
    }

    #[test]
    fn bad_base64_is_distinct_from_bad_signature() {
        let key = SigningKey::generate().unwrap();
        let vk = key.verifying_key();
        assert_eq!(
            vk.verify_b64(b"m", "not base64!"),
            Err(CryptoError::BadBase64)
        );
        assert_eq!(vk.verify_b64(b"m", "AAAA"), Err(CryptoError::BadSignature));
        assert_eq!(vk.verify_b64(b"m", ""), Err(CryptoError::BadSignature));
        let huge = "A".repeat(10_000);
        assert_eq!(vk.verify_b64(b"m", &huge), Err(CryptoError::BadSignature));
    }

    #[test]
    fn pkcs8_pem_round_trip_keeps_the_key() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem()).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        let sig = again.sign_b64(b"x").unwrap();
        key.verifying_key().verify_b64(b"x", &sig).unwrap();
    }

    #[test]
    fn interoperates_with_rcgen_keys() {
        let rc = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        // rcgen signs, we verify.
        let vk = VerifyingKey::from_spki_pem(&rc.public_key_pem()).unwrap();
        let sig = STANDARD.encode(rc.sign(b"from rcgen").unwrap());
        vk.verify_b64(b"from rcgen", &sig).unwrap();
        // Same key loaded here, signing; the rcgen public key verifies it.
        let ours = SigningKey::from_pkcs8_pem(&rc.serialize_pem()).unwrap();
        assert_eq!(ours.key_id(), vk.key_id());
        let sig = ours.sign_b64(b"from us").unwrap();
        vk.verify_b64(b"from us", &sig).unwrap();
        // And our PEM loads into rcgen.
        let back = KeyPair::from_pem(&ours.to_pkcs8_pem()).unwrap();
        assert_eq!(back.public_key_pem(), ours.public_key_pem());
    }

    #[test]
    fn interoperates_with_openssl() {
        let vk = VerifyingKey::from_spki_pem(OPENSSL_P256_PUB).unwrap();
        vk.verify_b64(b"satellite interop", OPENSSL_SIG).unwrap();
        assert_eq!(vk.key_id(), OPENSSL_KEY_ID);
        let key = SigningKey::from_pkcs8_pem(OPENSSL_P256_KEY).unwrap();
        assert_eq!(key.key_id(), OPENSSL_KEY_ID);
        assert_eq!(key.public_key_pem(), OPENSSL_P256_PUB);
    }

    #[test]
    fn garbage_pem_is_a_pem_error() {
        assert!(matches!(
            VerifyingKey::from_spki_pem("hello"),
            Err(CryptoError::Pem(_))
        ));
        let bad_body = "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n";
        assert!(matches!(
            VerifyingKey::from_spki_pem(bad_body),
            Err(CryptoError::Pem(_))
        ));
        let no_end = "-----BEGIN PUBLIC KEY-----\nAAAA\n";
        assert!(matches!(
            VerifyingKey::from_spki_pem(no_end),
            Err(CryptoError::Pem(_))
        ));
        // A private key is not a public key.
        assert!(matches!(
            VerifyingKey::from_spki_pem(OPENSSL_P256_KEY),
            Err(CryptoError::Pem(_))
        ));
        assert!(matches!(
            SigningKey::from_pkcs8_pem("nonsense"),
            Err(CryptoError::Pem(_))
        ));
    }

    #[test]
    fn garbage_der_is_a_der_error() {
        let pem = pem_encode("PUBLIC KEY", b"\x30\x03\x02\x01");
        assert!(matches!(
            VerifyingKey::from_spki_pem(&pem),
            Err(CryptoError::Der(_))
        ));
        let mut der = SigningKey::generate().unwrap().spki_der().to_vec();
        der.push(0);
        assert_eq!(
            VerifyingKey::from_spki_der(&der),
            Err(CryptoError::Der("trailing data"))
        );
    }

    #[test]
    fn oversized_pem_is_refused_before_parsing() {
        let big = format!("{}{}", OPENSSL_P256_PUB, " ".repeat(MAX_PUBLIC_PEM));
        assert!(matches!(
            VerifyingKey::from_spki_pem(&big),
            Err(CryptoError::TooLarge { .. })
        ));
    }

    #[test]
    fn other_key_types_are_named_in_the_error() {
        assert!(unsupported(RSA_PUB).contains("RSA"));
        assert!(unsupported(ED25519_PUB).contains("Ed25519"));
        let p384 = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        assert!(unsupported(&p384.public_key_pem()).contains("P-384"));
        assert!(unsupported(OPENSSL_COMPRESSED_PUB).contains("compressed"));
    }

    #[test]
    fn private_key_of_wrong_curve_is_rejected() {
        let p384 = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        assert!(matches!(
            SigningKey::from_pkcs8_pem(&p384.serialize_pem()),
            Err(CryptoError::KeyRejected(_))
        ));
    }

    #[test]
    fn debug_does_not_print_the_private_key() {
        let key = SigningKey::generate().unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.key_id()));
        assert!(!shown.contains("pkcs8"));
    }

    #[test]
    fn der_reader_refuses_non_minimal_and_indefinite_lengths() {
        assert!(der::single(b"\x30\x81\x01\x00", der::SEQUENCE).is_err());
        assert!(der::single(b"\x30\x80\x00\x00", der::SEQUENCE).is_err());
        assert!(der::single(b"\x30\x82\x00\x01\x00", der::SEQUENCE).is_err());
        assert!(der::single(b"\x30\x05\x00", der::SEQUENCE).is_err());
        assert!(der::single(b"\x1f\x01\x00", 0x1f).is_err());
        assert_eq!(
            der::single(b"\x30\x01\x07", der::SEQUENCE).unwrap(),
            b"\x07"
        );
    }

    #[test]
    fn oid_rendering() {
        assert_eq!(der::oid_to_string(oid::PRIME256V1), "1.2.840.10045.3.1.7");
        assert_eq!(der::oid_to_string(oid::ED25519), "1.3.101.112");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_spki_bytes_never_panic(bytes in proptest::collection::vec(0u8..=255, 0..200)) {
            let _ = VerifyingKey::from_spki_der(&bytes);
            let _ = VerifyingKey::from_spki_pem(&pem_encode("PUBLIC KEY", &bytes));
        }
    }
}
