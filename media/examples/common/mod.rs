//! Audio helpers shared by the VAD measurement programs: speech synthesised
//! with espeak-ng (resampled to 16 kHz by sox), seeded noise, mixing at a
//! given SNR, frame labels. Generated audio lives under the target dir.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use echo_media::vad::{dbfs, SileroVad, Vad, VadConfig, FRAME_SAMPLES};

/// Where generated audio is cached: `$CARGO_TARGET_DIR/vad-eval` or
/// `<repo>/target/vad-eval`.
pub fn work_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let dir = base.join("vad-eval");
    std::fs::create_dir_all(&dir).expect("create work dir");
    dir
}

/// The models folder: `$ECHO_MODELS_DIR` or `<repo>/models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("ECHO_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../models")))
}

/// A detector with Silero from the models folder (panics with the fix).
pub fn vad_with_silero(config: VadConfig) -> Vad {
    let silero = SileroVad::load_dir(models_dir())
        .unwrap_or_else(|e| panic!("{e}: run scripts/fetch-models.sh"));
    Vad::with_silero(config, silero)
}

/// `text` spoken by espeak-ng `voice` (extra args e.g. `-s 150`), 16 kHz
/// mono i16, cached by a hash of the arguments.
pub fn synth(voice: &str, extra: &[&str], text: &str) -> Vec<i16> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (voice, extra, text).hash(&mut h);
    let dir = work_dir();
    let raw = dir.join(format!("tts-{:016x}.raw", h.finish()));
    if !raw.exists() {
        let wav = dir.join(format!("tts-{:016x}.wav", h.finish()));
        let st = Command::new("espeak-ng")
            .args(["-v", voice])
            .args(extra)
            .arg("-w")
            .arg(&wav)
            .arg(text)
            .status()
            .expect("espeak-ng (apt-get install espeak-ng)");
        assert!(st.success(), "espeak-ng failed");
        let st = Command::new("sox")
            .arg(&wav)
            .args([
                "-r", "16000", "-c", "1", "-b", "16", "-e", "signed", "-t", "raw",
            ])
            .arg(&raw)
            .status()
            .expect("sox (apt-get install sox)");
        assert!(st.success(), "sox failed");
    }
    let bytes = std::fs::read(&raw).expect("read synthesised audio");
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// A small seeded generator (xorshift64*), so runs repeat exactly.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }
    /// Roughly Gaussian (sum of uniforms).
    pub fn gauss(&mut self) -> f32 {
        (0..4).map(|_| self.unit()).sum::<f32>() - 2.0
    }
}

/// Noise of `len` samples: white noise through a one-pole low-pass (more
/// energy in the speech band, like line and room noise), unit RMS.
pub fn noise(rng: &mut Rng, len: usize) -> Vec<f32> {
    let mut y = 0.0f32;
    let mut v: Vec<f32> = (0..len)
        .map(|_| {
            y = 0.7 * y + 0.3 * rng.gauss();
            y
        })
        .collect();
    let rms = (v.iter().map(|x| x * x).sum::<f32>() / len.max(1) as f32).sqrt();
    v.iter_mut().for_each(|x| *x /= rms.max(1e-9));
    v
}

/// RMS (linear, i16 scale) over the frames labelled speech.
pub fn active_rms(x: &[i16], labels: &[bool]) -> f32 {
    let (mut e, mut n) = (0.0f64, 0usize);
    for (f, &l) in x.chunks(FRAME_SAMPLES).zip(labels) {
        if l {
            e += f.iter().map(|&s| (s as f64).powi(2)).sum::<f64>();
            n += f.len();
        }
    }
    (e / n.max(1) as f64).sqrt() as f32
}

/// Scales `x` so that its active speech level is `dbfs`.
pub fn normalise(x: &mut [i16], labels: &[bool], target_dbfs: f32) {
    let rms = active_rms(x, labels);
    let gain = 32768.0 * 10f32.powf(target_dbfs / 20.0) / rms.max(1.0);
    x.iter_mut()
        .for_each(|s| *s = (*s as f32 * gain).clamp(-32768.0, 32767.0) as i16);
}

/// Frame labels of clean speech: a frame is speech when its level is
/// within 35 dB of the loudest frame (espeak's pauses are near silent).
pub fn labels(clean: &[i16]) -> Vec<bool> {
    let levels: Vec<f32> = clean.chunks(FRAME_SAMPLES).map(dbfs).collect();
    let max = levels.iter().copied().fold(-100.0, f32::max);
    levels.iter().map(|&l| l > max - 35.0).collect()
}

/// `speech + noise` with the noise scaled to `snr_db` below the speech's
/// active level.
pub fn mix_noise(speech: &[i16], labels: &[bool], snr_db: f32, rng: &mut Rng) -> Vec<i16> {
    let n = noise(rng, speech.len());
    let g = active_rms(speech, labels) / 10f32.powf(snr_db / 20.0);
    speech
        .iter()
        .zip(n)
        .map(|(&s, w)| (s as f32 + w * g).clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// `x` padded with zeros to a whole number of frames.
pub fn pad_frames(mut x: Vec<i16>) -> Vec<i16> {
    let r = x.len() % FRAME_SAMPLES;
    if r != 0 {
        x.resize(x.len() + FRAME_SAMPLES - r, 0);
    }
    x
}

/// Caller sentences for the measurements (a clinic's callers).
pub const SENTENCES: &[&str] = &[
    "Hello, I would like to book an appointment with Doctor Patel.",
    "My date of birth is the fourth of March nineteen eighty two.",
    "Can I come in next Tuesday afternoon?",
    "I need to renew my prescription for metformin.",
    "Yes, that works for me, thank you.",
    "No, I am not available on Friday.",
    "My name is Maria Gonzalez.",
    "I have had a sore throat for three days.",
    "Could you tell me the opening hours of the clinic?",
    "I would like to cancel my appointment tomorrow morning.",
    "It is about my daughter, she has a fever.",
    "Is there anything earlier in the week?",
    "I am calling about my blood test results.",
    "Please send the confirmation to my phone.",
    "Sorry, could you repeat that?",
    "The pain started after I went running on Sunday.",
    "I am allergic to penicillin.",
    "Do I need to bring my insurance card?",
    "Ten thirty would be perfect.",
    "My phone number ends in four five six seven.",
];

/// espeak-ng voices used as callers.
pub const CALLER_VOICES: &[&str] = &["en-us+f3", "en-us+m3", "en+f2", "en-us+m7", "en+f4"];
