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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PurchaseBody {
    license: EntitlementTag,
    quantity: i64,
    /// `RTU`, `SIA` or `TRACKING` (any case); default from the tag.
    license_type: Option<String>,
    description: Option<String>,
    /// RFC 3339 or YYYY-MM-DD.
    start_date: Option<String>,
    end_date: Option<String>,
}

fn parse_day_or_time(
    field: &str,
    v: &Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, crate::error::AppError> {
    let Some(s) = v.as_deref() else {
        return Ok(None);
    };
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.with_timezone(&chrono::Utc)))
        .map_err(|_| {
            crate::error::AppError::Invalid(format!("{field} must be YYYY-MM-DD or RFC 3339"))
        })
}

/// Authority: adds purchased licenses to a virtual account.
pub async fn purchase(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<PurchaseBody>,
) -> ApiResult<HttpResponse> {
    let (account, va) = path.into_inner();
    let b = body.into_inner();
    let kind = match b.license_type.as_deref().map(str::to_ascii_lowercase) {
        Some(k) => k,
        None => crate::domain::catalog::kind_of(b.license.as_str())
            .map(|k| k.as_str().to_string())
            .unwrap_or_else(|| "rtu".into()),
    };
    let spec = licenses::LicenseSpec {
        starts_at: parse_day_or_time("startDate", &b.start_date)?,
        ends_at: parse_day_or_time("endDate", &b.end_date)?,
        tag: b.license,
        description: b.description,
        kind,
        quantity: b.quantity,
    };
    let row = licenses::add(&state.ctx, &caller.0, &account, &va, spec).await?;
    Ok(HttpResponse::Created().json(json!({
        "status": "SUCCESS",
        "license": row.tag,
        "quantity": row.quantity,
        "licenseType": row.kind.to_ascii_uppercase(),
        "virtualAccount": va,
    })))
}
