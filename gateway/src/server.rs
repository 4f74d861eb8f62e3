//! `echo-gateway serve`: binds the sockets, starts the SIP loop, the TCP
//! acceptor and HTTP, and drains on SIGTERM.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tracing::info;

use crate::call::PortPool;
use crate::config::Config;
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

    let metrics = Arc::new(Metrics::default());
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let ready = Arc::new(AtomicBool::new(false));

    let host = config.advertised_ip().to_string();
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
        TrunkTable::from_config(&config.trunks),
        RouteTable::from_config(&config.routes),
        metrics.clone(),
    );
    let (inbound_tx, inbound) = mpsc::channel(1024);
    let (commands_tx, commands) = mpsc::channel(1024);
    let (low, high) = config.rtp.port_range();
    let driver = SipDriver {
        endpoint,
        udp: Arc::new(udp),
        inbound,
        inbound_tx: inbound_tx.clone(),
        commands,
        commands_tx: commands_tx.clone(),
        ports: PortPool::new(low, high),
        media_ip: config.advertised_ip(),
        rtp_timeout: Duration::from_secs(config.rtp.timeout_secs),
        metrics: metrics.clone(),
    };

    tokio::spawn(crate::tcp::accept_loop(tcp, inbound_tx, metrics.clone()));
    let http_addr = http.local_addr().map_err(bind_err("HTTP", config.http.listen))?;
    let app = router(HttpState {
        registry: Arc::new(registry),
        ready: ready.clone(),
    });
    tokio::spawn(async move {
        let _ = axum::serve(http, app).await;
    });
    let sip = tokio::spawn(driver.run());
    ready.store(true, Ordering::Relaxed);
    info!(sip = %sip_addr, http = %http_addr, rtp = %format!("{low}-{high}"), "echo-gateway listening (UDP and TCP)");

    shutdown_signal().await;
    ready.store(false, Ordering::Relaxed);
    let drain = Duration::from_secs(config.limits.drain_timeout_secs);
    info!(timeout = ?drain, "SIGTERM: draining");
    let deadline = tokio::time::Instant::now() + drain;
    let _ = commands_tx.send(Command::Drain { deadline }).await;
    // BYE transactions get a little time past the deadline to finish.
    let _ = tokio::time::timeout_at(deadline + Duration::from_secs(5), sip).await;
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
