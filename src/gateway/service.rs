//! The device protocol's decisions: register, renew_id, authorize, deregister, and
//! non-licensing Call Home events. Each accepted message is one transaction; the answer
//! is produced only after that transaction is committed.

use super::callhome::{self, CallHome, Session, SMART_LICENSING_ATTACHMENT, SMART_LICENSING_TYPE};
use super::message::{
    self, status, Authorization, CommonPayload, EntitlementStatus, ErrorCode, MessageError,
    MessageType, RequestPayload, ResponsePayload, SiaStatus,
};
use crate::app::Ctx;
use crate::crypto::device_ca::{DeviceCa, IssuedCert};
use crate::crypto::ecdsa::VerifyingKey;
use crate::domain::compliance::{self, SiaGrace};
use crate::domain::tokens::TokenState;
use crate::error::AppError;
use crate::ops::metrics;
use crate::storage::instances::{self, Instance, NewEvent, Registration};
use crate::storage::sync as sync_store;
use crate::storage::{accounts, tokens};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rusqlite::Connection;
use std::sync::Arc;

/// Largest difference between a message's timestamp and the satellite's clock.
pub const MAX_SKEW: Duration = Duration::hours(1);

/// What the HTTP layer sends back.
#[derive(Debug)]
pub enum Answer {
    /// 200 with this Call Home XML.
    Reply(String),
    /// 400 with a plain-text reason: the message could not be read.
    Unreadable(String),
    /// 503: nothing was stored; the device should retry.
    Unavailable(String),
}

#[derive(Clone)]
pub struct Gateway {
    ctx: Ctx,
    ca: Arc<DeviceCa>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn failed(code: ErrorCode, msg: impl Into<String>) -> ResponsePayload {
    ResponsePayload::failure(code, msg)
}

/// Envelope errors mean the JSON could not be read at all (400); payload errors about
/// fields are answered in the protocol as MALFORMED.
fn unreadable(e: &MessageError) -> bool {
    matches!(
        e,
        MessageError::Json { .. } | MessageError::TooDeep { .. } | MessageError::TooLarge { .. }
    )
}

impl Gateway {
    pub fn new(ctx: Ctx, ca: Arc<DeviceCa>) -> Gateway {
        Gateway { ctx, ca }
    }

    /// A satellite reports registrations and removals upstream; an authority has no upstream.
    fn tracks_changes(&self) -> bool {
        self.ctx.role == crate::config::ServerRole::Satellite
    }

    pub fn ca(&self) -> &DeviceCa {
        &self.ca
    }

    pub async fn handle(&self, body: &[u8]) -> Answer {
        let answer = self.answer(body).await;
        // Replies and 503s are counted where their message type is known.
        if let Answer::Unreadable(_) = answer {
            metrics::count_device_request("unknown", "unreadable");
        }
        answer
    }

    async fn answer(&self, body: &[u8]) -> Answer {
        let msg = match callhome::parse(body) {
            Ok(m) => m,
            Err(e) => return Answer::Unreadable(format!("unreadable Call Home message: {e}")),
        };
        let now = self.ctx.clock.now();
        let Some(data) = msg.smart_licensing_data() else {
            return self.keep_event(&msg, now).await;
        };
        let envelope = match message::decode_envelope(data) {
            Ok(e) => e,
            Err(e) => {
                return Answer::Unreadable(format!("unreadable smart-licensing attachment: {e}"))
            }
        };
        let Some(kind) = envelope.request_kind() else {
            return Answer::Unreadable(format!("unknown message type {:?}", envelope.header.kind));
        };
        let payload = match message::decode_payload(kind, &envelope.payload) {
            Ok(p) => p,
            Err(e) if unreadable(&e) => {
                return Answer::Unreadable(format!("unreadable {} payload: {e}", kind.as_str()))
            }
            Err(e) => {
                return self.reply(&msg, kind, failed(ErrorCode::Malformed, e.to_string()), now)
            }
        };
        let result = match payload {
            RequestPayload::Register(p) => {
                self.register(&envelope.payload, &envelope.signature.value, p, now)
                    .await
            }
            other => {
                self.registered(
                    kind,
                    &envelope.payload,
                    &envelope.signature.value,
                    other,
                    now,
                )
                .await
            }
        };
        match result {
            Ok(resp) => self.reply(&msg, kind, resp, now),
            Err(e) => {
                tracing::warn!(error = %e, kind = kind.as_str(), "device request not stored");
                metrics::count_device_request(kind.as_str(), "unavailable");
                Answer::Unavailable(
                    "the satellite cannot store this request now; retry later".into(),
                )
            }
        }
    }

    /// Signs the payload with the response key and wraps it in a Call Home envelope.
    fn reply(
        &self,
        req: &CallHome,
        kind: MessageType,
        resp: ResponsePayload,
        now: DateTime<Utc>,
    ) -> Answer {
        let outcome = resp
            .error
            .as_ref()
            .map(|e| e.code.clone())
            .unwrap_or_else(|| "success".into());
        let payload = match resp.to_json() {
            Ok(p) => p,
            Err(e) => {
                metrics::count_device_request(kind.as_str(), "unavailable");
                return Answer::Unavailable(format!("cannot encode the answer: {e}"));
            }
        };
        let signature = match self.ca.response_signer().sign_b64(payload.as_bytes()) {
            Ok(s) => s,
            Err(e) => {
                metrics::count_device_request(kind.as_str(), "unavailable");
                return Answer::Unavailable(format!("cannot sign the answer: {e}"));
            }
        };
        metrics::count_device_request(kind.as_str(), &outcome);
        let key_id = self.ca.response_key_id();
        let data =
            message::encode_envelope(kind.response_type(), &payload, Some(&key_id), &signature);
        let session = Session {
            to: req.session.from.clone(),
            from: "satellite".into(),
            message_id: req.session.message_id.clone(),
        };
        Answer::Reply(callhome::build(
            &session,
            SMART_LICENSING_TYPE,
            &rfc3339(now),
            SMART_LICENSING_ATTACHMENT,
            &data,
        ))
    }

    async fn keep_event(&self, msg: &CallHome, now: DateTime<Utc>) -> Answer {
        let device = msg.block.device.clone();
        let serial = device
            .serial
            .clone()
            .or_else(|| serial_from_message_id(&msg.session.message_id));
        let message_type = msg.block.message_type.clone();
        let message_id = msg.session.message_id.clone();
        let mut detail = format!("created {}", msg.block.creation_date);
        for a in &msg.block.attachments {
            detail.push_str(&format!(
                "\nattachment {:?} ({} bytes)",
                a.name,
                a.data.len()
            ));
        }
        if let Some(c) = &msg.block.content_xml_text {
            detail.push('\n');
            detail.push_str(c);
        }
        let stored = self
            .ctx
            .store
            .write(move |c| {
                instances::insert_event(
                    c,
                    &NewEvent {
                        udi_pid: device.pid.as_deref(),
                        udi_serial: serial.as_deref(),
                        kind: "callhome",
                        message_type: &message_type,
                        message_id: &message_id,
                        detail: &detail,
                    },
                    now,
                )?;
                Ok::<_, AppError>(())
            })
            .await;
        metrics::count_device_request(
            "event",
            if stored.is_ok() {
                "accepted"
            } else {
                "unavailable"
            },
        );
        match stored {
            Ok(()) => Answer::Reply(callhome::build(
                &Session {
                    to: msg.session.from.clone(),
                    from: "satellite".into(),
                    message_id: msg.session.message_id.clone(),
                },
                &msg.block.message_type,
                &rfc3339(now),
                "acknowledgement",
                "{\"status\":\"SUCCESS\"}",
            )),
            Err(e) => {
                tracing::warn!(error = %e, "Call Home event not stored");
                Answer::Unavailable(
                    "the satellite cannot store this message now; retry later".into(),
                )
            }
        }
    }

    async fn register(
        &self,
        raw_payload: &str,
        signature: &str,
        p: message::RegisterPayload,
        now: DateTime<Utc>,
    ) -> Result<ResponsePayload, AppError> {
        let key = match VerifyingKey::from_spki_pem(&p.public_key) {
            Ok(k) => k,
            Err(e) => return Ok(failed(ErrorCode::Malformed, format!("public_key: {e}"))),
        };
        if key.verify_b64(raw_payload.as_bytes(), signature).is_err() {
            return Ok(failed(
                ErrorCode::BadSignature,
                "signature does not verify with the presented public key",
            ));
        }
        if let Some(r) = skew(&p.common, now) {
            return Ok(r);
        }
        let sudi = &p.common.sudi;
        let cert =
            match self
                .ca
                .issue_id_cert(&sudi.udi_pid, &sudi.udi_serial_number, &p.public_key, now)
            {
                Ok(c) => c,
                Err(e) => {
                    return Ok(failed(
                        ErrorCode::Malformed,
                        format!("cannot certify this key: {e}"),
                    ))
                }
            };
        let chain = self.ca.ca_chain_pem();
        let track = self.tracks_changes();
        self.ctx
            .store
            .write(move |c| register_tx(c, &p, cert, chain, now, track))
            .await
    }

    async fn registered(
        &self,
        kind: MessageType,
        raw_payload: &str,
        signature: &str,
        payload: RequestPayload,
        now: DateTime<Utc>,
    ) -> Result<ResponsePayload, AppError> {
        let common = payload.common().clone();
        let (pid, serial) = (
            common.sudi.udi_pid.clone(),
            common.sudi.udi_serial_number.clone(),
        );
        let found = self
            .ctx
            .store
            .read_quick(move |c| Ok::<_, AppError>(instances::find(c, &pid, &serial)?))
            .await?;
        let Some(inst) = found else {
            return Ok(failed(
                ErrorCode::NotRegistered,
                "this device is not registered with this satellite",
            ));
        };
        let verified = VerifyingKey::from_spki_pem(&inst.public_key)
            .map(|k| k.verify_b64(raw_payload.as_bytes(), signature).is_ok())
            .unwrap_or(false);
        if !verified {
            return Ok(failed(
                ErrorCode::BadSignature,
                "signature does not verify with the registered key",
            ));
        }
        if let Some(r) = skew(&common, now) {
            return Ok(r);
        }
        if kind != MessageType::Deregister
            && compliance::registration_expired(inst.last_renewed_at, now)
        {
            return Ok(failed(
                ErrorCode::NotRegistered,
                format!(
                    "registration expired on {}; register again with a token",
                    rfc3339(compliance::registration_expires(inst.last_renewed_at))
                ),
            ));
        }
        let cert = if kind == MessageType::RenewId {
            match self
                .ca
                .issue_id_cert(&inst.udi_pid, &inst.udi_serial, &inst.public_key, now)
            {
                Ok(c) => Some(c),
                Err(e) => return Err(AppError::Internal(format!("certificate issue failed: {e}"))),
            }
        } else {
            None
        };
        // Only a renewal answers with the chain; an authorize need not copy it.
        let chain = if kind == MessageType::RenewId {
            self.ca.ca_chain_pem()
        } else {
            Vec::new()
        };
        let key = inst.public_key.clone();
        let track = self.tracks_changes();
        self.ctx
            .store
            .write(move |c| {
                // The device may have been removed or re-keyed since the read above.
                let Some(inst) = instances::find(c, &inst.udi_pid, &inst.udi_serial)?
                    .filter(|i| i.public_key == key)
                else {
                    return Ok(failed(
                        ErrorCode::NotRegistered,
                        "this device is not registered with this satellite",
                    ));
                };
                if !instances::claim_nonce(c, &inst.udi_serial, &common.nonce, now)? {
                    return Ok(failed(ErrorCode::Replay, "this nonce was already used"));
                }
                match payload {
                    RequestPayload::RenewId(_) => match cert {
                        Some(cert) => renew_tx(c, &inst, &common, cert, chain, now),
                        None => Err(AppError::Internal("renewal without a certificate".into())),
                    },
                    RequestPayload::Authorize(a) => authorize_tx(c, &inst, &a, now),
                    RequestPayload::Deregister(_) => {
                        if track {
                            if let Some(va) = accounts::va_by_id(c, inst.va_id)? {
                                sync_store::record_change(
                                    c,
                                    "removed",
                                    &va.account,
                                    &va.name,
                                    Some(&inst.udi_pid),
                                    Some(&inst.udi_serial),
                                    Some("deregistered by the device"),
                                    now,
                                )?;
                            }
                        }
                        instances::delete(c, inst.id)?;
                        event(
                            c,
                            &inst.udi_pid,
                            &inst.udi_serial,
                            "deregister",
                            "deregistered; licenses returned to the pool",
                            now,
                        )?;
                        Ok(ResponsePayload::success())
                    }
                    RequestPayload::Register(_) => {
                        Err(AppError::Internal("register routed as registered".into()))
                    }
                }
            })
            .await
    }
}

/// `FOX...` from a Call Home message id like `1004:TXX12345678:478F82E6`.
fn serial_from_message_id(id: &str) -> Option<String> {
    let mut parts = id.split(':');
    let _ = parts.next()?;
    let s = parts.next()?;
    (!s.is_empty() && s.len() <= 64).then(|| s.to_string())
}

fn skew(p: &CommonPayload, now: DateTime<Utc>) -> Option<ResponsePayload> {
    let diff = (now.timestamp_millis() - p.timestamp).abs();
    (diff > MAX_SKEW.num_milliseconds()).then(|| {
        failed(
            ErrorCode::ClockSkew,
            format!(
                "message time differs from the satellite's clock ({}) by {} s; allowed: {} s",
                rfc3339(now),
                diff / 1000,
                MAX_SKEW.num_seconds()
            ),
        )
    })
}

fn event(
    c: &Connection,
    pid: &str,
    serial: &str,
    kind: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    instances::insert_event(
        c,
        &NewEvent {
            udi_pid: Some(pid),
            udi_serial: Some(serial),
            kind: "smart-licensing",
            message_type: kind,
            message_id: "",
            detail,
        },
        now,
    )?;
    Ok(())
}

fn identity(
    resp: &mut ResponsePayload,
    account: String,
    va: String,
    export_controlled: bool,
    cert: IssuedCert,
    chain: Vec<String>,
    renewed: DateTime<Utc>,
) {
    resp.smart_account = Some(account);
    resp.virtual_account = Some(va);
    resp.export_controlled = Some(export_controlled);
    resp.id_cert = Some(cert.pem);
    resp.ca_chain = Some(chain);
    resp.registration_expires = Some(rfc3339(compliance::registration_expires(renewed)));
    resp.next_renewal = Some(rfc3339(compliance::next_renewal(renewed)));
}

fn register_tx(
    c: &Connection,
    p: &message::RegisterPayload,
    cert: IssuedCert,
    chain: Vec<String>,
    now: DateTime<Utc>,
    track: bool,
) -> Result<ResponsePayload, AppError> {
    let Some(token) = tokens::find(c, &p.id_token)? else {
        return Ok(failed(
            ErrorCode::TokenInvalid,
            "registration token not known to this satellite",
        ));
    };
    match token.state(now) {
        TokenState::Active => {}
        TokenState::Revoked => {
            return Ok(failed(
                ErrorCode::TokenRevoked,
                "registration token was revoked",
            ))
        }
        TokenState::Expired => {
            return Ok(failed(
                ErrorCode::TokenExpired,
                format!(
                    "registration token expired on {}",
                    rfc3339(token.expires_at)
                ),
            ))
        }
        TokenState::Exhausted => {
            return Ok(failed(
                ErrorCode::TokenExhausted,
                "registration token has been used its maximum number of times",
            ))
        }
    }
    let va = accounts::va_by_id(c, token.va_id)?
        .ok_or_else(|| AppError::Internal("token without a virtual account".into()))?;
    let account = accounts::account_by_id(c, va.account_id)?
        .ok_or_else(|| AppError::Internal("virtual account without an account".into()))?;
    if account.eula_accepted_at.is_none() {
        return Ok(failed(
            ErrorCode::EulaNotAccepted,
            format!(
                "the Smart Software Licensing Agreement has not been accepted for {}",
                account.name
            ),
        ));
    }
    let sudi = &p.common.sudi;
    if !instances::claim_nonce(c, &sudi.udi_serial_number, &p.common.nonce, now)? {
        return Ok(failed(ErrorCode::Replay, "this nonce was already used"));
    }
    instances::upsert_registration(
        c,
        &Registration {
            udi_pid: &sudi.udi_pid,
            udi_serial: &sudi.udi_serial_number,
            hostname: p.common.hostname.as_deref(),
            software_version: p.common.software_version.as_deref(),
            va_id: va.id,
            public_key: &p.public_key,
            export_controlled: token.export_controlled,
            token_id: Some(token.id),
            id_cert_serial: &cert.serial_hex,
            id_cert_not_after: cert.not_after,
        },
        now,
    )?;
    tokens::record_use(c, token.id)?;
    if track {
        sync_store::record_change(
            c,
            "registered",
            &account.name,
            &va.name,
            Some(&sudi.udi_pid),
            Some(&sudi.udi_serial_number),
            None,
            now,
        )?;
    }
    event(
        c,
        &sudi.udi_pid,
        &sudi.udi_serial_number,
        "register",
        &format!(
            "registered to {}/{} with token#{}",
            account.name, va.name, token.id
        ),
        now,
    )?;
    let mut resp = ResponsePayload::success();
    identity(
        &mut resp,
        account.name,
        va.name,
        token.export_controlled,
        cert,
        chain,
        now,
    );
    Ok(resp)
}

fn renew_tx(
    c: &Connection,
    inst: &Instance,
    common: &CommonPayload,
    cert: IssuedCert,
    chain: Vec<String>,
    now: DateTime<Utc>,
) -> Result<ResponsePayload, AppError> {
    instances::record_renewal(c, inst.id, &cert.serial_hex, cert.not_after, now)?;
    instances::touch(
        c,
        inst.id,
        common.hostname.as_deref(),
        common.software_version.as_deref(),
        now,
    )?;
    event(
        c,
        &inst.udi_pid,
        &inst.udi_serial,
        "renew_id",
        "ID certificate renewed",
        now,
    )?;
    let va = accounts::va_by_id(c, inst.va_id)?
        .ok_or_else(|| AppError::Internal("instance without a virtual account".into()))?;
    let mut resp = ResponsePayload::success();
    identity(
        &mut resp,
        va.account,
        va.name,
        inst.export_controlled,
        cert,
        chain,
        now,
    );
    Ok(resp)
}

fn authorize_tx(
    c: &Connection,
    inst: &Instance,
    a: &message::AuthorizePayload,
    now: DateTime<Utc>,
) -> Result<ResponsePayload, AppError> {
    let usage: Vec<(String, i64)> = a
        .entitlements
        .iter()
        .map(|e| (e.tag.clone(), i64::from(e.count)))
        .collect();
    instances::replace_usage(c, inst.id, inst.va_id, &usage)?;
    instances::touch(
        c,
        inst.id,
        a.common.hostname.as_deref(),
        a.common.software_version.as_deref(),
        now,
    )?;
    let va = crate::app::compliance::va_compliance(c, inst.va_id, now)?;
    let usage_u: Vec<(String, u64)> = usage
        .iter()
        .map(|(t, n)| (t.clone(), (*n).max(0) as u64))
        .collect();
    let view = compliance::instance_view(&usage_u, &va, now, now);
    let grace = SiaGrace {
        used_seconds: inst.sia_grace_used_seconds,
        ooc_since: inst.sia_ooc_since,
    }
    .step(now, view.sia_out_of_compliance.is_some());
    instances::set_authorized(c, inst.id, now, grace.used_seconds, grace.ooc_since)?;
    let in_compliance = view.sia_out_of_compliance.is_none();
    let mut resp = ResponsePayload::success();
    resp.authorization = Some(Authorization {
        status: view.overall.as_str().to_string(),
        next_communication: rfc3339(compliance::next_communication(now)),
        communication_deadline: rfc3339(view.communication_deadline),
        entitlements: view
            .entitlements
            .iter()
            .map(|e| EntitlementStatus {
                tag: e.tag.clone(),
                description: e.description.clone(),
                count: u32::try_from(e.count).unwrap_or(u32::MAX),
                status: e.status.as_str().to_string(),
            })
            .collect(),
        sia: SiaStatus {
            status: if in_compliance {
                status::IN_COMPLIANCE
            } else {
                status::OUT_OF_COMPLIANCE
            }
            .to_string(),
            reason: view.sia_out_of_compliance.map(|r| r.as_str().to_string()),
            grace_remaining_seconds: grace.remaining_seconds(now),
            upgrades_allowed: grace.upgrades_allowed(now, in_compliance),
        },
    });
    Ok(resp)
}
