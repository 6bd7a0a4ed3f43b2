//! The console spoken as a browser would, without one: login with the pre-session cookie,
//! pages by session cookie, forms with their CSRF field.
#![allow(dead_code)]

use super::{bin, install_provider, port_of, Server, ADMIN_PASSWORD};
use std::path::Path;
use std::process::{Command, Stdio};

pub const SESSION_COOKIE: &str = "__Host-satellite";

/// Adds a console user through the CLI, the password on standard input.
pub fn add_user(data: &Path, name: &str, role: &str, password: &str, accounts: &[&str]) {
    use std::io::Write;
    let mut cmd = Command::new(bin());
    cmd.arg("--data")
        .arg(data)
        .args(["user", "add", name, "--role", role, "--password-stdin"]);
    for a in accounts {
        cmd.args(["--account", a]);
    }
    let mut child = cmd
        .env("SATELLITE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An HTTPS client that trusts the server's certificate and does not follow redirects,
/// so the session cookie of a login answer can be read.
pub fn raw_client(s: &Server) -> reqwest::Client {
    install_provider();
    let pem = std::fs::read(s.data.join("tls/console.crt")).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .resolve(
            "localhost",
            format!("127.0.0.1:{}", port_of(&s.console))
                .parse()
                .unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The value of a hidden `csrf` field in a page.
pub fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("page has a csrf field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

pub fn cookie_value(header: &str) -> String {
    header
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

/// Posts the login form with the token of a freshly fetched login page.
pub async fn login_raw(
    s: &Server,
    c: &reqwest::Client,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let page = c.get(s.console_url("/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let pre = cookie_value(&set_cookie(&page, "__Host-satellite-login").expect("login cookie"));
    let html = page.text().await.unwrap();
    c.post(s.console_url("/login"))
        .header("Cookie", format!("__Host-satellite-login={pre}"))
        .form(&[
            ("csrf", csrf_in(&html).as_str()),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs in through the login form; Some(session) when the console let the user in.
pub async fn try_login(
    s: &Server,
    c: &reqwest::Client,
    user: &str,
    password: &str,
) -> Option<String> {
    let r = login_raw(s, c, user, password).await;
    (r.status() == 303)
        .then(|| set_cookie(&r, SESSION_COOKIE).map(|h| cookie_value(&h)))
        .flatten()
}

/// Signs in and returns the session cookie's value.
pub async fn session_of(s: &Server, c: &reqwest::Client, user: &str, password: &str) -> String {
    let r = login_raw(s, c, user, password).await;
    assert_eq!(r.status(), 303, "login of {user}");
    cookie_value(&set_cookie(&r, SESSION_COOKIE).expect("session cookie"))
}

pub async fn get_page(s: &Server, c: &reqwest::Client, session: &str, path: &str) -> (u16, String) {
    let r = c
        .get(s.console_url(path))
        .header("Cookie", format!("{SESSION_COOKIE}={session}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub async fn post_form(
    s: &Server,
    c: &reqwest::Client,
    session: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    c.post(s.console_url(path))
        .header("Cookie", format!("{SESSION_COOKIE}={session}"))
        .form(fields)
        .send()
        .await
        .unwrap()
}
