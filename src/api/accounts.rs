//! Account, virtual account, EULA and token routes (CSSM-shaped, camelCase).

use super::auth::Caller;
use super::error::ApiResult;
use crate::app::{accounts, tokens};
use crate::domain::tokens::{Token, TokenSpec};
use crate::error::AppError;
use crate::server::AppState;
use actix_web::{web, HttpResponse};
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameBody {
    name: String,
}

pub async fn list_accounts(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let list = accounts::list_accounts(&state.ctx, &caller.0).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|a| {
            json!({
                "accountName": a.name,
                "eulaAccepted": a.eula_accepted_at.is_some(),
                "eulaAcceptedAt": a.eula_accepted_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "accounts": items, "totalRecords": items.len()})))
}

pub async fn create_account(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NameBody>,
) -> ApiResult<HttpResponse> {
    let a = accounts::create_account(&state.ctx, &caller.0, &body.name).await?;
    Ok(HttpResponse::Created().json(json!({"status": "SUCCESS", "accountName": a.name})))
}

pub async fn list_vas(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let vas = accounts::list_vas(&state.ctx, &caller.0, &path).await?;
    let items: Vec<Value> = vas.iter().map(|v| json!({"name": v.name})).collect();
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "virtualAccounts": items, "totalRecords": items.len()})))
}

pub async fn create_va(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<NameBody>,
) -> ApiResult<HttpResponse> {
    let v = accounts::create_va(&state.ctx, &caller.0, &path, &body.name).await?;
    Ok(HttpResponse::Created()
        .json(json!({"status": "SUCCESS", "accountName": v.account, "name": v.name})))
}

pub async fn accept_eula(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let a = accounts::accept_eula(&state.ctx, &caller.0, &path).await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "SUCCESS",
        "accountName": a.name,
        "eulaAcceptedAt": a.eula_accepted_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
    })))
}

pub fn token_json(t: &Token, now: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "token": t.token,
        "expirationDate": t.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "description": t.description,
        "exportControlled": if t.export_controlled { "Allowed" } else { "Not Allowed" },
        "createdBy": t.created_by,
        "creationDate": t.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "maxUses": t.max_uses,
        "uses": t.uses,
        "status": t.state(now).as_str(),
        "virtualAccount": t.virtual_account,
        "revokedDate": t.revoked_at.map(|r| r.to_rfc3339_opts(SecondsFormat::Secs, true)),
    })
}

pub async fn list_tokens(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (account, va) = path.into_inner();
    let list = tokens::list(&state.ctx, &caller.0, &account, Some(&va)).await?;
    let now = state.ctx.clock.now();
    let items: Vec<Value> = list.iter().map(|t| token_json(t, now)).collect();
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "tokens": items, "totalRecords": items.len()})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenBody {
    description: Option<String>,
    expires_after_days: Option<i64>,
    export_controlled: Option<String>,
    max_uses: Option<i64>,
}

fn parse_export_controlled(v: Option<&str>) -> Result<bool, AppError> {
    match v.map(str::trim) {
        None | Some("Not Allowed") | Some("NotAllowed") | Some("false") => Ok(false),
        Some("Allowed") | Some("true") => Ok(true),
        Some(o) => Err(AppError::Invalid(format!(
            "exportControlled must be \"Allowed\" or \"Not Allowed\" (got {o:?})"
        ))),
    }
}

pub async fn create_token(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<CreateTokenBody>,
) -> ApiResult<HttpResponse> {
    let (account, va) = path.into_inner();
    let b = body.into_inner();
    let spec = TokenSpec::parse(
        b.expires_after_days,
        b.max_uses,
        parse_export_controlled(b.export_controlled.as_deref())?,
        b.description.as_deref(),
    )?;
    let t = tokens::create(&state.ctx, &caller.0, &account, &va, spec).await?;
    let now = state.ctx.clock.now();
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "statusMessage": "", "tokenInfo": token_json(&t, now)})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    tokens: Vec<String>,
}

pub async fn revoke_tokens(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<RevokeBody>,
) -> ApiResult<HttpResponse> {
    let (account, va) = path.into_inner();
    let revoked = tokens::revoke(
        &state.ctx,
        &caller.0,
        &account,
        Some(&va),
        body.into_inner().tokens,
    )
    .await?;
    let now = state.ctx.clock.now();
    let items: Vec<Value> = revoked.iter().map(|t| token_json(t, now)).collect();
    Ok(HttpResponse::Ok().json(json!({"status": "SUCCESS", "tokens": items})))
}
