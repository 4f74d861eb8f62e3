//! Cost and accuracy of the Whisper recogniser on the caller lines of the
//! development scenarios, spoken by espeak-ng or flite:
//!
//! ```text
//! cargo run --release -p echo-speech --example whisper_bench [SCENARIO_DIR] [N]
//! SHORT=1 VOICE=flite:slt CONFIGS="full; fit; default,bias" \
//!     cargo run --release -p echo-speech --example whisper_bench -- /work/shared/data/scenarios 40
//! ```
//!
//! SCENARIO_DIR defaults to /work/shared/data/scenarios (its `*.toml` are
//! read at run time), N (utterances) to 20. Prints per-configuration p50/p90
//! of the mel and decode times, and word error rates: `WER` on the words as
//! written (case and punctuation count), `nWER` normalised (lower case, no
//! punctuation, numbers as spoken words, "Dr." = "doctor").
//!
//! - `CONFIGS`: the configurations, `;`-separated (see [`parse_config`]);
//!   each starts from plain greedy decoding of the full window, `default`
//!   is `WhisperOptions::default()`.
//! - `VOICE`: `espeak` (the default: espeak-ng `en-us+f3`) or `flite:NAME`
//!   (`flite:slt`, `flite:awb`…, what the scripted caller speaks with).
//! - `SHORT=1`: one-word answers ("yes") too.
//! - `ONLY=fit` runs only the configurations whose label holds "fit";
//!   `VERBOSE=1` prints each transcript.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use echo_speech::wer::{self, normal_words};
use echo_speech::whisper::{EncoderWindow, Precision, WhisperOptions, WhisperRecognizer};
use echo_speech::Bias;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "/work/shared/data/scenarios".to_owned()),
    );
    let n: usize = args
        .next()
        .map_or(20, |n| n.parse().expect("N is a number"));
    let lines = caller_lines(&dir, n);
    let medications = medications(&dir.join("../clinic/medications.txt"));
    println!("{} utterances from {}", lines.len(), dir.display());

    let voice = std::env::var("VOICE").unwrap_or_else(|_| "espeak".to_owned());
    let clean: Vec<Vec<i16>> = lines
        .iter()
        .map(|l| support::speak_as(&voice, l, false))
        .collect();
    let phone: Vec<Vec<i16>> = lines
        .iter()
        .map(|l| support::speak_as(&voice, l, true))
        .collect();
    let seconds: f64 = clean.iter().map(|p| p.len() as f64 / 16_000.0).sum::<f64>();
    println!(
        "voice {voice}; audio: {:.1} s in all, {:.1} s an utterance on average\n",
        seconds,
        seconds / lines.len() as f64
    );

    let bias = Bias::terms(medications);
    // CONFIGS="full;fit,rp=1.2;pad=8,nr=3,collapse": see parse_config.
    let configs = std::env::var("CONFIGS").unwrap_or_else(|_| DEFAULT_CONFIGS.to_owned());
    let runs: Vec<(String, WhisperOptions, &Vec<Vec<i16>>, bool)> = configs
        .split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|label| {
            let (options, wide, biased) = parse_config(label);
            (
                label.to_owned(),
                options,
                if wide { &clean } else { &phone },
                biased,
            )
        })
        .collect();
    println!(
        "{:36} {:>6} {:>7} {:>7} {:>8} {:>8} {:>6} {:>6}",
        "configuration (8 kHz unless 16k)",
        "load",
        "mel50",
        "mel90",
        "dec50",
        "dec90",
        "WER",
        "nWER"
    );
    // ONLY=TEXT runs just the configurations whose label holds TEXT.
    let only = std::env::var("ONLY").ok();
    let wanted = |label: &str| only.as_deref().is_none_or(|o| label.contains(o));
    for (label, options, audio, biased) in runs {
        if !wanted(&label) {
            continue;
        }
        let started = Instant::now();
        let model = match WhisperRecognizer::load(&support::model_dir(), options) {
            Ok(m) => m,
            Err(e) => {
                println!("{label:36} load failed: {e}");
                continue;
            }
        };
        let load = started.elapsed();
        let bias = if biased { bias.clone() } else { Bias::none() };
        let mut mel = Vec::new();
        let mut decode = Vec::new();
        let (mut errors, mut words) = (0, 0);
        let (mut n_errors, mut n_words) = (0, 0);
        let mut failed = None;
        for (line, pcm) in lines.iter().zip(audio.iter()) {
            match model.transcribe_timed(pcm, &bias) {
                Ok((heard, timing)) => {
                    mel.push(timing.mel);
                    decode.push(timing.decode);
                    let reference = raw_words(line);
                    errors += wer::word_errors(&reference, &raw_words(&heard.text));
                    words += reference.len();
                    let reference = normal_words(line);
                    n_errors += wer::word_errors(&reference, &normal_words(&heard.text));
                    n_words += reference.len();
                    if std::env::var_os("VERBOSE").is_some() {
                        println!("  {line:?} -> {:?} {:?}", heard.text, heard.confidence);
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            println!("{label:36} failed: {e}");
            continue;
        }
        println!(
            "{label:36} {:>5.2}s {:>6.1}ms {:>6.1}ms {:>7.0}ms {:>7.0}ms {:>5.1}% {:>5.1}%",
            load.as_secs_f64(),
            ms(percentile(&mut mel, 0.5)),
            ms(percentile(&mut mel, 0.9)),
            ms(percentile(&mut decode, 0.5)),
            ms(percentile(&mut decode, 0.9)),
            100.0 * errors as f64 / words.max(1) as f64,
            100.0 * n_errors as f64 / n_words.max(1) as f64
        );
    }

    // Two calls at once: two worker threads on one recogniser with two
    // replicas (the default) against one replica.
    for replicas in [1, 2] {
        // Only with the default configurations (or ONLY=workers).
        if !wanted("2 workers") || (only.is_none() && std::env::var_os("CONFIGS").is_some()) {
            continue;
        }
        let model = Arc::new(
            WhisperRecognizer::load(
                &support::model_dir(),
                WhisperOptions {
                    replicas,
                    ..WhisperOptions::default()
                },
            )
            .expect("model loads"),
        );
        let phone = Arc::new(phone.clone());
        let started = Instant::now();
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (model, phone) = (Arc::clone(&model), Arc::clone(&phone));
                std::thread::spawn(move || {
                    for pcm in phone.iter().skip(w).step_by(2) {
                        model.transcribe_timed(pcm, &Bias::none()).expect("decodes");
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }
        let wall = started.elapsed();
        println!(
            "2 workers, {replicas} replica(s) × 1 thread: {} utterances in {:.1} s wall ({:.0} ms each)",
            phone.len(),
            wall.as_secs_f64(),
            ms(wall) / phone.len() as f64
        );
    }
}

/// The configurations measured when `CONFIGS` is not set.
const DEFAULT_CONFIGS: &str =
    "full,16k; full; full,bias; full,threads=2; full,f32; pad=3; fit; default; default,bias";

/// A configuration label's options, whether it hears 16 kHz audio (not the
/// phone band), and whether biased: a `,` list of `default` | `full` |
/// `fit` | `pad=SECONDS` | `beam=N` | `rp=PENALTY` | `nr=NGRAM` |
/// `tps=TOKENS` | `collapse` | `threads=N` | `f32` | `bias` | `16k`.
fn parse_config(label: &str) -> (WhisperOptions, bool, bool) {
    // Plain greedy decoding unless the label says otherwise.
    let mut options = WhisperOptions {
        replicas: 1,
        encoder_window: EncoderWindow::Full,
        repetition_penalty: 1.0,
        collapse_repeats: false,
        ..WhisperOptions::default()
    };
    let (mut wide, mut biased) = (false, false);
    for item in label.split(',').map(str::trim) {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        let number = || -> f64 {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{item}: a number after ="))
        };
        match key {
            "default" => {
                options = WhisperOptions {
                    replicas: 1,
                    ..WhisperOptions::default()
                }
            }
            "full" => options.encoder_window = EncoderWindow::Full,
            "fit" => options.encoder_window = EncoderWindow::Fit,
            "pad" => {
                options.encoder_window = EncoderWindow::Padded(Duration::from_secs_f64(number()))
            }
            "beam" => options.beam_size = number() as usize,
            "rp" => options.repetition_penalty = number() as f32,
            "nr" => options.no_repeat_ngram_size = number() as usize,
            "tps" => options.tokens_per_second = number() as usize,
            "collapse" => options.collapse_repeats = true,
            "threads" => options.intra_threads = number() as usize,
            "f32" => options.precision = Precision::Float32,
            "bias" => biased = true,
            "16k" => wide = true,
            other => panic!("{other}: unknown in CONFIGS"),
        }
    }
    (options, wide, biased)
}

/// Words as written: split at white space, case and punctuation kept.
fn raw_words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(values: &mut [Duration], p: f64) -> Duration {
    values.sort();
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(i).copied().unwrap_or_default()
}

/// The callers' lines (`opening`, `[answers]` and `[confirm]` values) of
/// the scenario files, first `n` distinct ones of two words or more.
fn caller_lines(dir: &Path, n: usize) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    // SHORT=1 keeps one-word answers ("yes") too.
    let min_words = if std::env::var_os("SHORT").is_some() {
        1
    } else {
        2
    };
    let mut lines: Vec<String> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("scenario readable");
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let spoken = match section.as_str() {
                "" => key.trim() == "opening",
                "answers" | "confirm" => true,
                _ => false,
            };
            let value = value.trim().trim_matches('"');
            if spoken
                && value.split_whitespace().count() >= min_words
                && !lines.iter().any(|l| l == value)
            {
                lines.push(value.to_owned());
            }
        }
    }
    lines.truncate(n);
    lines
}

/// The generic names in medications.txt, for a bias.
fn medications(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next())
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect()
}
