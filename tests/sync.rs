//! An authority and a satellite as two real processes: enrollment, a file round trip,
//! an online round trip, refusals that change nothing, and a transfer cut off mid-way.

mod common;

use common::*;
use satellite::crypto::ed25519::SyncKeyPair;
use satellite::gateway::message::MessageType;
use satellite::simulate::client::SimDevice;
use satellite::simulate::device::seed_scenario;
use satellite::sync::archive::{self, FileKind, Header};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const TAG: &str = "ESS-AC-100G-RTU-1";

fn db(p: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(p.join("satellite.db")).unwrap()
}

/// Everything an import may touch, as text, to prove a refusal changed nothing.
fn fingerprint(p: &Path) -> String {
    let c = db(p);
    let mut out = String::new();
    for q in [
        "SELECT va_id, tag, kind, quantity, starts_at, ends_at FROM licenses ORDER BY id",
        "SELECT key, value FROM settings ORDER BY key",
        "SELECT name FROM smart_accounts ORDER BY name",
        "SELECT id FROM sync_changes ORDER BY id",
    ] {
        let mut st = c.prepare(q).unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap();
        for row in rows {
            out.push_str(&row.unwrap());
            out.push('\n');
        }
    }
    out
}

fn pool(p: &Path, tag: &str) -> i64 {
    db(p)
        .query_row(
            "SELECT COALESCE(SUM(quantity), 0) FROM licenses WHERE tag = ?1",
            [tag],
            |r| r.get(0),
        )
        .unwrap()
}

async fn authorize(server: &Server, dev: &mut SimDevice) -> String {
    let body = dev.authorize_request(chrono::Utc::now()).unwrap();
    let reply = device_call(server, body).await;
    dev.accept(&reply, chrono::Utc::now()).unwrap();
    let a = reply.payload.authorization.expect("authorization");
    a.entitlements
        .iter()
        .find(|e| e.tag == TAG)
        .map(|e| e.status.clone())
        .unwrap_or_default()
}

async fn register(server: &Server, dev: &mut SimDevice, token: &str) {
    let body = dev.register_request(token, chrono::Utc::now()).unwrap();
    let reply = device_call(server, body).await;
    assert_eq!(reply.payload.status, "SUCCESS", "{:?}", reply.payload.error);
    assert_eq!(reply.kind, MessageType::Register);
    dev.accept(&reply, chrono::Utc::now()).unwrap();
}

/// Rewrites a zip: each entry through `edit` (None drops it), then `extra` entries appended.
fn rezip(
    src: &[u8],
    edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>,
    extra: Vec<(&str, Vec<u8>)>,
) -> Vec<u8> {
    let mut input = zip::ZipArchive::new(std::io::Cursor::new(src)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..input.len() {
        let mut f = input.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        if let Some(b) = edit(&name, bytes) {
            out.start_file(name, opts).unwrap();
            out.write_all(&b).unwrap();
        }
    }
    for (name, b) in extra {
        out.start_file(name, opts).unwrap();
        out.write_all(&b).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// A TCP relay that cuts the first answer after a few bytes, then relays faithfully.
fn cutting_proxy(target: String) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for client in l.incoming() {
            let Ok(mut client) = client else { break };
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let Ok(mut server) = TcpStream::connect(&target) else {
                break;
            };
            let mut c2 = client.try_clone().unwrap();
            let mut s2 = server.try_clone().unwrap();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
            });
            std::thread::spawn(move || {
                if n == 0 {
                    // Let the whole request through and the server answer, then cut the answer short.
                    std::thread::sleep(std::time::Duration::from_millis(1500));
                    let mut buf = [0u8; 64];
                    if let Ok(k) = server.read(&mut buf) {
                        let _ = client.write_all(&buf[..k.min(32)]);
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = server.shutdown(std::net::Shutdown::Both);
                } else {
                    let _ = std::io::copy(&mut server, &mut client);
                }
            });
        }
    });
    (addr, count)
}

#[tokio::test]
async fn authority_and_satellite_sync_by_file_and_online() {
    install_provider();
    let root = tempfile::tempdir().unwrap();
    let auth = root.path().join("authority");
    let sat = root.path().join("satellite");
    let key_pem = root.path().join("authority.pem");

    // Authority: an account, a VA with 2 licenses, an enrolled satellite.
    let a = Spawn::new(&auth).role("authority").start();
    ok(&auth, &["account", "create", "Acme"]);
    ok(&auth, &["va", "create", "Acme", "CORE"]);
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
    let token = ok(
        &auth,
        &["enroll", "create", "--account", "Acme", "--name", "site-1"],
    )
    .trim()
    .to_string();
    ok(
        &auth,
        &["authority-key", "--out", key_pem.to_str().unwrap()],
    );
    let (okay, _, err) = cli(
        &auth,
        &[
            "enroll",
            "create",
            "--account",
            "Acme",
            "--name",
            "site-2",
            "--va",
            "CORE",
        ],
    );
    assert!(!okay && err.contains("one satellite at a time"), "{err}");

    // Satellite: pin the authority and sync online through the real HTTPS listener.
    let url = format!("https://localhost:{}", port_of(&a.console));
    let ca = auth.join("tls/console.crt");
    let s0 = Spawn::new(&sat).start();
    assert!(s0.stop().success());
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
            key_pem.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
        ],
    );
    let out = ok(&sat, &["sync", "now"]);
    assert!(out.contains("synchronised"), "{out}");
    assert_eq!(
        pool(&sat, TAG),
        2,
        "the authority's licenses became the satellite's pool"
    );
    let accounts = ok(&sat, &["account", "list"]);
    assert!(
        accounts.contains("Acme"),
        "first sync creates the account: {accounts}"
    );
    let status = ok(&sat, &["sync", "status"]);
    assert!(status.contains("enrolled: yes"), "{status}");
    // The enrollment token is consumed: a second satellite cannot reuse it.
    let other = root.path().join("other");
    let o = Spawn::new(&other).start();
    assert!(o.stop().success());
    ok(
        &other,
        &[
            "upstream",
            "set",
            "--url",
            &url,
            "--enrollment-token",
            &token,
            "--authority-key",
            key_pem.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
        ],
    );
    let (okay, _, err) = cli(&other, &["sync", "now"]);
    assert!(!okay, "a reused enrollment token must be refused");
    assert!(err.contains("refused"), "{err}");

    // Three routers use one 100G RTU each against a pool of 2: out of compliance.
    ok(&sat, &["eula", "accept", "--account", "Acme"]);
    let t = ok(
        &sat,
        &["token", "create", "--account", "Acme", "--va", "CORE"],
    )
    .trim()
    .to_string();
    let s = Server::start(&sat);
    let mut devs = Vec::new();
    for i in 0..3 {
        let mut ch = seed_scenario();
        ch.serial = format!("FOX2305P8{i:02}");
        let mut d = SimDevice::new(ch, "http://satellite").unwrap();
        register(&s, &mut d, &t).await;
        devs.push(d);
    }
    for d in devs.iter_mut() {
        authorize(&s, d).await;
    }
    assert_eq!(authorize(&s, &mut devs[0]).await, "OUT_OF_COMPLIANCE");

    // Two more licenses upstream, carried by hand as files.
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
    let req = root.path().join("req.zip");
    let resp = root.path().join("resp.zip");
    ok(&sat, &["sync", "export", "--out", req.to_str().unwrap()]);
    ok(
        &auth,
        &[
            "sync",
            "answer",
            req.to_str().unwrap(),
            "--out",
            resp.to_str().unwrap(),
        ],
    );
    let out = ok(&sat, &["sync", "import", resp.to_str().unwrap()]);
    assert!(out.contains("imported response"), "{out}");
    assert_eq!(pool(&sat, TAG), 4);
    assert_eq!(
        authorize(&s, &mut devs[0]).await,
        "AUTHORIZED",
        "compliance follows the new pool"
    );
    // The authority now sees the satellite's usage.
    let reported: i64 = db(&auth)
        .query_row(
            "SELECT in_use FROM reported_usage WHERE tag = ?1",
            [TAG],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reported, 3);
    let sats = ok(&auth, &["satellites"]);
    assert!(
        sats.contains("site-1") && sats.contains("instances 3"),
        "{sats}"
    );
    // Changes were acknowledged and dropped.
    let pending: i64 = db(&sat)
        .query_row("SELECT COUNT(*) FROM sync_changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, 0);

    // The same state online and by file: an online sync now gives the same pool.
    let before: Vec<(String, i64)> = db(&sat)
        .prepare("SELECT tag, quantity FROM licenses ORDER BY tag, quantity")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    ok(&sat, &["sync", "now"]);
    let after: Vec<(String, i64)> = db(&sat)
        .prepare("SELECT tag, quantity FROM licenses ORDER BY tag, quantity")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(before, after);

    // Refusals: each one line, nothing changed.
    let fp = fingerprint(&sat);
    let refuse = |file: &Path, needle: &str| {
        let (okay, _, err) = cli(&sat, &["sync", "import", file.to_str().unwrap()]);
        assert!(!okay, "{} must be refused", file.display());
        assert!(
            err.to_lowercase().contains(needle),
            "expected {needle:?} in: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert_eq!(
            fingerprint(&sat),
            fp,
            "a refused import changed the database"
        );
    };
    refuse(&resp, "not newer");
    let bytes = std::fs::read(&resp).unwrap();
    let truncated = root.path().join("truncated.zip");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refuse(&truncated, "");
    // Signed by someone else, everything else right.
    let forged = root.path().join("forged.zip");
    let me = db(&sat)
        .query_row(
            "SELECT value FROM settings WHERE key = 'upstream.satellite_id'",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    let authority_id = archive::read_manifest_unverified(&bytes).unwrap().sender;
    let stranger = SyncKeyPair::generate().unwrap();
    let f = archive::write(
        Header { kind: FileKind::Response, sender: authority_id.clone(), receiver: me.clone(), sequence: 99, created_at: chrono::Utc::now().to_rfc3339() },
        &[("pools.json", b"[]".to_vec()), ("ack.json", br#"{"request_sequence":1,"changes_acknowledged_through":0,"authority_time":"2026-01-01T00:00:00Z","instances_recorded":0}"#.to_vec())],
        "forged",
        &stranger,
    ).unwrap();
    std::fs::write(&forged, f).unwrap();
    refuse(&forged, "signature");
    // A member changed after signing.
    let tampered = root.path().join("tampered.zip");
    std::fs::write(
        &tampered,
        rezip(
            &bytes,
            |name, b| {
                Some(if name == "pools.json" {
                    String::from_utf8(b)
                        .unwrap()
                        .replace("\"quantity\": 2", "\"quantity\": 200")
                        .into_bytes()
                } else {
                    b
                })
            },
            vec![],
        ),
    )
    .unwrap();
    refuse(&tampered, "pools.json");
    // A member that unpacks to far more than it could hold.
    let bomb = root.path().join("bomb.zip");
    std::fs::write(
        &bomb,
        rezip(
            &bytes,
            |name, b| {
                Some(if name == "pools.json" {
                    vec![b' '; 64 * 1024 * 1024]
                } else {
                    b
                })
            },
            vec![],
        ),
    )
    .unwrap();
    refuse(&bomb, "");
    // An entry that would land outside the archive.
    let traversal = root.path().join("traversal.zip");
    std::fs::write(
        &traversal,
        rezip(
            &bytes,
            |_, b| Some(b),
            vec![("../evil.json", b"{}".to_vec())],
        ),
    )
    .unwrap();
    refuse(&traversal, "");
    // A response for another satellite: enroll a second one for a new VA and answer it.
    ok(&auth, &["va", "create", "Acme", "EDGE"]);
    let token2 = ok(
        &auth,
        &[
            "enroll",
            "create",
            "--account",
            "Acme",
            "--name",
            "site-2",
            "--va",
            "EDGE",
        ],
    )
    .trim()
    .to_string();
    let sat2 = root.path().join("satellite2");
    let s2 = Spawn::new(&sat2).start();
    assert!(s2.stop().success());
    ok(
        &sat2,
        &[
            "upstream",
            "set",
            "--url",
            &url,
            "--enrollment-token",
            &token2,
            "--authority-key",
            key_pem.to_str().unwrap(),
        ],
    );
    let req2 = root.path().join("req2.zip");
    let resp2 = root.path().join("resp2.zip");
    ok(&sat2, &["sync", "export", "--out", req2.to_str().unwrap()]);
    ok(
        &auth,
        &[
            "sync",
            "answer",
            req2.to_str().unwrap(),
            "--out",
            resp2.to_str().unwrap(),
        ],
    );
    refuse(&resp2, "addressed to");
    // The authority refuses a replayed old request too.
    let (okay, _, err) = cli(
        &auth,
        &[
            "sync",
            "answer",
            req.to_str().unwrap(),
            "--out",
            root.path().join("x.zip").to_str().unwrap(),
        ],
    );
    assert!(!okay && err.contains("not newer"), "{err}");

    // An online sync whose answer is cut off mid-transfer: both sides stay consistent and
    // the retry gets the same answer.
    let (proxy, conns) = cutting_proxy(a.console.clone());
    ok(
        &sat,
        &[
            "upstream",
            "set",
            "--url",
            &format!("https://localhost:{}", port_of(&proxy)),
            "--authority-key",
            key_pem.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
        ],
    );
    let out = ok(&sat, &["sync", "now"]);
    assert!(out.contains("synchronised"), "{out}");
    assert!(
        conns.load(Ordering::SeqCst) >= 2,
        "the first transfer was cut and retried"
    );
    let sat_seq: i64 = db(&sat)
        .query_row(
            "SELECT value FROM settings WHERE key = 'sync.request_sequence'",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap()
        .parse()
        .unwrap();
    let auth_seq: i64 = db(&auth)
        .query_row(
            "SELECT last_request_sequence FROM satellites WHERE satellite_id = ?1",
            [&me],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sat_seq, auth_seq);
    let integrity: String = db(&sat)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    drop(s);
    drop(a);
}
