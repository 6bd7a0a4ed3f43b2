//! The settings page and API through the real binary: a replaced certificate is served on
//! fresh TLS connections without a restart, refusals say why and change nothing, the sync
//! schedule changes live, and only system admins get there.

mod common;
#[path = "common/console_http.rs"]
mod console_http;
#[path = "common/tls_probe.rs"]
mod tls_probe;
#[path = "common/webdriver.rs"]
mod webdriver;

use chrono::{DateTime, Duration, Timelike, Utc};
use common::*;
use console_http::{add_user, raw_client, session_of};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tls_probe::{fingerprint, presented};
use webdriver::Driver;

struct Generated {
    cert_pem: String,
    key_pem: String,
    fingerprint: String,
}

/// A certificate for localhost, valid from `from` to `until` days around now.
fn generate(cn: &str, from: i64, until: i64) -> Generated {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut params = CertificateParams::new(vec![cn.to_string(), "localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "Settings Test");
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(from);
    params.not_after = now + time::Duration::days(until);
    let cert = params.self_signed(&key).unwrap();
    Generated {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        fingerprint: fingerprint(cert.der()),
    }
}

async fn post(s: &Server, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let (st, v) = api_call(s, Some(token), path, Some(body)).await;
    (StatusCode::from_u16(st).unwrap(), v)
}

async fn get(s: &Server, token: &str, path: &str) -> (StatusCode, Value) {
    let (st, v) = api_call(s, Some(token), path, None).await;
    (StatusCode::from_u16(st).unwrap(), v)
}

fn audit_rows(data: &Path, action: &str) -> Vec<String> {
    let c = rusqlite::Connection::open_with_flags(
        data.join("satellite.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = c
        .prepare("SELECT detail FROM audit_log WHERE action = ?1 ORDER BY id")
        .unwrap();
    st.query_map([action], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_certificate_is_served_at_once_and_bad_ones_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data);
    let admin = bearer(&s, "system-admin").await;

    // The page's view of the certificate is what a client is actually shown, on both listeners.
    let (st, v) = get(&s, &admin, "/api/v1/settings/certificate").await;
    assert_eq!(st, 200, "{v}");
    let old = v["certificate"]["fingerprintSha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(presented(&s.console), old);
    assert_eq!(presented(&s.device_https), old);
    assert!(v["certificate"]["dnsNames"]
        .as_array()
        .unwrap()
        .contains(&json!("localhost")));

    let new = generate("satellite.settings.test", -1, 90);
    let other = generate("somebody.else.test", -1, 90);

    // A key of another certificate: refused with the reason, the old certificate still served.
    let (st, v) = post(
        &s,
        &admin,
        "/api/v1/settings/certificate",
        json!({"certificate": new.cert_pem, "privateKey": other.key_pem}),
    )
    .await;
    assert_eq!(st, 422, "{v}");
    assert!(
        v["statusMessage"]
            .as_str()
            .unwrap()
            .contains("the private key does not match the certificate"),
        "{v}"
    );
    assert_eq!(presented(&s.console), old);

    // Garbage, an expired certificate and one not yet valid: each refused with its reason.
    let refusals = [
        (
            json!({"certificate": "this is not PEM", "privateKey": new.key_pem}),
            "no certificate found",
        ),
        (
            json!({"certificate": new.cert_pem, "privateKey": "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n"}),
            "private key",
        ),
        (
            json!({"certificate": new.cert_pem.replace("MII", "M!I"), "privateKey": new.key_pem}),
            "certificate",
        ),
    ];
    for (body, reason) in refusals {
        let (st, v) = post(&s, &admin, "/api/v1/settings/certificate", body).await;
        assert_eq!(st, 422, "{v}");
        let msg = v["statusMessage"].as_str().unwrap();
        assert!(msg.starts_with("certificate refused: "), "{msg}");
        assert!(msg.contains(reason), "{msg} should mention {reason}");
    }
    let expired = generate("expired.test", -30, -1);
    let (st, v) = post(
        &s,
        &admin,
        "/api/v1/settings/certificate",
        json!({"certificate": expired.cert_pem, "privateKey": expired.key_pem}),
    )
    .await;
    assert_eq!(st, 422);
    assert!(
        v["statusMessage"].as_str().unwrap().contains("expired"),
        "{v}"
    );
    assert_eq!(presented(&s.console), old);
    assert!(audit_rows(&data, "settings.certificate").is_empty());

    // The real thing: served on fresh connections to both listeners, no restart.
    let (st, v) = post(
        &s,
        &admin,
        "/api/v1/settings/certificate",
        json!({"certificate": new.cert_pem, "privateKey": new.key_pem}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let c = &v["certificate"];
    assert_eq!(c["fingerprintSha256"], json!(new.fingerprint));
    assert_eq!(c["commonName"], json!("satellite.settings.test"));
    assert_eq!(
        c["subject"],
        json!("CN=satellite.settings.test, O=Settings Test")
    );
    assert_eq!(c["ipAddresses"], json!(["127.0.0.1"]));
    assert_ne!(new.fingerprint, old);
    assert_eq!(presented(&s.console), new.fingerprint);
    assert_eq!(presented(&s.device_https), new.fingerprint);
    // Clients trusting only the new certificate get through (the fixture trusts the file).
    let (st, v) = get(&s, &admin, "/api/v1/settings/certificate").await;
    assert_eq!(st, 200);
    assert_eq!(
        v["certificate"]["fingerprintSha256"],
        json!(new.fingerprint)
    );

    // Written where the next start reads it, the key private; the change is audited.
    let tls = data.join("tls");
    let key_mode = std::fs::metadata(tls.join("console.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600);
    assert_eq!(
        std::fs::read_to_string(tls.join("console.crt"))
            .unwrap()
            .trim(),
        new.cert_pem.trim()
    );
    let rows = audit_rows(&data, "settings.certificate");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains(&new.fingerprint), "{}", rows[0]);
    assert!(!rows[0].contains("PRIVATE KEY"));
    assert!(!s.stderr().contains(new.key_pem.lines().nth(1).unwrap()));

    // And a restart keeps it.
    assert!(s.stop().success());
    let s = Server::start(&data);
    assert_eq!(presented(&s.console), new.fingerprint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_system_admins_reach_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data);
    seed_account(&data, "Acme", "VA");
    let viewer = bearer_scoped(&s, "v", "viewer", &[]).await;
    let aa = bearer_scoped(&s, "aa", "account-admin", &["Acme"]).await;
    let new = generate("intruder.test", -1, 30);
    for token in [&viewer, &aa] {
        for path in ["/api/v1/settings/certificate", "/api/v1/settings/schedules"] {
            let (st, _) = get(&s, token, path).await;
            assert_eq!(st, 403, "GET {path}");
        }
        let (st, _) = post(
            &s,
            token,
            "/api/v1/settings/certificate",
            json!({"certificate": new.cert_pem, "privateKey": new.key_pem}),
        )
        .await;
        assert_eq!(st, 403);
        let (st, _) = post(
            &s,
            token,
            "/api/v1/settings/schedules",
            json!({"sync": "0 0 4 * * *"}),
        )
        .await;
        assert_eq!(st, 403);
    }
    assert_ne!(presented(&s.console), new.fingerprint);

    // The console page too, with a viewer's session.
    add_user(&data, "viewer", "viewer", "viewer-password-12", &[]);
    let c = raw_client(&s);
    let session = session_of(&s, &c, "viewer", "viewer-password-12").await;
    let r = c
        .get(s.console_url("/settings"))
        .header("Cookie", format!("__Host-satellite={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let page = c
        .get(s.console_url("/"))
        .header("Cookie", format!("__Host-satellite={session}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("href=\"/settings\""),
        "no nav link for a viewer"
    );
}

fn next_runs(v: &Value) -> Vec<DateTime<Utc>> {
    v["nextRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_schedule_changes_live_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data);
    let admin = bearer(&s, "system-admin").await;

    let (st, v) = get(&s, &admin, "/api/v1/settings/schedules").await;
    assert_eq!(st, 200, "{v}");
    let sync = &v["schedules"]["sync"];
    assert_eq!(sync["schedule"], json!("0 0 2 * * *"));
    assert_eq!(sync["source"], json!("config"));
    assert_eq!(sync["active"], json!(true));
    let runs = next_runs(sync);
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|t| t.hour() == 2 && t.minute() == 0));
    let snap = &v["schedules"]["snapshot"];
    assert_eq!(snap["schedule"], json!("0 5 0 * * *"));
    assert_eq!(next_runs(snap).len(), 3);

    let (st, v) = post(
        &s,
        &admin,
        "/api/v1/settings/schedules",
        json!({"sync": "0 30 3 * * *"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let sync = &v["schedules"]["sync"];
    assert_eq!(sync["schedule"], json!("0 30 3 * * *"));
    assert_eq!(sync["source"], json!("settings"));
    let runs = next_runs(sync);
    assert_eq!(runs.len(), 3);
    assert!(runs[0] > Utc::now());
    assert!(runs
        .iter()
        .all(|t| (t.hour(), t.minute(), t.second()) == (3, 30, 0)));
    assert_eq!(runs[1] - runs[0], Duration::days(1));
    assert_eq!(runs[2] - runs[1], Duration::days(1));
    // The sync status follows the same schedule.
    let (_, st_json) = get(&s, &admin, "/api/v1/sync/status").await;
    let next: DateTime<Utc> = st_json["nextRun"].as_str().unwrap().parse().unwrap();
    assert_eq!(next, runs[0]);

    // Refused with a reason, and nothing changes.
    for (text, reason) in [
        ("30 3 * * *", "\"0 30 3 * * *\""),
        ("* * * * * *", "at least 60 s apart"),
        ("0 61 * * * *", "not a cron schedule with seconds"),
        ("every night", "fields"),
    ] {
        let (st, v) = post(
            &s,
            &admin,
            "/api/v1/settings/schedules",
            json!({"sync": text}),
        )
        .await;
        assert_eq!(st, 422, "{text}: {v}");
        let msg = v["statusMessage"].as_str().unwrap();
        assert!(msg.contains(reason), "{text}: {msg}");
    }
    let (_, v) = get(&s, &admin, "/api/v1/settings/schedules").await;
    assert_eq!(v["schedules"]["sync"]["schedule"], json!("0 30 3 * * *"));
    assert_eq!(audit_rows(&data, "settings.sync_schedule").len(), 1);

    // The running scheduler follows a change at once: a run due a few seconds from now
    // happens (no upstream is set, so it says it skipped) without a restart.
    let at = Utc::now() + Duration::seconds(4);
    let soon = format!("{} {} {} * * *", at.second(), at.minute(), at.hour());
    let (st, v) = post(
        &s,
        &admin,
        "/api/v1/settings/schedules",
        json!({"sync": soon}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !s
        .stderr()
        .contains("scheduled sync skipped: no upstream configured")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduler did not run on the new schedule: {}",
            s.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // The override outlives a restart; null returns to the configured schedule.
    assert!(s.stop().success());
    let s = Server::start(&data);
    let admin = bearer(&s, "system-admin").await;
    let (_, v) = get(&s, &admin, "/api/v1/settings/schedules").await;
    assert_eq!(v["schedules"]["sync"]["schedule"], json!(soon));
    let (st, v) = post(
        &s,
        &admin,
        "/api/v1/settings/schedules",
        json!({"sync": null}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["schedules"]["sync"]["schedule"], json!("0 0 2 * * *"));
    assert_eq!(v["schedules"]["sync"]["source"], json!("config"));
}

// ---------------------------------------------------------------- console

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/console")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_page_shows_the_certificate_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data);
    let admin = bearer(&s, "system-admin").await;
    let (_, v) = get(&s, &admin, "/api/v1/settings/certificate").await;
    let fp = v["certificate"]["fingerprintSha256"]
        .as_str()
        .unwrap()
        .to_string();

    let driver = Driver::start().await;
    let b = driver.browser(&dir.path().join("profile")).await;
    b.sign_in(&s.console_url("/login"), "admin", ADMIN_PASSWORD)
        .await;
    b.click_on("a[href='/settings']").await;
    b.wait_source("<h1>Settings</h1>").await;
    assert_eq!(b.text_of("#cert-fingerprint").await, fp);
    assert!(b.text_of("#cert-names").await.contains("localhost"));
    assert_eq!(b.text_of("#sync-schedule").await, "0 0 2 * * *");
    assert_eq!(b.find_all("#sync-next br").await.len(), 3);
    std::fs::create_dir_all(artifacts()).unwrap();
    b.screenshot(&artifacts().join("settings.png")).await;

    // A 5-field schedule typed into the form is refused on the page with the hint.
    let field = b.find("input[name=sync_schedule]").await;
    b.clear(&field).await;
    b.type_into(&field, "30 3 * * *").await;
    b.click_on("#schedule-submit").await;
    b.wait_source("schedule-error").await;
    assert!(b.text_of("#schedule-error").await.contains("0 30 3 * * *"));
    b.screenshot(&artifacts().join("settings-refused.png"))
        .await;

    // A certificate without its key is refused on the page; a valid one is shown after.
    let new = generate("browser.settings.test", -1, 60);
    let other = generate("other.settings.test", -1, 60);
    b.fill("textarea[name=certificate]", &new.cert_pem).await;
    b.fill("textarea[name=private_key]", &other.key_pem).await;
    b.click_on("#cert-submit").await;
    b.wait_source("cert-error").await;
    assert!(b
        .text_of("#cert-error")
        .await
        .contains("the private key does not match the certificate"));
    b.fill("textarea[name=certificate]", &new.cert_pem).await;
    b.fill("textarea[name=private_key]", &new.key_pem).await;
    b.click_on("#cert-submit").await;
    b.wait_source("Certificate replaced").await;
    assert_eq!(b.text_of("#cert-fingerprint").await, new.fingerprint);
    assert_eq!(presented(&s.console), new.fingerprint);
}
