//! The console's only stylesheet and script, compiled into the binary.
//! Nothing is fetched from elsewhere: the console works on an isolated network.

use actix_web::http::header;
use actix_web::HttpResponse;

pub const CSS: &str = include_str!("console.css");
pub const JS: &str = include_str!("console.js");

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}

pub async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

pub async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}
