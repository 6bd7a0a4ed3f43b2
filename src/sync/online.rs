//! Connected mode: POST the request file to the authority's `/api/v1/sync` over HTTPS and
//! import the response file it answers with, retrying transport failures with backoff.

use crate::app::sync::{self as app_sync, ImportReport};
use crate::app::Ctx;
use crate::error::{AppError, AppResult};
use std::path::Path;
use std::time::Duration;

pub const SYNC_PATH: &str = "/api/v1/sync";

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_secs(2),
            timeout: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The default policy, adjusted by `SATELLITE_SYNC_TIMEOUT` (seconds per attempt) and
    /// `SATELLITE_SYNC_ATTEMPTS` when they hold a positive number: a site behind a slow
    /// link raises the first, a drill or a test lowers both. Other values are ignored.
    pub fn from_env() -> RetryPolicy {
        let positive = |key: &str| {
            std::env::var(key)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n > 0)
        };
        let mut p = RetryPolicy::default();
        if let Some(s) = positive("SATELLITE_SYNC_TIMEOUT") {
            p.timeout = Duration::from_secs(s.min(86_400));
        }
        if let Some(n) = positive("SATELLITE_SYNC_ATTEMPTS") {
            p.attempts = u32::try_from(n.min(100)).unwrap_or(1);
        }
        p
    }
}

fn endpoint(base: &str) -> String {
    let b = base.trim_end_matches('/');
    if b.ends_with(SYNC_PATH) {
        b.to_string()
    } else {
        format!("{b}{SYNC_PATH}")
    }
}

fn client(ca_pem: Option<&str>, timeout: Duration) -> AppResult<reqwest::Client> {
    let mut b = reqwest::Client::builder().timeout(timeout);
    if let Some(pem) = ca_pem {
        // The authority's certificate is pinned: nothing else is trusted for this link.
        let cert = reqwest::Certificate::from_pem(pem.as_bytes())
            .map_err(|e| AppError::Invalid(format!("pinned upstream certificate: {e}")))?;
        b = b.tls_certs_only([cert]);
    }
    b.build()
        .map_err(|e| AppError::Internal(format!("HTTP client: {e}")))
}

/// An error with its causes: reqwest's own text names only the URL, while the reason an
/// operator can act on (refused, timed out, certificate) sits in the sources.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

enum Attempt {
    Done(Vec<u8>),
    Retry(String),
    Fatal(String),
}

async fn post_once(client: &reqwest::Client, url: &str, body: &[u8]) -> Attempt {
    let resp = match client
        .post(url)
        .header("Content-Type", "application/zip")
        .body(body.to_vec())
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Attempt::Retry(format!(
                "upstream did not answer in time: {}",
                with_causes(&e)
            ))
        }
        Err(e) => return Attempt::Retry(format!("upstream unreachable: {}", with_causes(&e))),
    };
    let status = resp.status();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return Attempt::Retry(format!("answer cut off: {}", with_causes(&e))),
    };
    if status.is_success() {
        Attempt::Done(bytes.to_vec())
    } else {
        let text = String::from_utf8_lossy(&bytes);
        let reason = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["statusMessage"].as_str().map(str::to_string))
            .unwrap_or_else(|| text.chars().take(300).collect());
        if status.is_server_error() || status.as_u16() == 429 {
            Attempt::Retry(format!("upstream answered {status}: {reason}"))
        } else {
            Attempt::Fatal(format!("upstream refused the request ({status}): {reason}"))
        }
    }
}

/// One online sync: export, send (with retries), import. Failures are recorded for status.
pub async fn sync_now(ctx: &Ctx, data_dir: &Path, policy: &RetryPolicy) -> AppResult<ImportReport> {
    let result = run(ctx, data_dir, policy).await;
    if let Err(e) = &result {
        let _ = app_sync::record_failure(ctx, &e.to_string()).await;
    }
    result
}

async fn run(ctx: &Ctx, data_dir: &Path, policy: &RetryPolicy) -> AppResult<ImportReport> {
    let (base, ca) = app_sync::upstream(ctx).await?;
    let url = endpoint(&base);
    let client = client(ca.as_deref(), policy.timeout)?;
    let request = app_sync::export(ctx, data_dir).await?;
    let mut backoff = policy.first_backoff;
    let mut last = String::new();
    for attempt in 1..=policy.attempts.max(1) {
        match post_once(&client, &url, &request).await {
            Attempt::Done(answer) => {
                // A garbled or forged answer is refused by the import and changes nothing.
                return app_sync::import(ctx, "sync:online", answer).await;
            }
            Attempt::Fatal(reason) => return Err(AppError::Unavailable(reason)),
            Attempt::Retry(reason) => {
                tracing::warn!(attempt, %reason, "online sync attempt failed");
                last = reason;
                if attempt < policy.attempts {
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
    }
    Err(AppError::Unavailable(format!(
        "{last} (after {} attempts); the satellite keeps serving from its last pool",
        policy.attempts
    )))
}
