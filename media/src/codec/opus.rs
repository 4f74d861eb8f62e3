//! Opus (RFC 6716) over RTP (RFC 7587) through libopus, via `audiopus`.
//!
//! RFC 7587 fixes the RTP clock at 48 kHz whatever the audio bandwidth, so
//! both directions run libopus at 48 kHz mono. A mono decoder also accepts
//! stereo packets: libopus downmixes them.

use audiopus::coder::{Decoder as LibDecoder, Encoder as LibEncoder};
use audiopus::{Application, Bitrate, Channels, MutSignals, SampleRate};

use super::{AudioDecoder, AudioEncoder, CodecError};

/// Samples per second of PCM on both sides of the Opus codec.
pub const OPUS_SAMPLE_RATE: u32 = 48_000;
/// Bitrate of the encoder: wideband speech with room for in-band FEC.
pub const OPUS_BITRATE: i32 = 24_000;
/// Expected packet loss the encoder is told about. libopus only spends bits
/// on in-band FEC (LBRR) when this is above zero.
pub const OPUS_EXPECTED_LOSS_PERCENT: u8 = 10;
/// Room given to libopus per packet: the size its documentation recommends,
/// well above anything a 24 kbit/s speech frame needs.
const MAX_PACKET_BYTES: usize = 4000;
/// 120 ms at 48 kHz, the longest duration one Opus packet can carry.
const MAX_PACKET_SAMPLES: usize = 5760;
/// Opus frames are multiples of 2.5 ms: 120 samples at 48 kHz.
const GRANULE_SAMPLES: usize = 120;

/// Opus encoder: VOIP application, 48 kHz mono, 24 kbit/s, in-band FEC on.
#[derive(Debug)]
pub struct OpusEncoder {
    inner: LibEncoder,
}

impl OpusEncoder {
    /// Creates an encoder configured for telephony speech.
    pub fn new() -> Result<Self, CodecError> {
        let mut inner = LibEncoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip)
            .map_err(CodecError::Opus)?;
        inner
            .set_bitrate(Bitrate::BitsPerSecond(OPUS_BITRATE))
            .map_err(CodecError::Opus)?;
        inner.set_inband_fec(true).map_err(CodecError::Opus)?;
        inner
            .set_packet_loss_perc(OPUS_EXPECTED_LOSS_PERCENT)
            .map_err(CodecError::Opus)?;
        Ok(Self { inner })
    }

    /// Samples of look-ahead (algorithmic delay) the encoder adds.
    pub fn lookahead(&self) -> Result<usize, CodecError> {
        self.inner
            .lookahead()
            .map(|n| n as usize)
            .map_err(CodecError::Opus)
    }
}

/// Opus accepts 2.5, 5, 10, 20, 40 or 60 ms per call.
fn is_opus_frame_size(samples: usize) -> bool {
    matches!(samples, 120 | 240 | 480 | 960 | 1920 | 2880)
}

impl AudioEncoder for OpusEncoder {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if !is_opus_frame_size(pcm.len()) {
            return Err(CodecError::FrameSize { samples: pcm.len() });
        }
        let start = out.len();
        // After the first frame the caller's buffer has the capacity, so this
        // only zero-fills; no allocation per frame.
        out.resize(start + MAX_PACKET_BYTES, 0);
        match self.inner.encode(pcm, &mut out[start..]) {
            Ok(written) => {
                out.truncate(start + written);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(CodecError::Opus(e))
            }
        }
    }
}

/// Opus decoder at 48 kHz mono, with packet loss concealment and FEC
/// recovery.
#[derive(Debug)]
pub struct OpusDecoder {
    inner: LibDecoder,
}

impl OpusDecoder {
    /// Creates a 48 kHz mono decoder.
    pub fn new() -> Result<Self, CodecError> {
        let inner =
            LibDecoder::new(SampleRate::Hz48000, Channels::Mono).map_err(CodecError::Opus)?;
        Ok(Self { inner })
    }

    /// Recovers a lost packet of `samples` samples from the in-band FEC data
    /// carried in the packet that followed it (`next_payload`). Call it before
    /// decoding `next_payload` itself. Falls back to concealment inside
    /// libopus when `next_payload` has no FEC data.
    pub fn recover_from_fec(
        &mut self,
        next_payload: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<(), CodecError> {
        check_conceal_size(samples)?;
        let packet = next_payload.try_into().map_err(CodecError::Opus)?;
        self.run(Some(packet), samples, true, out)
    }

    fn run(
        &mut self,
        packet: Option<audiopus::packet::Packet<'_>>,
        capacity: usize,
        fec: bool,
        out: &mut Vec<i16>,
    ) -> Result<(), CodecError> {
        let start = out.len();
        out.resize(start + capacity, 0);
        let signals = MutSignals::try_from(&mut out[start..]).map_err(CodecError::Opus)?;
        match self.inner.decode(packet, signals, fec) {
            Ok(decoded) => {
                out.truncate(start + decoded);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(CodecError::Opus(e))
            }
        }
    }
}

fn check_conceal_size(samples: usize) -> Result<(), CodecError> {
    if samples == 0 || samples % GRANULE_SAMPLES != 0 || samples > MAX_PACKET_SAMPLES {
        return Err(CodecError::FrameSize { samples });
    }
    Ok(())
}

impl AudioDecoder for OpusDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        let packet = payload.try_into().map_err(CodecError::Opus)?;
        self.run(Some(packet), MAX_PACKET_SAMPLES, false, out)
    }

    /// Opus concealment comes in whole 2.5 ms steps: `samples` must be a
    /// multiple of 120 and at most 5760 (120 ms).
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        check_conceal_size(samples)?;
        self.run(None, samples, false, out)
    }
}
