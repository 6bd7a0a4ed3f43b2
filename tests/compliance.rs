//! Compliance through the real binary: the 400G-to-100G hierarchy from the seeded table,
//! a term license ending, and authorization expiry at day 90 on a shifted clock.

mod common;

use chrono::{Duration, Utc};
use common::*;
use satellite::simulate::client::SimDevice;
use satellite::simulate::device::seed_scenario;
use serde_json::{json, Value};

const ACC: &str = "Acme";
const VA: &str = "CORE";
const RTU: &str = "ESS-AC-100G-RTU-1";

fn device(i: usize) -> SimDevice {
    let mut ch = seed_scenario();
    ch.serial = format!("FOX0000{i:04}");
    ch.line_cards.clear();
    SimDevice::new(ch, "http://satellite").unwrap()
}

async fn rtu_status(s: &Server, d: &mut SimDevice, shift: Duration) -> String {
    let r = device_call(s, d.authorize_request(Utc::now() + shift).unwrap()).await;
    assert_eq!(r.payload.status, "SUCCESS", "{:?}", r.payload.error);
    let a = r.payload.authorization.unwrap();
    a.entitlements
        .iter()
        .find(|e| e.tag == RTU)
        .unwrap()
        .status
        .clone()
}

fn authority(dir: &std::path::Path) {
    let s = Spawn::new(dir).role("authority").start();
    assert!(s.stop().success());
    seed_account(dir, ACC, VA);
}

#[tokio::test]
async fn a_400g_license_covers_four_100g_devices_and_the_fifth_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    authority(dir.path());
    ok(
        dir.path(),
        &[
            "license",
            "add",
            "--account",
            ACC,
            "--va",
            VA,
            "--tag",
            "ESS-AC-400G-RTU-1",
            "--quantity",
            "1",
        ],
    );
    let token = ok(
        dir.path(),
        &["token", "create", "--account", ACC, "--va", VA],
    )
    .trim()
    .to_string();
    let s = Spawn::new(dir.path()).role("authority").start();
    let mut devs: Vec<SimDevice> = (0..5).map(device).collect();
    for d in devs.iter_mut() {
        let r = device_call(&s, d.register_request(&token, Utc::now()).unwrap()).await;
        assert_eq!(r.payload.status, "SUCCESS");
    }
    for d in devs.iter_mut().take(4) {
        assert_eq!(rtu_status(&s, d, Duration::zero()).await, "AUTHORIZED");
    }
    let viewer = bearer(&s, "viewer").await;
    let list: Value = api_json(
        &s,
        &viewer,
        &format!("/api/v1/accounts/{ACC}/licenses"),
        Some(json!({})),
    )
    .await;
    let row = list["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["license"] == RTU)
        .unwrap()
        .clone();
    assert_eq!(row["status"], "AUTHORIZED");
    assert_eq!(
        row["substitutions"][0]["license"], "ESS-AC-400G-RTU-1",
        "{row}"
    );
    assert_eq!(row["substitutions"][0]["quantity"], 1);

    assert_eq!(
        rtu_status(&s, &mut devs[4], Duration::zero()).await,
        "OUT_OF_COMPLIANCE"
    );
    assert_eq!(
        rtu_status(&s, &mut devs[0], Duration::zero()).await,
        "OUT_OF_COMPLIANCE",
        "every instance using the tag sees it"
    );

    // Removing the fifth returns its license and the others are covered again.
    let admin = bearer(&s, "operator").await;
    let r = s.client().post(s.console_url(&format!("/api/v1/accounts/{ACC}/devices/remove"))).bearer_auth(&admin)
        .json(&json!({"productInstanceRemoveRequests": [{"sudi": {"udiPid": "NCS560-4", "udiSerialNumber": devs[4].chassis.serial}}]}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        rtu_status(&s, &mut devs[0], Duration::zero()).await,
        "AUTHORIZED"
    );

    // The maintained per-VA count agrees with the rows after registrations and a removal.
    let conn = rusqlite::Connection::open(dir.path().join("satellite.db")).unwrap();
    let (kept, counted): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT SUM(instances) FROM va_instance_counts), (SELECT COUNT(*) FROM product_instances)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((kept, counted), (4, 4));
    let page = api_json(
        &s,
        &viewer,
        &format!("/api/v1/accounts/{ACC}/devices"),
        Some(json!({"limit": 2, "offset": 3})),
    )
    .await;
    assert_eq!(page["totalRecords"], 4);
    assert_eq!(
        page["devices"].as_array().unwrap().len(),
        1,
        "offset 3 of 4 leaves one"
    );
    drop(conn);

    // The hierarchy is data: without its row, the 400G license no longer stands in.
    assert!(s.stop().success());
    rusqlite::Connection::open(dir.path().join("satellite.db"))
        .unwrap()
        .execute(
            "DELETE FROM license_hierarchy WHERE higher_tag = 'ESS-AC-400G-RTU-1'",
            [],
        )
        .unwrap();
    let s = Spawn::new(dir.path()).role("authority").start();
    assert_eq!(
        rtu_status(&s, &mut devs[0], Duration::zero()).await,
        "OUT_OF_COMPLIANCE"
    );
}

#[tokio::test]
async fn a_term_license_ending_and_a_silent_device_change_status_on_the_shifted_clock() {
    let dir = tempfile::tempdir().unwrap();
    authority(dir.path());
    let end = (Utc::now() + Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    ok(
        dir.path(),
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
            "2",
            "--end",
            &end,
        ],
    );
    let token = ok(
        dir.path(),
        &[
            "token",
            "create",
            "--account",
            ACC,
            "--va",
            VA,
            "--days",
            "365",
        ],
    )
    .trim()
    .to_string();
    let s = Spawn::new(dir.path()).role("authority").start();
    let mut a = device(1);
    let mut quiet = device(2);
    for d in [&mut a, &mut quiet] {
        let r = device_call(&s, d.register_request(&token, Utc::now()).unwrap()).await;
        assert_eq!(r.payload.status, "SUCCESS");
        assert_eq!(rtu_status(&s, d, Duration::zero()).await, "AUTHORIZED");
    }
    assert!(s.stop().success());

    // Day 9: still inside the term; the quiet device is not yet expired.
    let s = Spawn::new(dir.path())
        .role("authority")
        .env("SATELLITE_CLOCK_OFFSET", "+9d")
        .start();
    assert_eq!(
        rtu_status(&s, &mut a, Duration::days(9)).await,
        "AUTHORIZED"
    );
    assert!(s.stop().success());
    // Day 11: the term has ended.
    let s = Spawn::new(dir.path())
        .role("authority")
        .env("SATELLITE_CLOCK_OFFSET", "+11d")
        .start();
    assert_eq!(
        rtu_status(&s, &mut a, Duration::days(11)).await,
        "OUT_OF_COMPLIANCE"
    );
    assert!(s.stop().success());

    let status_of = |body: &Value, serial: &str| -> String {
        body["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["sudi"]["udiSerialNumber"] == serial)
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Day 89 after its last report the quiet device is not expired; day 91 it is.
    let s = Spawn::new(dir.path())
        .role("authority")
        .env("SATELLITE_CLOCK_OFFSET", "+89d")
        .start();
    let v = bearer(&s, "viewer").await;
    let body: Value = api_json(
        &s,
        &v,
        &format!("/api/v1/accounts/{ACC}/devices"),
        Some(json!({})),
    )
    .await;
    assert_eq!(body["totalRecords"], 2, "{body}");
    assert_ne!(
        status_of(&body, &quiet.chassis.serial),
        "AUTHORIZATION_EXPIRED"
    );
    assert!(s.stop().success());
    let s = Spawn::new(dir.path())
        .role("authority")
        .env("SATELLITE_CLOCK_OFFSET", "+91d")
        .start();
    let v = bearer(&s, "viewer").await;
    let body: Value = api_json(
        &s,
        &v,
        &format!("/api/v1/accounts/{ACC}/devices"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        status_of(&body, &quiet.chassis.serial),
        "AUTHORIZATION_EXPIRED"
    );
}
