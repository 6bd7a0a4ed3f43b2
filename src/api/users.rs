//! Console users and API clients over REST, for system admins (the same rules as the console).
//! A generated password or a client secret appears once, in the creating answer; never again.

use super::auth::Caller;
use super::error::ApiResult;
use crate::app::{accounts, principals};
use crate::domain::roles::Role;
use crate::server::AppState;
use crate::storage::principals::{ApiClient, User};
use actix_web::{web, HttpResponse};
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Account names of a scope; an id no longer readable shows as `#id`.
pub fn scope(ids: &[i64], names: &HashMap<i64, String>) -> Vec<String> {
    ids.iter()
        .map(|id| names.get(id).cloned().unwrap_or_else(|| format!("#{id}")))
        .collect()
}

/// A user as the API and `user list --format json` show it.
pub fn user_json(u: &User, names: &HashMap<i64, String>) -> Value {
    json!({
        "name": u.name,
        "role": u.role.as_str(),
        "accounts": scope(&u.accounts, names),
        "disabled": u.disabled,
    })
}

/// An API client as the API and `api-client list --format json` show it.
pub fn client_json(k: &ApiClient, names: &HashMap<i64, String>) -> Value {
    json!({
        "clientId": k.client_id,
        "name": k.name,
        "role": k.role.as_str(),
        "accounts": scope(&k.accounts, names),
        "createdAt": k.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "revoked": k.revoked,
    })
}

pub async fn list_users(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let users = principals::list_users(&state.ctx, &caller.0).await?;
    let names = accounts::names_by_id(&state.ctx, &caller.0).await?;
    let items: Vec<Value> = users.iter().map(|u| user_json(u, &names)).collect();
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "users": items, "totalRecords": items.len()})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUserBody {
    name: String,
    role: String,
    /// When absent a password is generated and returned once.
    password: Option<String>,
    #[serde(default)]
    accounts: Vec<String>,
}

pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NewUserBody>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let role = Role::parse(&b.role)?;
    let (password, generated) = match b.password {
        Some(p) => (p, false),
        None => (
            crate::auth::random_token(18)
                .map_err(|e| crate::error::AppError::Internal(e.to_string()))?,
            true,
        ),
    };
    let u =
        principals::add_user(&state.ctx, &caller.0, &b.name, role, &password, b.accounts).await?;
    let names = accounts::names_by_id(&state.ctx, &caller.0).await?;
    let mut answer = json!({"status": "SUCCESS", "user": user_json(&u, &names)});
    if generated {
        answer["password"] = json!(password);
    }
    Ok(HttpResponse::Created().json(answer))
}

async fn set_disabled(
    state: web::Data<AppState>,
    caller: Caller,
    name: String,
    disabled: bool,
) -> ApiResult<HttpResponse> {
    let u = principals::set_user_disabled(&state.ctx, &caller.0, &name, disabled).await?;
    let names = accounts::names_by_id(&state.ctx, &caller.0).await?;
    Ok(HttpResponse::Ok().json(json!({"status": "SUCCESS", "user": user_json(&u, &names)})))
}

pub async fn disable_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    set_disabled(state, caller, path.into_inner(), true).await
}

pub async fn enable_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    set_disabled(state, caller, path.into_inner(), false).await
}

pub async fn delete_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    principals::delete_user(&state.ctx, &caller.0, &path).await?;
    Ok(HttpResponse::Ok().json(json!({"status": "SUCCESS", "name": path.into_inner()})))
}

pub async fn list_clients(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let clients = principals::list_api_clients(&state.ctx, &caller.0).await?;
    let names = accounts::names_by_id(&state.ctx, &caller.0).await?;
    let items: Vec<Value> = clients.iter().map(|k| client_json(k, &names)).collect();
    Ok(HttpResponse::Ok()
        .json(json!({"status": "SUCCESS", "apiClients": items, "totalRecords": items.len()})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewClientBody {
    name: String,
    role: String,
    #[serde(default)]
    accounts: Vec<String>,
}

pub async fn create_client(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NewClientBody>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let role = Role::parse(&b.role)?;
    let created =
        principals::create_api_client(&state.ctx, &caller.0, &b.name, role, b.accounts).await?;
    let names = accounts::names_by_id(&state.ctx, &caller.0).await?;
    Ok(HttpResponse::Created().json(json!({
        "status": "SUCCESS",
        "apiClient": client_json(&created.client, &names),
        "clientSecret": created.secret,
    })))
}

pub async fn revoke_client(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    principals::revoke_api_client(&state.ctx, &caller.0, &path).await?;
    Ok(HttpResponse::Ok().json(json!({"status": "SUCCESS", "clientId": path.into_inner()})))
}
