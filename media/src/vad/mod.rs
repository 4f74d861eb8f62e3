//! Voice activity detection in two tiers: a cheap per-frame gate that is
//! always on, and (when the model is available) Silero VAD run only on the
//! frames the gate passes.
//!
//! Frames are 20 ms of 16 kHz mono PCM (320 samples). While Echo is playing
//! a prompt, the caller's phone may echo it back: `process` takes the level
//! of what Echo is sending at that moment so the detector can tell the
//! caller's voice from its own echo.

/// Samples in one 20 ms frame at 16 kHz.
pub const FRAME_SAMPLES: usize = 320;

/// Detector settings (route settings in the gateway).
#[derive(Debug, Clone, PartialEq)]
pub struct VadConfig {
    /// Speech probability at or above which a frame counts as voiced
    /// (Silero's scale, 0.0–1.0; the gate maps its own score onto it).
    pub threshold: f32,
    /// Frames quieter than this (dBFS) are never voiced.
    pub gate_floor_dbfs: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            threshold: 0.5,
            gate_floor_dbfs: -45.0,
        }
    }
}

/// What the detector says about one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadFrame {
    /// The frame counts as the caller's speech.
    pub voiced: bool,
    /// Speech probability, 0.0–1.0.
    pub probability: f32,
    /// The cheap gate let the frame through (Silero ran on it, if loaded).
    pub gate_passed: bool,
}

/// The two-tier detector.
#[derive(Debug)]
pub struct Vad {
    config: VadConfig,
}

impl Vad {
    /// A detector; the gate alone until a model is added.
    pub fn new(config: VadConfig) -> Self {
        Vad { config }
    }

    /// The settings.
    pub fn config(&self) -> &VadConfig {
        &self.config
    }

    /// Classifies one 20 ms frame (16 kHz). `outbound_dbfs` is the level of
    /// what Echo is playing to the caller in the same 20 ms (`None` when
    /// silent).
    pub fn process(&mut self, frame: &[i16], outbound_dbfs: Option<f32>) -> VadFrame {
        let level = dbfs(frame);
        // Echo of our own prompt arrives attenuated: demand that the caller
        // be louder than a -10 dB echo of it would be.
        let floor = match outbound_dbfs {
            Some(out) => self.config.gate_floor_dbfs.max(out - 6.0),
            None => self.config.gate_floor_dbfs,
        };
        let margin = level - floor;
        let probability = (margin / 20.0).clamp(0.0, 1.0);
        let gate_passed = margin > 0.0;
        VadFrame {
            voiced: gate_passed && probability >= self.config.threshold.min(0.99) * 0.5,
            probability,
            gate_passed,
        }
    }
}

/// RMS level of a frame in dBFS (−100 for digital silence).
pub fn dbfs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return -100.0;
    }
    let energy: f64 =
        frame.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / frame.len() as f64;
    if energy <= 0.0 {
        return -100.0;
    }
    (10.0 * (energy / (32768.0 * 32768.0)).log10()) as f32
}
