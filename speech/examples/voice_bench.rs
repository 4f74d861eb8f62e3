//! How fast the embedded voices are: Piper's session load, then for typical
//! bot replies the time to the first audio, the total synthesis time and
//! the real-time factor (synthesis time / audio time), for Piper and for
//! the espeak-ng fallback; then two Piper syntheses at once.
//!
//! `cargo run --release -p echo-speech --example voice_bench [MODELS_DIR]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use echo_speech::espeak::EspeakSynthesizer;
use echo_speech::piper::{PiperSynthesizer, DEFAULT_VOICE_FILE};
use echo_speech::Synthesizer;

const REPLIES: &[&str] = &[
    "Thanks. What is your date of birth?",
    "Thanks, Susan. What is your date of birth?",
    "Which doctor would you like to see?",
    "I have you down with Dr. Chidi Okafor on Wednesday, December 9th at 2 PM. Shall I book it?",
    "Hello, you have reached the clinic. How can I help you today?",
    "Could you spell your last name for me, please?",
    "Sorry, I didn't catch that. Could you say it again?",
    "What medication would you like to refill?",
    "Is that Metformin, 500 milligrams?",
    "The earliest appointment is Monday at 9:30 AM.",
    "Your appointment is booked. You will get a text message shortly.",
    "Would you prefer a morning or an afternoon appointment?",
    "Let me check the schedule. One moment, please.",
    "Is there anything else I can help you with?",
    "Thank you for calling. Goodbye.",
];

struct Run {
    first_audio: Duration,
    total: Duration,
    audio_secs: f64,
    peak: i16,
}

fn speak(voice: &dyn Synthesizer, text: &str) -> Run {
    let start = Instant::now();
    let mut first_audio = None;
    let mut samples = 0usize;
    let mut peak = 0i16;
    voice
        .synthesize(text, &mut |pcm| {
            first_audio.get_or_insert_with(|| start.elapsed());
            samples += pcm.len();
            peak = pcm.iter().fold(peak, |p, &s| p.max(s.saturating_abs()));
            true
        })
        .expect("synthesis");
    let total = start.elapsed();
    Run {
        first_audio: first_audio.unwrap_or(total),
        total,
        audio_secs: samples as f64 / f64::from(voice.sample_rate()),
        peak,
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let i = ((values.len() - 1) as f64 * p).round() as usize;
    values[i]
}

/// CPU seconds this process has used (Linux: utime + stime, in ticks of
/// 10 ms), to tell "ran in parallel" from "waited for a core".
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(voice: &dyn Synthesizer) {
    // The first inference after loading pays for allocations: shown apart.
    let warm = speak(voice, "Hello.");
    println!(
        "{}: first synthesis after load {:.0} ms",
        voice.name(),
        ms(warm.total)
    );
    let cpu = cpu_secs();
    let runs: Vec<Run> = REPLIES.iter().map(|text| speak(voice, text)).collect();
    let cpu = cpu_secs() - cpu;
    for (text, run) in REPLIES.iter().zip(&runs) {
        println!(
            "  first {:>5.0} ms  total {:>5.0} ms  audio {:>5.2} s  rtf {:.3}  peak {:>5}  {text}",
            ms(run.first_audio),
            ms(run.total),
            run.audio_secs,
            run.total.as_secs_f64() / run.audio_secs,
            run.peak
        );
    }
    let mut first: Vec<f64> = runs.iter().map(|r| ms(r.first_audio)).collect();
    let mut total: Vec<f64> = runs.iter().map(|r| ms(r.total)).collect();
    let mut rtf: Vec<f64> = runs
        .iter()
        .map(|r| r.total.as_secs_f64() / r.audio_secs)
        .collect();
    let audio: f64 = runs.iter().map(|r| r.audio_secs).sum();
    let busy: f64 = runs.iter().map(|r| r.total.as_secs_f64()).sum();
    println!(
        "  {}: first audio p50 {:.0} ms p90 {:.0} ms; total p50 {:.0} ms p90 {:.0} ms; \
         rtf p50 {:.3} p90 {:.3}; overall rtf {:.3} ({:.1} s audio), by CPU time {:.3}",
        voice.name(),
        percentile(&mut first, 0.5),
        percentile(&mut first, 0.9),
        percentile(&mut total, 0.5),
        percentile(&mut total, 0.9),
        percentile(&mut rtf, 0.5),
        percentile(&mut rtf, 0.9),
        busy / audio,
        audio,
        cpu / audio
    );
}

fn main() {
    let models = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"));

    let start = Instant::now();
    let piper = PiperSynthesizer::load(&models.join(DEFAULT_VOICE_FILE)).expect("Piper voice");
    println!(
        "piper: load (first session) {:.0} ms ({piper:?})",
        ms(start.elapsed())
    );
    // The other sessions load in the background; measure once they are
    // all there, so that the loader does not take the CPU from the runs.
    let load_returned = Instant::now();
    while piper.sessions() < 2 && load_returned.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "  second session ready {:.0} ms after load returned ({} loaded)",
        ms(load_returned.elapsed()),
        piper.sessions()
    );
    report(&piper);

    // Two calls speaking at once, one session each.
    let (start, cpu) = (Instant::now(), cpu_secs());
    let audio: f64 = std::thread::scope(|scope| {
        let workers: Vec<_> = [0, 1]
            .map(|offset| {
                let piper = &piper;
                scope.spawn(move || {
                    REPLIES
                        .iter()
                        .skip(offset)
                        .step_by(2)
                        .map(|text| speak(piper, text).audio_secs)
                        .sum::<f64>()
                })
            })
            .into_iter()
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).sum()
    });
    let wall = start.elapsed().as_secs_f64();
    println!(
        "  two at once: {:.1} s audio in {:.2} s wall (rtf {:.3} for the pair), {:.2} s CPU",
        audio,
        wall,
        wall / audio,
        cpu_secs() - cpu
    );

    let start = Instant::now();
    let espeak = EspeakSynthesizer::default_voice().expect("libespeak-ng");
    println!("espeak-ng: init {:.0} ms", ms(start.elapsed()));
    report(&espeak);
}
