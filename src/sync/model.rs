//! The members of a sync file as typed JSON: what a satellite reports upstream and what
//! the authority answers. Plain data; reading and signing the archive is `sync::archive`.

use serde::{Deserialize, Serialize};

/// `satellite.json` of a request: who is asking and what it has acknowledged so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SatelliteInfo {
    /// The satellite's id as enrolled on the authority.
    pub satellite_id: String,
    pub name: String,
    /// Base64 Ed25519 public key the authority pinned at enrollment.
    pub public_key: String,
    /// One-time enrollment token; present only until the first answer is imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_token: Option<String>,
    /// Highest response sequence this satellite has imported (0 before the first).
    pub last_imported_response: u64,
    pub software_version: String,
}

/// One entitlement use of an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    pub tag: String,
    pub count: u64,
}

/// One product instance with its latest full usage (`instances.json` is an array of these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceRecord {
    pub udi_pid: String,
    pub udi_serial_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub smart_account: String,
    pub virtual_account: String,
    pub registered_at: String,
    pub last_contact_at: String,
    pub usage: Vec<Usage>,
}

/// A change since the last acknowledged request (`changes.json` is an array of these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Satellite-local, increasing; the authority acknowledges up to a sequence.
    pub id: u64,
    pub at: String,
    /// `registered`, `removed`, `transferred`, `license_transferred`.
    pub kind: String,
    pub smart_account: String,
    pub virtual_account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udi_pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udi_serial_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One purchased license line of a pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolLine {
    pub tag: String,
    #[serde(default)]
    pub description: String,
    /// `rtu`, `sia` or `tracking`.
    pub kind: String,
    pub quantity: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

/// The pool of one virtual account the satellite serves (`pools.json` is an array).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaPool {
    pub smart_account: String,
    pub virtual_account: String,
    pub licenses: Vec<PoolLine>,
}

/// `ack.json` of a response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// Sequence of the request this answers.
    pub request_sequence: u64,
    /// Highest change id of that request now recorded upstream.
    pub changes_acknowledged_through: u64,
    /// The authority's clock when it answered (RFC 3339).
    pub authority_time: String,
    /// Instances the authority now holds for this satellite.
    pub instances_recorded: u64,
}
