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

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: usize = 960;

    fn sine(frequency: f64, amplitude: f64, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|n| {
                let t = n as f64 / f64::from(OPUS_SAMPLE_RATE);
                (amplitude * (2.0 * std::f64::consts::PI * frequency * t).sin()) as i16
            })
            .collect()
    }

    /// Encodes `pcm` frame by frame, returning one payload per frame.
    fn encode_all(pcm: &[i16]) -> Vec<Vec<u8>> {
        let mut encoder = OpusEncoder::new().unwrap();
        pcm.chunks(FRAME)
            .map(|frame| {
                let mut payload = Vec::new();
                encoder.encode(frame, &mut payload).unwrap();
                payload
            })
            .collect()
    }

    fn energy(x: &[i16]) -> f64 {
        x.iter().map(|&s| f64::from(s).powi(2)).sum()
    }

    /// Normalised cross-correlation of `a` with `b` delayed by `lag`.
    fn correlation(a: &[i16], b: &[i16], lag: usize) -> f64 {
        let b = &b[lag..];
        let n = a.len().min(b.len());
        let dot: f64 = (0..n).map(|i| f64::from(a[i]) * f64::from(b[i])).sum();
        dot / (energy(&a[..n]) * energy(&b[..n])).sqrt()
    }

    #[test]
    fn sine_survives_the_codec_after_its_delay() {
        let input = sine(440.0, 8000.0, FRAME * 50);
        let mut decoder = OpusDecoder::new().unwrap();
        let mut output = Vec::new();
        for payload in encode_all(&input) {
            assert!(payload.len() < 200, "20 ms at 24 kbit/s is ~60 bytes");
            decoder.decode(&payload, &mut output).unwrap();
        }
        assert_eq!(output.len(), input.len());

        // Skip the first 10 frames while the encoder settles. The codec's
        // whole delay is the encoder's look-ahead (6.5 ms at 48 kHz); a sine
        // repeats every ~109 samples, so search within half a period of it.
        let lookahead = OpusEncoder::new().unwrap().lookahead().unwrap();
        let half_period = (f64::from(OPUS_SAMPLE_RATE) / 440.0 / 2.0) as usize;
        let reference = &input[FRAME * 10..FRAME * 40];
        let (lag, best) = (lookahead - half_period..lookahead + half_period)
            .map(|lag| (lag, correlation(reference, &output[FRAME * 10..], lag)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert!(best > 0.95, "correlation {best} at lag {lag}");
        let delayed = &output[FRAME * 10 + lag..FRAME * 40 + lag];
        let ratio = energy(delayed) / energy(reference);
        assert!((0.8..1.25).contains(&ratio), "energy ratio {ratio}");
    }

    #[test]
    fn concealment_yields_the_requested_samples() {
        let payloads = encode_all(&sine(440.0, 8000.0, FRAME * 5));
        let mut decoder = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        decoder.decode(&payloads[0], &mut out).unwrap();
        for (samples, ok) in [
            (960, true),
            (120, true),
            (480, true),
            (5760, true),
            (0, false),
            (100, false),
            (5880, false),
        ] {
            let before = out.len();
            let result = decoder.conceal(samples, &mut out);
            assert_eq!(result.is_ok(), ok, "{samples} samples: {result:?}");
            let added = if ok { samples } else { 0 };
            assert_eq!(out.len(), before + added, "{samples} samples");
        }
        // Decoding carries on after concealment.
        decoder.decode(&payloads[1], &mut out).unwrap();
    }

    #[test]
    fn fec_recovers_a_lost_packet_from_the_next_one() {
        let payloads = encode_all(&sine(440.0, 8000.0, FRAME * 20));
        let mut decoder = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        for payload in &payloads[..10] {
            decoder.decode(payload, &mut out).unwrap();
        }
        // Packet 10 is lost; packet 11 carries its FEC copy.
        decoder
            .recover_from_fec(&payloads[11], FRAME, &mut out)
            .unwrap();
        decoder.decode(&payloads[11], &mut out).unwrap();
        assert_eq!(out.len(), FRAME * 12);
        let recovered = &out[FRAME * 10..FRAME * 11];
        assert!(energy(recovered) > 0.0);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut encoder = OpusEncoder::new().unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        let mut bytes = vec![1, 2, 3];
        for samples in [0, 1, 159, 160, 961, 5760] {
            let err = encoder.encode(&vec![0; samples], &mut bytes).unwrap_err();
            assert!(matches!(err, CodecError::FrameSize { samples: s } if s == samples));
            assert_eq!(bytes, [1, 2, 3], "nothing appended on error");
        }
        let mut pcm = vec![5];
        let cases: &[(&[u8], &str)] = &[
            (&[], "empty"),
            // TOC code 3 (arbitrary frame count) without its count byte.
            (&[0x03], "truncated code 3"),
            // Code 3 claiming 0 frames.
            (&[0x03, 0x00], "zero frames"),
            // Code 3 claiming 63 x 20 ms, beyond 120 ms.
            (&[0x0B, 0x3F], "too long"),
        ];
        for &(payload, what) in cases {
            let result = decoder.decode(payload, &mut pcm);
            assert!(result.is_err(), "{what}: {result:?}");
            assert_eq!(pcm, [5], "{what}: nothing appended on error");
        }
        assert!(matches!(
            decoder.decode(&[], &mut pcm),
            Err(CodecError::EmptyPayload)
        ));
        // The decoder still works afterwards.
        let payloads = encode_all(&[0; FRAME]);
        decoder.decode(&payloads[0], &mut pcm).unwrap();
        assert_eq!(pcm.len(), 1 + FRAME);
    }
}
