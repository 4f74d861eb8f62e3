//! `echo-gateway serve`: binds the sockets, starts the SIP loop, the TCP
//! acceptor and HTTP, and drains on SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tracing::info;

use crate::audit_log::CallAudit;
use crate::call::PortPool;
use crate::config::{Config, Host};
use crate::driver::{Command, SipDriver};
use crate::http::{router, HttpState};
use crate::metrics::Metrics;
use crate::routing::{RouteTable, TrunkTable};
use crate::sip::endpoint::{EndpointConfig, SipEndpoint};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listen address could not be bound.
    #[error("cannot listen on {what} {addr}: {source}")]
    Bind {
        /// `SIP UDP`, `SIP TCP` or `HTTP`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The reason.
        source: std::io::Error,
    },
    /// The audit database could not be opened or migrated.
    #[error("audit database {url}: {source}")]
    Database {
        /// The URL, password hidden.
        url: String,
        /// The reason.
        source: echo_audit::StoreError,
    },
    /// The voice apps' flow could not be loaded.
    #[error(transparent)]
    Voice(crate::voice::VoiceError),
    /// The audit spool file could not be opened.
    #[error("audit spool {path}: {source}")]
    Spool {
        /// Its path.
        path: String,
        /// The reason.
        source: echo_audit::SpoolError,
    },
}

/// Where records wait while the database is away (`ECHO_AUDIT_SPOOL`).
pub fn spool_path() -> std::path::PathBuf {
    std::env::var_os("ECHO_AUDIT_SPOOL")
        .map(Into::into)
        .unwrap_or_else(|| "echo-audit.spool".into())
}

/// Opens the audit store named by the configuration (migrations run).
pub async fn open_store(config: &Config) -> Result<Arc<dyn echo_audit::AuditStore>, StartError> {
    let url = echo_audit::DatabaseUrl::new(config.database.url.expose());
    echo_audit::connect(&url)
        .await
        .map_err(|source| StartError::Database {
            url: url.redacted(),
            source,
        })
}

/// Runs the gateway until SIGTERM or SIGINT has drained it.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let sip_addr = config.sip.listen;
    let bind_err = |what, addr| move |source| StartError::Bind { what, addr, source };
    let udp = UdpSocket::bind(sip_addr)
        .await
        .map_err(bind_err("SIP UDP", sip_addr))?;
    // Port 0 in the config: TCP takes the port UDP was given.
    let sip_addr = udp.local_addr().map_err(bind_err("SIP UDP", sip_addr))?;
    let tcp = TcpListener::bind(sip_addr)
        .await
        .map_err(bind_err("SIP TCP", sip_addr))?;
    let http = TcpListener::bind(config.http.listen)
        .await
        .map_err(bind_err("HTTP", config.http.listen))?;

    let store = open_store(&config).await?;
    let spool = spool_path();
    let (audit, _writer) =
        echo_audit::AuditWriter::spawn(store.clone(), echo_audit::WriterConfig::new(&spool))
            .map_err(|source| StartError::Spool {
                path: spool.display().to_string(),
                source,
            })?;
    info!(
        database = %echo_audit::DatabaseUrl::new(config.database.url.expose()).redacted(),
        spool = %spool.display(),
        "audit log open"
    );

    report_vad(&config.speech.models_dir);

    let metrics = Arc::new(Metrics::default());
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let ready = Arc::new(AtomicBool::new(false));

    let voice = Arc::new(
        crate::voice::VoiceShared::load(&config.speech, metrics.clone())
            .map_err(StartError::Voice)?,
    );
    {
        // The fixed prompts are synthesised once, in the background: calls
        // that come before it is done synthesise them as they go.
        let voice = voice.clone();
        std::thread::Builder::new()
            .name("echo-prompts".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let n = voice.prewarm();
                info!(sentences = n, took = ?started.elapsed(), "speech: fixed prompts synthesised and cached");
            })
            .map_err(|e| StartError::Voice(crate::voice::VoiceError::Flow {
                path: "prompt cache".into(),
                message: e.to_string(),
            }))?;
    }

    let media_ip = advertised_ip(&config);
    let host = match config.sip.contact_host() {
        Host::Ip(ip) if ip.is_unspecified() => media_ip.to_string(),
        Host::Ip(ip) => ip.to_string(),
        Host::Name(name) => name,
    };
    let (commands_tx, commands) = mpsc::channel(1024);
    let settings = crate::console::settings::Settings::new(
        config.trunk_entries.clone(),
        config.route_entries.clone(),
        commands_tx.clone(),
    );
    // Console edits stored in the database override the file's entries.
    let (trunks, routes) = match settings.effective(&*store).await {
        Ok(effective) => effective,
        Err(e) => {
            tracing::error!(error = %e, "console edits of trunks and routes could not be applied; using the file's");
            (config.trunks.clone(), config.routes.clone())
        }
    };
    if trunks != config.trunks || routes != config.routes {
        info!(
            trunks = trunks.len(),
            routes = routes.len(),
            "trunks and routes include console edits"
        );
    }
    let endpoint = SipEndpoint::new(
        EndpointConfig {
            host: if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            },
            port: sip_addr.port(),
            seed: rand::random(),
        },
        TrunkTable::from_config(&trunks),
        RouteTable::from_config(&routes),
        metrics.clone(),
    );
    let (inbound_tx, inbound) = mpsc::channel(1024);
    let (low, high) = (config.rtp.ports.low(), config.rtp.ports.high());
    let driver = SipDriver {
        endpoint,
        udp: Arc::new(udp),
        inbound,
        inbound_tx: inbound_tx.clone(),
        commands,
        commands_tx: commands_tx.clone(),
        ports: PortPool::new(low, high),
        bind_ip: config.sip.listen.ip(),
        media_ip,
        rtp_timeout: config.rtp.timeout,
        metrics: metrics.clone(),
        audit: CallAudit::new(Some(audit.clone())),
        voice: Some(voice.clone()),
    };

    tokio::spawn(crate::tcp::accept_loop(tcp, inbound_tx, metrics.clone()));
    let http_addr = http
        .local_addr()
        .map_err(bind_err("HTTP", config.http.listen))?;
    let registry = Arc::new(registry);
    let console =
        crate::console::Console::new(store.clone(), audit.clone(), settings, registry.clone());
    crate::console::spawn_sampler(console.clone(), metrics.clone());
    let app = router(
        HttpState {
            registry,
            ready: ready.clone(),
        },
        console,
    );
    tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(http, service).await;
    });
    let sip = tokio::spawn(driver.run());
    ready.store(true, Ordering::Relaxed);
    info!(sip = %sip_addr, http = %http_addr, rtp = %format!("{low}-{high}"), "echo-gateway listening (UDP and TCP)");

    shutdown_signal().await;
    let drain = config.limits.drain_timeout;
    info!(timeout = ?drain, "SIGTERM: draining");
    let deadline = tokio::time::Instant::now() + drain;
    let (refusing, refused) = tokio::sync::oneshot::channel();
    let _ = commands_tx
        .send(Command::Drain { deadline, refusing })
        .await;
    // /readyz turns 503 once INVITEs are really refused, so a load
    // balancer that sees it can trust it.
    let _ = refused.await;
    ready.store(false, Ordering::Relaxed);
    // BYE transactions get a little time past the deadline to finish.
    let _ = tokio::time::timeout_at(deadline + Duration::from_secs(5), sip).await;
    // What the last calls wrote reaches the database (or the spool).
    let _ = tokio::time::timeout(Duration::from_secs(5), audit.flush()).await;
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The IP that SDP advertises for RTP: the advertised host if it is an IP,
/// else the listen IP, else (listening on every interface) the address the
/// system would use to reach the outside. That last probe only connects a
/// UDP socket, which sends nothing.
fn advertised_ip(config: &Config) -> IpAddr {
    if let Some(Host::Ip(ip)) = config.sip.advertised_host {
        if !ip.is_unspecified() {
            return ip;
        }
    }
    let listen = config.sip.listen.ip();
    if !listen.is_unspecified() {
        return listen;
    }
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").and_then(|_| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Says at start whether Silero (through ONNX Runtime, from
/// `speech.models_dir`) is available to the VAD, or the gate alone runs.
fn report_vad(dir: &std::path::Path) {
    match echo_media::vad::SileroVad::load_dir(dir) {
        Ok(_) => info!(models = %dir.display(), "VAD: gate + Silero (ONNX Runtime)"),
        Err(e) => tracing::warn!(
            models = %dir.display(),
            "VAD: the gate alone ({e}); run scripts/fetch-models.sh or set ECHO_MODELS_DIR for Silero"
        ),
    }
}
