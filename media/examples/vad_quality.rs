//! Frame-level precision and recall of the VAD tiers on labelled audio:
//! espeak-ng callers separated by silence, clean and with noise at 20, 10
//! and 5 dB SNR.
//!
//! `cargo run --release -p echo-media --example vad_quality`
//! (needs espeak-ng, sox and `scripts/fetch-models.sh`).

mod common;

use common::*;
use echo_media::vad::{dbfs, Gate, Vad, VadConfig, FRAME_SAMPLES};

#[derive(Default)]
struct Score {
    tp: usize,
    fp: usize,
    fn_: usize,
    tn: usize,
}

impl Score {
    fn add(&mut self, truth: bool, said: bool) {
        match (truth, said) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
    fn fpr(&self) -> f64 {
        self.fp as f64 / (self.fp + self.tn).max(1) as f64
    }
}

fn main() {
    let mut rng = Rng::new(7);
    // 40 utterances, 5 voices, random levels and gaps.
    let mut clean: Vec<i16> = Vec::new();
    let mut truth: Vec<bool> = Vec::new();
    for i in 0..40 {
        let voice = CALLER_VOICES[i % CALLER_VOICES.len()];
        let speed = format!("{}", 140 + rng.range(0, 40));
        let mut utt = pad_frames(synth(
            voice,
            &["-s", &speed],
            SENTENCES[i % SENTENCES.len()],
        ));
        let l = labels(&utt);
        normalise(&mut utt, &l, -26.0 + 10.0 * rng.unit());
        let gap = rng.range(20, 75) * FRAME_SAMPLES; // 0.4–1.5 s
        clean.extend(std::iter::repeat_n(0, gap));
        truth.extend(std::iter::repeat_n(false, gap / FRAME_SAMPLES));
        clean.extend_from_slice(&utt);
        truth.extend(l);
    }
    let speech_frames = truth.iter().filter(|&&t| t).count();
    println!(
        "stream: {:.1} s, {} frames, {} labelled speech ({:.0} %)",
        clean.len() as f64 / 16000.0,
        truth.len(),
        speech_frames,
        100.0 * speech_frames as f64 / truth.len() as f64
    );
    println!(
        "{:<6} {:<34} {:>9} {:>7} {:>7} {:>10}",
        "SNR", "detector", "precision", "recall", "FPR", "gate-pass"
    );
    for snr in [None, Some(20.0), Some(10.0), Some(5.0)] {
        let audio = match snr {
            None => clean.clone(),
            Some(s) => mix_noise(&clean, &truth, s, &mut rng),
        };
        let snr_name = snr.map_or("clean".to_string(), |s| format!("{s} dB"));
        let frames: Vec<&[i16]> = audio.chunks(FRAME_SAMPLES).collect();
        let report = |name: &str, said: &[bool], passed: Option<usize>| {
            let mut s = Score::default();
            for (&t, &v) in truth.iter().zip(said) {
                s.add(t, v);
            }
            println!(
                "{:<6} {:<34} {:>9.3} {:>7.3} {:>7.3} {:>10}",
                snr_name,
                name,
                s.precision(),
                s.recall(),
                s.fpr(),
                passed.map_or("-".into(), |p| format!(
                    "{:.0} %",
                    100.0 * p as f64 / frames.len() as f64
                ))
            );
        };
        // Energy alone at the default floor.
        let said: Vec<bool> = frames.iter().map(|f| dbfs(f) > -45.0).collect();
        report("energy > -45 dBFS", &said, None);
        // webrtc-vad (libfvad) for comparison.
        for (mode, name) in [
            (webrtc_vad::VadMode::Quality, "webrtc-vad quality"),
            (
                webrtc_vad::VadMode::VeryAggressive,
                "webrtc-vad very aggressive",
            ),
        ] {
            let mut w =
                webrtc_vad::Vad::new_with_rate_and_mode(webrtc_vad::SampleRate::Rate16kHz, mode);
            let said: Vec<bool> = frames
                .iter()
                .map(|f| w.is_voice_segment(f).unwrap_or(false))
                .collect();
            report(name, &said, None);
        }
        // earshot alone.
        let mut g = Gate::new();
        let said: Vec<bool> = frames
            .iter()
            .map(|f| g.process(f, -100.0, -100.0, true).score >= 0.5)
            .collect();
        report("earshot >= 0.5", &said, None);
        // Our tiers.
        for (name, cfg, silero) in [
            ("Vad gate alone (0.5)", VadConfig::default(), false),
            ("Vad gate + Silero (0.5)", VadConfig::default(), true),
            (
                "Vad gate + Silero (0.3)",
                VadConfig {
                    threshold: 0.3,
                    ..VadConfig::default()
                },
                true,
            ),
            (
                "Silero on every frame (0.5)",
                VadConfig {
                    gate_threshold: 0.0,
                    gate_floor_dbfs: -100.0,
                    ..VadConfig::default()
                },
                true,
            ),
        ] {
            let mut vad = if silero {
                vad_with_silero(cfg)
            } else {
                Vad::new(cfg)
            };
            let said: Vec<bool> = frames.iter().map(|f| vad.process(f, None).voiced).collect();
            report(name, &said, Some(vad.stats().gate_passed as usize));
        }
    }
}
