//! Test fixture: runs the real `satellite` binary on port 0 with a fresh data dir and
//! talks to it over real HTTP and TLS.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "test-admin-password-1";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_satellite"))
}

/// Runs one CLI command against a data dir; returns (status, stdout, stderr).
pub fn cli(data: &Path, args: &[&str]) -> (bool, String, String) {
    cli_env(data, args, &[])
}

pub fn cli_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(bin());
    cmd.arg("--data").arg(data).args(args);
    cmd.env("SATELLITE_ADMIN_PASSWORD", ADMIN_PASSWORD);
    cmd.env_remove("SATELLITE_CLOCK_OFFSET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run satellite");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a CLI command that must succeed and returns its stdout.
pub fn ok(data: &Path, args: &[&str]) -> String {
    let (success, out, err) = cli(data, args);
    assert!(success, "satellite {args:?} failed: {err}");
    out
}

pub struct Server {
    pub child: Child,
    pub data: PathBuf,
    pub console: String,
    pub device_http: String,
    pub device_https: String,
    pub stderr_path: PathBuf,
}

pub struct Spawn<'a> {
    pub data: &'a Path,
    pub role: &'a str,
    pub env: Vec<(String, String)>,
    pub extra_args: Vec<String>,
}

impl<'a> Spawn<'a> {
    pub fn new(data: &'a Path) -> Self {
        Spawn {
            data,
            role: "satellite",
            env: Vec::new(),
            extra_args: Vec::new(),
        }
    }
    pub fn role(mut self, r: &'a str) -> Self {
        self.role = r;
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.extra_args.push(a.into());
        self
    }

    /// Starts the server; returns Err(stderr) when it exits before listening.
    pub fn try_start(self) -> Result<Server, String> {
        std::fs::create_dir_all(self.data).expect("data dir");
        let stderr_path = self.data.join(format!(
            "serve-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let stderr_file = std::fs::File::create(&stderr_path).expect("log file");
        let mut cmd = Command::new(bin());
        cmd.arg("--data")
            .arg(self.data)
            .args(["serve", "--role", self.role])
            .args(["--console-addr", "127.0.0.1:0"])
            .args(["--device-http-addr", "127.0.0.1:0"])
            .args(["--device-https-addr", "127.0.0.1:0"])
            .args(&self.extra_args)
            .env("SATELLITE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("SATELLITE_CLOCK_OFFSET")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn satellite");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut console, mut http, mut https) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while console.is_none() || http.is_none() || https.is_none() {
            if let Ok(Some(_)) = child.try_wait() {
                return Err(std::fs::read_to_string(&stderr_path).unwrap_or_default());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("server did not report its listeners in 30 s".into());
            }
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                let parts: Vec<&str> = line.split_whitespace().collect();
                if let ["listening", surface, addr] = parts.as_slice() {
                    match *surface {
                        "console" => console = Some(addr.to_string()),
                        "device-http" => http = Some(addr.to_string()),
                        "device-https" => https = Some(addr.to_string()),
                        _ => {}
                    }
                }
            }
        }
        Ok(Server {
            child,
            data: self.data.to_path_buf(),
            console: console.unwrap_or_default(),
            device_http: http.unwrap_or_default(),
            device_https: https.unwrap_or_default(),
            stderr_path,
        })
    }

    pub fn start(self) -> Server {
        match self.try_start() {
            Ok(s) => s,
            Err(e) => panic!("server failed to start: {e}"),
        }
    }
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Spawn::new(data).start()
    }

    pub fn console_url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", port_of(&self.console), path)
    }

    /// An HTTPS client that trusts only this server's generated certificate.
    pub fn client(&self) -> reqwest::Client {
        install_provider();
        let pem = std::fs::read(self.data.join("tls/console.crt")).expect("console cert");
        let cert = reqwest::Certificate::from_pem(&pem).expect("parse cert");
        reqwest::Client::builder()
            .tls_certs_only([cert])
            .resolve(
                "localhost",
                format!("127.0.0.1:{}", port_of(&self.console))
                    .parse()
                    .expect("addr"),
            )
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as i32;
        unsafe_kill(pid, 15);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

fn unsafe_kill(pid: i32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Creates an API client with `role` through the CLI and returns a bearer token for it.
pub async fn bearer(server: &Server, role: &str) -> String {
    bearer_scoped(server, &format!("{role}-client"), role, &[]).await
}

/// A bearer token of a new API client limited to `accounts`.
pub async fn bearer_scoped(server: &Server, name: &str, role: &str, accounts: &[&str]) -> String {
    let mut args = vec!["api-client", "create", name, "--role", role];
    for a in accounts {
        args.extend(["--account", a]);
    }
    let out = ok(&server.data, &args);
    let mut id = String::new();
    let mut secret = String::new();
    for line in out.lines() {
        if let Some(v) = line.strip_prefix("client_id: ") {
            id = v.to_string();
        }
        if let Some(v) = line.strip_prefix("client_secret: ") {
            secret = v.to_string();
        }
    }
    let resp = server
        .client()
        .post(server.console_url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .expect("oauth request");
    assert_eq!(resp.status(), 200, "oauth token for {role}");
    let v: serde_json::Value = resp.json().await.expect("oauth json");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// A fresh smart account with one virtual account and an accepted EULA.
pub fn seed_account(data: &Path, account: &str, va: &str) {
    ok(data, &["account", "create", account]);
    ok(data, &["va", "create", account, va]);
    ok(data, &["eula", "accept", "--account", account]);
}

/// Posts a Call Home body to the device HTTP listener and reads the signed answer.
pub async fn device_call(server: &Server, body: String) -> satellite::simulate::client::Reply {
    install_provider();
    let bytes = reqwest::Client::new()
        .post(format!(
            "http://{}/Transportgateway/services/DeviceRequestHandler",
            server.device_http
        ))
        .header("Content-Type", "application/xml")
        .body(body)
        .send()
        .await
        .expect("device request")
        .bytes()
        .await
        .expect("device answer");
    satellite::simulate::client::read_reply(&bytes).expect("a signed Call Home answer")
}

/// An API call, with a bearer token when given, POST when a body is given; returns the
/// status and the JSON body (every API answer is JSON, errors included).
pub async fn api_call(
    server: &Server,
    bearer: Option<&str>,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let c = server.client();
    let url = server.console_url(path);
    let mut req = match body {
        Some(b) => c.post(url).json(&b),
        None => c.get(url),
    };
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("API request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("JSON answer"))
}

/// An API call with a bearer token; returns the JSON body whatever the status.
pub async fn api_json(
    server: &Server,
    bearer: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    api_call(server, Some(bearer), path, body).await.1
}
