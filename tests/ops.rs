//! Operations through the real binary: backup while serving and restore into a new dir,
//! refused restores, the doctor's verdicts and the Prometheus metrics over HTTPS.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const ACC: &str = "Forty-Two uLtd.";
const VA: &str = "IOSXR";

fn token(data: &Path) -> String {
    ok(
        data,
        &[
            "token",
            "create",
            "--account",
            ACC,
            "--va",
            VA,
            "--uses",
            "100",
        ],
    )
    .trim()
    .to_string()
}

fn simulate(data: &Path, s: &Server, token: &str, devices: &str, seed: &str) {
    ok(
        data,
        &[
            "simulate",
            "--url",
            &format!("http://{}", s.device_http),
            "--token",
            token,
            "--devices",
            devices,
            "--seed",
            seed,
        ],
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn query_i64(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// Usage aggregates agree with the per-device rows: true of any committed state.
fn assert_consistent(db: &Path) {
    let c = rusqlite::Connection::open(db).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let drift: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM usage_totals t WHERE t.in_use != (
               SELECT COALESCE(SUM(u.count), 0) FROM instance_usage u
               JOIN product_instances p ON p.id = u.instance_id
               WHERE p.va_id = t.va_id AND u.tag = t.tag)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(drift, 0, "usage_totals disagrees with instance_usage");
}

#[test]
fn backup_while_serving_restores_identical_data_and_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    seed_account(&data, ACC, VA);
    let s = Server::start(&data);
    let t = token(&data);
    simulate(&data, &s, &t, "3", "1");

    // A backup taken while another fleet registers is still one consistent snapshot.
    let during = dir.path().join("during.zip");
    let busy = {
        let data = data.clone();
        let url = format!("http://{}", s.device_http);
        let t = t.clone();
        std::thread::spawn(move || {
            cli(
                &data,
                &[
                    "simulate",
                    "--url",
                    &url,
                    "--token",
                    &t,
                    "--devices",
                    "20",
                    "--seed",
                    "7",
                ],
            )
        })
    };
    let (okay, out, err) = cli(&data, &["backup", "--out", during.to_str().unwrap()]);
    assert!(okay, "backup while serving: {err}");
    assert!(out.starts_with("wrote "), "{out}");
    assert!(busy.join().unwrap().0, "the fleet kept registering");
    let check = dir.path().join("check");
    ok(&check, &["restore", during.to_str().unwrap()]);
    assert_consistent(&check.join("satellite.db"));

    // After the fleet: a backup while the server still runs, restored into a new dir.
    ok(&data, &["account", "create", "Second Account"]);
    let file = dir.path().join("backup.zip");
    ok(&data, &["backup", "--out", file.to_str().unwrap()]);
    assert_eq!(mode(&file), 0o600, "the backup holds keys");
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no staging left: {leftovers:?}");

    let restored = dir.path().join("restored");
    let (okay, out, err) = cli(&restored, &["restore", file.to_str().unwrap()]);
    assert!(okay, "{err}");
    assert!(out.contains("restored"), "{out}");
    assert!(
        !err.contains("password"),
        "restore must not initialise an admin: {err}"
    );
    for f in [
        "tls/console.crt",
        "tls/console.key",
        "device-ca/device-ca.crt",
        "device-ca/device-ca.key",
        "device-ca/response-signing.crt",
        "device-ca/response-signing.key",
    ] {
        assert_eq!(
            std::fs::read(data.join(f)).unwrap(),
            std::fs::read(restored.join(f)).unwrap(),
            "{f} restored byte for byte"
        );
        if f.ends_with(".key") {
            assert_eq!(mode(&restored.join(f)), 0o600, "{f}");
        }
    }
    assert!(
        std::fs::read_dir(&restored).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".log")),
        "logs stay out of the backup"
    );

    let tokens_before = ok(
        &data,
        &["token", "list", "--account", ACC, "--format", "csv"],
    );
    let devices_before = ok(
        &data,
        &["device", "list", "--account", ACC, "--format", "csv"],
    );
    let accounts_before = ok(&data, &["account", "list"]);
    assert!(s.stop().success());

    let r = Server::start(&restored);
    assert_eq!(
        ok(
            &restored,
            &["token", "list", "--account", ACC, "--format", "csv"]
        ),
        tokens_before
    );
    assert_eq!(
        ok(
            &restored,
            &["device", "list", "--account", ACC, "--format", "csv"]
        ),
        devices_before
    );
    assert_eq!(ok(&restored, &["account", "list"]), accounts_before);
    assert!(accounts_before.contains("Second Account"));
    // The restored server presents the original certificate: a client that pinned it connects.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        r.client()
            .get(r.console_url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    // The restored satellite keeps registering routers with the carried-over token.
    simulate(&restored, &r, &t, "1", "99");
    assert!(r.stop().success());
}

/// Copies a zip entry by entry, letting `edit` change names or bodies.
fn rewrite(src: &Path, dst: &Path, edit: impl Fn(&str, Vec<u8>) -> (String, Vec<u8>)) {
    let mut zin = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut zout = zip::ZipWriter::new(std::fs::File::create(dst).unwrap());
    for i in 0..zin.len() {
        let mut e = zin.by_index(i).unwrap();
        let name = e.name().unwrap().into_owned();
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        let (n, b) = edit(&name, body);
        zout.start_file(n, zip::write::SimpleFileOptions::default())
            .unwrap();
        zout.write_all(&b).unwrap();
    }
    zout.finish().unwrap();
}

#[test]
fn restore_refuses_a_used_dir_a_tampered_file_and_escaping_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_account(&data, ACC, VA);
    let good = dir.path().join("good.zip");
    ok(&data, &["backup", "--out", good.to_str().unwrap()]);

    // Into the live data dir, or any dir with something in it: refused, untouched.
    let used = dir.path().join("used");
    std::fs::create_dir_all(&used).unwrap();
    std::fs::write(used.join("notes.txt"), b"mine").unwrap();
    let (okay, _, err) = cli(&used, &["restore", good.to_str().unwrap()]);
    assert!(!okay);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let names: Vec<_> = std::fs::read_dir(&used).unwrap().collect();
    assert_eq!(names.len(), 1, "nothing added to a refused dir");

    // One flipped byte in the database copy.
    let tampered = dir.path().join("tampered.zip");
    rewrite(&good, &tampered, |n, mut b| {
        if n == "satellite.db" {
            let mid = b.len() / 2;
            b[mid] ^= 0x55;
        }
        (n.to_string(), b)
    });
    let target = dir.path().join("t1");
    let (okay, _, err) = cli(&target, &["restore", tampered.to_str().unwrap()]);
    assert!(!okay);
    assert!(err.contains("digest"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!target.exists(), "a refused restore creates nothing");

    // A name climbing out of the data dir, listed in the manifest and present as an entry.
    let escaping = dir.path().join("escaping.zip");
    rewrite(&good, &escaping, |n, b| {
        if n == "backup.json" {
            let mut m: serde_json::Value = serde_json::from_slice(&b).unwrap();
            m["files"][0]["path"] = "../escaped.db".into();
            (n.to_string(), serde_json::to_vec(&m).unwrap())
        } else if n == "satellite.db" {
            ("../escaped.db".to_string(), b)
        } else {
            (n.to_string(), b)
        }
    });
    let target = dir.path().join("t2");
    let (okay, _, err) = cli(&target, &["restore", escaping.to_str().unwrap()]);
    assert!(!okay);
    assert!(err.contains("leaves the data dir"), "{err}");
    assert!(!dir.path().join("escaped.db").exists());

    // A database from a newer binary.
    let newer = dir.path().join("newer.zip");
    rewrite(&good, &newer, |n, b| {
        if n == "backup.json" {
            let mut m: serde_json::Value = serde_json::from_slice(&b).unwrap();
            m["schema_version"] = 999.into();
            (n.to_string(), serde_json::to_vec(&m).unwrap())
        } else {
            (n.to_string(), b)
        }
    });
    let (okay, _, err) = cli(
        &dir.path().join("t3"),
        &["restore", newer.to_str().unwrap()],
    );
    assert!(!okay);
    assert!(err.contains("schema version 999 is newer"), "{err}");

    // The untouched file still restores.
    ok(&dir.path().join("t4"), &["restore", good.to_str().unwrap()]);
    assert_eq!(
        query_i64(
            &dir.path().join("t4/satellite.db"),
            "SELECT COUNT(*) FROM smart_accounts"
        ),
        1
    );
}

const LOCAL: [(&str, &str); 3] = [
    ("SATELLITE_CONSOLE_ADDR", "127.0.0.1:0"),
    ("SATELLITE_DEVICE_HTTP_ADDR", "127.0.0.1:0"),
    ("SATELLITE_DEVICE_HTTPS_ADDR", "127.0.0.1:0"),
];

fn doctor(data: &Path, host: &str) -> (bool, String, String) {
    let mut env: Vec<(&str, &str)> = LOCAL.to_vec();
    env.push(("SATELLITE_PUBLIC_HOST", host));
    cli_env(data, &["doctor"], &env)
}

#[test]
fn doctor_passes_a_sound_deployment_and_fails_a_certificate_for_another_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data);
    let console = s.console.clone();
    let (okay, out, err) = doctor(&data, "localhost");
    assert!(okay, "doctor on a fresh deployment: {out}\n{err}");
    for line in out.lines() {
        assert!(
            ["ok ", "warn "].iter().any(|p| line.starts_with(p)),
            "unexpected line {line:?}"
        );
    }
    for check in [
        "certificate:",
        "certificate-expiry:",
        "clock:",
        "database:",
        "listener console:",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("ok ") && l.contains(check)),
            "{check} {out}"
        );
    }
    // The running server's console port reads as in use, not as a failure.
    let in_use = cli_env(
        &data,
        &["doctor"],
        &[
            ("SATELLITE_PUBLIC_HOST", "localhost"),
            ("SATELLITE_CONSOLE_ADDR", console.as_str()),
            ("SATELLITE_DEVICE_HTTP_ADDR", "127.0.0.1:0"),
            ("SATELLITE_DEVICE_HTTPS_ADDR", "127.0.0.1:0"),
        ],
    );
    assert!(in_use.0, "{}", in_use.1);
    assert!(
        in_use
            .1
            .contains(&format!("ok listener console: {console} in use")),
        "{}",
        in_use.1
    );
    assert!(s.stop().success());

    // The certificate was generated before this name was chosen.
    let (okay, out, err) = doctor(&data, "wrong.example");
    assert!(!okay, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("fail certificate:"))
        .unwrap_or_else(|| panic!("no failing certificate line: {out}"));
    assert!(line.contains("console.crt"), "{line}");
    assert!(line.contains("wrong.example"), "{line}");
    assert!(line.contains("fix:") && line.contains("tls_cert"), "{line}");
    assert_eq!(err.trim().lines().count(), 1, "one line on stderr: {err}");
    assert!(err.contains("1 check(s) failed"), "{err}");

    // A shifted clock is worth a warning, not a failure.
    let mut env: Vec<(&str, &str)> = LOCAL.to_vec();
    env.push(("SATELLITE_PUBLIC_HOST", "localhost"));
    env.push(("SATELLITE_CLOCK_OFFSET", "+91d"));
    let (okay, out, _) = cli_env(&data, &["doctor"], &env);
    assert!(okay, "{out}");
    assert!(out.contains("warn clock:"), "{out}");
}

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A small parser of the text exposition format; it panics on anything malformed and
/// on a sample whose family has no `# TYPE` line before it.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{line}"
                    );
                    typed.insert(name.to_string(), kind.to_string());
                }
                (Some("HELP"), Some(_), Some(_)) => {}
                _ => panic!("bad comment line {line:?}"),
            }
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => panic!("no value in {line:?}"),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{name}"
        );
        let mut labels = BTreeMap::new();
        let value_text = if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.chars();
            loop {
                let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                assert_eq!(chars.next(), Some('"'), "{line}");
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some(c) => value.push(c),
                            None => panic!("{line}"),
                        },
                        Some('"') => break,
                        Some(c) => value.push(c),
                        None => panic!("unterminated label in {line:?}"),
                    }
                }
                labels.insert(key.trim_start_matches(',').to_string(), value);
                match chars.next() {
                    Some(',') => {
                        let rest: String = chars.clone().collect();
                        if rest.starts_with('}') {
                            chars.next();
                            break;
                        }
                    }
                    Some('}') => break,
                    other => panic!("unexpected {other:?} in {line:?}"),
                }
            }
            chars.collect::<String>()
        } else {
            rest.to_string()
        };
        let value: f64 = value_text
            .split_whitespace()
            .next()
            .unwrap_or_else(|| panic!("no value in {line:?}"))
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(
            typed.contains_key(name),
            "sample {name} before its # TYPE line"
        );
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

async fn scrape(s: &Server, bearer: &str) -> Vec<Sample> {
    let r = s
        .client()
        .get(s.console_url("/metrics"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    parse_prometheus(&r.text().await.unwrap())
}

#[tokio::test]
async fn metrics_need_a_token_and_count_device_requests() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    seed_account(&data, ACC, VA);
    let s = Server::start(&data);

    let anonymous = s
        .client()
        .get(s.console_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = s
        .client()
        .get(s.console_url("/metrics"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let viewer = bearer(&s, "viewer").await;
    let before = scrape(&s, &viewer).await;
    let register = [("type", "register"), ("outcome", "success")];
    assert_eq!(
        value(&before, "satellite_device_requests_total", &register),
        Some(0.0)
    );
    assert_eq!(
        value(&before, "satellite_registered_instances", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &before,
            "satellite_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(value(&before, "satellite_database_bytes", &[]).unwrap_or(0.0) > 0.0);

    let t = token(&data);
    let url = format!("http://{}", s.device_http);
    let data2 = data.clone();
    tokio::task::spawn_blocking(move || {
        ok(
            &data2,
            &[
                "simulate",
                "--url",
                &url,
                "--token",
                &t,
                "--devices",
                "2",
                "--seed-scenario",
            ],
        )
    })
    .await
    .unwrap();
    let garbage = reqwest::Client::new()
        .post(format!(
            "http://{}/Transportgateway/services/DeviceRequestHandler",
            s.device_http
        ))
        .header("Content-Type", "text/xml")
        .body("<not-callhome/>")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);

    let after = scrape(&s, &viewer).await;
    assert_eq!(
        value(&after, "satellite_device_requests_total", &register),
        Some(2.0)
    );
    assert_eq!(
        value(
            &after,
            "satellite_device_requests_total",
            &[("type", "authorize"), ("outcome", "success")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &after,
            "satellite_device_requests_total",
            &[("type", "unknown"), ("outcome", "unreadable")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&after, "satellite_registered_instances", &[]),
        Some(2.0)
    );
    let in_use = after
        .iter()
        .filter(|x| {
            x.name == "satellite_usage_in_use"
                && x.labels.get("account").map(String::as_str) == Some(ACC)
                && x.labels.get("virtual_account").map(String::as_str) == Some(VA)
        })
        .count();
    assert!(in_use > 0, "usage per tag for {ACC}/{VA}: {after:?}");
    let jobs = value(&after, "satellite_writer_jobs_total", &[]).unwrap_or(0.0);
    let commits = value(&after, "satellite_writer_commits_total", &[]).unwrap_or(0.0);
    assert!(jobs >= commits && commits > 0.0, "{jobs} {commits}");
    assert!(s.stop().success());
}

#[test]
fn backup_of_a_missing_data_dir_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nothing");
    let (okay, _, err) = cli(
        &data,
        &[
            "backup",
            "--out",
            dir.path().join("b.zip").to_str().unwrap(),
        ],
    );
    assert!(!okay);
    assert!(err.contains("nothing to back up"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!data.exists(), "backup creates no data dir");
}
