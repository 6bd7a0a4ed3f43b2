//! `POST /oauth/token`: the client-credentials grant, from form fields or HTTP basic auth.

use super::error::{error_body, ApiResult};
use crate::app::principals::issue_access_token;
use crate::error::AppError;
use crate::server::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let h = req.headers().get("Authorization")?.to_str().ok()?;
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> ApiResult<HttpResponse> {
    let form = form.into_inner();
    if form.grant_type.as_deref() != Some("client_credentials") {
        // RFC 6749 names this error; scripts written for CSSM check for it.
        return Ok(HttpResponse::BadRequest().json(json!({
            "error": "unsupported_grant_type",
            "status": "ERROR",
            "statusMessage": "grant_type must be client_credentials"
        })));
    }
    let (id, secret) = match (form.client_id, form.client_secret) {
        (Some(i), Some(s)) => (i, s),
        _ => match basic_credentials(&req) {
            Some(pair) => pair,
            None => {
                return Ok(error_body(
                    StatusCode::UNAUTHORIZED,
                    "client_id and client_secret are required",
                ))
            }
        },
    };
    let lifetime = state.config.access_token_seconds;
    match issue_access_token(&state.ctx, &id, &secret, lifetime).await {
        Ok(t) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({
                "access_token": t.access_token,
                "token_type": "Bearer",
                "expires_in": t.expires_in,
            }))),
        Err(AppError::Unauthorized(m)) => Ok(error_body(StatusCode::UNAUTHORIZED, &m)),
        Err(e) => Err(e.into()),
    }
}
