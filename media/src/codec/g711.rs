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

/// G.711 decoder. Loss concealment is plain silence for now; G.711
/// Appendix I (pitch-repeating PLC) is a later improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct G711Decoder {
    law: G711Law,
}

impl G711Decoder {
    /// A decoder for the given law.
    pub fn new(law: G711Law) -> Self {
        Self { law }
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
        out.extend(payload.iter().map(|&c| table[usize::from(c)]));
        Ok(())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        out.resize(out.len() + samples, 0);
        Ok(())
    }
}
