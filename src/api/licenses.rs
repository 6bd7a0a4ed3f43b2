//! License routes: the CSSM-shaped listing with compliance, and transfers between VAs.

use super::auth::Caller;
use super::error::ApiResult;
use crate::app::licenses::{self, LicenseLine, TransferItem};
use crate::domain::names::EntitlementTag;
use crate::server::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub const MAX_PAGE: usize = 1000;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListBody {
    #[serde(default)]
    virtual_accounts: Vec<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

pub fn line_json(l: &LicenseLine) -> Value {
    let t = &l.compliance;
    json!({
        "license": t.tag,
        "description": t.description,
        "virtualAccount": l.virtual_account,
        "quantity": t.available,
        "purchased": t.purchased,
        "transferredIn": t.transferred_in,
        "transferredOut": t.transferred_out,
        "inUse": t.in_use,
        "available": t.available.saturating_sub(t.in_use + t.substituted_to) as i64,
        "balance": t.available as i64 + t.covered_by_substitution as i64 - t.in_use as i64,
        "status": t.status.as_str(),
        "licenseType": match t.kind.as_str() { "sia" => "SIA", "tracking" => "TRACKING", _ => "RTU" },
        "substitutions": t.substituted_from.iter().map(|(tag, units)| json!({"license": tag, "quantity": units})).collect::<Vec<_>>(),
        "lentToLowerTier": t.substituted_to,
    })
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Option<web::Json<ListBody>>,
) -> ApiResult<HttpResponse> {
    let b = body.map(|b| b.into_inner()).unwrap_or_default();
    let lines = licenses::list(&state.ctx, &caller.0, &path, b.virtual_accounts).await?;
    let total = lines.len();
    let offset = b.offset.unwrap_or(0).min(total);
    let limit = b.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let page: Vec<Value> = lines[offset..].iter().take(limit).map(line_json).collect();
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "licenses": page, "totalRecords": total})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferLine {
    license: EntitlementTag,
    quantity: i64,
    target_virtual_account: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    licenses: Vec<TransferLine>,
}

pub async fn transfer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<TransferBody>,
) -> ApiResult<HttpResponse> {
    let (account, va) = path.into_inner();
    let items = body
        .into_inner()
        .licenses
        .into_iter()
        .map(|l| TransferItem {
            tag: l.license,
            quantity: l.quantity,
            target_va: l.target_virtual_account,
        })
        .collect();
    let n = licenses::transfer(&state.ctx, &caller.0, &account, &va, items).await?;
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "statusMessage": format!("{n} transfer(s) done")})))
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    days: Option<i64>,
}

pub async fn usage_history(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    q: web::Query<HistoryQuery>,
) -> ApiResult<HttpResponse> {
    let (account, va) = path.into_inner();
    let rows =
        licenses::usage_history(&state.ctx, &caller.0, &account, &va, q.days.unwrap_or(90)).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|s| json!({"date": s.day, "license": s.tag, "inUse": s.in_use, "quantity": s.available}))
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "usage": items, "totalRecords": items.len()})))
}
