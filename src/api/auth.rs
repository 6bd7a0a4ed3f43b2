//! Who is calling the API: a bearer token from `/oauth/token`, or a console session.
//! Extraction only; what the caller may do is decided by the services.

use super::error::ApiError;
use crate::app::principals::principal_for_bearer;
use crate::domain::roles::Principal;
use crate::error::AppError;
use crate::server::AppState;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::Future;
use std::pin::Pin;

/// The authenticated caller of a request.
pub struct Caller(pub Principal);

/// Console sessions register a resolver here so the API accepts them too.
pub type SessionResolver =
    fn(&HttpRequest) -> Option<Pin<Box<dyn Future<Output = Option<Principal>>>>>;

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let bearer = req
            .headers()
            .get("Authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| {
                let (scheme, rest) = h.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| rest.trim().to_string())
            });
        let session = req
            .app_data::<web::Data<SessionResolver>>()
            .and_then(|resolve| (resolve.get_ref())(req));
        Box::pin(async move {
            let state =
                state.ok_or_else(|| AppError::Internal("application state missing".into()))?;
            if let Some(token) = bearer {
                return Ok(Caller(principal_for_bearer(&state.ctx, &token).await?));
            }
            if let Some(fut) = session {
                if let Some(p) = fut.await {
                    return Ok(Caller(p));
                }
            }
            Err(AppError::Unauthorized(
                "authentication required: send a bearer token from /oauth/token, or a console \
                 session cookie (with its X-CSRF-Token header on anything but GET)"
                    .into(),
            )
            .into())
        })
    }
}
