//! Configuration: defaults, then a TOML file, then `SATELLITE_*` environment, then flags.
//! Only reads and merges settings; it starts nothing.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerRole {
    Satellite,
    Authority,
}

impl ServerRole {
    pub fn parse(s: &str) -> Result<ServerRole, String> {
        match s.trim() {
            "satellite" => Ok(ServerRole::Satellite),
            "authority" => Ok(ServerRole::Authority),
            o => Err(format!(
                "unknown role {o:?}: expected satellite or authority"
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ServerRole::Satellite => "satellite",
            ServerRole::Authority => "authority",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The effective configuration of one process.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `None` when nobody said: the data dir's recorded role then applies.
    pub role: Option<ServerRole>,
    pub console_addr: SocketAddr,
    pub device_http_addr: SocketAddr,
    pub device_https_addr: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Host name routers and operators use to reach this server (certificate SAN, router config).
    pub public_host: Option<String>,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Cron schedule (with seconds) of online sync.
    pub sync_schedule: String,
    pub access_token_seconds: i64,
    /// Send sync-overdue alerts to the local syslog as well as the log.
    pub syslog: bool,
    /// Unix datagram socket of the local syslog daemon.
    pub syslog_socket: PathBuf,
    /// Time a client has to send a request's headers, and the grace before its body must
    /// keep up the minimum rate; slower clients are disconnected.
    pub request_timeout_seconds: u64,
    /// Idle seconds an HTTP/1.1 connection stays open for another request; 0 closes every
    /// connection after one answer.
    pub keep_alive_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            role: None,
            console_addr: ([0, 0, 0, 0], 8443).into(),
            device_http_addr: ([0, 0, 0, 0], 80).into(),
            device_https_addr: ([0, 0, 0, 0], 443).into(),
            tls_cert: None,
            tls_key: None,
            public_host: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            sync_schedule: "0 0 2 * * *".into(),
            access_token_seconds: 3600,
            syslog: false,
            syslog_socket: PathBuf::from("/dev/log"),
            request_timeout_seconds: 10,
            keep_alive_seconds: 15,
        }
    }
}

/// One layer of settings; every field optional so layers can be stacked.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub data: Option<PathBuf>,
    pub role: Option<ServerRole>,
    pub console_addr: Option<SocketAddr>,
    pub device_http_addr: Option<SocketAddr>,
    pub device_https_addr: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub public_host: Option<String>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub sync_schedule: Option<String>,
    pub access_token_seconds: Option<i64>,
    pub syslog: Option<bool>,
    pub syslog_socket: Option<PathBuf>,
    pub request_timeout_seconds: Option<u64>,
    pub keep_alive_seconds: Option<u64>,
}

/// Every key a file may hold; anything else draws a warning.
pub const KEYS: &[&str] = &[
    "data",
    "role",
    "console_addr",
    "device_http_addr",
    "device_https_addr",
    "tls_cert",
    "tls_key",
    "public_host",
    "log_format",
    "log_level",
    "sync_schedule",
    "access_token_seconds",
    "syslog",
    "syslog_socket",
    "request_timeout_seconds",
    "keep_alive_seconds",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Layer {
    /// Parses a TOML file; unknown keys are returned as warnings rather than refused, so
    /// an older binary still starts with a newer file.
    pub fn from_file(path: &Path) -> Result<(Layer, Vec<String>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.message().to_string(),
                })?;
        let mut warnings = Vec::new();
        let unknown: Vec<String> = table
            .keys()
            .filter(|k| !KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            warnings.push(format!(
                "config file {}: unknown key {k:?} ignored",
                path.display()
            ));
            table.remove(&k);
        }
        let layer =
            Layer::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok((layer, warnings))
    }

    /// Reads `SATELLITE_<KEY>` for every key (`SATELLITE_DATA`, `SATELLITE_CONSOLE_ADDR`, ...).
    pub fn from_env_vars(get: impl Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
        let mut table = toml::Table::new();
        for key in KEYS {
            let var = format!("SATELLITE_{}", key.to_ascii_uppercase());
            if let Some(v) = get(&var) {
                if v.is_empty() {
                    continue;
                }
                let value = if matches!(
                    *key,
                    "access_token_seconds" | "request_timeout_seconds" | "keep_alive_seconds"
                ) {
                    let n: i64 = v.trim().parse().map_err(|_| ConfigError::Env {
                        var: var.clone(),
                        message: format!("{v:?} is not a whole number"),
                    })?;
                    toml::Value::Integer(n)
                } else if *key == "syslog" {
                    toml::Value::Boolean(parse_bool(&v).ok_or_else(|| ConfigError::Env {
                        var: var.clone(),
                        message: format!("{v:?} is not true or false"),
                    })?)
                } else {
                    toml::Value::String(v)
                };
                table.insert((*key).to_string(), value);
            }
        }
        Layer::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Env {
            var: "SATELLITE_*".into(),
            message: e.to_string(),
        })
    }

    fn apply_to(self, c: &mut Config) {
        if let Some(v) = self.data {
            c.data_dir = v;
        }
        if self.role.is_some() {
            c.role = self.role;
        }
        if let Some(v) = self.console_addr {
            c.console_addr = v;
        }
        if let Some(v) = self.device_http_addr {
            c.device_http_addr = v;
        }
        if let Some(v) = self.device_https_addr {
            c.device_https_addr = v;
        }
        if self.tls_cert.is_some() {
            c.tls_cert = self.tls_cert;
        }
        if self.tls_key.is_some() {
            c.tls_key = self.tls_key;
        }
        if self.public_host.is_some() {
            c.public_host = self.public_host;
        }
        if let Some(v) = self.log_format {
            c.log_format = v;
        }
        if let Some(v) = self.log_level {
            c.log_level = v;
        }
        if let Some(v) = self.sync_schedule {
            c.sync_schedule = v;
        }
        if let Some(v) = self.access_token_seconds {
            c.access_token_seconds = v;
        }
        if let Some(v) = self.syslog {
            c.syslog = v;
        }
        if let Some(v) = self.syslog_socket {
            c.syslog_socket = v;
        }
        if let Some(v) = self.keep_alive_seconds {
            c.keep_alive_seconds = v;
        }
        if let Some(v) = self.request_timeout_seconds {
            c.request_timeout_seconds = v;
        }
    }
}

/// Environment booleans as people write them in unit files and compose files.
fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

impl Config {
    /// Stacks the layers in precedence order and checks the result.
    pub fn build(file: Option<Layer>, env: Layer, flags: Layer) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        if let Some(f) = file {
            f.apply_to(&mut c);
        }
        env.apply_to(&mut c);
        flags.apply_to(&mut c);
        if c.tls_cert.is_some() != c.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key must be set together".into(),
            ));
        }
        if !(60..=86_400).contains(&c.access_token_seconds) {
            return Err(ConfigError::Invalid(format!(
                "access_token_seconds must be between 60 and 86400 (got {})",
                c.access_token_seconds
            )));
        }
        if c.keep_alive_seconds > 300 {
            return Err(ConfigError::Invalid(format!(
                "keep_alive_seconds must be between 0 (off) and 300 (got {})",
                c.keep_alive_seconds
            )));
        }
        if !(1..=300).contains(&c.request_timeout_seconds) {
            return Err(ConfigError::Invalid(format!(
                "request_timeout_seconds must be between 1 and 300 (got {})",
                c.request_timeout_seconds
            )));
        }
        // The wall clock, not the satellite's: only "does it ever run again" depends on it.
        if let Err(e) =
            crate::domain::schedule::CronSchedule::parse(&c.sync_schedule, chrono::Utc::now())
        {
            return Err(ConfigError::Invalid(format!("sync_schedule: {e}")));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let file = Layer {
            console_addr: Some("127.0.0.1:1001".parse().unwrap()),
            device_http_addr: Some("127.0.0.1:1002".parse().unwrap()),
            device_https_addr: Some("127.0.0.1:1003".parse().unwrap()),
            ..Layer::default()
        };
        let env = Layer::from_env_vars(|k| match k {
            "SATELLITE_CONSOLE_ADDR" => Some("127.0.0.1:2001".into()),
            "SATELLITE_DEVICE_HTTP_ADDR" => Some("127.0.0.1:2002".into()),
            _ => None,
        })
        .unwrap();
        let flags = Layer {
            console_addr: Some("127.0.0.1:3001".parse().unwrap()),
            ..Layer::default()
        };
        let c = Config::build(Some(file), env, flags).unwrap();
        assert_eq!(c.console_addr.port(), 3001);
        assert_eq!(c.device_http_addr.port(), 2002);
        assert_eq!(c.device_https_addr.port(), 1003);
        assert_eq!(c.sync_schedule, "0 0 2 * * *");
    }

    #[test]
    fn syslog_comes_from_the_environment() {
        let env = Layer::from_env_vars(|k| match k {
            "SATELLITE_SYSLOG" => Some("yes".into()),
            "SATELLITE_SYSLOG_SOCKET" => Some("/run/test.sock".into()),
            _ => None,
        })
        .unwrap();
        let c = Config::build(None, env, Layer::default()).unwrap();
        assert!(c.syslog);
        assert_eq!(c.syslog_socket, PathBuf::from("/run/test.sock"));
        assert!(!Config::default().syslog);
        let bad = Layer::from_env_vars(|k| (k == "SATELLITE_SYSLOG").then(|| "maybe".into()));
        assert!(bad.unwrap_err().to_string().contains("SATELLITE_SYSLOG"));
    }

    #[test]
    fn request_timeout_comes_from_the_environment_and_is_bounded() {
        assert_eq!(Config::default().request_timeout_seconds, 10);
        let env = Layer::from_env_vars(|k| {
            (k == "SATELLITE_REQUEST_TIMEOUT_SECONDS").then(|| "2".into())
        })
        .unwrap();
        let c = Config::build(None, env, Layer::default()).unwrap();
        assert_eq!(c.request_timeout_seconds, 2);
        let zero = Layer {
            request_timeout_seconds: Some(0),
            ..Layer::default()
        };
        let e = Config::build(None, Layer::default(), zero).unwrap_err();
        assert!(e.to_string().contains("request_timeout_seconds"));
    }

    #[test]
    fn five_field_cron_is_refused_with_a_hint() {
        let flags = Layer {
            sync_schedule: Some("30 3 * * *".into()),
            ..Layer::default()
        };
        let e = Config::build(None, Layer::default(), flags).unwrap_err();
        assert!(e.to_string().contains("with seconds"));
    }

    #[test]
    fn unknown_file_keys_warn() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "console_addr = \"127.0.0.1:9\"\ncolour = \"blue\"\n").unwrap();
        let (layer, warnings) = Layer::from_file(&p).unwrap();
        assert_eq!(layer.console_addr.map(|a| a.port()), Some(9));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("colour"));
    }
}
