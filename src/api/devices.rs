//! Device routes: paged listing with status, removal and transfer (CSSM-shaped).

use super::auth::Caller;
use super::error::ApiResult;
use crate::app::devices::{self, DeviceView, SudiRef};
use crate::server::AppState;
use actix_web::{web, HttpResponse};
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListBody {
    #[serde(default)]
    virtual_accounts: Vec<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    /// Prefix of a serial number, PID or hostname.
    search: Option<String>,
}

pub fn device_json(d: &DeviceView) -> Value {
    let i = &d.instance;
    let t = |x: chrono::DateTime<chrono::Utc>| x.to_rfc3339_opts(SecondsFormat::Secs, true);
    json!({
        "sudi": {"udiPid": i.udi_pid, "udiSerialNumber": i.udi_serial},
        "hostname": i.hostname,
        "softwareVersion": i.software_version,
        "virtualAccount": d.virtual_account,
        "status": d.compliance.overall.as_str(),
        "lastContact": t(i.last_contact_at),
        "registrationDate": t(i.registered_at),
        "registrationExpires": t(crate::domain::compliance::registration_expires(i.last_renewed_at)),
        "certificateExpires": t(i.id_cert_not_after),
        "exportControlled": i.export_controlled,
        "siaStatus": d.compliance.sia_out_of_compliance.map(|r| r.as_str()).unwrap_or("IN_COMPLIANCE"),
        "licenses": d.compliance.entitlements.iter().map(|e| json!({
            "license": e.tag, "description": e.description, "quantity": e.count,
            "status": e.status.as_str(), "reason": e.why,
        })).collect::<Vec<_>>(),
    })
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Option<web::Json<ListBody>>,
) -> ApiResult<HttpResponse> {
    let b = body.map(|b| b.into_inner()).unwrap_or_default();
    let page = devices::list(
        &state.ctx,
        &caller.0,
        &path,
        b.virtual_accounts,
        b.search,
        b.limit.unwrap_or(50),
        b.offset.unwrap_or(0),
    )
    .await?;
    let items: Vec<Value> = page.devices.iter().map(device_json).collect();
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "devices": items, "totalRecords": page.total})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SudiBody {
    udi_pid: String,
    udi_serial_number: String,
}

#[derive(Deserialize)]
pub struct SudiHolder {
    sudi: SudiBody,
}

fn refs(v: Vec<SudiHolder>) -> Vec<SudiRef> {
    v.into_iter()
        .map(|h| SudiRef {
            pid: h.sudi.udi_pid,
            serial: h.sudi.udi_serial_number,
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveBody {
    product_instance_remove_requests: Vec<SudiHolder>,
}

pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<RemoveBody>,
) -> ApiResult<HttpResponse> {
    let n = devices::remove(
        &state.ctx,
        &caller.0,
        &path,
        refs(body.into_inner().product_instance_remove_requests),
    )
    .await?;
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "statusMessage": format!("{n} device(s) removed")})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferBody {
    devices: Vec<SudiHolder>,
    target_virtual_account: String,
}

pub async fn transfer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<TransferBody>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let n = devices::transfer(
        &state.ctx,
        &caller.0,
        &path,
        refs(b.devices),
        &b.target_virtual_account,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "statusMessage": format!("{n} device(s) transferred")})))
}

#[derive(Deserialize)]
pub struct DetailQuery {
    /// How many of the latest events to include (default 50, at most 500).
    events: Option<i64>,
}

/// One product instance with its licenses and latest events, as the console's detail page.
pub async fn detail(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
    q: web::Query<DetailQuery>,
) -> ApiResult<HttpResponse> {
    let (account, pid, serial) = path.into_inner();
    let d = devices::detail(
        &state.ctx,
        &caller.0,
        &account,
        SudiRef { pid, serial },
        q.events.unwrap_or(50),
    )
    .await?;
    let events: Vec<Value> = d
        .events
        .iter()
        .map(|e| {
            json!({
                "receivedAt": e.received_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "kind": e.kind,
                "messageType": e.message_type,
                "messageId": e.message_id,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "device": device_json(&d.device), "events": events})))
}
