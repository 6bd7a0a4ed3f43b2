//! `satellite healthcheck`: one plain-HTTP GET of `/healthz` for container probes, with no curl.
//! It only asks; it never touches the data dir.

use crate::config::Config;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("{0:?} is not an http:// URL with a host (the probe speaks plain HTTP only)")]
    Url(String),
    #[error("{0} resolves to no address")]
    Resolve(String),
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0} answered {1:?}, not 200")]
    Status(String, String),
}

/// The device HTTP listener on this machine: it is plain HTTP in every deployment, so the
/// probe needs no certificate. A wildcard address is reached through loopback.
pub fn default_url(config: &Config) -> String {
    let a = config.device_http_addr;
    let ip = match a.ip() {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("{}/healthz", http_base(SocketAddr::new(ip, a.port())))
}

fn http_base(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => format!("http://{v}"),
        SocketAddr::V6(v) => format!("http://[{}]:{}", v.ip(), v.port()),
    }
}

/// GETs `url` and succeeds on status 200 within `timeout` for each step.
pub fn probe(url: &str, timeout: Duration) -> Result<(), HealthError> {
    let bad = || HealthError::Url(url.to_string());
    let u = url::Url::parse(url).map_err(|_| bad())?;
    if u.scheme() != "http" {
        return Err(bad());
    }
    let host = u.host_str().ok_or_else(bad)?.to_string();
    let port = u.port().unwrap_or(80);
    let target = format!("{host}:{port}");
    let addr = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|source| HealthError::Io {
            addr: target.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| HealthError::Resolve(target.clone()))?;
    let io = |source| HealthError::Io {
        addr: target.clone(),
        source,
    };
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    // One write: `write!` on an unbuffered socket sends each piece separately, and a peer
    // that answers after the first piece and closes would fail the rest with EPIPE.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: satellite-healthcheck\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).map_err(io)?;
    // The status line is all that matters; a small bound keeps a confused peer from
    // making the probe read forever.
    let mut head = Vec::new();
    s.take(4096).read_to_end(&mut head).map_err(io)?;
    let text = String::from_utf8_lossy(&head);
    let status = text.lines().next().unwrap_or("").trim().to_string();
    let mut parts = status.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(v), Some("200")) if v.starts_with("HTTP/") => Ok(()),
        _ => Err(HealthError::Status(url.to_string(), status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static str) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            // The whole request, as a server would, before answering and closing.
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            c.write_all(answer.as_bytes()).unwrap();
        });
        format!("http://{a}/healthz")
    }

    #[test]
    fn ok_only_on_200() {
        let t = Duration::from_secs(5);
        probe(
            &serve_once("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n"),
            t,
        )
        .unwrap();
        let e = probe(&serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n"), t).unwrap_err();
        assert!(e.to_string().contains("503"), "{e}");
        assert!(probe("https://localhost/healthz", t).is_err());
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(probe(&format!("http://{closed}/healthz"), t).is_err());
    }

    #[test]
    fn wildcard_listener_is_probed_through_loopback() {
        let c = Config::default();
        assert_eq!(default_url(&c), "http://127.0.0.1:80/healthz");
        let c = Config {
            device_http_addr: "[::]:8080".parse().unwrap(),
            ..Config::default()
        };
        assert_eq!(default_url(&c), "http://[::1]:8080/healthz");
    }
}
