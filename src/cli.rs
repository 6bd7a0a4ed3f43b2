//! Command-line surface: argument definitions and the dispatch of each command to a service.
//! Output formatting lives here; decisions do not.

use crate::app::{self, cli_principal, Ctx};
use crate::clock::Clock;
use crate::config::{Config, Layer, LogFormat, ServerRole};
use crate::domain::names::EntitlementTag;
use crate::domain::roles::Role;
use crate::domain::tokens::TokenSpec;
use crate::storage::{settings, Store};
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::ProgressDrawTarget;
use std::io::{BufRead, Write};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "satellite",
    version,
    about = "Smart Licensing on-prem satellite and authority"
)]
pub struct Cli {
    /// Data directory (database, keys, certificates) [env: SATELLITE_DATA] [default: ./data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// TOML configuration file [env: SATELLITE_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the console/API and device listeners until SIGTERM or SIGINT
    Serve(ServeArgs),
    /// Smart accounts
    #[command(subcommand)]
    Account(AccountCmd),
    /// Virtual accounts
    #[command(subcommand)]
    Va(VaCmd),
    /// Console users
    #[command(subcommand)]
    User(UserCmd),
    /// API clients for /oauth/token
    #[command(subcommand, name = "api-client")]
    ApiClient(ApiClientCmd),
    /// Smart Software Licensing Agreement
    #[command(subcommand)]
    Eula(EulaCmd),
    /// Registration tokens
    #[command(subcommand)]
    Token(TokenCmd),
    /// Purchased licenses (added on the authority)
    #[command(subcommand)]
    License(LicenseCmd),
    /// Product instances (registered routers)
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Simulated IOS XR routers speaking the device protocol to a satellite
    Simulate(SimulateArgs),
    /// Authority: satellite enrollment
    #[command(subcommand)]
    Enroll(EnrollCmd),
    /// Authority: enrolled satellites and the virtual accounts they serve
    Satellites,
    /// Authority: write this authority's public key for satellites to pin
    AuthorityKey {
        #[arg(long)]
        out: PathBuf,
    },
    /// Satellite: where and whom to sync with
    #[command(subcommand)]
    Upstream(UpstreamCmd),
    /// Synchronisation with upstream (files or online)
    #[command(subcommand)]
    Sync(SyncCmd),
    /// Register synthetic product instances in bulk, for scale measurements
    Populate {
        #[arg(long)]
        account: String,
        #[arg(long)]
        va: String,
        #[arg(long)]
        devices: u64,
        /// Instances per transaction
        #[arg(long, default_value_t = 5000)]
        batch: u64,
    },
    /// Write one file with a consistent database copy and every key and certificate
    Backup(BackupArgs),
    /// Restore a backup into an empty (or new) data dir
    Restore(RestoreArgs),
    /// Check certificates, clock, host name, listeners and database; say what to fix
    Doctor,
    /// Reports over the database (usage history)
    #[command(subcommand)]
    Report(ReportCmd),
    /// Probe a running server's /healthz over plain HTTP; exit 0 when it answers 200
    Healthcheck(HealthcheckArgs),
}

#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// Daily usage snapshots of one virtual account
    Usage {
        #[arg(long)]
        account: String,
        #[arg(long)]
        va: String,
        /// How many days back
        #[arg(long, default_value_t = 30)]
        days: i64,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Args, Debug)]
pub struct HealthcheckArgs {
    /// http:// URL to GET [default: /healthz on this configuration's device HTTP listener]
    #[arg(long)]
    pub url: Option<String>,
    /// Seconds allowed for connecting and for the answer
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

#[derive(Subcommand, Debug)]
pub enum EnrollCmd {
    /// Register a satellite for an account; prints its one-time enrollment token
    Create {
        #[arg(long)]
        account: String,
        #[arg(long)]
        name: String,
        /// Virtual account it serves (repeatable; default: those no other satellite serves)
        #[arg(long = "va")]
        vas: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UpstreamCmd {
    /// Set the authority URL, the enrollment token and the authority's public key (pinned)
    Set {
        #[arg(long)]
        url: String,
        /// One-time token from `satellite enroll create` (not needed to change the URL later)
        #[arg(long)]
        enrollment_token: Option<String>,
        /// PEM public key written by `satellite authority-key` on the authority
        #[arg(long)]
        authority_key: PathBuf,
        /// PEM certificate of the authority's HTTPS listener to pin for online sync
        #[arg(long)]
        ca: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SyncCmd {
    /// Satellite: write the sync request file (disconnected mode)
    Export {
        #[arg(long)]
        out: PathBuf,
    },
    /// Authority: answer a request file with a response file
    Answer {
        request: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Satellite: apply a response file
    Import { response: PathBuf },
    /// Satellite: one online sync now
    Now,
    /// Satellite: last success, last failure, pending changes, alerts
    Status {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The backup file to write (mode 0600: it holds private keys)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// A file written by `satellite backup`
    pub file: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum DeviceCmd {
    /// List product instances with their status
    List {
        #[arg(long)]
        account: String,
        #[arg(long)]
        va: Option<String>,
        /// Prefix of a serial number, PID or hostname
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Remove product instances (PID:SERIAL); their licenses return to the pool
    Remove {
        #[arg(long)]
        account: String,
        #[arg(required = true)]
        sudi: Vec<String>,
    },
    /// Move product instances (PID:SERIAL) to another virtual account
    Transfer {
        #[arg(long)]
        account: String,
        #[arg(long = "to")]
        target_va: String,
        #[arg(required = true)]
        sudi: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Satellite device URL, e.g. http://satellite or https://satellite:443
    #[arg(long)]
    pub url: String,
    /// Registration token
    #[arg(long)]
    pub token: String,
    /// Number of simulated routers
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// Requests in flight at once
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seed for serial numbers and hardware
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Make the first router the guide's NCS560-4 example
    #[arg(long)]
    pub seed_scenario: bool,
    /// Authorization rounds after registering
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Seconds between authorization rounds
    #[arg(long, default_value_t = 0)]
    pub interval: u64,
    /// Renew ID certificates after the rounds
    #[arg(long)]
    pub renew: bool,
    /// Deregister every router at the end
    #[arg(long)]
    pub deregister: bool,
    /// Trust this PEM certificate for https:// URLs
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Accept any certificate for https:// URLs
    #[arg(long)]
    pub insecure: bool,
    /// Print the first router's `show license` screens at the end
    #[arg(long)]
    pub show: bool,
    /// Also measure `/healthz` with the same client and concurrency, and print each
    /// phase's throughput as a ratio of it
    #[arg(long)]
    pub baseline: bool,
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// satellite (default) or authority
    #[arg(long, value_parser = ["satellite", "authority"])]
    pub role: Option<String>,
    /// Console and REST API address [env: SATELLITE_CONSOLE_ADDR] [default: 0.0.0.0:8443]
    #[arg(long)]
    pub console_addr: Option<std::net::SocketAddr>,
    /// Device HTTP address [env: SATELLITE_DEVICE_HTTP_ADDR] [default: 0.0.0.0:80]
    #[arg(long)]
    pub device_http_addr: Option<std::net::SocketAddr>,
    /// Device HTTPS address [env: SATELLITE_DEVICE_HTTPS_ADDR] [default: 0.0.0.0:443]
    #[arg(long)]
    pub device_https_addr: Option<std::net::SocketAddr>,
}

#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Create a smart account
    Create { name: String },
    /// List smart accounts
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
pub enum VaCmd {
    /// Create a virtual account in a smart account
    Create { account: String, va: String },
    /// List the virtual accounts of a smart account
    List { account: String },
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a console user; without --password-stdin a password is generated and printed once
    Add {
        name: String,
        #[arg(long)]
        role: String,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
        /// Account the user is limited to (repeatable; required for account-admin)
        #[arg(long = "account")]
        accounts: Vec<String>,
    },
    /// List console users
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Disable a user: logins are refused and their sessions end at once
    Disable { name: String },
    /// Enable a disabled user again
    Enable { name: String },
    /// Delete a user and their sessions (the audit log keeps the name)
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum ApiClientCmd {
    /// Create an API client; prints client_id and client_secret
    Create {
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long = "account")]
        accounts: Vec<String>,
    },
    /// List API clients
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Revoke an API client by client_id; its access tokens stop working at once
    Revoke { client_id: String },
}

#[derive(Subcommand, Debug)]
pub enum EulaCmd {
    /// Accept the agreement for an account
    Accept {
        #[arg(long)]
        account: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a registration token; prints the token alone on stdout
    Create {
        #[arg(long)]
        account: String,
        #[arg(long)]
        va: String,
        /// Days until expiry, 1 to 365
        #[arg(long, default_value_t = 30, allow_negative_numbers = true)]
        days: i64,
        /// Maximum number of registrations
        #[arg(long, allow_negative_numbers = true)]
        uses: Option<i64>,
        #[arg(long)]
        export_controlled: bool,
        #[arg(long)]
        description: Option<String>,
    },
    /// List tokens of an account or one virtual account
    List {
        #[arg(long)]
        account: String,
        #[arg(long)]
        va: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Revoke tokens
    Revoke {
        #[arg(long)]
        account: String,
        /// Tokens made by older builds may start with '-'; they are taken as tokens
        #[arg(required = true, allow_hyphen_values = true)]
        tokens: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum LicenseCmd {
    /// Add purchased licenses to a virtual account (authority only)
    Add {
        #[arg(long)]
        account: String,
        #[arg(long)]
        va: String,
        #[arg(long)]
        tag: String,
        #[arg(long, allow_negative_numbers = true)]
        quantity: i64,
        /// rtu, sia or tracking (default: from the catalog or the tag's suffix)
        #[arg(long, value_parser = ["rtu", "sia", "tracking"])]
        kind: Option<String>,
        /// First day the licenses count (YYYY-MM-DD or RFC 3339)
        #[arg(long)]
        start: Option<String>,
        /// Day the licenses stop counting (YYYY-MM-DD or RFC 3339)
        #[arg(long)]
        end: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Licenses per virtual account and tag: purchased, transferred, in use, status
    List {
        #[arg(long)]
        account: String,
        /// One virtual account (default: all of the account)
        #[arg(long)]
        va: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// Builds the effective configuration for the parsed command line.
pub fn load_config(cli: &Cli) -> Result<(Config, Vec<String>)> {
    let config_path = cli
        .config
        .clone()
        .or_else(|| std::env::var_os("SATELLITE_CONFIG").map(PathBuf::from));
    let (file, warnings) = match config_path {
        Some(p) => {
            let (l, w) = Layer::from_file(&p)?;
            (Some(l), w)
        }
        None => (None, Vec::new()),
    };
    let env = Layer::from_env_vars(|k| std::env::var(k).ok())?;
    let mut flags = Layer {
        data: cli.data.clone(),
        ..Layer::default()
    };
    if let Command::Serve(s) = &cli.command {
        flags.role = s
            .role
            .as_deref()
            .map(ServerRole::parse)
            .transpose()
            .map_err(|e| anyhow!(e))?;
        flags.console_addr = s.console_addr;
        flags.device_http_addr = s.device_http_addr;
        flags.device_https_addr = s.device_https_addr;
    }
    Ok((Config::build(file, env, flags)?, warnings))
}

/// Standard error that never reports a failed write. When stderr is a file on a disk that
/// is full or turned read-only, tracing would otherwise complain with `eprintln!`, which
/// panics on the same failure and takes down whichever thread logged: the database writer
/// among them. A lost log line is the lesser harm.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

pub fn init_logging(config: &Config, serving: bool) {
    let default = if serving {
        config.log_level.as_str()
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SATELLITE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Opens the data dir: database, clock, role, and the first admin on a new dir.
pub fn open_ctx(config: &Config, clock: Clock, serving: bool) -> Result<Ctx> {
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("opening data dir {}", config.data_dir.display()))?;
    let stored = store.read_blocking(|c| {
        settings::get_setting(c, "role").map_err(crate::storage::StorageError::from)
    })?;
    let role = match (config.role, stored.as_deref()) {
        (Some(r), _) => r,
        (None, Some(s)) => ServerRole::parse(s).map_err(|e| anyhow!(e))?,
        (None, None) => ServerRole::Satellite,
    };
    if serving && stored.as_deref() != Some(role.as_str()) {
        if let Some(old) = &stored {
            tracing::warn!(from = %old, to = role.as_str(), "data dir changes role");
        }
        store.write_blocking(move |c| {
            settings::put_setting(c, "role", role.as_str())
                .map_err(crate::storage::StorageError::from)
        })?;
    }
    let ctx = Ctx { store, clock, role };
    let supplied = std::env::var("SATELLITE_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    if let Some(pw) = app::principals::bootstrap_admin(&ctx, supplied)? {
        // Shown once, on the terminal, never through the log.
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "initialised {}: console user 'admin' with password: {pw}\nstore it now; it is not shown again (set SATELLITE_ADMIN_PASSWORD to choose it instead)",
            config.data_dir.display()
        );
    }
    Ok(ctx)
}

fn parse_date(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| anyhow!("date {s:?} must be YYYY-MM-DD or RFC 3339"))
}

fn read_password_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(pw)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn csv_field(s: &str) -> String {
    crate::ops::csv::cell(s)
}

pub async fn run_command(
    cmd: Command,
    ctx: &Ctx,
    data_dir: &std::path::Path,
    sync_schedule: &str,
) -> Result<()> {
    let me = cli_principal();
    let mut out = std::io::stdout().lock();
    match cmd {
        Command::Serve(_)
        | Command::Simulate(_)
        | Command::Backup(_)
        | Command::Restore(_)
        | Command::Healthcheck(_)
        | Command::Doctor => {
            bail!("this command is dispatched before the data dir is opened")
        }
        Command::Populate {
            account,
            va,
            devices,
            batch,
        } => {
            let started = std::time::Instant::now();
            let bar = Progress::counting(devices, "instances");
            let n = app::populate::populate(ctx, &me, &account, &va, devices, batch, |done| {
                bar.set(done)
            })
            .await?;
            bar.finish();
            writeln!(
                out,
                "registered {n} synthetic instance(s) in {:.1} s",
                started.elapsed().as_secs_f64()
            )?;
        }
        Command::Enroll(EnrollCmd::Create { account, name, vas }) => {
            let e = app::sync::enroll_create(ctx, &me, &account, &name, vas).await?;
            eprintln!(
                "satellite {} will serve {}/{}",
                e.satellite_id,
                account,
                e.virtual_accounts.join(", ")
            );
            writeln!(out, "{}", e.token)?;
        }
        Command::Satellites => {
            for s in app::sync::satellites(ctx, &me).await? {
                writeln!(
                    out,
                    "{}\t{}\t{}/{}\t{}\tlast sync {}\tinstances {}",
                    s.satellite.satellite_id,
                    s.satellite.name,
                    s.account,
                    s.virtual_accounts.join(","),
                    if s.satellite.enrolled_at.is_some() {
                        "enrolled"
                    } else {
                        "awaiting first sync"
                    },
                    s.satellite
                        .last_sync_at
                        .map(rfc3339)
                        .unwrap_or_else(|| "never".into()),
                    s.instances_reported
                )?;
            }
        }
        Command::AuthorityKey { out: path } => {
            app::require_authority(ctx, "writing the authority key")?;
            let keys = app::sync::key_pair(data_dir)?;
            crate::crypto::keyfile::write_public(&path, keys.public_key_pem().as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            writeln!(
                out,
                "wrote {} (authority {})",
                path.display(),
                app::sync::authority_id(&keys.public_key_b64())
            )?;
        }
        Command::Upstream(UpstreamCmd::Set {
            url,
            enrollment_token,
            authority_key,
            ca,
        }) => {
            let authority_key_pem = std::fs::read_to_string(&authority_key)
                .with_context(|| format!("reading {}", authority_key.display()))?;
            let ca_pem = match ca {
                Some(p) => Some(
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {}", p.display()))?,
                ),
                None => None,
            };
            let id = app::sync::upstream_set(
                ctx,
                &me,
                app::sync::UpstreamSpec {
                    url,
                    enrollment_token,
                    authority_key_pem,
                    ca_pem,
                },
            )
            .await?;
            writeln!(out, "upstream set; this satellite is {id}")?;
        }
        Command::Sync(SyncCmd::Export { out: path }) => {
            let spin = Progress::spinner("collecting product instances and changes");
            let bytes = app::sync::export(ctx, data_dir).await;
            spin.finish();
            let bytes = bytes?;
            crate::crypto::keyfile::write_public(&path, &bytes)
                .with_context(|| format!("writing {}", path.display()))?;
            writeln!(out, "wrote {} ({} bytes)", path.display(), bytes.len())?;
        }
        Command::Sync(SyncCmd::Answer { request, out: path }) => {
            let bytes = read_bounded(&request)?;
            let spin = Progress::spinner(&format!("verifying and answering {}", request.display()));
            let answer = app::sync::answer(ctx, data_dir, bytes).await;
            spin.finish();
            let answer = answer?;
            crate::crypto::keyfile::write_public(&path, &answer)
                .with_context(|| format!("writing {}", path.display()))?;
            writeln!(out, "wrote {} ({} bytes)", path.display(), answer.len())?;
        }
        Command::Sync(SyncCmd::Import { response }) => {
            let bytes = read_bounded(&response)?;
            let spin = Progress::spinner(&format!("verifying and applying {}", response.display()));
            let r = app::sync::import(ctx, &me.name, bytes).await;
            spin.finish();
            let r = r?;
            writeln!(
                out,
                "imported response {}: {} virtual account(s), {} license line(s), {} change(s) acknowledged",
                r.sequence, r.virtual_accounts, r.licenses, r.changes_acknowledged
            )?;
        }
        Command::Sync(SyncCmd::Now) => {
            let spin = Progress::spinner("synchronising with upstream");
            let r = crate::sync::online::sync_now(
                ctx,
                data_dir,
                &crate::sync::online::RetryPolicy::from_env(),
            )
            .await;
            spin.finish();
            let r = r?;
            writeln!(
                out,
                "synchronised: response {} with {} virtual account(s), {} license line(s)",
                r.sequence, r.virtual_accounts, r.licenses
            )?;
        }
        Command::Sync(SyncCmd::Status { format }) => {
            let sched = app::settings::effective(ctx, sync_schedule)
                .await
                .ok()
                .map(|a| a.schedule.schedule().clone());
            let st = app::sync::status(ctx, sched).await?;
            match format {
                Format::Json | Format::Csv => {
                    writeln!(out, "{}", serde_json::to_string_pretty(&st)?)?
                }
                Format::Table => {
                    writeln!(
                        out,
                        "upstream: {}",
                        st.url.as_deref().unwrap_or("not configured")
                    )?;
                    writeln!(
                        out,
                        "satellite id: {}",
                        st.satellite_id.as_deref().unwrap_or("-")
                    )?;
                    writeln!(out, "enrolled: {}", if st.enrolled { "yes" } else { "no" })?;
                    writeln!(
                        out,
                        "last success: {}",
                        st.last_success_at.as_deref().unwrap_or("never")
                    )?;
                    writeln!(
                        out,
                        "last failure: {} {}",
                        st.last_failure_at.as_deref().unwrap_or("none"),
                        st.last_failure.as_deref().unwrap_or("")
                    )?;
                    writeln!(
                        out,
                        "requests sent: {}  responses imported: {}  pending changes: {}",
                        st.request_sequence, st.last_imported_response, st.pending_changes
                    )?;
                    for a in &st.alerts {
                        writeln!(out, "ALERT: {a}")?;
                    }
                }
            }
        }
        Command::Device(DeviceCmd::List {
            account,
            va,
            search,
            limit,
            offset,
            format,
        }) => {
            let page = app::devices::list(
                ctx,
                &me,
                &account,
                va.into_iter().collect(),
                search,
                limit,
                offset,
            )
            .await?;
            match format {
                Format::Json => {
                    let items: Vec<serde_json::Value> = page
                        .devices
                        .iter()
                        .map(crate::api::devices::device_json)
                        .collect();
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(
                            &serde_json::json!({"devices": items, "totalRecords": page.total})
                        )?
                    )?;
                }
                Format::Csv => {
                    writeln!(out, "udi_pid,udi_serial,hostname,virtual_account,status,last_contact,registration_expires")?;
                    for d in &page.devices {
                        let i = &d.instance;
                        writeln!(
                            out,
                            "{},{},{},{},{},{},{}",
                            csv_field(&i.udi_pid),
                            csv_field(&i.udi_serial),
                            csv_field(i.hostname.as_deref().unwrap_or("")),
                            csv_field(&d.virtual_account),
                            d.compliance.overall.as_str(),
                            rfc3339(i.last_contact_at),
                            rfc3339(crate::domain::compliance::registration_expires(
                                i.last_renewed_at
                            ))
                        )?;
                    }
                }
                Format::Table => {
                    for d in &page.devices {
                        let i = &d.instance;
                        writeln!(
                            out,
                            "{}:{}\t{}\t{}\t{}\tlast contact {}",
                            i.udi_pid,
                            i.udi_serial,
                            i.hostname.as_deref().unwrap_or("-"),
                            d.virtual_account,
                            d.compliance.overall.as_str(),
                            rfc3339(i.last_contact_at)
                        )?;
                    }
                    writeln!(out, "{} of {} device(s)", page.devices.len(), page.total)?;
                }
            }
        }
        Command::Device(DeviceCmd::Remove { account, sudi }) => {
            let n = app::devices::remove(ctx, &me, &account, parse_sudis(&sudi)?).await?;
            writeln!(out, "removed {n} device(s)")?;
        }
        Command::Device(DeviceCmd::Transfer {
            account,
            target_va,
            sudi,
        }) => {
            let n =
                app::devices::transfer(ctx, &me, &account, parse_sudis(&sudi)?, &target_va).await?;
            writeln!(out, "transferred {n} device(s) to {target_va}")?;
        }
        Command::Account(AccountCmd::Create { name }) => {
            let a = app::accounts::create_account(ctx, &me, &name).await?;
            writeln!(out, "created smart account {}", a.name)?;
        }
        Command::Account(AccountCmd::List { format }) => {
            let list = app::accounts::list_accounts(ctx, &me).await?;
            match format {
                Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?,
                Format::Csv => {
                    writeln!(out, "name,eula_accepted_at")?;
                    for a in list {
                        writeln!(
                            out,
                            "{},{}",
                            csv_field(&a.name),
                            a.eula_accepted_at.map(rfc3339).unwrap_or_default()
                        )?;
                    }
                }
                Format::Table => {
                    for a in list {
                        let eula = if a.eula_accepted_at.is_some() {
                            "EULA accepted"
                        } else {
                            "EULA not accepted"
                        };
                        writeln!(out, "{}\t{eula}", a.name)?;
                    }
                }
            }
        }
        Command::Va(VaCmd::Create { account, va }) => {
            let v = app::accounts::create_va(ctx, &me, &account, &va).await?;
            writeln!(out, "created virtual account {}/{}", v.account, v.name)?;
        }
        Command::Va(VaCmd::List { account }) => {
            for v in app::accounts::list_vas(ctx, &me, &account).await? {
                writeln!(out, "{}", v.name)?;
            }
        }
        Command::User(UserCmd::Add {
            name,
            role,
            password_stdin,
            accounts,
        }) => {
            let role = Role::parse(&role)?;
            let (password, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (crate::auth::random_token(18)?, true)
            };
            let u = app::principals::add_user(ctx, &me, &name, role, &password, accounts).await?;
            writeln!(out, "added user {} ({})", u.name, u.role)?;
            if generated {
                writeln!(out, "password: {password}")?;
            }
        }
        Command::User(UserCmd::List { format }) => {
            let users = app::principals::list_users(ctx, &me).await?;
            let names = app::accounts::names_by_id(ctx, &me).await?;
            match format {
                Format::Json => {
                    let items: Vec<_> = users
                        .iter()
                        .map(|u| crate::api::users::user_json(u, &names))
                        .collect();
                    writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
                }
                Format::Csv => {
                    writeln!(out, "name,role,accounts,disabled")?;
                    for u in &users {
                        let scope = crate::api::users::scope(&u.accounts, &names).join(";");
                        writeln!(
                            out,
                            "{},{},{},{}",
                            csv_field(&u.name),
                            u.role,
                            csv_field(&scope),
                            u.disabled
                        )?;
                    }
                }
                Format::Table => {
                    for u in users {
                        writeln!(
                            out,
                            "{}\t{}{}",
                            u.name,
                            u.role,
                            if u.disabled { "\tdisabled" } else { "" }
                        )?;
                    }
                }
            }
        }
        Command::User(UserCmd::Disable { name }) => {
            app::principals::set_user_disabled(ctx, &me, &name, true).await?;
            writeln!(out, "disabled user {name}; their sessions ended")?;
        }
        Command::User(UserCmd::Enable { name }) => {
            app::principals::set_user_disabled(ctx, &me, &name, false).await?;
            writeln!(out, "enabled user {name}")?;
        }
        Command::User(UserCmd::Delete { name }) => {
            app::principals::delete_user(ctx, &me, &name).await?;
            writeln!(out, "deleted user {name}")?;
        }
        Command::ApiClient(ApiClientCmd::Revoke { client_id }) => {
            app::principals::revoke_api_client(ctx, &me, &client_id).await?;
            writeln!(out, "revoked API client {client_id}")?;
        }
        Command::ApiClient(ApiClientCmd::Create {
            name,
            role,
            accounts,
        }) => {
            let role = Role::parse(&role)?;
            let k = app::principals::create_api_client(ctx, &me, &name, role, accounts).await?;
            writeln!(out, "client_id: {}", k.client.client_id)?;
            writeln!(out, "client_secret: {}", k.secret)?;
        }
        Command::ApiClient(ApiClientCmd::List { format }) => {
            let clients = app::principals::list_api_clients(ctx, &me).await?;
            let names = app::accounts::names_by_id(ctx, &me).await?;
            match format {
                Format::Json => {
                    let items: Vec<_> = clients
                        .iter()
                        .map(|k| crate::api::users::client_json(k, &names))
                        .collect();
                    writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
                }
                Format::Csv => {
                    writeln!(out, "client_id,name,role,accounts,created_at,revoked")?;
                    for k in &clients {
                        let scope = crate::api::users::scope(&k.accounts, &names).join(";");
                        writeln!(
                            out,
                            "{},{},{},{},{},{}",
                            csv_field(&k.client_id),
                            csv_field(&k.name),
                            k.role,
                            csv_field(&scope),
                            rfc3339(k.created_at),
                            k.revoked
                        )?;
                    }
                }
                Format::Table => {
                    for k in clients {
                        writeln!(
                            out,
                            "{}\t{}\t{}{}",
                            k.client_id,
                            k.name,
                            k.role,
                            if k.revoked { "\trevoked" } else { "" }
                        )?;
                    }
                }
            }
        }
        Command::Eula(EulaCmd::Accept { account }) => {
            let a = app::accounts::accept_eula(ctx, &me, &account).await?;
            writeln!(out, "EULA accepted for {}", a.name)?;
        }
        Command::Token(TokenCmd::Create {
            account,
            va,
            days,
            uses,
            export_controlled,
            description,
        }) => {
            let spec =
                TokenSpec::parse(Some(days), uses, export_controlled, description.as_deref())?;
            let t = app::tokens::create(ctx, &me, &account, &va, spec).await?;
            writeln!(out, "{}", t.token)?;
        }
        Command::Token(TokenCmd::List {
            account,
            va,
            format,
        }) => {
            let list = app::tokens::list(ctx, &me, &account, va.as_deref()).await?;
            let now = ctx.clock.now();
            match format {
                Format::Json => {
                    let items: Vec<serde_json::Value> = list
                        .iter()
                        .map(|t| crate::api::accounts::token_json(t, now))
                        .collect();
                    writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
                }
                Format::Csv => {
                    writeln!(out, "token,virtual_account,description,state,expires,uses,max_uses,export_controlled,created_by")?;
                    for t in &list {
                        writeln!(
                            out,
                            "{},{},{},{},{},{},{},{},{}",
                            t.token,
                            csv_field(&t.virtual_account),
                            csv_field(&t.description),
                            t.state(now).as_str(),
                            rfc3339(t.expires_at),
                            t.uses,
                            t.max_uses.map(|m| m.to_string()).unwrap_or_default(),
                            t.export_controlled,
                            csv_field(&t.created_by)
                        )?;
                    }
                }
                Format::Table => {
                    for t in &list {
                        writeln!(
                            out,
                            "{}\t{}\t{}\texpires {}\tuses {}{}\t{}",
                            t.token,
                            t.virtual_account,
                            t.state(now).as_str(),
                            rfc3339(t.expires_at),
                            t.uses,
                            t.max_uses.map(|m| format!("/{m}")).unwrap_or_default(),
                            t.description
                        )?;
                    }
                }
            }
        }
        Command::Token(TokenCmd::Revoke { account, tokens }) => {
            let revoked = app::tokens::revoke(ctx, &me, &account, None, tokens).await?;
            writeln!(out, "revoked {} token(s)", revoked.len())?;
        }
        Command::License(LicenseCmd::List {
            account,
            va,
            format,
        }) => {
            let lines = app::licenses::list(ctx, &me, &account, va.into_iter().collect()).await?;
            write_licenses(&mut out, &lines, format)?;
        }
        Command::Report(ReportCmd::Usage {
            account,
            va,
            days,
            format,
        }) => {
            if !(1..=3660).contains(&days) {
                bail!("--days must be between 1 and 3660");
            }
            let rows = app::licenses::usage_history(ctx, &me, &account, &va, days).await?;
            write_usage(&mut out, &rows, format)?;
        }
        Command::License(LicenseCmd::Add {
            account,
            va,
            tag,
            quantity,
            kind,
            start,
            end,
            description,
        }) => {
            app::require_authority(ctx, "adding purchased licenses")?;
            let tag = EntitlementTag::parse(&tag)?;
            let kind = match kind {
                Some(k) => k,
                None => default_kind(tag.as_str()).to_string(),
            };
            let spec = app::licenses::LicenseSpec {
                tag,
                description,
                kind,
                quantity,
                starts_at: start.as_deref().map(parse_date).transpose()?,
                ends_at: end.as_deref().map(parse_date).transpose()?,
            };
            let l = app::licenses::add(ctx, &me, &account, &va, spec).await?;
            writeln!(
                out,
                "added {} x {} ({}) to {account}/{va}",
                l.quantity, l.tag, l.kind
            )?;
        }
    }
    Ok(())
}

/// Progress on stderr for a person at a terminal: a bar with counts, rate and ETA when the
/// total is known, a spinner with the elapsed time otherwise. indicatif's stderr target draws
/// nothing when stderr is not a terminal, so scripts and logs see only the result.
pub struct Progress(indicatif::ProgressBar);

impl Progress {
    fn styled(bar: indicatif::ProgressBar, template: &str) -> Progress {
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress(bar)
    }

    /// A bar over `total` items named `unit` (e.g. "instances").
    pub fn counting(total: u64, unit: &str) -> Progress {
        let bar =
            indicatif::ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        Progress::styled(
            bar,
            &format!(
                "[{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, ETA {{eta}})"
            ),
        )
    }

    /// A bar over `total` bytes.
    pub fn bytes(total: u64, what: &str) -> Progress {
        let bar =
            indicatif::ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        Progress::styled(
            bar,
            &format!("{what} [{{elapsed_precise}}] {{wide_bar}} {{bytes}}/{{total_bytes}} ({{bytes_per_sec}}, ETA {{eta}})"),
        )
    }

    /// A spinner for work whose size is not known in advance.
    pub fn spinner(msg: &str) -> Progress {
        let bar = indicatif::ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let p = Progress::styled(bar, "{spinner} {msg} [{elapsed_precise}]");
        p.0.set_message(msg.to_string());
        p.0.enable_steady_tick(std::time::Duration::from_millis(120));
        p
    }

    pub fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    /// Removes the bar so the result line that follows stands alone.
    pub fn finish(self) {
        self.0.finish_and_clear();
    }
}

fn write_licenses(
    out: &mut impl Write,
    lines: &[app::licenses::LicenseLine],
    format: Format,
) -> Result<()> {
    match format {
        Format::Json => {
            let items: Vec<serde_json::Value> =
                lines.iter().map(crate::api::licenses::line_json).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
        }
        Format::Csv => {
            writeln!(out, "virtual_account,tag,description,kind,purchased,transferred_in,transferred_out,available,in_use,spare,shortfall,status")?;
            for l in lines {
                let t = &l.compliance;
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{}",
                    csv_field(&l.virtual_account),
                    csv_field(&t.tag),
                    csv_field(&t.description),
                    t.kind.as_str(),
                    t.purchased,
                    t.transferred_in,
                    t.transferred_out,
                    t.available,
                    t.in_use,
                    t.spare(),
                    t.shortfall(),
                    t.status.as_str()
                )?;
            }
        }
        Format::Table => {
            for l in lines {
                let t = &l.compliance;
                writeln!(
                    out,
                    "{}\t{}\t{}\tin use {} of {}\t{}",
                    l.virtual_account,
                    t.tag,
                    t.kind.as_str(),
                    t.in_use,
                    t.available,
                    t.status.as_str()
                )?;
            }
            writeln!(out, "{} license line(s)", lines.len())?;
        }
    }
    Ok(())
}

fn write_usage(
    out: &mut impl Write,
    rows: &[crate::storage::snapshots::Snapshot],
    format: Format,
) -> Result<()> {
    match format {
        Format::Json => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|s| serde_json::json!({"date": s.day, "license": s.tag, "inUse": s.in_use, "quantity": s.available}))
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
        }
        Format::Csv => {
            writeln!(out, "date,tag,in_use,available")?;
            for s in rows {
                writeln!(
                    out,
                    "{},{},{},{}",
                    s.day,
                    csv_field(&s.tag),
                    s.in_use,
                    s.available
                )?;
            }
        }
        Format::Table => {
            for s in rows {
                writeln!(
                    out,
                    "{}\t{}\tin use {} of {}",
                    s.day, s.tag, s.in_use, s.available
                )?;
            }
            writeln!(out, "{} snapshot(s)", rows.len())?;
        }
    }
    Ok(())
}

/// Reads a sync file from disk, refusing anything over the format's archive limit.
fn read_bounded(path: &std::path::Path) -> Result<Vec<u8>> {
    let max = crate::sync::archive::Limits::default().max_archive_bytes;
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > max {
        bail!(
            "{} is {len} bytes, over the {max}-byte limit of a sync file",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn parse_sudis(items: &[String]) -> Result<Vec<app::devices::SudiRef>> {
    items
        .iter()
        .map(|s| {
            let (pid, serial) = s.split_once(':').ok_or_else(|| {
                anyhow!("device {s:?} must be PID:SERIAL, e.g. NCS560-4:FOX2305P81D")
            })?;
            Ok(app::devices::SudiRef {
                pid: pid.to_string(),
                serial: serial.to_string(),
            })
        })
        .collect()
}

/// Runs `backup`, `restore`, `doctor` and `healthcheck`: they must not initialise the data
/// dir the way `open_ctx` does (restore needs it empty; the others only read).
pub fn run_ops(cmd: Command, config: &Config, clock: &Clock) -> Result<()> {
    use crate::ops::{backup, doctor};
    let mut out = std::io::stdout().lock();
    match cmd {
        Command::Backup(a) => {
            let mut bar: Option<Progress> = None;
            let s = backup::backup_with_progress(
                &config.data_dir,
                &a.out,
                clock.now(),
                &mut |done, total| {
                    bar.get_or_insert_with(|| Progress::bytes(total, "backup"))
                        .set(done)
                },
            );
            if let Some(b) = bar {
                b.finish();
            }
            let s = s?;
            for skipped in &s.skipped {
                eprintln!("skipped {skipped}: not a regular file");
            }
            writeln!(
                out,
                "wrote {} ({} files, {} bytes before compression, schema version {})",
                s.out.display(),
                s.files,
                s.bytes,
                s.schema_version
            )?;
        }
        Command::Restore(a) => {
            let s = backup::restore(&a.file, &config.data_dir)?;
            writeln!(
                out,
                "restored {} files into {} (backup of {}, schema version {})",
                s.files,
                config.data_dir.display(),
                s.created_at,
                s.schema_version
            )?;
        }
        Command::Doctor => {
            let checks = doctor::run(config, clock);
            for c in &checks {
                writeln!(out, "{c}")?;
            }
            out.flush()?;
            let failed = checks
                .iter()
                .filter(|c| c.level == doctor::Level::Fail)
                .count();
            if failed > 0 {
                bail!("{failed} check(s) failed");
            }
        }
        Command::Healthcheck(a) => {
            let url = a
                .url
                .unwrap_or_else(|| crate::ops::health::default_url(config));
            crate::ops::health::probe(&url, std::time::Duration::from_secs(a.timeout.max(1)))?;
            writeln!(out, "ok {url}")?;
        }
        _ => bail!("not an operations command"),
    }
    Ok(())
}

/// Runs `satellite simulate`: it talks to a satellite over the wire only.
pub async fn run_simulate(a: SimulateArgs) -> Result<()> {
    use crate::simulate::{fleet, show};
    if a.devices == 0 {
        bail!("--devices must be at least 1");
    }
    let ca_pem = match &a.ca {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let opts = fleet::FleetOptions {
        url: a.url.clone(),
        token: a.token.clone(),
        devices: a.devices,
        concurrency: a.concurrency,
        seed: a.seed,
        seed_scenario: a.seed_scenario,
        rounds: a.rounds,
        interval: std::time::Duration::from_secs(a.interval),
        renew: a.renew,
        deregister: a.deregister,
        ca_pem,
        insecure: a.insecure,
    };
    eprintln!("preparing {} simulated router(s)", a.devices);
    let mut devices = fleet::make_devices(&opts).map_err(|e| anyhow!(e))?;
    let phases = fleet::run(&opts, &mut devices, |st| {
        println!("{}", st.line());
    })
    .await
    .map_err(|e| anyhow!(e))?;
    if a.baseline {
        let client = fleet::http_client(&opts).map_err(|e| anyhow!(e))?;
        let base = fleet::healthz_baseline(
            &client,
            &fleet::endpoint(&opts.url),
            a.devices.max(1000),
            a.concurrency,
        )
        .await;
        println!("{}", base.line());
        for p in &phases {
            let ratio = if base.rate() > 0.0 {
                p.rate() / base.rate() * 100.0
            } else {
                0.0
            };
            println!(
                "ratio {:<10} {:>6.1}% of healthz throughput (same client, concurrency {})",
                p.name, ratio, a.concurrency
            );
        }
    }
    if a.show {
        if let Some(d) = devices.first() {
            let now = chrono::Utc::now();
            for (cmd, text) in [
                ("show license all", show::show_license_all(&d.state)),
                ("show license summary", show::show_license_summary(&d.state)),
                ("show license status", show::show_license_status(&d.state)),
                ("show license usage", show::show_license_usage(&d.state)),
                (
                    "show license platform summary",
                    show::show_license_platform_summary(&d.state),
                ),
            ] {
                println!(
                    "\nRouter# {cmd}\n{}\n{}",
                    show::command_timestamp(&now),
                    text.trim_end()
                );
            }
        }
    }
    let errors: u64 = phases.iter().map(|p| p.errors.values().sum::<u64>()).sum();
    if errors > 0 {
        bail!("{errors} request(s) failed at the HTTP or transport level");
    }
    Ok(())
}

/// The kind a tag has when the operator does not say.
fn default_kind(tag: &str) -> &'static str {
    if tag.ends_with("-TRK") || tag.contains("-TRK-") {
        "tracking"
    } else if tag.contains("-SIA") {
        "sia"
    } else {
        "rtu"
    }
}
