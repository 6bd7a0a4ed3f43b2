//! Users and API clients over the REST API, the console and the CLI of a real satellite:
//! system-admins manage them, everyone else is refused, and the last admin stays.

mod common;
#[path = "common/console_http.rs"]
mod console_http;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::*;
use console_http::{csrf_in, get_page as page, raw_client, try_login as login};
use serde_json::{json, Value};

const ACC: &str = "Acme";

async fn oauth(s: &Server, id: &str, secret: &str) -> Result<String, u16> {
    let r = s
        .client()
        .post(s.console_url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return Err(r.status().as_u16());
    }
    let v: Value = r.json().await.unwrap();
    Ok(v["access_token"].as_str().unwrap().to_string())
}

fn audited(s: &Server, action: &str, target: &str) -> i64 {
    rusqlite::Connection::open(s.data.join("satellite.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = ?1 AND target = ?2",
            [action, target],
            |r| r.get(0),
        )
        .unwrap()
}

fn names(list: &Value) -> Vec<String> {
    list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_system_admin_adds_disables_enables_and_deletes_users_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    seed_account(dir.path(), ACC, "CORE");
    let s = Server::start(dir.path());
    let admin = bearer_scoped(&s, "root-client", "system-admin", &[]).await;
    let c = raw_client(&s);

    let (st, v) = api_call(
        &s,
        Some(&admin),
        "/api/v1/users",
        Some(json!({"name": "alice", "role": "operator", "password": "alice-password-123"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["user"]["role"], "operator");
    assert!(
        v.get("password").is_none(),
        "a supplied password is not echoed: {v}"
    );

    // Without a password one is generated, returned once, and works.
    let (st, v) = api_call(
        &s,
        Some(&admin),
        "/api/v1/users",
        Some(json!({"name": "bob", "role": "account-admin", "accounts": [ACC]})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["user"]["accounts"], json!([ACC]));
    let bob_pw = v["password"]
        .as_str()
        .expect("generated password")
        .to_string();
    assert!(login(&s, &c, "bob", &bob_pw).await.is_some());

    // Refusals with reasons: a taken name, a weak password, an unknown role or account.
    for (body, status, words) in [
        (
            json!({"name": "alice", "role": "viewer", "password": "another-password-1"}),
            409,
            "already exists",
        ),
        (
            json!({"name": "carol", "role": "viewer", "password": "short"}),
            422,
            "password",
        ),
        (
            json!({"name": "ops/carol", "role": "viewer", "password": "carol-password-123"}),
            422,
            "'/'",
        ),
        (
            json!({"name": "carol", "role": "janitor", "password": "carol-password-123"}),
            422,
            "janitor",
        ),
        (
            json!({"name": "carol", "role": "account-admin", "password": "carol-password-123"}),
            422,
            "account",
        ),
        (
            json!({"name": "carol", "role": "viewer", "password": "carol-password-123", "accounts": ["Nope"]}),
            404,
            "Nope",
        ),
        (
            json!({"name": "carol", "role": "viewer", "pasword": "typo-in-field-name"}),
            422,
            "pasword",
        ),
    ] {
        let (st, v) = api_call(&s, Some(&admin), "/api/v1/users", Some(body.clone())).await;
        assert_eq!(st, status, "{body} -> {v}");
        let msg = v["statusMessage"].as_str().unwrap_or_default();
        assert!(msg.contains(words), "{body}: {msg}");
    }

    let (st, list) = api_call(&s, Some(&admin), "/api/v1/users", None).await;
    assert_eq!(st, 200);
    assert_eq!(names(&list), ["admin", "alice", "bob"]);
    assert_eq!(list["totalRecords"], 3);
    let text = list.to_string();
    assert!(
        !text.contains("argon2") && !text.contains(&bob_pw),
        "{text}"
    );

    // Disabling ends alice's open session and refuses her next login.
    let alice = login(&s, &c, "alice", "alice-password-123")
        .await
        .expect("login");
    assert_eq!(page(&s, &c, &alice, "/").await.0, 200);
    let (st, v) = api_call(
        &s,
        Some(&admin),
        "/api/v1/users/alice/disable",
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["user"]["disabled"], true);
    let (st, _) = page(&s, &c, &alice, "/").await;
    assert_eq!(st, 303, "a disabled user's session is over");
    let r = c
        .get(s.console_url("/api/v1/accounts"))
        .header("Cookie", format!("__Host-satellite={alice}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "the API no longer accepts the session either"
    );
    assert!(login(&s, &c, "alice", "alice-password-123").await.is_none());
    assert!(ok(&s.data, &["user", "list"]).contains("alice\toperator\tdisabled"));

    let (st, v) = api_call(
        &s,
        Some(&admin),
        "/api/v1/users/alice/enable",
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["user"]["disabled"], false);
    assert!(login(&s, &c, "alice", "alice-password-123").await.is_some());

    let (st, v) = api_call(
        &s,
        Some(&admin),
        "/api/v1/users/alice/delete",
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(login(&s, &c, "alice", "alice-password-123").await.is_none());
    let (_, list) = api_call(&s, Some(&admin), "/api/v1/users", None).await;
    assert_eq!(names(&list), ["admin", "bob"]);
    let (st, _) = api_call(
        &s,
        Some(&admin),
        "/api/v1/users/alice/delete",
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = api_call(
        &s,
        Some(&admin),
        "/api/v1/users/nobody/disable",
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 404);

    for action in ["user.add", "user.disable", "user.enable", "user.delete"] {
        assert_eq!(audited(&s, action, "alice"), 1, "{action}");
    }
    s.stop();
}

#[tokio::test]
async fn api_clients_are_created_with_a_one_time_secret_and_revoked_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    seed_account(dir.path(), ACC, "CORE");
    let s = Server::start(dir.path());
    let admin = bearer_scoped(&s, "root-client", "system-admin", &[]).await;

    let (st, v) = api_call(
        &s,
        Some(&admin),
        "/api/v1/api-clients",
        Some(json!({"name": "inventory", "role": "viewer", "accounts": [ACC]})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let id = v["apiClient"]["clientId"].as_str().unwrap().to_string();
    let secret = v["clientSecret"].as_str().unwrap().to_string();
    assert_eq!(v["apiClient"]["accounts"], json!([ACC]));
    assert_eq!(v["apiClient"]["revoked"], false);

    let inventory = oauth(&s, &id, &secret)
        .await
        .expect("the new client signs in");
    let (st, accounts) = api_call(&s, Some(&inventory), "/api/v1/accounts", None).await;
    assert_eq!(st, 200);
    assert_eq!(accounts["accounts"][0]["accountName"], ACC);
    // A viewer client cannot make clients of its own.
    let (st, _) = api_call(
        &s,
        Some(&inventory),
        "/api/v1/api-clients",
        Some(json!({"name": "sneaky", "role": "system-admin"})),
    )
    .await;
    assert_eq!(st, 403);

    let (st, list) = api_call(&s, Some(&admin), "/api/v1/api-clients", None).await;
    assert_eq!(st, 200);
    let listed: Vec<&str> = list["apiClients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["clientId"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&id.as_str()), "{list}");
    assert_eq!(list["totalRecords"], 2);
    assert!(
        !list.to_string().contains(&secret),
        "secrets are never listed"
    );

    let (st, v) = api_call(
        &s,
        Some(&admin),
        &format!("/api/v1/api-clients/{id}/revoke"),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = api_call(&s, Some(&inventory), "/api/v1/accounts", None).await;
    assert_eq!(st, 401, "a revoked client's token stops at once");
    assert_eq!(oauth(&s, &id, &secret).await, Err(401));
    let (st, _) = api_call(
        &s,
        Some(&admin),
        &format!("/api/v1/api-clients/{id}/revoke"),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 404, "already revoked");
    let (_, list) = api_call(&s, Some(&admin), "/api/v1/api-clients", None).await;
    let row = list["apiClients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["clientId"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(row["revoked"], true);

    // The CLI revokes too.
    let (st, v) = api_call(
        &s,
        Some(&admin),
        "/api/v1/api-clients",
        Some(json!({"name": "backup-job", "role": "operator"})),
    )
    .await;
    assert_eq!(st, 201);
    let id2 = v["apiClient"]["clientId"].as_str().unwrap().to_string();
    let t2 = oauth(&s, &id2, v["clientSecret"].as_str().unwrap())
        .await
        .unwrap();
    assert!(ok(&s.data, &["api-client", "revoke", &id2]).contains("revoked"));
    assert_eq!(
        api_call(&s, Some(&t2), "/api/v1/accounts", None).await.0,
        401
    );
    let (okay, _, err) = cli(&s.data, &["api-client", "revoke", &id2]);
    assert!(!okay && err.contains("no active API client"), "{err}");

    assert_eq!(audited(&s, "api-client.create", &id), 1);
    assert_eq!(audited(&s, "api-client.revoke", &id), 1);
    s.stop();
}

#[tokio::test]
async fn only_system_admins_reach_the_user_and_client_routes() {
    let dir = tempfile::tempdir().unwrap();
    seed_account(dir.path(), ACC, "CORE");
    ok(dir.path(), &["user", "add", "victim", "--role", "viewer"]);
    let s = Server::start(dir.path());
    let tokens = [
        ("viewer", bearer_scoped(&s, "v", "viewer", &[]).await),
        ("operator", bearer_scoped(&s, "o", "operator", &[]).await),
        (
            "account-admin",
            bearer_scoped(&s, "aa", "account-admin", &[ACC]).await,
        ),
    ];
    let victim_client = ok(
        &s.data,
        &["api-client", "create", "target", "--role", "viewer"],
    );
    let victim_id = victim_client
        .lines()
        .find_map(|l| l.strip_prefix("client_id: "))
        .unwrap()
        .to_string();
    let routes: Vec<(String, Option<Value>)> = vec![
        ("/api/v1/users".into(), None),
        (
            "/api/v1/users".into(),
            Some(
                json!({"name": "mallory", "role": "system-admin", "password": "mallory-password-1"}),
            ),
        ),
        ("/api/v1/users/victim/disable".into(), Some(json!({}))),
        ("/api/v1/users/victim/enable".into(), Some(json!({}))),
        ("/api/v1/users/victim/delete".into(), Some(json!({}))),
        ("/api/v1/api-clients".into(), None),
        (
            "/api/v1/api-clients".into(),
            Some(json!({"name": "mallory", "role": "system-admin"})),
        ),
        (
            format!("/api/v1/api-clients/{victim_id}/revoke"),
            Some(json!({})),
        ),
    ];
    for (path, body) in &routes {
        for (role, t) in &tokens {
            let (st, v) = api_call(&s, Some(t), path, body.clone()).await;
            assert_eq!(st, 403, "{role} {path}: {v}");
        }
        let (st, _) = api_call(&s, None, path, body.clone()).await;
        assert_eq!(st, 401, "no credentials {path}");
    }
    // Nothing changed.
    let users = ok(&s.data, &["user", "list"]);
    assert!(users.contains("victim\tviewer") && !users.contains("victim\tviewer\tdisabled"));
    assert!(!users.contains("mallory"));
    let clients = ok(&s.data, &["api-client", "list"]);
    assert!(!clients.contains("mallory"));
    assert!(!clients.contains(&format!("{victim_id}\ttarget\tviewer\trevoked")));
    s.stop();
}

#[tokio::test]
async fn the_last_enabled_admin_stays_and_nobody_disables_or_deletes_themself() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let root = bearer_scoped(&s, "root-client", "system-admin", &[]).await;
    let c = raw_client(&s);

    // "admin" is the only system-admin user: neither disabled nor deleted.
    for action in ["disable", "delete"] {
        let (st, v) = api_call(
            &s,
            Some(&root),
            &format!("/api/v1/users/admin/{action}"),
            Some(json!({})),
        )
        .await;
        assert_eq!(st, 409, "{action}: {v}");
        assert!(
            v["statusMessage"]
                .as_str()
                .unwrap()
                .contains("last enabled system-admin"),
            "{v}"
        );
    }
    let (okay, _, err) = cli(&s.data, &["user", "delete", "admin"]);
    assert!(!okay && err.contains("last enabled system-admin"), "{err}");

    // An admin signed in to the console cannot act on themself through the API either.
    ok(
        &s.data,
        &["user", "add", "second", "--role", "system-admin"],
    );
    ok(&s.data, &["user", "add", "helper", "--role", "viewer"]);
    let session = login(&s, &c, "admin", ADMIN_PASSWORD).await.unwrap();
    let (_, html) = page(&s, &c, &session, "/users").await;
    let csrf = csrf_in(&html);
    let r = c
        .post(s.console_url("/api/v1/users/admin/disable"))
        .header("Cookie", format!("__Host-satellite={session}"))
        .header("X-CSRF-Token", &csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["statusMessage"].as_str().unwrap().contains("your own"),
        "{v}"
    );

    // The users page offers the actions on other rows only, each a CSRF-protected form.
    let own_row = html.split("data-user=\"admin\"").nth(1).unwrap();
    let own_row = &own_row[..own_row.find("</tr>").unwrap()];
    assert!(!own_row.contains("/users/disable"), "{own_row}");
    let helper_row = html.split("data-user=\"helper\"").nth(1).unwrap();
    let helper_row = &helper_row[..helper_row.find("</tr>").unwrap()];
    assert!(
        helper_row.contains("action=\"/users/disable\"")
            && helper_row.contains("action=\"/users/delete\"")
    );
    assert!(helper_row.contains("data-confirm="));

    // Console buttons: without the CSRF field refused; with it, done.
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let c = c.clone();
        let url = s.console_url(path);
        let session = session.clone();
        async move {
            c.post(url)
                .header("Cookie", format!("__Host-satellite={session}"))
                .form(&fields)
                .send()
                .await
                .unwrap()
        }
    };
    let r = post("/users/disable", vec![("name", "helper".into())]).await;
    assert_eq!(r.status(), 403);
    assert!(ok(&s.data, &["user", "list"]).contains("helper\tviewer\n"));
    let r = post(
        "/users/disable",
        vec![("csrf", csrf.clone()), ("name", "helper".into())],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(ok(&s.data, &["user", "list"]).contains("helper\tviewer\tdisabled"));
    let r = post(
        "/users/enable",
        vec![("csrf", csrf.clone()), ("name", "helper".into())],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(ok(&s.data, &["user", "list"]).contains("helper\tviewer\n"));

    // A viewer's console session may not use the buttons.
    let mut add = std::process::Command::new(bin());
    add.arg("--data")
        .arg(&s.data)
        .args([
            "user",
            "add",
            "looker",
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = add.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"looker-password-12\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let looker = login(&s, &c, "looker", "looker-password-12").await.unwrap();
    let (_, lhtml) = page(&s, &c, &looker, "/").await;
    let r = c
        .post(s.console_url("/users/delete"))
        .header("Cookie", format!("__Host-satellite={looker}"))
        .form(&[("csrf", csrf_in(&lhtml).as_str()), ("name", "helper")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(ok(&s.data, &["user", "list"]).contains("helper"));

    // With a second admin, one may go; then the other is the last again.
    let (st, _) = api_call(
        &s,
        Some(&root),
        "/api/v1/users/second/disable",
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = api_call(
        &s,
        Some(&root),
        "/api/v1/users/admin/delete",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        st, 409,
        "second is disabled, so admin is the last enabled one"
    );
    let r = post(
        "/users/delete",
        vec![("csrf", csrf.clone()), ("name", "second".into())],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(!ok(&s.data, &["user", "list"]).contains("second"));
    assert!(ok(&s.data, &["user", "disable", "helper"]).contains("disabled user helper"));
    assert!(ok(&s.data, &["user", "enable", "helper"]).contains("enabled user helper"));
    assert!(ok(&s.data, &["user", "delete", "helper"]).contains("deleted user helper"));
    assert!(!ok(&s.data, &["user", "list"]).contains("helper"));
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_page_disables_enables_and_deletes_through_confirmations_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data);
    ok(&data, &["user", "add", "helper", "--role", "viewer"]);
    let driver = webdriver::Driver::start().await;
    let b = driver.browser(&dir.path().join("profile")).await;
    b.sign_in(&s.console_url("/login"), "admin", ADMIN_PASSWORD)
        .await;

    b.goto(&s.console_url("/users")).await;
    let row = "#users tr[data-user=helper]";
    b.click_on(&format!("{row} form[action=\"/users/disable\"] button"))
        .await;
    let question = b.accept_dialog().await;
    assert!(question.contains("Disable this user"), "{question}");
    b.wait_source("User disabled").await;
    assert!(b.text_of(row).await.contains("disabled"));
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/console");
    b.screenshot(&shots.join("users-disabled.png")).await;

    b.click_on(&format!("{row} form[action=\"/users/enable\"] button"))
        .await;
    b.wait_source("User enabled").await;
    assert!(b.text_of(row).await.contains("active"));

    b.click_on(&format!("{row} form[action=\"/users/delete\"] button"))
        .await;
    let question = b.accept_dialog().await;
    assert!(question.contains("Delete this user"), "{question}");
    b.wait_source("User deleted").await;
    assert!(!b.source().await.contains("data-user=\"helper\""));
    assert!(!ok(&data, &["user", "list"]).contains("helper"));
    b.quit().await;
    s.stop();
}
