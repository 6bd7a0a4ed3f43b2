//! Alerts to the local syslog: RFC 3164 lines over a Unix datagram socket, and the repeat
//! rule every alert channel shares. It reports what `app::alerts` says; it decides nothing.

use chrono::{DateTime, Local};
use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `daemon`: a system service without a facility of its own.
pub const FACILITY_DAEMON: u8 = 3;
/// RFC 3164 allows 1024 bytes for a whole packet.
const MAX_PACKET: usize = 1024;
/// How often the sync state is read.
pub const CHECK_EVERY: Duration = Duration::from_secs(3600);
/// A persisting alert is repeated this often, so it is not lost in a rotated log.
pub const REPEAT_EVERY: Duration = Duration::from_secs(24 * 3600);
pub const TAG: &str = "satellite";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error = 3,
    Warning = 4,
    Notice = 5,
}

#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    #[error("syslog socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One RFC 3164 packet: `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`, cut to 1024 bytes.
pub fn format_rfc3164(
    severity: Severity,
    at: DateTime<Local>,
    host: &str,
    pid: u32,
    msg: &str,
) -> String {
    let pri = u16::from(FACILITY_DAEMON) * 8 + severity as u16;
    // The header fields are separated by spaces, so a host name must not contain one.
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    let host = if host.is_empty() { "-".into() } else { host };
    let clean: String = msg
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut line = format!(
        "<{pri}>{} {host} {TAG}[{pid}]: {clean}",
        at.format("%b %e %H:%M:%S")
    );
    if line.len() > MAX_PACKET {
        let mut cut = MAX_PACKET;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line
}

/// Sends one packet to the syslog socket; the socket is opened per packet because
/// a restarted syslog daemon replaces it.
pub fn send(socket: &Path, packet: &str) -> Result<(), SyslogError> {
    let err = |source| SyslogError::Socket {
        path: socket.to_path_buf(),
        source,
    };
    let s = UnixDatagram::unbound().map_err(err)?;
    s.send_to(packet.as_bytes(), socket).map_err(err)?;
    Ok(())
}

/// Remembers when each alert (by key) was last sent on one channel.
#[derive(Debug, Default)]
pub struct AlertSink {
    sent: HashMap<String, Instant>,
}

impl AlertSink {
    /// The alerts due now: new ones, and persisting ones not sent within `REPEAT_EVERY`.
    /// Alerts that cleared are forgotten so they are sent again if they come back.
    pub fn due(&mut self, alerts: &[String], now: Instant) -> Vec<String> {
        self.sent.retain(|k, _| alerts.contains(k));
        let mut out = Vec::new();
        for a in alerts {
            let fresh = self
                .sent
                .get(a)
                .is_none_or(|t| now.duration_since(*t) >= REPEAT_EVERY);
            if fresh {
                self.sent.insert(a.clone(), now);
                out.push(a.clone());
            }
        }
        out
    }

    /// Forgets alerts whose delivery failed, so the next check tries them again.
    pub fn forget(&mut self, alerts: &[String]) {
        self.sent.retain(|k, _| !alerts.contains(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn packet_has_priority_timestamp_host_and_tag() {
        let at = Local.with_ymd_and_hms(2026, 3, 5, 7, 8, 9).unwrap();
        let p = format_rfc3164(Severity::Warning, at, "sat 1", 42, "line\nbreak");
        assert_eq!(p, "<28>Mar  5 07:08:09 sat1 satellite[42]: line break");
        let long = "x".repeat(5000);
        assert_eq!(
            format_rfc3164(Severity::Error, at, "h", 1, &long).len(),
            MAX_PACKET
        );
    }

    #[test]
    fn alerts_repeat_daily_and_return_after_clearing() {
        let mut sink = AlertSink::default();
        let t0 = Instant::now();
        let a = vec!["late".to_string()];
        assert_eq!(sink.due(&a, t0), a);
        assert!(sink.due(&a, t0 + CHECK_EVERY).is_empty());
        assert_eq!(sink.due(&a, t0 + REPEAT_EVERY), a);
        assert!(sink.due(&[], t0 + REPEAT_EVERY).is_empty());
        assert_eq!(sink.due(&a, t0 + REPEAT_EVERY + CHECK_EVERY), a);
        // A failed delivery is forgotten and due again at the next check.
        sink.forget(&a);
        assert_eq!(sink.due(&a, t0 + REPEAT_EVERY + CHECK_EVERY * 2), a);
    }

    #[test]
    fn send_reaches_a_bound_socket_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        send(&path, "<28>hello").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<28>hello");
        let e = send(&dir.path().join("none"), "x").unwrap_err();
        assert!(e.to_string().contains("none"));
    }
}
