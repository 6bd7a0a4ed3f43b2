//! The device gateway end to end through the real binary: registration, error codes, screens,
//! privacy, renewal, removal, hostile bodies, events, SIGKILL; never via server internals.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use futures_util::stream::{self, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use satellite::crypto::device_ca::{der_cert, name_attributes};
use satellite::gateway::callhome::{self, Session, SMART_LICENSING_ATTACHMENT};
use satellite::gateway::message::MessageType;
use satellite::simulate::client::{self, read_reply, response_key_from_chain, Reply, SimDevice};
use satellite::simulate::device::{fleet_member, seed_scenario, Chassis};
use satellite::simulate::show::show_license_summary;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

const ACC: &str = "Forty-Two uLtd.";
const VA: &str = "IOSXR";
const DEVICE_PATH: &str = "/Transportgateway/services/DeviceRequestHandler";
const ROUTER_PATH: &str = "/Transportgateway/services/RouterRequestHandler";
const SUMMARY_GOLDEN: &str = include_str!("fixtures/show/summary_after_registration.txt");
/// The order the guide's `show license summary` lists the seed router's entitlements in.
const GUIDE_ORDER: [&str; 4] = [
    "ESS-AC-100G-RTU-1",
    "N560-4-SYS-E-TRK",
    "A900-IMA8Z-TRK",
    "A900-IMA8CS1ZM-TRK",
];

// ---------------------------------------------------------------------------------------
// Wire helpers: only what a router or an operator has in hand.

fn http_url(s: &Server, path: &str) -> String {
    format!("http://{}{path}", s.device_http)
}

fn https_url(s: &Server, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", port_of(&s.device_https))
}

/// A router's HTTP client: it trusts only the satellite's generated certificate.
fn device_client(s: &Server) -> reqwest::Client {
    install_provider();
    let pem = std::fs::read(s.data.join("tls/console.crt")).unwrap();
    let cert = reqwest::Certificate::from_pem(&pem).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/callhome")
            .join(name),
    )
    .unwrap()
}

/// The guide's router under another serial (and optionally without a hostname).
fn router(serial: &str, hostname: Option<&str>) -> Chassis {
    Chassis {
        serial: serial.to_string(),
        hostname: hostname.map(str::to_string),
        ..seed_scenario()
    }
}

fn sim(url: &str, chassis: Chassis) -> SimDevice {
    SimDevice::new(chassis, url).unwrap()
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn post_as(
    c: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Answer {
    let r = c
        .post(url)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.bytes().await.unwrap().to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

/// Posts a request as a router does and returns the answer after the router has
/// checked its signature and recorded it.
async fn exchange(
    c: &reqwest::Client,
    url: &str,
    dev: &mut SimDevice,
    body: String,
    now: DateTime<Utc>,
) -> Reply {
    let a = post_as(c, url, "text/xml", body).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let reply = read_reply(&a.body).unwrap();
    dev.accept(&reply, now)
        .expect("the answer's signature verifies");
    reply
}

async fn register(c: &reqwest::Client, url: &str, dev: &mut SimDevice, token: &str) -> Reply {
    let now = Utc::now();
    let body = dev.register_request(token, now).unwrap();
    exchange(c, url, dev, body, now).await
}

async fn authorize(c: &reqwest::Client, url: &str, dev: &mut SimDevice) -> Reply {
    let now = Utc::now();
    let body = dev.authorize_request(now).unwrap();
    exchange(c, url, dev, body, now).await
}

async fn plain(c: &reqwest::Client, url: &str, dev: &mut SimDevice, kind: MessageType) -> Reply {
    let now = Utc::now();
    let body = dev.plain_request(kind, now).unwrap();
    exchange(c, url, dev, body, now).await
}

fn succeeded(r: &Reply) {
    assert_eq!(r.payload.status, "SUCCESS", "{}", r.raw_payload);
    assert!(r.payload.error.is_none());
}

/// The refusal's code, after checking it is a refusal.
fn refusal(r: &Reply) -> String {
    assert_eq!(r.payload.status, "FAILED", "{}", r.raw_payload);
    let e = r
        .payload
        .error
        .as_ref()
        .expect("a FAILED answer names its error");
    assert!(!e.message.is_empty());
    e.code.clone()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn assert_near(what: &str, got: DateTime<Utc>, want: DateTime<Utc>) {
    let off = (got - want).num_seconds().abs();
    assert!(off <= 120, "{what}: {got} is {off} s from {want}");
}

// ---------------------------------------------------------------------------------------
// Operator helpers.

fn enc(s: &str) -> String {
    s.replace(' ', "%20")
}

fn token(data: &Path, extra: &[&str]) -> String {
    let mut args = vec!["token", "create", "--account", ACC, "--va", VA];
    args.extend_from_slice(extra);
    ok(data, &args).trim().to_string()
}

fn db(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join("satellite.db")).unwrap()
}

/// What the satellite counts as in use for one tag in a virtual account of ACC.
fn in_use(data: &Path, va: &str, tag: &str) -> i64 {
    db(data)
        .query_row(
            "SELECT COALESCE(SUM(u.in_use), 0) FROM usage_totals u
             JOIN virtual_accounts v ON v.id = u.va_id
             JOIN smart_accounts a ON a.id = v.account_id
             WHERE a.name = ?1 AND v.name = ?2 AND u.tag = ?3",
            rusqlite::params![ACC, va, tag],
            |r| r.get(0),
        )
        .unwrap()
}

async fn devices_api(s: &Server, bearer: &str, body: Value) -> Vec<Value> {
    let r = s
        .client()
        .post(s.console_url(&format!("/api/v1/accounts/{}/devices", enc(ACC))))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["devices"].as_array().unwrap().clone()
}

fn find<'a>(devices: &'a [Value], serial: &str) -> Option<&'a Value> {
    devices
        .iter()
        .find(|d| d["sudi"]["udiSerialNumber"] == serial)
}

fn sudi(dev: &SimDevice) -> Value {
    json!({"sudi": {"udiPid": dev.chassis.pid, "udiSerialNumber": dev.chassis.serial}})
}

// ---------------------------------------------------------------------------------------
// Screen comparison: dates and times depend on when the test runs, so both sides have
// every `Mmm DD YYYY HH:MM:SS UTC` replaced before comparing.

fn is_router_date(s: &str) -> bool {
    const SHAPE: &str = "Aaa 00 0000 00:00:00 UTC";
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    s.len() >= SHAPE.len()
        && MONTHS.iter().any(|m| s.starts_with(m))
        && SHAPE.bytes().zip(s.bytes()).all(|(want, got)| match want {
            b'0' => got.is_ascii_digit(),
            b'A' | b'a' => got.is_ascii_alphabetic(),
            other => other == got,
        })
}

fn without_dates(text: &str) -> String {
    const LEN: usize = "Jan 01 2020 00:00:00 UTC".len();
    let mut out = String::new();
    let mut i = 0;
    while i < text.len() {
        if text.is_char_boundary(i) && is_router_date(&text[i..]) {
            out.push_str("<DATE>");
            i += LEN;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn assert_same_screen(got: &str, want: &str) {
    let g: Vec<String> = without_dates(got).lines().map(str::to_string).collect();
    let w: Vec<String> = without_dates(want).lines().map(str::to_string).collect();
    for (n, (a, b)) in g.iter().zip(&w).enumerate() {
        assert_eq!(a, b, "line {} differs; screen:\n{got}", n + 1);
    }
    assert_eq!(g.len(), w.len(), "line counts differ; screen:\n{got}");
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn devices_register_over_https_and_http_on_both_handler_paths() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    seed_account(data, ACC, VA);
    let t = token(data, &[]);
    let s = Server::start(data);
    let c = device_client(&s);

    let routes = [
        (https_url(&s, DEVICE_PATH), "FOX2301HS01"),
        (https_url(&s, ROUTER_PATH), "FOX2301HS02"),
        (http_url(&s, DEVICE_PATH), "FOX2301HT01"),
        (http_url(&s, ROUTER_PATH), "FOX2301HT02"),
    ];
    for (url, serial) in routes {
        let mut dev = sim(&url, router(serial, Some("edge")));
        let before = Utc::now();
        let r = register(&c, &url, &mut dev, &t).await;
        assert_eq!(r.kind, MessageType::Register);
        succeeded(&r);
        let p = &r.payload;
        assert_eq!(p.smart_account.as_deref(), Some(ACC), "{url}");
        assert_eq!(p.virtual_account.as_deref(), Some(VA));
        assert_eq!(p.export_controlled, Some(false));
        assert_near(
            "registration_expires",
            at(p.registration_expires.as_deref().unwrap()),
            before + Duration::days(365),
        );
        assert_near(
            "next_renewal",
            at(p.next_renewal.as_deref().unwrap()),
            before + Duration::days(182),
        );

        // The ID certificate certifies this router's own key, names its serial and is
        // issued by the CA at the end of the chain.
        let chain = p.ca_chain.as_ref().unwrap();
        assert_eq!(chain.len(), 2);
        let pem = p.id_cert.as_deref().unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        let id_der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let id = der_cert(id_der.as_ref()).unwrap();
        assert_eq!(id.spki, dev.key.spki_der());
        let subject = name_attributes(id.subject).unwrap();
        assert!(
            subject.iter().any(|a| a.value.contains(serial)),
            "subject names the SUDI: {subject:?}"
        );
        let ca_der = CertificateDer::from_pem_slice(chain[1].as_bytes()).unwrap();
        assert_eq!(id.issuer, der_cert(ca_der.as_ref()).unwrap().subject);
        assert_near(
            "id_cert notAfter",
            id.not_after,
            before + Duration::days(365),
        );

        // The router now holds the registration and the key that signs answers.
        assert!(dev.state.registered_at.is_some());
        assert_eq!(
            dev.pinned_response_spki,
            Some(response_key_from_chain(chain).unwrap())
        );
    }
    let n: i64 = db(data)
        .query_row("SELECT COUNT(*) FROM product_instances", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 4);
}

#[tokio::test]
async fn every_error_code_is_answered_to_a_real_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    seed_account(data, ACC, VA);
    ok(data, &["account", "create", "No EULA Ltd"]);
    ok(data, &["va", "create", "No EULA Ltd", "LAB"]);
    let good = token(data, &[]);
    let once = token(data, &["--uses", "1"]);
    let revoked = token(data, &[]);
    let short = token(data, &["--days", "1"]);
    let no_eula = ok(
        data,
        &["token", "create", "--account", "No EULA Ltd", "--va", "LAB"],
    )
    .trim()
    .to_string();
    ok(data, &["token", "revoke", "--account", ACC, &revoked]);

    let s = Server::start(data);
    let c = device_client(&s);
    let url = http_url(&s, DEVICE_PATH);

    // A registered router, whose answers also give every other router the key to check
    // refusals with.
    let mut reg = sim(&url, router("FOX2302ER01", Some("r1")));
    succeeded(&register(&c, &url, &mut reg, &once).await);
    let response_key = reg.pinned_response_spki.clone().unwrap();
    let fresh = |serial: &str| {
        let mut d = sim(&url, router(serial, Some("fresh")));
        d.pinned_response_spki = Some(response_key.clone());
        d
    };

    let mut d = fresh("FOX2302ER02");
    let r = register(&c, &url, &mut d, "no-such-token-anywhere").await;
    assert_eq!(refusal(&r), "TOKEN_INVALID");

    let mut d = fresh("FOX2302ER03");
    let r = register(&c, &url, &mut d, &revoked).await;
    assert_eq!(refusal(&r), "TOKEN_REVOKED");

    // `once` was spent by `reg`.
    let mut d = fresh("FOX2302ER04");
    let r = register(&c, &url, &mut d, &once).await;
    assert_eq!(refusal(&r), "TOKEN_EXHAUSTED");

    let mut d = fresh("FOX2302ER05");
    let r = register(&c, &url, &mut d, &no_eula).await;
    assert_eq!(refusal(&r), "EULA_NOT_ACCEPTED");

    let mut d = fresh("FOX2302ER06");
    let r = authorize(&c, &url, &mut d).await;
    assert_eq!(refusal(&r), "NOT_REGISTERED");

    // A payload changed after signing.
    let now = Utc::now();
    let mut extra = Map::new();
    extra.insert(
        "entitlements".into(),
        json!([{"tag": "N560-4-SYS-E-TRK", "count": 1}]),
    );
    let payload = reg.payload(now, extra);
    let signature = reg.key.sign_b64(payload.as_bytes()).unwrap();
    let body = reg.wrap(
        MessageType::Authorize,
        &client::tamper(&payload),
        &signature,
        now,
    );
    let r = exchange(&c, &url, &mut reg, body, now).await;
    assert_eq!(refusal(&r), "BAD_SIGNATURE");

    // A registration whose proof of possession is signed by another key.
    let mut d = fresh("FOX2302ER07");
    let impostor = sim(&url, router("FOX2302ER08", None));
    let mut extra = Map::new();
    extra.insert("id_token".into(), json!(good));
    extra.insert("public_key".into(), json!(d.key.public_key_pem()));
    let payload = d.payload(now, extra);
    let signature = impostor.key.sign_b64(payload.as_bytes()).unwrap();
    let body = d.wrap(MessageType::Register, &payload, &signature, now);
    let r = exchange(&c, &url, &mut d, body, now).await;
    assert_eq!(refusal(&r), "BAD_SIGNATURE");

    // The same signed authorize twice.
    let now = Utc::now();
    let body = reg.authorize_request(now).unwrap();
    succeeded(&exchange(&c, &url, &mut reg, body.clone(), now).await);
    let r = exchange(&c, &url, &mut reg, body, now).await;
    assert_eq!(refusal(&r), "REPLAY");

    for off in [Duration::hours(-2), Duration::hours(2)] {
        let then = Utc::now() + off;
        let body = reg.authorize_request(then).unwrap();
        let r = exchange(&c, &url, &mut reg, body, then).await;
        assert_eq!(refusal(&r), "CLOCK_SKEW", "{off}");
    }

    // Well-formed JSON whose fields break the protocol.
    let mut d = fresh("FOX2302ER09");
    let now = Utc::now();
    let mut extra = Map::new();
    extra.insert("public_key".into(), json!(d.key.public_key_pem()));
    let payload = d.payload(now, extra);
    let body = d.envelope(MessageType::Register, &payload, now).unwrap();
    let r = exchange(&c, &url, &mut d, body, now).await;
    assert_eq!(refusal(&r), "MALFORMED", "register without id_token");

    let mut extra = Map::new();
    extra.insert(
        "entitlements".into(),
        json!([{"tag": "bad tag!", "count": 1}]),
    );
    let payload = reg.payload(now, extra);
    let body = reg.envelope(MessageType::Authorize, &payload, now).unwrap();
    let r = exchange(&c, &url, &mut reg, body, now).await;
    assert_eq!(refusal(&r), "MALFORMED", "entitlement tag with a space");

    // Two days on, the one-day token has expired; the router's clock moved too.
    assert!(s.stop().success());
    let s = Spawn::new(data)
        .env("SATELLITE_CLOCK_OFFSET", "+2d")
        .start();
    let url = http_url(&s, DEVICE_PATH);
    let mut d = fresh("FOX2302ER10");
    let later = Utc::now() + Duration::days(2);
    let body = d.register_request(&short, later).unwrap();
    let r = exchange(&c, &url, &mut d, body, later).await;
    assert_eq!(refusal(&r), "TOKEN_EXPIRED");
    // The same request on the router's unshifted clock is refused for skew first.
    let now = Utc::now();
    let body = d.register_request(&good, now).unwrap();
    let r = exchange(&c, &url, &mut d, body, now).await;
    assert_eq!(refusal(&r), "CLOCK_SKEW");
}

#[tokio::test]
async fn the_seed_router_is_told_its_compliance_and_shows_the_guide_summary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    seed_account(data, ACC, VA);
    // The guide's router shows "Export-Controlled Functionality: ALLOWED".
    let t = token(data, &["--export-controlled"]);
    let s = Server::start(data);
    let c = device_client(&s);
    let url = http_url(&s, ROUTER_PATH);
    let mut dev = sim(&url, seed_scenario());

    let r = register(&c, &url, &mut dev, &t).await;
    succeeded(&r);
    assert_eq!(r.payload.export_controlled, Some(true));

    let before = Utc::now();
    let r = authorize(&c, &url, &mut dev).await;
    assert_eq!(r.kind, MessageType::Authorize);
    succeeded(&r);
    let a = r.payload.authorization.as_ref().unwrap();
    assert_eq!(a.status, "OUT_OF_COMPLIANCE");
    assert_near(
        "next_communication",
        at(&a.next_communication),
        before + Duration::days(30),
    );
    assert_near(
        "communication_deadline",
        at(&a.communication_deadline),
        before + Duration::days(90),
    );
    let statuses: BTreeMap<&str, (&str, u32)> = a
        .entitlements
        .iter()
        .map(|e| (e.tag.as_str(), (e.status.as_str(), e.count)))
        .collect();
    let want: BTreeMap<&str, (&str, u32)> = [
        ("ESS-AC-100G-RTU-1", ("OUT_OF_COMPLIANCE", 1)),
        ("N560-4-SYS-E-TRK", ("AUTHORIZED", 1)),
        ("A900-IMA8Z-TRK", ("AUTHORIZED", 2)),
        ("A900-IMA8CS1ZM-TRK", ("AUTHORIZED", 1)),
    ]
    .into_iter()
    .collect();
    assert_eq!(statuses, want);

    // The usage is stored as reported.
    let rows: Vec<(String, i64)> = db(data)
        .prepare(
            "SELECT u.tag, u.count FROM instance_usage u
             JOIN product_instances p ON p.id = u.instance_id
             WHERE p.udi_serial = 'FOX2305P81D' ORDER BY u.tag",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let reported: Vec<(String, i64)> = dev
        .chassis
        .entitlements()
        .into_iter()
        .map(|(t, n)| (t, i64::from(n)))
        .collect();
    assert_eq!(rows, reported);
    assert_eq!(in_use(data, VA, "ESS-AC-100G-RTU-1"), 1);

    // The satellite keeps the order a router reports its usage in; reported in the
    // guide's order, the router's screen is the guide's, line for line.
    let usage: BTreeMap<String, u32> = dev.chassis.entitlements().into_iter().collect();
    let ents: Vec<Value> = GUIDE_ORDER
        .iter()
        .map(|t| json!({"tag": t, "count": usage[*t]}))
        .collect();
    let mut extra = Map::new();
    extra.insert("entitlements".into(), Value::Array(ents));
    let now = Utc::now();
    let payload = dev.payload(now, extra);
    let body = dev.envelope(MessageType::Authorize, &payload, now).unwrap();
    succeeded(&exchange(&c, &url, &mut dev, body, now).await);
    assert_same_screen(&show_license_summary(&dev.state), SUMMARY_GOLDEN);

    // The simulator CLI drives the same exchange over the wire and prints the screens.
    let t2 = token(data, &["--export-controlled"]);
    let out = ok(
        data,
        &[
            "simulate",
            "--url",
            &format!("http://{}", s.device_http),
            "--token",
            &t2,
            "--devices",
            "1",
            "--seed-scenario",
            "--show",
        ],
    );
    for line in [
        "Router# show license summary",
        "Smart Account: Forty-Two uLtd.",
        "Virtual Account: IOSXR",
        "Status: OUT OF COMPLIANCE",
        "(ESS-AC-100G-RTU-1)",
        "1 OUT OF COMPLIANCE",
        "(A900-IMA8Z-TRK)",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("register") && l.contains("ok       1")),
        "{out}"
    );
}

#[tokio::test]
async fn a_router_withholding_its_hostname_is_stored_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    seed_account(data, ACC, VA);
    let plain_token = token(data, &[]);
    let export_token = token(data, &["--export-controlled"]);
    let s = Server::start(data);
    let c = device_client(&s);
    let url = https_url(&s, DEVICE_PATH);

    let mut private = sim(&url, router("FOX2303PV01", None));
    let r = register(&c, &url, &mut private, &plain_token).await;
    succeeded(&r);
    assert_eq!(r.payload.export_controlled, Some(false));
    succeeded(&authorize(&c, &url, &mut private).await);

    let mut named = sim(&url, router("FOX2303PV02", Some("pe-lab-7")));
    let r = register(&c, &url, &mut named, &export_token).await;
    succeeded(&r);
    assert_eq!(r.payload.export_controlled, Some(true));
    succeeded(&authorize(&c, &url, &mut named).await);

    let viewer = bearer(&s, "viewer").await;
    let list = devices_api(&s, &viewer, json!({})).await;
    let p = find(&list, "FOX2303PV01").unwrap();
    assert!(p["hostname"].is_null(), "{p}");
    assert_eq!(p["exportControlled"], false);
    let n = find(&list, "FOX2303PV02").unwrap();
    assert_eq!(n["hostname"], "pe-lab-7");
    assert_eq!(n["exportControlled"], true);

    let conn = db(data);
    let host = |serial: &str| -> Option<String> {
        conn.query_row(
            "SELECT hostname FROM product_instances WHERE udi_serial = ?1",
            [serial],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(host("FOX2303PV01"), None);
    assert_eq!(host("FOX2303PV02").as_deref(), Some("pe-lab-7"));
}

#[tokio::test]
async fn renew_id_issues_a_new_certificate_and_keeps_the_device_registered() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    seed_account(data, ACC, VA);
    let t = token(data, &[]);
    let s = Server::start(data);
    let c = device_client(&s);
    let url = http_url(&s, DEVICE_PATH);
    let mut dev = sim(&url, router("FOX2304RN01", Some("renewer")));
    let serial_in_db = || -> String {
        db(data)
            .query_row(
                "SELECT id_cert_serial FROM product_instances WHERE udi_serial = 'FOX2304RN01'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };

    let first = register(&c, &url, &mut dev, &t).await;
    succeeded(&first);
    let first_serial = serial_in_db();
    succeeded(&authorize(&c, &url, &mut dev).await);

    let renewed = plain(&c, &url, &mut dev, MessageType::RenewId).await;
    assert_eq!(renewed.kind, MessageType::RenewId);
    succeeded(&renewed);
    let (old_pem, new_pem) = (
        first.payload.id_cert.as_deref().unwrap(),
        renewed.payload.id_cert.as_deref().unwrap(),
    );
    assert_ne!(old_pem, new_pem);
    let new_der = CertificateDer::from_pem_slice(new_pem.as_bytes()).unwrap();
    let new_cert = der_cert(new_der.as_ref()).unwrap();
    assert_eq!(
        new_cert.spki,
        dev.key.spki_der(),
        "the same key is certified"
    );
    let new_serial = serial_in_db();
    assert_ne!(new_serial, first_serial);
    assert_eq!(renewed.payload.smart_account.as_deref(), Some(ACC));
    assert_eq!(renewed.payload.virtual_account.as_deref(), Some(VA));
    assert_near(
        "registration_expires after renewal",
        at(renewed.payload.registration_expires.as_deref().unwrap()),
        Utc::now() + Duration::days(365),
    );

    // Still registered: it authorizes and is listed.
    succeeded(&authorize(&c, &url, &mut dev).await);
    let list = ok(data, &["device", "list", "--account", ACC]);
    assert!(list.contains("NCS560-4:FOX2304RN01"), "{list}");
}

#[tokio::test]
async fn deregistered_removed_and_transferred_devices_leave_their_virtual_account() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    seed_account(data, ACC, VA);
    ok(data, &["va", "create", ACC, "LAB"]);
    let t = token(data, &[]);
    let s = Server::start(data);
    let c = device_client(&s);
    let url = http_url(&s, DEVICE_PATH);
    let viewer = bearer(&s, "viewer").await;
    let operator = bearer(&s, "operator").await;
    let console = s.client();

    let mut leaving = sim(&url, router("FOX2306DR01", Some("leaving")));
    succeeded(&register(&c, &url, &mut leaving, &t).await);
    succeeded(&authorize(&c, &url, &mut leaving).await);
    assert_eq!(in_use(data, VA, "A900-IMA8Z-TRK"), 2);
    assert_eq!(in_use(data, VA, "ESS-AC-100G-RTU-1"), 1);
    assert!(find(&devices_api(&s, &viewer, json!({})).await, "FOX2306DR01").is_some());

    let r = plain(&c, &url, &mut leaving, MessageType::Deregister).await;
    assert_eq!(r.kind, MessageType::Deregister);
    succeeded(&r);
    assert!(leaving.state.registered_at.is_none());
    assert!(find(&devices_api(&s, &viewer, json!({})).await, "FOX2306DR01").is_none());
    let list = ok(data, &["device", "list", "--account", ACC]);
    assert!(!list.contains("FOX2306DR01"), "{list}");
    for tag in GUIDE_ORDER {
        assert_eq!(in_use(data, VA, tag), 0, "{tag} returned to the pool");
    }

    // Removed by an operator over the API: the router is no longer known.
    let mut removed = sim(&url, router("FOX2306DR02", Some("removed")));
    succeeded(&register(&c, &url, &mut removed, &t).await);
    succeeded(&authorize(&c, &url, &mut removed).await);
    let r = console
        .post(s.console_url(&format!("/api/v1/accounts/{}/devices/remove", enc(ACC))))
        .bearer_auth(&operator)
        .json(&json!({"productInstanceRemoveRequests": [sudi(&removed)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(find(&devices_api(&s, &viewer, json!({})).await, "FOX2306DR02").is_none());
    assert_eq!(in_use(data, VA, "ESS-AC-100G-RTU-1"), 0);
    let r = authorize(&c, &url, &mut removed).await;
    assert_eq!(refusal(&r), "NOT_REGISTERED");

    // Transferred to another virtual account: it stays registered and its usage moves.
    let mut moved = sim(&url, router("FOX2306DR03", Some("moved")));
    succeeded(&register(&c, &url, &mut moved, &t).await);
    succeeded(&authorize(&c, &url, &mut moved).await);
    let r = console
        .post(s.console_url(&format!("/api/v1/accounts/{}/devices/transfer", enc(ACC))))
        .bearer_auth(&operator)
        .json(&json!({"devices": [sudi(&moved)], "targetVirtualAccount": "LAB"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let lab = devices_api(&s, &viewer, json!({"virtualAccounts": ["LAB"]})).await;
    assert_eq!(find(&lab, "FOX2306DR03").unwrap()["virtualAccount"], "LAB");
    let home = devices_api(&s, &viewer, json!({"virtualAccounts": [VA]})).await;
    assert!(find(&home, "FOX2306DR03").is_none());
    assert_eq!(in_use(data, "LAB", "A900-IMA8Z-TRK"), 2);
    assert_eq!(in_use(data, VA, "A900-IMA8Z-TRK"), 0);
    succeeded(&authorize(&c, &url, &mut moved).await);
    let list = ok(data, &["device", "list", "--account", ACC, "--va", "LAB"]);
    assert!(list.contains("NCS560-4:FOX2306DR03"), "{list}");
}

#[tokio::test]
async fn hostile_bodies_get_a_plain_reason_and_the_listener_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    seed_account(data, ACC, VA);
    let t = token(data, &[]);
    let s = Server::start(data);
    let c = device_client(&s);
    let url = http_url(&s, DEVICE_PATH);
    let mut dev = sim(&url, router("FOX2307HB01", Some("target")));
    succeeded(&register(&c, &url, &mut dev, &t).await);

    let not_json = callhome::build(
        &Session {
            to: url.clone(),
            from: "urn:udi:PID:NCS560-4,SN:FOX2307HB01".into(),
            message_id: "1:FOX2307HB01:1".into(),
        },
        "http://www.cisco.com/2017/01/callhome/smartlicensing",
        "2024-01-01T00:00:00Z",
        SMART_LICENSING_ATTACHMENT,
        "{\"header\": this is not JSON",
    );
    let mut oversized = b"<?xml version=\"1.0\"?><a>".to_vec();
    oversized.resize(3_145_729, b'x');
    let good_body = dev.authorize_request(Utc::now()).unwrap();

    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        (
            "billion laughs",
            "text/xml",
            fixture("hostile-billion-laughs.xml"),
            400,
        ),
        ("XXE", "text/xml", fixture("hostile-xxe.xml"), 400),
        (
            "100-deep nesting",
            "text/xml",
            fixture("hostile-deep-nesting.xml"),
            400,
        ),
        (
            "invalid UTF-8",
            "text/xml",
            fixture("hostile-invalid-utf8.xml"),
            400,
        ),
        (
            "SOAP 1.1 namespace",
            "text/xml",
            fixture("hostile-wrong-namespace.xml"),
            400,
        ),
        (
            "attachment not JSON",
            "application/xml",
            not_json.into_bytes(),
            400,
        ),
        ("over the size bound", "application/xml", oversized, 413),
        (
            "JSON content type",
            "application/json",
            good_body.into_bytes(),
            415,
        ),
    ];
    let health = format!("http://{}/healthz", s.device_http);
    for (what, content_type, body, want) in cases {
        let a = post_as(&c, &url, content_type, body).await;
        assert_eq!(a.status, want, "{what}: {}", a.text());
        assert!(
            a.content_type.starts_with("text/plain"),
            "{what}: content type {:?}",
            a.content_type
        );
        assert!(!a.text().trim().is_empty(), "{what}: a reason is given");
        assert!(!a.text().contains("root:"), "{what}: no file content leaks");
        let h = c.get(&health).send().await.unwrap();
        assert_eq!(h.status(), 200, "{what}: still healthy");
    }
    // The refused authorize (wrong content type) consumed nothing; a fresh one succeeds.
    let r = authorize(&c, &url, &mut dev).await;
    succeeded(&r);
    assert_eq!(r.payload.authorization.unwrap().entitlements.len(), 4);
}

#[tokio::test]
async fn a_syslog_call_home_message_is_kept_as_a_device_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let s = Server::start(data);
    let c = device_client(&s);
    let url = https_url(&s, ROUTER_PATH);
    let a = post_as(
        &c,
        &url,
        "application/xml",
        fixture("callhome-syslog-nexus7000.xml"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(
        a.text().contains("1004:TXX12345678:478F82E6"),
        "{}",
        a.text()
    );

    let rows: Vec<(String, String, String)> = db(data)
        .prepare(
            "SELECT kind, message_type, detail FROM device_events WHERE udi_serial = 'TXX12345678'",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (kind, message_type, detail) = &rows[0];
    assert_eq!(kind, "callhome");
    assert_eq!(message_type, "http://www.cisco.com/2005/05/callhome/syslog");
    assert!(detail.contains("ETHPORT-2-IF_SEQ_ERROR"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_acknowledged_authorizations_survive_a_sigkill() {
    const FLEET: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    seed_account(data, ACC, VA);
    let t = token(data, &[]);
    let mut s = Server::start(data);
    let c = device_client(&s);
    let url = http_url(&s, DEVICE_PATH);
    let mut fleet: Vec<SimDevice> = (0..FLEET as u64)
        .map(|i| sim(&url, fleet_member(i, 9)))
        .collect();

    let registered: Vec<String> = stream::iter(fleet.iter_mut())
        .map(|d| {
            let (c, url, t) = (c.clone(), url.clone(), t.clone());
            async move { register(&c, &url, d, &t).await.payload.status }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(registered.iter().all(|s| s == "SUCCESS"), "{registered:?}");

    // All fifty at once; each answer is an acknowledgement of a committed write.
    let now = Utc::now();
    let bodies: Vec<String> = fleet
        .iter_mut()
        .map(|d| d.authorize_request(now).unwrap())
        .collect();
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|b| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let a = post_as(&c, &url, "text/xml", b).await;
                (a.status, read_reply(&a.body).map(|r| r.payload.status).ok())
            })
        })
        .collect();
    for task in tasks {
        let (status, outcome) = task.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(outcome.as_deref(), Some("SUCCESS"));
    }

    let killed = std::process::Command::new("kill")
        .args(["-9", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = s.child.wait();
    drop(s);

    let s = Server::start(data);
    let conn = db(data);
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let instances: i64 = conn
        .query_row("SELECT COUNT(*) FROM product_instances", [], |r| r.get(0))
        .unwrap();
    assert_eq!(instances, FLEET as i64);
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for d in &fleet {
        let stored: Vec<(String, i64)> = conn
            .prepare(
                "SELECT u.tag, u.count FROM instance_usage u
                 JOIN product_instances p ON p.id = u.instance_id
                 WHERE p.udi_serial = ?1 ORDER BY u.tag",
            )
            .unwrap()
            .query_map([&d.chassis.serial], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let reported: Vec<(String, i64)> = d
            .chassis
            .entitlements()
            .into_iter()
            .map(|(t, n)| (t, i64::from(n)))
            .collect();
        assert_eq!(stored, reported, "{}", d.chassis.serial);
        for (tag, n) in reported {
            *totals.entry(tag).or_default() += n;
        }
    }
    for (tag, n) in &totals {
        assert_eq!(in_use(data, VA, tag), *n, "usage_totals of {tag}");
    }

    // The restarted satellite still knows every router.
    let url = http_url(&s, DEVICE_PATH);
    succeeded(&authorize(&c, &url, &mut fleet[0]).await);
}
