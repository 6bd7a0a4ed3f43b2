//! Logs and alerts of a running server: JSON lines with a request id per request and no
//! query string or header value in them, and sync alerts arriving on a syslog socket.

mod common;

use common::Spawn;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn request_id(resp: &reqwest::Response) -> String {
    let id = resp
        .headers()
        .get("x-request-id")
        .expect("X-Request-Id")
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_one_request_line_per_request_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let s = Spawn::new(dir.path())
        .env("SATELLITE_LOG_FORMAT", "json")
        .start();
    let console = s.client();
    let health = console.get(s.console_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let health_id = request_id(&health);
    let api = console
        .get(s.console_url("/api/v1/accounts?client_secret=querymarker-1234"))
        .header("X-Probe", "headermarker-5678")
        .header("Authorization", "Bearer bearermarker-9999")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    let api_id = request_id(&api);
    common::install_provider();
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let dev = plain
        .get(format!(
            "http://{}/no-such-page?token=querymarker-4321",
            s.device_http
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(dev.status(), 404);
    let dev_id = request_id(&dev);
    let log_path = s.stderr_path.clone();
    assert!(s.stop().success());

    let log = std::fs::read_to_string(log_path).unwrap();
    let mut requests = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["fields"]["message"] == "request" {
            requests.push(v["fields"].clone());
        }
    }
    for marker in [
        "querymarker",
        "headermarker",
        "bearermarker",
        "client_secret",
    ] {
        assert!(!log.contains(marker), "{marker} reached the log");
    }
    let find = |id: &str| requests.iter().find(|r| r["request_id"] == id).cloned();
    let api_line = find(&api_id).expect("API request logged");
    assert_eq!(api_line["method"], "GET");
    assert_eq!(api_line["path"], "/api/v1/accounts");
    assert_eq!(api_line["status"], 401);
    assert!(api_line["duration_ms"].is_u64(), "{api_line}");
    let dev_line = find(&dev_id).expect("device request logged");
    assert_eq!(dev_line["path"], "/no-such-page");
    assert_eq!(dev_line["status"], 404);
    // Health probes are logged at debug only.
    assert!(find(&health_id).is_none(), "/healthz logged at info");
    for r in &requests {
        assert_eq!(r["request_id"].as_str().map(str::len), Some(16), "{r}");
    }
}

#[test]
fn sync_alerts_reach_the_syslog_socket() {
    let root = tempfile::tempdir().unwrap();
    let auth = root.path().join("authority");
    let site = root.path().join("site");
    let key = root.path().join("authority.pem");
    let (ok, _, err) = common::cli_env(
        &auth,
        &["authority-key", "--out", key.to_str().unwrap()],
        &[("SATELLITE_ROLE", "authority")],
    );
    assert!(ok, "{err}");
    common::ok(
        &site,
        &[
            "upstream",
            "set",
            "--url",
            "https://127.0.0.1:9/",
            "--enrollment-token",
            "sat-0011223344556677.secret",
            "--authority-key",
            key.to_str().unwrap(),
        ],
    );
    let socket_path = root.path().join("log.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let s = Spawn::new(&site)
        .env("SATELLITE_SYSLOG", "true")
        .env("SATELLITE_SYSLOG_SOCKET", socket_path.to_str().unwrap())
        .start();
    let mut buf = vec![0u8; 2048];
    let n = socket.recv(&mut buf).expect("an alert within 30 s");
    let packet = String::from_utf8_lossy(&buf[..n]).into_owned();
    // <daemon.warning>Mmm dd hh:mm:ss host satellite[pid]: message
    assert!(packet.starts_with("<28>"), "{packet}");
    let rest = &packet[4..];
    let stamp = &rest[..15];
    assert!(
        chrono::NaiveDateTime::parse_from_str(&format!("2000 {stamp}"), "%Y %b %e %H:%M:%S")
            .is_ok(),
        "timestamp {stamp:?} in {packet}"
    );
    let tag = format!(" satellite[{}]: ", s.child.id());
    assert!(packet.contains(&tag), "{packet}");
    assert!(
        packet.contains("sync alert: never synchronised with upstream"),
        "{packet}"
    );
    assert!(s.stop().success());
}
