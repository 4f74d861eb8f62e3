//! Sample-rate conversion between the telephony rates (8, 16, 24, 48 kHz)
//! with `rubato`'s synchronous FFT resampler.
//!
//! [`Resampler`] takes mono `i16` PCM in pieces of any length, keeps what does
//! not fill a 20 ms chunk for the next call, and appends converted PCM to a
//! caller-owned buffer; its scratch buffers are reused, so a call that keeps
//! its resampler does not allocate per frame.
//!
//! The anti-aliasing filter is rubato's (Blackman–Harris window, cutoff just
//! under the lower Nyquist frequency). Its algorithmic delay is half an FFT
//! block: with 20 ms chunks split in two 10 ms FFT blocks that is **5 ms** of
//! output for every rate pair (e.g. 80 samples at 16 kHz, 40 at 8 kHz);
//! [`Resampler::delay_samples`] says it in output samples. The input
//! buffering adds up to one 20 ms chunk more when input arrives in pieces
//! that are not multiples of 20 ms (RTP and VAD frames are 20 ms).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

/// One processing chunk, 20 ms: one call per frame.
const CHUNK_MS: usize = 20;
/// FFT blocks per chunk: 10 ms blocks keep the delay at 5 ms and are large
/// enough for a valid block at every rate pair here.
const SUB_CHUNKS: usize = 2;

/// Why a resampler could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResampleError {
    /// Only 8, 16, 24 and 48 kHz are supported.
    #[error("unsupported sample rate {0} Hz")]
    Rate(u32),
    /// rubato refused the configuration.
    #[error("resampler: {0}")]
    Construction(#[from] rubato::ResamplerConstructionError),
}

/// Mono `i16` sample-rate converter with a fixed rate pair.
pub struct Resampler {
    from: u32,
    to: u32,
    /// `None` when `from == to`: samples pass through untouched.
    inner: Option<Fft<f32>>,
    /// Input not yet making a whole chunk.
    pending: Vec<f32>,
    chunk_in: usize,
    scratch_out: Vec<f32>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("pending", &self.pending.len())
            .finish()
    }
}

fn check_rate(rate: u32) -> Result<(), ResampleError> {
    match rate {
        // The telephony rates, and the 11.025 kHz family voices come in
        // (Piper speaks at 22 050 Hz): each is whole samples per 20 ms.
        8000 | 11025 | 16000 | 22050 | 24000 | 32000 | 44100 | 48000 => Ok(()),
        other => Err(ResampleError::Rate(other)),
    }
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz (each 8000, 11025, 16000,
    /// 22050, 24000, 32000, 44100 or 48000).
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        check_rate(from)?;
        check_rate(to)?;
        let chunk_in = from as usize * CHUNK_MS / 1000;
        let chunk_out = to as usize * CHUNK_MS / 1000;
        let inner: Option<Fft<f32>> = if from == to {
            None
        } else {
            Some(Fft::new_custom(
                from as usize,
                to as usize,
                chunk_in,
                SUB_CHUNKS,
                1,
                rubato::WindowFunction::BlackmanHarris2,
                FixedSync::Input,
            )?)
        };
        let room = inner.as_ref().map_or(chunk_out, |r| r.output_frames_max());
        Ok(Resampler {
            from,
            to,
            inner,
            pending: Vec::with_capacity(chunk_in * 8),
            chunk_in,
            scratch_out: vec![0.0; room],
        })
    }

    /// The input rate in Hz.
    pub fn input_rate(&self) -> u32 {
        self.from
    }

    /// The output rate in Hz.
    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// The algorithmic delay in output samples (0 when the rates are equal).
    pub fn delay_samples(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Converts `input`, appending the output available so far to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return;
        };
        self.pending
            .extend(input.iter().map(|&s| f32::from(s) / 32768.0));
        let mut consumed = 0;
        while self.pending.len() - consumed >= self.chunk_in {
            let chunk = &self.pending[consumed..consumed + self.chunk_in];
            // Both adapters are exactly one chunk long, the sizes rubato
            // asked for, so processing cannot fail.
            let input =
                InterleavedSlice::new(chunk, 1, self.chunk_in).expect("one mono chunk of input");
            let room = self.scratch_out.len();
            let mut output = InterleavedSlice::new_mut(&mut self.scratch_out, 1, room)
                .expect("room for the largest output");
            let (_, produced) = inner
                .process_into_buffer(&input, &mut output, None)
                .expect("chunk sizes match the resampler");
            out.extend(
                self.scratch_out[..produced]
                    .iter()
                    .map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16),
            );
            consumed += self.chunk_in;
        }
        self.pending.drain(..consumed);
    }

    /// Converts a whole clip at once: the start is aligned (the delay is
    /// trimmed) and the tail is flushed, so the output is `input.len() *
    /// to / from` samples long. Clears any pending input first.
    pub fn process_clip(&mut self, input: &[i16], out: &mut Vec<i16>) {
        self.reset();
        let delay = self.delay_samples();
        let wanted = input.len() * self.to as usize / self.from as usize;
        let start = out.len();
        self.process(input, out);
        let zeros = [0i16; 960];
        while out.len() - start < wanted + delay {
            self.process(&zeros[..self.chunk_in], out);
        }
        out.drain(start..start + delay);
        out.truncate(start + wanted);
        self.reset();
    }

    /// Forgets buffered input and the filter state.
    pub fn reset(&mut self) {
        self.pending.clear();
        if let Some(inner) = self.inner.as_mut() {
            inner.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, frequency: f64, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|n| {
                let t = n as f64 / f64::from(rate);
                (10000.0 * (2.0 * std::f64::consts::PI * frequency * t).sin()) as i16
            })
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn frame_sizes_and_delay() {
        // (from, to, samples out per 20 ms frame, delay in output samples)
        let cases = [
            (8000, 16000, 320, 80),
            (16000, 8000, 160, 40),
            (48000, 16000, 320, 80),
            (16000, 48000, 960, 240),
            (24000, 8000, 160, 40),
            (8000, 48000, 960, 240),
            // A voice's 22 050 Hz: whole samples per frame, 10 ms delay.
            (22050, 8000, 160, 80),
            (22050, 16000, 320, 160),
            (16000, 16000, 320, 0),
        ];
        for (from, to, per_frame, delay) in cases {
            let mut r = Resampler::new(from, to).unwrap();
            assert_eq!(r.delay_samples(), delay, "{from}->{to}");
            // The delay is 5 ms between telephony rates.
            assert!(delay == 0 || from == 22050 || delay * 1000 / to as usize == 5);
            let frame = vec![0i16; from as usize / 50];
            let mut out = Vec::new();
            for n in 1..=5 {
                r.process(&frame, &mut out);
                assert_eq!(out.len(), per_frame * n, "{from}->{to}");
            }
            // Odd-sized pieces are buffered, not lost.
            out.clear();
            r.process(&frame[..7], &mut out);
            r.process(&frame[7..], &mut out);
            assert_eq!(out.len(), per_frame);
        }
        assert!(matches!(
            Resampler::new(44000, 8000),
            Err(ResampleError::Rate(44000))
        ));
    }

    /// A tone shows up delayed by exactly `delay_samples`.
    #[test]
    fn measured_delay_matches_the_documented_one() {
        for (from, to) in [(8000, 16000), (48000, 16000), (16000, 8000)] {
            let mut r = Resampler::new(from, to).unwrap();
            let mut input = vec![0i16; from as usize / 10];
            // An impulse-like click at 50 ms.
            let at = from as usize / 20;
            input[at] = 20000;
            let mut out = Vec::new();
            r.process(&input, &mut out);
            let peak = out
                .iter()
                .enumerate()
                .max_by_key(|(_, s)| s.unsigned_abs())
                .unwrap()
                .0;
            let expected = at * to as usize / from as usize + r.delay_samples();
            assert!(
                peak.abs_diff(expected) <= 1,
                "{from}->{to}: {peak} vs {expected}"
            );
        }
    }

    #[test]
    fn passes_speech_band_and_rejects_aliases() {
        // (from, to, tone Hz, passes?)
        let cases = [
            (8000, 16000, 1000.0, true),
            (16000, 8000, 1000.0, true),
            (16000, 8000, 3000.0, true),
            // 6 kHz cannot exist at 8 kHz: it must not fold to 2 kHz.
            (16000, 8000, 6000.0, false),
            (48000, 16000, 12000.0, false),
            (48000, 16000, 2000.0, true),
        ];
        for (from, to, tone, passes) in cases {
            let mut r = Resampler::new(from, to).unwrap();
            let input = sine(from, tone, from as usize / 2);
            let mut out = Vec::new();
            r.process(&input, &mut out);
            let steady = &out[out.len() / 4..];
            let gain = rms(steady) / rms(&input);
            if passes {
                assert!((0.9..1.1).contains(&gain), "{from}->{to} {tone}: {gain}");
            } else {
                assert!(gain < 0.01, "{from}->{to} {tone}: {gain}");
            }
        }
    }

    #[test]
    fn clips_keep_their_length_and_alignment() {
        let mut r = Resampler::new(8000, 16000).unwrap();
        let input = sine(8000, 500.0, 1000);
        let mut out = Vec::new();
        r.process_clip(&input, &mut out);
        assert_eq!(out.len(), 2000);
        // Aligned: sample 2n of the output is close to sample n of the input.
        for n in (100..900).step_by(37) {
            assert!(
                (i32::from(out[2 * n]) - i32::from(input[n])).abs() < 600,
                "{n}"
            );
        }
    }
}
