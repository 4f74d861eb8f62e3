//! Calls: one task per call that owns the call's RTP socket and runs its
//! app. The SIP loop starts it when a call is accepted, tells it what media
//! was negotiated, and tells it when the call is over; the task asks the
//! SIP loop to hang up when the app is done or the caller's RTP stops.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use echo_media::{MediaEvent, MediaSession, MediaSettings, SessionConfig, TransmitKind};
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::driver::{sleep_until_opt, Command};
use crate::metrics::{DirectionLabel, Metrics};
use crate::routing::App;
use crate::sip::endpoint::CallHandle;
use crate::sip::sdp::{Direction, NegotiatedMedia};

/// The UDP ports calls take their RTP sockets from. Only even ports are
/// used (RFC 3550 §11: RTCP goes to the odd port above), so a range of
/// 1000 ports carries 500 calls.
#[derive(Debug)]
pub struct PortPool {
    free: Mutex<VecDeque<u16>>,
}

impl PortPool {
    /// A pool over `low..=high`.
    pub fn new(low: u16, high: u16) -> Arc<Self> {
        let start = low + (low % 2);
        let free = (start..=high).step_by(2).collect();
        Arc::new(PortPool {
            free: Mutex::new(free),
        })
    }

    /// Binds a socket on the first free port that the system lets us have.
    pub fn bind(self: &Arc<Self>, ip: IpAddr) -> Option<BoundSocket> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..free.len() {
            let port = free.pop_front()?;
            let bound = std::net::UdpSocket::bind(SocketAddr::new(ip, port))
                .and_then(|s| s.set_nonblocking(true).map(|_| s))
                .and_then(UdpSocket::from_std);
            match bound {
                Ok(socket) => {
                    return Some(BoundSocket {
                        socket,
                        port,
                        pool: self.clone(),
                    })
                }
                // Taken by another process: try it again later.
                Err(_) => free.push_back(port),
            }
        }
        None
    }

    fn release(&self, port: u16) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.push_back(port);
    }

    /// Ports free now.
    pub fn available(&self) -> usize {
        self.free.lock().map(|f| f.len()).unwrap_or(0)
    }
}

/// An RTP socket whose port goes back to the pool when dropped.
#[derive(Debug)]
pub struct BoundSocket {
    pub(crate) socket: UdpSocket,
    port: u16,
    pool: Arc<PortPool>,
}

impl BoundSocket {
    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], self.port)))
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        self.pool.release(self.port);
    }
}

/// What the SIP loop tells a call task.
#[derive(Debug)]
pub enum CallSignal {
    /// Media was (re)negotiated.
    Media(NegotiatedMedia),
    /// The final status of our REFER.
    ReferAnswered(u16),
    /// The call is over.
    Ended,
}

/// Everything a call task starts with.
#[derive(Debug)]
pub struct CallSpec {
    /// The call.
    pub call: CallHandle,
    /// Its app.
    pub app: App,
    /// Its RTP socket.
    pub socket: BoundSocket,
    /// From the SIP loop.
    pub signals: mpsc::UnboundedReceiver<CallSignal>,
    /// To the SIP loop.
    pub commands: mpsc::Sender<Command>,
    /// Hang up when RTP stops this long.
    pub rtp_timeout: Duration,
    /// The route's media settings.
    pub media: MediaSettings,
    /// The route's way to a person.
    pub staff: crate::routing::Staff,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Where the call's turns are written; `None` without an audit log.
    pub turns: Option<crate::audit_log::TurnLog>,
    /// Engines and dialogue for voice apps; `None` when not loaded.
    pub voice: Option<Arc<crate::voice::VoiceShared>>,
}

/// Runs a call until the SIP loop says it ended.
pub async fn run(spec: CallSpec) {
    match spec.app {
        App::Echo => echo(spec).await,
        App::Clinic => crate::voice::clinic(spec).await,
    }
}

/// The session configuration for negotiated media and route settings.
pub(crate) fn session_config(media: &NegotiatedMedia, settings: &MediaSettings) -> SessionConfig {
    let mut config = SessionConfig::new(media.codec, media.payload_type, media.remote_rtp);
    config.telephone_event = media.telephone_event;
    config.ptime = Duration::from_millis(u64::from(media.ptime_ms.clamp(10, 60)));
    config.send = matches!(
        media.local_direction,
        Direction::SendRecv | Direction::SendOnly
    );
    config.media = *settings;
    config
}

/// The echo app: the caller's audio, through the media engine (jitter
/// buffer, decode, playout pacing, encode with the negotiated codec), back
/// to the caller.
async fn echo(mut spec: CallSpec) {
    let settings = MediaSettings {
        loopback: true,
        media_timeout: spec.rtp_timeout,
        ..spec.media
    };
    let ssrc: u32 = rand::random();
    let mut session: Option<MediaSession> = None;
    let mut buf = vec![0u8; 2048];
    let mut hung_up = false;
    let direction = |d| DirectionLabel { direction: d };
    let packets_in = spec
        .metrics
        .rtp_packets
        .get_or_create(&direction("in"))
        .clone();
    let packets_out = spec
        .metrics
        .rtp_packets
        .get_or_create(&direction("out"))
        .clone();
    loop {
        let deadline = session
            .as_ref()
            .and_then(|s| s.poll_timeout())
            .map(tokio::time::Instant::from_std);
        tokio::select! {
            signal = spec.signals.recv() => match signal {
                Some(CallSignal::Media(media)) => {
                    let config = session_config(&media, &settings);
                    let result = match session.as_mut() {
                        Some(s) => s.update(config),
                        None => MediaSession::new(config, ssrc, Instant::now()).map(|s| {
                            session = Some(s);
                        }),
                    };
                    if let Err(e) = result {
                        warn!(call = ?spec.call, error = %e, "media session refused the negotiated media");
                        let _ = spec.commands.send(Command::Hangup(spec.call)).await;
                    }
                }
                Some(CallSignal::ReferAnswered(_)) => {}
                Some(CallSignal::Ended) | None => break,
            },
            received = spec.socket.socket.recv_from(&mut buf) => {
                let Ok((n, from)) = received else { continue };
                packets_in.inc();
                if let Some(s) = session.as_mut() {
                    s.handle_rtp(Instant::now(), from, &buf[..n]);
                }
            },
            _ = sleep_until_opt(deadline) => {
                if let Some(s) = session.as_mut() {
                    s.handle_timeout(Instant::now());
                }
            }
        }
        let Some(s) = session.as_mut() else { continue };
        while let Some(transmit) = s.poll_transmit() {
            if spec
                .socket
                .socket
                .try_send_to(&transmit.data, transmit.destination)
                .is_ok()
                && transmit.kind == TransmitKind::Rtp
            {
                packets_out.inc();
            }
        }
        while let Some(event) = s.poll_event() {
            if event == MediaEvent::MediaTimeout && !hung_up {
                debug!(call = ?spec.call, "rtp timeout");
                hung_up = true;
                let _ = spec.commands.send(Command::MediaTimeout(spec.call)).await;
            }
        }
    }
    if let Some(s) = session {
        spec.metrics.media_ended(&s.stats());
    }
}
