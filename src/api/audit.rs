//! `GET /api/v1/audit`: the audit trail the console's audit page shows, for scripts.

use super::auth::Caller;
use super::error::ApiResult;
use crate::app::audit;
use crate::server::AppState;
use actix_web::{web, HttpResponse};
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct AuditQuery {
    /// Text the actor, action or target contains.
    q: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    let limit = q.limit.unwrap_or(100).clamp(1, audit::MAX_PAGE);
    let offset = q.offset.unwrap_or(0).max(0);
    let rows = audit::list(&state.ctx, &caller.0, q.q.as_deref(), limit, offset).await?;
    let entries: Vec<_> = rows
        .iter()
        .map(|e| {
            json!({
                "at": e.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "status": "SUCCESS",
        "entries": entries,
        "limit": limit,
        "offset": offset,
    })))
}
