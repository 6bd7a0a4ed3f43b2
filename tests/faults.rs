//! Faults around a running satellite: a full or read-only disk, an unwritable log, and an
//! upstream that is down, silent or garbling. It never leaves a mount behind, even on failure.

// The disk tests mount file systems, so they need CAP_SYS_ADMIN (root here and in CI).
// Without it they say so and pass, except under `CI`, where they fail rather than skip.
//
// A read-only disk cannot be made with `mount -o remount,ro` while the satellite runs: the
// kernel refuses (EBUSY) as long as a file on it is open for writing, and SQLite keeps the
// database open. The way a disk really turns read-only under a running process is a file
// system error with `errors=remount-ro`; the test provokes one on an ext4 image through
// `/sys/fs/ext4/<dev>/trigger_fs_error`. Such an emergency read-only mount cannot be made
// writable again while mounted, so recovery is the operator's: stop, unmount, fsck, mount,
// start.

mod common;

use chrono::Utc;
use common::*;
use satellite::simulate::client::{read_reply, SimDevice};
use satellite::simulate::device::fleet_member;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ACC: &str = "Fault Line Ltd";
const VA: &str = "EDGE";
const DEVICE_PATH: &str = "/Transportgateway/services/DeviceRequestHandler";

// ---------------------------------------------------------------------------------------
// Mounts

/// Whether this process may mount file systems (CAP_SYS_ADMIN is bit 21 of CapEff).
fn may_mount(test: &str) -> bool {
    let caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_string()))
        })
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .unwrap_or(0);
    let ok = caps & (1 << 21) != 0;
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI must be able to mount file systems (needs CAP_SYS_ADMIN)"
        );
        eprintln!("{test}: skipped: mounting needs CAP_SYS_ADMIN");
    }
    ok
}

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd).args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn must(cmd: &str, args: &[&str]) -> String {
    let (ok, out) = run(cmd, args);
    assert!(ok, "{cmd} {args:?}: {out}");
    out
}

/// Unmounts on drop, lazily, so a failing test never leaves a mount behind.
struct Mount(PathBuf);

impl Mount {
    fn path(&self) -> &Path {
        &self.0
    }
    fn unmount(&self) {
        must("umount", &[self.0.to_str().unwrap()]);
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", self.0.to_str().unwrap()]);
    }
}

fn mounted(path: &Path) -> bool {
    run("findmnt", &["-n", path.to_str().unwrap()]).0
}

// ---------------------------------------------------------------------------------------
// Device and API helpers

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn post_device(s: &Server, body: String) -> Answer {
    let r = reqwest::Client::new()
        .post(format!("http://{}{DEVICE_PATH}", s.device_http))
        .header("Content-Type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    Answer {
        status: r.status().as_u16(),
        retry_after: r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: r.bytes().await.unwrap().to_vec(),
    }
}

/// Sends a request and returns the answer; a 200 is verified and recorded by the router.
async fn exchange(s: &Server, dev: &mut SimDevice, body: String) -> Answer {
    let a = post_device(s, body).await;
    if a.status == 200 {
        let reply = read_reply(&a.body).unwrap();
        dev.accept(&reply, Utc::now()).unwrap();
        assert_eq!(reply.payload.status, "SUCCESS", "{}", a.text());
    }
    a
}

async fn register(s: &Server, dev: &mut SimDevice, token: &str) -> Answer {
    let body = dev.register_request(token, Utc::now()).unwrap();
    exchange(s, dev, body).await
}

async fn authorize(s: &Server, dev: &mut SimDevice) -> Answer {
    let body = dev.authorize_request(Utc::now()).unwrap();
    exchange(s, dev, body).await
}

fn assert_retryable(a: &Answer, what: &str) {
    assert_eq!(a.status, 503, "{what}: {}", a.text());
    assert!(
        a.retry_after
            .as_deref()
            .is_some_and(|v| v.parse::<u32>().is_ok()),
        "{what}: 503 without a Retry-After in seconds"
    );
    assert!(a.text().contains("retry"), "{what}: {}", a.text());
}

fn device(i: u64) -> SimDevice {
    SimDevice::new(fleet_member(i, 77), "http://satellite/").unwrap()
}

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
            "1000",
        ],
    )
    .trim()
    .to_string()
}

fn db(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join("satellite.db")).unwrap()
}

fn integrity(data: &Path) -> String {
    db(data)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn registered(data: &Path, serial: &str) -> bool {
    db(data)
        .query_row(
            "SELECT COUNT(*) FROM product_instances WHERE udi_serial = ?1",
            [serial],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

fn usage_rows(data: &Path, serial: &str) -> Vec<(String, i64)> {
    db(data)
        .prepare(
            "SELECT u.tag, u.count FROM instance_usage u
             JOIN product_instances p ON p.id = u.instance_id
             WHERE p.udi_serial = ?1 ORDER BY u.tag",
        )
        .unwrap()
        .query_map([serial], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn reported(dev: &SimDevice) -> Vec<(String, i64)> {
    dev.chassis
        .entitlements()
        .into_iter()
        .map(|(t, n)| (t, i64::from(n)))
        .collect()
}

async fn create_token_api(s: &Server, bearer: &str) -> (u16, serde_json::Value) {
    let url = s.console_url(&format!(
        "/api/v1/accounts/{}/virtual-accounts/{VA}/tokens",
        ACC.replace(' ', "%20")
    ));
    let r = s
        .client()
        .post(url)
        .bearer_auth(bearer)
        .json(&serde_json::json!({
            "description": "fault drill",
            "expiresAfterDays": 30,
            "exportControlled": "Not Allowed",
            "maxUses": 5
        }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, v)
}

async fn healthz(s: &Server) -> u16 {
    s.client()
        .get(s.console_url("/healthz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Fills the file system holding `dir` until writes fail; returns the filler's path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // Squeeze the last pages out too.
    while f.write_all(&chunk[..512]).is_ok() {}
    let _ = f.sync_all();
    path
}

// ---------------------------------------------------------------------------------------
// Disk full

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_answers_503_keeps_serving_and_recovers() {
    if !may_mount("full_disk") {
        return;
    }
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    must(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=12m",
            "tmpfs",
            mnt.to_str().unwrap(),
        ],
    );
    let m = Mount(mnt.clone());
    let data = m.path().join("data");
    seed_account(&data, ACC, VA);
    let t = token(&data);
    let s = Server::start(&data);
    let bearer = bearer(&s, "operator").await;

    let mut first = device(0);
    assert_eq!(register(&s, &mut first, &t).await.status, 200);
    assert_eq!(authorize(&s, &mut first).await.status, 200);

    let filler = fill(m.path());
    // Whatever still fits in pages SQLite already holds may succeed; once it needs a new
    // page, every write is refused with a retryable 503, and nothing of it is stored.
    let mut refused = Vec::new();
    let mut acked = Vec::new();
    for i in 1..=300u64 {
        let mut d = device(i);
        let a = register(&s, &mut d, &t).await;
        match a.status {
            200 => acked.push(d),
            503 => {
                assert_retryable(&a, "register on a full disk");
                refused.push(d);
                if refused.len() >= 3 {
                    break;
                }
            }
            other => panic!("register on a full disk answered {other}: {}", a.text()),
        }
    }
    assert!(
        !refused.is_empty(),
        "a full disk never refused a registration ({} acknowledged)",
        acked.len()
    );
    assert_retryable(&authorize(&s, &mut first).await, "authorize on a full disk");
    let (status, body) = create_token_api(&s, &bearer).await;
    assert_eq!(status, 503, "API on a full disk: {body}");
    assert_eq!(body["status"], "ERROR", "{body}");
    assert!(
        body["statusMessage"]
            .as_str()
            .is_some_and(|m| m.contains("retry")),
        "{body}"
    );
    assert_eq!(healthz(&s).await, 200, "healthz on a full disk");

    // Space comes back: the same requests succeed, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let mut d = refused.pop().unwrap();
    assert_eq!(register(&s, &mut d, &t).await.status, 200);
    acked.push(d);
    first.chassis.ports_100g_essentials += 1;
    assert_eq!(authorize(&s, &mut first).await.status, 200);
    let (status, body) = create_token_api(&s, &bearer).await;
    assert!(
        (200..300).contains(&status),
        "API after space came back: {body}"
    );
    assert_eq!(integrity(&data), "ok");

    assert!(s.stop().success());
    assert_eq!(integrity(&data), "ok");
    for d in &acked {
        assert!(registered(&data, &d.chassis.serial), "{}", d.chassis.serial);
    }
    for d in &refused {
        assert!(
            !registered(&data, &d.chassis.serial),
            "{} was answered 503 yet stored",
            d.chassis.serial
        );
    }
    assert_eq!(usage_rows(&data, &first.chassis.serial), reported(&first));
    drop(m);
}

// ---------------------------------------------------------------------------------------
// Read-only disk

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_disk_answers_503_and_recovers_after_fsck() {
    if !may_mount("read_only_disk") {
        return;
    }
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.ext4");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    must("fallocate", &["-l", "32M", img.to_str().unwrap()]);
    must("mkfs.ext4", &["-q", "-F", "-m", "0", img.to_str().unwrap()]);
    let mount_rw = || {
        must(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                img.to_str().unwrap(),
                mnt.to_str().unwrap(),
            ],
        )
    };
    mount_rw();
    let m = Mount(mnt.clone());
    let data = m.path().join("data");
    seed_account(&data, ACC, VA);
    let t = token(&data);
    let s = Server::start(&data);
    let bearer = bearer(&s, "operator").await;
    let mut first = device(0);
    assert_eq!(register(&s, &mut first, &t).await.status, 200);
    assert_eq!(authorize(&s, &mut first).await.status, 200);
    let acked_usage = reported(&first);

    // A file system error: ext4 turns the mount read-only under the running satellite.
    let source = must("findmnt", &["-n", "-o", "SOURCE", mnt.to_str().unwrap()]);
    let dev = Path::new(source.trim())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    std::fs::write(format!("/sys/fs/ext4/{dev}/trigger_fs_error"), "1").unwrap();
    let options = must("findmnt", &["-n", "-o", "OPTIONS", mnt.to_str().unwrap()]);
    assert!(options.contains("ro"), "{options}");

    let mut second = device(1);
    assert_retryable(
        &register(&s, &mut second, &t).await,
        "register on a read-only disk",
    );
    first.chassis.vrfs += 3;
    assert_retryable(
        &authorize(&s, &mut first).await,
        "authorize on a read-only disk",
    );
    let (status, body) = create_token_api(&s, &bearer).await;
    assert_eq!(status, 503, "API on a read-only disk: {body}");
    assert_eq!(healthz(&s).await, 200, "healthz on a read-only disk");
    // Reads still answer from what is on disk.
    let r = s
        .client()
        .get(s.console_url("/api/v1/accounts"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "reading on a read-only disk");

    // The operator's recovery: stop, unmount, repair, mount, start.
    // The final checkpoint cannot be written: the stop waits out SQLite's 10 s busy
    // timeout, then exits anyway.
    let stopped = Instant::now();
    let _ = s.stop();
    assert!(stopped.elapsed() < Duration::from_secs(20));
    m.unmount();
    assert!(!mounted(&mnt));
    let (_, fsck) = run("e2fsck", &["-f", "-y", img.to_str().unwrap()]);
    mount_rw();
    assert_eq!(
        integrity(&data),
        "ok",
        "after the read-only episode; fsck: {fsck}"
    );
    assert!(registered(&data, &first.chassis.serial));
    assert_eq!(
        usage_rows(&data, &first.chassis.serial),
        acked_usage,
        "the refused report changed nothing"
    );
    assert!(!registered(&data, &second.chassis.serial));

    let s = Server::start(&data);
    assert_eq!(register(&s, &mut second, &t).await.status, 200);
    assert_eq!(authorize(&s, &mut first).await.status, 200);
    assert!(s.stop().success());
    assert_eq!(usage_rows(&data, &first.chassis.serial), reported(&first));
    assert_eq!(integrity(&data), "ok");
    drop(m);
}

// ---------------------------------------------------------------------------------------
// Upstream faults

const TAG: &str = "ESS-AC-100G-RTU-1";

/// Licenses the satellite holds, as (va, tag, kind, quantity) rows.
fn pool(data: &Path) -> Vec<(String, String, String, i64)> {
    db(data)
        .prepare(
            "SELECT v.name, l.tag, l.kind, l.quantity FROM licenses l
             JOIN virtual_accounts v ON v.id = l.va_id ORDER BY 1, 2, 3, 4",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `satellite sync now` with one short attempt.
fn sync_now(data: &Path) -> (bool, String, String) {
    cli_env(
        data,
        &["sync", "now"],
        &[
            ("SATELLITE_SYNC_TIMEOUT", "2"),
            ("SATELLITE_SYNC_ATTEMPTS", "1"),
        ],
    )
}

/// Reads one HTTP request (headers, then Content-Length bytes) from `s`.
fn read_request(s: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(5);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if Instant::now() > deadline {
            return;
        }
    }
}

/// An upstream that accepts connections and never says a word; closed when dropped.
fn silent_upstream() -> (String, std::sync::mpsc::Sender<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    l.set_nonblocking(true).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while rx.try_recv() == Err(std::sync::mpsc::TryRecvError::Empty)
            && Instant::now() < deadline
        {
            if let Ok((c, _)) = l.accept() {
                held.push(c);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    (addr, tx)
}

/// An upstream that answers every request 200 with random bytes.
fn garbage_upstream(seed: u64) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut x = seed.max(1);
        for conn in l.incoming().take(8) {
            let Ok(mut c) = conn else { continue };
            read_request(&mut c);
            let body: Vec<u8> = (0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(head.as_bytes());
            let _ = c.write_all(&body);
        }
    });
    addr
}

fn point_upstream(sat: &Path, url: &str, key: &Path) {
    ok(
        sat,
        &[
            "upstream",
            "set",
            "--url",
            url,
            "--authority-key",
            key.to_str().unwrap(),
        ],
    );
}

/// `sync now` fails with one line naming `expect`; status shows it; nothing else changed.
async fn assert_sync_fails(
    sat: &Path,
    s: &Server,
    dev: &mut SimDevice,
    pool_before: &[(String, String, String, i64)],
    expect: &[&str],
    what: &str,
) {
    let started = Instant::now();
    let (success, out, err) = sync_now(sat);
    let took = started.elapsed();
    assert!(!success, "{what}: sync now succeeded: {out}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines.last().copied().unwrap_or("");
    assert!(
        expect.iter().any(|e| last.contains(e)),
        "{what}: the error line {last:?} names none of {expect:?}; stderr: {err}"
    );
    assert!(took < Duration::from_secs(15), "{what}: took {took:?}");
    eprintln!("{what}: {last}");
    let status = ok(sat, &["sync", "status"]);
    let failure = status
        .lines()
        .find(|l| l.starts_with("last failure:"))
        .unwrap_or("");
    assert!(
        expect.iter().any(|e| failure.contains(e)),
        "{what}: status does not give the reason: {status}"
    );
    assert_eq!(pool(sat), pool_before, "{what}: the pool changed");
    let a = authorize(s, dev).await;
    assert_eq!(
        a.status,
        200,
        "{what}: devices are not served: {}",
        a.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_silent_or_garbled_leaves_the_satellite_serving() {
    install_provider();
    let root = tempfile::tempdir().unwrap();
    let auth = root.path().join("authority");
    let sat = root.path().join("satellite");
    let key = root.path().join("authority.pem");

    // A real first sync, so the satellite has a pool to keep.
    let s0 = Spawn::new(&sat).start();
    assert!(s0.stop().success());
    let a = Spawn::new(&auth).role("authority").start();
    ok(&auth, &["account", "create", ACC]);
    ok(&auth, &["va", "create", ACC, VA]);
    ok(
        &auth,
        &[
            "license",
            "add",
            "--account",
            ACC,
            "--va",
            VA,
            "--tag",
            TAG,
            "--quantity",
            "3",
        ],
    );
    let enroll = ok(
        &auth,
        &["enroll", "create", "--account", ACC, "--name", "edge"],
    )
    .trim()
    .to_string();
    ok(&auth, &["authority-key", "--out", key.to_str().unwrap()]);
    let ca = auth.join("tls/console.crt");
    ok(
        &sat,
        &[
            "upstream",
            "set",
            "--url",
            &format!("https://localhost:{}", port_of(&a.console)),
            "--enrollment-token",
            &enroll,
            "--authority-key",
            key.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
        ],
    );
    let (success, out, err) = sync_now(&sat);
    assert!(success, "first sync: {out}{err}");
    drop(a);
    let pool_before = pool(&sat);
    assert_eq!(pool_before.len(), 1, "{pool_before:?}");

    ok(&sat, &["eula", "accept", "--account", ACC]);
    let t = token(&sat);
    let s = Server::start(&sat);
    let mut dev = device(5);
    assert_eq!(register(&s, &mut dev, &t).await.status, 200);
    assert_eq!(authorize(&s, &mut dev).await.status, 200);

    // Down: nothing listens on the port.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    point_upstream(&sat, &format!("http://{closed}"), &key);
    assert_sync_fails(
        &sat,
        &s,
        &mut dev,
        &pool_before,
        &["unreachable", "refused"],
        "upstream down",
    )
    .await;

    // Silent: the connection is accepted and never answered.
    let (addr, stop_silent) = silent_upstream();
    point_upstream(&sat, &format!("http://{addr}"), &key);
    assert_sync_fails(
        &sat,
        &s,
        &mut dev,
        &pool_before,
        &["timed out", "timeout"],
        "upstream silent",
    )
    .await;
    let _ = stop_silent.send(());

    // Garbage: 200 with random bytes.
    let addr = garbage_upstream(0x5eed);
    point_upstream(&sat, &format!("http://{addr}"), &key);
    assert_sync_fails(
        &sat,
        &s,
        &mut dev,
        &pool_before,
        &["not a zip"],
        "upstream garbage",
    )
    .await;

    assert!(s.stop().success());
    assert_eq!(integrity(&sat), "ok");
}

// ---------------------------------------------------------------------------------------
// Logs that cannot be written

/// stderr on a file that refuses every write (`/dev/full` answers ENOSPC), as a log file
/// on a full disk does: the satellite must start, serve and stop as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_log_never_stops_the_satellite() {
    use std::io::BufRead;
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_account(&data, ACC, VA);
    let t = token(&data);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut child = Command::new(bin())
        .arg("--data")
        .arg(&data)
        .args(["serve", "--console-addr", "127.0.0.1:0"])
        .args(["--device-http-addr", "127.0.0.1:0"])
        .args(["--device-https-addr", "127.0.0.1:0"])
        .env("SATELLITE_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(full)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // stdout stays drained for the server's whole life, as a service manager would.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut http = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        if let Some(addr) = line.strip_prefix("listening device-http ") {
            http = Some(addr.to_string());
            break;
        }
    }
    let http = http.unwrap_or_else(|| panic!("no listener; exit: {:?}", child.try_wait()));
    let url = format!("http://{http}{DEVICE_PATH}");
    let c = reqwest::Client::new();
    let mut d = device(9);
    for _ in 0..3 {
        let body = d.register_request(&t, Utc::now()).unwrap();
        let r = c.post(&url).body(body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let reply = read_reply(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(reply.payload.status, "SUCCESS");
        d.accept(&reply, Utc::now()).unwrap();
        let body = d.authorize_request(Utc::now()).unwrap();
        let r = c.post(&url).body(body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        // Garbage is logged as a warning on the request's worker thread.
        let r = c.post(&url).body("<not-callhome/>").send().await.unwrap();
        assert_eq!(r.status(), 400);
    }
    assert!(child.try_wait().unwrap().is_none(), "the satellite died");
    Command::new("kill")
        .args(["-15", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(registered(&data, &d.chassis.serial));
}
