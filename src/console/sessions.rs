//! Sign-in, sign-out, password change, the session cookie, login throttling and the hook
//! that lets the API accept a console session. Never logs a password, session id or CSRF token.

use super::{
    bare_page, csrf_field, layout, notice, respond, same_secret, see_other, state_of, ConsoleError,
    ConsoleResult, FormData, Posted, Signed,
};
use crate::app::sessions as app_sessions;
use crate::auth::random_token;
use crate::domain::roles::Principal;
use crate::error::AppError;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// `__Host-` makes the browser insist on Secure, Path=/ and no Domain.
pub const SESSION_COOKIE: &str = "__Host-satellite";
/// Carries the login form's CSRF value before there is a session (double submit).
pub const LOGIN_COOKIE: &str = "__Host-satellite-login";
/// Header that non-GET API calls made with a session cookie must carry.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Bounds the throttle's memory when someone sprays user names or addresses.
const MAX_TRACKED: usize = 50_000;

pub fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

fn cookie(name: &str, value: String) -> Cookie<'static> {
    Cookie::build(name.to_string(), value)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish()
}

fn expired_cookie(name: &str) -> Cookie<'static> {
    let mut c = cookie(name, String::new());
    c.make_removal();
    c
}

/// Recent failed sign-ins per user name and per client address, in memory. One table
/// for the whole process (the console runs several workers), lost at restart by design.
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

static THROTTLE: LazyLock<LoginThrottle> = LazyLock::new(LoginThrottle::new);

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new()
    }
}

impl LoginThrottle {
    pub fn new() -> LoginThrottle {
        LoginThrottle {
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long until the first of `keys` that is locked out may try again.
    pub fn blocked(&self, keys: &[String], now: Instant) -> Option<Duration> {
        let mut t = self.table();
        keys.iter()
            .filter_map(|k| {
                let q = t.get_mut(k)?;
                while q
                    .front()
                    .is_some_and(|f| now.duration_since(*f) >= FAILURE_WINDOW)
                {
                    q.pop_front();
                }
                (q.len() >= MAX_FAILURES)
                    .then(|| q.front().map(|f| FAILURE_WINDOW - now.duration_since(*f)))
                    .flatten()
            })
            .max()
    }

    pub fn failed(&self, keys: &[String], now: Instant) {
        let mut t = self.table();
        if t.len() >= MAX_TRACKED {
            t.retain(|_, q| {
                q.back()
                    .is_some_and(|l| now.duration_since(*l) < FAILURE_WINDOW)
            });
        }
        if t.len() >= MAX_TRACKED {
            return;
        }
        for k in keys {
            let q = t.entry(k.clone()).or_default();
            q.push_back(now);
            while q.len() > MAX_FAILURES {
                q.pop_front();
            }
        }
    }

    pub fn clear(&self, key: &str) {
        self.table().remove(key);
    }
}

fn user_key(name: &str) -> String {
    format!("user:{}", name.trim().to_lowercase())
}

fn ip_key(req: &HttpRequest) -> String {
    // The peer address, not a forwarding header: the console is reached directly.
    format!(
        "ip:{}",
        req.peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "unknown".into())
    )
}

fn login_form(token: &str, name: &str, error: Option<&str>) -> maud::Markup {
    bare_page(
        "Sign in",
        html! {
            main.narrow {
                h1 { "satellite" }
                p.muted { "Smart Licensing for IOS XR routers" }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form.stack method="post" action="/login" {
                    input type="hidden" name="csrf" value=(token);
                    label { "User name" input name="username" autocomplete="username" required value=(name); }
                    label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                    button.primary type="submit" id="sign-in" { "Sign in" }
                }
            }
        },
    )
}

fn login_response(
    status: actix_web::http::StatusCode,
    name: &str,
    error: Option<&str>,
) -> ConsoleResult<HttpResponse> {
    let token = random_token(32).map_err(|e| AppError::Internal(e.to_string()))?;
    let page = login_form(&token, name, error);
    let mut r = respond(page);
    *r.status_mut() = status;
    r.add_cookie(&cookie(LOGIN_COOKIE, token))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(r)
}

pub async fn login_page(req: HttpRequest) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    if let Some(id) = session_cookie(&req) {
        if app_sessions::resolve(&state.ctx, &id).await?.is_some() {
            return Ok(see_other("/"));
        }
    }
    login_response(actix_web::http::StatusCode::OK, "", None)
}

pub async fn login(req: HttpRequest, body: web::Bytes) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let form = FormData::parse(&body);
    let expected = req.cookie(LOGIN_COOKIE).map(|c| c.value().to_string());
    match (form.get("csrf"), expected) {
        (Some(sent), Some(exp)) if !exp.is_empty() && same_secret(sent, &exp) => {}
        _ => return Err(ConsoleError::Csrf),
    }
    let name = form.get("username").unwrap_or("").trim().to_string();
    let password = form.get("password").unwrap_or("");
    let keys = [user_key(&name), ip_key(&req)];
    let now = Instant::now();
    if let Some(wait) = THROTTLE.blocked(&keys, now) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return Err(ConsoleError::Throttled(format!(
            "Too many failed sign-ins for this user name or from this address. \
             Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        )));
    }
    match crate::app::principals::login(&state.ctx, &name, password).await {
        Ok(principal) => {
            THROTTLE.clear(&keys[0]);
            let replaces = session_cookie(&req);
            let s = app_sessions::start(&state.ctx, &principal, replaces.as_deref()).await?;
            let mut r = see_other("/");
            r.add_cookie(&cookie(SESSION_COOKIE, s.id))
                .and_then(|_| r.add_cookie(&expired_cookie(LOGIN_COOKIE)))
                .map_err(|e| AppError::Internal(e.to_string()))?;
            Ok(r)
        }
        Err(AppError::Unauthorized(msg)) => {
            THROTTLE.failed(&keys, now);
            tracing::warn!(user = %name, peer = %keys[1], "console sign-in failed");
            login_response(actix_web::http::StatusCode::UNAUTHORIZED, &name, Some(&msg))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn logout(req: HttpRequest, posted: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    app_sessions::end(&state.ctx, &posted.session).await?;
    let mut r = see_other("/login");
    r.add_cookie(&expired_cookie(SESSION_COOKIE))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(r)
}

fn password_form(s: &Signed, error: Option<&str>, done: Option<&str>) -> maud::Markup {
    layout(
        &s.0,
        "/password",
        "Change password",
        html! {
            (notice(done))
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.stack.narrow method="post" action="/password" {
                (csrf_field(&s.0))
                label { "Current password" input type="password" name="current" autocomplete="current-password" required; }
                label { "New password (at least " (crate::auth::MIN_PASSWORD_LEN) " characters)"
                    input type="password" name="new" autocomplete="new-password" required minlength=(crate::auth::MIN_PASSWORD_LEN); }
                label { "New password again" input type="password" name="confirm" autocomplete="new-password" required; }
                button.primary type="submit" { "Change password" }
            }
        },
    )
}

#[derive(serde::Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn password_page(s: Signed, q: web::Query<DoneQuery>) -> HttpResponse {
    respond(password_form(&s, None, q.done.as_deref()))
}

pub async fn change_password(req: HttpRequest, posted: Posted) -> ConsoleResult<HttpResponse> {
    let state = state_of(&req)?;
    let f = &posted.form;
    let (current, new) = (f.get("current").unwrap_or(""), f.get("new").unwrap_or(""));
    let signed = Signed(posted.session.clone());
    let fail = |msg: &str| {
        let mut r = respond(password_form(&signed, Some(msg), None));
        *r.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
        r
    };
    if Some(new) != f.get("confirm") {
        return Ok(fail("The new passwords do not match."));
    }
    match app_sessions::change_password(&state.ctx, &posted.session, current, new).await {
        Ok(_) => Ok(see_other("/password?done=password")),
        Err(AppError::Unauthorized(_)) => Ok(fail("The current password is not correct.")),
        Err(AppError::Invalid(m)) => Ok(fail(&m)),
        Err(e) => Err(e.into()),
    }
}

/// The API's session hook. GET and HEAD calls are accepted on the cookie alone; any
/// other method also needs the session's CSRF token in `X-CSRF-Token`, because a
/// browser attaches the cookie to requests other sites make it send.
pub fn api_session(req: &HttpRequest) -> Option<Pin<Box<dyn Future<Output = Option<Principal>>>>> {
    let id = session_cookie(req)?;
    let state = state_of(req).ok()?;
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    let header = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    Some(Box::pin(async move {
        let s = app_sessions::resolve(&state.ctx, &id).await.ok()??;
        if !safe && !header.is_some_and(|h| same_secret(&h, &s.csrf_token)) {
            return None;
        }
        Some(s.principal)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_a_key_for_the_window() {
        let t = LoginThrottle::new();
        let keys = [user_key("Admin"), "ip:10.0.0.1".to_string()];
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            t.failed(&keys, t0);
        }
        assert!(t.blocked(&keys, t0).is_none());
        t.failed(&keys, t0);
        assert!(t.blocked(&[user_key("admin")], t0).is_some());
        assert!(t.blocked(&["ip:10.0.0.1".into()], t0).is_some());
        assert!(t.blocked(&[user_key("other")], t0).is_none());
        assert!(t.blocked(&keys, t0 + FAILURE_WINDOW).is_none());
        t.clear(&keys[0]);
        assert!(t.blocked(&[keys[0].clone()], t0).is_none());
    }
}
