//! The TransportGateway routes on the device listeners: read the body within its bound,
//! hand it to the gateway service, and turn its answer into HTTP.

use super::callhome::MAX_BODY_BYTES;
use super::service::{Answer, Gateway};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};

pub const PATHS: [&str; 2] = [
    "/Transportgateway/services/DeviceRequestHandler",
    "/Transportgateway/services/RouterRequestHandler",
];

fn acceptable_type(req: &HttpRequest) -> bool {
    match req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        // Some agents omit the header; the body is parsed strictly either way.
        None => true,
        Some(v) => {
            let essence = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            matches!(
                essence.as_str(),
                "text/xml" | "application/xml" | "application/soap+xml"
            )
        }
    }
}

pub async fn device_request(
    gw: web::Data<Gateway>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if !acceptable_type(&req) {
        return HttpResponse::UnsupportedMediaType()
            .content_type("text/plain; charset=utf-8")
            .body("Content-Type must be text/xml or application/xml\n");
    }
    match gw.handle(&body).await {
        Answer::Reply(xml) => HttpResponse::Ok()
            .content_type("application/xml; charset=utf-8")
            .body(xml),
        Answer::Unreadable(reason) => HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body(format!("{reason}\n")),
        Answer::Unavailable(reason) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "30"))
            .content_type("text/plain; charset=utf-8")
            .body(format!("{reason}\n")),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Bigger bodies are refused with 413 before any parsing.
    cfg.app_data(web::PayloadConfig::new(MAX_BODY_BYTES));
    for p in PATHS {
        cfg.route(p, web::post().to(device_request));
    }
}
