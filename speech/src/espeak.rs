//! libespeak-ng, wrapped: IPA phonemes for Piper, and espeak's own voice as
//! the fallback synthesiser when the Piper model is not there.
//!
//! libespeak-ng keeps its state (voice, parameters, output buffer, callback)
//! in globals, so every call goes through one process-wide lock and the
//! library is initialised once, in synchronous mode: `espeak_Synth` returns
//! only after the callback has seen all the audio.

use std::ffi::{c_char, c_int, c_short, c_uint, c_void, CStr, CString};
use std::ptr;
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::{SpeechError, Synthesizer};

const ENGINE: &str = "espeak-ng";

/// The voice Piper's English models were trained with, and the fallback's.
pub const DEFAULT_VOICE: &str = "en-us";

/// Hand-written bindings for the few functions used (speak_lib.h, 1.51).
mod ffi {
    use super::*;

    pub(super) const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
    pub(super) const INITIALIZE_DONT_EXIT: c_int = 0x8000;
    pub(super) const CHARS_UTF8: c_int = 1;
    pub(super) const PHONEMES_IPA: c_int = 0x02;
    pub(super) const POS_CHARACTER: c_int = 1;
    pub(super) const RATE: c_int = 1;
    pub(super) const EE_OK: c_int = 0;

    /// `espeak_EVENT`; only its address is used, never its fields.
    #[repr(C)]
    pub(super) struct Event {
        _opaque: [u8; 0],
    }

    pub(super) type SynthCallback =
        unsafe extern "C" fn(wav: *mut c_short, numsamples: c_int, events: *mut Event) -> c_int;

    #[link(name = "espeak-ng")]
    extern "C" {
        pub(super) fn espeak_Initialize(
            output: c_int,
            buflength: c_int,
            path: *const c_char,
            options: c_int,
        ) -> c_int;
        pub(super) fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
        pub(super) fn espeak_TextToPhonemes(
            textptr: *mut *const c_void,
            textmode: c_int,
            phonememode: c_int,
        ) -> *const c_char;
        pub(super) fn espeak_SetSynthCallback(callback: SynthCallback);
        pub(super) fn espeak_Synth(
            text: *const c_void,
            size: usize,
            position: c_uint,
            position_type: c_int,
            end_position: c_uint,
            flags: c_uint,
            unique_identifier: *mut c_uint,
            user_data: *mut c_void,
        ) -> c_int;
        pub(super) fn espeak_SetParameter(parameter: c_int, value: c_int, relative: c_int)
            -> c_int;
    }
}

/// The library's global state, reachable only through [`lock`].
struct Espeak {
    /// What `espeak_Initialize` reported: the rate of its audio.
    sample_rate: u32,
    /// The voice last selected, so that it is not reloaded on every call.
    voice: Option<String>,
}

static ESPEAK: OnceLock<Result<Mutex<Espeak>, String>> = OnceLock::new();

/// Where the synthesis callback puts its audio. Only touched while the
/// [`ESPEAK`] lock is held, from inside `espeak_Synth` on the same thread.
static SYNTH_OUT: Mutex<Vec<i16>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect_audio(
    wav: *mut c_short,
    numsamples: c_int,
    _events: *mut ffi::Event,
) -> c_int {
    if !wav.is_null() && numsamples > 0 {
        // SAFETY: espeak hands `numsamples` valid samples at `wav` for the
        // duration of the call.
        let samples = unsafe { std::slice::from_raw_parts(wav, numsamples as usize) };
        SYNTH_OUT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(samples);
    }
    0
}

/// Initialises libespeak-ng once and takes its lock.
fn lock() -> Result<MutexGuard<'static, Espeak>, SpeechError> {
    let state = ESPEAK.get_or_init(|| {
        // SAFETY: called once (OnceLock); a null path means espeak's
        // installed data folder.
        let rate = unsafe {
            ffi::espeak_Initialize(
                ffi::AUDIO_OUTPUT_SYNCHRONOUS,
                0,
                ptr::null(),
                ffi::INITIALIZE_DONT_EXIT,
            )
        };
        if rate <= 0 {
            return Err(format!(
                "espeak_Initialize failed ({rate}): is espeak-ng-data installed?"
            ));
        }
        // SAFETY: the callback is a plain function valid for the process.
        unsafe { ffi::espeak_SetSynthCallback(collect_audio) };
        Ok(Mutex::new(Espeak {
            sample_rate: rate as u32,
            voice: None,
        }))
    });
    match state {
        Ok(mutex) => Ok(mutex.lock().unwrap_or_else(|e| e.into_inner())),
        Err(message) => Err(SpeechError::engine(ENGINE, message)),
    }
}

impl Espeak {
    fn set_voice(&mut self, voice: &str) -> Result<(), SpeechError> {
        if self.voice.as_deref() == Some(voice) {
            return Ok(());
        }
        let name = CString::new(voice).map_err(|e| SpeechError::engine(ENGINE, e))?;
        // SAFETY: `name` is a valid C string; the lock is held.
        let rc = unsafe { ffi::espeak_SetVoiceByName(name.as_ptr()) };
        if rc != ffi::EE_OK {
            self.voice = None;
            return Err(SpeechError::engine(
                ENGINE,
                format!("no voice named {voice:?} ({rc})"),
            ));
        }
        self.voice = Some(voice.to_owned());
        Ok(())
    }

    /// IPA for a piece of text without punctuation inside it worth keeping.
    /// espeak returns one clause per call and advances the text pointer.
    fn text_to_ipa(&mut self, text: &str) -> Result<String, SpeechError> {
        let text = CString::new(text).map_err(|e| SpeechError::engine(ENGINE, e))?;
        let mut cursor: *const c_void = text.as_ptr().cast();
        let mut out = String::new();
        while !cursor.is_null() {
            // SAFETY: `cursor` points into `text` (or is set to null by
            // espeak at the end); the returned string lives until the next
            // call, and is copied before it.
            let ipa = unsafe {
                ffi::espeak_TextToPhonemes(&mut cursor, ffi::CHARS_UTF8, ffi::PHONEMES_IPA)
            };
            if ipa.is_null() {
                break;
            }
            let ipa = unsafe { CStr::from_ptr(ipa) }.to_string_lossy();
            let ipa = ipa.trim();
            if !ipa.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(ipa);
            }
        }
        Ok(out)
    }

    /// espeak's own audio for `text`, at [`Espeak::sample_rate`].
    fn synth(&mut self, text: &str) -> Result<Vec<i16>, SpeechError> {
        let text = CString::new(text).map_err(|e| SpeechError::engine(ENGINE, e))?;
        SYNTH_OUT.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let bytes = text.as_bytes_with_nul();
        // SAFETY: `text` outlives the synchronous call; the lock is held so
        // nobody else touches espeak or SYNTH_OUT meanwhile.
        let rc = unsafe {
            ffi::espeak_Synth(
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                ffi::POS_CHARACTER,
                0,
                ffi::CHARS_UTF8 as c_uint,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let audio = std::mem::take(&mut *SYNTH_OUT.lock().unwrap_or_else(|e| e.into_inner()));
        if rc != ffi::EE_OK {
            return Err(SpeechError::engine(ENGINE, format!("espeak_Synth: {rc}")));
        }
        Ok(audio)
    }
}

/// IPA phonemes for `text` in `voice` (an espeak voice name, e.g. `en-us`):
/// one string per sentence (see [`crate::sentences`]), with the punctuation
/// espeak drops put back where Piper's models expect it (`,` `:` `;` inside,
/// `.` `?` `!` at the end, each followed by a space if more follows).
pub fn phonemize(text: &str, voice: &str) -> Result<Vec<String>, SpeechError> {
    let mut espeak = lock()?;
    espeak.set_voice(voice)?;
    let mut out = Vec::new();
    for sentence in crate::sentences(text) {
        let mut ipa = String::new();
        for (clause, punct) in clauses(sentence) {
            let phonemes = espeak.text_to_ipa(clause)?;
            if phonemes.is_empty() && punct.is_none() {
                continue;
            }
            if !ipa.is_empty() {
                ipa.push(' ');
            }
            ipa.push_str(&phonemes);
            if let Some(p) = punct {
                ipa.push(p);
            }
        }
        if !ipa.is_empty() {
            out.push(ipa);
        }
    }
    Ok(out)
}

/// Splits a sentence at the punctuation Piper voices pause on, returning
/// each clause with the mark that ended it. `,` `:` `;` count when white
/// space follows (so "9:15" stays whole), `.` `?` `!` only at the very end
/// (so "Dr. Patel" stays whole).
fn clauses(sentence: &str) -> Vec<(&str, Option<char>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = sentence.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let ends = match c {
            ',' | ':' | ';' => next.is_none_or(char::is_whitespace),
            '.' | '?' | '!' => next.is_none(),
            _ => false,
        };
        if ends {
            out.push((sentence[start..i].trim(), Some(c)));
            start = i + c.len_utf8();
        }
    }
    let rest = sentence[start..].trim();
    if !rest.is_empty() {
        out.push((rest, None));
    }
    out
}

/// espeak-ng's own voice: robotic but always there (Debian's `espeak-ng-data`),
/// the fallback when the Piper model is missing. Speaks at espeak's native
/// rate (22 050 Hz), one sentence per chunk.
#[derive(Debug, Clone)]
pub struct EspeakSynthesizer {
    voice: String,
    words_per_minute: u32,
    sample_rate: u32,
}

impl EspeakSynthesizer {
    /// The voice `voice` (e.g. `en-us`, `en-us+f3`) at `words_per_minute`
    /// (espeak clamps it to 80–450). Fails if libespeak-ng has no data or
    /// no such voice.
    pub fn new(voice: &str, words_per_minute: u32) -> Result<Self, SpeechError> {
        let mut espeak = lock()?;
        espeak.set_voice(voice)?;
        Ok(EspeakSynthesizer {
            voice: voice.to_owned(),
            words_per_minute,
            sample_rate: espeak.sample_rate,
        })
    }

    /// American English at espeak's normal rate (175 words per minute).
    pub fn default_voice() -> Result<Self, SpeechError> {
        EspeakSynthesizer::new(DEFAULT_VOICE, 175)
    }

    fn synth_sentence(&self, sentence: &str) -> Result<Vec<i16>, SpeechError> {
        let mut espeak = lock()?;
        espeak.set_voice(&self.voice)?;
        // Parameters are global: set ours on every call, another user may
        // have changed them.
        let rate = c_int::try_from(self.words_per_minute).unwrap_or(c_int::MAX);
        // SAFETY: plain integer call; the lock is held.
        unsafe { ffi::espeak_SetParameter(ffi::RATE, rate, 0) };
        espeak.synth(sentence)
    }
}

impl Synthesizer for EspeakSynthesizer {
    fn name(&self) -> &str {
        "espeak-ng"
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn synthesize(
        &self,
        text: &str,
        sink: &mut dyn FnMut(&[i16]) -> bool,
    ) -> Result<(), SpeechError> {
        for sentence in crate::sentences(text) {
            // The lock is released before the sink runs: a slow consumer
            // must not hold up every other call's phonemes.
            let audio = self.synth_sentence(sentence)?;
            if !audio.is_empty() && !sink(&audio) {
                return Err(SpeechError::Stopped);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_keep_their_marks() {
        assert_eq!(
            clauses("Thanks, Susan, at 9:15?"),
            vec![
                ("Thanks", Some(',')),
                ("Susan", Some(',')),
                ("at 9:15", Some('?'))
            ]
        );
        assert_eq!(clauses("Dr. Patel"), vec![("Dr. Patel", None)]);
    }
}
