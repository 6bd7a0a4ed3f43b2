//! Prometheus metrics: lock-free counters of device requests and `GET /metrics` (text format).
//! Counting must never block or fail a device request; the route answers only authenticated callers.

use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::server::AppState;
use crate::storage::StorageError;
use actix_web::{web, HttpResponse};
use rusqlite::Connection;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// `type` label values: the four protocol requests, other Call Home messages, and
/// messages that could not be read far enough to know.
pub const REQUEST_TYPES: [&str; 6] = [
    "register",
    "renew_id",
    "authorize",
    "deregister",
    "event",
    "unknown",
];

/// `outcome` label values: success, an event kept, a 400, a 503, or a protocol error code.
pub const OUTCOMES: [&str; 14] = [
    "success",
    "accepted",
    "unreadable",
    "unavailable",
    "token_invalid",
    "token_expired",
    "token_revoked",
    "token_exhausted",
    "not_registered",
    "bad_signature",
    "replay",
    "clock_skew",
    "eula_not_accepted",
    "malformed",
];

static DEVICE_REQUESTS: [[AtomicU64; OUTCOMES.len()]; REQUEST_TYPES.len()] =
    [const { [const { AtomicU64::new(0) }; OUTCOMES.len()] }; REQUEST_TYPES.len()];

fn index_of(list: &[&str], value: &str) -> Option<usize> {
    list.iter().position(|v| v.eq_ignore_ascii_case(value))
}

/// Counts one answered device request. Unknown labels fall back to `unknown`/`unavailable`
/// rather than being dropped, so totals stay honest.
pub fn count_device_request(kind: &str, outcome: &str) {
    let k = index_of(&REQUEST_TYPES, kind).unwrap_or(REQUEST_TYPES.len() - 1);
    let o = index_of(&OUTCOMES, outcome).unwrap_or(3);
    DEVICE_REQUESTS[k][o].fetch_add(1, Ordering::Relaxed);
}

/// Current value of one counter (tests and the exposition).
pub fn device_requests(kind: &str, outcome: &str) -> u64 {
    match (index_of(&REQUEST_TYPES, kind), index_of(&OUTCOMES, outcome)) {
        (Some(k), Some(o)) => DEVICE_REQUESTS[k][o].load(Ordering::Relaxed),
        _ => 0,
    }
}

/// What the database contributes to one scrape.
#[derive(Debug, Clone, Default)]
pub struct DbGauges {
    pub registered_instances: i64,
    /// (account, virtual account, tag, in use)
    pub usage: Vec<(String, String, String, i64)>,
    pub database_bytes: i64,
}

pub fn read_db_gauges(c: &Connection) -> rusqlite::Result<DbGauges> {
    let registered_instances =
        c.query_row("SELECT COUNT(*) FROM product_instances", [], |r| r.get(0))?;
    let mut stmt = c.prepare_cached(
        "SELECT a.name, v.name, u.tag, u.in_use FROM usage_totals u
         JOIN virtual_accounts v ON v.id = u.va_id
         JOIN smart_accounts a ON a.id = v.account_id
         ORDER BY a.name, v.name, u.tag",
    )?;
    let usage = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let page_size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(DbGauges {
        registered_instances,
        usage,
        database_bytes: pages.saturating_mul(page_size),
    })
}

/// Escapes a label value as the text format requires.
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders every metric in the Prometheus text exposition format (version 0.0.4).
pub fn render(db: &DbGauges, writer_jobs: u64, writer_commits: u64) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "satellite_device_requests_total",
        "counter",
        "Device gateway requests answered since start, by message type and outcome.",
    );
    for (k, kind) in REQUEST_TYPES.iter().enumerate() {
        for (o, outcome) in OUTCOMES.iter().enumerate() {
            let n = DEVICE_REQUESTS[k][o].load(Ordering::Relaxed);
            // Zero series for successful protocol requests give rate() a baseline;
            // the rest appear once they happen, keeping the page short.
            if n > 0 || (*outcome == "success" && k < 4) {
                let _ = writeln!(
                    out,
                    "satellite_device_requests_total{{type=\"{kind}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
    }
    family(
        &mut out,
        "satellite_registered_instances",
        "gauge",
        "Product instances currently registered.",
    );
    let _ = writeln!(
        out,
        "satellite_registered_instances {}",
        db.registered_instances
    );
    family(
        &mut out,
        "satellite_usage_in_use",
        "gauge",
        "Licenses in use per smart account, virtual account and entitlement tag.",
    );
    for (account, va, tag, n) in &db.usage {
        let _ = writeln!(
            out,
            "satellite_usage_in_use{{account=\"{}\",virtual_account=\"{}\",tag=\"{}\"}} {n}",
            label(account),
            label(va),
            label(tag)
        );
    }
    family(
        &mut out,
        "satellite_database_bytes",
        "gauge",
        "Size of the database (page count times page size).",
    );
    let _ = writeln!(out, "satellite_database_bytes {}", db.database_bytes);
    family(
        &mut out,
        "satellite_writer_jobs_total",
        "counter",
        "Write jobs the database writer has run since start.",
    );
    let _ = writeln!(out, "satellite_writer_jobs_total {writer_jobs}");
    family(
        &mut out,
        "satellite_writer_commits_total",
        "counter",
        "Batch transactions the database writer has committed since start.",
    );
    let _ = writeln!(out, "satellite_writer_commits_total {writer_commits}");
    family(
        &mut out,
        "satellite_build_info",
        "gauge",
        "Always 1; the version label names the running binary.",
    );
    let _ = writeln!(
        out,
        "satellite_build_info{{version=\"{}\"}} 1",
        label(env!("CARGO_PKG_VERSION"))
    );
    out
}

/// `GET /metrics` on the console listener: any authenticated caller, any role.
pub async fn handler(
    _caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let store = state.ctx.store.clone();
    let db = store
        .read(|c| read_db_gauges(c).map_err(StorageError::from))
        .await?;
    let w = store.writer_stats();
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(render(&db, w.jobs, w.commits)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_move_and_render_with_escaped_labels() {
        let before = device_requests("authorize", "replay");
        count_device_request("authorize", "REPLAY");
        assert_eq!(device_requests("authorize", "replay"), before + 1);
        let db = DbGauges {
            registered_instances: 3,
            usage: vec![("A \"q\"".into(), "V\\".into(), "T".into(), 2)],
            database_bytes: 4096,
        };
        let text = render(&db, 5, 2);
        assert!(
            text.contains("satellite_device_requests_total{type=\"authorize\",outcome=\"replay\"}")
        );
        assert!(
            text.contains("satellite_device_requests_total{type=\"register\",outcome=\"success\"}")
        );
        assert!(text.contains(
            "satellite_usage_in_use{account=\"A \\\"q\\\"\",virtual_account=\"V\\\\\",tag=\"T\"} 2"
        ));
        assert!(text.contains("satellite_writer_commits_total 2\n"));
        assert!(text.contains("# TYPE satellite_registered_instances gauge"));
    }

    #[test]
    fn unknown_labels_are_not_lost() {
        let before = device_requests("unknown", "unavailable");
        count_device_request("nonsense", "whatever");
        assert_eq!(device_requests("unknown", "unavailable"), before + 1);
    }
}
