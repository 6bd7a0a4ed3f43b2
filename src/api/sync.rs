//! Sync routes: the authority's `/api/v1/sync` (authenticated by the signed file itself)
//! and a satellite's status, export, import and run-now.

use super::auth::Caller;
use super::error::{error_body, ApiResult};
use crate::app::{require, sync as app_sync};
use crate::domain::roles::Permission;
use crate::server::AppState;
use crate::sync::archive::Limits;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// Largest sync file accepted over HTTP.
pub fn body_limit() -> usize {
    Limits::default().max_archive_bytes as usize
}

/// Authority: answers a request file with a response file. The caller is whoever holds
/// the enrolled satellite's key: the signature on the file is the credential.
pub async fn answer(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    if body.is_empty() {
        return error_body(
            StatusCode::UNAUTHORIZED,
            "a signed sync request file is required",
        );
    }
    match app_sync::answer(&state.ctx, &state.config.data_dir, body.to_vec()).await {
        Ok(bytes) => HttpResponse::Ok()
            .content_type("application/zip")
            .insert_header((
                "Content-Disposition",
                "attachment; filename=\"sync-response.zip\"",
            ))
            .body(bytes),
        Err(e) => super::error::ApiError(e).into_response(),
    }
}

pub async fn status(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    require(&caller.0, Permission::Read, None)?;
    let schedule = state.sync_schedule.cron();
    let next = schedule.after(&state.ctx.clock.now()).next();
    let mut s = app_sync::status(&state.ctx, Some(schedule)).await?;
    if !s.configured {
        s.alerts.clear();
    }
    Ok(HttpResponse::Ok().json(json!({
        "status": "SUCCESS",
        "sync": s,
        "nextRun": next.map(|t| t.to_rfc3339()),
    })))
}

pub async fn export(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    require(&caller.0, Permission::Administer, None)?;
    let bytes = app_sync::export(&state.ctx, &state.config.data_dir).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"sync-request.zip\"",
        ))
        .body(bytes))
}

pub async fn import(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    require(&caller.0, Permission::Administer, None)?;
    let r = app_sync::import(&state.ctx, &caller.0.name, body.to_vec()).await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "SUCCESS",
        "statusMessage": format!("imported response {}: {} virtual account(s), {} license line(s), {} change(s) acknowledged", r.sequence, r.virtual_accounts, r.licenses, r.changes_acknowledged),
    })))
}

pub async fn run_now(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    require(&caller.0, Permission::Administer, None)?;
    let r = crate::sync::online::sync_now(&state.ctx, &state.config.data_dir, &Default::default())
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "SUCCESS",
        "statusMessage": format!("synchronised: response {} with {} virtual account(s)", r.sequence, r.virtual_accounts),
    })))
}

pub async fn satellites(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let list = app_sync::satellites(&state.ctx, &caller.0).await?;
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "satellites": list, "totalRecords": list.len()})))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollBody {
    account: String,
    name: String,
    #[serde(default)]
    virtual_accounts: Vec<String>,
}

/// Authority: enroll a satellite; the one-time enrollment token is in this answer only.
pub async fn enroll(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<EnrollBody>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let e = app_sync::enroll_create(
        &state.ctx,
        &caller.0,
        &b.account,
        &b.name,
        b.virtual_accounts,
    )
    .await?;
    Ok(HttpResponse::Created().json(json!({
        "status": "SUCCESS",
        "satelliteId": e.satellite_id,
        "enrollmentToken": e.token,
        "virtualAccounts": e.virtual_accounts,
    })))
}

/// Authority: its public key (PEM) for satellites to pin.
pub async fn authority_key(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    require(&caller.0, Permission::Read, None)?;
    crate::app::require_authority(&state.ctx, "serving the authority key")?;
    let pem = app_sync::key_pair(&state.config.data_dir)?.public_key_pem();
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .body(pem))
}

impl super::error::ApiError {
    pub fn into_response(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}
