//! The licenses listing and transfers over the API of a real authority process.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn licenses_list_with_quantities_and_transfers_refuse_overdraw() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let s = Spawn::new(data).role("authority").start();
    assert!(s.stop().success());
    seed_account(data, "Acme", "CORE");
    ok(data, &["va", "create", "Acme", "LAB"]);
    ok(
        data,
        &[
            "license",
            "add",
            "--account",
            "Acme",
            "--va",
            "CORE",
            "--tag",
            "ESS-AC-100G-RTU-1",
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
            "Acme",
            "--va",
            "CORE",
            "--tag",
            "ESS-AC-100G-SIA-3",
            "--quantity",
            "10",
            "--start",
            "2020-01-01",
            "--end",
            "2023-01-01",
        ],
    );
    let s = Spawn::new(data).role("authority").start();
    let c = s.client();
    let op = bearer(&s, "operator").await;
    let url = s.console_url("/api/v1/accounts/Acme/licenses");

    let v: Value = c
        .post(&url)
        .bearer_auth(&op)
        .json(&json!({"virtualAccounts": ["CORE"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["totalRecords"], 2, "{v}");
    let rtu = v["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["license"] == "ESS-AC-100G-RTU-1")
        .unwrap();
    assert_eq!(rtu["quantity"], 10);
    assert_eq!(rtu["inUse"], 0);
    assert_eq!(rtu["available"], 10);
    assert_eq!(rtu["status"], "AUTHORIZED");
    assert_eq!(rtu["licenseType"], "RTU");
    let sia = v["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["license"] == "ESS-AC-100G-SIA-3")
        .unwrap();
    assert_eq!(
        sia["quantity"], 0,
        "an ended term license no longer counts: {sia}"
    );

    let transfer = s.console_url("/api/v1/accounts/Acme/virtual-accounts/CORE/licenses/transfer");
    let r = c.post(&transfer).bearer_auth(&op)
        .json(&json!({"licenses": [{"license": "ESS-AC-100G-RTU-1", "quantity": 11, "targetVirtualAccount": "LAB"}]}))
        .send().await.unwrap();
    assert_eq!(r.status(), 409);
    let msg: Value = r.json().await.unwrap();
    assert!(
        msg["statusMessage"]
            .as_str()
            .unwrap()
            .contains("only 10 available"),
        "{msg}"
    );
    let r = c.post(&transfer).bearer_auth(&op)
        .json(&json!({"licenses": [{"license": "ESS-AC-100G-RTU-1", "quantity": 4, "targetVirtualAccount": "LAB"}]}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = c
        .post(&url)
        .bearer_auth(&op)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let find = |va: &str| {
        v["licenses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["license"] == "ESS-AC-100G-RTU-1" && l["virtualAccount"] == va)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("CORE")["quantity"], 6);
    assert_eq!(find("LAB")["quantity"], 4);
    assert_eq!(find("LAB")["transferredIn"], 4);

    // The snapshot taken at start records today's quantities.
    let hist: Value = c
        .get(s.console_url("/api/v1/accounts/Acme/virtual-accounts/CORE/usage-history?days=7"))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let row = hist["usage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["license"] == "ESS-AC-100G-RTU-1")
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["date"], today.as_str(), "{hist}");
    assert_eq!(row["quantity"], 10);
    assert_eq!(row["inUse"], 0);

    // Paging.
    let v: Value = c
        .post(&url)
        .bearer_auth(&op)
        .json(&json!({"limit": 1, "offset": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["licenses"].as_array().unwrap().len(), 1);
    assert_eq!(v["totalRecords"], 3);

    let viewer = bearer(&s, "viewer").await;
    let r = c.post(&transfer).bearer_auth(&viewer)
        .json(&json!({"licenses": [{"license": "ESS-AC-100G-RTU-1", "quantity": 1, "targetVirtualAccount": "LAB"}]}))
        .send().await.unwrap();
    assert_eq!(r.status(), 403);
    let audited: i64 = rusqlite::Connection::open(data.join("satellite.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'license.transfer'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audited, 1);
}
