//! What the fuzz targets and the seed-corpus writer share: a fixed signing key and limits.
//! Test material only: the key below is public and must never sign anything real.

use satellite::crypto::ed25519::SyncKeyPair;
use satellite::sync::archive::Limits;

/// An Ed25519 key made for fuzzing. The seed corpus is signed with it and `sync_import`
/// pins its public half, so mutations of valid files reach the checks after the signature.
pub const FUZZ_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIBeefTg+gIgDH4e6zYKwKg9t1kSrnnsX+/7p0rHjp+vD
-----END PRIVATE KEY-----
";

/// The fixed key; `None` only if the constant above were damaged.
pub fn fuzz_key() -> Option<SyncKeyPair> {
    SyncKeyPair::from_pkcs8_pem(FUZZ_KEY_PEM).ok()
}

/// Small limits, so a hostile archive is refused in microseconds and memory stays flat.
pub fn small_limits() -> Limits {
    Limits {
        max_archive_bytes: 256 * 1024,
        max_entries: 16,
        max_entry_bytes: 128 * 1024,
        max_unpacked_bytes: 512 * 1024,
        max_manifest_bytes: 16 * 1024,
        max_ratio: 200,
        ratio_exempt_below: 4 * 1024,
    }
}
