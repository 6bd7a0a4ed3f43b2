//! Drives a fleet of simulated routers against a satellite over real HTTP: register,
//! authorize in rounds, renew, deregister, with counts, failures by code and latencies.

use super::client::{read_reply, SimDevice};
use super::device::{fleet_member, seed_scenario};
use crate::gateway::message::MessageType;
use futures_util::stream::{self, StreamExt};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const HANDLER_PATH: &str = "/Transportgateway/services/DeviceRequestHandler";

#[derive(Clone, Debug)]
pub struct FleetOptions {
    pub url: String,
    pub token: String,
    pub devices: usize,
    pub concurrency: usize,
    pub seed: u64,
    pub seed_scenario: bool,
    pub rounds: u32,
    pub interval: Duration,
    pub renew: bool,
    pub deregister: bool,
    pub ca_pem: Option<Vec<u8>>,
    pub insecure: bool,
}

#[derive(Default, Debug, Clone)]
pub struct PhaseStats {
    pub name: String,
    pub sent: u64,
    pub ok: u64,
    /// Protocol refusals by contract code.
    pub failed: BTreeMap<String, u64>,
    /// HTTP errors and transport failures by reason.
    pub errors: BTreeMap<String, u64>,
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl PhaseStats {
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let mut v = self.latencies.clone();
        v.sort();
        let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[idx.min(v.len() - 1)]
    }

    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.sent as f64 / s
        } else {
            0.0
        }
    }

    pub fn line(&self) -> String {
        let mut s = format!(
            "{:<10} sent {:>7}  ok {:>7}  {:>9.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            self.name,
            self.sent,
            self.ok,
            self.rate(),
            self.percentile(0.5).as_secs_f64() * 1000.0,
            self.percentile(0.99).as_secs_f64() * 1000.0
        );
        for (k, v) in &self.failed {
            s.push_str(&format!("  {k}={v}"));
        }
        for (k, v) in &self.errors {
            s.push_str(&format!("  error[{k}]={v}"));
        }
        s
    }
}

pub fn endpoint(url: &str) -> String {
    let u = url.trim_end_matches('/');
    if u.contains("/Transportgateway/") {
        u.to_string()
    } else {
        format!("{u}{HANDLER_PATH}")
    }
}

pub fn http_client(opts: &FleetOptions) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(opts.concurrency.max(1));
    if let Some(pem) = &opts.ca_pem {
        let cert = reqwest::Certificate::from_pem(pem).map_err(|e| format!("--ca: {e}"))?;
        b = b.tls_certs_only([cert]);
    }
    if opts.insecure {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| format!("HTTP client: {e}"))
}

/// Posts one body; returns the answer or a reason for the error table.
pub async fn post(client: &reqwest::Client, url: &str, body: String) -> Result<Vec<u8>, String> {
    let r = client
        .post(url)
        .header("Content-Type", "application/xml")
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timeout".to_string()
            } else {
                tracing::debug!(error = ?e, "request failed");
                "connect".to_string()
            }
        })?;
    let status = r.status();
    let bytes = r.bytes().await.map_err(|_| "read".to_string())?;
    if status.is_success() {
        Ok(bytes.to_vec())
    } else {
        Err(format!("http-{}", status.as_u16()))
    }
}

pub fn make_devices(opts: &FleetOptions) -> Result<Vec<SimDevice>, String> {
    let url = endpoint(&opts.url);
    (0..opts.devices)
        .map(|i| {
            let chassis = if opts.seed_scenario && i == 0 {
                seed_scenario()
            } else {
                fleet_member(i as u64, opts.seed)
            };
            SimDevice::new(chassis, &url).map_err(|e| e.to_string())
        })
        .collect()
}

/// The same client and concurrency against `/healthz`: the ceiling the server's HTTP
/// stack allows, so device throughput can be reported as a ratio of it.
pub async fn healthz_baseline(
    client: &reqwest::Client,
    url: &str,
    requests: usize,
    concurrency: usize,
) -> PhaseStats {
    let health = match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_path("/healthz");
            u.to_string()
        }
        Err(_) => format!("{url}/healthz"),
    };
    let started = Instant::now();
    let results: Vec<(Duration, Result<(), String>)> = stream::iter(0..requests)
        .map(|_| {
            let health = health.clone();
            async move {
                let t0 = Instant::now();
                let r = client
                    .get(&health)
                    .send()
                    .await
                    .map_err(|_| "connect".to_string())
                    .and_then(|r| {
                        if r.status().is_success() {
                            Ok(())
                        } else {
                            Err(format!("http-{}", r.status().as_u16()))
                        }
                    });
                (t0.elapsed(), r)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut st = PhaseStats {
        name: "healthz".into(),
        elapsed: started.elapsed(),
        ..PhaseStats::default()
    };
    for (took, r) in results {
        st.sent += 1;
        st.latencies.push(took);
        match r {
            Ok(()) => st.ok += 1,
            Err(e) => *st.errors.entry(e).or_default() += 1,
        }
    }
    st
}

/// Sends one message type from every device with bounded concurrency.
///
/// Only the HTTP exchanges are timed. Every body (payload, ECDSA signature, Call Home
/// XML) is built before the clock starts and every answer is parsed and its signature
/// verified after it stops, so the client's CPU inside the timed window is what the
/// `/healthz` baseline spends, and the ratio between the two measures the server. No
/// answer goes unchecked: a bad one still counts as an error of the phase.
pub async fn phase(
    name: &str,
    kind: MessageType,
    client: &reqwest::Client,
    url: &str,
    token: &str,
    devices: &mut [SimDevice],
    concurrency: usize,
) -> PhaseStats {
    let now = chrono::Utc::now();
    let bodies: Vec<Result<String, String>> = devices
        .iter_mut()
        .map(|d| {
            match kind {
                MessageType::Register => d.register_request(token, now),
                MessageType::Authorize => d.authorize_request(now),
                other => d.plain_request(other, now),
            }
            .map_err(|e| format!("build: {e}"))
        })
        .collect();

    let started = Instant::now();
    let answers: Vec<(usize, Duration, Result<Vec<u8>, String>)> =
        stream::iter(bodies.into_iter().enumerate())
            .map(|(i, body)| async move {
                let body = match body {
                    Ok(b) => b,
                    Err(e) => return (i, Duration::ZERO, Err(e)),
                };
                let t0 = Instant::now();
                let answer = post(client, url, body).await;
                (i, t0.elapsed(), answer)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let elapsed = started.elapsed();

    let mut st = PhaseStats {
        name: name.to_string(),
        elapsed,
        ..PhaseStats::default()
    };
    for (i, took, answer) in answers {
        let outcome = answer.and_then(|bytes| {
            let d = devices.get_mut(i).ok_or_else(|| "bad-answer".to_string())?;
            let reply = read_reply(&bytes).map_err(|_| "bad-answer".to_string())?;
            d.accept(&reply, now)
                .map_err(|_| "bad-signature".to_string())?;
            Ok(match &reply.payload.error {
                Some(e) => e.code.clone(),
                None => reply.payload.status.clone(),
            })
        });
        st.sent += 1;
        st.latencies.push(took);
        match outcome {
            Ok(s) if s == "SUCCESS" => st.ok += 1,
            Ok(code) => *st.failed.entry(code).or_default() += 1,
            Err(e) => *st.errors.entry(e).or_default() += 1,
        }
    }
    st
}

/// The whole scenario; `progress` receives each finished phase.
pub async fn run(
    opts: &FleetOptions,
    devices: &mut [SimDevice],
    mut progress: impl FnMut(&PhaseStats),
) -> Result<Vec<PhaseStats>, String> {
    let client = http_client(opts)?;
    let url = endpoint(&opts.url);
    let c = opts.concurrency;
    let mut plan = vec![("register", MessageType::Register)];
    plan.extend((0..opts.rounds).map(|_| ("authorize", MessageType::Authorize)));
    if opts.renew {
        plan.push(("renew_id", MessageType::RenewId));
    }
    if opts.deregister {
        plan.push(("deregister", MessageType::Deregister));
    }
    let mut all = Vec::new();
    for (i, (name, kind)) in plan.into_iter().enumerate() {
        // Rounds after the first authorize wait for the interval, as a router's timer would.
        if kind == MessageType::Authorize && i > 1 {
            tokio::time::sleep(opts.interval).await;
        }
        let st = phase(name, kind, &client, &url, &opts.token, devices, c).await;
        progress(&st);
        all.push(st);
    }
    Ok(all)
}
