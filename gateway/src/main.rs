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
    /// Talk to the clinic flow as text: the greeting is the first line, then
    /// one reply line per line read from stdin; at the end one JSON line
    /// with the outcome, the intent and the slots.
    Chat {
        /// Flow file (TOML); the shipped clinic flow by default.
        #[arg(long, value_name = "FILE")]
        flow: Option<PathBuf>,
        /// The call's date, for relative dates (default: today).
        #[arg(long, value_name = "YYYY-MM-DD")]
        today: Option<chrono::NaiveDate>,
        /// Folder with the vocabulary files the flow names (default: the
        /// flow file's folder, or ../shared/data/clinic for the shipped flow).
        #[arg(long, value_name = "DIR")]
        vocabulary: Option<PathBuf>,
        /// The clinic's scheduling webhook (see `scheduling` in the docs);
        /// without it, an in-memory schedule of the clinic's providers.
        #[arg(long, value_name = "URL")]
        scheduler_url: Option<String>,
    },
    /// Create or update the audit database's schema (also done by `serve`).
    Migrate {
        /// TOML configuration (for `database.url`; ECHO_DATABASE_URL wins).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCmd,
    },
    /// Phone a bot as a scripted caller: synthesised speech over SIP/RTP,
    /// the conversation and per-turn voice-to-voice latency on stdout.
    /// Exits 0 when the bot ended the call (BYE or REFER).
    Call {
        /// Whom to call: `sip:user@ip[:port]`.
        #[arg(value_name = "SIP-URI", default_value = "sip:clinic@127.0.0.1:5060")]
        target: String,
        /// The caller's script (../shared/data/scenarios/*.toml).
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        /// Give up (and hang up) after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 180)]
        timeout: u64,
        /// The caller's voice: an espeak-ng voice, or `flite:NAME`.
        #[arg(long, default_value = "flite:slt")]
        voice: String,
        /// Folder with the recogniser's model (whisper-tiny.en).
        #[arg(
            long,
            value_name = "DIR",
            env = "ECHO_MODELS_DIR",
            default_value = "models"
        )]
        models: PathBuf,
        /// No recogniser: after each bot prompt say the scenario's next
        /// line (opening, answers, confirmation), then hang up.
        #[arg(long)]
        listen_only: bool,
        /// Answer the bot's REFER with 603 Decline instead of 202.
        #[arg(long)]
        refuse_refer: bool,
        /// Speak first when the bot says nothing this many ms after answering.
        #[arg(long, value_name = "MS", default_value_t = 8000)]
        speak_first_after: u64,
        /// Speak the opening at --speak-first-after even while the bot is
        /// still greeting (tests barge-in).
        #[arg(long)]
        barge_in: bool,
        /// Write the report as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write each bot prompt as a WAV file into this folder.
        #[arg(long, value_name = "DIR")]
        save_audio: Option<PathBuf>,
    },
    /// Staff accounts of the console.
    Users {
        #[command(subcommand)]
        command: UsersCmd,
    },
    /// Check a configuration and print it as the gateway would use it.
    CheckConfig {
        /// TOML configuration.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UsersCmd {
    /// Create an account (the first one should be an admin). Asks for the
    /// password, or reads one line from stdin with --password-stdin.
    Add {
        /// Username: letters, digits, '.', '-', '_', '@'.
        name: String,
        /// viewer (reads calls) or admin (also trunks, routes, accounts).
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from stdin instead of asking.
        #[arg(long)]
        password_stdin: bool,
        /// Replace the password and role if the account exists.
        #[arg(long)]
        replace: bool,
        /// TOML configuration (for `database.url`; ECHO_DATABASE_URL wins).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// List the accounts.
    List {
        /// TOML configuration (for `database.url`; ECHO_DATABASE_URL wins).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recompute every hash chain; report the first record that was
    /// altered, inserted or deleted, and exit 1 if there is one.
    Verify {
        /// TOML configuration (for `database.url`; ECHO_DATABASE_URL wins).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
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
            runtime()?.block_on(echo_gateway::server::serve(config))?;
            Ok(())
        }
        Cmd::Migrate { config } => {
            let config = load(config.as_ref())?;
            runtime()?.block_on(async {
                let store = echo_gateway::server::open_store(&config).await?;
                store.close().await;
                anyhow::Ok(())
            })?;
            println!("audit database is up to date");
            Ok(())
        }
        Cmd::Audit {
            command: AuditCmd::Verify { config },
        } => {
            let config = load(config.as_ref())?;
            let report = runtime()?.block_on(async {
                let store = echo_gateway::server::open_store(&config).await?;
                let report = echo_audit::verify(store.as_ref()).await;
                store.close().await;
                anyhow::Ok(report?)
            })?;
            if let Some(first) = report.findings.first() {
                println!(
                    "BROKEN: {} finding(s) in {} chains of {} records; first: {first}",
                    report.findings.len(),
                    report.chains,
                    report.records
                );
                for finding in &report.findings {
                    eprintln!("  {finding}");
                }
                std::process::exit(1);
            }
            println!(
                "verified: {} chains, {} records, no alteration",
                report.chains, report.records
            );
            Ok(())
        }
        Cmd::Chat {
            flow,
            today,
            vocabulary,
            scheduler_url,
        } => chat(flow, today, vocabulary, scheduler_url),
        Cmd::Call {
            target,
            scenario,
            timeout,
            voice,
            models,
            listen_only,
            refuse_refer,
            speak_first_after,
            barge_in,
            json,
            save_audio,
        } => {
            use echo_gateway::caller;
            let text = std::fs::read_to_string(&scenario)
                .with_context(|| format!("cannot read scenario {}", scenario.display()))?;
            let scenario = caller::scenario::Scenario::from_toml(&text)
                .with_context(|| format!("bad scenario in {}", scenario.display()))?;
            let recognizer = if listen_only {
                None
            } else {
                Some(
                    caller::load_recognizer(&models)
                        .context("cannot load the recogniser (--listen-only calls without one)")?,
                )
            };
            if let Some(dir) = &save_audio {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let options = caller::CallOptions {
                target_uri: target,
                scenario,
                voice: caller::voice::Voice::parse(&voice),
                recognizer,
                timeout: std::time::Duration::from_secs(timeout),
                refuse_refer,
                save_audio,
                speak_first_after: std::time::Duration::from_millis(speak_first_after),
                barge_in,
            };
            let report = runtime()?.block_on(caller::call(options))?;
            println!("{}", report.summary());
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report)?;
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if !report.ended_by_bot() {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Users { command } => users(command),
        Cmd::CheckConfig { config } => {
            let config = load(config.as_ref())?;
            println!("{config:#?}");
            Ok(())
        }
    }
}

fn users(command: UsersCmd) -> anyhow::Result<()> {
    use echo_gateway::console::auth;
    match command {
        UsersCmd::Add {
            name,
            role,
            password_stdin,
            replace,
            config,
        } => {
            let role: auth::Role = role.parse().map_err(anyhow::Error::msg)?;
            let config = load(config.as_ref())?;
            let password = read_password(password_stdin)?;
            runtime()?.block_on(async {
                let store = echo_gateway::server::open_store(&config).await?;
                auth::create_account(&*store, &name, &password, role, replace).await?;
                let record = echo_audit::Access::new(
                    echo_gateway::audit_log::now_unix_us(),
                    "cli",
                    "user.create",
                    name.as_str(),
                    "cli",
                    serde_json::json!({ "role": role, "replace": replace }),
                );
                store.append(&[record.into()]).await?;
                store.close().await;
                anyhow::Ok(())
            })?;
            println!(
                "account {name:?} ({}) is ready; sign in at the console's /login",
                role.as_str()
            );
            Ok(())
        }
        UsersCmd::List { config } => {
            let config = load(config.as_ref())?;
            let accounts = runtime()?.block_on(async {
                let store = echo_gateway::server::open_store(&config).await?;
                let accounts = auth::accounts(&*store).await;
                store.close().await;
                anyhow::Ok(accounts?)
            })?;
            for a in accounts {
                println!("{}\t{}", a.name, a.role.as_str());
            }
            Ok(())
        }
    }
}

/// One line from stdin; on a terminal, asked for twice without echo.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let read_line = || -> anyhow::Result<String> {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    if from_stdin || !std::io::stdin().is_terminal() {
        return read_line();
    }
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    let ask = |prompt: &str| -> anyhow::Result<String> {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        echo(false);
        let line = read_line();
        echo(true);
        eprintln!();
        line
    };
    let first = ask("Password: ")?;
    let second = ask("Again: ")?;
    anyhow::ensure!(first == second, "the two passwords differ");
    Ok(first)
}

fn chat(
    flow_path: Option<PathBuf>,
    today: Option<chrono::NaiveDate>,
    vocabulary: Option<PathBuf>,
    scheduler_url: Option<String>,
) -> anyhow::Result<()> {
    use echo_dialogue::Flow;
    let (flow, default_dir) = match &flow_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read flow {}", path.display()))?;
            let flow = Flow::from_toml(&text)
                .with_context(|| format!("bad flow in {}", path.display()))?;
            let dir = path.parent().map(PathBuf::from).unwrap_or_default();
            (flow, dir)
        }
        None => (Flow::clinic(), PathBuf::from("../shared/data/clinic")),
    };
    let dir = vocabulary.unwrap_or(default_dir);
    let flow = flow
        .with_vocabulary_from(|p| std::fs::read_to_string(dir.join(p)))
        .with_context(|| format!("cannot load the vocabulary from {}", dir.display()))?;
    let today = today.unwrap_or_else(|| chrono::Local::now().date_naive());
    let (input, output) = (std::io::stdin().lock(), std::io::stdout().lock());
    match scheduler_url {
        Some(url) => {
            let scheduler = echo_gateway::scheduling::WebhookScheduler::new(
                url,
                std::time::Duration::from_secs(5),
            );
            echo_dialogue::chat::run_with(input, output, &flow, today, scheduler)
        }
        None => echo_dialogue::chat::run(input, output, &flow, today),
    }
    .context("chat I/O")?;
    Ok(())
}
