//! Whisper's log-mel spectrogram: 80 mel bins of a 400-point STFT every
//! 160 samples (10 ms) at 16 kHz, `log10` clamped to 8 below the maximum,
//! then scaled as `(x + 4) / 4` — what the model was trained on
//! (openai/whisper `audio.py`, with librosa's Slaney filterbank).

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// Sample rate the model expects, in Hz.
pub const SAMPLE_RATE: usize = 16_000;
// STFT window length in samples (25 ms).
const N_FFT: usize = 400;
/// STFT hop in samples (10 ms): one mel frame.
pub const HOP: usize = 160;
/// Mel frames in the model's full 30 s window.
pub const FULL_FRAMES: usize = 3000;
/// Mel bins of Whisper tiny.en.
pub const N_MELS: usize = 80;

const N_BINS: usize = N_FFT / 2 + 1;
/// `log10` of the floor Whisper applies to the mel power before the log.
const LOG_FLOOR: f32 = -10.0;

/// A precomputed filterbank and FFT plan; computing is allocation-light and
/// may run on several threads at once.
pub struct LogMel {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// Per mel bin: the first FFT bin it covers and its weights from there.
    filters: Vec<(usize, Vec<f32>)>,
}

impl std::fmt::Debug for LogMel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMel")
            .field("mels", &self.filters.len())
            .finish()
    }
}

impl Default for LogMel {
    fn default() -> Self {
        LogMel::new()
    }
}

impl LogMel {
    /// Plans the FFT and builds the 80-bin Slaney filterbank.
    pub fn new() -> LogMel {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        // torch.hann_window(400) is periodic.
        let window = (0..N_FFT)
            .map(|i| {
                let x = std::f32::consts::PI * 2.0 * i as f32 / N_FFT as f32;
                0.5 - 0.5 * x.cos()
            })
            .collect();
        let filters = slaney_filterbank(N_MELS)
            .into_iter()
            .map(|row| {
                let first = row.iter().position(|&w| w > 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w > 0.0).unwrap_or(0);
                (first, row[first..=last.max(first)].to_vec())
            })
            .collect();
        LogMel {
            fft,
            window,
            filters,
        }
    }

    /// The normalised log-mel of `pcm` (16 kHz, -1..1) padded with silence
    /// to `frames` frames (audio beyond them is cut), laid out mel-major
    /// (`[N_MELS][frames]`), as the encoder takes it.
    pub fn compute(&self, pcm: &[f32], frames: usize) -> Vec<f32> {
        let pcm = &pcm[..pcm.len().min(frames * HOP)];
        let mut out = vec![LOG_FLOOR; N_MELS * frames];
        // Frames whose window reaches the audio; later ones see only the
        // silence padding (power 0, the log floor).
        let audible = pcm.len().div_ceil(HOP).saturating_add(2).min(frames);
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0f32; N_BINS];
        let half = (N_FFT / 2) as isize;
        let n = pcm.len() as isize;
        for t in 0..audible {
            let start = (t * HOP) as isize - half;
            for (i, slot) in input.iter_mut().enumerate() {
                let mut j = start + i as isize;
                // torch.stft(center=True) reflects at the start; at the end
                // Whisper has already appended silence, so it reflects zeros.
                if j < 0 {
                    j = -j;
                }
                let sample = if j < n { pcm[j as usize] } else { 0.0 };
                *slot = sample * self.window[i];
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("buffers come from the plan");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (m, (first, weights)) in self.filters.iter().enumerate() {
                let energy: f32 = weights
                    .iter()
                    .zip(&power[*first..])
                    .map(|(w, p)| w * p)
                    .sum();
                out[m * frames + t] = energy.max(1e-10).log10();
            }
        }
        let max = out.iter().copied().fold(LOG_FLOOR, f32::max);
        let floor = max - 8.0;
        for v in &mut out {
            *v = (v.max(floor) + 4.0) / 4.0;
        }
        out
    }
}

/// librosa's `filters.mel(sr=16000, n_fft=400, n_mels, htk=False,
/// norm="slaney")`: `n_mels` rows of `N_BINS` weights.
fn slaney_filterbank(n_mels: usize) -> Vec<Vec<f32>> {
    let mel_points: Vec<f64> = {
        let lo = hz_to_mel(0.0);
        let hi = hz_to_mel(SAMPLE_RATE as f64 / 2.0);
        (0..n_mels + 2)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
            .collect()
    };
    let fft_freqs: Vec<f64> = (0..N_BINS)
        .map(|k| k as f64 * SAMPLE_RATE as f64 / N_FFT as f64)
        .collect();
    (0..n_mels)
        .map(|m| {
            let (lower, centre, upper) = (mel_points[m], mel_points[m + 1], mel_points[m + 2]);
            let norm = 2.0 / (upper - lower);
            fft_freqs
                .iter()
                .map(|&f| {
                    let rising = (f - lower) / (centre - lower);
                    let falling = (upper - f) / (upper - centre);
                    (rising.min(falling).max(0.0) * norm) as f32
                })
                .collect()
        })
        .collect()
}

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz < MIN_LOG_HZ {
        hz / F_SP
    } else {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel < MIN_LOG_MEL {
        mel * F_SP
    } else {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_the_floor_everywhere() {
        let mel = LogMel::new().compute(&vec![0.0; 16_000], FULL_FRAMES);
        assert_eq!(mel.len(), N_MELS * FULL_FRAMES);
        // log10(1e-10) = -10, scaled: (-10 + 4) / 4.
        assert!(mel.iter().all(|&v| v == -1.5), "{:?}", &mel[..4]);
    }

    #[test]
    fn a_1khz_sine_peaks_in_its_mel_bin() {
        let pcm: Vec<f32> = (0..16_000)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let frames = 200;
        let mel = LogMel::new().compute(&pcm, frames);
        let t = 50;
        let column: Vec<f32> = (0..N_MELS).map(|m| mel[m * frames + t]).collect();
        let peak = (0..N_MELS)
            .max_by(|&a, &b| column[a].total_cmp(&column[b]))
            .unwrap();
        // The filters whose triangle holds 1 kHz: the mel scale is linear
        // (66.7 Hz a mel) up to 1 kHz = mel 15, and 80 bins span 0..45.2
        // mels, 0.557 apart: 1 kHz is the centre of filter 15/0.557 - 1.
        let expected = (hz_to_mel(1000.0) / ((hz_to_mel(8000.0)) / 81.0)).round() as usize - 1;
        assert!(
            peak.abs_diff(expected) <= 1,
            "peak {peak}, expected {expected}"
        );
        // The maximum of the whole spectrogram is 1 kHz: it scales to
        // (max + 4) / 4, and silence after the second sits 8 below it.
        let max = mel.iter().copied().fold(f32::MIN, f32::max);
        assert!(
            (column[peak] - max).abs() < 1e-3,
            "{} vs {max}",
            column[peak]
        );
        let after = mel[peak * frames + 150];
        assert!((after - (max - 2.0)).abs() < 1e-5, "{after} vs {max}");
    }

    #[test]
    fn filterbank_matches_librosa_at_a_known_point() {
        // librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)[0][1], by its formula
        // = 0.02486259 (bin 1 = 40 Hz, on the first filter's rising edge).
        let fb = slaney_filterbank(80);
        assert!((fb[0][1] - 0.024_862_59).abs() < 1e-6, "{}", fb[0][1]);
    }
}
