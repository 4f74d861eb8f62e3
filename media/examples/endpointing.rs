//! The seed's endpointing sweep: silence 500 vs 200 ms (and 300) and VAD
//! threshold 0.5 vs 0.3, on utterances with natural pauses (phone numbers
//! read in groups, dates), at 20 dB SNR.
//!
//! `cargo run --release -p echo-media --example endpointing`
//! (needs espeak-ng, sox and `scripts/fetch-models.sh`).
//!
//! The endpointer is the session's rule: speech starts after
//! `min_speech_ms` of consecutive voiced frames, ends after `silence_ms` of
//! consecutive unvoiced ones. A false cut-off is an end declared inside an
//! utterance (before its last labelled speech frame); the detection delay
//! is from the last labelled speech frame to the end decision.

mod common;

use common::*;
use echo_media::vad::{Vad, VadConfig, FRAME_SAMPLES};

const FRAME_MS: usize = 20;
const MIN_SPEECH_MS: usize = 100;

const DIGITS: &[&str] = &[
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const MONTHS: &[&str] = &["January", "March", "June", "August", "October", "December"];

/// Groups of words to speak with pauses between them.
fn utterance(rng: &mut Rng, i: usize) -> Vec<String> {
    let digits = |rng: &mut Rng, n: usize| {
        (0..n)
            .map(|_| DIGITS[rng.range(0, 10)])
            .collect::<Vec<_>>()
            .join(" ")
    };
    match i % 3 {
        0 | 1 => vec![digits(rng, 3), digits(rng, 3), digits(rng, 4)],
        _ => vec![
            format!(
                "the {} of {}",
                ["fourth", "twelfth", "first", "ninth"][rng.range(0, 4)],
                MONTHS[rng.range(0, 6)]
            ),
            format!(
                "nineteen {}",
                ["eighty two", "seventy five", "sixty one", "ninety nine"][rng.range(0, 4)]
            ),
        ],
    }
}

/// `x` without the near-silence espeak-ng puts before and after speech, so
/// the pauses we insert are the pauses the detector hears.
fn trim(x: &[i16]) -> Vec<i16> {
    let peak = x.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    let quiet = |s: &i16| s.unsigned_abs() < peak / 100;
    let start = x.iter().position(|s| !quiet(s)).unwrap_or(0);
    let end = x.iter().rposition(|s| !quiet(s)).map_or(0, |e| e + 1);
    x[start..end.max(start)].to_vec()
}

/// Returns (end decisions, in frames) for one stream.
fn endpoints(vad: &mut Vad, audio: &[i16], silence_ms: usize) -> Vec<usize> {
    vad.reset();
    let (start_need, end_need) = (MIN_SPEECH_MS / FRAME_MS, silence_ms / FRAME_MS);
    let (mut in_speech, mut voiced_run, mut silent_run) = (false, 0, 0);
    let mut ends = Vec::new();
    for (k, f) in audio.chunks(FRAME_SAMPLES).enumerate() {
        let v = vad.process(f, None).voiced;
        if v {
            voiced_run += 1;
            silent_run = 0;
        } else {
            voiced_run = 0;
            silent_run += 1;
        }
        if !in_speech && voiced_run >= start_need {
            in_speech = true;
        } else if in_speech && silent_run >= end_need {
            in_speech = false;
            ends.push(k);
        }
    }
    ends
}

fn main() {
    let mut rng = Rng::new(5);
    let mut streams = Vec::new(); // (audio, last speech frame)
    let mut pauses = Vec::new();
    for i in 0..60 {
        let voice = CALLER_VOICES[i % CALLER_VOICES.len()];
        let lead = 25 * FRAME_SAMPLES;
        let mut audio = vec![0i16; lead];
        let groups = utterance(&mut rng, i);
        let n = groups.len();
        for (g, text) in groups.iter().enumerate() {
            let clip = trim(&synth(voice, &["-s", "160"], text));
            audio.extend(clip);
            if g + 1 < n {
                // Natural pauses between groups: 150–450 ms.
                let pause = rng.range(150, 451);
                pauses.push(pause);
                audio.extend(std::iter::repeat_n(0, pause * 16));
            }
        }
        let audio = pad_frames(audio);
        let l = labels(&audio);
        let last = l.iter().rposition(|&v| v).unwrap();
        let mut audio = audio;
        audio.extend(std::iter::repeat_n(0, 100 * FRAME_SAMPLES)); // 2 s after
        let mut l = l;
        l.resize(audio.len() / FRAME_SAMPLES, false);
        normalise(&mut audio, &l, -20.0 - 6.0 * rng.unit());
        let noisy = mix_noise(&audio, &l, 20.0, &mut rng);
        streams.push((noisy, last));
    }
    pauses.sort();
    println!(
        "{} utterances (phone numbers in 3-3-4 groups, dates), 20 dB SNR; pauses between groups {}–{} ms (median {}); min_speech_ms {MIN_SPEECH_MS}",
        streams.len(),
        pauses[0],
        pauses[pauses.len() - 1],
        pauses[pauses.len() / 2]
    );
    println!(
        "{:<16} {:>7} {:>7} {:>14} {:>12} {:>10} {:>8}",
        "VAD", "thresh", "silence", "false cut-off", "delay median", "delay p90", "missed"
    );
    for silero in [true, false] {
        for threshold in [0.5f32, 0.3] {
            let cfg = VadConfig {
                threshold,
                ..VadConfig::default()
            };
            let mut vad = if silero {
                vad_with_silero(cfg)
            } else {
                Vad::new(cfg)
            };
            for silence_ms in [500usize, 300, 200] {
                let (mut cut, mut missed) = (0, 0);
                let mut delays = Vec::new();
                for (audio, last) in &streams {
                    let ends = endpoints(&mut vad, audio, silence_ms);
                    if ends.iter().any(|&e| e < *last) {
                        cut += 1;
                    }
                    match ends.iter().find(|&&e| e >= *last) {
                        Some(&e) => delays.push((e - last) * FRAME_MS),
                        None => missed += 1,
                    }
                }
                delays.sort();
                let q = |f: f64| {
                    delays
                        .get(((delays.len() as f64 - 1.0) * f).round() as usize)
                        .map_or("-".to_string(), |d| format!("{d} ms"))
                };
                println!(
                    "{:<16} {:>7} {:>5} ms {:>6} / {:<2} {:>5.0} % {:>7} {:>10} {:>8}",
                    if silero {
                        "gate + Silero"
                    } else {
                        "gate alone"
                    },
                    threshold,
                    silence_ms,
                    cut,
                    streams.len(),
                    100.0 * cut as f64 / streams.len() as f64,
                    q(0.5),
                    q(0.9),
                    missed
                );
            }
        }
    }
}
