//! Settings routes: the certificate of the HTTPS listeners and the job schedules.
//! System administrators only; the services check that and apply each change.

use super::auth::Caller;
use super::error::ApiResult;
use crate::app::settings as app_settings;
use crate::server::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateBody {
    certificate: String,
    private_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulesBody {
    /// A cron schedule with seconds, or null to return to the configured one.
    sync: Option<String>,
}

pub async fn certificate(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let c = app_settings::certificate(&caller.0, &state.tls)?;
    Ok(HttpResponse::Ok().json(json!({"status": "SUCCESS", "certificate": c})))
}

pub async fn replace_certificate(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CertificateBody>,
) -> ApiResult<HttpResponse> {
    let c = app_settings::replace_certificate(
        &state.ctx,
        &caller.0,
        &state.tls,
        &body.certificate,
        &body.private_key,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "SUCCESS",
        "statusMessage": "certificate replaced; new connections get it now",
        "certificate": c,
    })))
}

pub async fn schedules(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let s = app_settings::schedules(&state.ctx, &caller.0, &state.sync_schedule)?;
    Ok(HttpResponse::Ok().json(json!({"status": "SUCCESS", "schedules": s})))
}

pub async fn set_schedules(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<SchedulesBody>,
) -> ApiResult<HttpResponse> {
    let s = app_settings::set_sync_schedule(
        &state.ctx,
        &caller.0,
        &state.sync_schedule,
        body.sync.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({"status": "SUCCESS", "schedules": s})))
}
