//! Entry point: parses arguments, builds the configuration and hands over to the command.

use clap::Parser;
use satellite::cli::{self, Cli, Command};
use satellite::clock::Clock;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Both ring and aws-lc-rs may be linked through dependencies; rustls panics unless
    // one provider is chosen before any TLS configuration is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Cli::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

fn run(args: Cli) -> anyhow::Result<()> {
    let (config, warnings) = cli::load_config(&args)?;
    let serving = matches!(args.command, Command::Serve(_));
    cli::init_logging(&config, serving);
    let clock = Clock::from_env()?;
    if clock.is_shifted() {
        tracing::warn!(offset = %clock, "clock shifted by SATELLITE_CLOCK_OFFSET: every time rule runs at {}", clock.now().to_rfc3339());
    }
    for w in warnings {
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let command = match args.command {
        Command::Simulate(a) => return runtime.block_on(cli::run_simulate(a)),
        c @ (Command::Backup(_)
        | Command::Restore(_)
        | Command::Doctor
        | Command::Healthcheck(_)) => return cli::run_ops(c, &config, &clock),
        c => c,
    };
    let ctx = cli::open_ctx(&config, clock, serving)?;
    let result = runtime.block_on(async {
        match command {
            Command::Serve(_) => satellite::server::run(config.clone(), ctx.clone()).await,
            other => cli::run_command(other, &ctx, &config.data_dir, &config.sync_schedule).await,
        }
    });
    ctx.store.close();
    result
}
