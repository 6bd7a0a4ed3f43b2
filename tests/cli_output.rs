//! The CLI's machine-readable listings against a real database filled over the wire:
//! every CSV parses back and agrees, row for row, with the JSON of the same command.
//! Long commands stay quiet on a stderr that is not a terminal.

mod common;

use chrono::Utc;
use common::*;
use satellite::simulate::client::SimDevice;
use satellite::simulate::device::seed_scenario;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const ACC: &str = "Acme";
const VA: &str = "CORE";
/// A virtual account name that needs quoting in CSV.
const ODD_VA: &str = "LAB, \"west\"";
const RTU: &str = "ESS-AC-100G-RTU-1";

/// RFC 4180: fields separated by commas, optionally quoted, `""` for a quote inside quotes,
/// quoted fields may hold commas and line breaks. Records end with `\n` or `\r\n`.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_field_start = true;
    while let Some(ch) = chars.next() {
        if quoted {
            match ch {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                other => field.push(other),
            }
            continue;
        }
        match ch {
            '"' if at_field_start => {
                quoted = true;
                at_field_start = false;
            }
            '"' => panic!("stray quote inside an unquoted field: {text}"),
            ',' => {
                record.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                at_field_start = true;
            }
            other => {
                field.push(other);
                at_field_start = false;
            }
        }
    }
    assert!(!quoted, "unterminated quoted field: {text}");
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// The CSV as maps from header to value, after checking the header and every row's width.
fn csv_rows(text: &str, header: &[&str]) -> Vec<BTreeMap<String, String>> {
    let mut recs = parse_csv(text).into_iter();
    let head = recs.next().expect("a header line");
    assert_eq!(head, header, "CSV header");
    recs.map(|r| {
        assert_eq!(r.len(), header.len(), "row width: {r:?}");
        header.iter().map(|h| h.to_string()).zip(r).collect()
    })
    .collect()
}

fn json_of(data: &Path, args: &[&str]) -> Value {
    let out = ok(data, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn device(serial: &str, hostname: Option<&str>) -> SimDevice {
    let mut ch = seed_scenario();
    ch.serial = serial.to_string();
    ch.hostname = hostname.map(str::to_string);
    ch.line_cards.clear();
    SimDevice::new(ch, "http://satellite").unwrap()
}

fn license(data: &Path, va: &str, tag: &str, qty: &str, extra: &[&str]) {
    let mut args = vec![
        "license",
        "add",
        "--account",
        ACC,
        "--va",
        va,
        "--tag",
        tag,
        "--quantity",
        qty,
    ];
    args.extend(extra);
    ok(data, &args);
}

/// An authority with licenses in two virtual accounts, tokens, three registered devices
/// (one hiding its hostname) and today's usage snapshot taken after they registered.
async fn seeded() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert!(Spawn::new(data).role("authority").start().stop().success());
    seed_account(data, ACC, VA);
    ok(data, &["va", "create", ACC, ODD_VA]);
    license(
        data,
        VA,
        RTU,
        "10",
        &["--description", "core pool, \"main\""],
    );
    license(data, VA, "ESS-AC-400G-RTU-1", "1", &[]);
    license(data, ODD_VA, RTU, "2", &["--end", "2099-12-31"]);
    license(
        data,
        VA,
        "ESS-AC-100G-SIA-3",
        "5",
        &["--start", "2020-01-01", "--end", "2099-01-01"],
    );
    let token = ok(
        data,
        &[
            "token",
            "create",
            "--account",
            ACC,
            "--va",
            VA,
            "--uses",
            "5",
            "--description",
            "lab, rack \"7\"",
        ],
    )
    .trim()
    .to_string();
    ok(
        data,
        &[
            "token",
            "create",
            "--account",
            ACC,
            "--va",
            ODD_VA,
            "--days",
            "2",
            "--export-controlled",
        ],
    );
    let revoked = ok(data, &["token", "create", "--account", ACC, "--va", VA])
        .trim()
        .to_string();
    ok(data, &["token", "revoke", "--account", ACC, &revoked]);

    let s = Spawn::new(data).role("authority").start();
    for (serial, host) in [
        ("FOX0000A001", Some("pe1.example.net")),
        ("FOX0000A002", None),
        ("FOX0000A003", Some("pe3")),
    ] {
        let mut d = device(serial, host);
        let r = device_call(&s, d.register_request(&token, Utc::now()).unwrap()).await;
        assert_eq!(r.payload.status, "SUCCESS", "{:?}", r.payload.error);
        let r = device_call(&s, d.authorize_request(Utc::now()).unwrap()).await;
        assert_eq!(r.payload.status, "SUCCESS", "{:?}", r.payload.error);
    }
    assert!(s.stop().success());
    // A start takes today's snapshot, now with the devices' usage in it.
    assert!(Spawn::new(data).role("authority").start().stop().success());
    dir
}

#[tokio::test]
async fn json_and_csv_listings_agree_row_for_row() {
    let dir = seeded().await;
    let data = dir.path();

    // Licenses.
    let json = json_of(
        data,
        &["license", "list", "--account", ACC, "--format", "json"],
    );
    let csv = ok(
        data,
        &["license", "list", "--account", ACC, "--format", "csv"],
    );
    let rows = csv_rows(
        &csv,
        &[
            "virtual_account",
            "tag",
            "description",
            "kind",
            "purchased",
            "transferred_in",
            "transferred_out",
            "available",
            "in_use",
            "spare",
            "shortfall",
            "status",
        ],
    );
    let items = json.as_array().unwrap();
    assert!(items.len() >= 4, "four purchased lines at least: {json}");
    assert_eq!(rows.len(), items.len());
    for (j, c) in items.iter().zip(&rows) {
        assert_eq!(c["virtual_account"], s(&j["virtualAccount"]));
        assert_eq!(c["tag"], s(&j["license"]));
        assert_eq!(c["description"], s(&j["description"]));
        assert_eq!(c["kind"].to_uppercase(), s(&j["licenseType"]));
        assert_eq!(c["purchased"], s(&j["purchased"]));
        assert_eq!(c["transferred_in"], s(&j["transferredIn"]));
        assert_eq!(c["transferred_out"], s(&j["transferredOut"]));
        assert_eq!(c["available"], s(&j["quantity"]));
        assert_eq!(c["in_use"], s(&j["inUse"]));
        assert_eq!(c["spare"], s(&j["available"]));
        let balance = j["balance"].as_i64().unwrap();
        assert_eq!(c["shortfall"], (-balance).max(0).to_string());
        assert_eq!(c["status"], s(&j["status"]));
    }
    let core_rtu = rows
        .iter()
        .find(|r| r["virtual_account"] == VA && r["tag"] == RTU)
        .unwrap();
    // The tag's catalog description, which needs CSV quoting no less than a purchase note.
    assert!(!core_rtu["description"].is_empty());
    assert_ne!(
        core_rtu["in_use"], "0",
        "the devices use the tag: {core_rtu:?}"
    );
    assert!(rows.iter().any(|r| r["virtual_account"] == ODD_VA));
    // One virtual account only.
    let one = ok(
        data,
        &[
            "license",
            "list",
            "--account",
            ACC,
            "--va",
            ODD_VA,
            "--format",
            "csv",
        ],
    );
    let one = csv_rows(&one, &rows_header_of(&csv));
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["virtual_account"], ODD_VA);

    // Usage history: today's snapshot, taken after the devices registered.
    let json = json_of(
        data,
        &[
            "report",
            "usage",
            "--account",
            ACC,
            "--va",
            VA,
            "--days",
            "7",
            "--format",
            "json",
        ],
    );
    let csv = ok(
        data,
        &[
            "report",
            "usage",
            "--account",
            ACC,
            "--va",
            VA,
            "--days",
            "7",
            "--format",
            "csv",
        ],
    );
    let rows = csv_rows(&csv, &["date", "tag", "in_use", "available"]);
    let items = json.as_array().unwrap();
    assert!(!items.is_empty(), "{json}");
    assert_eq!(rows.len(), items.len());
    for (j, c) in items.iter().zip(&rows) {
        assert_eq!(c["date"], s(&j["date"]));
        assert_eq!(c["tag"], s(&j["license"]));
        assert_eq!(c["in_use"], s(&j["inUse"]));
        assert_eq!(c["available"], s(&j["quantity"]));
    }
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let snap = rows
        .iter()
        .find(|r| r["tag"] == RTU && r["date"] == today)
        .expect("today's snapshot of the RTU tag");
    assert_eq!(snap["in_use"], core_rtu["in_use"], "snapshot = live in-use");
    assert_eq!(snap["available"], "10");

    // Tokens.
    let json = json_of(
        data,
        &["token", "list", "--account", ACC, "--format", "json"],
    );
    let csv = ok(
        data,
        &["token", "list", "--account", ACC, "--format", "csv"],
    );
    let rows = csv_rows(
        &csv,
        &[
            "token",
            "virtual_account",
            "description",
            "state",
            "expires",
            "uses",
            "max_uses",
            "export_controlled",
            "created_by",
        ],
    );
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 3, "{json}");
    assert_eq!(rows.len(), 3);
    for (j, c) in items.iter().zip(&rows) {
        assert_eq!(c["token"], s(&j["token"]));
        assert_eq!(c["virtual_account"], s(&j["virtualAccount"]));
        assert_eq!(c["description"], s(&j["description"]));
        assert_eq!(c["state"], s(&j["status"]));
        assert_eq!(c["expires"], s(&j["expirationDate"]));
        assert_eq!(c["uses"], s(&j["uses"]));
        assert_eq!(c["max_uses"], s(&j["maxUses"]));
        let allowed = j["exportControlled"] == "Allowed";
        assert_eq!(c["export_controlled"], allowed.to_string());
        assert_eq!(c["created_by"], s(&j["createdBy"]));
    }
    let used = rows
        .iter()
        .find(|r| r["description"] == "lab, rack \"7\"")
        .unwrap();
    assert_eq!(used["uses"], "3");
    assert_eq!(used["max_uses"], "5");
    let mut states: Vec<&str> = rows.iter().map(|r| r["state"].as_str()).collect();
    states.sort();
    assert_eq!(states, ["ACTIVE", "ACTIVE", "REVOKED"], "{rows:?}");

    // Devices.
    let json = json_of(
        data,
        &[
            "device",
            "list",
            "--account",
            ACC,
            "--va",
            VA,
            "--format",
            "json",
        ],
    );
    let csv = ok(
        data,
        &[
            "device",
            "list",
            "--account",
            ACC,
            "--va",
            VA,
            "--format",
            "csv",
        ],
    );
    let rows = csv_rows(
        &csv,
        &[
            "udi_pid",
            "udi_serial",
            "hostname",
            "virtual_account",
            "status",
            "last_contact",
            "registration_expires",
        ],
    );
    let items = json["devices"].as_array().unwrap();
    assert_eq!(json["totalRecords"], 3);
    assert_eq!(items.len(), 3);
    assert_eq!(rows.len(), 3);
    for (j, c) in items.iter().zip(&rows) {
        assert_eq!(c["udi_pid"], s(&j["sudi"]["udiPid"]));
        assert_eq!(c["udi_serial"], s(&j["sudi"]["udiSerialNumber"]));
        assert_eq!(c["hostname"], s(&j["hostname"]));
        assert_eq!(c["virtual_account"], s(&j["virtualAccount"]));
        assert_eq!(c["status"], s(&j["status"]));
        assert_eq!(c["last_contact"], s(&j["lastContact"]));
        assert_eq!(c["registration_expires"], s(&j["registrationExpires"]));
    }
    let mut serials: Vec<&str> = rows.iter().map(|r| r["udi_serial"].as_str()).collect();
    serials.sort();
    assert_eq!(serials, ["FOX0000A001", "FOX0000A002", "FOX0000A003"]);
    let hidden = rows
        .iter()
        .find(|r| r["udi_serial"] == "FOX0000A002")
        .unwrap();
    assert_eq!(
        hidden["hostname"], "",
        "a withheld hostname is an empty field"
    );
    // Paging applies to both formats alike.
    let page = ok(
        data,
        &[
            "device",
            "list",
            "--account",
            ACC,
            "--limit",
            "2",
            "--offset",
            "1",
            "--format",
            "csv",
        ],
    );
    assert_eq!(csv_rows(&page, &rows_header_of(&csv)).len(), 2);
}

#[test]
fn user_and_api_client_listings_agree_and_defuse_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    seed_account(data, ACC, VA);
    ok(data, &["user", "add", "=cmd|calc", "--role", "viewer"]);
    ok(
        data,
        &[
            "user",
            "add",
            "acme-ops",
            "--role",
            "account-admin",
            "--account",
            ACC,
        ],
    );
    ok(data, &["user", "disable", "acme-ops"]);
    let created = ok(
        data,
        &[
            "api-client",
            "create",
            "exporter",
            "--role",
            "viewer",
            "--account",
            ACC,
        ],
    );
    let id = created
        .lines()
        .find_map(|l| l.strip_prefix("client_id: "))
        .unwrap()
        .to_string();
    ok(data, &["api-client", "revoke", &id]);

    let json = json_of(data, &["user", "list", "--format", "json"]);
    let csv = ok(data, &["user", "list", "--format", "csv"]);
    let rows = csv_rows(&csv, &["name", "role", "accounts", "disabled"]);
    let users = json.as_array().unwrap();
    assert_eq!(rows.len(), users.len());
    for (row, u) in rows.iter().zip(users) {
        let name = s(&u["name"]);
        // A name a spreadsheet would run is kept as text in CSV, as it is in JSON.
        let expected = if name.starts_with('=') {
            format!("'{name}")
        } else {
            name.clone()
        };
        assert_eq!(row["name"], expected);
        assert_eq!(row["role"], s(&u["role"]));
        assert_eq!(row["disabled"], s(&u["disabled"]));
        let scope: Vec<String> = u["accounts"].as_array().unwrap().iter().map(s).collect();
        assert_eq!(row["accounts"], scope.join(";"));
    }
    let ops = rows.iter().find(|r| r["name"] == "acme-ops").unwrap();
    assert_eq!(
        (ops["accounts"].as_str(), ops["disabled"].as_str()),
        (ACC, "true")
    );
    assert!(rows.iter().any(|r| r["name"] == "'=cmd|calc"), "{csv}");

    let json = json_of(data, &["api-client", "list", "--format", "json"]);
    let csv = ok(data, &["api-client", "list", "--format", "csv"]);
    let rows = csv_rows(
        &csv,
        &[
            "client_id",
            "name",
            "role",
            "accounts",
            "created_at",
            "revoked",
        ],
    );
    let clients = json.as_array().unwrap();
    assert_eq!((rows.len(), clients.len()), (1, 1));
    assert_eq!(rows[0]["client_id"], id);
    assert_eq!(rows[0]["client_id"], s(&clients[0]["clientId"]));
    assert_eq!(rows[0]["created_at"], s(&clients[0]["createdAt"]));
    assert_eq!(rows[0]["accounts"], ACC);
    assert_eq!(rows[0]["revoked"], "true");
}

fn rows_header_of(csv: &str) -> Vec<&str> {
    csv.lines().next().unwrap().split(',').collect()
}

#[test]
fn the_test_csv_reader_handles_quotes_commas_and_line_breaks() {
    let rows = parse_csv("a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n,,\n");
    assert_eq!(
        rows,
        vec![
            vec!["a", "b", "c"],
            vec!["x, y", "say \"hi\"", "two\nlines"],
            vec!["", "", ""],
        ]
    );
}

/// A command's stderr when stderr is a pipe (not a terminal) must hold no progress drawing.
fn assert_quiet(what: &str, stderr: &str) {
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}') && !stderr.contains("ETA"),
        "{what} wrote progress to a non-terminal stderr: {stderr:?}"
    );
}

#[tokio::test]
async fn long_commands_draw_progress_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_account(&data, ACC, VA);
    let (okay, out, err) = cli(
        &data,
        &[
            "populate",
            "--account",
            ACC,
            "--va",
            VA,
            "--devices",
            "3000",
            "--batch",
            "500",
        ],
    );
    assert!(okay, "{err}");
    assert!(
        out.contains("registered 3000 synthetic instance(s)"),
        "{out}"
    );
    assert_quiet("populate", &err);

    let backup = dir.path().join("b.zip");
    let (okay, out, err) = cli(&data, &["backup", "--out", backup.to_str().unwrap()]);
    assert!(okay, "{err}");
    assert!(out.contains("wrote"), "{out}");
    assert_quiet("backup", &err);
    assert!(backup.is_file());

    // Under a pseudo-terminal the bar is drawn, with its counts.
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("script(1) not installed; the terminal half is not checked");
        return;
    }
    let cmd = format!(
        "{} --data {} populate --account {ACC} --va {VA} --devices 10000 --batch 500",
        bin().display(),
        data.display()
    );
    let typescript = dir.path().join("typescript");
    let out = std::process::Command::new("/usr/bin/script")
        .args(["-q", "-e", "-c", &cmd])
        .arg(&typescript)
        .env("SATELLITE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let seen = std::fs::read_to_string(&typescript).unwrap_or_default()
        + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{seen}");
    assert!(seen.contains("registered 10000"), "{seen}");
    assert!(
        seen.contains("/10,000 instances") || seen.contains("/10000 instances"),
        "a terminal sees the bar with its total: {seen:?}"
    );
}

/// A token that starts with '-' (older builds could make one) is taken as a token, not as
/// an unknown option: the answer is that no such token exists.
#[test]
fn a_token_starting_with_a_hyphen_is_a_token_to_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    seed_account(dir.path(), ACC, VA);
    let (success, _, err) = cli(
        dir.path(),
        &["token", "revoke", "--account", ACC, "-jjHuMx1cS8bbTYa75Kt"],
    );
    assert!(!success);
    assert!(!err.contains("unexpected argument"), "{err}");
    assert!(err.to_lowercase().contains("token"), "{err}");
}
