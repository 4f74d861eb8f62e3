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
/// Silence after the utterance in an [`EncoderWindow::Fit`] window: with
/// 1 s the model repeated utterances more often (WER 98 % against 84 % with
/// 3 s or 5 s, on whisper_bench's 20 lines through 8 kHz).
const FIT_PAD_FRAMES: usize = 300;
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
    /// was trained on.
    #[default]
    Full,
    /// The utterance plus 3 s of silence. CTranslate2 4.8 accepts it and
    /// decodes 5–9 times faster, but tiny.en was trained on 30 s windows
    /// only: it loses accuracy, and tends to repeat the utterance
    /// (`whisper_bench` measures both).
    Fit,
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
}

impl Default for WhisperOptions {
    fn default() -> Self {
        WhisperOptions {
            precision: Precision::Int8,
            intra_threads: 1,
            replicas: 2,
            beam_size: 1,
            encoder_window: EncoderWindow::Full,
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
            "whisper-{} ({:?}, {}×{} threads, beam {})",
            dir_name(model_dir),
            options.precision,
            options.replicas.max(1),
            options.intra_threads.max(1),
            options.beam_size.max(1)
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
        let frames = match self.inner.options.encoder_window {
            EncoderWindow::Full => FULL_FRAMES,
            // Whole frames plus the padding, even (the encoder's convolution
            // halves it).
            EncoderWindow::Fit => (pcm.len().div_ceil(HOP) + FIT_PAD_FRAMES)
                .next_multiple_of(2)
                .min(FULL_FRAMES),
        };
        let mut features = self.inner.mel.compute(&pcm, frames);
        let mel = started.elapsed();
        let storage = StorageView::new(&[1, N_MELS, frames], &mut features, Device::CPU)
            .map_err(|e| SpeechError::engine(ENGINE, format!("{e:#}")))?;
        let prompt = self.prompt(bias);
        let seconds = pcm.len().div_ceil(SAMPLE_RATE);
        let options = ct2::WhisperOptions {
            beam_size: self.inner.options.beam_size.max(1),
            // CTranslate2 counts the prompt in the length.
            max_length: (prompt.len() + BASE_TOKENS + TOKENS_PER_SECOND * seconds)
                .min(MAX_DECODER_TOKENS),
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
}
