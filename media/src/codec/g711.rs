//! G.711 (ITU-T G.711, 1988) μ-law and A-law companding, written from the
//! standard's segment tables.
//!
//! G.711 quantises 14-bit (μ-law) or 13-bit (A-law) linear samples. Our PCM
//! is 16-bit, so the encoder drops the low bits the way the ITU-T's own
//! reference implementation (G.191 STL `g711.c`) does: an arithmetic shift
//! for non-negative samples and a one's complement (`!x`) for negative ones,
//! which keeps the quantiser symmetric (`x` and `!x` get mirror codes).
//! The decoder returns the standard's reconstruction values scaled back to
//! 16 bits, e.g. μ-law 0x80 → 32124 and A-law 0xAA → 32256.
//!
//! Sun's widely copied `g711.c` is identical for A-law, but for μ-law it
//! negates (`-x`) instead of complementing; its codes then differ from G.191
//! by one step on 508 negative inputs that sit on a decision level. We follow
//! G.191.

use super::{AudioDecoder, AudioEncoder, CodecError, CodecKind};

/// Which of the two G.711 companding laws to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711Law {
    /// μ-law (North America, Japan): RTP payload `PCMU`.
    MuLaw,
    /// A-law (Europe, most of the world): RTP payload `PCMA`.
    ALaw,
}

impl G711Law {
    /// Compresses one 16-bit linear sample into an 8-bit code.
    #[inline]
    pub fn encode(self, linear: i16) -> u8 {
        match self {
            G711Law::MuLaw => linear_to_ulaw(linear),
            G711Law::ALaw => linear_to_alaw(linear),
        }
    }

    /// Expands one 8-bit code into a 16-bit linear sample.
    #[inline]
    pub fn decode(self, code: u8) -> i16 {
        match self {
            G711Law::MuLaw => ulaw_to_linear(code),
            G711Law::ALaw => alaw_to_linear(code),
        }
    }

    /// The codec this law is carried as on the wire.
    pub fn kind(self) -> CodecKind {
        match self {
            G711Law::MuLaw => CodecKind::Pcmu,
            G711Law::ALaw => CodecKind::Pcma,
        }
    }
}

/// μ-law transmits the bitwise inverse of `sign | segment << 4 | mantissa`
/// (sign bit set for negatives), so silence is mostly ones on the line.
const ULAW_INVERT: u8 = 0xFF;
/// A-law transmits `sign | segment << 4 | mantissa` with the even bits
/// inverted (G.711 §3.2, "alternate digit inversion").
const ALAW_INVERT: u8 = 0x55;
/// μ-law works on magnitudes offset by 33 so that every segment boundary is a
/// power of two (the "bias" of the classic implementations, in 14-bit units).
const ULAW_BIAS: i32 = 33;
/// Largest biased μ-law magnitude; G.711's overload point is 8158 + 33.
const ULAW_MAX_BIASED: i32 = 0x1FFF;

/// Splits a non-negative sample from its sign the G.191 way: `!x` for
/// negatives, so that the magnitude of -1 is 0.
#[inline]
fn sign_and_magnitude(linear: i16) -> (bool, i32) {
    if linear < 0 {
        (true, i32::from(!linear))
    } else {
        (false, i32::from(linear))
    }
}

/// Compresses a 16-bit linear sample to a G.711 μ-law code.
pub fn linear_to_ulaw(linear: i16) -> u8 {
    let (negative, magnitude) = sign_and_magnitude(linear);
    // 16-bit → 14-bit, then bias so segment s spans [64 << s >> 1, 64 << s).
    let biased = ((magnitude >> 2) + ULAW_BIAS).min(ULAW_MAX_BIASED);
    // biased >= 33, so the highest set bit is at position 5..=12.
    let segment = (31 - biased.leading_zeros()) as i32 - 5;
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    let sign = if negative { 0x80 } else { 0x00 };
    (sign | (segment << 4) as u8 | mantissa as u8) ^ ULAW_INVERT
}

/// Compresses a 16-bit linear sample to a G.711 A-law code.
pub fn linear_to_alaw(linear: i16) -> u8 {
    let (negative, magnitude) = sign_and_magnitude(linear);
    // 16-bit → 12-bit magnitude (13-bit signed).
    let magnitude = magnitude >> 3;
    let (segment, mantissa) = if magnitude < 32 {
        (0, magnitude >> 1)
    } else {
        // Segment s >= 1 spans [32 << (s - 1), 64 << (s - 1)).
        let segment = (31 - magnitude.leading_zeros()) as i32 - 4;
        (segment, (magnitude >> segment) & 0x0F)
    };
    let sign = if negative { 0x00 } else { 0x80 };
    (sign | (segment << 4) as u8 | mantissa as u8) ^ ALAW_INVERT
}

/// Expands a G.711 μ-law code to a 16-bit linear sample.
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(code)]
}

/// Expands a G.711 A-law code to a 16-bit linear sample.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(code)]
}

const fn ulaw_expand(code: u8) -> i16 {
    let bits = code ^ ULAW_INVERT;
    let segment = ((bits >> 4) & 0x07) as i32;
    let mantissa = (bits & 0x0F) as i32;
    // ((2m + 33) << s) - 33 in 14-bit units, times 4 for 16 bits.
    let magnitude = (((2 * mantissa + 33) << segment) - 33) * 4;
    if bits & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_expand(code: u8) -> i16 {
    let bits = code ^ ALAW_INVERT;
    let segment = ((bits >> 4) & 0x07) as i32;
    let mantissa = (bits & 0x0F) as i32;
    // 12-bit reconstruction value, times 8 for 16 bits.
    let magnitude = if segment == 0 {
        (2 * mantissa + 1) * 8
    } else {
        ((2 * mantissa + 33) << (segment - 1)) * 8
    };
    if bits & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn expand_table(law: G711Law) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = match law {
            G711Law::MuLaw => ulaw_expand(code as u8),
            G711Law::ALaw => alaw_expand(code as u8),
        };
        code += 1;
    }
    table
}

static ULAW_TO_LINEAR: [i16; 256] = expand_table(G711Law::MuLaw);
static ALAW_TO_LINEAR: [i16; 256] = expand_table(G711Law::ALaw);

/// G.711 encoder: one byte per 8 kHz sample, any frame length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct G711Encoder {
    law: G711Law,
}

impl G711Encoder {
    /// An encoder for the given law.
    pub fn new(law: G711Law) -> Self {
        Self { law }
    }

    /// The companding law in use.
    pub fn law(&self) -> G711Law {
        self.law
    }
}

impl AudioEncoder for G711Encoder {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let law = self.law;
        out.extend(pcm.iter().map(|&s| law.encode(s)));
        Ok(())
    }
}

/// Concealment fades the repeated frame to silence over this many samples
/// (60 ms at 8 kHz): long enough to bridge a single lost packet smoothly,
/// short enough that a burst does not buzz.
const FADE_SAMPLES: usize = 480;
/// The longest stretch of decoded audio kept for repetition (60 ms).
const MAX_HISTORY: usize = 480;

/// G.711 decoder. Loss concealment repeats the last decoded frame and fades
/// it out linearly over 60 ms ("repeat and fade"); G.711 Appendix I
/// (pitch-repeating PLC) would be a later refinement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct G711Decoder {
    law: G711Law,
    /// The last decoded frame, the material concealment repeats.
    history: Vec<i16>,
    /// Samples concealed since the last good frame.
    concealed: usize,
}

impl G711Decoder {
    /// A decoder for the given law.
    pub fn new(law: G711Law) -> Self {
        Self {
            law,
            history: Vec::with_capacity(MAX_HISTORY),
            concealed: 0,
        }
    }

    /// The companding law in use.
    pub fn law(&self) -> G711Law {
        self.law
    }
}

impl AudioDecoder for G711Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let table = match self.law {
            G711Law::MuLaw => &ULAW_TO_LINEAR,
            G711Law::ALaw => &ALAW_TO_LINEAR,
        };
        let start = out.len();
        out.extend(payload.iter().map(|&c| table[usize::from(c)]));
        let decoded = &out[start..];
        let keep = decoded.len().min(MAX_HISTORY);
        self.history.clear();
        self.history
            .extend_from_slice(&decoded[decoded.len() - keep..]);
        self.concealed = 0;
        Ok(())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        if self.history.is_empty() {
            out.resize(out.len() + samples, 0);
            return Ok(());
        }
        let len = self.history.len();
        for i in 0..samples {
            let n = self.concealed + i;
            let gain = FADE_SAMPLES.saturating_sub(n) as i32;
            let sample = i32::from(self.history[n % len]) * gain / FADE_SAMPLES as i32;
            out.push(sample as i16);
        }
        self.concealed += samples;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The expected values come from the tables of ITU-T G.711 itself, not
    //! from the code above: Table 1a (A-law) and Table 2a (μ-law) list, per
    //! segment, the first decoder output value and the step between values.
    //! Decision levels sit half a step either side of each output value, and
    //! an input exactly on a decision level goes to the larger magnitude
    //! (as in G.191's reference `g711.c`).

    use super::*;

    /// A law's view of the standard's table, in its native units (13-bit
    /// A-law, 14-bit μ-law).
    struct Standard {
        law: G711Law,
        /// (first output value, step) for segments 0..8.
        segments: [(i32, i32); 8],
        /// Bits dropped from a 16-bit sample to reach native units.
        shift: u32,
    }

    /// G.711 Table 1a, "value at decoder output" column.
    const A_LAW: Standard = Standard {
        law: G711Law::ALaw,
        segments: [
            (1, 2),
            (33, 2),
            (66, 4),
            (132, 8),
            (264, 16),
            (528, 32),
            (1056, 64),
            (2112, 128),
        ],
        shift: 3,
    };

    /// G.711 Table 2a, "value at decoder output" column.
    const MU_LAW: Standard = Standard {
        law: G711Law::MuLaw,
        segments: [
            (0, 2),
            (33, 4),
            (99, 8),
            (231, 16),
            (495, 32),
            (1023, 64),
            (2079, 128),
            (4191, 256),
        ],
        shift: 2,
    };

    const LAWS: [Standard; 2] = [A_LAW, MU_LAW];

    impl Standard {
        /// The transmitted byte for a sign, segment and step within it.
        /// A-law: sign bit 1 for positive, even bits inverted (Table 1a
        /// note). μ-law: sign bit 1 for positive, magnitude bits inverted
        /// (Table 2a note).
        fn code(&self, positive: bool, segment: usize, step: usize) -> u8 {
            let sign = if positive { 0x80 } else { 0x00 };
            let magnitude = (segment << 4 | step) as u8;
            match self.law {
                G711Law::ALaw => (sign | magnitude) ^ 0x55,
                G711Law::MuLaw => sign | (0x7F - magnitude),
            }
        }

        /// Every (code, 16-bit output value, 16-bit step) of the table.
        fn entries(&self) -> Vec<(u8, i32, i32)> {
            let mut entries = Vec::new();
            for positive in [true, false] {
                for (segment, &(first, step)) in self.segments.iter().enumerate() {
                    for i in 0..16 {
                        let value = (first + i as i32 * step) << self.shift;
                        let value = if positive { value } else { -value };
                        entries.push((self.code(positive, segment, i), value, step << self.shift));
                    }
                }
            }
            entries
        }

        /// The standard's code for a 16-bit input: the interval
        /// `[value - step/2, value + step/2)` holding its native magnitude,
        /// or the largest code past the overload point.
        fn reference_encode(&self, linear: i16) -> u8 {
            let positive = linear >= 0;
            let magnitude = if positive {
                i32::from(linear)
            } else {
                i32::from(!linear)
            } >> self.shift;
            for (segment, &(first, step)) in self.segments.iter().enumerate() {
                for i in 0..16 {
                    let value = first + i as i32 * step;
                    if magnitude < value + step / 2 {
                        return self.code(positive, segment, i);
                    }
                }
            }
            self.code(positive, 7, 15)
        }
    }

    #[test]
    fn decoding_matches_the_standard_for_all_256_codes() {
        for standard in &LAWS {
            let entries = standard.entries();
            let mut seen = [false; 256];
            for (code, value, _) in entries {
                assert!(
                    !seen[usize::from(code)],
                    "{:?} code {code:#04x} twice",
                    standard.law
                );
                seen[usize::from(code)] = true;
                assert_eq!(
                    i32::from(standard.law.decode(code)),
                    value,
                    "{:?} code {code:#04x}",
                    standard.law
                );
            }
            assert!(
                seen.iter().all(|&s| s),
                "{:?} table incomplete",
                standard.law
            );
        }
    }

    #[test]
    fn encoding_matches_the_standard_for_all_65536_inputs() {
        for standard in &LAWS {
            for linear in i16::MIN..=i16::MAX {
                assert_eq!(
                    standard.law.encode(linear),
                    standard.reference_encode(linear),
                    "{:?} input {linear}",
                    standard.law
                );
            }
        }
    }

    #[test]
    fn encoding_at_decision_levels_and_extremes() {
        // (law, 16-bit input, code). Inputs on either side of the smallest
        // decision levels, the segment edges and the overload points.
        let cases: &[(G711Law, i16, u8)] = &[
            (G711Law::ALaw, 0, 0xD5),
            (G711Law::ALaw, 15, 0xD5),
            (G711Law::ALaw, 16, 0xD4),
            (G711Law::ALaw, -1, 0x55),
            (G711Law::ALaw, -16, 0x55),
            (G711Law::ALaw, -17, 0x54),
            (G711Law::ALaw, 255, 0xDA), // seg 0, top step: 2m + 1 = 31
            (G711Law::ALaw, 256, 0xC5), // seg 1 starts at 32 (13-bit)
            (G711Law::ALaw, 511, 0xCA), // seg 1 ends at 63
            (G711Law::ALaw, 512, 0xF5), // seg 2 starts at 64
            (G711Law::ALaw, 32767, 0xAA),
            (G711Law::ALaw, -32768, 0x2A),
            (G711Law::MuLaw, 0, 0xFF),
            (G711Law::MuLaw, 3, 0xFF),
            (G711Law::MuLaw, 4, 0xFE),  // decision level 1 (14-bit)
            (G711Law::MuLaw, -1, 0x7F), // one's complement: still zero
            (G711Law::MuLaw, -4, 0x7F),
            (G711Law::MuLaw, -5, 0x7E),
            (G711Law::MuLaw, 123, 0xF0),   // 30 (14-bit): top of seg 0
            (G711Law::MuLaw, 124, 0xEF),   // decision level 31: seg 1
            (G711Law::MuLaw, 32635, 0x80), // last value before overload
            (G711Law::MuLaw, 32767, 0x80),
            (G711Law::MuLaw, -32768, 0x00),
        ];
        for &(law, linear, code) in cases {
            assert_eq!(law.encode(linear), code, "{law:?} input {linear}");
        }
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for law in [G711Law::ALaw, G711Law::MuLaw] {
            for code in 0..=255u8 {
                let again = law.encode(law.decode(code));
                // μ-law has two zeros; 0x7F ("negative zero") decodes to 0,
                // which encodes as 0xFF ("positive zero").
                let expected = if law == G711Law::MuLaw && code == 0x7F {
                    0xFF
                } else {
                    code
                };
                assert_eq!(again, expected, "{law:?} code {code:#04x}");
            }
        }
    }

    #[test]
    fn quantisation_error_is_at_most_half_a_step() {
        for standard in &LAWS {
            let steps: std::collections::HashMap<u8, (i32, i32)> = standard
                .entries()
                .into_iter()
                .map(|(code, value, step)| (code, (value, step)))
                .collect();
            let top = standard.entries().iter().map(|e| e.1).max().unwrap_or(0);
            for linear in i16::MIN..=i16::MAX {
                let code = standard.law.encode(linear);
                let decoded = i32::from(standard.law.decode(code));
                let error = (decoded - i32::from(linear)).abs();
                let (_, step) = steps[&code];
                let overload = i32::from(linear).abs() > top + step / 2;
                if overload {
                    assert_eq!(decoded.abs(), top, "{:?} input {linear}", standard.law);
                } else {
                    assert!(
                        error <= step / 2,
                        "{:?} input {linear}: error {error}, step {step}",
                        standard.law
                    );
                }
            }
        }
    }

    #[test]
    fn codec_structs_append_and_conceal() {
        for law in [G711Law::ALaw, G711Law::MuLaw] {
            let mut encoder = G711Encoder::new(law);
            let mut decoder = G711Decoder::new(law);
            let pcm: Vec<i16> = (0..160).map(|i| (i * 200 - 16000) as i16).collect();
            let mut payload = vec![0xAB];
            encoder.encode(&pcm, &mut payload).unwrap();
            assert_eq!(payload.len(), 161, "{law:?}: appends");
            let mut out = vec![7];
            decoder.decode(&payload[1..], &mut out).unwrap();
            assert_eq!(out.len(), 161);
            decoder.conceal(80, &mut out).unwrap();
            assert_eq!(out.len(), 241);
            // The first concealed sample repeats the frame's first one.
            assert_eq!(out[161], out[1]);
        }
    }

    #[test]
    fn concealment_repeats_and_fades() {
        let mut decoder = G711Decoder::new(G711Law::MuLaw);
        let mut out = Vec::new();
        // Before any audio: silence.
        decoder.conceal(160, &mut out).unwrap();
        assert!(out.iter().all(|&s| s == 0));
        out.clear();
        let code = linear_to_ulaw(8000);
        decoder.decode(&[code; 160], &mut out).unwrap();
        let level = out[0];
        out.clear();
        // (frame concealed, expected first sample as a fraction of the original)
        for (frame, first) in [(0, 1.0), (1, 2.0 / 3.0), (2, 1.0 / 3.0), (3, 0.0)] {
            out.clear();
            decoder.conceal(160, &mut out).unwrap();
            let expected = (f64::from(level) * first) as i16;
            assert!((out[0] - expected).abs() <= 1, "frame {frame}: {}", out[0]);
            assert!(out.windows(2).all(|w| w[1].abs() <= w[0].abs()), "fading");
        }
        // A good frame resets the fade.
        out.clear();
        decoder.decode(&[code; 160], &mut out).unwrap();
        out.clear();
        decoder.conceal(160, &mut out).unwrap();
        assert_eq!(out[0], level);
    }
}
