//! The admin console end to end: a real headless Chromium driven over WebDriver against the
//! real binary, plus raw HTTP checks of sessions, CSRF, roles and throttling.

mod common;
#[path = "common/console_http.rs"]
mod console_http;
#[path = "common/webdriver.rs"]
mod webdriver;

use chrono::Utc;
use common::*;
use console_http::*;
use satellite::simulate::client::{read_reply, Reply, SimDevice};
use satellite::simulate::device::{seed_scenario, Chassis};
use std::path::{Path, PathBuf};
use webdriver::{Browser, Driver};

const ACC: &str = "Forty-Two uLtd.";
const VA: &str = "IOSXR";
const LAB: &str = "Lab";
const TAG: &str = "ESS-AC-100G-RTU-1";
const VIEWER_PASSWORD: &str = "viewer-password-12";
const DEVICE_PATH: &str = "/Transportgateway/services/DeviceRequestHandler";

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/console")
}

/// An account with two virtual accounts and purchased licenses, EULA not yet accepted.
fn seed(data: &Path) {
    ok(data, &["account", "create", ACC]);
    ok(data, &["va", "create", ACC, VA]);
    ok(data, &["va", "create", ACC, LAB]);
    ok(
        data,
        &[
            "license",
            "add",
            "--account",
            ACC,
            "--va",
            VA,
            "--tag",
            TAG,
            "--quantity",
            "10",
        ],
    );
    ok(
        data,
        &[
            "license",
            "add",
            "--account",
            ACC,
            "--va",
            VA,
            "--tag",
            "ESS-AC-100G-SIA-3",
            "--quantity",
            "10",
            "--kind",
            "sia",
        ],
    );
    add_user(data, "viewer", "viewer", VIEWER_PASSWORD, &[]);
}

async fn register_device(s: &Server, token: &str, serial: &str) -> Reply {
    let url = format!("http://{}{DEVICE_PATH}", s.device_http);
    let chassis = Chassis {
        serial: serial.to_string(),
        hostname: Some("pe-browser-1".to_string()),
        ..seed_scenario()
    };
    let mut dev = SimDevice::new(chassis, &url).unwrap();
    let c = reqwest::Client::new();
    let mut last = None;
    for step in 0..2 {
        let now = Utc::now();
        let body = if step == 0 {
            dev.register_request(token, now).unwrap()
        } else {
            dev.authorize_request(now).unwrap()
        };
        let r = c
            .post(&url)
            .header("Content-Type", "text/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let reply = read_reply(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(reply.payload.status, "SUCCESS", "{}", reply.raw_payload);
        dev.accept(&reply, now).unwrap();
        last = Some(reply);
    }
    last.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_the_console_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The data dir remembers its role from the first start, so the server comes first.
    let s = Spawn::new(&data).role("authority").start();
    seed(&data);
    let shots = artifacts();
    let driver = Driver::start().await;
    let b = driver.browser(&dir.path().join("profile")).await;
    let acc_q = "account=Forty-Two+uLtd.";

    // Sign in; the session cookie is locked down.
    b.goto(&s.console_url("/")).await;
    b.wait_url("/login").await;
    b.screenshot(&shots.join("login.png")).await;
    b.sign_in(&s.console_url("/login"), "admin", ADMIN_PASSWORD)
        .await;
    let cookie = b.cookie("__Host-satellite").await.expect("session cookie");
    assert_eq!(cookie["httpOnly"], true);
    assert_eq!(cookie["secure"], true);
    assert_eq!(cookie["sameSite"], "Strict");
    assert!(b.source().await.contains("EULA") || b.source().await.contains("Agreement"));

    // Accept the EULA from the accounts page, through its confirmation.
    b.goto(&s.console_url(&format!("/accounts?{acc_q}"))).await;
    b.click_on("#accept-eula").await;
    let q = b.accept_dialog().await;
    assert!(q.contains("Agreement"), "{q}");
    b.wait_source("EULA accepted").await;
    b.screenshot(&shots.join("accounts.png")).await;

    // Create a token and read it back in the list.
    b.goto(&s.console_url(&format!("/tokens?{acc_q}&va={VA}")))
        .await;
    b.fill("#create-token input[name=description]", "browser lab token")
        .await;
    b.fill("#create-token input[name=days]", "45").await;
    b.fill("#create-token input[name=max_uses]", "5").await;
    b.click_on("#create-token-button").await;
    let token = b.text_of("#new-token-value").await;
    assert!(token.len() >= 40, "token {token:?}");
    b.click_on("#new-token button[data-copy]").await;
    b.screenshot(&shots.join("tokens.png")).await;
    b.goto(&s.console_url(&format!("/tokens?{acc_q}&va={VA}")))
        .await;
    let rows = b.find_all("#tokens tbody tr").await;
    assert_eq!(rows.len(), 1);
    let row = b.text(&rows[0]).await;
    assert!(row.contains(&token), "{row}");
    assert!(
        row.contains("browser lab token") && row.contains("ACTIVE") && row.contains("0 / 5"),
        "{row}"
    );

    // A router registers with it and shows up with its status.
    register_device(&s, &token, "FOX2399BR01").await;
    b.goto(&s.console_url(&format!("/devices?{acc_q}"))).await;
    let listed = b.text_of("#devices tbody tr").await;
    assert!(
        listed.contains("FOX2399BR01") && listed.contains("pe-browser-1"),
        "{listed}"
    );
    assert!(listed.contains("AUTHORIZED"), "{listed}");
    b.screenshot(&shots.join("devices.png")).await;
    b.click_on("#devices tbody tr a").await;
    b.wait_url("/devices/NCS560-4/FOX2399BR01").await;
    assert_eq!(b.text_of("#status").await, "AUTHORIZED");
    let ents = b.text_of("#entitlements").await;
    assert!(
        ents.contains(TAG) && ents.contains("uses 1 of 10"),
        "{ents}"
    );
    assert!(b.text_of("#sia").await.contains("In compliance"));
    b.screenshot(&shots.join("device.png")).await;

    // The dashboard counts it.
    b.goto(&s.console_url("/")).await;
    let card = b.text_of(&format!(".card[data-va={VA}]")).await;
    assert!(
        card.contains("Product instances\n1") || card.contains("Product instances 1"),
        "{card}"
    );
    b.screenshot(&shots.join("dashboard.png")).await;

    // Transfer two licenses to the lab VA.
    b.goto(&s.console_url(&format!("/licenses?{acc_q}"))).await;
    b.click_on(&format!("#transfer select[name=from] option[value={VA}]"))
        .await;
    b.click_on(&format!("#transfer select[name=tag] option[value={TAG}]"))
        .await;
    b.fill("#transfer input[name=quantity]", "2").await;
    b.click_on(&format!("#transfer select[name=to] option[value={LAB}]"))
        .await;
    b.click_on("#transfer button[type=submit]").await;
    b.accept_dialog().await;
    b.wait_source("Licenses transferred").await;
    let lab = b
        .text_of(&format!(
            "#licenses tr[data-va={LAB}][data-tag={TAG}] td.available"
        ))
        .await;
    assert_eq!(lab, "2");
    let home = b
        .text_of(&format!(
            "#licenses tr[data-va={VA}][data-tag={TAG}] td.available"
        ))
        .await;
    assert_eq!(home, "8");
    b.screenshot(&shots.join("licenses.png")).await;

    // The router page offers the new token and this satellite's address.
    b.goto(&s.console_url(&format!("/routers?{acc_q}"))).await;
    let cfg = b.text_of("#call-home").await;
    assert!(
        cfg.contains(&format!(
            "destination address http http://localhost:{}{DEVICE_PATH}",
            port_of(&s.device_http)
        )) && cfg.contains("reporting smart-licensing-data"),
        "{cfg}"
    );
    assert_eq!(
        b.text_of("#register").await,
        format!("license smart register idtoken {token}")
    );
    b.screenshot(&shots.join("routers.png")).await;

    // The audit log shows what was done, and a CSV report downloads.
    b.goto(&s.console_url("/audit?q=eula")).await;
    assert!(b.text_of("#audit").await.contains("eula.accept"));
    b.screenshot(&shots.join("audit.png")).await;
    let c = raw_client(&s);
    let session = b.cookie("__Host-satellite").await.unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, csv) = get_page(&s, &c, &session, &format!("/reports/devices.csv?{acc_q}")).await;
    assert_eq!(st, 200);
    assert!(
        csv.starts_with("pid,serial,hostname") && csv.contains("FOX2399BR01"),
        "{csv}"
    );
    let (st, csv) = get_page(&s, &c, &session, &format!("/reports/licenses.csv?{acc_q}")).await;
    assert_eq!(st, 200);
    assert!(csv.contains(&format!("{LAB},{TAG},")), "{csv}");
    b.goto(&s.console_url(&format!("/reports?{acc_q}"))).await;
    assert!(b.source().await.contains("/reports/usage.csv?"));
    b.screenshot(&shots.join("reports.png")).await;

    // Sign out: the old cookie is worthless afterwards.
    b.click_on("header form[action='/logout'] button").await;
    b.wait_url("/login").await;
    let (st, _) = get_page(&s, &c, &session, "/").await;
    assert_eq!(st, 303, "a logged-out session must not open pages");

    // A viewer sees no write action anywhere.
    b.sign_in(&s.console_url("/login"), "viewer", VIEWER_PASSWORD)
        .await;
    for path in [
        format!("/accounts?{acc_q}"),
        format!("/tokens?{acc_q}&va={VA}"),
        format!("/licenses?{acc_q}"),
        "/devices/NCS560-4/FOX2399BR01?account=Forty-Two+uLtd.".to_string(),
    ] {
        b.goto(&s.console_url(&path)).await;
        let forms = b.find_all("main form[method=post]").await;
        assert!(forms.is_empty(), "viewer sees a write form on {path}");
        assert!(
            !b.source().await.contains(&token),
            "viewer sees the token on {path}"
        );
        if path.starts_with("/tokens") {
            b.screenshot(&shots.join("viewer-tokens.png")).await;
        }
    }
    b.goto(&s.console_url("/audit")).await;
    assert!(b.source().await.contains("403"));
    b.quit().await;
    drop(driver);
    s.stop();
}

#[tokio::test]
async fn forced_posts_need_the_role_and_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Spawn::new(&data).role("authority").start();
    seed(&data);
    ok(&data, &["eula", "accept", "--account", ACC]);
    let c = raw_client(&s);

    // The viewer forges the token form with its own valid CSRF token: refused by role.
    let viewer = session_of(&s, &c, "viewer", VIEWER_PASSWORD).await;
    let (st, html) = get_page(&s, &c, &viewer, "/tokens").await;
    assert_eq!(st, 200);
    let csrf = csrf_in(&html);
    for (path, form) in [
        (
            "/tokens",
            vec![("account", ACC), ("va", VA), ("days", "30")],
        ),
        ("/accounts", vec![("name", "Viewer Corp")]),
        (
            "/licenses/transfer",
            vec![
                ("account", ACC),
                ("from", VA),
                ("tag", TAG),
                ("quantity", "1"),
                ("to", LAB),
            ],
        ),
    ] {
        let mut fields = form.clone();
        fields.push(("csrf", csrf.as_str()));
        let r = c
            .post(s.console_url(path))
            .header("Cookie", format!("__Host-satellite={viewer}"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "viewer POST {path}");
    }
    assert!(!ok(&data, &["token", "list", "--account", ACC]).contains("30"));

    // The admin without the form's CSRF field, or with another session's: refused.
    let admin = session_of(&s, &c, "admin", ADMIN_PASSWORD).await;
    for fields in [
        vec![("account", ACC), ("va", VA)],
        vec![("account", ACC), ("va", VA), ("csrf", csrf.as_str())],
    ] {
        let r = c
            .post(s.console_url("/tokens"))
            .header("Cookie", format!("__Host-satellite={admin}"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("reload the page"));
    }
    // A login form posted without its token is refused too.
    let r = c
        .post(s.console_url("/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The API accepts the session: GET on the cookie, other methods only with the header.
    let api = s.console_url("/api/v1/accounts");
    let r = c
        .get(&api)
        .header("Cookie", format!("__Host-satellite={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = serde_json::json!({"name": "Session Corp"});
    let r = c
        .post(&api)
        .header("Cookie", format!("__Host-satellite={admin}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a session POST without X-CSRF-Token");
    let (_, html) = get_page(&s, &c, &admin, "/accounts").await;
    let r = c
        .post(&api)
        .header("Cookie", format!("__Host-satellite={admin}"))
        .header("X-CSRF-Token", csrf_in(&html))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Changing a password keeps the asking session and signs the others out.
    let other = session_of(&s, &c, "viewer", VIEWER_PASSWORD).await;
    let (_, html) = get_page(&s, &c, &viewer, "/password").await;
    let r = c
        .post(s.console_url("/password"))
        .header("Cookie", format!("__Host-satellite={viewer}"))
        .form(&[
            ("csrf", csrf_in(&html).as_str()),
            ("current", VIEWER_PASSWORD),
            ("new", "a-brand-new-viewer-pw"),
            ("confirm", "a-brand-new-viewer-pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(get_page(&s, &c, &viewer, "/").await.0, 200);
    assert_eq!(get_page(&s, &c, &other, "/").await.0, 303);
    session_of(&s, &c, "viewer", "a-brand-new-viewer-pw").await;
    s.stop();
}

#[tokio::test]
async fn sessions_rotate_at_login_and_repeated_failures_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let s = Server::start(&data);
    let c = raw_client(&s);

    let first = session_of(&s, &c, "admin", ADMIN_PASSWORD).await;
    let r = login_raw(&s, &c, "admin", ADMIN_PASSWORD).await;
    let header = set_cookie(&r, "__Host-satellite").unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(attr), "{header} lacks {attr}");
    }
    let second = cookie_value(&header);
    assert_ne!(first, second);
    assert_eq!(
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &second)
            .unwrap()
            .len(),
        32
    );
    assert_eq!(get_page(&s, &c, &second, "/").await.0, 200);

    // Only a digest of the id is stored.
    let db = rusqlite::Connection::open(data.join("satellite.db")).unwrap();
    let stored: Vec<String> = db
        .prepare("SELECT id_hash FROM console_sessions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!stored.is_empty() && !stored.contains(&second));

    for n in 0..5 {
        let r = login_raw(&s, &c, "admin", "wrong-password-123").await;
        assert_eq!(r.status(), 401, "attempt {n}");
    }
    let r = login_raw(&s, &c, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 429, "the sixth attempt within 15 minutes");
    assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
    // Sessions already open are unaffected.
    assert_eq!(get_page(&s, &c, &second, "/").await.0, 200);
    s.stop();
}

/// The console's session and CSRF token for the browser's current page.
async fn browser_session(b: &Browser) -> String {
    b.cookie("__Host-satellite").await.expect("session cookie")["value"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Four days of usage snapshots for one VA, ending today, straight into the database.
fn seed_snapshots(data: &Path, account: &str, va: &str, tag: &str) {
    let db = rusqlite::Connection::open(data.join("satellite.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let va_id: i64 = db
        .query_row(
            "SELECT v.id FROM virtual_accounts v JOIN smart_accounts a ON a.id = v.account_id
              WHERE a.name = ?1 AND v.name = ?2",
            [account, va],
            |r| r.get(0),
        )
        .unwrap();
    for (back, in_use) in [(3i64, 0i64), (2, 1), (1, 1), (0, 2)] {
        let day = (Utc::now() - chrono::Duration::days(back))
            .format("%Y-%m-%d")
            .to_string();
        db.execute(
            "INSERT OR REPLACE INTO usage_snapshots (day, va_id, tag, in_use, available)
             VALUES (?1, ?2, ?3, ?4, 2)",
            rusqlite::params![day, va_id, tag, in_use],
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_users_and_trends_pages_work_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let auth = root.join("authority");
    let sat = root.join("satellite");
    let a = Spawn::new(&auth).role("authority").start();
    let s = Spawn::new(&sat).role("satellite").start();
    ok(&auth, &["account", "create", "Acme"]);
    ok(&auth, &["va", "create", "Acme", "CORE"]);
    ok(&auth, &["va", "create", "Acme", "EDGE"]);
    ok(
        &auth,
        &[
            "license",
            "add",
            "--account",
            "Acme",
            "--va",
            "CORE",
            "--tag",
            TAG,
            "--quantity",
            "2",
        ],
    );
    add_user(&auth, "viewer", "viewer", VIEWER_PASSWORD, &[]);
    add_user(&sat, "viewer", "viewer", VIEWER_PASSWORD, &[]);
    seed_snapshots(&auth, "Acme", "CORE", TAG);
    let shots = artifacts();
    let driver = Driver::start().await;
    let b = driver.browser(&root.join("profile")).await;

    // Authority: enroll a satellite for CORE from the page; the token is shown once.
    b.sign_in(&a.console_url("/login"), "admin", ADMIN_PASSWORD)
        .await;
    b.goto(&a.console_url("/sync?account=Acme")).await;
    b.fill("#enroll input[name=name]", "site-browser").await;
    b.click_on("#enroll input[name=va][value=CORE]").await;
    b.click_on("#enroll-button").await;
    let token = b.text_of("#enrollment-token").await;
    assert!(token.starts_with("sat-") && token.len() > 40, "{token:?}");
    let row = b.text_of("#satellites tbody tr").await;
    assert!(
        row.contains("site-browser") && row.contains("CORE") && row.contains("awaiting first sync"),
        "{row}"
    );
    b.screenshot(&shots.join("sync-authority.png")).await;
    b.goto(&a.console_url("/sync?account=Acme")).await;
    assert!(
        !b.source().await.contains(&token),
        "the token is shown once"
    );
    assert!(
        b.source().await.contains("disabled"),
        "CORE is served now and cannot be ticked again"
    );

    // The authority key downloads as PEM through the page's link.
    let ca = raw_client(&a);
    let admin_a = browser_session(&b).await;
    let r = ca
        .get(a.console_url("/sync/authority.pem"))
        .header("Cookie", format!("__Host-satellite={admin_a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pem = r.text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let key_path = root.join("authority.pem");
    std::fs::write(&key_path, &pem).unwrap();

    // Users: add an operator and create an API client; the secret is shown once.
    b.goto(&a.console_url("/users")).await;
    b.fill("#add-user input[name=name]", "opsuser").await;
    b.click_on("#add-user select[name=role] option[value=operator]")
        .await;
    b.fill("#add-user input[name=password]", "operator-password-1")
        .await;
    b.fill("#add-user input[name=confirm]", "operator-password-1")
        .await;
    b.click_on("#add-user-button").await;
    b.wait_source("User added").await;
    assert!(b
        .text_of("#users tr[data-user=opsuser]")
        .await
        .contains("operator"));
    b.fill("#create-client input[name=name]", "inventory").await;
    b.click_on("#create-client-button").await;
    let client_id = b.text_of("#new-client-id").await;
    let secret = b.text_of("#new-client-secret").await;
    assert!(client_id.starts_with("sat-") && secret.len() >= 40);
    b.screenshot(&shots.join("users.png")).await;
    let r = ca
        .post(a.console_url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the new client's secret works");
    let (_, html) = get_page(&a, &ca, &admin_a, "/users").await;
    let r = post_form(
        &a,
        &ca,
        &admin_a,
        "/users/clients/revoke",
        &[("csrf", &csrf_in(&html)), ("client_id", &client_id)],
    )
    .await;
    assert_eq!(r.status(), 303);
    let r = ca
        .post(a.console_url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a revoked client gets no token");
    let (_, audit) = get_page(&a, &ca, &admin_a, "/audit?q=revoke").await;
    assert!(
        audit.contains("api-client.revoke"),
        "the revocation is audited"
    );

    // Trends: one chart for the tag, linked from the dashboard.
    b.goto(&a.console_url("/")).await;
    b.click_on(".card[data-va=CORE] a[href^='/trends']").await;
    b.wait_url("/trends").await;
    let charts = b
        .find_all(&format!("section.trend[data-tag={TAG}] svg"))
        .await;
    assert_eq!(charts.len(), 1);
    let points = b
        .find_all(&format!(
            "section.trend[data-tag={TAG}] svg g.series polyline"
        ))
        .await;
    assert_eq!(points.len(), 2, "in use and available");
    b.screenshot(&shots.join("trends.png")).await;
    b.goto(&a.console_url("/trends?account=Acme&va=EDGE")).await;
    assert!(b.text_of("#no-trend").await.contains("No usage snapshot"));

    // The new operator signs in and sees neither the users page nor its link.
    b.click_on("header form[action='/logout'] button").await;
    b.wait_url("/login").await;
    b.sign_in(&a.console_url("/login"), "opsuser", "operator-password-1")
        .await;
    assert!(!b.source().await.contains("href=\"/users\""));
    b.goto(&a.console_url("/users")).await;
    assert!(b.source().await.contains("403"));

    // Satellite: pin the authority; the page warns it never synchronised.
    let url = format!("https://localhost:{}", port_of(&a.console));
    ok(
        &sat,
        &[
            "upstream",
            "set",
            "--url",
            &url,
            "--enrollment-token",
            &token,
            "--authority-key",
            key_path.to_str().unwrap(),
            "--ca",
            auth.join("tls/console.crt").to_str().unwrap(),
        ],
    );
    b.sign_in(&s.console_url("/login"), "admin", ADMIN_PASSWORD)
        .await;
    b.goto(&s.console_url("/sync")).await;
    assert!(b
        .text_of("#sync-alerts")
        .await
        .contains("never synchronised"));
    assert_eq!(b.text_of("#enrolled").await, "no");
    b.screenshot(&shots.join("sync-satellite-alert.png")).await;

    // Run now: the page reports success and the satellite is enrolled.
    b.click_on("#run-now-button").await;
    b.wait_source("id=\"run-result\"").await;
    let result = b.text_of("#run-result").await;
    assert!(result.starts_with("Synchronised"), "{result}");
    assert_eq!(b.text_of("#enrolled").await, "yes");
    assert!(b.find_all("#sync-alerts").await.is_empty());
    b.screenshot(&shots.join("sync-satellite.png")).await;

    // A request file downloads as a zip attachment.
    let cs = raw_client(&s);
    let admin_s = browser_session(&b).await;
    let (_, html) = get_page(&s, &cs, &admin_s, "/sync").await;
    let csrf = csrf_in(&html);
    let r = post_form(&s, &cs, &admin_s, "/sync/export", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let request = r.bytes().await.unwrap();
    assert!(request.starts_with(b"PK"));
    let req_path = root.join("req.zip");
    let resp_path = root.join("resp.zip");
    std::fs::write(&req_path, &request).unwrap();
    ok(
        &auth,
        &[
            "sync",
            "answer",
            req_path.to_str().unwrap(),
            "--out",
            resp_path.to_str().unwrap(),
        ],
    );

    // Import the authority's answer through the page's file upload.
    let import = async |path: &Path, want_ok: bool| -> String {
        b.goto(&s.console_url("/sync")).await;
        let input = b.find("#import-file").await;
        b.type_into(&input, path.to_str().unwrap()).await;
        b.click_on("#import-button").await;
        let class = if want_ok { "notice" } else { "error" };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = b
                .execute(
                    "var e = document.getElementById('import-result'); return [e.className, e.textContent];",
                    vec![],
                )
                .await;
            if got[0] == class {
                return got[1].as_str().unwrap_or_default().to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "import result stayed {got}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    let done = import(&resp_path, true).await;
    assert!(done.starts_with("Imported response"), "{done}");
    // The same file again is old now, and a tampered one fails verification: one line each.
    let old = import(&resp_path, false).await;
    assert!(old.contains("not newer"), "{old}");
    b.screenshot(&shots.join("sync-import-refused.png")).await;
    let mut bytes = std::fs::read(&resp_path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    let tampered = root.join("tampered.zip");
    std::fs::write(&tampered, &bytes).unwrap();
    let bad = import(&tampered, false).await;
    assert!(bad.contains("refused") && !bad.contains('\n'), "{bad}");
    b.quit().await;
    drop(driver);

    // A viewer forcing the sync POSTs with its own valid CSRF token is refused by role.
    let viewer = session_of(&s, &cs, "viewer", VIEWER_PASSWORD).await;
    let (st, html) = get_page(&s, &cs, &viewer, "/sync").await;
    assert_eq!(st, 200);
    assert!(!html.contains("run-now-button") && !html.contains("import-file"));
    let csrf = csrf_in(&html);
    for path in ["/sync/run", "/sync/export"] {
        let r = post_form(&s, &cs, &viewer, path, &[("csrf", &csrf)]).await;
        assert_eq!(r.status(), 403, "viewer POST {path}");
    }
    let r = cs
        .post(s.console_url("/sync/import"))
        .header("Cookie", format!("__Host-satellite={viewer}"))
        .header("X-CSRF-Token", &csrf)
        .header("Content-Type", "application/zip")
        .body(std::fs::read(&resp_path).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "viewer import");
    // Without the header even the admin is refused.
    let r = cs
        .post(s.console_url("/sync/import"))
        .header("Cookie", format!("__Host-satellite={admin_s}"))
        .body(std::fs::read(&resp_path).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "import without X-CSRF-Token");
    let viewer_a = session_of(&a, &ca, "viewer", VIEWER_PASSWORD).await;
    let (_, html) = get_page(&a, &ca, &viewer_a, "/sync").await;
    assert!(html.contains("site-browser") && !html.contains("id=\"enroll\""));
    let csrf = csrf_in(&html);
    let r = post_form(
        &a,
        &ca,
        &viewer_a,
        "/sync/enroll",
        &[("csrf", &csrf), ("account", "Acme"), ("name", "rogue")],
    )
    .await;
    assert_eq!(r.status(), 403, "viewer enroll");
    assert_eq!(get_page(&a, &ca, &viewer_a, "/users").await.0, 403);
    drop(s);
    drop(a);
}
