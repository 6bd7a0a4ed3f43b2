//! Hostile input and secrecy through the real binary: old TLS versions refused, oversized
//! and malformed API bodies answered 4xx while serving on, and no secret in any log line.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::{Command, Stdio};

fn handshake(addr: &str, version_flag: &str) -> bool {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            addr,
            version_flag,
            "-servername",
            "localhost",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("openssl must be installed (the test command installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains("Cipher is") && !text.contains("Cipher is (NONE)")
}

#[test]
fn only_tls_1_2_and_1_3_are_spoken() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    for addr in [&s.console, &s.device_https] {
        assert!(handshake(addr, "-tls1_3"), "TLS 1.3 on {addr}");
        assert!(handshake(addr, "-tls1_2"), "TLS 1.2 on {addr}");
        assert!(
            !handshake(addr, "-tls1_1"),
            "TLS 1.1 must be refused on {addr}"
        );
        assert!(
            !handshake(addr, "-tls1"),
            "TLS 1.0 must be refused on {addr}"
        );
    }
}

#[tokio::test]
async fn hostile_api_bodies_get_4xx_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    seed_account(dir.path(), "Acme", "CORE");
    let s = Server::start(dir.path());
    let c = s.client();
    let t = bearer(&s, "operator").await;
    let url = s.console_url("/api/v1/accounts/Acme/virtual-accounts/CORE/tokens");
    let cases: Vec<(&str, String)> = vec![
        ("huge number", r#"{"expiresAfterDays": 1e400}"#.to_string()),
        (
            "number beyond i64",
            r#"{"expiresAfterDays": 123456789012345678901234567890}"#.to_string(),
        ),
        (
            "deep nesting",
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
        ),
        (
            "duplicate keys",
            r#"{"description": "a", "description": "b"}"#.to_string(),
        ),
        ("wrong type", r#"{"maxUses": "ten"}"#.to_string()),
        ("not json", "{{{{".to_string()),
        (
            "over the body limit",
            format!(r#"{{"description": "{}"}}"#, "x".repeat(2 * 1024 * 1024)),
        ),
    ];
    for (what, body) in cases {
        let r = c
            .post(&url)
            .bearer_auth(&t)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        assert!((400..500).contains(&st), "{what}: got {st}");
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(v["status"], "ERROR", "{what}: {v}");
        assert!(
            !v["statusMessage"].as_str().unwrap_or("").is_empty(),
            "{what}: a reason"
        );
    }
    // Oversized headers are refused before any handler runs: 431 up to the parser's
    // buffer, a closed connection beyond it.
    let r = c
        .get(s.console_url("/healthz"))
        .header("X-Big", "y".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let r = c
        .get(s.console_url("/healthz"))
        .header("X-Big", "y".repeat(256 * 1024))
        .send()
        .await;
    if let Ok(r) = r {
        assert!(
            r.status().is_client_error(),
            "oversized header: {}",
            r.status()
        );
    }
    let r = c
        .post(&url)
        .bearer_auth(&t)
        .json(&json!({"description": "still serving"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn no_secret_appears_in_the_logs_of_a_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (okay, _, first) = cli_env(
        data,
        &["account", "create", "Acme"],
        &[("SATELLITE_ADMIN_PASSWORD", "")],
    );
    assert!(okay);
    let admin_pw = first
        .lines()
        .find_map(|l| l.split("password: ").nth(1))
        .unwrap()
        .trim()
        .to_string();
    ok(data, &["va", "create", "Acme", "CORE"]);
    ok(data, &["eula", "accept", "--account", "Acme"]);
    let s = Spawn::new(data).env("SATELLITE_LOG", "trace").start();
    let out = ok(data, &["api-client", "create", "ops", "--role", "operator"]);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap()
        .to_string();
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("client_id: "))
        .unwrap()
        .to_string();
    let v: Value = s
        .client()
        .post(s.console_url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = v["access_token"].as_str().unwrap().to_string();
    let tv: Value = s
        .client()
        .post(s.console_url("/api/v1/accounts/Acme/virtual-accounts/CORE/tokens"))
        .bearer_auth(&access)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reg = tv["tokenInfo"]["token"].as_str().unwrap().to_string();
    let sim = Command::new(bin())
        .args([
            "simulate",
            "--url",
            &format!("http://{}", s.device_http),
            "--token",
            &reg,
            "--devices",
            "2",
            "--renew",
            "--deregister",
        ])
        .env("SATELLITE_LOG", "trace")
        .output()
        .unwrap();
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    let log = s.stderr();
    assert!(s.stop().success());
    let mut logs = log + &String::from_utf8_lossy(&sim.stderr);
    // Key material must not appear either.
    let keys = ["tls/console.key", "device-ca/device-ca.key"];
    for k in keys {
        let pem = std::fs::read_to_string(data.join(k)).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!logs.contains(&body[..40]), "{k} leaked into the log");
    }
    logs.push('\n');
    assert!(logs.len() > 1000, "trace logging produced output");
    for (what, secret) in [
        ("admin password", &admin_pw),
        ("client secret", &secret),
        ("access token", &access),
        ("registration token", &reg),
    ] {
        assert!(!logs.contains(secret.as_str()), "{what} appears in the log");
    }
}
