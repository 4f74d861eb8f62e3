//! Calls: one task per call that owns the call's RTP socket and runs its
//! app. The SIP loop starts it when a call is accepted, tells it what media
//! was negotiated, and tells it when the call is over; the task asks the
//! SIP loop to hang up when the app is done or the caller's RTP stops.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use echo_media::codec::{AudioDecoder, AudioEncoder, CodecError, Decoder, Encoder};
use echo_media::rtp::{write_packet, RtpError, RtpHeader, RtpPacket};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use crate::driver::Command;
use crate::metrics::Metrics;
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
    socket: UdpSocket,
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
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// Runs a call until the SIP loop says it ended.
pub async fn run(spec: CallSpec) {
    match spec.app {
        App::Echo => echo(spec).await,
    }
}

/// The echo app's media: the caller's audio decoded and re-encoded with the
/// negotiated codec, sent back in our own RTP stream.
struct EchoLeg {
    media: NegotiatedMedia,
    decoder: Decoder,
    encoder: Encoder,
    pcm: Vec<i16>,
    payload: Vec<u8>,
    packet: Vec<u8>,
    ssrc: u32,
    seq: u16,
    /// (first caller timestamp, our base): our timestamps follow theirs.
    timestamp_base: Option<(u32, u32)>,
}

impl EchoLeg {
    fn new(media: NegotiatedMedia, ssrc: u32, seq: u16) -> Option<Self> {
        Some(EchoLeg {
            decoder: Decoder::new(media.codec).ok()?,
            encoder: Encoder::new(media.codec).ok()?,
            media,
            pcm: Vec::with_capacity(960),
            payload: Vec::with_capacity(1500),
            packet: Vec::with_capacity(1500),
            ssrc,
            seq,
            timestamp_base: None,
        })
    }

    fn sends(&self) -> Option<SocketAddr> {
        match self.media.local_direction {
            Direction::SendRecv | Direction::SendOnly => self.media.remote_rtp,
            Direction::RecvOnly | Direction::Inactive => None,
        }
    }

    /// The reply to one received datagram, if any.
    fn reply(&mut self, datagram: &[u8]) -> Result<Option<&[u8]>, EchoError> {
        let packet = RtpPacket::parse(datagram)?;
        if packet.header.payload_type != self.media.payload_type {
            // telephone-event and comfort noise are not echoed.
            return Ok(None);
        }
        self.pcm.clear();
        self.payload.clear();
        self.decoder.decode(packet.payload, &mut self.pcm)?;
        self.encoder.encode(&self.pcm, &mut self.payload)?;
        let their_ts = packet.header.timestamp;
        let (first, base) = *self
            .timestamp_base
            .get_or_insert((their_ts, self.ssrc.rotate_left(7)));
        self.seq = self.seq.wrapping_add(1);
        let header = RtpHeader {
            payload_type: self.media.payload_type,
            marker: packet.header.marker,
            sequence: self.seq,
            timestamp: base.wrapping_add(their_ts.wrapping_sub(first)),
            ssrc: self.ssrc,
        };
        write_packet(&header, &self.payload, &mut self.packet)?;
        Ok(Some(&self.packet))
    }
}

/// Why a datagram got no echo.
#[derive(Debug, thiserror::Error)]
enum EchoError {
    #[error(transparent)]
    Rtp(#[from] RtpError),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

async fn echo(mut spec: CallSpec) {
    let ssrc: u32 = rand::random();
    let mut seq: u16 = rand::random();
    let mut leg: Option<EchoLeg> = None;
    let mut buf = vec![0u8; 2048];
    let mut last_rtp: Option<Instant> = None;
    let mut hung_up = false;
    let packets_in = spec
        .metrics
        .rtp_packets
        .get_or_create(&crate::metrics::DirectionLabel { direction: "in" })
        .clone();
    let packets_out = spec
        .metrics
        .rtp_packets
        .get_or_create(&crate::metrics::DirectionLabel { direction: "out" })
        .clone();
    loop {
        let timeout_at = last_rtp.filter(|_| !hung_up).map(|t| t + spec.rtp_timeout);
        tokio::select! {
            signal = spec.signals.recv() => match signal {
                Some(CallSignal::Media(media)) => {
                    if let Some(old) = &leg {
                        seq = old.seq;
                    }
                    leg = EchoLeg::new(media, ssrc, seq);
                    last_rtp.get_or_insert_with(Instant::now);
                }
                Some(CallSignal::Ended) | None => return,
            },
            received = spec.socket.socket.recv_from(&mut buf) => {
                let Ok((n, _from)) = received else { continue };
                packets_in.inc();
                last_rtp = Some(Instant::now());
                let Some(leg) = leg.as_mut() else { continue };
                let dest = leg.sends();
                match leg.reply(&buf[..n]) {
                    Ok(Some(reply)) => {
                        let sent = dest.map(|d| spec.socket.socket.try_send_to(reply, d));
                        if matches!(sent, Some(Ok(_))) {
                            packets_out.inc();
                        }
                    }
                    Ok(None) => {}
                    Err(_) => {
                        spec.metrics.rtp_invalid.inc();
                    }
                }
            },
            _ = sleep_until_opt(timeout_at) => {
                debug!(call = ?spec.call, "rtp timeout");
                hung_up = true;
                let _ = spec.commands.send(Command::Hangup(spec.call)).await;
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
