//! The admin console: server-rendered pages on the console listener, sessions and CSRF.
//! Pages only call the application services; they never touch SQL or decide permissions alone.

pub mod accounts;
pub mod alerts;
pub mod assets;
pub mod audit;
pub mod chart;
pub mod dashboard;
pub mod devices;
pub mod licenses;
pub mod reports;
pub mod routers;
pub mod sessions;
pub mod settings;
pub mod sync;
pub mod tokens;
pub mod trends;
pub mod users;

use crate::api::error::{public_message, status_of};
use crate::app::sessions::ActiveSession;
use crate::domain::roles::{Permission, Principal};
use crate::error::AppError;
use crate::server::AppState;
use crate::storage::accounts::Account;
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use maud::{html, Markup, DOCTYPE};
use std::future::Future;
use std::pin::Pin;

/// Largest form body a console page accepts.
pub const FORM_LIMIT: usize = 64 * 1024;

/// A larger form limit for one route, set with `app_data` on its resource.
#[derive(Clone, Copy)]
pub struct FormLimit(pub usize);

/// Scripts and styles come only from this binary, and nothing may frame the console.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Registers the console's pages and the session hook the API uses.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::new(
        sessions::api_session as crate::api::auth::SessionResolver,
    ))
    .route("/assets/console.css", web::get().to(assets::css))
    .route("/assets/console.js", web::get().to(assets::js))
    .route("/login", web::get().to(sessions::login_page))
    .route("/login", web::post().to(sessions::login))
    .route("/logout", web::post().to(sessions::logout))
    .route("/password", web::get().to(sessions::password_page))
    .route("/password", web::post().to(sessions::change_password))
    .route("/", web::get().to(dashboard::page))
    .route("/accounts", web::get().to(accounts::page))
    .route("/accounts", web::post().to(accounts::create_account))
    .route("/accounts/va", web::post().to(accounts::create_va))
    .route("/accounts/eula", web::post().to(accounts::accept_eula))
    .route("/licenses", web::get().to(licenses::page))
    .route("/licenses/transfer", web::post().to(licenses::transfer))
    .route("/tokens", web::get().to(tokens::page))
    .route("/tokens", web::post().to(tokens::create))
    .route("/tokens/revoke", web::post().to(tokens::revoke))
    .route("/devices", web::get().to(devices::list))
    .route("/devices/transfer", web::post().to(devices::transfer))
    .route("/devices/remove", web::post().to(devices::remove))
    .route("/devices/{pid}/{serial}", web::get().to(devices::detail))
    .route("/routers", web::get().to(routers::page))
    .route("/reports", web::get().to(reports::page))
    .route(
        "/reports/licenses.csv",
        web::get().to(reports::licenses_csv),
    )
    .route("/reports/devices.csv", web::get().to(reports::devices_csv))
    .route("/reports/usage.csv", web::get().to(reports::usage_csv))
    .route("/audit", web::get().to(audit::page))
    .route("/trends", web::get().to(trends::page))
    .route("/users", web::get().to(users::page))
    .route("/users", web::post().to(users::add_user))
    .route("/users/clients", web::post().to(users::create_client))
    .route("/users/disable", web::post().to(users::disable_user))
    .route("/users/enable", web::post().to(users::enable_user))
    .route("/users/delete", web::post().to(users::delete_user))
    .route(
        "/users/clients/revoke",
        web::post().to(users::revoke_client),
    )
    .route("/settings", web::get().to(settings::page))
    .route("/settings/schedule", web::post().to(settings::set_schedule))
    .service(
        // A certificate chain and key are larger than other forms.
        web::resource("/settings/certificate")
            .app_data(FormLimit(settings::CERT_FORM_LIMIT))
            .route(web::post().to(settings::replace_certificate)),
    )
    .route("/alerts", web::get().to(alerts::page))
    .route("/alerts/notifications", web::post().to(alerts::save))
    .route("/alerts/test", web::post().to(alerts::test))
    .route("/sync", web::get().to(sync::page))
    .route("/sync/run", web::post().to(sync::run_now))
    .route("/sync/export", web::post().to(sync::export))
    .route("/sync/enroll", web::post().to(sync::enroll))
    .route("/sync/authority.pem", web::get().to(sync::authority_key))
    .service(
        // Sync files are far larger than forms; only this route reads such a body.
        web::resource("/sync/import")
            .app_data(web::PayloadConfig::new(sync::import_limit()))
            .route(web::post().to(sync::import)),
    );
}

/// Why a console request did not get its page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("sign in to continue")]
    NeedLogin,
    #[error(
        "this form has expired or did not come from this console; reload the page and try again"
    )]
    Csrf,
    #[error("{0}")]
    Throttled(String),
    #[error("{0}")]
    BadRequest(String),
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::App(e) => status_of(e),
            ConsoleError::NeedLogin => StatusCode::SEE_OTHER,
            ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let ConsoleError::NeedLogin = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/login"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
        }
        let message = match self {
            ConsoleError::App(e) => {
                if status.is_server_error() {
                    tracing::error!(error = %e, "console request failed");
                }
                public_message(e)
            }
            other => other.to_string(),
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let body = bare_page(
            title,
            html! {
                main.narrow {
                    h1 { (status.as_u16()) " " (title) }
                    p.error { (message) }
                    p { a href="/" { "Back to the dashboard" } }
                }
            },
        );
        let mut r = HttpResponse::build(status);
        if status == StatusCode::TOO_MANY_REQUESTS {
            r.insert_header((header::RETRY_AFTER, "900"));
        }
        with_page_headers(&mut r).body(body.into_string())
    }
}

fn with_page_headers(
    r: &mut actix_web::HttpResponseBuilder,
) -> &mut actix_web::HttpResponseBuilder {
    r.content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::CACHE_CONTROL, "no-store"))
}

/// A rendered page with the console's headers.
pub fn respond(markup: Markup) -> HttpResponse {
    with_page_headers(&mut HttpResponse::Ok()).body(markup.into_string())
}

/// After a successful POST: back to a page with GET, so a reload does not repeat it.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

pub fn state_of(req: &HttpRequest) -> ConsoleResult<web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::Internal("application state missing".into()).into())
}

/// A signed-in user; extracting it sends everyone else to the login page.
pub struct Signed(pub ActiveSession);

impl Signed {
    pub fn principal(&self) -> &Principal {
        &self.0.principal
    }
}

impl FromRequest for Signed {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Signed, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = state_of(req);
        let id = sessions::session_cookie(req);
        Box::pin(async move {
            let state = state?;
            let id = id.ok_or(ConsoleError::NeedLogin)?;
            match crate::app::sessions::resolve(&state.ctx, &id).await? {
                Some(s) => Ok(Signed(s)),
                None => Err(ConsoleError::NeedLogin),
            }
        })
    }
}

/// A submitted form's fields in order; repeated names are kept.
#[derive(Clone, Debug, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A field that must be present and not blank.
    pub fn required(&self, name: &str, label: &str) -> ConsoleResult<String> {
        match self.get(name).map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(ConsoleError::BadRequest(format!("{label} is required"))),
        }
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_empty())
    }
}

/// Comparison whose time does not depend on where the inputs differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A POSTed form from a signed-in user whose hidden CSRF field matched the session.
pub struct Posted {
    pub session: ActiveSession,
    pub form: FormData,
}

impl Posted {
    pub fn principal(&self) -> &Principal {
        &self.session.principal
    }
}

impl FromRequest for Posted {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Posted, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let signed = Signed::from_request(req, payload);
        let limit = req.app_data::<FormLimit>().map_or(FORM_LIMIT, |l| l.0);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let Signed(session) = signed.await?;
            let body = body
                .await
                .map_err(|e| ConsoleError::BadRequest(format!("unreadable form: {e}")))?;
            if body.len() > limit {
                return Err(ConsoleError::BadRequest("form too large".into()));
            }
            let form = FormData::parse(&body);
            match form.get("csrf") {
                Some(t) if same_secret(t, &session.csrf_token) => Ok(Posted { session, form }),
                _ => Err(ConsoleError::Csrf),
            }
        })
    }
}

/// A non-form POST (a file sent by the console's script) from a signed-in user whose
/// `X-CSRF-Token` header matched the session.
pub struct HeaderPosted(pub ActiveSession);

impl FromRequest for HeaderPosted {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<HeaderPosted, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let signed = Signed::from_request(req, payload);
        let header = req
            .headers()
            .get(sessions::CSRF_HEADER)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        Box::pin(async move {
            let Signed(session) = signed.await?;
            match header {
                Some(t) if same_secret(&t, &session.csrf_token) => Ok(HeaderPosted(session)),
                _ => Err(ConsoleError::Csrf),
            }
        })
    }
}

/// Query-string text from pairs, each value encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Encodes one path segment (PIDs and serials go into device links).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The accounts the user may read and the one a page is about: the requested one,
/// else the first. An account the user may not read is reported as not found.
pub async fn pick_account(
    state: &AppState,
    who: &Principal,
    requested: Option<&str>,
) -> ConsoleResult<(Vec<Account>, Option<Account>)> {
    let all = crate::app::accounts::list_accounts(&state.ctx, who).await?;
    let chosen = match requested.map(str::trim).filter(|s| !s.is_empty()) {
        Some(name) => Some(
            all.iter()
                .find(|a| a.name == name)
                .cloned()
                .ok_or_else(|| AppError::NotFound(format!("smart account {name:?} not found")))?,
        ),
        None => all.first().cloned(),
    };
    Ok((all, chosen))
}

pub fn can_write(who: &Principal, account: &Account) -> bool {
    who.can(Permission::WriteAccount, Some(account.id))
}

pub fn is_admin(who: &Principal) -> bool {
    who.can(Permission::Administer, None)
}

/// The hidden field every POST form carries.
pub fn csrf_field(session: &ActiveSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token); }
}

/// A GET form that switches the page to another account.
pub fn account_picker(path: &str, accounts: &[Account], chosen: Option<&Account>) -> Markup {
    html! {
        form.picker method="get" action=(path) {
            label { "Smart account "
                select name="account" {
                    @for a in accounts {
                        option value=(a.name) selected[chosen.is_some_and(|c| c.id == a.id)] { (a.name) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
    }
}

/// Fixed notices a page shows after a redirect; the query carries only the code.
pub fn notice(code: Option<&str>) -> Markup {
    let text = match code {
        Some("eula") => "The Smart Software Licensing Agreement is accepted for this account.",
        Some("account") => "Smart account created.",
        Some("va") => "Virtual account created.",
        Some("transfer") => "Licenses transferred.",
        Some("revoked") => "Token revoked.",
        Some("moved") => "Product instances transferred.",
        Some("removed") => "Product instances removed; their licenses are back in the pool.",
        Some("password") => "Password changed; your other sessions were signed out.",
        Some("user") => "User added.",
        Some("client-revoked") => "API client revoked; its access tokens stopped working.",
        Some("user-disabled") => "User disabled; their sessions were signed out.",
        Some("user-enabled") => "User enabled; they may sign in again.",
        Some("user-deleted") => "User deleted.",
        Some("certificate") => {
            "Certificate replaced: new connections to the console and the device HTTPS listener get it now."
        }
        Some("schedule") => "Sync schedule saved; the scheduler follows it from now on.",
        _ => return html! {},
    };
    html! { p.notice role="status" { (text) } }
}

pub fn status_badge(status: &str) -> Markup {
    let class = match status {
        "AUTHORIZED" | "ACTIVE" | "IN_COMPLIANCE" => "ok",
        "OUT_OF_COMPLIANCE" | "NOT_AUTHORIZED" | "INVALID" => "bad",
        _ => "warn",
    };
    html! { span class={ "badge " (class) } { (status) } }
}

pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · satellite" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body { (body) }
        }
    }
}

/// The page frame for signed-in users: navigation, who is signed in, logout.
pub fn layout(session: &ActiveSession, active: &str, title: &str, content: Markup) -> Markup {
    let who = &session.principal;
    let mut nav = vec![
        ("/", "Dashboard"),
        ("/accounts", "Accounts"),
        ("/licenses", "Licenses"),
        ("/tokens", "Tokens"),
        ("/devices", "Product instances"),
        ("/routers", "Configure routers"),
        ("/reports", "Reports"),
        ("/alerts", "Alerts"),
    ];
    if who.can(Permission::Read, None) {
        nav.push(("/sync", "Sync"));
    }
    if is_admin(who) {
        nav.push(("/users", "Users"));
        nav.push(("/audit", "Audit log"));
        nav.push(("/settings", "Settings"));
    }
    bare_page(
        title,
        html! {
            header.top {
                span.brand { "satellite" }
                nav {
                    @for (href, label) in &nav {
                        a href=(href) class=[(*href == active).then_some("active")] { (label) }
                    }
                }
                div.user {
                    span { (who.name) " (" (who.role.as_str()) ")" }
                    a href="/password" { "Password" }
                    form method="post" action="/logout" {
                        (csrf_field(session))
                        button.link type="submit" { "Sign out" }
                    }
                }
            }
            main {
                h1 { (title) }
                (content)
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_keep_repeated_fields_and_decode_values() {
        let f = FormData::parse(b"csrf=a%2Bb&d=x&d=y+z&empty=");
        assert_eq!(f.get("csrf"), Some("a+b"));
        assert_eq!(f.all("d"), vec!["x", "y z"]);
        assert!(!f.checked("empty"));
        assert!(f.required("empty", "Empty").is_err());
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("N540X-8Z16G-SYS-A"), "N540X-8Z16G-SYS-A");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
