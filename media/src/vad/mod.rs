//! Voice activity detection in two tiers: a cheap per-frame gate that is
//! always on, and (when the model is available) Silero VAD run only on the
//! frames the gate passes.
//!
//! Frames are 20 ms of 16 kHz mono PCM (320 samples). While Echo is playing
//! a prompt, the caller's phone may echo it back: `process` takes the level
//! of what Echo is sending at that moment so the detector can tell the
//! caller's voice from its own echo.
//!
//! ```no_run
//! use echo_media::vad::{SileroVad, Vad, VadConfig};
//! let mut vad = match SileroVad::load_dir("models") {
//!     Ok(silero) => Vad::with_silero(VadConfig::default(), silero),
//!     Err(e) => {
//!         eprintln!("VAD: gate alone ({e})");
//!         Vad::new(VadConfig::default())
//!     }
//! };
//! let frame = [0i16; 320];
//! let out = vad.process(&frame, Some(-20.0)); // Echo is playing at -20 dBFS
//! assert!(!out.voiced);
//! ```
//!
//! Echo handling is a double-talk check in the manner of Geigel's detector:
//! while Echo plays, a frame can only pass the gate if it is louder than the
//! loudest outbound frame of the last `echo_tail_ms`, less `echo_margin_db`.
//! An echo path attenuates our prompt by its echo return loss (10–20 dB
//! measured on phones, ITU-T G.168 assumes at least 6 dB), so the echo alone
//! never passes, while a caller talking over the prompt at a normal level
//! does. Once a frame passes, `double_talk_hold_ms` keeps the check open so
//! the quieter syllables of the same speech count too.

mod gate;
mod silero;

pub use gate::{Gate, GateFrame};
pub use silero::{ort_runtime, SileroError, SileroVad, SILERO_CHUNK, SILERO_CONTEXT};

/// Samples in one 20 ms frame at 16 kHz.
pub const FRAME_SAMPLES: usize = 320;

const FRAME_MS: u32 = 20;
const SILENT_DBFS: f32 = -100.0;

/// Detector settings (route settings in the gateway).
#[derive(Debug, Clone, PartialEq)]
pub struct VadConfig {
    /// Speech probability at or above which a frame counts as voiced
    /// (Silero's scale, 0.0–1.0; the gate maps its own score onto it).
    pub threshold: f32,
    /// Frames quieter than this (dBFS) are never voiced.
    pub gate_floor_dbfs: f32,
    /// The gate also wants frames this many dB above the noise floor it
    /// tracks (so steady noise does not wake Silero on every frame).
    pub noise_margin_db: f32,
    /// Gate score (0.0–1.0) at or above which Silero runs on a frame; kept
    /// low so the gate rarely loses speech that Silero would have found.
    pub gate_threshold: f32,
    /// Once the gate opens it stays open this long (ms) after its last
    /// passing frame, so Silero hears the weak sounds and short pauses
    /// inside speech instead of the gate chopping them off.
    pub gate_hold_ms: u32,
    /// While Echo plays, a frame must be louder than the loudest recent
    /// outbound frame less this many dB (the echo return loss we assume).
    pub echo_margin_db: f32,
    /// How far back (ms) the loudest outbound frame is looked for: the echo
    /// path's delay plus its tail.
    pub echo_tail_ms: u32,
    /// After a speech-like frame beats the echo check, later frames are
    /// spared it for this long (ms), so the quieter parts of barge-in speech
    /// still count. Keep it under the session's `barge_in_min_ms`.
    pub double_talk_hold_ms: u32,
    /// After the gate stays shut this long (ms), Silero's state is reset.
    pub silero_reset_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            threshold: 0.5,
            gate_floor_dbfs: -45.0,
            noise_margin_db: 3.0,
            gate_threshold: 0.15,
            gate_hold_ms: 300,
            echo_margin_db: 6.0,
            echo_tail_ms: 400,
            double_talk_hold_ms: 200,
            silero_reset_ms: 500,
        }
    }
}

/// What the detector says about one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadFrame {
    /// The frame counts as the caller's speech.
    pub voiced: bool,
    /// Speech probability, 0.0–1.0: Silero's when it ran, else the gate's.
    pub probability: f32,
    /// The cheap gate let the frame through (Silero ran on it, if loaded).
    pub gate_passed: bool,
}

/// Counters a detector keeps, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VadStats {
    /// Frames processed.
    pub frames: u64,
    /// Frames the gate passed.
    pub gate_passed: u64,
    /// Frames held back by the echo check while Echo was playing.
    pub echo_suppressed: u64,
    /// Silero inferences run.
    pub silero_runs: u64,
    /// Silero inferences that failed (the gate decided those frames).
    pub silero_errors: u64,
}

/// Silero plus the audio it needs around our 20 ms frames.
#[derive(Debug)]
struct SileroTier {
    model: SileroVad,
    /// The last `SILERO_CONTEXT + SILERO_CHUNK` samples, scaled to ±1.
    window: Vec<f32>,
    /// Samples received since the last inference.
    pending: usize,
    /// An inference ran since the gate last opened.
    fresh: bool,
    /// Consecutive frames with the gate shut.
    shut_frames: u32,
    last: f32,
}

/// The two-tier detector.
#[derive(Debug)]
pub struct Vad {
    config: VadConfig,
    gate: Gate,
    silero: Option<SileroTier>,
    /// Outbound levels of the last `echo_tail_ms`, newest last.
    outbound: Vec<f32>,
    hold_frames: u32,
    gate_hold_frames: u32,
    stats: VadStats,
}

impl Vad {
    /// A detector; the gate alone until a model is added.
    pub fn new(config: VadConfig) -> Self {
        Vad {
            config,
            gate: Gate::new(),
            silero: None,
            outbound: Vec::new(),
            hold_frames: 0,
            gate_hold_frames: 0,
            stats: VadStats::default(),
        }
    }

    /// A detector whose gate hands the frames it passes to Silero.
    pub fn with_silero(config: VadConfig, silero: SileroVad) -> Self {
        let mut vad = Vad::new(config);
        vad.silero = Some(SileroTier {
            model: silero,
            window: vec![0.0; SILERO_CONTEXT + SILERO_CHUNK],
            pending: 0,
            fresh: false,
            shut_frames: 0,
            last: 0.0,
        });
        vad
    }

    /// The settings.
    pub fn config(&self) -> &VadConfig {
        &self.config
    }

    /// Whether Silero is loaded (else the gate decides alone).
    pub fn has_silero(&self) -> bool {
        self.silero.is_some()
    }

    /// Counters since creation.
    pub fn stats(&self) -> VadStats {
        self.stats
    }

    /// Classifies one 20 ms frame (16 kHz). `outbound_dbfs` is the level of
    /// what Echo is playing to the caller in the same 20 ms (`None` when
    /// silent).
    pub fn process(&mut self, frame: &[i16], outbound_dbfs: Option<f32>) -> VadFrame {
        self.stats.frames += 1;
        let gate = self.gate.process(
            frame,
            self.config.gate_floor_dbfs,
            self.config.noise_margin_db,
            self.gate_hold_frames > 0,
        );
        let opens = gate.score >= self.config.gate_threshold;
        let over_echo = self.echo_check(gate.level_dbfs, outbound_dbfs, opens);
        let gate_passed = if !over_echo {
            if opens {
                self.stats.echo_suppressed += 1;
            }
            self.gate_hold_frames = 0;
            false
        } else if opens {
            self.gate_hold_frames = self.config.gate_hold_ms / FRAME_MS;
            true
        } else if self.gate_hold_frames > 0 {
            self.gate_hold_frames -= 1;
            true
        } else {
            false
        };
        if gate_passed {
            self.stats.gate_passed += 1;
        }
        let threshold = self.config.threshold;
        // Alone, the gate's network decides inside the open gate (over the
        // fixed floor: hold frames may sit under the noise floor).
        let gate_probability = if gate.level_dbfs > self.config.gate_floor_dbfs {
            gate.network_score
        } else {
            0.0
        };
        let gate_only = VadFrame {
            voiced: gate_passed && gate_probability >= threshold,
            probability: gate_probability,
            gate_passed,
        };
        let Some(tier) = self.silero.as_mut() else {
            return gate_only;
        };
        tier.push(frame);
        if !gate_passed {
            tier.fresh = false;
            tier.shut_frames = tier.shut_frames.saturating_add(1);
            if tier.shut_frames * FRAME_MS >= self.config.silero_reset_ms {
                tier.model.reset();
                tier.shut_frames = 0;
            }
            return VadFrame {
                voiced: false,
                ..gate_only
            };
        }
        tier.shut_frames = 0;
        // Run on every 512 new samples, and at once when the gate opens so
        // the first frame of speech is not decided on stale output.
        if tier.pending >= SILERO_CHUNK || !tier.fresh {
            self.stats.silero_runs += 1;
            match tier.model.predict(&tier.window) {
                Ok(p) => {
                    tier.last = p;
                    tier.fresh = true;
                    tier.pending = 0;
                }
                Err(_) => {
                    self.stats.silero_errors += 1;
                    return gate_only;
                }
            }
        }
        VadFrame {
            voiced: tier.last >= threshold,
            probability: tier.last,
            gate_passed,
        }
    }

    /// Forgets all audio state (a new call leg); settings and counters stay.
    pub fn reset(&mut self) {
        self.gate.reset();
        self.outbound.clear();
        self.hold_frames = 0;
        self.gate_hold_frames = 0;
        if let Some(tier) = self.silero.as_mut() {
            tier.model.reset();
            tier.window.fill(0.0);
            tier.pending = 0;
            tier.fresh = false;
            tier.shut_frames = 0;
            tier.last = 0.0;
        }
    }

    /// Whether a frame at `level` could be the caller rather than our echo.
    /// `speech_like` (the gate's network would open) arms the double-talk
    /// hold, so line noise beating a quiet stretch of the prompt cannot.
    fn echo_check(&mut self, level: f32, outbound_dbfs: Option<f32>, speech_like: bool) -> bool {
        let tail = (self.config.echo_tail_ms / FRAME_MS).max(1) as usize;
        if self.outbound.len() >= tail {
            self.outbound.drain(..=self.outbound.len() - tail);
        }
        self.outbound.push(outbound_dbfs.unwrap_or(SILENT_DBFS));
        let loudest = self.outbound.iter().copied().fold(SILENT_DBFS, f32::max);
        let echo_floor = loudest - self.config.echo_margin_db;
        if echo_floor <= self.config.gate_floor_dbfs {
            // No echo of ours could pass the fixed floor anyway.
            self.hold_frames = self.hold_frames.saturating_sub(1);
            return true;
        }
        if level > echo_floor {
            if speech_like {
                self.hold_frames = self.config.double_talk_hold_ms / FRAME_MS;
            }
            true
        } else if self.hold_frames > 0 {
            self.hold_frames -= 1;
            true
        } else {
            false
        }
    }
}

impl SileroTier {
    fn push(&mut self, frame: &[i16]) {
        let n = frame.len().min(self.window.len());
        self.window.copy_within(n.., 0);
        let start = self.window.len() - n;
        for (w, &s) in self.window[start..]
            .iter_mut()
            .zip(&frame[frame.len() - n..])
        {
            *w = f32::from(s) / 32768.0;
        }
        self.pending = (self.pending + n).min(self.window.len());
    }
}

/// RMS level of a frame in dBFS (−100 for digital silence).
pub fn dbfs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return SILENT_DBFS;
    }
    let energy: f64 =
        frame.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / frame.len() as f64;
    if energy <= 0.0 {
        return SILENT_DBFS;
    }
    ((10.0 * (energy / (32768.0 * 32768.0)).log10()) as f32).max(SILENT_DBFS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    /// One second of a signal, in 20 ms frames; `f(n)` is sample n in ±1.
    fn frames(f: impl Fn(usize) -> f32) -> Vec<Vec<i16>> {
        (0..50)
            .map(|k| {
                (0..FRAME_SAMPLES)
                    .map(|i| (f(k * FRAME_SAMPLES + i) * 32767.0).clamp(-32768.0, 32767.0) as i16)
                    .collect()
            })
            .collect()
    }

    fn tone(hz: f32, amp: f32) -> impl Fn(usize) -> f32 {
        move |n| amp * (2.0 * PI * hz * n as f32 / 16_000.0).sin()
    }

    /// A vowel-like sound: a 120 Hz glottal pulse train's harmonics shaped
    /// by formants at 700, 1200 and 2500 Hz, amplitude-modulated at a
    /// syllable rate of 4 Hz.
    fn speech_like(amp: f32) -> impl Fn(usize) -> f32 {
        move |n| {
            let t = n as f32 / 16_000.0;
            let formant = |f: f32, c: f32, w: f32| (-((f - c) / w).powi(2)).exp();
            let s: f32 = (1..30)
                .map(|k| {
                    let f = 120.0 * k as f32;
                    let a = formant(f, 700.0, 150.0)
                        + 0.7 * formant(f, 1200.0, 200.0)
                        + 0.3 * formant(f, 2500.0, 300.0);
                    a * (2.0 * PI * f * t).sin()
                })
                .sum();
            amp * s * (0.3 + 0.7 * (2.0 * PI * 4.0 * t).sin().abs())
        }
    }

    struct Case {
        name: &'static str,
        frames: Vec<Vec<i16>>,
        /// Bounds on the share of frames (after the first 10) the gate passes.
        passed: (f32, f32),
        /// Bounds on the share of frames (after the first 10) voiced.
        voiced: (f32, f32),
    }

    #[test]
    fn gate_alone_table() {
        let cases = [
            Case {
                name: "digital silence",
                frames: frames(|_| 0.0),
                passed: (0.0, 0.0),
                voiced: (0.0, 0.0),
            },
            Case {
                name: "quiet hiss under the floor (-60 dBFS)",
                frames: frames(|n| 0.001 * ((n * 7919 % 200) as f32 / 100.0 - 1.0)),
                passed: (0.0, 0.0),
                voiced: (0.0, 0.0),
            },
            Case {
                name: "1 kHz tone at -10 dBFS",
                frames: frames(tone(1000.0, 0.45)),
                passed: (0.0, 1.0),
                voiced: (0.0, 0.0),
            },
            Case {
                name: "speech-like vowel at -20 dBFS",
                frames: frames(speech_like(0.05)),
                passed: (1.0, 1.0),
                voiced: (0.0, 1.0),
            },
            Case {
                name: "clipped square wave at full scale",
                frames: frames(|n| if (n / 40) % 2 == 0 { 1.0 } else { -1.0 }),
                passed: (0.0, 1.0),
                voiced: (0.0, 0.1),
            },
            Case {
                name: "empty frames",
                frames: vec![Vec::new(); 50],
                passed: (0.0, 0.0),
                voiced: (0.0, 0.0),
            },
        ];
        for case in cases {
            let mut vad = Vad::new(VadConfig::default());
            let out: Vec<VadFrame> = case.frames.iter().map(|f| vad.process(f, None)).collect();
            let tail = &out[10..];
            let share = |p: &dyn Fn(&VadFrame) -> bool| {
                tail.iter().filter(|f| p(f)).count() as f32 / tail.len() as f32
            };
            let passed = share(&|f| f.gate_passed);
            let voiced = share(&|f| f.voiced);
            assert!(
                (case.passed.0..=case.passed.1).contains(&passed),
                "{}: gate passed {passed}, want {:?}",
                case.name,
                case.passed
            );
            assert!(
                (case.voiced.0..=case.voiced.1).contains(&voiced),
                "{}: voiced {voiced}, want {:?}",
                case.name,
                case.voiced
            );
            assert!(out.iter().all(|f| (0.0..=1.0).contains(&f.probability)));
            assert!(
                out.iter().all(|f| !f.voiced || f.gate_passed),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn dbfs_table() {
        for (name, frame, want) in [
            ("empty", vec![], -100.0),
            ("zeros", vec![0i16; 320], -100.0),
            ("full-scale square", vec![i16::MIN; 320], 0.0),
            ("half-scale DC", vec![16384; 320], -6.02),
        ] {
            let got = dbfs(&frame);
            assert!((got - want).abs() < 0.05, "{name}: {got} dBFS, want {want}");
        }
    }

    /// Echo at -10 dB of a prompt never passes; the caller at the prompt's
    /// level over it does.
    #[test]
    fn echo_of_prompt_is_held_back_and_caller_over_it_is_not() {
        let prompt = frames(speech_like(0.1));
        let echo: Vec<Vec<i16>> = prompt
            .iter()
            .map(|f| f.iter().map(|&s| (s as f32 * 0.316) as i16).collect())
            .collect();
        let mut vad = Vad::new(VadConfig::default());
        for (p, e) in prompt.iter().zip(&echo) {
            let out = vad.process(e, Some(dbfs(p)));
            assert!(!out.gate_passed && !out.voiced, "echo passed: {out:?}");
        }
        assert!(vad.stats().echo_suppressed > 0);
        let caller = frames(speech_like(0.1));
        let passed = prompt
            .iter()
            .zip(&caller)
            .filter(|(p, c)| vad.process(c, Some(dbfs(p))).gate_passed)
            .count();
        assert!(passed >= 45, "caller passed {passed} of 50 frames");
    }

    /// The session that owns a `Vad` moves between the gateway's threads.
    #[test]
    fn detectors_are_send() {
        fn send<T: Send>() {}
        send::<Vad>();
        send::<SileroVad>();
        send::<SileroError>();
    }

    #[test]
    fn no_playout_means_no_echo_check() {
        let mut vad = Vad::new(VadConfig::default());
        let quiet = frames(speech_like(0.01));
        let passed = quiet
            .iter()
            .filter(|f| vad.process(f, None).gate_passed)
            .count();
        assert!(passed >= 45, "{passed}");
        assert_eq!(vad.stats().echo_suppressed, 0);
    }
}
