//! Whisper tiny.en in-process through CTranslate2 (`ct2rs`, linked against
//! the `ctranslate2` wheel's library in `models/lib`).
//!
//! ```text
//! pcm 16 kHz ─▶ LogMel (80 × frames) ─▶ ct2 Whisper::generate(prompt) ─▶ tokens ─▶ text
//!                                     prompt = [<|startofprev|> bias…] <|startoftranscript|> <|notimestamps|>
//! ```
//!
//! One [`WhisperRecognizer`] is loaded once and shared by every call: it
//! holds a CTranslate2 replica pool ([`WhisperOptions::replicas`] copies of
//! the model, each with its own threads), so that many decodes run in
//! parallel and further ones queue inside CTranslate2.

mod mel;
mod tokenizer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ct2rs::sys::{self as ct2, ComputeType, Config, Device, StorageView};

pub use mel::{LogMel, FULL_FRAMES, HOP, N_MELS, SAMPLE_RATE};
use tokenizer::Tokenizer;

use crate::{Bias, RecognitionStream, Recognizer, SpeechError, Transcript};

const ENGINE: &str = "whisper";
const HINT: &str = "run scripts/fetch-models.sh";
/// The decoder's context is 448 tokens; Whisper keeps the previous-text
/// prompt to less than half of it.
const MAX_PROMPT_TOKENS: usize = 223;
/// Output tokens allowed for any utterance, plus [`TOKENS_PER_SECOND`] per
/// second of audio: fast speech is about 3.5 words (4.5 tokens) a second.
/// The cap stops the decoder's repetition loops ("November, November, …"
/// to 448 tokens), which cost seconds and made the text useless anyway.
const BASE_TOKENS: usize = 16;
/// See [`BASE_TOKENS`].
const TOKENS_PER_SECOND: usize = 6;
/// Silence after the utterance in an [`EncoderWindow::Fit`] window: 8 s.
/// Measured with `whisper_bench` (40 scenario lines, 1.9 s each on
/// average, flite `slt` through 8 kHz, normalised WER; the full window
/// 19.9 %): 3 s 92.6 % (the utterance repeated), 5 s 58.5 %, 7 s 27.8 %,
/// 8 s 22.7 %, 10 s 24.4 % (10 s was best with espeak-ng, 8 s about
/// equal to the full window there); the decode costs a fifth to a quarter
/// of the full window's at 8 s: p50/p90 ≈ 170–220/240–310 ms against
/// ≈ 1000–1080/1130–1310 ms on a busy 2-core machine.
const FIT_PAD_FRAMES: usize = 800;
/// [`WhisperOptions::repetition_penalty`]'s default: with the bias prompt
/// and the short window the decoder otherwise loops on names ("Dr.
/// Goldberg, Dr. Goldberg, …"): WER 52.8 % → 33.0 % (full window 28.4 %);
/// without a bias it changes little (22.7 % both with flite `slt`, 55.7 %
/// → 51.1 % with espeak-ng; full window 19.9 % → 18.8 % with `slt`).
const REPETITION_PENALTY: f32 = 1.2;
/// The decoder's context, prompt included.
const MAX_DECODER_TOKENS: usize = 448;

/// The numeric precision the model runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 8-bit integer weights: the fastest on CPU.
    #[default]
    Int8,
    /// 32-bit floats.
    Float32,
    /// Whatever the model file holds (float16 here, computed as float32 on CPU).
    ModelDefault,
}

/// How many mel frames the encoder sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncoderWindow {
    /// Always the model's 30 s (3000 frames), padded with silence: what it
    /// was trained on. The most accurate, and ≈ 1.1 s a decode on one
    /// thread whatever the utterance's length.
    Full,
    /// The utterance plus 8 s of silence (at most 30 s). CTranslate2 4.8
    /// accepts windows under 3000 frames and the encoder's cost follows the
    /// frames: a 1–4 s utterance decodes in ≈ 0.2–0.4 s. tiny.en was trained
    /// on 30 s windows only: with less silence it loses accuracy fast and
    /// repeats the utterance ("Yes. Yes. Yes."); with 8 s, together with
    /// the default [`WhisperOptions::repetition_penalty`] and
    /// [`WhisperOptions::collapse_repeats`], its normalised WER on
    /// `whisper_bench` through 8 kHz is within 3 points of `Full`'s
    /// (flite `slt` 22.7 % against 19.9 %, `awb` 25.6 % against 24.4 %,
    /// espeak-ng 51.7 % against 55.7 %; with the bias prompt within 5).
    ///
    /// The log-mel is normalised to the loudest frame, and padding frames
    /// are silence (the floor), so the utterance's features are the same as
    /// in `Full`: only the window's length differs.
    #[default]
    Fit,
    /// The utterance plus this much silence (rounded to 10 ms frames; the
    /// window never exceeds 30 s): `Fit` is `Padded(8 s)`. For measuring.
    Padded(Duration),
}

impl EncoderWindow {
    /// Mel frames of the window for `samples` of 16 kHz audio: whole frames
    /// plus the padding, even (the encoder's convolution halves it).
    fn frames(self, samples: usize) -> usize {
        let pad = match self {
            EncoderWindow::Full => return FULL_FRAMES,
            EncoderWindow::Fit => FIT_PAD_FRAMES,
            EncoderWindow::Padded(pad) => (pad.as_millis() / 10) as usize,
        };
        (samples.div_ceil(HOP) + pad)
            .next_multiple_of(2)
            .min(FULL_FRAMES)
    }
}

/// How to load and run the model.
#[derive(Debug, Clone, PartialEq)]
pub struct WhisperOptions {
    /// Weights' precision.
    pub precision: Precision,
    /// Threads per decode (CTranslate2's intra-op threads of a replica).
    pub intra_threads: usize,
    /// Copies of the model decoding in parallel (CTranslate2 replicas).
    pub replicas: usize,
    /// Beam width: 1 is greedy.
    pub beam_size: usize,
    /// Encoder window.
    pub encoder_window: EncoderWindow,
    /// CTranslate2's repetition penalty (1 is none): lowers the score of
    /// tokens already in the sequence. 1.2 by default (see
    /// `REPETITION_PENALTY`).
    pub repetition_penalty: f32,
    /// CTranslate2's `no_repeat_ngram_size` (0 is off): no n-gram of this
    /// many tokens occurs twice.
    pub no_repeat_ngram_size: usize,
    /// Output tokens allowed per second of audio, on top of a base of 16.
    pub tokens_per_second: usize,
    /// Drops a sentence or comma-separated phrase that repeats the one
    /// before it ("Yes. Yes. Yes." → "Yes."), the short window's typical
    /// failure. On by default.
    pub collapse_repeats: bool,
}

impl Default for WhisperOptions {
    fn default() -> Self {
        WhisperOptions {
            precision: Precision::Int8,
            intra_threads: 1,
            replicas: 2,
            beam_size: 1,
            encoder_window: EncoderWindow::Fit,
            repetition_penalty: REPETITION_PENALTY,
            no_repeat_ngram_size: 0,
            tokens_per_second: TOKENS_PER_SECOND,
            collapse_repeats: true,
        }
    }
}

/// Where the time of one decode went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DecodeTiming {
    /// Computing the log-mel.
    pub mel: Duration,
    /// CTranslate2's encode and decode (queueing for a free replica included).
    pub decode: Duration,
}

/// Whisper tiny.en through CTranslate2, shareable across threads.
#[derive(Clone)]
pub struct WhisperRecognizer {
    inner: Arc<Inner>,
}

struct Inner {
    model: ct2::Whisper,
    mel: LogMel,
    tokenizer: Tokenizer,
    options: WhisperOptions,
    name: String,
}

impl std::fmt::Debug for WhisperRecognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperRecognizer")
            .field("name", &self.inner.name)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl WhisperRecognizer {
    /// Loads the CTranslate2 model in `model_dir` (`model.bin`,
    /// `config.json`, `tokenizer.json`, `vocabulary.txt`, as
    /// `scripts/fetch-models.sh` puts them in `models/whisper-tiny.en`).
    pub fn load(model_dir: &Path, options: WhisperOptions) -> Result<Self, SpeechError> {
        for (what, file) in [
            ("Whisper model", "model.bin"),
            ("Whisper model config", "config.json"),
            ("Whisper tokenizer", "tokenizer.json"),
            ("Whisper vocabulary", "vocabulary.txt"),
        ] {
            let path = model_dir.join(file);
            if !path.is_file() {
                return Err(SpeechError::Missing {
                    what,
                    path: path.display().to_string(),
                    hint: HINT,
                });
            }
        }
        let tokenizer = Tokenizer::load(&model_dir.join("tokenizer.json"))?;
        let config = Config {
            device: Device::CPU,
            compute_type: match options.precision {
                Precision::Int8 => ComputeType::INT8,
                Precision::Float32 => ComputeType::FLOAT32,
                Precision::ModelDefault => ComputeType::DEFAULT,
            },
            // One device index per replica: CTranslate2 makes a copy of the
            // model for each, on the CPU.
            device_indices: vec![0; options.replicas.max(1)],
            num_threads_per_replica: options.intra_threads.max(1),
            ..Config::default()
        };
        let model = ct2::Whisper::new(model_dir, config)
            .map_err(|e| SpeechError::engine(ENGINE, format!("{}: {e:#}", model_dir.display())))?;
        if model.n_mels() != N_MELS {
            return Err(SpeechError::engine(
                ENGINE,
                format!(
                    "model wants {} mel bins, this front end makes {N_MELS}",
                    model.n_mels()
                ),
            ));
        }
        let name = format!(
            "whisper-{} ({:?}, {}×{} threads, beam {}, {:?} window)",
            dir_name(model_dir),
            options.precision,
            options.replicas.max(1),
            options.intra_threads.max(1),
            options.beam_size.max(1),
            options.encoder_window
        );
        Ok(WhisperRecognizer {
            inner: Arc::new(Inner {
                model,
                mel: LogMel::new(),
                tokenizer,
                options,
                name,
            }),
        })
    }

    /// Transcribes a whole utterance (16 kHz mono, under 30 s: the rest is
    /// cut) and says where the time went.
    ///
    /// The confidence is `exp` of the decode's score, CTranslate2's sum of
    /// token log-probabilities divided by the token count (length penalty
    /// 1): the geometric mean of the chosen tokens' probabilities. Measured:
    /// 0.65–0.8 for clear sentences (human or espeak-ng), 0.1–0.35 for
    /// mangled names and numbers. It does not catch repetition loops (a
    /// repeated sentence scores 0.8–0.9). `None` when nothing was heard.
    pub fn transcribe_timed(
        &self,
        pcm_16k: &[i16],
        bias: &Bias,
    ) -> Result<(Transcript, DecodeTiming), SpeechError> {
        let started = Instant::now();
        let pcm: Vec<f32> = pcm_16k.iter().map(|&s| f32::from(s) / 32768.0).collect();
        let frames = self.inner.options.encoder_window.frames(pcm.len());
        let mut features = self.inner.mel.compute(&pcm, frames);
        let mel = started.elapsed();
        let storage = StorageView::new(&[1, N_MELS, frames], &mut features, Device::CPU)
            .map_err(|e| SpeechError::engine(ENGINE, format!("{e:#}")))?;
        let prompt = self.prompt(bias);
        let seconds = pcm.len().div_ceil(SAMPLE_RATE);
        let options = ct2::WhisperOptions {
            beam_size: self.inner.options.beam_size.max(1),
            // CTranslate2 counts the prompt in the length.
            max_length: (prompt.len()
                + BASE_TOKENS
                + self.inner.options.tokens_per_second * seconds)
                .min(MAX_DECODER_TOKENS),
            repetition_penalty: self.inner.options.repetition_penalty,
            no_repeat_ngram_size: self.inner.options.no_repeat_ngram_size,
            return_scores: true,
            ..ct2::WhisperOptions::default()
        };
        let result = self
            .inner
            .model
            .generate(&storage, &[prompt], &options)
            .map_err(|e| SpeechError::engine(ENGINE, format!("{e:#}")))?;
        let decode = started.elapsed() - mel;
        let best = result
            .into_iter()
            .next()
            .ok_or_else(|| SpeechError::engine(ENGINE, "no result"))?;
        let text = best
            .sequences
            .first()
            .map(|tokens| self.inner.tokenizer.decode(tokens))
            .unwrap_or_default();
        let text = if self.inner.options.collapse_repeats {
            collapse_repeats(&text)
        } else {
            text
        };
        // No words: there is no token probability to speak of.
        let confidence = best
            .scores
            .first()
            .filter(|_| !text.trim().is_empty())
            .map(|s| s.exp().clamp(0.0, 1.0));
        Ok((
            Transcript {
                text: text.trim().to_owned(),
                confidence,
            },
            DecodeTiming { mel, decode },
        ))
    }

    /// The prompt tokens: the bias as "previous text", then the start of an
    /// English transcript without timestamps.
    fn prompt(&self, bias: &Bias) -> Vec<String> {
        let mut prompt = Vec::new();
        if let Some(text) = bias_text(bias) {
            let tokens = self.inner.tokenizer.encode(&text);
            let skip = tokens.len().saturating_sub(MAX_PROMPT_TOKENS);
            prompt.push("<|startofprev|>".to_owned());
            // Keep the start (the best terms) when too long.
            prompt.extend(tokens.into_iter().rev().skip(skip).rev());
        }
        prompt.push("<|startoftranscript|>".to_owned());
        prompt.push("<|notimestamps|>".to_owned());
        prompt
    }

    /// The bias prompt's tokens, for inspection.
    pub fn prompt_tokens(&self, bias: &Bias) -> Vec<String> {
        self.prompt(bias)
    }
}

/// The bias terms as a short written sentence, which is what Whisper's
/// previous-text prompt expects: " Metformin, Lisinopril, Dr. Patel."
fn bias_text(bias: &Bias) -> Option<String> {
    let terms: Vec<&str> = bias
        .terms
        .iter()
        .map(|t| t.trim().trim_end_matches(['.', ',']))
        .filter(|t| !t.is_empty())
        .collect();
    if terms.is_empty() {
        None
    } else {
        Some(format!(" {}.", terms.join(", ")))
    }
}

/// Phrases in a group that [`collapse_repeats`] looks for.
const MAX_REPEATED_PHRASES: usize = 4;

/// `text` without the repetitions of its last phrases: a group of up to
/// four phrases (cut at `.`, `?`, `!` or `,`; compared without case or
/// punctuation) that repeats the group before it goes, as does a cut-off
/// repetition at the end (the length cap): "Yes. Yes. Yes." → "Yes.",
/// "Dr. Goldberg, Dr. Goldberg, Dr" → "Dr. Goldberg,", "No, no." → "No.".
fn collapse_repeats(text: &str) -> String {
    let key = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Phrases with their keys; one without words joins the one before.
    let mut phrases: Vec<(String, String)> = Vec::new();
    for piece in text.split_inclusive(['.', '?', '!', ',']) {
        let k = key(piece);
        match phrases.last_mut() {
            Some((last, _)) if k.is_empty() => last.push_str(piece),
            _ => phrases.push((piece.to_owned(), k)),
        }
    }
    let mut kept: Vec<(String, String)> = Vec::new();
    // How many phrases were kept after the last collapse.
    let mut collapsed = None;
    for phrase in phrases {
        kept.push(phrase);
        for k in 1..=MAX_REPEATED_PHRASES.min(kept.len() / 2) {
            let n = kept.len();
            if (0..k).all(|i| kept[n - k + i].1 == kept[n - 2 * k + i].1) {
                // "No, no." → "No.": the sentence's end stays.
                let end = kept[n - 1].0.trim_end().chars().last();
                kept.truncate(n - k);
                if let (Some(end @ ('.' | '?' | '!')), Some((last, _))) = (end, kept.last_mut()) {
                    if last.trim_end().ends_with(',') {
                        last.truncate(last.trim_end().len() - 1);
                        last.push(end);
                    }
                }
                collapsed = Some(kept.len());
                break;
            }
        }
    }
    // A loop cut off by the length cap: the start of the group again, all
    // that follows the last collapse.
    if let Some(at) = collapsed {
        let j = kept.len() - at;
        'cut: for k in j.max(1)..=MAX_REPEATED_PHRASES {
            if j >= 1 && j + k <= kept.len() {
                let n = kept.len();
                let (group, tail) = (&kept[n - j - k..n - j], &kept[n - j..]);
                let matches = (0..j).all(|i| {
                    let (g, t) = (&group[i].1, &tail[i].1);
                    if i + 1 == j {
                        g.starts_with(t.as_str())
                    } else {
                        g == t
                    }
                });
                if matches {
                    kept.truncate(n - j);
                    break 'cut;
                }
            }
        }
    }
    kept.into_iter().map(|(phrase, _)| phrase).collect()
}

fn dir_name(dir: &Path) -> String {
    PathBuf::from(dir)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".to_owned())
}

impl Recognizer for WhisperRecognizer {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn start(&self, bias: &Bias) -> Box<dyn RecognitionStream> {
        Box::new(WhisperStream {
            recognizer: self.clone(),
            bias: bias.clone(),
            pcm: Vec::new(),
        })
    }

    fn transcribe(&self, pcm_16k: &[i16], bias: &Bias) -> Result<Transcript, SpeechError> {
        self.transcribe_timed(pcm_16k, bias).map(|(t, _)| t)
    }
}

/// One utterance: buffered until [`RecognitionStream::finish`], where the
/// batch decode runs.
struct WhisperStream {
    recognizer: WhisperRecognizer,
    bias: Bias,
    pcm: Vec<i16>,
}

impl RecognitionStream for WhisperStream {
    fn push(&mut self, pcm_16k: &[i16]) {
        // Past 30 s the model would not hear it anyway.
        let room = (FULL_FRAMES * HOP).saturating_sub(self.pcm.len());
        self.pcm
            .extend_from_slice(&pcm_16k[..pcm_16k.len().min(room)]);
    }

    fn finish(self: Box<Self>) -> Result<Transcript, SpeechError> {
        self.recognizer.transcribe(&self.pcm, &self.bias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_text_is_a_short_sentence() {
        assert_eq!(bias_text(&Bias::none()), None);
        assert_eq!(
            bias_text(&Bias::terms(["Metformin", " Dr. Patel. ", ""])).as_deref(),
            Some(" Metformin, Dr. Patel.")
        );
    }

    #[test]
    fn repeated_sentences_collapse() {
        assert_eq!(collapse_repeats(" Yes. Yes. Yes. yes"), " Yes.");
        assert_eq!(
            collapse_repeats(" No, no. It's Maria. It's Maria Lopez."),
            " No. It's Maria. It's Maria Lopez."
        );
        assert_eq!(collapse_repeats(" Linda Park. Linda Park"), " Linda Park.");
        assert_eq!(
            collapse_repeats(" Dr. Goldberg, Dr. Goldberg, Dr. Goldberg, Dr"),
            " Dr. Goldberg,"
        );
        assert_eq!(collapse_repeats(" No, no, no."), " No.");
        assert_eq!(
            collapse_repeats(" Yes, 1.15pm please."),
            " Yes, 1.15pm please."
        );
        assert_eq!(
            collapse_repeats(" rosan el gato, rosan el gato, rosan el gato, ro"),
            " rosan el gato,"
        );
        assert_eq!(
            collapse_repeats(" Maria Lopez. My date of birth is May 5th."),
            " Maria Lopez. My date of birth is May 5th."
        );
        assert_eq!(
            collapse_repeats(" Yes. Yes. I want to book, I"),
            " Yes. I want to book, I"
        );
        assert_eq!(collapse_repeats(""), "");
    }

    #[test]
    fn windows_have_whole_even_frames() {
        assert_eq!(EncoderWindow::Full.frames(16_000), FULL_FRAMES);
        assert_eq!(EncoderWindow::Fit.frames(16_000), 100 + FIT_PAD_FRAMES);
        assert_eq!(
            EncoderWindow::Padded(Duration::from_millis(5_000)).frames(16_001),
            602
        );
        assert_eq!(
            EncoderWindow::Padded(Duration::from_secs(10)).frames(16_000 * 29),
            FULL_FRAMES
        );
    }
}
