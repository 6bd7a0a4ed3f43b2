//! Alerts and notifications through the real binary: a virtual account driven out of
//! compliance by simulated routers, a webhook receiver and an SMTP sink on loopback that
//! receive the alerts and test messages, settings validation, roles, and the SMTP password
//! kept out of every answer and of the log.

mod common;
#[path = "common/console_http.rs"]
mod console_http;
#[path = "common/webdriver.rs"]
mod webdriver;

use base64::Engine;
use chrono::Utc;
use common::*;
use satellite::simulate::client::SimDevice;
use satellite::simulate::device::seed_scenario;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use webdriver::Driver;

const ACC: &str = "Acme";
const VA: &str = "CORE";
const RTU: &str = "ESS-AC-100G-RTU-1";
const SMTP_PASSWORD: &str = "smtp-pass-Zq81xv";
/// How long a message may take to arrive before the test gives up; not a performance bound.
const PATIENCE: Duration = Duration::from_secs(60);

fn device(i: usize) -> SimDevice {
    let mut ch = seed_scenario();
    ch.serial = format!("FOX1000{i:04}");
    ch.line_cards.clear();
    SimDevice::new(ch, "http://satellite").unwrap()
}

/// An authority with one RTU license in CORE; returns a registration token.
fn prepare(data: &Path) -> String {
    let s = Spawn::new(data).role("authority").start();
    assert!(s.stop().success());
    seed_account(data, ACC, VA);
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
            RTU,
            "--quantity",
            "1",
        ],
    );
    ok(data, &["token", "create", "--account", ACC, "--va", VA])
        .trim()
        .to_string()
}

/// Two routers each using one unit of the single license: CORE goes out of compliance.
async fn overuse(s: &Server, token: &str) {
    for i in 0..2 {
        let mut d = device(i);
        let r = device_call(s, d.register_request(token, Utc::now()).unwrap()).await;
        assert_eq!(r.payload.status, "SUCCESS", "{:?}", r.payload.error);
        let r = device_call(s, d.authorize_request(Utc::now()).unwrap()).await;
        assert_eq!(r.payload.status, "SUCCESS", "{:?}", r.payload.error);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A loopback HTTP server that answers 204 to every request and hands over
/// (request line, JSON body).
async fn webhook_receiver() -> (u16, mpsc::UnboundedReceiver<(String, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (body_at, len, line) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = find(&buf, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_string();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        let line = head.lines().next().unwrap_or_default().to_string();
                        break (i + 4, len, line);
                    }
                };
                while buf.len() < body_at + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let end = buf.len().min(body_at + len);
                let body = serde_json::from_slice(&buf[body_at..end]).unwrap_or(Value::Null);
                let _ = sock
                    .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = tx.send((line, body));
            });
        }
    });
    (port, rx)
}

#[derive(Debug, Default)]
struct Mail {
    auth: Option<String>,
    from: String,
    to: Vec<String>,
    data: String,
}

/// A loopback SMTP sink speaking just enough of the protocol for one client:
/// greeting, EHLO with AUTH PLAIN, MAIL, RCPT, DATA, QUIT.
async fn smtp_sink() -> (u16, mpsc::UnboundedReceiver<Mail>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r);
                let mut mail = Mail::default();
                let _ = w.write_all(b"220 sink ESMTP ready\r\n").await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_string();
                    let upper = cmd.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-sink\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("HELO") {
                        b"250 sink\r\n"
                    } else if let Some(b64) = cmd.strip_prefix("AUTH PLAIN ") {
                        let raw = base64::engine::general_purpose::STANDARD
                            .decode(b64.trim())
                            .unwrap_or_default();
                        mail.auth = Some(String::from_utf8_lossy(&raw).replace('\0', "|"));
                        b"235 2.7.0 accepted\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        mail.from = cmd[10..].to_string();
                        b"250 ok\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        mail.to.push(cmd[8..].to_string());
                        b"250 ok\r\n"
                    } else if upper == "DATA" {
                        let _ = w.write_all(b"354 end with .\r\n").await;
                        loop {
                            line.clear();
                            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == ".\r\n" {
                                break;
                            }
                            mail.data.push_str(&line);
                        }
                        let _ = tx.send(std::mem::take(&mut mail));
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    if w.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {PATIENCE:?}"))
        .unwrap_or_else(|| panic!("{what}: receiver closed"))
}

async fn post(s: &Server, token: &str, path: &str, body: Value) -> (u16, Value) {
    api_call(s, Some(token), path, Some(body)).await
}

async fn get(s: &Server, token: &str, path: &str) -> Value {
    api_json(s, token, path, None).await
}

/// Waits until the last delivery on `channel` is recorded with `ok`; returns its detail.
async fn recorded(s: &Server, token: &str, channel: &str, ok: bool) -> String {
    let field = format!("last{channel}Delivery");
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let v = get(s, token, "/api/v1/notifications").await;
        let d = &v["notifications"][field.as_str()];
        if d["ok"] == ok {
            return d["detail"].as_str().unwrap_or_default().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {field} with ok={ok}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_a_webhook_and_an_smtp_sink_and_the_password_stays_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let token = prepare(data);
    let s = Spawn::new(data).role("authority").start();
    overuse(&s, &token).await;
    let admin = bearer(&s, "system-admin").await;
    let viewer = bearer(&s, "viewer").await;

    // The compliance alert is there for readers, keyed by the virtual account.
    let alerts = get(&s, &viewer, "/api/v1/alerts").await;
    let list = alerts["alerts"].as_array().expect("alerts").clone();
    let ooc = list
        .iter()
        .find(|a| {
            a["key"]
                .as_str()
                .unwrap_or_default()
                .starts_with("compliance.va.")
        })
        .unwrap_or_else(|| panic!("no compliance alert in {alerts}"));
    assert_eq!(ooc["severity"], "error");
    assert_eq!(ooc["virtualAccount"], VA);
    assert!(ooc["text"].as_str().unwrap().contains(RTU), "{ooc}");
    let ooc_key = ooc["key"].as_str().unwrap().to_string();

    let (hook_port, mut hooks) = webhook_receiver().await;
    let (smtp_port, mut mails) = smtp_sink().await;
    let settings = json!({
        "email": {
            "host": "127.0.0.1", "port": smtp_port, "security": "none",
            "username": "alerts", "password": SMTP_PASSWORD,
            "from": "satellite@example.net",
            "to": ["noc@example.net", "oncall@example.net"]
        },
        "webhook": {"url": format!("http://127.0.0.1:{hook_port}/hook")}
    });

    // Viewers read the settings but may not change them or send tests.
    let (st, _) = post(&s, &viewer, "/api/v1/notifications", settings.clone()).await;
    assert_eq!(st, 403);
    let (st, _) = post(
        &s,
        &viewer,
        "/api/v1/notifications/test",
        json!({"channel": "webhook"}),
    )
    .await;
    assert_eq!(st, 403);

    // Refused settings say which field is wrong and change nothing.
    let bad = [
        (
            json!({"webhook": {"url": "ftp://127.0.0.1/hook"}}),
            "http://",
        ),
        (
            json!({"webhook": {"url": "https://user:pw@127.0.0.1/hook"}}),
            "user name or password",
        ),
        (
            json!({"email": {"host": "127.0.0.1", "port": 0, "from": "a@example.net", "to": ["b@example.net"]}}),
            "between 1 and 65535",
        ),
        (
            json!({"email": {"host": "127.0.0.1", "security": "ssl", "from": "a@example.net", "to": ["b@example.net"]}}),
            "none, starttls, tls",
        ),
        (
            json!({"email": {"host": "127.0.0.1", "from": "a@example.net", "to": ["not an address"]}}),
            "not a valid email address",
        ),
        (
            json!({"email": {"host": "127.0.0.1", "from": "a@example.net", "to": []}}),
            "at least one recipient",
        ),
    ];
    for (body, needle) in bad {
        let (st, v) = post(&s, &admin, "/api/v1/notifications", body.clone()).await;
        assert_eq!(st, 422, "{body}: {v}");
        assert!(v.to_string().contains(needle), "{body}: {v}");
    }
    let none = get(&s, &viewer, "/api/v1/notifications").await;
    assert!(none["notifications"]["email"].is_null(), "{none}");

    // Saved: the answer says a password is set without showing it.
    let (st, saved) = post(&s, &admin, "/api/v1/notifications", settings).await;
    assert_eq!(st, 200, "{saved}");
    assert_eq!(saved["notifications"]["email"]["passwordSet"], true);
    assert!(!saved.to_string().contains(SMTP_PASSWORD));

    // Saving wakes the alert loop: the current alerts go out on both channels.
    let (line, body) = next(&mut hooks, "webhook alert").await;
    assert!(line.starts_with("POST /hook "), "{line}");
    assert_eq!(body["kind"], "alerts", "{body}");
    assert!(
        body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == ooc_key.as_str()),
        "{body}"
    );
    let mail = next(&mut mails, "alert email").await;
    assert!(mail.data.contains("alert(s)"), "{}", mail.data);
    assert!(
        mail.data.replace("=\r\n", "").contains(RTU),
        "{}",
        mail.data
    );

    // Test sends, now, on each channel.
    let (st, t) = post(
        &s,
        &admin,
        "/api/v1/notifications/test",
        json!({"channel": "webhook"}),
    )
    .await;
    assert_eq!((st, &t["ok"]), (200, &json!(true)), "{t}");
    let (_, body) = next(&mut hooks, "test webhook").await;
    assert_eq!(body["kind"], "test", "{body}");
    assert_eq!(body["alerts"], json!([]));

    let (st, t) = post(
        &s,
        &admin,
        "/api/v1/notifications/test",
        json!({"channel": "email"}),
    )
    .await;
    assert_eq!((st, &t["ok"]), (200, &json!(true)), "{t}");
    let mail = next(&mut mails, "test email").await;
    assert_eq!(mail.from, "<satellite@example.net>");
    assert_eq!(mail.to, ["<noc@example.net>", "<oncall@example.net>"]);
    assert!(mail.data.contains("Subject: [satellite "), "{}", mail.data);
    assert!(mail.data.contains("test message"), "{}", mail.data);
    assert_eq!(
        mail.auth.as_deref(),
        Some(&*format!("|alerts|{SMTP_PASSWORD}"))
    );

    let (st, t) = post(
        &s,
        &admin,
        "/api/v1/notifications/test",
        json!({"channel": "pager"}),
    )
    .await;
    assert_eq!(st, 422, "{t}");

    // Both deliveries are recorded as ok; the settings never show the password.
    recorded(&s, &viewer, "Webhook", true).await;
    recorded(&s, &viewer, "Email", true).await;
    let view = get(&s, &viewer, "/api/v1/notifications").await;
    let n = &view["notifications"];
    assert_eq!(
        n["email"]["to"],
        json!(["noc@example.net", "oncall@example.net"])
    );
    assert!(n["email"].get("password").is_none());
    assert!(!view.to_string().contains(SMTP_PASSWORD));

    // TLS asked for but the sink speaks plain SMTP: the test send says it failed and
    // where. Leaving the password out keeps the stored one.
    let (st, saved) = post(
        &s,
        &admin,
        "/api/v1/notifications",
        json!({"email": {
            "host": "127.0.0.1", "port": smtp_port, "security": "tls", "username": "alerts",
            "from": "satellite@example.net", "to": ["noc@example.net"]
        }}),
    )
    .await;
    assert_eq!(st, 200, "{saved}");
    assert_eq!(saved["notifications"]["email"]["passwordSet"], true);
    assert!(saved["notifications"]["webhook"].is_null());
    let (st, t) = post(
        &s,
        &admin,
        "/api/v1/notifications/test",
        json!({"channel": "email"}),
    )
    .await;
    assert_eq!((st, &t["ok"]), (200, &json!(false)), "{t}");
    assert!(
        t["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("SMTP 127.0.0.1:{smtp_port}: ")),
        "{t}"
    );

    // A receiver that is gone: the test reports the refused connection, and so does the
    // loop's delivery, recorded for the alerts page.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone_port = gone.local_addr().unwrap().port();
    drop(gone);
    let (st, _) = post(
        &s,
        &admin,
        "/api/v1/notifications",
        json!({"webhook": {"url": format!("http://127.0.0.1:{gone_port}/hook")}}),
    )
    .await;
    assert_eq!(st, 200);
    let (st, t) = post(
        &s,
        &admin,
        "/api/v1/notifications/test",
        json!({"channel": "webhook"}),
    )
    .await;
    assert_eq!((st, &t["ok"]), (200, &json!(false)), "{t}");
    assert!(
        t["detail"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refused"),
        "{t}"
    );
    let (st, t) = post(
        &s,
        &admin,
        "/api/v1/notifications/test",
        json!({"channel": "email"}),
    )
    .await;
    assert_eq!(st, 422, "email was switched off: {t}");
    let failed = recorded(&s, &viewer, "Webhook", false).await;
    assert!(failed.to_lowercase().contains("refused"), "{failed}");

    let log = s.stderr();
    assert!(s.stop().success());
    assert!(log.contains("alert notification failed"), "{log}");
    assert!(
        !log.contains(SMTP_PASSWORD),
        "the SMTP password reached the log"
    );
}

const VIEWER_PASSWORD: &str = "viewer-password-Kd93";

fn add_viewer(data: &Path) {
    console_http::add_user(data, "watcher", "viewer", VIEWER_PASSWORD, &[]);
}

/// A script posting a settings change from the page, with or without its CSRF token;
/// WebDriver waits for the promise and returns the HTTP status.
fn post_settings_script(with_csrf: bool) -> String {
    let csrf = if with_csrf {
        "'csrf=' + encodeURIComponent(document.querySelector('input[name=csrf]').value) + '&'"
    } else {
        "''"
    };
    format!(
        "return fetch('/alerts/notifications', {{method: 'POST', \
         headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, \
         body: {csrf} + 'webhook_url=http%3A%2F%2F127.0.0.1%3A9%2Fx'}}).then(r => r.status);"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_page_shows_an_alert_sends_a_test_webhook_and_refuses_viewers_changes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = prepare(&data);
    add_viewer(&data);
    let s = Spawn::new(&data).role("authority").start();
    overuse(&s, &token).await;
    let (hook_port, mut hooks) = webhook_receiver().await;

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/console");
    let driver = Driver::start().await;
    let b = driver.browser(&dir.path().join("profile")).await;
    b.sign_in(&s.console_url("/login"), "admin", ADMIN_PASSWORD)
        .await;
    let banner = b.text_of("#dashboard-alerts").await;
    assert!(banner.contains("out of compliance"), "{banner}");
    b.click_on("a[href='/alerts']").await;
    b.wait_source("<h1>Alerts</h1>").await;
    let row = b.text_of("#alerts tbody tr").await;
    assert!(
        row.contains("out of compliance") && row.contains(RTU),
        "{row}"
    );

    b.fill(
        "input[name=webhook_url]",
        &format!("http://127.0.0.1:{hook_port}/hook"),
    )
    .await;
    b.click_on("#save-notifications").await;
    b.wait_source("Notification settings saved").await;
    let (_, body) = next(&mut hooks, "webhook alert").await;
    assert_eq!(body["kind"], "alerts");

    b.click_on("#test-webhook").await;
    b.wait_source("id=\"test-result\"").await;
    let result = b.text_of("#test-result").await;
    assert!(result.starts_with("Test webhook sent"), "{result}");
    let (_, body) = next(&mut hooks, "test webhook").await;
    assert_eq!(body["kind"], "test");
    std::fs::create_dir_all(&shots).unwrap();
    b.screenshot(&shots.join("alerts.png")).await;

    // A settings change without the session's CSRF token is refused.
    let status = b.execute(&post_settings_script(false), vec![]).await;
    assert_eq!(status, 403);

    // A viewer sees the alert and the settings, read-only, and the server refuses
    // a change even with a valid CSRF token.
    b.click_on("header .user button").await;
    b.wait_url("/login").await;
    b.sign_in(&s.console_url("/login"), "watcher", VIEWER_PASSWORD)
        .await;
    b.goto(&s.console_url("/alerts")).await;
    b.wait_source("<h1>Alerts</h1>").await;
    let row = b.text_of("#alerts tbody tr").await;
    assert!(row.contains("out of compliance"), "{row}");
    let settings = b.text_of("#notification-settings").await;
    assert!(
        settings.contains(&format!("127.0.0.1:{hook_port}/hook")),
        "{settings}"
    );
    assert!(b.find_all("#notifications").await.is_empty());
    assert!(b.find_all("#test-webhook").await.is_empty());
    let status = b.execute(&post_settings_script(true), vec![]).await;
    assert_eq!(status, 403);
    b.quit().await;
    assert!(s.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sia_grace_period_running_out_raises_an_alert_then_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let token = prepare(data);
    let s = Spawn::new(data).role("authority").start();
    // The routers use Essentials RTU without any SIA: their grace period starts now.
    overuse(&s, &token).await;
    let viewer = bearer(&s, "viewer").await;
    let now = get(&s, &viewer, "/api/v1/alerts").await;
    assert!(
        !now.to_string().contains("sia-grace."),
        "90 days left: {now}"
    );
    assert!(s.stop().success());

    let sia = |v: &Value| {
        v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| {
                a["key"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("sia-grace.va.")
            })
            .cloned()
            .unwrap_or_else(|| panic!("no SIA grace alert in {v}"))
    };
    // Access tokens expire on the shifted clock: each start gets one of its own.
    for (offset, role, severity, needle) in [
        ("+80d", "operator", "warning", "ends within 14 days"),
        (
            "+95d",
            "system-admin",
            "error",
            "has ended on 2 product instance(s)",
        ),
    ] {
        let s = Spawn::new(data)
            .role("authority")
            .env("SATELLITE_CLOCK_OFFSET", offset)
            .start();
        let token = bearer(&s, role).await;
        let a = sia(&get(&s, &token, "/api/v1/alerts").await);
        assert_eq!(a["severity"], severity, "{offset}: {a}");
        assert_eq!(a["virtualAccount"], VA);
        assert!(
            a["text"].as_str().unwrap().contains(needle),
            "{offset}: {a}"
        );
        assert!(s.stop().success());
    }
}
