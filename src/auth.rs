//! Secrets: argon2 password hashing, random tokens and digests of bearer tokens.
//! Never logs or returns a secret except to the one caller that created it.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("system random source failed")]
    Random,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| SecretError::Random)?;
    Ok(b)
}

/// URL-safe random text with `bytes` bytes of entropy.
/// `bytes` random bytes as URL-safe base64 that never starts with `-` or `_`: such a
/// token would read as an option when pasted into a command line (ours or a router's).
/// Redrawing the rare such value costs well under a tenth of a bit of entropy.
pub fn random_token(bytes: usize) -> Result<String, SecretError> {
    let rng = SystemRandom::new();
    let mut b = vec![0u8; bytes];
    loop {
        rng.fill(&mut b).map_err(|_| SecretError::Random)?;
        let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b);
        if !t.starts_with(['-', '_']) {
            return Ok(t);
        }
    }
}

pub fn hash_password(password: &str) -> Result<String, SecretError> {
    let salt_bytes = random_bytes::<16>()?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| SecretError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Constant-time by construction of argon2's verifier; a malformed stored hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// Bearer tokens are long random values, so a plain SHA-256 is enough to store them.
pub fn token_digest(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

pub const MIN_PASSWORD_LEN: usize = 12;

pub fn check_password_strength(p: &str) -> Result<(), String> {
    if p.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_distinct_and_never_read_as_options() {
        assert_ne!(random_token(32).unwrap(), random_token(32).unwrap());
        // One in 32 raw values would start with '-' or '_'; none may.
        for _ in 0..2000 {
            let t = random_token(3).unwrap();
            assert!(t.starts_with(|c: char| c.is_ascii_alphanumeric()), "{t}");
        }
    }
}
