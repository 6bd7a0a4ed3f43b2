//! Upgrades from every earlier schema version: a database built only up to version N and
//! filled with rows valid then is opened by the real binary, which migrates it to the latest.
//! The rows survive, still work over the API, and the file is sound.
//!
//! New migrations are covered without editing this file: the versions come from
//! `migrate::MIGRATIONS`. A new table needs a line in `SEEDS` (the test says so).

mod common;

use common::*;
use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use satellite::storage::migrate::{self, MIGRATIONS};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const FAR: i64 = 4_102_444_800; // 2100-01-01T00:00:00Z
const CLIENT_ID: &str = "sat-upgradeclient";
const CLIENT_SECRET: &str = "an-old-client-secret-from-before-the-upgrade";
const USER_PASSWORD: &str = "an-old-users-password";

/// Tables whose rows a migration writes itself; they need no seed.
const SEEDED_BY_MIGRATION: &[&str] = &["license_hierarchy"];

/// Representative rows: (table, [(column, value)]). A row is inserted at version N when its
/// table exists then, with the columns that exist then.
fn seeds() -> Vec<(&'static str, Vec<(&'static str, Sql)>)> {
    let i = |v: i64| Sql::Integer(v);
    let t = |v: &str| Sql::Text(v.to_string());
    let client_hash = satellite::auth::hash_password(CLIENT_SECRET).unwrap();
    let user_hash = satellite::auth::hash_password(USER_PASSWORD).unwrap();
    vec![
        (
            "smart_accounts",
            vec![
                ("id", i(1)),
                ("name", t("Acme")),
                ("eula_accepted_at", i(T0)),
                ("eula_accepted_by", t("admin")),
                ("created_at", i(T0)),
            ],
        ),
        (
            "virtual_accounts",
            vec![
                ("id", i(1)),
                ("account_id", i(1)),
                ("name", t("CORE")),
                ("created_at", i(T0)),
            ],
        ),
        (
            "virtual_accounts",
            vec![
                ("id", i(2)),
                ("account_id", i(1)),
                ("name", t("LAB")),
                ("created_at", i(T0)),
            ],
        ),
        (
            "registration_tokens",
            vec![
                ("id", i(1)),
                ("token", t("OLDTOKEN-1")),
                ("va_id", i(1)),
                ("description", t("from before")),
                ("created_at", i(T0)),
                ("expires_at", i(FAR)),
                ("max_uses", i(10)),
                ("uses", i(1)),
                ("export_controlled", i(0)),
                ("created_by", t("admin")),
            ],
        ),
        (
            "licenses",
            vec![
                ("id", i(1)),
                ("va_id", i(1)),
                ("tag", t("ESS-AC-100G-RTU-1")),
                ("description", t("100G essentials")),
                ("kind", t("rtu")),
                ("quantity", i(10)),
                ("created_at", i(T0)),
            ],
        ),
        (
            "license_transfers",
            vec![
                ("id", i(1)),
                ("from_va_id", i(1)),
                ("to_va_id", i(2)),
                ("tag", t("ESS-AC-100G-RTU-1")),
                ("quantity", i(2)),
                ("created_at", i(T0)),
                ("created_by", t("admin")),
            ],
        ),
        (
            "product_instances",
            vec![
                ("id", i(1)),
                ("udi_pid", t("NCS560-4")),
                ("udi_serial", t("FOX2305P81D")),
                ("hostname", t("pe1")),
                ("software_version", t("7.11.2")),
                ("va_id", i(1)),
                ("public_key", t("-----BEGIN PUBLIC KEY-----")),
                ("export_controlled", i(0)),
                ("token_id", i(1)),
                ("registered_at", i(T0)),
                ("last_renewed_at", i(T0)),
                ("id_cert_serial", t("01")),
                ("id_cert_not_after", i(FAR)),
                ("last_contact_at", i(T0)),
                ("last_authorized_at", i(T0)),
                ("sia_grace_used_seconds", i(0)),
            ],
        ),
        (
            "instance_usage",
            vec![
                ("instance_id", i(1)),
                ("tag", t("ESS-AC-100G-RTU-1")),
                ("count", i(4)),
            ],
        ),
        (
            "usage_totals",
            vec![
                ("va_id", i(1)),
                ("tag", t("ESS-AC-100G-RTU-1")),
                ("in_use", i(4)),
            ],
        ),
        (
            "va_instance_counts",
            vec![("va_id", i(1)), ("instances", i(1))],
        ),
        (
            "seen_nonces",
            vec![
                ("udi_serial", t("FOX2305P81D")),
                ("nonce", t("n-1")),
                ("seen_at", i(T0)),
            ],
        ),
        (
            "device_events",
            vec![
                ("id", i(1)),
                ("udi_pid", t("NCS560-4")),
                ("udi_serial", t("FOX2305P81D")),
                ("kind", t("register")),
                ("message_type", t("REGISTER")),
                ("message_id", t("m-1")),
                ("detail", t("")),
                ("received_at", i(T0)),
            ],
        ),
        (
            "usage_snapshots",
            vec![
                ("day", t("2026-01-01")),
                ("va_id", i(1)),
                ("tag", t("ESS-AC-100G-RTU-1")),
                ("in_use", i(4)),
                ("available", i(8)),
            ],
        ),
        (
            "users",
            vec![
                ("id", i(1)),
                ("name", t("admin")),
                ("password_hash", t(&user_hash)),
                ("role", t("system-admin")),
                ("created_at", i(T0)),
            ],
        ),
        (
            "users",
            vec![
                ("id", i(2)),
                ("name", t("olduser")),
                ("password_hash", t(&user_hash)),
                ("role", t("viewer")),
                ("created_at", i(T0)),
            ],
        ),
        (
            "api_clients",
            vec![
                ("id", i(1)),
                ("name", t("old-client")),
                ("client_id", t(CLIENT_ID)),
                ("secret_hash", t(&client_hash)),
                ("role", t("operator")),
                ("created_at", i(T0)),
                ("created_by", t("admin")),
            ],
        ),
        (
            "principal_accounts",
            vec![
                ("principal_kind", t("user")),
                ("principal_id", i(2)),
                ("account_id", i(1)),
            ],
        ),
        (
            "access_tokens",
            vec![
                ("token_hash", t("0000")),
                ("client_id", i(1)),
                ("issued_at", i(T0)),
                ("expires_at", i(FAR)),
            ],
        ),
        (
            "audit_log",
            vec![
                ("id", i(1)),
                ("at", i(T0)),
                ("actor", t("admin")),
                ("action", t("user.add")),
                ("target", t("olduser")),
                ("detail", t("role=viewer")),
            ],
        ),
        (
            "settings",
            vec![("key", t("upgrade.marker")), ("value", t("kept"))],
        ),
        (
            "satellites",
            vec![
                ("id", i(1)),
                ("satellite_id", t("sat-edge-1")),
                ("name", t("edge")),
                ("account_id", i(1)),
                ("public_key", t("pk")),
                ("created_at", i(T0)),
                ("enrolled_at", i(T0)),
                ("last_request_sequence", i(3)),
                ("last_response_sequence", i(3)),
                ("last_sync_at", i(T0)),
            ],
        ),
        (
            "satellite_vas",
            vec![("va_id", i(2)), ("satellite_id", i(1))],
        ),
        (
            "reported_instances",
            vec![
                ("satellite_id", i(1)),
                ("udi_pid", t("NCS560-4")),
                ("udi_serial", t("FOX0000R001")),
                ("va_id", i(2)),
                ("hostname", t("edge-pe")),
                ("last_contact_at", t("2026-01-01T00:00:00Z")),
                ("usage_json", t("{}")),
            ],
        ),
        (
            "reported_usage",
            vec![
                ("va_id", i(2)),
                ("tag", t("ESS-AC-100G-RTU-1")),
                ("in_use", i(1)),
            ],
        ),
        (
            "sync_changes",
            vec![
                ("id", i(1)),
                ("at", i(T0)),
                ("kind", t("register")),
                ("account", t("Acme")),
                ("va", t("CORE")),
                ("udi_pid", t("NCS560-4")),
                ("udi_serial", t("FOX2305P81D")),
            ],
        ),
        (
            "console_sessions",
            vec![
                ("id_hash", t("feed")),
                ("user_id", i(2)),
                ("csrf_token", t("c")),
                ("created_at", i(T0)),
                ("last_seen_at", i(T0)),
            ],
        ),
    ]
}

fn tables(c: &Connection) -> BTreeSet<String> {
    let mut st = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn columns(c: &Connection, table: &str) -> Vec<String> {
    let mut st = c
        .prepare(&format!("PRAGMA table_info(\"{table}\")"))
        .unwrap();
    st.query_map([], |r| r.get(1))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn seed(c: &Connection, version: i64) {
    let present = tables(c);
    for (table, row) in seeds() {
        if !present.contains(table) {
            continue;
        }
        let cols = columns(c, table);
        let row: Vec<_> = row
            .into_iter()
            .filter(|(k, _)| cols.iter().any(|c| c == k))
            .collect();
        let names: Vec<&str> = row.iter().map(|(k, _)| *k).collect();
        let marks = vec!["?"; row.len()].join(", ");
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({marks})",
            names.join(", ")
        );
        let values: Vec<&Sql> = row.iter().map(|(_, v)| v).collect();
        c.execute(&sql, rusqlite::params_from_iter(values))
            .unwrap_or_else(|e| panic!("seeding {table} at schema version {version}: {e}; update SEEDS in tests/upgrade.rs"));
    }
    let empty: Vec<String> = present
        .iter()
        .filter(|t| !SEEDED_BY_MIGRATION.contains(&t.as_str()))
        .filter(|t| {
            c.query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
                == 0
        })
        .cloned()
        .collect();
    assert!(
        empty.is_empty(),
        "schema version {version} has tables without representative rows: {empty:?}; add them to SEEDS in tests/upgrade.rs"
    );
}

/// Every row of every table, as text per column, for the columns that exist now.
type Dump = BTreeMap<String, (Vec<String>, BTreeSet<Vec<String>>)>;

fn dump(c: &Connection) -> Dump {
    let mut out = Dump::new();
    for t in tables(c) {
        let cols = columns(c, &t);
        let list = cols
            .iter()
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut st = c.prepare(&format!("SELECT {list} FROM \"{t}\"")).unwrap();
        let n = cols.len();
        let rows: BTreeSet<Vec<String>> = st
            .query_map([], |r| (0..n).map(|i| r.get::<_, String>(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.insert(t, (cols, rows));
    }
    out
}

/// Rows of `before` projected on their columns must all still be in `after`.
fn assert_survived(version: i64, before: &Dump, after: &Connection) {
    for (table, (cols, rows)) in before {
        let now_cols = columns(after, table);
        assert!(
            !now_cols.is_empty(),
            "v{version}: table {table} is gone after the upgrade"
        );
        for c in cols {
            assert!(
                now_cols.contains(c),
                "v{version}: column {table}.{c} is gone"
            );
        }
        let list = cols
            .iter()
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut st = after
            .prepare(&format!("SELECT {list} FROM \"{table}\""))
            .unwrap();
        let n = cols.len();
        let now: BTreeSet<Vec<String>> = st
            .query_map([], |r| (0..n).map(|i| r.get::<_, String>(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for row in rows {
            assert!(now.contains(row), "v{version}: {table} lost row {row:?}");
        }
    }
}

fn build_old(data: &Path, version: i64) -> Dump {
    std::fs::create_dir_all(data).unwrap();
    let mut c = Connection::open(data.join("satellite.db")).unwrap();
    migrate::apply_up_to(&mut c, version).unwrap();
    assert_eq!(migrate::current_version(&c).unwrap(), version);
    seed(&c, version);
    assert_eq!(migrate::current_version(&c).unwrap(), version);
    dump(&c)
}

#[test]
fn the_migration_list_is_dense_and_numbered_like_the_files() {
    for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
        assert_eq!(*v, i as i64 + 1);
    }
    let files: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schema"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    assert_eq!(
        files.len(),
        MIGRATIONS.len(),
        "every schema/*.sql is in MIGRATIONS: {files:?}"
    );
}

#[tokio::test]
async fn every_earlier_schema_version_upgrades_to_the_latest_with_its_data() {
    let latest = migrate::latest_version();
    let olds: Vec<i64> = MIGRATIONS
        .iter()
        .map(|m| m.0)
        .filter(|v| *v < latest)
        .collect();
    assert!(!olds.is_empty() || latest == 1);
    for version in olds {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let before = build_old(&data, version);

        // The real binary opens it (and migrates) for a plain listing.
        let accounts = ok(&data, &["account", "list", "--format", "json"]);
        assert!(accounts.contains("\"Acme\""), "v{version}: {accounts}");
        let users = ok(&data, &["user", "list"]);
        assert!(users.contains("olduser\tviewer"), "v{version}: {users}");
        let devices = ok(
            &data,
            &["device", "list", "--account", "Acme", "--format", "csv"],
        );
        assert!(devices.contains("FOX2305P81D"), "v{version}: {devices}");

        let c = Connection::open(data.join("satellite.db")).unwrap();
        assert_eq!(migrate::current_version(&c).unwrap(), latest, "v{version}");
        let integrity: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "v{version}");
        let fk_problems: i64 = c
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(fk_problems, 0, "v{version}: foreign keys broken");
        assert_survived(version, &before, &c);
        // Derived tables agree with the rows they summarise.
        if tables(&c).contains("va_instance_counts") {
            let mismatched: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM (SELECT va_id, COUNT(*) AS n FROM product_instances GROUP BY va_id) p
                     LEFT JOIN va_instance_counts k USING (va_id) WHERE k.instances IS NOT p.n",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(
                mismatched, 0,
                "v{version}: va_instance_counts disagrees with the instances"
            );
        }
        drop(c);

        // The old credentials and rows still work through a serving process.
        let s = Server::start(&data);
        let token = {
            let r = s
                .client()
                .post(s.console_url("/oauth/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "v{version}: the old API client signs in");
            let v: serde_json::Value = r.json().await.unwrap();
            v["access_token"].as_str().unwrap().to_string()
        };
        let v = api_json(
            &s,
            &token,
            "/api/v1/accounts/Acme/devices",
            Some(serde_json::json!({})),
        )
        .await;
        assert_eq!(v["totalRecords"], 1, "v{version}: {v}");
        assert_eq!(v["devices"][0]["sudi"]["udiSerialNumber"], "FOX2305P81D");
        let v = api_json(
            &s,
            &token,
            "/api/v1/accounts/Acme/licenses",
            Some(serde_json::json!({"virtualAccounts": ["CORE"]})),
        )
        .await;
        assert_eq!(
            v["licenses"][0]["quantity"], 8,
            "v{version}: 10 bought, 2 moved: {v}"
        );
        assert_eq!(v["licenses"][0]["inUse"], 4, "v{version}: {v}");
        assert!(s.stop().success());
    }
}
