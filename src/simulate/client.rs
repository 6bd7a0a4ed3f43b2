//! A simulated router's side of the device protocol: builds signed Call Home requests,
//! reads and verifies the satellite's signed answers, and keeps what a router remembers.
//! It talks to a satellite only through the bytes it would put on the wire.

use super::device::Chassis;
use super::show::{DeviceLicenseState, ShownEntitlement, ShownSia};
use crate::crypto::device_ca::der_cert;
use crate::crypto::ecdsa::{SigningKey, VerifyingKey};
use crate::gateway::callhome::{self, Session, SMART_LICENSING_ATTACHMENT, SMART_LICENSING_TYPE};
use crate::gateway::message::{self, MessageType, ResponsePayload};
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    Protocol(String),
    #[error("key: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
}

pub struct SimDevice {
    pub chassis: Chassis,
    pub key: SigningKey,
    pub state: DeviceLicenseState,
    /// Set once registered: the response key certificate the device trusts from then on.
    pub pinned_response_spki: Option<Vec<u8>>,
    nonce: u64,
    nonce_prefix: String,
}

fn parse_time(s: &Option<String>) -> Option<DateTime<Utc>> {
    s.as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The response signer's public key, from the first certificate of `ca_chain`.
pub fn response_key_from_chain(chain: &[String]) -> Result<Vec<u8>, SimError> {
    let first = chain
        .first()
        .ok_or_else(|| SimError::Protocol("ca_chain is empty".into()))?;
    let der = CertificateDer::from_pem_slice(first.as_bytes())
        .map_err(|e| SimError::Protocol(format!("ca_chain certificate: {e}")))?;
    let cert = der_cert(der.as_ref())
        .map_err(|e| SimError::Protocol(format!("ca_chain certificate: {e}")))?;
    Ok(cert.spki.to_vec())
}

/// What a satellite answered: the response type, its payload and the raw signed text.
pub struct Reply {
    pub kind: MessageType,
    pub payload: ResponsePayload,
    pub raw_payload: String,
    pub signature: String,
}

/// Parses a Call Home answer down to its smart-licensing payload.
pub fn read_reply(xml: &[u8]) -> Result<Reply, SimError> {
    let msg = callhome::parse(xml).map_err(|e| SimError::Protocol(format!("answer XML: {e}")))?;
    let data = msg
        .smart_licensing_data()
        .ok_or_else(|| SimError::Protocol("answer carries no smart-licensing attachment".into()))?;
    let env = message::decode_envelope(data)
        .map_err(|e| SimError::Protocol(format!("answer envelope: {e}")))?;
    let kind = env.response_kind().ok_or_else(|| {
        SimError::Protocol(format!("unexpected answer type {:?}", env.header.kind))
    })?;
    let payload = message::decode_response_payload(&env.payload)
        .map_err(|e| SimError::Protocol(format!("answer payload: {e}")))?;
    Ok(Reply {
        kind,
        payload,
        raw_payload: env.payload,
        signature: env.signature.value,
    })
}

impl SimDevice {
    pub fn new(chassis: Chassis, transport_url: &str) -> Result<SimDevice, SimError> {
        let key = SigningKey::generate()?;
        let prefix =
            hex::encode(&ring::digest::digest(&ring::digest::SHA256, key.spki_der()).as_ref()[..6]);
        let state = DeviceLicenseState {
            chassis: chassis.clone(),
            smart_account: None,
            virtual_account: None,
            export_controlled: false,
            registered_at: None,
            registration_expires: None,
            next_renewal: None,
            last_authorization: None,
            next_communication: None,
            communication_deadline: None,
            overall_status: "NOT_AUTHORIZED".into(),
            entitlements: Vec::new(),
            sia: None,
            transport_url: transport_url.to_string(),
        };
        Ok(SimDevice {
            chassis,
            key,
            state,
            pinned_response_spki: None,
            nonce: 0,
            nonce_prefix: prefix,
        })
    }

    /// The JSON payload every message carries, plus `extra` fields.
    pub fn payload(&mut self, now: DateTime<Utc>, extra: Map<String, Value>) -> String {
        self.nonce += 1;
        let mut p = Map::new();
        p.insert(
            "sudi".into(),
            json!({"udi_pid": self.chassis.pid, "udi_serial_number": self.chassis.serial}),
        );
        if let Some(h) = &self.chassis.hostname {
            p.insert("hostname".into(), json!(h));
        }
        p.insert(
            "software_version".into(),
            json!(self.chassis.software_version),
        );
        p.insert("timestamp".into(), json!(now.timestamp_millis()));
        p.insert(
            "nonce".into(),
            json!(format!("{}-{}", self.nonce_prefix, self.nonce)),
        );
        p.extend(extra);
        Value::Object(p).to_string()
    }

    /// Wraps a payload string, signed by this device, into a Call Home request.
    pub fn envelope(
        &self,
        kind: MessageType,
        payload: &str,
        now: DateTime<Utc>,
    ) -> Result<String, SimError> {
        let sig = self.key.sign_b64(payload.as_bytes())?;
        Ok(self.wrap(kind, payload, &sig, now))
    }

    /// Same as [`SimDevice::envelope`] with a given signature (tests forge and tamper with it).
    pub fn wrap(
        &self,
        kind: MessageType,
        payload: &str,
        signature_b64: &str,
        now: DateTime<Utc>,
    ) -> String {
        let data = json!({
            "header": {"type": kind.as_str(), "version": 1},
            "payload": payload,
            "signature": {"alg": "ES256", "value": signature_b64},
        })
        .to_string();
        let session = Session {
            to: self.state.transport_url.clone(),
            from: format!("urn:udi:{}", self.chassis.udi()),
            message_id: format!(
                "{}:{}:{:X}",
                self.nonce,
                self.chassis.serial,
                now.timestamp()
            ),
        };
        callhome::build(
            &session,
            SMART_LICENSING_TYPE,
            &now.to_rfc3339_opts(SecondsFormat::Secs, true),
            SMART_LICENSING_ATTACHMENT,
            &data,
        )
    }

    pub fn register_request(
        &mut self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<String, SimError> {
        let mut extra = Map::new();
        extra.insert("id_token".into(), json!(token));
        extra.insert("public_key".into(), json!(self.key.public_key_pem()));
        let p = self.payload(now, extra);
        self.envelope(MessageType::Register, &p, now)
    }

    pub fn authorize_request(&mut self, now: DateTime<Utc>) -> Result<String, SimError> {
        let ents: Vec<Value> = self
            .chassis
            .entitlements()
            .into_iter()
            .map(|(tag, count)| json!({"tag": tag, "count": count}))
            .collect();
        let mut extra = Map::new();
        extra.insert("entitlements".into(), Value::Array(ents));
        let p = self.payload(now, extra);
        self.envelope(MessageType::Authorize, &p, now)
    }

    pub fn plain_request(
        &mut self,
        kind: MessageType,
        now: DateTime<Utc>,
    ) -> Result<String, SimError> {
        let p = self.payload(now, Map::new());
        self.envelope(kind, &p, now)
    }

    /// Checks the answer's signature (against the key pinned at registration, or the
    /// chain it carries) and records what it says, as a router would.
    pub fn accept(&mut self, reply: &Reply, now: DateTime<Utc>) -> Result<(), SimError> {
        let spki = match (&self.pinned_response_spki, &reply.payload.ca_chain) {
            (_, Some(chain)) => response_key_from_chain(chain)?,
            (Some(p), None) => p.clone(),
            (None, None) => {
                return Err(SimError::Protocol(
                    "no key to verify the answer with".into(),
                ))
            }
        };
        VerifyingKey::from_spki_der(&spki)?
            .verify_b64(reply.raw_payload.as_bytes(), &reply.signature)
            .map_err(|_| SimError::Protocol("answer signature does not verify".into()))?;
        self.pinned_response_spki = Some(spki);
        let p = &reply.payload;
        if p.status != "SUCCESS" {
            return Ok(());
        }
        match reply.kind {
            MessageType::Register | MessageType::RenewId => {
                self.state.smart_account = p.smart_account.clone();
                self.state.virtual_account = p.virtual_account.clone();
                self.state.export_controlled = p.export_controlled.unwrap_or(false);
                if reply.kind == MessageType::Register {
                    self.state.registered_at = Some(now);
                }
                self.state.registration_expires = parse_time(&p.registration_expires);
                self.state.next_renewal = parse_time(&p.next_renewal);
            }
            MessageType::Authorize => {
                if let Some(a) = &p.authorization {
                    self.state.overall_status = a.status.clone();
                    self.state.last_authorization = Some(now);
                    self.state.next_communication = parse_time(&Some(a.next_communication.clone()));
                    self.state.communication_deadline =
                        parse_time(&Some(a.communication_deadline.clone()));
                    self.state.entitlements = a
                        .entitlements
                        .iter()
                        .map(|e| ShownEntitlement {
                            tag: e.tag.clone(),
                            description: e.description.clone(),
                            count: e.count,
                            status: e.status.clone(),
                        })
                        .collect();
                    self.state.sia = Some(ShownSia {
                        status: a.sia.status.clone(),
                        reason: a.sia.reason.clone(),
                        grace_remaining_seconds: a.sia.grace_remaining_seconds,
                        upgrades_allowed: a.sia.upgrades_allowed,
                    });
                }
            }
            MessageType::Deregister => {
                self.state.smart_account = None;
                self.state.virtual_account = None;
                self.state.registered_at = None;
                self.state.entitlements.clear();
                self.state.overall_status = "NOT_AUTHORIZED".into();
            }
        }
        Ok(())
    }
}

/// Tampers with a signed payload without re-signing: flips the last digit of the timestamp.
pub fn tamper(payload: &str) -> String {
    let mut v: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
    if let Some(ts) = v.get("timestamp").and_then(Value::as_i64) {
        v["timestamp"] = json!(ts + 1);
    }
    v.to_string()
}

/// A signature that is valid base64 but signs nothing.
pub fn bogus_signature() -> String {
    base64::engine::general_purpose::STANDARD
        .encode([0x30u8, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01])
}
