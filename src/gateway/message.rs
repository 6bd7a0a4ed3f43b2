//! Smart licensing JSON carried in the `smart-licensing` attachment: envelope, request and response payloads.
//! Pure data and validation: it must never verify signatures, read clocks or storage, or accept unbounded input.

use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest envelope JSON accepted; the payload inside has its own, smaller bound.
pub const MAX_ENVELOPE_BYTES: usize = 2 * 1_048_576;
pub const MAX_PAYLOAD_BYTES: usize = 1_048_576;
pub const MAX_ENTITLEMENTS: usize = 1024;
pub const MAX_ENTITLEMENT_COUNT: u32 = 1_000_000;
pub const PROTOCOL_VERSION: u32 = 1;
pub const SIGNATURE_ALG: &str = "ES256";

/// A DER ECDSA P-256 signature is at most 72 bytes (96 base64 characters); leave room for padding quirks.
const MAX_SIGNATURE_CHARS: usize = 256;
const MAX_KEY_ID_CHARS: usize = 256;
const MAX_NONCE_CHARS: usize = 128;
const MAX_TAG_CHARS: usize = 64;
const MAX_SUDI_CHARS: usize = 64;
const MAX_HOSTNAME_CHARS: usize = 255;
const MAX_SOFTWARE_VERSION_CHARS: usize = 128;
const MAX_ID_TOKEN_CHARS: usize = 1024;
const MAX_PUBLIC_KEY_BYTES: usize = 4096;
/// serde_json error texts quote offending values; keep them short enough for a log line.
const MAX_REASON_CHARS: usize = 200;

/// Status strings used in response payloads.
pub mod status {
    pub const SUCCESS: &str = "SUCCESS";
    pub const FAILED: &str = "FAILED";
    pub const AUTHORIZED: &str = "AUTHORIZED";
    pub const OUT_OF_COMPLIANCE: &str = "OUT_OF_COMPLIANCE";
    pub const NOT_AUTHORIZED: &str = "NOT_AUTHORIZED";
    pub const AUTHORIZATION_EXPIRED: &str = "AUTHORIZATION_EXPIRED";
    pub const INVALID: &str = "INVALID";
    pub const IN_COMPLIANCE: &str = "IN_COMPLIANCE";
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("{what} is {size} bytes, above the limit of {max}")]
    TooLarge {
        what: &'static str,
        size: usize,
        max: usize,
    },
    #[error("{what} nests deeper than {max} levels")]
    TooDeep { what: &'static str, max: usize },
    #[error("{what} is not valid: {reason}")]
    Json { what: &'static str, reason: String },
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("unsupported protocol version {0} (only 1 is spoken)")]
    UnsupportedVersion(u32),
    #[error("unsupported signature algorithm {0:?} (only ES256)")]
    UnsupportedAlgorithm(String),
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("field {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("{count} entitlements, above the limit of {max}")]
    TooManyEntitlements { count: usize, max: usize },
    #[error("entitlement tag {0:?} appears more than once")]
    DuplicateTag(String),
    #[error("signature value is not valid base64")]
    SignatureEncoding,
}

fn json_error(what: &'static str, err: &serde_json::Error) -> MessageError {
    MessageError::Json {
        what,
        reason: truncate_chars(&err.to_string(), MAX_REASON_CHARS),
    }
}

/// The schema nests three levels; serde_json would skip deeper unknown values
/// without complaint, so depth is checked once, before parsing.
const MAX_JSON_DEPTH: usize = 32;

/// Refuses an object or array, not a string, as the top value, and nesting beyond [`MAX_JSON_DEPTH`].
fn precheck(what: &'static str, json: &str) -> Result<(), MessageError> {
    require_object(what, json)?;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(MessageError::TooDeep {
                        what,
                        max: MAX_JSON_DEPTH,
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// serde accepts a JSON array where a struct is expected (fields by position);
/// the wire format is objects only, so anything else is refused up front.
fn require_object(what: &'static str, json: &str) -> Result<(), MessageError> {
    if json.trim_start().starts_with('{') {
        Ok(())
    } else {
        Err(MessageError::Json {
            what,
            reason: "expected a JSON object".to_string(),
        })
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn invalid(field: &'static str, reason: impl Into<String>) -> MessageError {
    MessageError::InvalidField {
        field,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Register,
    RenewId,
    Authorize,
    Deregister,
}

impl MessageType {
    pub const ALL: [MessageType; 4] = [
        MessageType::Register,
        MessageType::RenewId,
        MessageType::Authorize,
        MessageType::Deregister,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Register => "register",
            MessageType::RenewId => "renew_id",
            MessageType::Authorize => "authorize",
            MessageType::Deregister => "deregister",
        }
    }

    /// The `header.type` of the answer to this request.
    pub fn response_type(self) -> &'static str {
        match self {
            MessageType::Register => "register_response",
            MessageType::RenewId => "renew_id_response",
            MessageType::Authorize => "authorize_response",
            MessageType::Deregister => "deregister_response",
        }
    }

    pub fn from_request(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == kind)
    }

    pub fn from_response(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.response_type() == kind)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub header: Header,
    /// The payload object serialised as a string; the signature covers exactly these UTF-8 bytes.
    pub payload: String,
    pub signature: Signature,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Base64 of a DER ECDSA P-256 signature.
    pub value: String,
}

impl Envelope {
    /// The request this envelope carries, or `None` for a response.
    pub fn request_kind(&self) -> Option<MessageType> {
        MessageType::from_request(&self.header.kind)
    }

    /// The request type this envelope answers, or `None` for a request.
    pub fn response_kind(&self) -> Option<MessageType> {
        MessageType::from_response(&self.header.kind)
    }
}

impl Signature {
    pub fn der_bytes(&self) -> Result<Vec<u8>, MessageError> {
        base64::engine::general_purpose::STANDARD
            .decode(self.value.trim())
            .map_err(|_| MessageError::SignatureEncoding)
    }
}

/// Reads an envelope and checks its header and signature block; requests and responses both pass.
pub fn decode_envelope(data: &str) -> Result<Envelope, MessageError> {
    if data.len() > MAX_ENVELOPE_BYTES {
        return Err(MessageError::TooLarge {
            what: "envelope",
            size: data.len(),
            max: MAX_ENVELOPE_BYTES,
        });
    }
    precheck("envelope JSON", data)?;
    let envelope: Envelope =
        serde_json::from_str(data).map_err(|e| json_error("envelope JSON", &e))?;
    if envelope.request_kind().is_none() && envelope.response_kind().is_none() {
        return Err(MessageError::UnknownType(truncate_chars(
            &envelope.header.kind,
            64,
        )));
    }
    if envelope.header.version != PROTOCOL_VERSION {
        return Err(MessageError::UnsupportedVersion(envelope.header.version));
    }
    if envelope.signature.alg != SIGNATURE_ALG {
        return Err(MessageError::UnsupportedAlgorithm(truncate_chars(
            &envelope.signature.alg,
            32,
        )));
    }
    if envelope.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(MessageError::TooLarge {
            what: "payload",
            size: envelope.payload.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    let value = &envelope.signature.value;
    if value.is_empty() || value.len() > MAX_SIGNATURE_CHARS {
        return Err(invalid(
            "signature.value",
            format!("must be 1 to {MAX_SIGNATURE_CHARS} characters"),
        ));
    }
    if let Some(key_id) = &envelope.signature.key_id {
        if key_id.len() > MAX_KEY_ID_CHARS {
            return Err(invalid(
                "signature.key_id",
                format!("longer than {MAX_KEY_ID_CHARS} characters"),
            ));
        }
    }
    Ok(envelope)
}

/// Serialises an envelope (protocol version 1, ES256) around an already serialised payload.
pub fn encode_envelope(
    kind_str: &str,
    payload: &str,
    key_id: Option<&str>,
    signature_b64: &str,
) -> String {
    // Built as a Value because its Display cannot fail, unlike serialising a struct.
    let mut header = Map::new();
    header.insert("type".into(), Value::String(kind_str.to_string()));
    header.insert("version".into(), Value::from(PROTOCOL_VERSION));
    let mut signature = Map::new();
    signature.insert("alg".into(), Value::String(SIGNATURE_ALG.to_string()));
    if let Some(key_id) = key_id {
        signature.insert("key_id".into(), Value::String(key_id.to_string()));
    }
    signature.insert("value".into(), Value::String(signature_b64.to_string()));
    let mut envelope = Map::new();
    envelope.insert("header".into(), Value::Object(header));
    envelope.insert("payload".into(), Value::String(payload.to_string()));
    envelope.insert("signature".into(), Value::Object(signature));
    Value::Object(envelope).to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sudi {
    pub udi_pid: String,
    pub udi_serial_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommonPayload {
    pub sudi: Sudi,
    /// Absent when the device runs with hostname privacy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// Milliseconds since the Unix epoch, by the device's clock.
    pub timestamp: i64,
    pub nonce: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterPayload {
    #[serde(flatten)]
    pub common: CommonPayload,
    pub id_token: String,
    /// PEM SubjectPublicKeyInfo of the device's P-256 key.
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementUse {
    pub tag: String,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizePayload {
    #[serde(flatten)]
    pub common: CommonPayload,
    /// The device's full current usage, not a delta.
    pub entitlements: Vec<EntitlementUse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestPayload {
    Register(RegisterPayload),
    RenewId(CommonPayload),
    Authorize(AuthorizePayload),
    Deregister(CommonPayload),
}

impl RequestPayload {
    pub fn kind(&self) -> MessageType {
        match self {
            RequestPayload::Register(_) => MessageType::Register,
            RequestPayload::RenewId(_) => MessageType::RenewId,
            RequestPayload::Authorize(_) => MessageType::Authorize,
            RequestPayload::Deregister(_) => MessageType::Deregister,
        }
    }

    pub fn common(&self) -> &CommonPayload {
        match self {
            RequestPayload::Register(p) => &p.common,
            RequestPayload::Authorize(p) => &p.common,
            RequestPayload::RenewId(c) | RequestPayload::Deregister(c) => c,
        }
    }

    /// The payload string a device signs and sends.
    pub fn to_json(&self) -> Result<String, MessageError> {
        match self {
            RequestPayload::Register(p) => encode_payload(p),
            RequestPayload::Authorize(p) => encode_payload(p),
            RequestPayload::RenewId(c) | RequestPayload::Deregister(c) => encode_payload(c),
        }
    }
}

/// Every field any request may carry. Decoding goes through this one flat struct
/// (not `flatten`) so serde's duplicate-field check covers every key.
#[derive(Deserialize)]
struct RawPayload {
    sudi: Option<Sudi>,
    hostname: Option<String>,
    software_version: Option<String>,
    timestamp: Option<i64>,
    nonce: Option<String>,
    id_token: Option<String>,
    public_key: Option<String>,
    entitlements: Option<Vec<EntitlementUse>>,
}

/// Reads and validates the payload of a request of the given type.
pub fn decode_payload(kind: MessageType, payload: &str) -> Result<RequestPayload, MessageError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(MessageError::TooLarge {
            what: "payload",
            size: payload.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    precheck("payload JSON", payload)?;
    let raw: RawPayload =
        serde_json::from_str(payload).map_err(|e| json_error("payload JSON", &e))?;
    let common = CommonPayload {
        sudi: raw.sudi.ok_or(MessageError::MissingField("sudi"))?,
        hostname: raw.hostname,
        software_version: raw.software_version,
        timestamp: raw
            .timestamp
            .ok_or(MessageError::MissingField("timestamp"))?,
        nonce: raw.nonce.ok_or(MessageError::MissingField("nonce"))?,
    };
    validate_common(&common)?;
    Ok(match kind {
        MessageType::Register => {
            let id_token = raw.id_token.ok_or(MessageError::MissingField("id_token"))?;
            let public_key = raw
                .public_key
                .ok_or(MessageError::MissingField("public_key"))?;
            check_chars(
                "id_token",
                &id_token,
                MAX_ID_TOKEN_CHARS,
                is_visible_ascii,
                "printable ASCII without spaces",
            )?;
            if public_key.trim().is_empty() || public_key.len() > MAX_PUBLIC_KEY_BYTES {
                return Err(invalid(
                    "public_key",
                    format!("must be 1 to {MAX_PUBLIC_KEY_BYTES} bytes of PEM"),
                ));
            }
            RequestPayload::Register(RegisterPayload {
                common,
                id_token,
                public_key,
            })
        }
        MessageType::Authorize => {
            let entitlements = raw
                .entitlements
                .ok_or(MessageError::MissingField("entitlements"))?;
            validate_entitlements(&entitlements)?;
            RequestPayload::Authorize(AuthorizePayload {
                common,
                entitlements,
            })
        }
        MessageType::RenewId => RequestPayload::RenewId(common),
        MessageType::Deregister => RequestPayload::Deregister(common),
    })
}

fn is_visible_ascii(c: char) -> bool {
    c.is_ascii_graphic()
}

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

fn is_printable(c: char) -> bool {
    !c.is_control()
}

fn check_chars(
    field: &'static str,
    value: &str,
    max: usize,
    allowed: fn(char) -> bool,
    allowed_text: &str,
) -> Result<(), MessageError> {
    let count = value.chars().count();
    if count == 0 || count > max {
        return Err(invalid(field, format!("must be 1 to {max} characters")));
    }
    if !value.chars().all(allowed) {
        return Err(invalid(field, format!("must be {allowed_text}")));
    }
    Ok(())
}

fn validate_common(common: &CommonPayload) -> Result<(), MessageError> {
    check_chars(
        "sudi.udi_pid",
        &common.sudi.udi_pid,
        MAX_SUDI_CHARS,
        is_visible_ascii,
        "printable ASCII without spaces",
    )?;
    check_chars(
        "sudi.udi_serial_number",
        &common.sudi.udi_serial_number,
        MAX_SUDI_CHARS,
        is_visible_ascii,
        "printable ASCII without spaces",
    )?;
    check_chars(
        "nonce",
        &common.nonce,
        MAX_NONCE_CHARS,
        is_printable,
        "free of control characters",
    )?;
    if common.timestamp < 0 {
        return Err(invalid("timestamp", "must not be negative"));
    }
    if let Some(hostname) = &common.hostname {
        check_chars(
            "hostname",
            hostname,
            MAX_HOSTNAME_CHARS,
            is_printable,
            "free of control characters",
        )?;
    }
    if let Some(version) = &common.software_version {
        check_chars(
            "software_version",
            version,
            MAX_SOFTWARE_VERSION_CHARS,
            is_printable,
            "free of control characters",
        )?;
    }
    Ok(())
}

fn validate_entitlements(entitlements: &[EntitlementUse]) -> Result<(), MessageError> {
    if entitlements.len() > MAX_ENTITLEMENTS {
        return Err(MessageError::TooManyEntitlements {
            count: entitlements.len(),
            max: MAX_ENTITLEMENTS,
        });
    }
    let mut seen = HashSet::with_capacity(entitlements.len());
    for e in entitlements {
        check_chars(
            "entitlements.tag",
            &e.tag,
            MAX_TAG_CHARS,
            is_tag_char,
            "letters, digits, '.', '_' or '-'",
        )?;
        if e.count > MAX_ENTITLEMENT_COUNT {
            return Err(invalid(
                "entitlements.count",
                format!("{} is above {MAX_ENTITLEMENT_COUNT}", e.count),
            ));
        }
        if !seen.insert(e.tag.as_str()) {
            return Err(MessageError::DuplicateTag(e.tag.clone()));
        }
    }
    Ok(())
}

/// Serialises any payload struct of this module.
pub fn encode_payload<T: Serialize>(value: &T) -> Result<String, MessageError> {
    serde_json::to_string(value).map_err(|e| json_error("payload", &e))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    TokenInvalid,
    TokenExpired,
    TokenRevoked,
    TokenExhausted,
    NotRegistered,
    BadSignature,
    Replay,
    ClockSkew,
    EulaNotAccepted,
    Malformed,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::TokenInvalid,
        ErrorCode::TokenExpired,
        ErrorCode::TokenRevoked,
        ErrorCode::TokenExhausted,
        ErrorCode::NotRegistered,
        ErrorCode::BadSignature,
        ErrorCode::Replay,
        ErrorCode::ClockSkew,
        ErrorCode::EulaNotAccepted,
        ErrorCode::Malformed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::TokenInvalid => "TOKEN_INVALID",
            ErrorCode::TokenExpired => "TOKEN_EXPIRED",
            ErrorCode::TokenRevoked => "TOKEN_REVOKED",
            ErrorCode::TokenExhausted => "TOKEN_EXHAUSTED",
            ErrorCode::NotRegistered => "NOT_REGISTERED",
            ErrorCode::BadSignature => "BAD_SIGNATURE",
            ErrorCode::Replay => "REPLAY",
            ErrorCode::ClockSkew => "CLOCK_SKEW",
            ErrorCode::EulaNotAccepted => "EULA_NOT_ACCEPTED",
            ErrorCode::Malformed => "MALFORMED",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code: code.as_str().to_string(),
            message: message.into(),
        }
    }
}

/// The satellite's answer. Fields a given answer does not use stay `None` and are left out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResponsePayload {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_controlled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_chain: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_renewal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
}

impl ResponsePayload {
    pub fn success() -> Self {
        ResponsePayload {
            status: status::SUCCESS.to_string(),
            ..ResponsePayload::default()
        }
    }

    pub fn failure(code: ErrorCode, message: impl Into<String>) -> Self {
        ResponsePayload {
            status: status::FAILED.to_string(),
            error: Some(ErrorBody::new(code, message)),
            ..ResponsePayload::default()
        }
    }

    pub fn to_json(&self) -> Result<String, MessageError> {
        encode_payload(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    pub status: String,
    pub next_communication: String,
    pub communication_deadline: String,
    pub entitlements: Vec<EntitlementStatus>,
    pub sia: SiaStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementStatus {
    pub tag: String,
    pub description: String,
    pub count: u32,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiaStatus {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub grace_remaining_seconds: i64,
    pub upgrades_allowed: bool,
}

/// Reads a response payload (the simulator's side of the exchange).
pub fn decode_response_payload(payload: &str) -> Result<ResponsePayload, MessageError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(MessageError::TooLarge {
            what: "payload",
            size: payload.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    precheck("response payload JSON", payload)?;
    serde_json::from_str(payload).map_err(|e| json_error("response payload JSON", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUDI: &str = r#""sudi":{"udi_pid":"NCS560-4","udi_serial_number":"FOX2305P81D"}"#;

    fn common_json() -> String {
        format!(
            r#"{SUDI},"hostname":"pe1","software_version":"7.11.2","timestamp":1735732800000,"nonce":"n-1""#
        )
    }

    fn authorize_json(entitlements: &str) -> String {
        format!(r#"{{{},"entitlements":[{entitlements}]}}"#, common_json())
    }

    fn envelope_json(kind: &str, version: &str, alg: &str) -> String {
        format!(
            r#"{{"header":{{"type":"{kind}","version":{version}}},"payload":"{{}}","signature":{{"alg":"{alg}","value":"AAAA"}}}}"#
        )
    }

    fn common() -> CommonPayload {
        CommonPayload {
            sudi: Sudi {
                udi_pid: "NCS560-4".into(),
                udi_serial_number: "FOX2305P81D".into(),
            },
            hostname: None,
            software_version: Some("7.11.2".into()),
            timestamp: 1_735_732_800_000,
            nonce: "abc".into(),
        }
    }

    #[test]
    fn message_type_names() {
        let names: Vec<(&str, &str)> = MessageType::ALL
            .iter()
            .map(|t| (t.as_str(), t.response_type()))
            .collect();
        assert_eq!(
            names,
            [
                ("register", "register_response"),
                ("renew_id", "renew_id_response"),
                ("authorize", "authorize_response"),
                ("deregister", "deregister_response")
            ]
        );
        for t in MessageType::ALL {
            assert_eq!(MessageType::from_request(t.as_str()), Some(t));
            assert_eq!(MessageType::from_response(t.response_type()), Some(t));
            assert_eq!(MessageType::from_request(t.response_type()), None);
        }
    }

    #[test]
    fn error_code_names() {
        let names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "TOKEN_INVALID",
                "TOKEN_EXPIRED",
                "TOKEN_REVOKED",
                "TOKEN_EXHAUSTED",
                "NOT_REGISTERED",
                "BAD_SIGNATURE",
                "REPLAY",
                "CLOCK_SKEW",
                "EULA_NOT_ACCEPTED",
                "MALFORMED"
            ]
        );
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(c.as_str()), Some(c));
        }
    }

    #[test]
    fn envelope_round_trip() {
        let json = encode_envelope(
            "register_response",
            "{\"status\":\"SUCCESS\"}",
            Some("k1"),
            "c2ln",
        );
        assert_eq!(
            json,
            r#"{"header":{"type":"register_response","version":1},"payload":"{\"status\":\"SUCCESS\"}","signature":{"alg":"ES256","key_id":"k1","value":"c2ln"}}"#
        );
        let env = decode_envelope(&json).unwrap();
        assert_eq!(env.response_kind(), Some(MessageType::Register));
        assert_eq!(env.request_kind(), None);
        assert_eq!(env.payload, "{\"status\":\"SUCCESS\"}");
        assert_eq!(env.signature.key_id.as_deref(), Some("k1"));
        assert_eq!(env.signature.der_bytes().unwrap(), b"sig");

        let json = encode_envelope("authorize", "{}", None, "c2ln");
        assert!(!json.contains("key_id"));
        let env = decode_envelope(&json).unwrap();
        assert_eq!(env.request_kind(), Some(MessageType::Authorize));
        assert_eq!(serde_json::to_string(&env).unwrap(), json);
    }

    #[test]
    fn envelope_header_is_checked() {
        assert!(decode_envelope(&envelope_json("register", "1", "ES256")).is_ok());
        assert_eq!(
            decode_envelope(&envelope_json("install", "1", "ES256")),
            Err(MessageError::UnknownType("install".into()))
        );
        assert_eq!(
            decode_envelope(&envelope_json("register", "2", "ES256")),
            Err(MessageError::UnsupportedVersion(2))
        );
        assert_eq!(
            decode_envelope(&envelope_json("register", "1", "RS256")),
            Err(MessageError::UnsupportedAlgorithm("RS256".into()))
        );
        assert!(matches!(
            decode_envelope(&envelope_json("register", "\"1\"", "ES256")),
            Err(MessageError::Json { .. })
        ));
        assert!(matches!(
            decode_envelope(&envelope_json("register", "-1", "ES256")),
            Err(MessageError::Json { .. })
        ));
        let bad_sig = envelope_json("register", "1", "ES256").replace("AAAA", "");
        assert!(matches!(
            decode_envelope(&bad_sig),
            Err(MessageError::InvalidField {
                field: "signature.value",
                ..
            })
        ));
        let no_sig = r#"{"header":{"type":"register","version":1},"payload":"{}"}"#;
        let err = decode_envelope(no_sig).unwrap_err();
        assert!(
            err.to_string().contains("missing field `signature`"),
            "{err}"
        );
    }

    #[test]
    fn envelope_duplicate_keys_are_refused() {
        let dup = r#"{"header":{"type":"register","version":1},"header":{"type":"authorize","version":1},"payload":"{}","signature":{"alg":"ES256","value":"AAAA"}}"#;
        let err = decode_envelope(dup).unwrap_err();
        assert!(
            err.to_string().contains("duplicate field `header`"),
            "{err}"
        );
        let dup = r#"{"header":{"type":"register","type":"authorize","version":1},"payload":"{}","signature":{"alg":"ES256","value":"AAAA"}}"#;
        let err = decode_envelope(dup).unwrap_err();
        assert!(err.to_string().contains("duplicate field `type`"), "{err}");
    }

    #[test]
    fn envelope_size_is_bounded() {
        let big = format!(
            r#"{{"header":{{"type":"register","version":1}},"payload":"{}","signature":{{"alg":"ES256","value":"AAAA"}}}}"#,
            "x".repeat(MAX_PAYLOAD_BYTES + 1)
        );
        assert!(matches!(
            decode_envelope(&big),
            Err(MessageError::TooLarge {
                what: "payload",
                ..
            })
        ));
        let huge = " ".repeat(MAX_ENVELOPE_BYTES + 1);
        assert!(matches!(
            decode_envelope(&huge),
            Err(MessageError::TooLarge {
                what: "envelope",
                ..
            })
        ));
    }

    #[test]
    fn decodes_each_request_kind() {
        let reg = format!(
            r#"{{{},"id_token":"tok-123","public_key":"-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n"}}"#,
            common_json()
        );
        let RequestPayload::Register(p) = decode_payload(MessageType::Register, &reg).unwrap()
        else {
            panic!("wrong kind")
        };
        assert_eq!(p.id_token, "tok-123");
        assert_eq!(p.common.hostname.as_deref(), Some("pe1"));
        assert_eq!(p.common.timestamp, 1_735_732_800_000);

        let plain = format!("{{{}}}", common_json());
        let renew = decode_payload(MessageType::RenewId, &plain).unwrap();
        assert_eq!(renew.kind(), MessageType::RenewId);
        assert_eq!(renew.common().nonce, "n-1");
        let dereg = decode_payload(MessageType::Deregister, &plain).unwrap();
        assert_eq!(dereg.kind(), MessageType::Deregister);

        let auth = authorize_json(
            r#"{"tag":"ESS-AC-100G-RTU-1","count":1},{"tag":"A900-IMA8Z-TRK","count":2}"#,
        );
        let RequestPayload::Authorize(p) = decode_payload(MessageType::Authorize, &auth).unwrap()
        else {
            panic!("wrong kind")
        };
        assert_eq!(
            p.entitlements[1],
            EntitlementUse {
                tag: "A900-IMA8Z-TRK".into(),
                count: 2
            }
        );

        assert_eq!(
            decode_payload(MessageType::Register, &plain),
            Err(MessageError::MissingField("id_token"))
        );
        assert_eq!(
            decode_payload(MessageType::Authorize, &plain),
            Err(MessageError::MissingField("entitlements"))
        );
        assert_eq!(
            decode_payload(MessageType::RenewId, r#"{"timestamp":1,"nonce":"n"}"#),
            Err(MessageError::MissingField("sudi"))
        );
    }

    #[test]
    fn request_payloads_round_trip() {
        let payloads = [
            RequestPayload::Register(RegisterPayload {
                common: common(),
                id_token: "tok".into(),
                public_key: "-----BEGIN PUBLIC KEY-----\n".into(),
            }),
            RequestPayload::RenewId(common()),
            RequestPayload::Authorize(AuthorizePayload {
                common: common(),
                entitlements: vec![EntitlementUse {
                    tag: "N560-4-SYS-E-TRK".into(),
                    count: 1,
                }],
            }),
            RequestPayload::Deregister(common()),
        ];
        for p in payloads {
            let json = p.to_json().unwrap();
            assert!(
                !json.contains("hostname"),
                "hostname privacy leaves the key out"
            );
            assert_eq!(decode_payload(p.kind(), &json).unwrap(), p);
        }
    }

    #[test]
    fn field_bounds_are_enforced() {
        let with =
            |from: &str, to: &str| authorize_json(r#"{"tag":"T","count":1}"#).replace(from, to);
        let cases = [
            (with(r#""nonce":"n-1""#, r#""nonce":"""#), "nonce"),
            (
                with(
                    r#""nonce":"n-1""#,
                    &format!(r#""nonce":"{}""#, "n".repeat(129)),
                ),
                "nonce",
            ),
            (with("FOX2305P81D", "FOX 2305"), "sudi.udi_serial_number"),
            (with("FOX2305P81D", ""), "sudi.udi_serial_number"),
            (with("NCS560-4", &"P".repeat(65)), "sudi.udi_pid"),
            (with("NCS560-4", "NCS560\\u00e9"), "sudi.udi_pid"),
            (with(r#""tag":"T""#, r#""tag":"T/1""#), "entitlements.tag"),
            (with(r#""tag":"T""#, r#""tag":"""#), "entitlements.tag"),
            (
                with(r#""tag":"T""#, &format!(r#""tag":"{}""#, "T".repeat(65))),
                "entitlements.tag",
            ),
            (
                with(r#""count":1"#, r#""count":1000001"#),
                "entitlements.count",
            ),
            (with("1735732800000", "-5"), "timestamp"),
            (
                with(r#""hostname":"pe1""#, r#""hostname":"a\nb""#),
                "hostname",
            ),
        ];
        for (json, field) in cases {
            match decode_payload(MessageType::Authorize, &json) {
                Err(MessageError::InvalidField { field: f, .. }) => assert_eq!(f, field, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
        let nonce128 = with(
            r#""nonce":"n-1""#,
            &format!(r#""nonce":"{}""#, "n".repeat(128)),
        );
        assert!(decode_payload(MessageType::Authorize, &nonce128).is_ok());
        let max_count = with(r#""count":1"#, r#""count":1000000"#);
        assert!(decode_payload(MessageType::Authorize, &max_count).is_ok());
        let tag64 = with(
            r#""tag":"T""#,
            &format!(r#""tag":"{}""#, "a.b_C-9".repeat(9)),
        );
        assert!(decode_payload(MessageType::Authorize, &tag64).is_ok());
    }

    #[test]
    fn entitlement_list_is_bounded_and_unique() {
        let list = |n: usize| {
            (0..n)
                .map(|i| format!(r#"{{"tag":"T{i}","count":1}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert!(decode_payload(
            MessageType::Authorize,
            &authorize_json(&list(MAX_ENTITLEMENTS))
        )
        .is_ok());
        assert_eq!(
            decode_payload(
                MessageType::Authorize,
                &authorize_json(&list(MAX_ENTITLEMENTS + 1))
            ),
            Err(MessageError::TooManyEntitlements {
                count: 1025,
                max: 1024
            })
        );
        let dup =
            authorize_json(r#"{"tag":"A","count":1},{"tag":"B","count":1},{"tag":"A","count":2}"#);
        assert_eq!(
            decode_payload(MessageType::Authorize, &dup),
            Err(MessageError::DuplicateTag("A".into()))
        );
    }

    fn json_reason(kind: MessageType, payload: &str) -> String {
        match decode_payload(kind, payload) {
            Err(MessageError::Json { reason, .. }) => reason,
            other => panic!("{payload:.80}: {other:?}"),
        }
    }

    #[test]
    fn hostile_json_is_refused() {
        let t = MessageType::Authorize;
        let ok = authorize_json(r#"{"tag":"T","count":1}"#);
        // Huge numbers.
        for (from, to) in [
            (r#""count":1"#, r#""count":4294967296"#),
            (r#""count":1"#, r#""count":99999999999999999999999999"#),
            (r#""count":1"#, r#""count":1e400"#),
            (r#""count":1"#, r#""count":-1"#),
            (r#""count":1"#, r#""count":1.5"#),
            ("1735732800000", "9223372036854775808"),
            ("1735732800000", "1e30"),
        ] {
            let reason = json_reason(t, &ok.replace(from, to));
            assert!(!reason.is_empty());
        }
        // Deep nesting, at the top and hidden in an unknown key.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(json_reason(t, &deep), "expected a JSON object");
        let too_deep = Err(MessageError::TooDeep {
            what: "payload JSON",
            max: MAX_JSON_DEPTH,
        });
        let hidden = ok.replacen('{', &format!(r#"{{"x":{deep},"#), 1);
        assert_eq!(decode_payload(t, &hidden), too_deep);
        let deep_obj = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
        assert_eq!(decode_payload(t, &deep_obj), too_deep);
        // Brackets inside strings, escaped quotes included, do not count.
        let in_string = ok.replace(
            r#""nonce":"n-1""#,
            &format!(r#""nonce":"\"{}""#, "[".repeat(100)),
        );
        assert!(decode_payload(t, &in_string).is_ok());
        let at_limit = ok.replacen(
            '{',
            &format!(r#"{{"x":{}{},"#, "[".repeat(31), "]".repeat(31)),
            1,
        );
        assert!(decode_payload(t, &at_limit).is_ok());
        let envelope = format!(r#"{{"x":{deep}}}"#);
        assert!(matches!(
            decode_envelope(&envelope),
            Err(MessageError::TooDeep { .. })
        ));
        // Duplicate keys, at each level.
        for (from, to) in [
            (r#""nonce":"n-1""#, r#""nonce":"n-1","nonce":"n-2""#),
            (
                r#""udi_pid":"NCS560-4""#,
                r#""udi_pid":"NCS560-4","udi_pid":"X""#,
            ),
            (r#""count":1"#, r#""count":1,"count":1"#),
            (
                r#""entitlements":["#,
                r#""entitlements":[],"entitlements":["#,
            ),
        ] {
            let reason = json_reason(t, &ok.replace(from, to));
            assert!(reason.contains("duplicate field"), "{reason}");
        }
        // Wrong types.
        for (from, to) in [
            (r#""count":1"#, r#""count":"1""#),
            (r#""count":1"#, r#""count":null"#),
            (r#""nonce":"n-1""#, r#""nonce":7"#),
            (
                r#""entitlements":[{"tag":"T","count":1}]"#,
                r#""entitlements":{"T":1}"#,
            ),
            ("1735732800000", "\"1735732800000\""),
            (SUDI, r#""sudi":"NCS560-4 FOX2305P81D""#),
        ] {
            let reason = json_reason(t, &ok.replace(from, to));
            assert!(reason.contains("invalid type"), "{reason}");
        }
        for not_object in ["[]", "\"x\"", "1", "null", "", "{", &format!("{ok} {ok}")] {
            json_reason(t, not_object);
        }
        let big = format!(r#"{{"nonce":"{}"}}"#, "x".repeat(MAX_PAYLOAD_BYTES));
        assert!(matches!(
            decode_payload(t, &big),
            Err(MessageError::TooLarge { .. })
        ));
    }

    #[test]
    fn error_reasons_stay_short() {
        let long_string = format!(r#"{{"sudi":"{}"}}"#, "y".repeat(100_000));
        let reason = json_reason(MessageType::RenewId, &long_string);
        assert!(reason.chars().count() <= 200);
    }

    #[test]
    fn failure_response_has_only_status_and_error() {
        let json = ResponsePayload::failure(ErrorCode::Replay, "nonce already seen")
            .to_json()
            .unwrap();
        assert_eq!(
            json,
            r#"{"status":"FAILED","error":{"code":"REPLAY","message":"nonce already seen"}}"#
        );
    }

    #[test]
    fn success_responses_serialise_with_contract_field_names() {
        let register = ResponsePayload {
            smart_account: Some("Acme".into()),
            virtual_account: Some("Core".into()),
            export_controlled: Some(false),
            id_cert: Some("CERT".into()),
            ca_chain: Some(vec!["CA".into()]),
            registration_expires: Some("2026-01-01T00:00:00Z".into()),
            next_renewal: Some("2025-07-01T00:00:00Z".into()),
            ..ResponsePayload::success()
        };
        assert_eq!(
            register.to_json().unwrap(),
            r#"{"status":"SUCCESS","smart_account":"Acme","virtual_account":"Core","export_controlled":false,"id_cert":"CERT","ca_chain":["CA"],"registration_expires":"2026-01-01T00:00:00Z","next_renewal":"2025-07-01T00:00:00Z"}"#
        );
        let authorize = ResponsePayload {
            authorization: Some(Authorization {
                status: status::AUTHORIZED.into(),
                next_communication: "2025-01-31T00:00:00Z".into(),
                communication_deadline: "2025-04-01T00:00:00Z".into(),
                entitlements: vec![EntitlementStatus {
                    tag: "ESS-AC-100G-RTU-1".into(),
                    description: "Essentials 100G RTU".into(),
                    count: 1,
                    status: status::AUTHORIZED.into(),
                }],
                sia: SiaStatus {
                    status: status::IN_COMPLIANCE.into(),
                    reason: None,
                    grace_remaining_seconds: 7_776_000,
                    upgrades_allowed: true,
                },
            }),
            ..ResponsePayload::success()
        };
        let json = authorize.to_json().unwrap();
        assert_eq!(
            json,
            r#"{"status":"SUCCESS","authorization":{"status":"AUTHORIZED","next_communication":"2025-01-31T00:00:00Z","communication_deadline":"2025-04-01T00:00:00Z","entitlements":[{"tag":"ESS-AC-100G-RTU-1","description":"Essentials 100G RTU","count":1,"status":"AUTHORIZED"}],"sia":{"status":"IN_COMPLIANCE","grace_remaining_seconds":7776000,"upgrades_allowed":true}}}"#
        );
        assert_eq!(decode_response_payload(&json).unwrap(), authorize);
        assert_eq!(
            decode_response_payload(&register.to_json().unwrap()).unwrap(),
            register
        );
    }
}
