//! Per-request logging for both listeners: a random request id in a span, one line per request,
//! and the id returned as `X-Request-Id`. It never logs query strings, bodies or header values.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use std::time::Instant;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// Longest path kept in a log line; routers and scanners may send anything.
const MAX_LOGGED_PATH: usize = 256;

/// 16 hex digits. An id is only for finding lines again, so a failed random source
/// falls back to the clock rather than failing the request.
pub fn new_id() -> String {
    match crate::auth::random_bytes::<8>() {
        Ok(b) => hex::encode(b),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            format!("{nanos:016x}")
        }
    }
}

/// The path as logged: control characters replaced so a crafted path cannot forge lines,
/// and cut to a bounded length. The query string is never part of it.
pub fn loggable_path(path: &str) -> String {
    let mut out: String = path
        .chars()
        .take(MAX_LOGGED_PATH)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if path.chars().count() > MAX_LOGGED_PATH {
        out.push('…');
    }
    out
}

/// Wraps a whole `App`; register it last so it is outermost and sees every answer.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = new_id();
    let method = req.method().as_str().to_owned();
    let path = loggable_path(req.path());
    // Probes poll /healthz constantly; at info they would drown everything else.
    let quiet = req.path() == "/healthz";
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %path);
    let started = Instant::now();
    let result = next.call(req).instrument(span).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let status = match &result {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    // Emitted outside the span: the line carries every field once.
    if quiet {
        tracing::debug!(request_id = %id, method = %method, path = %path, status, duration_ms, "request");
    } else {
        tracing::info!(request_id = %id, method = %method, path = %path, status, duration_ms, "request");
    }
    let mut res = result?.map_into_boxed_body();
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(HEADER), v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test as awtest;
    use actix_web::{web, App, HttpResponse};

    #[test]
    fn ids_are_sixteen_hex_digits_and_differ() {
        let a = new_id();
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_id());
    }

    #[test]
    fn paths_lose_control_characters_and_length() {
        assert_eq!(loggable_path("/a\nb\r"), "/a?b?");
        let long = "/".repeat(1000);
        assert_eq!(loggable_path(&long).chars().count(), MAX_LOGGED_PATH + 1);
    }

    #[actix_web::test]
    async fn every_answer_carries_an_id() {
        let app = awtest::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(middleware))
                .route(
                    "/x",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                ),
        )
        .await;
        for uri in ["/x?secret=1", "/missing"] {
            let res =
                awtest::call_service(&app, awtest::TestRequest::get().uri(uri).to_request()).await;
            let id = res.headers().get(HEADER).unwrap().to_str().unwrap();
            assert_eq!(id.len(), 16, "{uri}");
        }
    }
}
