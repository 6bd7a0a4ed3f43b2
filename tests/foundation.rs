//! The foundation through the real binary: data dir life cycle, configuration precedence,
//! TLS, tokens over the API, roles, audit rows, OAuth expiry and the shifted clock.

mod common;

use common::*;
use serde_json::{json, Value};

const ACC: &str = "Forty-Two uLtd.";
const VA: &str = "IOSXR";

fn enc(s: &str) -> String {
    s.replace(' ', "%20")
}

fn tokens_url(s: &Server) -> String {
    s.console_url(&format!(
        "/api/v1/accounts/{}/virtual-accounts/{VA}/tokens",
        enc(ACC)
    ))
}

fn db(data: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join("satellite.db")).expect("open db")
}

#[test]
fn first_start_initialises_and_second_start_reuses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (okay, _, err) = cli_env(
        &data,
        &["account", "list"],
        &[("SATELLITE_ADMIN_PASSWORD", "")],
    );
    assert!(okay, "{err}");
    assert!(
        err.contains("console user 'admin' with password:"),
        "first use prints the generated admin password: {err}"
    );
    assert!(data.join("satellite.db").exists());
    let (_, _, err2) = cli_env(
        &data,
        &["account", "list"],
        &[("SATELLITE_ADMIN_PASSWORD", "")],
    );
    assert!(
        !err2.contains("password"),
        "second use must not initialise again: {err2}"
    );

    let s = Server::start(&data);
    let cert1 = std::fs::read(data.join("tls/console.crt")).unwrap();
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("tls/console.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600, "console key must be 0600");
    assert!(s.stop().success());
    let s = Server::start(&data);
    assert_eq!(
        std::fs::read(data.join("tls/console.crt")).unwrap(),
        cert1,
        "certificate reused on restart"
    );
    let users: i64 = db(&data)
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 1);
    assert!(s.stop().success());
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    ok(&data, &["account", "list"]);
    db(&data).pragma_update(None, "user_version", 999).unwrap();
    let (okay, _, err) = cli(&data, &["account", "list"]);
    assert!(!okay);
    assert!(err.contains("schema version 999 is newer"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    let r = Spawn::new(&data).try_start();
    assert!(r.is_err(), "serve must refuse a newer database");
}

#[test]
fn flags_override_environment_which_overrides_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let busy2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy2_addr = busy2.local_addr().unwrap().to_string();
    let cfg = dir.path().join("satellite.toml");
    std::fs::write(
        &cfg,
        format!("console_addr = \"{busy_addr}\"\nunknown_key = 1\n"),
    )
    .unwrap();

    // The file alone points at a busy port: serve stops naming the address and the option.
    let out = std::process::Command::new(bin())
        .args(["--data"])
        .arg(&data)
        .args(["--config"])
        .arg(&cfg)
        .args([
            "serve",
            "--device-http-addr",
            "127.0.0.1:0",
            "--device-https-addr",
            "127.0.0.1:0",
        ])
        .env("SATELLITE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&busy_addr) && err.contains("--console-addr"),
        "{err}"
    );
    assert!(
        err.contains("unknown_key"),
        "unknown keys are warned about: {err}"
    );

    // Environment beats the file.
    let out = std::process::Command::new(bin())
        .args(["--data"])
        .arg(&data)
        .args(["--config"])
        .arg(&cfg)
        .args([
            "serve",
            "--device-http-addr",
            "127.0.0.1:0",
            "--device-https-addr",
            "127.0.0.1:0",
        ])
        .env("SATELLITE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("SATELLITE_CONSOLE_ADDR", &busy2_addr)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&busy2_addr) && !err.contains(&busy_addr),
        "env value used for the console: {err}"
    );

    // Flags beat environment: the fixture passes 127.0.0.1:0 flags while env names the busy port.
    let s = Spawn::new(&data)
        .env("SATELLITE_CONFIG", cfg.to_str().unwrap())
        .env("SATELLITE_CONSOLE_ADDR", &busy_addr)
        .start();
    assert_ne!(s.console, busy_addr);
    assert!(s.stop().success());
    drop((busy, busy2));
}

#[tokio::test]
async fn console_speaks_verified_tls_and_healthz_answers_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let c = s.client();
    let r = c.get(s.console_url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN offers h2");
    let plain = reqwest::Client::new();
    assert_eq!(
        plain
            .get(format!("http://{}/healthz", s.device_http))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = c
        .get(format!(
            "https://localhost:{}/healthz",
            port_of(&s.device_https)
        ))
        .send()
        .await;
    // The device HTTPS listener uses the same certificate; the client resolves localhost to the console port,
    // so reach it by IP with the same trust root instead.
    drop(r);
    let pem = std::fs::read(dir.path().join("tls/console.crt")).unwrap();
    let dc = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let r = dc
        .get(format!(
            "https://127.0.0.1:{}/healthz",
            port_of(&s.device_https)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "certificate carries 127.0.0.1 as a SAN");
}

#[tokio::test]
async fn token_rules_hold_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    seed_account(dir.path(), ACC, VA);
    let s = Server::start(dir.path());
    let token = bearer(&s, "operator").await;
    let c = s.client();
    for days in [0, 366, -1] {
        let r = c
            .post(tokens_url(&s))
            .bearer_auth(&token)
            .json(&json!({"description": "x", "expiresAfterDays": days}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "expiry {days} must be refused");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "ERROR");
        assert!(
            v["statusMessage"]
                .as_str()
                .unwrap()
                .contains("between 1 and 365"),
            "{v}"
        );
    }
    let r = c.post(tokens_url(&s)).bearer_auth(&token)
        .json(&json!({"description": "lab", "expiresAfterDays": 365, "exportControlled": "Allowed", "maxUses": 5}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "SUCCESS");
    let info = &v["tokenInfo"];
    assert_eq!(info["description"], "lab");
    assert_eq!(info["maxUses"], 5);
    assert_eq!(info["uses"], 0);
    assert_eq!(info["exportControlled"], "Allowed");
    let value = info["token"].as_str().unwrap().to_string();
    let exp =
        chrono::DateTime::parse_from_rfc3339(info["expirationDate"].as_str().unwrap()).unwrap();
    let days = (exp.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!(
        (365 * 24 - 2..=365 * 24).contains(&days),
        "expiry 365 days ahead, got {days} h"
    );

    // Default expiry is 30 days.
    let r: Value = c
        .post(tokens_url(&s))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let exp =
        chrono::DateTime::parse_from_rfc3339(r["tokenInfo"]["expirationDate"].as_str().unwrap())
            .unwrap();
    assert_eq!(
        (exp.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days(),
        29
    );

    let r = c
        .post(format!("{}/revoke", tokens_url(&s)))
        .bearer_auth(&token)
        .json(&json!({"tokens": [value.clone()]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = c
        .get(tokens_url(&s))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["token"] == value.as_str())
        .unwrap();
    assert_eq!(row["status"], "REVOKED");
    assert_eq!(list["totalRecords"], 2);

    let r = c
        .post(format!("{}/revoke", tokens_url(&s)))
        .bearer_auth(&token)
        .json(&json!({"tokens": ["nope"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .get(s.console_url("/api/v1/accounts/Nobody/virtual-accounts/X/tokens"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The CLI sees the same tokens and their state.
    let csv = ok(
        dir.path(),
        &["token", "list", "--account", ACC, "--format", "csv"],
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&value) && l.contains(",REVOKED,")),
        "{csv}"
    );
}

#[tokio::test]
async fn roles_are_enforced_and_unauthenticated_calls_get_401() {
    let dir = tempfile::tempdir().unwrap();
    seed_account(dir.path(), ACC, VA);
    let s = Server::start(dir.path());
    let c = s.client();
    let viewer = bearer(&s, "viewer").await;
    let r = c
        .post(tokens_url(&s))
        .bearer_auth(&viewer)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ERROR");
    let r = c
        .get(tokens_url(&s))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "viewers read");

    let r = c
        .post(tokens_url(&s))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(tokens_url(&s))
        .bearer_auth("made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let operator = bearer(&s, "operator").await;
    let r = c
        .post(s.console_url("/api/v1/accounts"))
        .bearer_auth(&operator)
        .json(&json!({"name": "Other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "only a system-admin creates accounts");

    // An account-admin is confined to its account.
    ok(dir.path(), &["account", "create", "Other"]);
    ok(dir.path(), &["va", "create", "Other", "V"]);
    let out = ok(
        dir.path(),
        &[
            "api-client",
            "create",
            "aa",
            "--role",
            "account-admin",
            "--account",
            "Other",
        ],
    );
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("client_id: "))
        .unwrap()
        .to_string();
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap()
        .to_string();
    let t: Value = c
        .post(s.console_url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let aa = t["access_token"].as_str().unwrap();
    assert_eq!(
        c.post(tokens_url(&s))
            .bearer_auth(aa)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let own = s.console_url("/api/v1/accounts/Other/virtual-accounts/V/tokens");
    assert_eq!(
        c.post(own)
            .bearer_auth(aa)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Every documented non-public route refuses anonymous callers.
    let doc: Value = c
        .get(s.console_url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 7);
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let url = s.console_url(&path.replace("{account}", "Other").replace("{va}", "V"));
            let req = match method.as_str() {
                "get" => c.get(url),
                _ => c.post(url).json(&json!({})),
            };
            let st = req.send().await.unwrap().status();
            if op
                .get("security")
                .map(|s| s.as_array().map(|a| a.is_empty()).unwrap_or(false))
                .unwrap_or(false)
            {
                assert_ne!(st, 404, "{method} {path} is documented but missing");
            } else {
                assert_eq!(st, 401, "{method} {path} without credentials");
            }
        }
    }
}

#[tokio::test]
async fn every_change_leaves_an_audit_row() {
    let dir = tempfile::tempdir().unwrap();
    seed_account(dir.path(), ACC, VA);
    let s = Server::start(dir.path());
    let token = bearer(&s, "operator").await;
    let v: Value = s
        .client()
        .post(tokens_url(&s))
        .bearer_auth(&token)
        .json(&json!({"description": "audited"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let value = v["tokenInfo"]["token"].as_str().unwrap().to_string();
    let conn = db(dir.path());
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT actor, action FROM audit_log ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    for a in [
        "account.create",
        "va.create",
        "eula.accept",
        "api-client.create",
        "token.create",
    ] {
        assert!(
            actions.contains(&a),
            "missing audit action {a}: {actions:?}"
        );
    }
    assert!(rows
        .iter()
        .any(|(who, what)| who == "client:operator-client" && what == "token.create"));
    let leaked: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE detail LIKE ?1 OR target LIKE ?1",
            [format!("%{value}%")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        leaked, 0,
        "token values are credentials and stay out of the audit log"
    );
}

#[tokio::test]
async fn oauth_tokens_expire_by_the_servers_clock() {
    let dir = tempfile::tempdir().unwrap();
    seed_account(dir.path(), ACC, VA);
    let s = Server::start(dir.path());
    let token = bearer(&s, "viewer").await;
    assert_eq!(
        s.client()
            .get(tokens_url(&s))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r: Value = s
        .client()
        .post(s.console_url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("client_secret", "y"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "ERROR");
    assert!(s.stop().success());
    // Same data dir, clock 2 hours ahead: the 1-hour token is now expired.
    let s = Spawn::new(dir.path())
        .env("SATELLITE_CLOCK_OFFSET", "+2h")
        .start();
    let r = s
        .client()
        .get(tokens_url(&s))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["statusMessage"].as_str().unwrap().contains("expired"),
        "{v}"
    );
}

#[test]
fn the_clock_offset_shifts_every_time_rule_and_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    seed_account(dir.path(), ACC, VA);
    let (okay, out, err) = cli_env(
        dir.path(),
        &[
            "token",
            "create",
            "--account",
            ACC,
            "--va",
            VA,
            "--days",
            "10",
        ],
        &[("SATELLITE_CLOCK_OFFSET", "+91d")],
    );
    assert!(okay, "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains("clock shifted"),
        "first log line says so: {err}"
    );
    let value = out.trim();
    assert_eq!(out.lines().count(), 1, "token alone on stdout");
    let exp: i64 = db(dir.path())
        .query_row(
            "SELECT expires_at FROM registration_tokens WHERE token = ?1",
            [value],
            |r| r.get(0),
        )
        .unwrap();
    let ahead = exp - chrono::Utc::now().timestamp();
    assert!(
        (101 * 86400 - 120..=101 * 86400 + 5).contains(&ahead),
        "91 + 10 days ahead, got {ahead}s"
    );
    let (okay, _, err) = cli_env(
        dir.path(),
        &["account", "list"],
        &[("SATELLITE_CLOCK_OFFSET", "soon")],
    );
    assert!(!okay && err.contains("invalid clock offset"), "{err}");
}

#[test]
fn license_add_is_refused_on_a_satellite_and_accepted_on_an_authority() {
    let dir = tempfile::tempdir().unwrap();
    seed_account(dir.path(), ACC, VA);
    let (okay, _, err) = cli(
        dir.path(),
        &[
            "license",
            "add",
            "--account",
            ACC,
            "--va",
            VA,
            "--tag",
            "ESS-AC-100G-RTU-1",
            "--quantity",
            "4",
        ],
    );
    assert!(!okay);
    assert!(err.contains("authority"), "{err}");
    let adir = tempfile::tempdir().unwrap();
    let s = Spawn::new(adir.path()).role("authority").start();
    assert!(s.stop().success());
    seed_account(adir.path(), ACC, VA);
    let out = ok(
        adir.path(),
        &[
            "license",
            "add",
            "--account",
            ACC,
            "--va",
            VA,
            "--tag",
            "ESS-AC-100G-RTU-1",
            "--quantity",
            "4",
        ],
    );
    assert!(out.contains("4 x ESS-AC-100G-RTU-1"), "{out}");
    let (okay, _, err) = cli(
        adir.path(),
        &[
            "license",
            "add",
            "--account",
            ACC,
            "--va",
            VA,
            "--tag",
            "ESS-AC-100G-RTU-1",
            "--quantity",
            "0",
        ],
    );
    assert!(!okay && err.contains("quantity"), "{err}");
}
