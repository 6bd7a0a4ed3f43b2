//! `satellite serve`: binds the console and device listeners, serves until SIGTERM/SIGINT,
//! then stops accepting, lets in-flight requests finish and flushes the database writer.

use crate::api;
use crate::app::Ctx;
use crate::config::Config;
use crate::tls;
use actix_web::http::KeepAlive;
use actix_web::{middleware, web, App, HttpResponse, HttpServer};
use anyhow::Context;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// Shared by every handler of both listeners.
pub struct AppState {
    pub ctx: Ctx,
    pub config: Config,
    /// The certificate both HTTPS listeners present; the settings page replaces it.
    pub tls: std::sync::Arc<tls::LiveCert>,
    /// The online-sync schedule the scheduler follows; the settings page changes it.
    pub sync_schedule: crate::app::settings::LiveSchedule,
    /// Wakes the alert loop, e.g. after the notification settings change.
    pub alerts: crate::ops::alerts::Trigger,
}

impl AppState {
    /// What the alert checks read besides the database, with the sync schedule in force.
    pub fn alert_sources(&self) -> crate::app::alerts::Sources {
        let mut sources = crate::app::alerts::Sources::from_config(&self.config);
        sources.schedule = Some(self.sync_schedule.cron());
        sources
    }
}

/// Time a closing connection gets to flush its last answer before it is dropped.
pub const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time a client gets to finish the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy)]
pub enum Surface {
    Console,
    DeviceHttp,
    DeviceHttps,
}

impl Surface {
    pub fn name(self) -> &'static str {
        match self {
            Surface::Console => "console",
            Surface::DeviceHttp => "device-http",
            Surface::DeviceHttps => "device-https",
        }
    }
    /// The flag, variable and config key that move this listener.
    pub fn option(self) -> &'static str {
        match self {
            Surface::Console => "--console-addr (SATELLITE_CONSOLE_ADDR, console_addr)",
            Surface::DeviceHttp => {
                "--device-http-addr (SATELLITE_DEVICE_HTTP_ADDR, device_http_addr)"
            }
            Surface::DeviceHttps => {
                "--device-https-addr (SATELLITE_DEVICE_HTTPS_ADDR, device_https_addr)"
            }
        }
    }
}

fn bind(surface: Surface, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {addr} for {}: {e}; choose another address with {}",
            surface.name(),
            surface.option()
        )
    })
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok\n")
}

/// Largest total size of a request's headers; a browser or script needs far less.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

fn headers_too_large(req: &actix_web::dev::ServiceRequest) -> bool {
    let total: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    total > MAX_HEADER_BYTES
}

async fn limit_headers(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    if headers_too_large(&req) {
        let resp =
            HttpResponse::build(actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                .content_type("text/plain; charset=utf-8")
                .body(format!("request headers over {MAX_HEADER_BYTES} bytes\n"));
        return Ok(req.into_response(resp));
    }
    next.call(req).await.map(|r| r.map_into_boxed_body())
}

fn security_headers() -> middleware::DefaultHeaders {
    middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Strict-Transport-Security", "max-age=31536000"))
}

/// Runs until a stop signal. Prints `listening <surface> <addr>` for each bound listener.
pub async fn run(config: Config, ctx: Ctx) -> anyhow::Result<()> {
    let material = tls::load_or_generate(
        &config.data_dir,
        config.tls_cert.as_deref().zip(config.tls_key.as_deref()),
        config.public_host.as_deref(),
    )
    .context("TLS setup")?;
    // Signal handlers go in before the listeners are announced: a supervisor may send
    // SIGTERM as soon as it reads them.
    let stop = StopSignal::install()?;
    let ca_dir = config.data_dir.join("device-ca");
    std::fs::create_dir_all(&ca_dir).with_context(|| format!("creating {}", ca_dir.display()))?;
    let device_ca = crate::crypto::device_ca::DeviceCa::load_or_create(
        &ca_dir,
        &format!("satellite device CA {}", tls::host_name()),
        ctx.clock.now(),
    )
    .context("device CA")?;
    let gateway = web::Data::new(crate::gateway::service::Gateway::new(
        ctx.clone(),
        std::sync::Arc::new(device_ca),
    ));
    // Today's snapshot before serving, so a process that was down at the scheduled
    // time still has the row; its cost depends on accounts and tags, not devices.
    if let Err(e) = crate::scheduler::snapshot_usage(&ctx, ctx.clock.now()).await {
        tracing::warn!(error = %e, "usage snapshot at start failed");
    }
    let console = bind(Surface::Console, config.console_addr)?;
    let dev_http = bind(Surface::DeviceHttp, config.device_http_addr)?;
    let dev_https = bind(Surface::DeviceHttps, config.device_https_addr)?;
    {
        let mut out = std::io::stdout().lock();
        for (s, l) in [
            (Surface::Console, &console),
            (Surface::DeviceHttp, &dev_http),
            (Surface::DeviceHttps, &dev_https),
        ] {
            writeln!(out, "listening {} {}", s.name(), l.local_addr()?)?;
        }
        out.flush()?;
    }
    tracing::info!(role = ctx.role.as_str(), cert = %material.cert_path.display(), "serving");
    // Handlers see the addresses actually bound (port 0 resolved), e.g. for the router setup page.
    let mut config = config;
    config.console_addr = console.local_addr()?;
    config.device_http_addr = dev_http.local_addr()?;
    config.device_https_addr = dev_https.local_addr()?;

    let sync_schedule = crate::app::settings::LiveSchedule::open(&ctx, &config.sync_schedule)
        .await
        .context("sync schedule")?;
    let alerts = crate::ops::alerts::Trigger::default();
    let state = web::Data::new(AppState {
        ctx: ctx.clone(),
        config: config.clone(),
        tls: material.live.clone(),
        sync_schedule: sync_schedule.clone(),
        alerts: alerts.clone(),
    });
    let request_timeout = Duration::from_secs(config.request_timeout_seconds);
    // The header timeout covers only a connection's first request, so a kept-alive
    // connection can trickle its second one; `keep_alive_seconds = 0` closes that door.
    let keep_alive = match config.keep_alive_seconds {
        0 => KeepAlive::Disabled,
        n => KeepAlive::Timeout(Duration::from_secs(n)),
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);

    let console_state = state.clone();
    let console_server = HttpServer::new(move || {
        App::new()
            .app_data(console_state.clone())
            .wrap(security_headers())
            .wrap(middleware::Compress::default())
            .wrap(middleware::from_fn(crate::ops::slow_body::middleware))
            .wrap(middleware::from_fn(limit_headers))
            .wrap(middleware::from_fn(crate::ops::request_log::middleware))
            .route("/healthz", web::get().to(healthz))
            .route("/metrics", web::get().to(crate::ops::metrics::handler))
            .configure(api::configure)
            .configure(crate::console::configure)
    })
    .workers(workers)
    .disable_signals()
    // Small answers go out at once instead of waiting on delayed ACKs (~40 ms each).
    .tcp_nodelay(true)
    .shutdown_timeout(10)
    // Slow clients: the headers must arrive within the request timeout, idle connections
    // close after keep_alive_seconds, bodies must keep a minimum rate (ops::slow_body).
    .client_request_timeout(request_timeout)
    .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
    .keep_alive(keep_alive)
    .tls_handshake_timeout(TLS_HANDSHAKE_TIMEOUT)
    .listen_rustls_0_23(console, (*material.config).clone())?
    .run();

    let device_state = state.clone();
    let device_server = HttpServer::new(move || {
        App::new()
            .app_data(device_state.clone())
            .app_data(gateway.clone())
            .wrap(middleware::from_fn(crate::ops::slow_body::middleware))
            .wrap(middleware::from_fn(limit_headers))
            .wrap(middleware::from_fn(crate::ops::request_log::middleware))
            .route("/healthz", web::get().to(healthz))
            .configure(crate::gateway::http::configure)
    })
    .workers(workers)
    .disable_signals()
    // Small answers go out at once instead of waiting on delayed ACKs (~40 ms each).
    .tcp_nodelay(true)
    .shutdown_timeout(10)
    // Slow clients: the headers must arrive within the request timeout, idle connections
    // close after keep_alive_seconds, bodies must keep a minimum rate (ops::slow_body).
    .client_request_timeout(request_timeout)
    .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
    .keep_alive(keep_alive)
    .tls_handshake_timeout(TLS_HANDSHAKE_TIMEOUT)
    .listen(dev_http)?
    .listen_rustls_0_23(dev_https, (*material.config).clone())?
    .run();

    crate::scheduler::start(ctx.clone(), &config, &sync_schedule);
    crate::ops::alerts::start(ctx.clone(), &config, &sync_schedule, alerts);
    let console_handle = console_server.handle();
    let device_handle = device_server.handle();
    let console_task = tokio::spawn(console_server);
    let device_task = tokio::spawn(device_server);

    stop.wait().await;
    tracing::info!("stop requested: finishing in-flight requests");
    // Devices first: their acknowledgements depend on the writer still running.
    device_handle.stop(true).await;
    console_handle.stop(true).await;
    let _ = console_task.await;
    let _ = device_task.await;
    ctx.store.close();
    let w = ctx.store.writer_stats();
    tracing::info!(jobs = w.jobs, commits = w.commits, "stopped cleanly");
    Ok(())
}

struct StopSignal {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> anyhow::Result<StopSignal> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignal {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
    }
}
