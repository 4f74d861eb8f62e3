//! Barge-in with our own prompt echoed back: false barge-ins with echo
//! alone, detection delay with a caller talking over the prompt.
//!
//! `cargo run --release -p echo-media --example barge_in`
//! (needs espeak-ng, sox and `scripts/fetch-models.sh`).
//!
//! The bot is espeak-ng `en-us+m1`; prompts are normalised to −20 dBFS and
//! come back through an echo path (40–120 ms delay, a short low-pass, the
//! echo return loss under test) over −60 dBFS line noise. Barge-in is what
//! the session does: `barge_in_min_ms` of consecutive voiced frames while a
//! prompt plays.

mod common;

use common::*;
use echo_media::vad::{dbfs, Vad, VadConfig, FRAME_SAMPLES};

const BARGE_IN_MIN_MS: usize = 200;
const FRAME_MS: usize = 20;

const PROMPTS: &[&str] = &[
    "Welcome to the Riverside clinic. How can I help you today?",
    "What is your date of birth?",
    "Could you spell your last name for me, please?",
    "I found an appointment on Tuesday at ten thirty. Does that work for you?",
    "Which doctor would you like to see?",
    "Let me check the schedule for you. One moment please.",
    "Your appointment is confirmed. You will receive a text message.",
    "Is this about a new problem or a follow up visit?",
    "I am sorry, I did not catch that. Could you say it again?",
    "Please tell me the name of the medication you need renewed.",
    "The clinic is open from eight in the morning until six in the evening.",
    "Would you like me to transfer you to the front desk?",
    "Do you have any allergies we should know about?",
    "What phone number can we reach you at?",
    "Doctor Patel has availability on Thursday afternoon.",
    "Please hold while I look up your record.",
    "Can you confirm the address we have on file?",
    "Your prescription request has been sent to the pharmacy.",
    "Is there anything else I can help you with today?",
    "To cancel an appointment, say cancel. To book one, say book.",
    "I have you down for Monday the twelfth at nine fifteen.",
    "Are you calling for yourself or for someone else?",
    "The next available slot is in two weeks. Shall I book it?",
    "Please arrive fifteen minutes early to fill in the forms.",
    "Thank you for calling. Goodbye.",
];

fn prompts() -> Vec<Vec<i16>> {
    let mut out = Vec::new();
    for (speed, pitch) in [("150", "40"), ("170", "40"), ("150", "60"), ("170", "55")] {
        for text in PROMPTS {
            let mut p = pad_frames(synth("en-us+m1", &["-s", speed, "-p", pitch], text));
            let l = labels(&p);
            normalise(&mut p, &l, -20.0);
            out.push(p);
        }
    }
    out
}

/// The caller's line: the prompt through the echo path, plus noise and an
/// optional caller utterance starting at `caller_at` samples.
fn line(
    prompt: &[i16],
    erl_db: f32,
    rng: &mut Rng,
    caller: Option<(&[i16], usize)>,
    len: usize,
) -> Vec<i16> {
    let (lo, hi) = echo_delay_ms();
    let delay = rng.range(lo, hi + 1) * 16;
    let g = 10f32.powf(-erl_db / 20.0);
    let noise = noise(rng, len);
    let n_amp = 32768.0 * 10f32.powf(-60.0 / 20.0);
    (0..len)
        .map(|i| {
            let tap = |k: usize| {
                i.checked_sub(delay + k)
                    .and_then(|j| prompt.get(j))
                    .map_or(0.0, |&s| s as f32)
            };
            let echo = g * (0.5 * tap(0) + 0.3 * tap(1) + 0.2 * tap(2));
            let talk = caller.map_or(0.0, |(c, at)| {
                i.checked_sub(at)
                    .and_then(|j| c.get(j))
                    .map_or(0.0, |&s| s as f32)
            });
            (echo + talk + noise[i] * n_amp).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Echo path delay range in ms: `ECHO_DELAY_MS=lo-hi`, default 40-120.
fn echo_delay_ms() -> (usize, usize) {
    std::env::var("ECHO_DELAY_MS")
        .ok()
        .and_then(|v| {
            let (a, b) = v.split_once('-')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .unwrap_or((40, 120))
}

/// Runs the detector over one prompt's playout; returns the frame index of
/// the barge-in, if any.
fn run(vad: &mut Vad, prompt: &[i16], inbound: &[i16], echo_aware: bool) -> Option<usize> {
    vad.reset();
    let need = BARGE_IN_MIN_MS / FRAME_MS;
    let mut run = 0;
    for (k, frame) in inbound.chunks(FRAME_SAMPLES).enumerate() {
        let playing = prompt.get(k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES);
        let out_level = playing.map(dbfs);
        let v = vad.process(frame, if echo_aware { out_level } else { None });
        if playing.is_none() {
            break; // barge-in only counts while the prompt plays
        }
        run = if v.voiced { run + 1 } else { 0 };
        if run >= need {
            return Some(k);
        }
    }
    None
}

/// `--sweep`: the echo-check knobs against false barge-ins (echo −10 dB)
/// and delay (caller at −20 and −26 dBFS), gate + Silero.
fn sweep(prompts: &[Vec<i16>]) {
    println!("margin dB  tail ms  hold ms  false(-10 dB)  delay median/p90 @-20  @-26 (missed)");
    for margin in [6.0f32, 8.0] {
        for tail in [250u32, 400] {
            for hold in [100u32, 200] {
                let cfg = VadConfig {
                    echo_margin_db: margin,
                    echo_tail_ms: tail,
                    double_talk_hold_ms: hold,
                    ..VadConfig::default()
                };
                let mut vad = vad_with_silero(cfg);
                let mut rng = Rng::new(11);
                let false_barge = prompts
                    .iter()
                    .filter(|p| {
                        let inbound = line(p, 10.0, &mut rng, None, p.len());
                        run(&mut vad, p, &inbound, true).is_some()
                    })
                    .count();
                let mut cols = Vec::new();
                for caller_dbfs in [-20.0, -26.0] {
                    let (mut d, missed) = delays(&mut vad, prompts, caller_dbfs);
                    d.sort_by(|a, b| a.total_cmp(b));
                    let q = |f: f64| {
                        d.get(((d.len() as f64 - 1.0) * f).round() as usize)
                            .copied()
                            .unwrap_or(f64::NAN)
                    };
                    cols.push(format!("{:.0}/{:.0} ({missed})", q(0.5), q(0.9)));
                }
                println!(
                    "{margin:>9} {tail:>8} {hold:>8} {false_barge:>10} / {}  {:>20} {:>14}",
                    prompts.len(),
                    cols[0],
                    cols[1]
                );
            }
        }
    }
}

/// Detection delays (ms) with a caller over each prompt at `caller_dbfs`,
/// echo −10 dB; and how many were missed or fired before the caller spoke.
fn delays(vad: &mut Vad, prompts: &[Vec<i16>], caller_dbfs: f32) -> (Vec<f64>, usize) {
    let mut rng = Rng::new(23);
    let mut out = Vec::new();
    let mut missed = 0;
    for (i, p) in prompts.iter().enumerate() {
        let voice = CALLER_VOICES[i % CALLER_VOICES.len()];
        let mut c = pad_frames(synth(voice, &[], SENTENCES[i % SENTENCES.len()]));
        let l = labels(&c);
        normalise(&mut c, &l, caller_dbfs);
        let onset_frame = l.iter().position(|&v| v).unwrap_or(0);
        let at = rng.range(15, 51) * FRAME_SAMPLES;
        let mut p = p.clone();
        p.resize(p.len().max(at + 75 * FRAME_SAMPLES), 0);
        let inbound = line(&p, 10.0, &mut rng, Some((&c, at)), p.len());
        let onset = at / FRAME_SAMPLES + onset_frame;
        match run(vad, &p, &inbound, true) {
            Some(k) if k + 1 >= onset => out.push(((k + 1 - onset) * FRAME_MS) as f64),
            _ => missed += 1,
        }
    }
    (out, missed)
}

fn main() {
    let prompts = prompts();
    if std::env::args().any(|a| a == "--sweep") {
        sweep(&prompts);
        return;
    }
    println!(
        "{} prompts, {:.0} s of bot audio; barge-in = {BARGE_IN_MIN_MS} ms of consecutive voiced frames",
        prompts.len(),
        prompts.iter().map(|p| p.len()).sum::<usize>() as f64 / 16000.0
    );
    let mut detectors: Vec<(&str, Vad, bool)> = vec![
        (
            "gate + Silero, echo check",
            vad_with_silero(VadConfig::default()),
            true,
        ),
        (
            "gate alone, echo check",
            Vad::new(VadConfig::default()),
            true,
        ),
        (
            "gate + Silero, no echo check",
            vad_with_silero(VadConfig::default()),
            false,
        ),
    ];

    println!(
        "\n== echo alone (no caller speech, echo delay {:?} ms): false barge-ins",
        echo_delay_ms()
    );
    for erl in [6.0, 10.0, 20.0] {
        for (name, vad, aware) in detectors.iter_mut() {
            let mut rng = Rng::new(11);
            let mut false_barge = 0;
            for p in &prompts {
                let inbound = line(p, erl, &mut rng, None, p.len());
                false_barge += run(vad, p, &inbound, *aware).is_some() as usize;
            }
            println!(
                "echo -{erl} dB  {name:<30} {false_barge:>3} / {} ({:.1} %)",
                prompts.len(),
                100.0 * false_barge as f64 / prompts.len() as f64
            );
        }
    }

    println!(
        "\n== caller talking over the prompt (echo -10 dB): detection delay from caller onset"
    );
    for caller_dbfs in [-20.0, -26.0] {
        for (name, vad, aware) in detectors.iter_mut() {
            let mut rng = Rng::new(23);
            let mut delays = Vec::new();
            let mut missed = 0;
            let mut early = 0;
            for (i, p) in prompts.iter().enumerate() {
                let voice = CALLER_VOICES[i % CALLER_VOICES.len()];
                let mut c = pad_frames(synth(voice, &[], SENTENCES[i % SENTENCES.len()]));
                let l = labels(&c);
                normalise(&mut c, &l, caller_dbfs);
                let onset_frame = l.iter().position(|&v| v).unwrap_or(0);
                // The caller starts 0.3–1.0 s into the prompt; the prompt
                // keeps playing at least 1.5 s past that (padded if short).
                let at = rng.range(15, 51) * FRAME_SAMPLES;
                let mut p = p.clone();
                p.resize(p.len().max(at + 75 * FRAME_SAMPLES), 0);
                let inbound = line(&p, 10.0, &mut rng, Some((&c, at)), p.len());
                let onset = at / FRAME_SAMPLES + onset_frame;
                match run(vad, &p, &inbound, *aware) {
                    Some(k) if k + 1 >= onset => delays.push(((k + 1 - onset) * FRAME_MS) as f64),
                    Some(_) => early += 1,
                    None => missed += 1,
                }
            }
            delays.sort_by(|a, b| a.total_cmp(b));
            let q = |f: f64| {
                delays
                    .get(((delays.len() as f64 - 1.0) * f).round() as usize)
                    .copied()
                    .unwrap_or(f64::NAN)
            };
            println!(
                "caller {caller_dbfs} dBFS  {name:<30} detected {:>3}, missed {missed}, before onset {early}; delay ms median {:.0}, p90 {:.0}, max {:.0}",
                delays.len(),
                q(0.5),
                q(0.9),
                q(1.0)
            );
        }
    }
}
