//! Crash safety: routers keep talking while the satellite is SIGKILLed at random moments.
//! It never takes the server's word: every check reads the SQLite file the kills left.

// The CI test kills 5 times. The soak version is `#[ignore]`d and tuned by environment:
// `SATELLITE_CRASH_KILLS` (default 50), `SATELLITE_CRASH_DEVICES` (default 64),
// `SATELLITE_CRASH_SEED` (default: from the clock; printed either way so a failure can be
// replayed). `scripts/crash-soak.sh` runs it.

mod common;

use chrono::Utc;
use common::*;
use satellite::gateway::{callhome, message};
use satellite::simulate::client::{read_reply, SimDevice};
use satellite::simulate::device::fleet_member;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const ACC: &str = "Crash Test Corp";
const VA: &str = "CORE";
const DEVICE_PATH: &str = "/Transportgateway/services/DeviceRequestHandler";
const TASKS: usize = 8;

/// A tiny xorshift64*: reproducible from its seed, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

type Usage = Vec<(String, i64)>;

/// One authorize report as the router sent it, and whether a 200 SUCCESS came back.
struct Report {
    usage: Usage,
    acked: bool,
}

/// What one router did and what it was told.
struct DeviceLog {
    serial: String,
    register_sent: u32,
    register_acked: bool,
    reports: Vec<Report>,
    /// Nonces of requests that were acknowledged: the satellite must have kept them.
    acked_nonces: Vec<String>,
    /// Every nonce sent, acknowledged or not.
    sent_nonces: BTreeSet<String>,
}

impl DeviceLog {
    /// The usages the database may hold: the last acknowledged report's, or that of any
    /// report sent after it (committed, but the answer was lost in the kill).
    fn allowed_usages(&self) -> Vec<&Usage> {
        let last_ack = self.reports.iter().rposition(|r| r.acked);
        match last_ack {
            Some(i) => self.reports[i..].iter().map(|r| &r.usage).collect(),
            None => self.reports.iter().map(|r| &r.usage).collect(),
        }
    }
}

#[derive(Default)]
struct Tally {
    acked: AtomicU64,
    unanswered: AtomicU64,
    unavailable: AtomicU64,
}

/// The device listener currently up, or `None` while the satellite is down.
type Target = Arc<RwLock<Option<String>>>;

fn nonce_of(body: &str) -> String {
    let msg = callhome::parse(body.as_bytes()).unwrap();
    let env = message::decode_envelope(msg.smart_licensing_data().unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&env.payload).unwrap();
    v["nonce"].as_str().unwrap().to_string()
}

/// Outcome of one request: `Some(true)` acknowledged, `Some(false)` answered otherwise,
/// `None` no answer (the satellite died or was down).
async fn send(
    http: &reqwest::Client,
    url: &str,
    body: String,
    dev: &mut SimDevice,
    tally: &Tally,
    violations: &std::sync::Mutex<Vec<String>>,
) -> Option<bool> {
    let now = Utc::now();
    let resp = match http
        .post(url)
        .header("Content-Type", "text/xml")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(_) => {
            tally.unanswered.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    let status = resp.status().as_u16();
    let retry_after = resp.headers().contains_key("retry-after");
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(_) => {
            tally.unanswered.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    if status == 503 {
        tally.unavailable.fetch_add(1, Ordering::Relaxed);
        if !retry_after {
            violations
                .lock()
                .unwrap()
                .push("503 without Retry-After".into());
        }
        return Some(false);
    }
    let reply = match (status, read_reply(&bytes)) {
        (200, Ok(r)) => r,
        (s, _) => {
            violations.lock().unwrap().push(format!(
                "{}: HTTP {s}: {}",
                dev.chassis.serial,
                String::from_utf8_lossy(&bytes)
            ));
            return Some(false);
        }
    };
    if let Err(e) = dev.accept(&reply, now) {
        violations
            .lock()
            .unwrap()
            .push(format!("{}: answer refused: {e}", dev.chassis.serial));
        return Some(false);
    }
    if reply.payload.status != "SUCCESS" {
        // Every router here is either unregistered and registering, or acknowledged as
        // registered: any protocol error means the satellite forgot or misread something.
        violations.lock().unwrap().push(format!(
            "{}: {:?} answered {} {:?}",
            dev.chassis.serial,
            reply.kind,
            reply.payload.status,
            reply.payload.error.as_ref().map(|e| &e.message)
        ));
        return Some(false);
    }
    tally.acked.fetch_add(1, Ordering::Relaxed);
    Some(true)
}

/// One task drives its routers in a random order until told to stop; between requests it
/// only waits while the satellite is down.
async fn drive(
    mut fleet: Vec<(SimDevice, DeviceLog)>,
    seed: u64,
    token: String,
    target: Target,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    violations: Arc<std::sync::Mutex<Vec<String>>>,
) -> Vec<(SimDevice, DeviceLog)> {
    if fleet.is_empty() {
        return fleet;
    }
    let mut rng = Rng::new(seed);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    while !stop.load(Ordering::Relaxed) {
        let Some(base) = target.read().unwrap().clone() else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let url = format!("http://{base}{DEVICE_PATH}");
        let i = rng.below(fleet.len() as u64) as usize;
        let (dev, log) = &mut fleet[i];
        let now = Utc::now();
        if !log.register_acked {
            let body = dev.register_request(&token, now).unwrap();
            let nonce = nonce_of(&body);
            log.sent_nonces.insert(nonce.clone());
            log.register_sent += 1;
            if send(&http, &url, body, dev, &tally, &violations).await == Some(true) {
                log.register_acked = true;
                log.acked_nonces.push(nonce);
            }
        } else {
            // A new configuration each time, so each report's usage is told apart.
            dev.chassis.vrfs = rng.below(17) as u32;
            dev.chassis.ports_100g_essentials = rng.below(5) as u32;
            dev.chassis.ports_100g_advantage = rng.below(3) as u32;
            let usage: Usage = dev
                .chassis
                .entitlements()
                .into_iter()
                .map(|(t, n)| (t, i64::from(n)))
                .collect();
            let body = dev.authorize_request(now).unwrap();
            let nonce = nonce_of(&body);
            log.sent_nonces.insert(nonce.clone());
            log.reports.push(Report {
                usage,
                acked: false,
            });
            if send(&http, &url, body, dev, &tally, &violations).await == Some(true) {
                if let Some(r) = log.reports.last_mut() {
                    r.acked = true;
                }
                log.acked_nonces.push(nonce);
            }
        }
    }
    fleet
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

fn sigkill(mut s: Server) {
    // std's Child::kill is SIGKILL on Unix: no handler runs, nothing is flushed.
    s.child.kill().unwrap();
    let _ = s.child.wait();
}

fn rows<T: rusqlite::types::FromSql>(c: &rusqlite::Connection, sql: &str) -> Vec<Vec<T>> {
    let mut st = c.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

struct Figures {
    kills: u32,
    devices: usize,
    /// Authorize reports answered SUCCESS; each device's last one is checked in the database.
    reports_acked: usize,
    reports_checked: usize,
    acked: u64,
}

async fn crash_run(kills: u32, devices: usize, seed: u64) -> Figures {
    install_provider();
    eprintln!("crash run: kills={kills} devices={devices} seed={seed}");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    seed_account(data, ACC, VA);
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
            "100000",
        ],
    )
    .trim()
    .to_string();
    let audit_before: i64 = db(data)
        .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    let started = Utc::now();

    let mut rng = Rng::new(seed);
    let mut server = Server::start(data);
    let target: Target = Arc::new(RwLock::new(Some(server.device_http.clone())));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let violations = Arc::new(std::sync::Mutex::new(Vec::new()));

    let mut fleets: Vec<Vec<(SimDevice, DeviceLog)>> = (0..TASKS).map(|_| Vec::new()).collect();
    for i in 0..devices {
        let chassis = fleet_member(i as u64, seed);
        let log = DeviceLog {
            serial: chassis.serial.clone(),
            register_sent: 0,
            register_acked: false,
            reports: Vec::new(),
            acked_nonces: Vec::new(),
            sent_nonces: BTreeSet::new(),
        };
        let dev = SimDevice::new(chassis, "http://satellite/").unwrap();
        fleets[i % TASKS].push((dev, log));
    }
    let tasks: Vec<_> = fleets
        .into_iter()
        .enumerate()
        .map(|(i, fleet)| {
            tokio::spawn(drive(
                fleet,
                seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                token.clone(),
                target.clone(),
                stop.clone(),
                tally.clone(),
                violations.clone(),
            ))
        })
        .collect();

    for k in 0..kills {
        // Let traffic build up, then kill at a random instant inside it.
        let acked_before = tally.acked.load(Ordering::Relaxed);
        let until = Instant::now() + Duration::from_secs(10);
        while tally.acked.load(Ordering::Relaxed) < acked_before + 5 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50 + rng.below(700))).await;
        *target.write().unwrap() = None;
        sigkill(server);
        eprintln!(
            "kill {} after {} acknowledgements",
            k + 1,
            tally.acked.load(Ordering::Relaxed)
        );
        server = Server::start(data);
        *target.write().unwrap() = Some(server.device_http.clone());
    }
    // A last stretch of traffic on the last restart, then everyone finishes their request.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut fleet = Vec::new();
    for t in tasks {
        fleet.extend(t.await.unwrap());
    }
    let logs: Vec<&DeviceLog> = fleet.iter().map(|(_, l)| l).collect();
    sigkill(server);
    let violations = violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "seed {seed}: {violations:#?}");

    // The satellite starts on what the kills left and serves a router at once, with the
    // key it registered before the kills.
    let reports_checked = check(data, &logs, audit_before, started, seed);
    let reports_acked = logs
        .iter()
        .map(|l| l.reports.iter().filter(|r| r.acked).count())
        .sum();
    let s = Server::start(data);
    let (dev, log) = fleet
        .iter_mut()
        .find(|(_, l)| l.register_acked)
        .expect("at least one registration was acknowledged");
    let body = dev.authorize_request(Utc::now()).unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{}{DEVICE_PATH}", s.device_http))
        .header("Content-Type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", log.serial);
    let reply = read_reply(&r.bytes().await.unwrap()).unwrap();
    dev.accept(&reply, Utc::now()).unwrap();
    assert_eq!(reply.payload.status, "SUCCESS", "{}", log.serial);
    assert!(s.stop().success());
    eprintln!(
        "requests without an answer (killed in flight or satellite down): {}; 503s: {}",
        tally.unanswered.load(Ordering::Relaxed),
        tally.unavailable.load(Ordering::Relaxed)
    );

    Figures {
        kills,
        devices,
        reports_acked,
        reports_checked,
        acked: tally.acked.load(Ordering::Relaxed),
    }
}

fn db(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join("satellite.db")).unwrap()
}

/// Checks the database left by the last kill against what the routers were told.
/// Returns how many acknowledged reports were checked.
fn check(
    data: &Path,
    logs: &[&DeviceLog],
    audit_before: i64,
    started: chrono::DateTime<Utc>,
    seed: u64,
) -> usize {
    let c = db(data);
    let integrity: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "seed {seed}");
    let fk: Vec<Vec<String>> = rows(&c, "PRAGMA foreign_key_check");
    assert!(fk.is_empty(), "seed {seed}: foreign keys: {fk:?}");

    let mut checked = 0;
    for log in logs {
        let instance: Option<i64> = c
            .query_row(
                "SELECT id FROM product_instances WHERE udi_serial = ?1",
                [&log.serial],
                |r| r.get(0),
            )
            .ok();
        if log.register_acked {
            assert!(
                instance.is_some(),
                "seed {seed}: acknowledged registration of {} lost",
                log.serial
            );
        } else if log.register_sent == 0 {
            assert!(
                instance.is_none(),
                "seed {seed}: {} never registered",
                log.serial
            );
        }
        let Some(id) = instance else { continue };
        let stored: Usage = c
            .prepare("SELECT tag, count FROM instance_usage WHERE instance_id = ?1 ORDER BY tag")
            .unwrap()
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let allowed = log.allowed_usages();
        if allowed.is_empty() {
            assert!(
                stored.is_empty(),
                "seed {seed}: {} has usage it never reported",
                log.serial
            );
        } else {
            let last_acked = log.reports.iter().rposition(|r| r.acked);
            let ok = allowed.iter().any(|u| **u == stored)
                || (last_acked.is_none() && stored.is_empty());
            assert!(
                ok,
                "seed {seed}: {} holds {stored:?}; acknowledged {:?}, later sent {:?}",
                log.serial,
                last_acked.map(|i| &log.reports[i].usage),
                allowed
            );
            // Equality above also means no instance lost the rows of a report that used
            // something: a half-applied report would show as fewer rows.
            if last_acked.is_some() {
                checked += 1;
            }
        }

        // Acknowledged requests' nonces were kept; nothing unknown was.
        let nonces: BTreeSet<String> = c
            .prepare("SELECT nonce FROM seen_nonces WHERE udi_serial = ?1")
            .unwrap()
            .query_map([&log.serial], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for n in &log.acked_nonces {
            assert!(
                nonces.contains(n),
                "seed {seed}: {} forgot nonce {n}",
                log.serial
            );
        }
        for n in &nonces {
            assert!(
                log.sent_nonces.contains(n),
                "seed {seed}: {} has a nonce it never sent: {n}",
                log.serial
            );
        }
        if log.register_acked {
            let events: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM device_events WHERE udi_serial = ?1 AND message_type = 'register'",
                    [&log.serial],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(
                events >= 1,
                "seed {seed}: {} registered without its event",
                log.serial
            );
            let changes: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM sync_changes WHERE udi_serial = ?1 AND kind = 'registered'",
                    [&log.serial],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(
                changes >= 1,
                "seed {seed}: {} registered without its sync change",
                log.serial
            );
        }
    }

    // The aggregate equals the sum it stands for, for every virtual account and tag.
    let drift: Vec<Vec<rusqlite::types::Value>> = rows(
        &c,
        "WITH s AS (SELECT p.va_id, u.tag, SUM(u.count) AS n FROM instance_usage u
                    JOIN product_instances p ON p.id = u.instance_id GROUP BY p.va_id, u.tag)
         SELECT t.va_id, t.tag, t.in_use, s.n FROM usage_totals t
           LEFT JOIN s ON s.va_id = t.va_id AND s.tag = t.tag
           WHERE t.in_use != COALESCE(s.n, 0)
         UNION ALL
         SELECT s.va_id, s.tag, NULL, s.n FROM s
           LEFT JOIN usage_totals t ON t.va_id = s.va_id AND t.tag = s.tag
           WHERE t.va_id IS NULL",
    );
    assert!(
        drift.is_empty(),
        "seed {seed}: usage_totals drift: {drift:?}"
    );

    // Token uses: at least one per acknowledged registration, at most one per attempt.
    let uses: i64 = c
        .query_row("SELECT uses FROM registration_tokens", [], |r| r.get(0))
        .unwrap();
    let acked_regs = logs.iter().filter(|l| l.register_acked).count() as i64;
    let sent_regs: i64 = logs.iter().map(|l| i64::from(l.register_sent)).sum();
    assert!(
        (acked_regs..=sent_regs).contains(&uses),
        "seed {seed}: token uses {uses}, acknowledged {acked_regs}, sent {sent_regs}"
    );

    // Devices write no audit rows; the operator's rows are intact and well formed.
    let audit: Vec<Vec<rusqlite::types::Value>> = rows(
        &c,
        "SELECT id, at, actor, action FROM audit_log ORDER BY id",
    );
    assert_eq!(
        audit.len() as i64,
        audit_before,
        "seed {seed}: audit rows changed"
    );
    let bad: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE actor = '' OR action = '' OR at > ?1",
            [Utc::now().timestamp() + 1],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0, "seed {seed}: malformed audit rows");
    let stale_nonces: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM seen_nonces WHERE seen_at < ?1 OR seen_at > ?2",
            [started.timestamp() - 1, Utc::now().timestamp() + 1],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        stale_nonces, 0,
        "seed {seed}: nonces outside the run's time"
    );
    let serials: BTreeSet<&str> = logs.iter().map(|l| l.serial.as_str()).collect();
    let foreign: Vec<Vec<String>> = rows(&c, "SELECT DISTINCT udi_serial FROM seen_nonces");
    for f in foreign {
        assert!(
            serials.contains(f[0].as_str()),
            "seed {seed}: unknown serial {f:?}"
        );
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_five_sigkills() {
    let seed = env_u64("SATELLITE_CRASH_SEED").unwrap_or_else(clock_seed);
    let f = crash_run(5, 32, seed).await;
    eprintln!(
        "survived {} kills; {} devices, {} acknowledgements ({} reports), {} devices' last report checked",
        f.kills, f.devices, f.acked, f.reports_acked, f.reports_checked
    );
    assert!(f.reports_checked > 0, "seed {seed}: no report was checked");
}

/// The long version; see the module comment and `scripts/crash-soak.sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: minutes; run with scripts/crash-soak.sh"]
async fn crash_soak() {
    let kills = env_u64("SATELLITE_CRASH_KILLS").unwrap_or(50) as u32;
    let devices = env_u64("SATELLITE_CRASH_DEVICES").unwrap_or(64) as usize;
    let seed = env_u64("SATELLITE_CRASH_SEED").unwrap_or_else(clock_seed);
    let f = crash_run(kills, devices.max(1), seed).await;
    eprintln!(
        "soak: survived {} kills; {} devices, {} acknowledgements ({} reports), {} devices' last report checked (seed {seed})",
        f.kills, f.devices, f.acked, f.reports_acked, f.reports_checked
    );
}

#[test]
fn xorshift_is_reproducible() {
    let a: Vec<u64> = {
        let mut r = Rng::new(42);
        (0..4).map(|_| r.next()).collect()
    };
    let mut r = Rng::new(42);
    let b: Vec<u64> = (0..4).map(|_| r.next()).collect();
    assert_eq!(a, b);
    assert!(a.windows(2).all(|w| w[0] != w[1]));
}
