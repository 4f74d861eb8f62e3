//! The per-call media engine, sans-IO: RTP, codecs (G.711, Opus), and, as it
//! grows, the jitter buffer, resampling, VAD, endpointing, barge-in, DTMF
//! (RFC 4733) and playout pacing.
//!
//! It never opens sockets, spawns tasks or reads the clock: the gateway's
//! call task feeds it datagrams and `now`, and polls it for output.
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

pub use codec::{AudioDecoder, AudioEncoder, CodecError, CodecKind, Decoder, Encoder};
pub use rtp::{RtpError, RtpHeader, RtpPacket};
pub use session::{
    MediaError, MediaEvent, MediaSession, MediaSettings, MediaStats, SessionConfig, Transmit,
    TransmitKind,
};
pub mod vad;
