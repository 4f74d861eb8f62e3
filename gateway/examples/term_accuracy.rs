//! Whisper tiny.en's word error rate and clinic-term accuracy on the caller
//! lines of the development scenarios, through the 8 kHz telephone band, raw
//! and after the dialogue's vocabulary correction.
//!
//! ```text
//! cargo run --release -p echo-gateway --example term_accuracy [SCENARIO_DIR]
//! ```
//!
//! `SCENARIO_DIR` defaults to `../shared/data/scenarios`; the vocabulary is
//! read from `SCENARIO_DIR/../clinic` (as the gateway's `vocabulary_dir`), the
//! model from `$ECHO_MODELS_DIR/whisper-tiny.en` (`models` by default).
//! `VERBOSE=1` prints every line. Needs `flite` (voice slt) and `sox`.
//!
//! - Lines: each scenario's `opening`, every `[answers]` value and
//!   `[confirm].say` if present.
//! - Expected terms of a line: the scenario's `[expect]` provider, specialty
//!   and medication (canonical names) that the line says, i.e. some run of
//!   1–4 of its words is the canonical name or a lexicon alias of that term
//!   (`Lexicon::find`: full name, surname, brand name, specialty alias such
//!   as "heart doctor"). Known mishearings (confusions.txt) are not aliases.
//! - Audio: `flite -voice slt` (16 kHz), then with sox 16 kHz → 8 kHz G.711
//!   μ-law → 16 kHz signed 16-bit, as a call hears it.
//! - Recognition: `WhisperRecognizer` with `WhisperOptions::default()` (the
//!   gateway's default: the padded short window). "unbiased" decodes with
//!   no bias; "slot-biased" decodes each answer with the gateway's bias for
//!   its slot (`voice::bias_for` with `Expecting::Slot(key)`), the opening
//!   and the confirmation with none (as the gateway, which asks no slot then).
//! - Correction: `flow.corrector.correct(raw, kind)` as `Dialogue::handle`
//!   calls it: the asked slot's term kind (provider, specialty, medication)
//!   as the hint, none for the opening and the confirmation, and no
//!   correction at all for a person's name.
//! - WER: words lower-cased, punctuation turned into spaces (apostrophes
//!   dropped); numbers are left as is, so "9 a.m." against "nine a m" is an
//!   error. nWER also spells numbers out ("22nd" → "twenty second", "1970" →
//!   "nineteen seventy", "9:00" → "nine"), "dr" → "doctor", "am"/"pm" →
//!   "a m"/"p m".
//! - Term accuracy: the fraction of expected terms whose canonical name is in
//!   the text (as whole words, any case); in the raw text an alias spelling
//!   counts too. "found" also counts a term the corrector reports
//!   (`Corrected::terms`) without rewriting it: an exact alias ("Dr. Patel",
//!   "dermatologist") is left as said, so "corr" alone understates what the
//!   dialogue gets. False corrections: terms the corrector changed words into
//!   that the line does not say.

use echo_speech::wer::{normal_words, word_errors, words};
use std::path::{Path, PathBuf};
use std::process::Command;

use echo_dialogue::flow::SlotKind;
use echo_dialogue::{Corrected, Expecting, Flow, Lexicon, TermKind};
use echo_gateway::voice::bias_for;
use echo_speech::whisper::{WhisperOptions, WhisperRecognizer};
use echo_speech::{Bias, Recognizer};

/// One thing a caller says.
struct Line {
    scenario: String,
    /// The slot it answers; `None` for the opening and the confirmation.
    slot: Option<String>,
    text: String,
    /// Canonical names of the terms it says.
    expected: Vec<String>,
    /// 16 kHz audio after the phone band.
    pcm: Vec<i16>,
}

#[derive(Default)]
struct Tally {
    lines: usize,
    words: usize,
    errors: usize,
    n_words: usize,
    n_errors: usize,
    terms: usize,
    raw_hits: usize,
    corrected_hits: usize,
    found_hits: usize,
    false_corrections: usize,
}

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/data/scenarios".to_owned()),
    );
    let clinic = dir.join("../clinic");
    let flow = Flow::clinic()
        .with_vocabulary_from(|p| std::fs::read_to_string(clinic.join(p)))
        .unwrap_or_else(|e| panic!("vocabulary in {}: {e}", clinic.display()));
    let verbose = std::env::var_os("VERBOSE").is_some_and(|v| v != "0");

    let work = std::env::temp_dir().join(format!("term_accuracy-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("temporary folder");
    let mut lines = scenario_lines(&dir, flow.lexicon());
    for line in &mut lines {
        line.pcm = phone_audio(&work, &line.text);
    }
    let _ = std::fs::remove_dir_all(&work);

    let models =
        std::env::var_os("ECHO_MODELS_DIR").map_or_else(|| PathBuf::from("models"), PathBuf::from);
    let model_dir = models.join("whisper-tiny.en");
    let recognizer = WhisperRecognizer::load(&model_dir, WhisperOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", model_dir.display()));

    let seconds: f64 = lines.iter().map(|l| l.pcm.len() as f64 / 16_000.0).sum();
    println!(
        "{} caller lines from {} ({:.1} s of flite slt audio through 8 kHz μ-law), {} expected terms",
        lines.len(),
        dir.display(),
        seconds,
        lines.iter().map(|l| l.expected.len()).sum::<usize>()
    );

    let mut tallies = Vec::new();
    let mut unbiased_text: Vec<String> = Vec::new();
    for biased in [false, true] {
        let label = if biased { "slot-biased" } else { "unbiased" };
        if verbose {
            println!("\n== {label}");
        }
        let mut t = Tally::default();
        for (i, line) in lines.iter().enumerate() {
            let bias = match (&line.slot, biased) {
                (Some(slot), true) => bias_for(&flow, &Expecting::Slot(slot.clone())),
                _ => Bias::none(),
            };
            // Without a bias the decode is the unbiased one: not repeated.
            let raw = if biased && bias.is_empty() {
                unbiased_text[i].clone()
            } else {
                recognizer
                    .transcribe(&line.pcm, &bias)
                    .unwrap_or_else(|e| panic!("recognising {:?}: {e}", line.text))
                    .text
            };
            let corrected = correct(&flow, line.slot.as_deref(), &raw);
            tally(&mut t, line, &raw, &corrected, flow.lexicon(), verbose);
            if !biased {
                unbiased_text.push(raw);
            }
        }
        tallies.push((label, t));
    }

    println!(
        "\n{:12} {:>5} {:>5} {:>6} {:>6} {:>5}  {:>17}  {:>9}  {:>11}",
        "recognition",
        "lines",
        "words",
        "WER",
        "nWER",
        "terms",
        "term acc raw→corr",
        "found",
        "false corr."
    );
    for (label, t) in &tallies {
        println!(
            "{:12} {:>5} {:>5} {:>5.1}% {:>5.1}% {:>5}  {:>6.1}% → {:>6.1}%  {:>8.1}%  {:>11}",
            label,
            t.lines,
            t.words,
            pct(t.errors, t.words),
            pct(t.n_errors, t.n_words),
            t.terms,
            pct(t.raw_hits, t.terms),
            pct(t.corrected_hits, t.terms),
            pct(t.found_hits, t.terms),
            t.false_corrections
        );
    }
    println!(
        "\nWER: lower case, punctuation removed, numbers as written; nWER: numbers spelled out. \
         Terms: canonical name in the text (raw: or an alias).\n\
         found: in the corrected text or among the corrector's terms (exact alias mentions such \
         as \"Dr. Patel\" are found but left as said)."
    );
}

fn pct(n: usize, d: usize) -> f64 {
    100.0 * n as f64 / d.max(1) as f64
}

/// The dialogue's correction of one turn, as `Dialogue::handle` does it.
fn correct(flow: &Flow, slot: Option<&str>, raw: &str) -> Corrected {
    let kind = slot.and_then(|s| flow.slots.get(s)).map(|s| s.kind);
    let hint = match kind {
        Some(SlotKind::PersonName) => {
            return Corrected {
                text: raw.to_owned(),
                ..Corrected::default()
            }
        }
        Some(SlotKind::Provider) => Some(TermKind::Provider),
        Some(SlotKind::Specialty) => Some(TermKind::Specialty),
        Some(SlotKind::Medication) => Some(TermKind::Medication),
        _ => None,
    };
    flow.corrector.correct(raw, hint)
}

fn tally(
    t: &mut Tally,
    line: &Line,
    raw: &str,
    corrected: &Corrected,
    lx: &Lexicon,
    verbose: bool,
) {
    let reference = words(&line.text);
    let heard = words(raw);
    let errors = word_errors(&reference, &heard);
    let n_reference = normal_words(&line.text);
    let n_errors = word_errors(&n_reference, &normal_words(raw));
    t.lines += 1;
    t.words += reference.len();
    t.errors += errors;
    t.n_words += n_reference.len();
    t.n_errors += n_errors;
    let mut missed = Vec::new();
    for term in &line.expected {
        t.terms += 1;
        let id = lx.by_canonical(term);
        let in_raw = has_words(raw, term) || id.is_some_and(|id| says(lx, raw).contains(&id));
        if in_raw {
            t.raw_hits += 1;
        }
        let in_text = has_words(&corrected.text, term);
        if in_text {
            t.corrected_hits += 1;
        }
        if in_text || corrected.terms.iter().any(|c| &c.to == term) {
            t.found_hits += 1;
        } else {
            missed.push(term.as_str());
        }
    }
    let false_corrections: Vec<String> = corrected
        .changes()
        .filter(|c| !line.expected.contains(&c.to))
        .map(|c| format!("{:?}→{}", c.from, c.to))
        .collect();
    t.false_corrections += false_corrections.len();
    if verbose {
        println!(
            "{} [{}] {:?}\n    heard {:?} ({} errors, {} normalised)\n    corrected {:?}{}{}",
            line.scenario,
            line.slot.as_deref().unwrap_or("-"),
            line.text,
            raw,
            errors,
            n_errors,
            corrected.text,
            if line.expected.is_empty() {
                String::new()
            } else {
                format!("\n    terms {:?}, missed {:?}", line.expected, missed)
            },
            if false_corrections.is_empty() {
                String::new()
            } else {
                format!("\n    FALSE {false_corrections:?}")
            },
        );
    }
}

/// The callers' lines of every scenario file in `dir`, with their expected terms.
fn scenario_lines(dir: &Path, lx: &Lexicon) -> Vec<Line> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("scenario readable");
        let table: toml::Table =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let scenario = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let str_of =
            |t: &toml::Table, k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let empty = toml::Table::new();
        let section = |k: &str| table.get(k).and_then(|v| v.as_table()).unwrap_or(&empty);
        let terms: Vec<String> = ["provider", "specialty", "medication"]
            .iter()
            .filter_map(|k| str_of(section("expect"), k))
            .collect();
        let mut said: Vec<(Option<String>, String)> = Vec::new();
        if let Some(opening) = str_of(&table, "opening") {
            said.push((None, opening));
        }
        for (slot, value) in section("answers") {
            if let Some(v) = value.as_str() {
                said.push((Some(slot.clone()), v.to_owned()));
            }
        }
        if let Some(say) = str_of(section("confirm"), "say") {
            said.push((None, say));
        }
        for (slot, text) in said {
            let mentioned = says(lx, &text);
            let expected = terms
                .iter()
                .filter(|t| lx.by_canonical(t).is_some_and(|id| mentioned.contains(&id)))
                .cloned()
                .collect();
            lines.push(Line {
                scenario: scenario.clone(),
                slot,
                text,
                expected,
                pcm: Vec::new(),
            });
        }
    }
    lines
}

/// The terms some run of 1–4 words of `text` names exactly (canonical or alias).
fn says(lx: &Lexicon, text: &str) -> Vec<u32> {
    let ws: Vec<&str> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .collect();
    let mut found = Vec::new();
    for i in 0..ws.len() {
        for n in 1..=4.min(ws.len() - i) {
            if let Some(id) = lx.find(&ws[i..i + n].join(" ")) {
                if !found.contains(&id) {
                    found.push(id);
                }
            }
        }
    }
    found
}

/// Whether `term`'s words occur, in a row, among `text`'s words.
fn has_words(text: &str, term: &str) -> bool {
    let (text, term) = (words(text), words(term));
    !term.is_empty() && text.windows(term.len()).any(|w| w == term.as_slice())
}

/// `flite -voice slt` → 8 kHz μ-law → 16 kHz, with sox; 16-bit samples.
fn phone_audio(work: &Path, text: &str) -> Vec<i16> {
    let (wide, narrow, back) = (
        work.join("f.wav"),
        work.join("f8.wav"),
        work.join("f16.raw"),
    );
    run(Command::new("flite")
        .args(["-voice", "slt", "-t", text, "-o"])
        .arg(&wide));
    run(Command::new("sox")
        .arg(&wide)
        .args(["-r", "8000", "-e", "u-law"])
        .arg(&narrow));
    run(Command::new("sox")
        .arg(&narrow)
        .args([
            "-r", "16000", "-e", "signed", "-b", "16", "-c", "1", "-t", "raw",
        ])
        .arg(&back));
    let bytes = std::fs::read(&back).expect("sox output");
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()));
    assert!(status.success(), "{cmd:?}: {status}");
}
