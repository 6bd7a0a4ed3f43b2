//! REST equivalents of console pages that scripts need: a product instance's detail with its
//! events, enrolling a satellite and fetching the authority key, and the audit trail.

mod common;

use chrono::Utc;
use common::*;
use satellite::simulate::client::SimDevice;
use satellite::simulate::device::seed_scenario;
use serde_json::json;

const ACC: &str = "Acme";
const VA: &str = "CORE";

#[tokio::test]
async fn device_detail_enrollment_authority_key_and_audit_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert!(Spawn::new(data).role("authority").start().stop().success());
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
            "ESS-AC-100G-RTU-1",
            "--quantity",
            "4",
        ],
    );
    let token = ok(data, &["token", "create", "--account", ACC, "--va", VA])
        .trim()
        .to_string();
    let s = Spawn::new(data).role("authority").start();
    let admin = bearer(&s, "system-admin").await;

    // A registered router, read back through the API with its licenses and events.
    let mut ch = seed_scenario();
    ch.serial = "FOX0000D001".into();
    ch.hostname = Some("pe-detail".into());
    let mut d = SimDevice::new(ch, "http://satellite").unwrap();
    let pid = d.chassis.pid.clone();
    for body in [
        d.register_request(&token, Utc::now()).unwrap(),
        d.authorize_request(Utc::now()).unwrap(),
    ] {
        let r = device_call(&s, body).await;
        assert_eq!(r.payload.status, "SUCCESS", "{:?}", r.payload.error);
    }
    let path = format!("/api/v1/accounts/{ACC}/devices/{pid}/FOX0000D001?events=10");
    let v = api_json(&s, &admin, &path, None).await;
    assert_eq!(v["status"], "SUCCESS", "{v}");
    assert_eq!(v["device"]["hostname"], "pe-detail");
    assert_eq!(v["device"]["virtualAccount"], VA);
    assert!(
        !v["device"]["licenses"].as_array().unwrap().is_empty(),
        "{v}"
    );
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["messageType"].as_str())
        .collect();
    assert!(!kinds.is_empty(), "events recorded: {v}");
    let missing = api_json(
        &s,
        &admin,
        &format!("/api/v1/accounts/{ACC}/devices/{pid}/NOPE"),
        None,
    )
    .await;
    assert_eq!(missing["status"], "ERROR", "{missing}");

    // Enroll a satellite: the token comes back once and the satellite is listed.
    let e = api_json(
        &s,
        &admin,
        "/api/v1/satellites",
        Some(json!({"account": ACC, "name": "site-9", "virtualAccounts": [VA]})),
    )
    .await;
    assert_eq!(e["status"], "SUCCESS", "{e}");
    let sat_id = e["satelliteId"].as_str().unwrap();
    assert!(e["enrollmentToken"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{sat_id}.")));
    let list = api_json(&s, &admin, "/api/v1/satellites", None).await;
    assert!(list.to_string().contains(sat_id), "{list}");
    let bad = api_json(
        &s,
        &admin,
        "/api/v1/satellites",
        Some(json!({"account": "No Such", "name": "x"})),
    )
    .await;
    assert_eq!(bad["status"], "ERROR", "{bad}");

    // The authority key over REST is the one the CLI writes.
    let pem = s
        .client()
        .get(s.console_url("/api/v1/authority-key"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let file = dir.path().join("authority.pem");
    ok(data, &["authority-key", "--out", file.to_str().unwrap()]);
    assert_eq!(pem, std::fs::read_to_string(&file).unwrap());

    // The audit trail holds the enrollment, findable by text; a viewer may not read it.
    let a = api_json(
        &s,
        &admin,
        &format!("/api/v1/audit?q={sat_id}&limit=5"),
        None,
    )
    .await;
    let entries = a["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{a}");
    assert_eq!(entries[0]["action"], "satellite.enroll");
    assert!(
        entries[0]["detail"]
            .as_str()
            .unwrap()
            .contains("name=site-9"),
        "{a}"
    );
    let all = api_json(&s, &admin, "/api/v1/audit?limit=500", None).await;
    assert!(all["entries"].as_array().unwrap().len() > 1, "{all}");
    let viewer = bearer(&s, "viewer").await;
    let r = s
        .client()
        .get(s.console_url("/api/v1/audit"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
