//! Speech engines behind small traits: streaming recognisers (STT) and
//! streaming synthesisers (TTS), with the offline engines (Whisper tiny.en
//! through CTranslate2, Piper through ONNX Runtime, espeak-ng as the
//! fallback voice) as the embedded defaults.
//!
//! The traits are blocking on purpose: the embedded engines are CPU-bound,
//! and the gateway runs every call to them on its bounded inference pool,
//! off the async runtime's threads. A network engine (Deepgram, AssemblyAI,
//! an OpenAI-compatible transcription endpoint, ElevenLabs, Cartesia)
//! implements the same traits by streaming from a background connection and
//! blocking only in [`RecognitionStream::finish`] or inside the
//! synthesiser's chunk loop.
//!
//! It knows nothing about SIP or slots: a turn's bias arrives as plain
//! vocabulary.
#![warn(missing_docs, unreachable_pub)]

pub mod wer;
pub mod whisper;

use std::sync::Arc;

pub mod espeak;
pub mod onnx;
pub mod piper;

/// What the recogniser should expect in this turn: the vocabulary of the
/// slot being asked (provider names, medications…), in their written form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bias {
    /// Terms that may be said, best first. Empty: no bias.
    pub terms: Vec<String>,
}

impl Bias {
    /// No bias.
    pub fn none() -> Bias {
        Bias::default()
    }

    /// A bias towards these terms.
    pub fn terms<I, T>(terms: I) -> Bias
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Bias {
            terms: terms.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether there is nothing to bias towards.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// A recogniser's result for one utterance.
#[derive(Clone, Default, PartialEq)]
pub struct Transcript {
    /// The words, as the engine wrote them.
    pub text: String,
    /// Confidence in 0..=1, if the engine gives one.
    pub confidence: Option<f32>,
}

impl std::fmt::Debug for Transcript {
    // Caller words are personal data: logs see their length only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcript")
            .field("chars", &self.text.chars().count())
            .field("confidence", &self.confidence)
            .finish()
    }
}

/// What went wrong in an engine.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// A model or library file is missing or unreadable.
    #[error("{what} not found at {path}: {hint}")]
    Missing {
        /// Which file.
        what: &'static str,
        /// Where it was looked for.
        path: String,
        /// How to get it.
        hint: &'static str,
    },
    /// The engine failed while loading or running.
    #[error("{engine}: {message}")]
    Engine {
        /// Which engine.
        engine: &'static str,
        /// What it said.
        message: String,
    },
    /// The synthesis was stopped by the caller of the engine (barge-in).
    #[error("stopped")]
    Stopped,
}

impl SpeechError {
    /// An engine error with a message.
    pub fn engine(engine: &'static str, message: impl std::fmt::Display) -> SpeechError {
        SpeechError::Engine {
            engine,
            message: message.to_string(),
        }
    }
}

/// A speech recogniser: shared by all calls, cheap to start a stream on.
pub trait Recognizer: Send + Sync {
    /// Its name, for the start-up report and the metrics.
    fn name(&self) -> &str;

    /// Starts recognising one utterance, biased towards `bias`.
    fn start(&self, bias: &Bias) -> Box<dyn RecognitionStream>;

    /// Recognises a whole utterance (16 kHz mono) at once: a convenience
    /// over [`start`](Self::start).
    fn transcribe(&self, pcm_16k: &[i16], bias: &Bias) -> Result<Transcript, SpeechError> {
        let mut stream = self.start(bias);
        stream.push(pcm_16k);
        stream.finish()
    }
}

/// One utterance being recognised.
pub trait RecognitionStream: Send {
    /// More 16 kHz mono PCM, as it arrives.
    fn push(&mut self, pcm_16k: &[i16]);

    /// The best guess so far, for engines that give partial results.
    fn partial(&mut self) -> Option<Transcript> {
        None
    }

    /// The end of the utterance: the final transcript. May block (this is
    /// where a batch engine decodes).
    fn finish(self: Box<Self>) -> Result<Transcript, SpeechError>;
}

/// A speech synthesiser: shared by all calls.
pub trait Synthesizer: Send + Sync {
    /// Its name, for the start-up report.
    fn name(&self) -> &str;

    /// The rate of the PCM it produces, in Hz.
    fn sample_rate(&self) -> u32;

    /// Speaks `text`, handing mono PCM chunks to `sink` as soon as each is
    /// ready (sentence by sentence at least). `sink` returns `false` to stop
    /// (the caller barged in); the synthesiser then returns
    /// [`SpeechError::Stopped`] without finishing.
    fn synthesize(
        &self,
        text: &str,
        sink: &mut dyn FnMut(&[i16]) -> bool,
    ) -> Result<(), SpeechError>;
}

/// A shared recogniser.
pub type SharedRecognizer = Arc<dyn Recognizer>;
/// A shared synthesiser.
pub type SharedSynthesizer = Arc<dyn Synthesizer>;

/// Splits text into sentences for sentence-by-sentence synthesis, keeping
/// each sentence's closing punctuation. A sentence ends at `.`, `?`, `!` or
/// `;` followed by white space or the end.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let ends = matches!(b, b'.' | b'?' | b'!' | b';')
            && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace())
            && !(b == b'.' && ends_with_title(&text[start..i]));
        if ends {
            let s = text[start..=i].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = i + 1;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Whether `before` ends with a title whose dot does not end a sentence.
fn ends_with_title(before: &str) -> bool {
    let word = before
        .rsplit(|c: char| !c.is_alphabetic())
        .next()
        .unwrap_or("");
    matches!(word, "Dr" | "Mr" | "Mrs" | "Ms" | "St" | "Prof")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_keep_punctuation_and_titles() {
        assert_eq!(
            sentences("Thanks. What is your date of birth? Dr. Patel at 2.30 then"),
            vec![
                "Thanks.",
                "What is your date of birth?",
                "Dr. Patel at 2.30 then"
            ]
        );
        assert_eq!(sentences("  "), Vec::<&str>::new());
        assert_eq!(sentences("Hello"), vec!["Hello"]);
    }
}
