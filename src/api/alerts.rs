//! Alerts and notification settings: the current alerts, the SMTP and webhook targets
//! (never the SMTP password) and a test send.

use super::auth::Caller;
use super::error::ApiResult;
use crate::app::alerts;
use crate::app::notifications::{self, Channel, NotificationInput};
use crate::ops::notify;
use crate::server::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub async fn list(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let sources = state.alert_sources();
    let list = alerts::visible(&state.ctx, &caller.0, &sources).await?;
    Ok(HttpResponse::Ok().json(json!({"status": "SUCCESS", "alerts": list})))
}

pub async fn settings(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let view = notifications::view(&state.ctx, &caller.0).await?;
    Ok(HttpResponse::Ok().json(json!({"status": "SUCCESS", "notifications": view})))
}

pub async fn save(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NotificationInput>,
) -> ApiResult<HttpResponse> {
    let view = notifications::save(&state.ctx, &caller.0, body.into_inner()).await?;
    state.alerts.check_now();
    Ok(HttpResponse::Ok().json(json!({"status": "SUCCESS", "notifications": view})))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    channel: String,
}

pub async fn test(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<TestRequest>,
) -> ApiResult<HttpResponse> {
    let channel = Channel::parse(&body.channel)?;
    let outcome = notify::send_test(&state.ctx, &caller.0, channel).await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": if outcome.ok { "SUCCESS" } else { "FAILED" },
        "channel": outcome.channel,
        "ok": outcome.ok,
        "detail": outcome.detail,
    })))
}
