//! The per-call media engine, sans-IO: RTP and RTCP, the adaptive jitter
//! buffer, codecs (G.711, Opus), resampling, VAD, endpointing, barge-in,
//! DTMF (RFC 4733) and playout pacing, tied together by [`MediaSession`].
//!
//! It never opens sockets, spawns tasks or reads the clock: the gateway's
//! call task feeds it datagrams and `now`, and polls it for output. The
//! driver's loop, in outline:
//!
//! ```no_run
//! # use std::time::Instant;
//! # use echo_media::{MediaEvent, MediaSession, SessionConfig, CodecKind};
//! # fn recv() -> Option<(std::net::SocketAddr, Vec<u8>)> { None }
//! # fn send(_: &echo_media::Transmit) {}
//! # fn sleep_until(_: Option<Instant>) {}
//! # let remote = "192.0.2.1:4000".parse().unwrap();
//! let config = SessionConfig::new(CodecKind::Pcmu, 0, Some(remote));
//! let mut session = MediaSession::new(config, 0x1234_5678, Instant::now())?;
//! loop {
//!     // A datagram arrived, or the deadline passed.
//!     if let Some((from, datagram)) = recv() {
//!         session.handle_rtp(Instant::now(), from, &datagram);
//!     }
//!     session.handle_timeout(Instant::now());
//!     while let Some(transmit) = session.poll_transmit() {
//!         send(&transmit);
//!     }
//!     while let Some(event) = session.poll_event() {
//!         match event {
//!             MediaEvent::Utterance { pcm_16k, .. } => { /* to STT */ }
//!             MediaEvent::BargeIn { .. } => { /* playout already stopped */ }
//!             MediaEvent::MediaTimeout => break,
//!             _ => {}
//!         }
//!     }
//!     sleep_until(session.poll_timeout());
//! }
//! # Ok::<(), echo_media::MediaError>(())
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod codec;
pub mod dtmf;
pub mod endpoint;
pub mod jitter;
#[cfg(any(test, feature = "sim"))]
pub mod netsim;
pub mod resample;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod vad;

pub use codec::{AudioDecoder, AudioEncoder, CodecError, CodecKind, Decoder, Encoder};
pub use rtp::{RtpError, RtpHeader, RtpPacket};
pub use session::{
    MediaError, MediaEvent, MediaSession, MediaSettings, MediaStats, SessionConfig, Transmit,
    TransmitKind,
};
