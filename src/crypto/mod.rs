//! Cryptography: ES256 and Ed25519 keys, the device CA, and key files on disk.
//! Nothing outside this module touches private key bytes or parses key formats itself.

pub mod device_ca;
pub mod ecdsa;
pub mod ed25519;
pub mod keyfile;

pub use ecdsa::CryptoError;
