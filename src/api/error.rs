//! The one place where application errors become HTTP answers:
//! `{"status":"ERROR","statusMessage":...}` with a fitting code. The cause is logged here once.

use crate::error::AppError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError(pub AppError);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

pub fn status_of(e: &AppError) -> StatusCode {
    match e {
        AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Storage(s) if s.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Storage(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What the client is told: internal details stay in the log.
pub fn public_message(e: &AppError) -> String {
    match e {
        AppError::Storage(s) if s.is_retryable() => {
            "the database is temporarily unavailable; retry later".into()
        }
        AppError::Storage(_) | AppError::Internal(_) => "internal error; see the server log".into(),
        other => other.to_string(),
    }
}

pub fn error_body(status: StatusCode, message: &str) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        b.insert_header(("WWW-Authenticate", "Bearer"));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        b.insert_header(("Retry-After", "5"));
    }
    b.json(json!({"status": "ERROR", "statusMessage": message}))
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(&self.0)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self.0, "request failed");
        } else {
            tracing::debug!(error = %self.0, %status, "request refused");
        }
        error_body(status, &public_message(&self.0))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
