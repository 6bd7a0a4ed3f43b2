//! The REST API on the console listener, shaped like SSM On-Prem's and CSSM's.
//! Handlers parse, call one service and shape the answer; they decide nothing.

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod devices;
pub mod error;
pub mod licenses;
pub mod oauth;
pub mod openapi;
pub mod settings;
pub mod sync;
pub mod users;

use actix_web::{web, HttpRequest, HttpResponse};
use error::error_body;

/// Largest JSON body any API route accepts.
pub const JSON_LIMIT: usize = 1024 * 1024;

fn json_error(err: actix_web::error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let (status, msg) = match &err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => (
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {JSON_LIMIT} bytes"),
        ),
        E::ContentType => (
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json".to_string(),
        ),
        E::Deserialize(e) if e.is_data() => (
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid request body: {e}"),
        ),
        other => (
            actix_web::http::StatusCode::BAD_REQUEST,
            format!("unreadable request body: {other}"),
        ),
    };
    actix_web::error::InternalError::from_response(err, error_body(status, &msg)).into()
}

fn form_error(err: actix_web::error::UrlencodedError, _req: &HttpRequest) -> actix_web::Error {
    let msg = format!("unreadable form body: {err}");
    actix_web::error::InternalError::from_response(
        err,
        error_body(actix_web::http::StatusCode::BAD_REQUEST, &msg),
    )
    .into()
}

fn path_error(err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    let msg = format!("invalid path: {err}");
    actix_web::error::InternalError::from_response(
        err,
        error_body(actix_web::http::StatusCode::NOT_FOUND, &msg),
    )
    .into()
}

async fn not_found() -> HttpResponse {
    error_body(actix_web::http::StatusCode::NOT_FOUND, "no such API route")
}

/// Registers every API route. The table in `openapi::ROUTES` documents the same set;
/// a test walks it so the two cannot drift apart.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(JSON_LIMIT)
            .error_handler(json_error),
    )
    .app_data(
        web::FormConfig::default()
            .limit(64 * 1024)
            .error_handler(form_error),
    )
    .app_data(web::PathConfig::default().error_handler(path_error))
    .route("/oauth/token", web::post().to(oauth::token))
    .route("/api/openapi.json", web::get().to(openapi::document))
    .service(
        web::resource("/api/v1/sync")
            .app_data(web::PayloadConfig::new(sync::body_limit()))
            .route(web::post().to(sync::answer)),
    )
    .service(
        web::resource("/api/v1/sync/import")
            .app_data(web::PayloadConfig::new(sync::body_limit()))
            .route(web::post().to(sync::import)),
    )
    .service(
        web::scope("/api/v1")
            .route("/accounts", web::get().to(accounts::list_accounts))
            .route("/accounts", web::post().to(accounts::create_account))
            .route(
                "/accounts/{account}/virtual-accounts",
                web::get().to(accounts::list_vas),
            )
            .route(
                "/accounts/{account}/virtual-accounts",
                web::post().to(accounts::create_va),
            )
            .route(
                "/accounts/{account}/eula",
                web::post().to(accounts::accept_eula),
            )
            .route(
                "/accounts/{account}/virtual-accounts/{va}/tokens",
                web::get().to(accounts::list_tokens),
            )
            .route(
                "/accounts/{account}/virtual-accounts/{va}/tokens",
                web::post().to(accounts::create_token),
            )
            .route(
                "/accounts/{account}/virtual-accounts/{va}/tokens/revoke",
                web::post().to(accounts::revoke_tokens),
            )
            .route(
                "/accounts/{account}/licenses",
                web::post().to(licenses::list),
            )
            .route(
                "/accounts/{account}/licenses",
                web::get().to(licenses::list),
            )
            .route(
                "/accounts/{account}/virtual-accounts/{va}/licenses",
                web::post().to(licenses::purchase),
            )
            .route(
                "/accounts/{account}/virtual-accounts/{va}/licenses/transfer",
                web::post().to(licenses::transfer),
            )
            .route(
                "/accounts/{account}/virtual-accounts/{va}/usage-history",
                web::get().to(licenses::usage_history),
            )
            .route("/sync/status", web::get().to(sync::status))
            .route("/sync/export", web::post().to(sync::export))
            .route("/sync/now", web::post().to(sync::run_now))
            .route("/satellites", web::get().to(sync::satellites))
            .route("/satellites", web::post().to(sync::enroll))
            .route("/authority-key", web::get().to(sync::authority_key))
            .route("/audit", web::get().to(audit::list))
            .route("/users", web::get().to(users::list_users))
            .route("/users", web::post().to(users::create_user))
            .route("/users/{name}/disable", web::post().to(users::disable_user))
            .route("/users/{name}/enable", web::post().to(users::enable_user))
            .route("/users/{name}/delete", web::post().to(users::delete_user))
            .route("/api-clients", web::get().to(users::list_clients))
            .route("/api-clients", web::post().to(users::create_client))
            .route(
                "/api-clients/{client_id}/revoke",
                web::post().to(users::revoke_client),
            )
            .route(
                "/settings/certificate",
                web::get().to(settings::certificate),
            )
            .route(
                "/settings/certificate",
                web::post().to(settings::replace_certificate),
            )
            .route("/settings/schedules", web::get().to(settings::schedules))
            .route(
                "/settings/schedules",
                web::post().to(settings::set_schedules),
            )
            .route("/alerts", web::get().to(alerts::list))
            .route("/notifications", web::get().to(alerts::settings))
            .route("/notifications", web::post().to(alerts::save))
            .route("/notifications/test", web::post().to(alerts::test))
            .route("/accounts/{account}/devices", web::post().to(devices::list))
            .route("/accounts/{account}/devices", web::get().to(devices::list))
            .route(
                "/accounts/{account}/devices/{pid}/{serial}",
                web::get().to(devices::detail),
            )
            .route(
                "/accounts/{account}/devices/remove",
                web::post().to(devices::remove),
            )
            .route(
                "/accounts/{account}/devices/transfer",
                web::post().to(devices::transfer),
            )
            .default_service(web::to(not_found)),
    );
}
