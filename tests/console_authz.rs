//! Every console page and action against every kind of user on a real satellite: nobody
//! signed in, viewers in and out of the account's scope, account-admins of this account and
//! of another, operators and system-admins. Each action is sent with a valid session and
//! CSRF token and a plausible form, so only the role decides. A scan of the console's route
//! registrations makes a new route without a row here fail the test.

mod common;
#[path = "common/console_http.rs"]
mod console_http;

use common::*;
use console_http::*;

const ACC: &str = "Acme";
const OTHER: &str = "Other";
const PASSWORD: &str = "matrix-password-123";

/// What a route needs, in the terms of the role rules.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Access {
    /// Served to anyone (login, assets).
    Public,
    /// Any signed-in user.
    Signed,
    /// Reading what belongs to no account (sync state): not for account-admins.
    SystemRead,
    /// Reading the `Acme` account.
    Read,
    /// Changing the `Acme` account.
    Write,
    /// Changing the system.
    Admin,
}

/// One route as registered (`pattern`), the request that exercises it and its form.
struct Row {
    method: &'static str,
    pattern: &'static str,
    request: &'static str,
    access: Access,
    form: &'static [(&'static str, &'static str)],
}

const fn row(
    method: &'static str,
    pattern: &'static str,
    request: &'static str,
    access: Access,
    form: &'static [(&'static str, &'static str)],
) -> Row {
    Row {
        method,
        pattern,
        request,
        access,
        form,
    }
}

use Access::*;

/// `/logout` ends the session, so it is sent last for each user.
const ROUTES: &[Row] = &[
    row(
        "GET",
        "/assets/console.css",
        "/assets/console.css",
        Public,
        &[],
    ),
    row(
        "GET",
        "/assets/console.js",
        "/assets/console.js",
        Public,
        &[],
    ),
    row("GET", "/login", "/login", Public, &[]),
    row("POST", "/login", "/login", Public, &[]),
    row("GET", "/password", "/password", Signed, &[]),
    row(
        "POST",
        "/password",
        "/password",
        Signed,
        &[
            ("current", "not-the-password"),
            ("new", "another-password-456"),
            ("confirm", "another-password-456"),
        ],
    ),
    row("GET", "/", "/", Signed, &[]),
    row("GET", "/accounts", "/accounts", Signed, &[]),
    row(
        "POST",
        "/accounts",
        "/accounts",
        Admin,
        &[("name", "Matrix Corp")],
    ),
    row(
        "POST",
        "/accounts/va",
        "/accounts/va",
        Admin,
        &[("account", ACC), ("name", "MATRIX")],
    ),
    row(
        "POST",
        "/accounts/eula",
        "/accounts/eula",
        Write,
        &[("account", ACC)],
    ),
    row("GET", "/licenses", "/licenses?account=Acme", Read, &[]),
    row(
        "POST",
        "/licenses/transfer",
        "/licenses/transfer",
        Write,
        &[
            ("account", ACC),
            ("from", "CORE"),
            ("tag", "ESS-AC-100G-RTU-1"),
            ("quantity", "1"),
            ("to", "LAB"),
        ],
    ),
    row("GET", "/tokens", "/tokens?account=Acme", Read, &[]),
    row(
        "POST",
        "/tokens",
        "/tokens",
        Write,
        &[("account", ACC), ("va", "CORE"), ("days", "30")],
    ),
    row(
        "POST",
        "/tokens/revoke",
        "/tokens/revoke",
        Write,
        &[("account", ACC), ("va", "CORE"), ("token", "no-such-token")],
    ),
    row("GET", "/devices", "/devices?account=Acme", Read, &[]),
    row(
        "POST",
        "/devices/transfer",
        "/devices/transfer",
        Write,
        &[
            ("account", ACC),
            ("pid", "NCS-5501"),
            ("serial", "FOC0000MTRX"),
            ("va", "LAB"),
        ],
    ),
    row(
        "POST",
        "/devices/remove",
        "/devices/remove",
        Write,
        &[
            ("account", ACC),
            ("pid", "NCS-5501"),
            ("serial", "FOC0000MTRX"),
        ],
    ),
    row(
        "GET",
        "/devices/{pid}/{serial}",
        "/devices/NCS-5501/FOC0000MTRX?account=Acme",
        Read,
        &[],
    ),
    row("GET", "/routers", "/routers?account=Acme", Read, &[]),
    row("GET", "/reports", "/reports?account=Acme", Read, &[]),
    row(
        "GET",
        "/reports/licenses.csv",
        "/reports/licenses.csv?account=Acme",
        Read,
        &[],
    ),
    row(
        "GET",
        "/reports/devices.csv",
        "/reports/devices.csv?account=Acme",
        Read,
        &[],
    ),
    row(
        "GET",
        "/reports/usage.csv",
        "/reports/usage.csv?account=Acme",
        Read,
        &[],
    ),
    row("GET", "/audit", "/audit", Admin, &[]),
    row("GET", "/trends", "/trends?account=Acme", Read, &[]),
    row("GET", "/users", "/users", Admin, &[]),
    row(
        "POST",
        "/users",
        "/users",
        Admin,
        &[
            ("name", "matrix-user"),
            ("role", "viewer"),
            ("password", "a-new-user-password-1"),
            ("confirm", "a-new-user-password-1"),
        ],
    ),
    row(
        "POST",
        "/users/clients",
        "/users/clients",
        Admin,
        &[("name", "matrix-client"), ("role", "viewer")],
    ),
    row(
        "POST",
        "/users/clients/revoke",
        "/users/clients/revoke",
        Admin,
        &[("client_id", "no-such-client")],
    ),
    row(
        "POST",
        "/users/disable",
        "/users/disable",
        Admin,
        &[("name", "no-such-user")],
    ),
    row(
        "POST",
        "/users/enable",
        "/users/enable",
        Admin,
        &[("name", "no-such-user")],
    ),
    row(
        "POST",
        "/users/delete",
        "/users/delete",
        Admin,
        &[("name", "no-such-user")],
    ),
    row("GET", "/alerts", "/alerts", Signed, &[]),
    row(
        "POST",
        "/alerts/notifications",
        "/alerts/notifications",
        Admin,
        &[("webhook_url", "")],
    ),
    row(
        "POST",
        "/alerts/test",
        "/alerts/test",
        Admin,
        &[("channel", "webhook")],
    ),
    row("GET", "/settings", "/settings", Admin, &[]),
    row(
        "POST",
        "/settings/schedule",
        "/settings/schedule",
        Admin,
        &[("sync_schedule", "0 0 3 * * *")],
    ),
    row(
        "POST",
        "/settings/certificate",
        "/settings/certificate",
        Admin,
        &[
            (
                "certificate",
                "-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n",
            ),
            ("private_key", "not a key"),
        ],
    ),
    row("GET", "/sync", "/sync", SystemRead, &[]),
    row("POST", "/sync/run", "/sync/run", Admin, &[]),
    row("POST", "/sync/export", "/sync/export", Admin, &[]),
    row(
        "POST",
        "/sync/enroll",
        "/sync/enroll",
        Admin,
        &[
            ("account", ACC),
            ("name", "matrix-satellite"),
            ("va", "CORE"),
        ],
    ),
    row(
        "GET",
        "/sync/authority.pem",
        "/sync/authority.pem",
        SystemRead,
        &[],
    ),
    // Sent as the console's script sends it: the file as the body, the token in a header.
    row("POST", "/sync/import", "/sync/import", Admin, &[]),
    row("POST", "/logout", "/logout", Signed, &[]),
];

/// Who asks: a name, a role and the accounts the user is limited to.
struct User {
    name: &'static str,
    role: &'static str,
    accounts: &'static [&'static str],
}

const USERS: &[User] = &[
    User {
        name: "viewer",
        role: "viewer",
        accounts: &[],
    },
    User {
        name: "other-viewer",
        role: "viewer",
        accounts: &[OTHER],
    },
    User {
        name: "acme-admin",
        role: "account-admin",
        accounts: &[ACC],
    },
    User {
        name: "other-admin",
        role: "account-admin",
        accounts: &[OTHER],
    },
    User {
        name: "operator",
        role: "operator",
        accounts: &[],
    },
    User {
        name: "sysadmin",
        role: "system-admin",
        accounts: &[],
    },
];

/// Whether the user may, and whether a refusal may hide the account (404) instead of 403.
fn verdict(u: &User, access: Access) -> (bool, bool) {
    let in_scope = u.accounts.is_empty() || u.accounts.contains(&ACC);
    let allowed = match (access, u.role) {
        (Public | Signed, _) => true,
        (_, "system-admin") => true,
        (SystemRead, "viewer" | "operator") => true,
        (Read, "viewer" | "operator") => in_scope,
        (Read | Write, "account-admin") => u.accounts.contains(&ACC),
        (Write, "operator") => true,
        _ => false,
    };
    // An account outside the user's scope is reported as not found, like a missing one.
    let may_hide = !in_scope || (u.role == "account-admin" && !u.accounts.contains(&ACC));
    (allowed, may_hide)
}

/// (method, pattern) of every route the console registers, read from its source.
fn registered_routes() -> Vec<(String, String)> {
    let src = include_str!("../src/console/mod.rs");
    let start = src
        .find("pub fn configure")
        .expect("configure in console/mod.rs");
    let body = &src[start..];
    let end = body.find("\n}\n").unwrap_or(body.len());
    let body = &body[..end];
    let mut out = Vec::new();
    let mut rest = body;
    // Each `.route("/path", web::get()...)` or `web::resource("/path") ... .route(web::post()...)`.
    while let Some(at) = rest.find("\"/") {
        let after = &rest[at + 1..];
        let close = after.find('"').expect("closing quote");
        let path = after[..close].to_string();
        let tail = &after[close..];
        let method = ["get", "post", "put", "delete"]
            .iter()
            .filter_map(|m| tail.find(&format!("web::{m}()")).map(|i| (i, *m)))
            .min()
            .map(|(_, m)| m.to_uppercase())
            .expect("a method after each route path");
        out.push((method, path));
        rest = &after[close + 1..];
    }
    out
}

#[test]
fn every_console_route_has_a_row_in_the_matrix() {
    let routes = registered_routes();
    assert!(routes.len() >= 30, "found only {} routes", routes.len());
    for (method, path) in &routes {
        assert!(
            ROUTES
                .iter()
                .any(|r| r.method == method && r.pattern == path),
            "console route {method} {path} has no row in the role matrix"
        );
    }
    for r in ROUTES {
        assert!(
            routes.iter().any(|(m, p)| m == r.method && p == r.pattern),
            "matrix row {} {} is not a console route any more",
            r.method,
            r.pattern
        );
    }
}

async fn send(
    s: &Server,
    c: &reqwest::Client,
    session: Option<&str>,
    csrf: &str,
    r: &Row,
) -> reqwest::Response {
    let url = s.console_url(r.request);
    let mut req = if r.method == "GET" {
        c.get(url)
    } else if r.pattern == "/sync/import" {
        c.post(url)
            .header("X-CSRF-Token", csrf)
            .header("Content-Type", "application/zip")
            .body(b"PK\x03\x04 not really a sync file".to_vec())
    } else {
        let mut fields: Vec<(&str, &str)> = r.form.to_vec();
        fields.push(("csrf", csrf));
        c.post(url).form(&fields)
    };
    if let Some(id) = session {
        req = req.header("Cookie", format!("{SESSION_COOKIE}={id}"));
    }
    req.send().await.unwrap()
}

fn to_login(r: &reqwest::Response) -> bool {
    r.status() == 303
        && r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|l| l == "/login")
}

#[tokio::test]
async fn each_user_reaches_exactly_its_console_pages_and_actions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_account(&data, ACC, "CORE");
    ok(&data, &["va", "create", ACC, "LAB"]);
    seed_account(&data, OTHER, "EDGE");
    for u in USERS {
        add_user(&data, u.name, u.role, PASSWORD, u.accounts);
    }
    let s = Spawn::new(&data).start();
    let c = raw_client(&s);

    // Nobody signed in: everything but the public routes leads to the login page.
    let mut checked = 0;
    for r in ROUTES {
        let resp = send(&s, &c, None, "no-session", r).await;
        let what = format!("anonymous {} {}", r.method, r.request);
        assert!(resp.status().as_u16() < 500, "{what}: {}", resp.status());
        if r.access == Public {
            assert!(!to_login(&resp), "{what}: sent to the login page");
        } else {
            assert!(
                to_login(&resp),
                "{what}: {} instead of /login",
                resp.status()
            );
        }
        checked += 1;
    }

    for u in USERS {
        let session = session_of(&s, &c, u.name, PASSWORD).await;
        let (st, html) = get_page(&s, &c, &session, "/password").await;
        assert_eq!(st, 200, "{} reads its password page", u.name);
        let csrf = csrf_in(&html);
        for r in ROUTES {
            let resp = send(&s, &c, Some(&session), &csrf, r).await;
            let status = resp.status().as_u16();
            let what = format!("{} ({}) {} {}", u.name, u.role, r.method, r.request);
            assert!(status < 500, "{what}: server error {status}");
            if r.access == Public {
                checked += 1;
                continue;
            }
            if r.pattern == "/logout" {
                // Signing out ends on the login page, and the session is gone.
                assert!(to_login(&resp), "{what}: {status}");
                assert_eq!(get_page(&s, &c, &session, "/").await.0, 303, "{what}");
                checked += 1;
                continue;
            }
            assert!(!to_login(&resp), "{what}: session not accepted");
            let (allowed, may_hide) = verdict(u, r.access);
            if allowed {
                assert!(
                    status != 401 && status != 403,
                    "{what}: refused with {status}"
                );
            } else if may_hide {
                assert!(
                    status == 403 || status == 404,
                    "{what}: allowed with {status}"
                );
            } else {
                assert_eq!(status, 403, "{what}");
            }
            checked += 1;
        }
    }
    // The viewer's refused writes left nothing behind; the system admin's did happen.
    let users = ok(&data, &["user", "list"]);
    assert!(users.contains("matrix-user"), "{users}");
    assert_eq!(
        ok(&data, &["account", "list"])
            .matches("Matrix Corp")
            .count(),
        1
    );
    assert!(checked >= ROUTES.len() * (USERS.len() + 1));
}
