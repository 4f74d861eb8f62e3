//! `echo-gateway`: the telephony voice-bot gateway.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use echo_gateway::config::Config;

#[derive(Parser)]
#[command(
    name = "echo-gateway",
    version,
    about = "Echo: a telephony voice-bot gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Answer calls: SIP on UDP and TCP, RTP, HTTP (/healthz, /readyz, /metrics).
    Serve {
        /// TOML configuration; every key has a default, and ECHO_SIP_LISTEN,
        /// ECHO_HTTP_LISTEN, ECHO_DATABASE_URL and ECHO_RTP_PORTS override it.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Check a configuration and print it as the gateway would use it.
    CheckConfig {
        /// TOML configuration.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    let config = Config::load(path.map(|p| p.as_path()), &|k| std::env::var(k).ok());
    match path {
        Some(p) => config.with_context(|| format!("bad configuration in {}", p.display())),
        None => config.context("bad configuration"),
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve { config } => {
            let config = load(config.as_ref())?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(echo_gateway::server::serve(config))?;
            Ok(())
        }
        Cmd::CheckConfig { config } => {
            let config = load(config.as_ref())?;
            println!("{config:#?}");
            Ok(())
        }
    }
}
