//! Audio codecs carried over RTP.
//!
//! Each codec is a small [`AudioEncoder`] / [`AudioDecoder`] pair, frame in,
//! frame out; [`Encoder`] and [`Decoder`] dispatch over the closed set with
//! an enum. PCM is mono `i16` at the codec's native rate
//! ([`CodecKind::sample_rate`]). Both directions append to a caller-owned
//! buffer, so a call that reuses its buffers does not allocate per frame:
//!
//! ```
//! use echo_media::codec::{AudioDecoder, AudioEncoder, CodecKind, Decoder, Encoder};
//!
//! let mut decoder = Decoder::new(CodecKind::Pcmu)?;
//! let mut encoder = Encoder::new(CodecKind::Pcmu)?;
//! let (mut pcm, mut payload) = (Vec::new(), Vec::new());
//! for packet in [[0xFFu8; 160], [0x80u8; 160]] {
//!     pcm.clear();
//!     decoder.decode(&packet, &mut pcm)?;
//!     payload.clear();
//!     encoder.encode(&pcm, &mut payload)?;
//!     assert_eq!(payload, packet);
//! }
//! # Ok::<(), echo_media::codec::CodecError>(())
//! ```

mod g711;
mod opus;

pub use g711::{
    alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear, G711Decoder, G711Encoder,
    G711Law,
};
pub use opus::{
    OpusDecoder, OpusEncoder, OPUS_BITRATE, OPUS_EXPECTED_LOSS_PERCENT, OPUS_SAMPLE_RATE,
};

/// Why a codec refused a frame or a payload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The codec cannot take a frame of this many samples (Opus takes 2.5 to
    /// 60 ms; concealment takes multiples of 2.5 ms up to 120 ms).
    #[error("unsupported frame size of {samples} samples")]
    FrameSize {
        /// The number of samples offered.
        samples: usize,
    },
    /// An RTP payload with no bytes where the codec needs at least one.
    #[error("empty payload")]
    EmptyPayload,
    /// libopus rejected the call (corrupt packet, bad argument, ...).
    #[error("opus: {0}")]
    Opus(#[source] audiopus::Error),
}

/// Turns mono PCM frames into RTP payloads.
pub trait AudioEncoder {
    /// Encodes one frame of PCM at the codec's rate, appending the payload to
    /// `out`. On error nothing is appended.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError>;
}

/// Turns RTP payloads into mono PCM frames.
pub trait AudioDecoder {
    /// Decodes one payload, appending PCM at the codec's rate to `out`. On
    /// error nothing is appended.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError>;

    /// Appends `samples` samples standing in for a lost packet (packet loss
    /// concealment). On error nothing is appended.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError>;
}

/// An encoder for any codec Echo speaks.
#[derive(Debug)]
pub enum Encoder {
    /// G.711 μ-law or A-law.
    G711(G711Encoder),
    /// Opus at 48 kHz.
    Opus(OpusEncoder),
}

impl Encoder {
    /// Creates an encoder for `kind` with Echo's default settings.
    pub fn new(kind: CodecKind) -> Result<Self, CodecError> {
        Ok(match kind {
            CodecKind::Pcmu => Encoder::G711(G711Encoder::new(G711Law::MuLaw)),
            CodecKind::Pcma => Encoder::G711(G711Encoder::new(G711Law::ALaw)),
            CodecKind::Opus => Encoder::Opus(OpusEncoder::new()?),
        })
    }

    /// The codec this encoder produces.
    pub fn kind(&self) -> CodecKind {
        match self {
            Encoder::G711(e) => e.law().kind(),
            Encoder::Opus(_) => CodecKind::Opus,
        }
    }

    /// The PCM rate this encoder expects, in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.kind().sample_rate()
    }

    /// PCM samples in one frame of `ptime_ms` milliseconds.
    pub fn samples_per_frame(&self, ptime_ms: u32) -> usize {
        self.kind().samples_per_frame(ptime_ms)
    }
}

impl AudioEncoder for Encoder {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            Encoder::G711(e) => e.encode(pcm, out),
            Encoder::Opus(e) => e.encode(pcm, out),
        }
    }
}

/// A decoder for any codec Echo speaks.
#[derive(Debug)]
pub enum Decoder {
    /// G.711 μ-law or A-law.
    G711(G711Decoder),
    /// Opus at 48 kHz.
    Opus(OpusDecoder),
}

impl Decoder {
    /// Creates a decoder for `kind`.
    pub fn new(kind: CodecKind) -> Result<Self, CodecError> {
        Ok(match kind {
            CodecKind::Pcmu => Decoder::G711(G711Decoder::new(G711Law::MuLaw)),
            CodecKind::Pcma => Decoder::G711(G711Decoder::new(G711Law::ALaw)),
            CodecKind::Opus => Decoder::Opus(OpusDecoder::new()?),
        })
    }

    /// The codec this decoder reads.
    pub fn kind(&self) -> CodecKind {
        match self {
            Decoder::G711(d) => d.law().kind(),
            Decoder::Opus(_) => CodecKind::Opus,
        }
    }

    /// The PCM rate this decoder produces, in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.kind().sample_rate()
    }

    /// PCM samples in one frame of `ptime_ms` milliseconds.
    pub fn samples_per_frame(&self, ptime_ms: u32) -> usize {
        self.kind().samples_per_frame(ptime_ms)
    }
}

impl AudioDecoder for Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        match self {
            Decoder::G711(d) => d.decode(payload, out),
            Decoder::Opus(d) => d.decode(payload, out),
        }
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        match self {
            Decoder::G711(d) => d.conceal(samples, out),
            Decoder::Opus(d) => d.conceal(samples, out),
        }
    }
}

/// The audio codecs Echo speaks on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 μ-law, static payload type 0, 8 kHz.
    Pcmu,
    /// G.711 A-law, static payload type 8, 8 kHz.
    Pcma,
    /// Opus (RFC 7587), 48 kHz RTP clock, dynamic payload type.
    Opus,
}

impl CodecKind {
    /// The encoding name as written in SDP `a=rtpmap` (RFC 3551, RFC 7587).
    pub fn encoding_name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::Opus => "opus",
        }
    }

    /// The RTP clock rate in Hz.
    pub fn clock_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::Opus => 48000,
        }
    }

    /// The static payload type, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::Opus => None,
        }
    }

    /// Looks a codec up by its SDP encoding name (case-insensitive).
    pub fn from_encoding_name(name: &str) -> Option<Self> {
        [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::Opus]
            .into_iter()
            .find(|c| c.encoding_name().eq_ignore_ascii_case(name))
    }

    /// The rate of the PCM a codec takes and gives, in Hz. For both G.711
    /// and Opus (decoded at full band) it equals the RTP clock rate.
    pub fn sample_rate(self) -> u32 {
        self.clock_rate()
    }

    /// PCM samples in one frame of `ptime_ms` milliseconds (160 for 20 ms
    /// of G.711, 960 for 20 ms of Opus).
    pub fn samples_per_frame(self, ptime_ms: u32) -> usize {
        (u64::from(self.sample_rate()) * u64::from(ptime_ms) / 1000) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_frame_sizes() {
        // (kind, sample rate, ptime ms, samples per frame)
        let cases = [
            (CodecKind::Pcmu, 8000, 20, 160),
            (CodecKind::Pcma, 8000, 20, 160),
            (CodecKind::Pcmu, 8000, 30, 240),
            (CodecKind::Pcma, 8000, 10, 80),
            (CodecKind::Opus, 48000, 20, 960),
            (CodecKind::Opus, 48000, 60, 2880),
            (CodecKind::Opus, 48000, 10, 480),
        ];
        for (kind, rate, ptime, samples) in cases {
            let encoder = Encoder::new(kind).unwrap();
            let decoder = Decoder::new(kind).unwrap();
            assert_eq!(encoder.kind(), kind);
            assert_eq!(decoder.kind(), kind);
            assert_eq!(encoder.sample_rate(), rate, "{kind:?}");
            assert_eq!(decoder.sample_rate(), rate, "{kind:?}");
            assert_eq!(
                encoder.samples_per_frame(ptime),
                samples,
                "{kind:?} {ptime}"
            );
            assert_eq!(
                decoder.samples_per_frame(ptime),
                samples,
                "{kind:?} {ptime}"
            );
        }
    }

    /// The gateway's echo test: decode → encode per packet, reusing buffers.
    /// After the first frame no buffer grows, i.e. nothing reallocates.
    #[test]
    fn echo_loop_reuses_its_buffers() {
        for kind in [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::Opus] {
            let mut far_end = Encoder::new(kind).unwrap();
            let mut decoder = Decoder::new(kind).unwrap();
            let mut encoder = Encoder::new(kind).unwrap();
            let frame = far_end.samples_per_frame(20);
            let tone: Vec<i16> = (0..frame)
                .map(|n| ((n as f64 * 0.3).sin() * 6000.0) as i16)
                .collect();
            let (mut incoming, mut pcm, mut outgoing) = (Vec::new(), Vec::new(), Vec::new());
            let mut capacities = None;
            for _ in 0..20 {
                incoming.clear();
                far_end.encode(&tone, &mut incoming).unwrap();
                pcm.clear();
                decoder.decode(&incoming, &mut pcm).unwrap();
                assert_eq!(pcm.len(), frame, "{kind:?}");
                outgoing.clear();
                encoder.encode(&pcm, &mut outgoing).unwrap();
                assert!(!outgoing.is_empty());
                let now = (incoming.capacity(), pcm.capacity(), outgoing.capacity());
                assert_eq!(*capacities.get_or_insert(now), now, "{kind:?}");
            }
            pcm.clear();
            decoder.conceal(frame, &mut pcm).unwrap();
            assert_eq!(pcm.len(), frame, "{kind:?}: concealment");
        }
    }

    #[test]
    fn g711_echo_is_transparent() {
        // Decoded G.711 re-encodes to the same bytes, so an echo test on
        // PCMU/PCMA returns the caller's packets unchanged (bar μ-law's
        // negative zero).
        for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
            let payload: Vec<u8> = (0..=255u8).filter(|&c| c != 0x7F).collect();
            let mut decoder = Decoder::new(kind).unwrap();
            let mut encoder = Encoder::new(kind).unwrap();
            let (mut pcm, mut out) = (Vec::new(), Vec::new());
            decoder.decode(&payload, &mut pcm).unwrap();
            encoder.encode(&pcm, &mut out).unwrap();
            assert_eq!(out, payload, "{kind:?}");
        }
    }
}
