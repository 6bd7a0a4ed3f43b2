//! Slow clients against the real binary: a slowloris that trickles its headers and a client
//! that trickles its body are both disconnected, while everyone else is served meanwhile.
//! The server runs with a 2 s request timeout; limits checked here are far above it.

mod common;
#[path = "common/tls_probe.rs"]
mod tls_probe;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The request timeout the server is started with.
const TIMEOUT_SECS: u64 = 2;
/// Generous bound on how long a slow client may hold its connection: the timeout, the
/// body grace and scheduling slack on a busy machine. Only a server that never cuts the
/// client off comes near it.
const GIVE_UP: Duration = Duration::from_secs(TIMEOUT_SECS + 20);
/// Slowloris connections held open at once.
const SLOW_CLIENTS: usize = 16;

fn start(dir: &std::path::Path) -> Server {
    Spawn::new(dir)
        .env(
            "SATELLITE_REQUEST_TIMEOUT_SECONDS",
            &TIMEOUT_SECS.to_string(),
        )
        .start()
}

/// What became of a slow client.
#[derive(Debug)]
struct Outcome {
    /// The server hung up before the client finished sending.
    closed: bool,
    /// Bytes the client got to send before that.
    sent: usize,
    /// What the server said, if anything, before closing.
    answer: String,
    held: Duration,
}

/// Sends `head` at once, then `trickle` one byte a second, and watches for the server to
/// close the connection; gives up after `GIVE_UP`.
fn trickle<S: Read + Write>(
    mut s: S,
    head: &[u8],
    trickle: &[u8],
    set_timeout: impl Fn(&S),
) -> Outcome {
    set_timeout(&s);
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut sent = 0;
    if s.write_all(head).and_then(|_| s.flush()).is_err() {
        return Outcome {
            closed: true,
            sent,
            answer: String::new(),
            held: started.elapsed(),
        };
    }
    let mut next = trickle.iter();
    let mut buf = [0u8; 4096];
    while started.elapsed() < GIVE_UP {
        if let Some(b) = next.next() {
            if s.write_all(&[*b]).and_then(|_| s.flush()).is_err() {
                return Outcome {
                    closed: true,
                    sent,
                    answer: String::from_utf8_lossy(&answer).into_owned(),
                    held: started.elapsed(),
                };
            }
            sent += 1;
        }
        // The read waits up to the socket timeout (1 s): the pace of the trickle.
        match s.read(&mut buf) {
            Ok(0) => {
                return Outcome {
                    closed: true,
                    sent,
                    answer: String::from_utf8_lossy(&answer).into_owned(),
                    held: started.elapsed(),
                }
            }
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                return Outcome {
                    closed: true,
                    sent,
                    answer: String::from_utf8_lossy(&answer).into_owned(),
                    held: started.elapsed(),
                }
            }
        }
    }
    Outcome {
        closed: false,
        sent,
        answer: String::from_utf8_lossy(&answer).into_owned(),
        held: started.elapsed(),
    }
}

fn tls_trickle(addr: &str, head: &[u8], rest: &[u8]) -> Outcome {
    let s = tls_probe::connect(addr);
    trickle(s, head, rest, |s| {
        s.sock
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
    })
}

fn tcp_trickle(addr: &str, head: &[u8], rest: &[u8]) -> Outcome {
    let s = TcpStream::connect(addr).unwrap();
    trickle(s, head, rest, |s| {
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    })
}

/// Headers that never end: well over the timeout's worth of bytes at one a second.
const ENDLESS_HEADERS: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_is_cut_off_while_other_clients_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    install_provider();

    let mut slow = Vec::new();
    for i in 0..SLOW_CLIENTS {
        // Half over TLS to the console, half in the clear to the device listener.
        let (console, device) = (s.console.clone(), s.device_http.clone());
        slow.push(std::thread::spawn(move || {
            if i % 2 == 0 {
                tls_trickle(&console, b"", ENDLESS_HEADERS)
            } else {
                tcp_trickle(&device, b"", ENDLESS_HEADERS)
            }
        }));
    }
    // While they trickle, the console and the gateway answer everyone else.
    let client = s.client();
    for _ in 0..5 {
        let r = client.get(s.console_url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = reqwest::get(format!("http://{}/healthz", s.device_http))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for t in slow {
        let o = tokio::task::spawn_blocking(move || t.join().unwrap())
            .await
            .unwrap();
        eprintln!("slowloris: {:?} after {} byte(s)", o.held, o.sent);
        assert!(
            o.closed,
            "a slowloris kept its connection for {:?}: {o:?}",
            o.held
        );
        assert!(
            o.sent < ENDLESS_HEADERS.len(),
            "the whole header trickle went through: {o:?}"
        );
        // actix answers 408 before closing, or just closes; nothing else.
        assert!(
            o.answer.is_empty() || o.answer.starts_with("HTTP/1.1 408"),
            "{o:?}"
        );
    }
    // Still serving after the attack.
    let r = client.get(s.console_url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A body of `len` bytes for a form, and complete headers announcing it for `path`.
fn slow_request(path: &str, content_type: &str, len: usize) -> (Vec<u8>, Vec<u8>) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n\
         Content-Length: {len}\r\n\r\n"
    );
    let body = format!(
        "grant_type=client_credentials&client_id={}",
        "a".repeat(len)
    )
    .into_bytes()[..len]
        .to_vec();
    (head.into_bytes(), body)
}

const BODY_LEN: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_far_slower_than_allowed_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    install_provider();
    // Complete headers announcing a body, then the body a byte a second: far below the
    // minimum rate once the grace is over.
    let (form_head, form_body) = slow_request(
        "/oauth/token",
        "application/x-www-form-urlencoded",
        BODY_LEN,
    );
    let (xml_head, xml_body) = slow_request(
        "/Transportgateway/services/DeviceRequestHandler",
        "application/xml",
        BODY_LEN,
    );
    let (console, device) = (s.console.clone(), s.device_http.clone());
    let over_tls = std::thread::spawn(move || tls_trickle(&console, &form_head, &form_body));
    let in_clear = std::thread::spawn(move || tcp_trickle(&device, &xml_head, &xml_body));
    let client = s.client();
    for _ in 0..3 {
        let r = client.get(s.console_url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for t in [over_tls, in_clear] {
        let o = tokio::task::spawn_blocking(move || t.join().unwrap())
            .await
            .unwrap();
        eprintln!("slow body: {o:?}");
        assert!(
            o.closed,
            "a slow body kept its connection for {:?}: {o:?}",
            o.held
        );
        assert!(o.sent < BODY_LEN, "the whole slow body went through: {o:?}");
        // The request failed with a client error and the connection was closed after it.
        assert!(o.answer.starts_with("HTTP/1.1 4"), "{o:?}");
        assert!(
            o.answer.to_ascii_lowercase().contains("connection: close"),
            "{o:?}"
        );
    }

    // A body sent promptly still works: the limit is a rate, not a size.
    let r = client
        .post(s.console_url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("client_secret", "y"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a prompt body reaches the handler");
}

/// The header timeout covers only a connection's first request. With keep-alive off, the
/// connection ends with its first answer, so a second request cannot be trickled on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keep_alive_a_second_request_cannot_be_trickled() {
    let dir = tempfile::tempdir().unwrap();
    let s = Spawn::new(dir.path())
        .env(
            "SATELLITE_REQUEST_TIMEOUT_SECONDS",
            &TIMEOUT_SECS.to_string(),
        )
        .env("SATELLITE_KEEP_ALIVE_SECONDS", "0")
        .start();
    let first = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let (device, console) = (s.device_http.clone(), s.console.clone());
    let plain = std::thread::spawn(move || tcp_trickle(&device, first, ENDLESS_HEADERS));
    let tls = std::thread::spawn(move || tls_trickle(&console, first, ENDLESS_HEADERS));
    for (what, o) in [
        ("device", plain.join().unwrap()),
        ("console", tls.join().unwrap()),
    ] {
        assert!(o.closed, "{what}: the connection stayed open: {o:?}");
        assert!(o.answer.starts_with("HTTP/1.1 200"), "{what}: {o:?}");
        assert!(
            o.held < GIVE_UP,
            "{what}: held {:?} before the server hung up",
            o.held
        );
    }
}
