//! Piper (VITS) voices through ONNX Runtime: text → sentences → IPA
//! (libespeak-ng, [`crate::espeak`]) → phoneme ids → 22 050 Hz PCM, one
//! sentence at a time so the first one plays while the rest is synthesised.
//!
//! `Session::run` takes `&mut self` in ort rc.15, so the synthesiser holds a
//! small pool of sessions (two by default, one intra-op thread each): two
//! calls speak in parallel on two cores, a third waits for a free session.
//! All sessions load before [`PiperSynthesizer::load`] returns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;

use crate::onnx::{ensure_ort, ORT_LIBRARY};
use crate::{SpeechError, Synthesizer};

const ENGINE: &str = "piper";
const HINT: &str = "run scripts/fetch-models.sh";
const PAD: char = '_';
const BOS: char = '^';
const EOS: char = '$';

/// The voice `scripts/fetch-models.sh` puts in `models/piper/`.
pub const DEFAULT_VOICE_FILE: &str = "piper/en_US-joe-medium.onnx";

/// Silence between sentences, in milliseconds: the model ends each
/// sentence abruptly, and the listener needs the beat.
const SENTENCE_GAP_MS: u32 = 200;

/// "Hello." in IPA: what each new session says once, to nobody.
const WARM_UP_IPA: &str = "həlˈoʊ.";

/// How to load a Piper voice.
#[derive(Debug, Clone)]
pub struct PiperOptions {
    /// The ONNX Runtime library; `None`: `$ORT_DYLIB_PATH`, else
    /// `libonnxruntime.so.1.31.1` in the folder above the model's (where
    /// `scripts/fetch-models.sh` puts both).
    pub ort_library: Option<PathBuf>,
    /// Sessions in the pool: how many syntheses can run at once.
    pub sessions: usize,
}

impl Default for PiperOptions {
    fn default() -> Self {
        PiperOptions {
            ort_library: None,
            sessions: 2,
        }
    }
}

/// The parts of a voice's `.onnx.json` that synthesis needs.
#[derive(Debug, Deserialize)]
struct VoiceConfig {
    audio: AudioConfig,
    #[serde(default)]
    espeak: Option<EspeakConfig>,
    #[serde(default)]
    inference: InferenceConfig,
    #[serde(default)]
    num_speakers: u32,
    phoneme_id_map: HashMap<String, Vec<i64>>,
}

#[derive(Debug, Deserialize)]
struct AudioConfig {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct EspeakConfig {
    voice: String,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct InferenceConfig {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        InferenceConfig {
            noise_scale: 0.667,
            length_scale: 1.0,
            noise_w: 0.8,
        }
    }
}

/// A Piper voice, shared by all calls.
pub struct PiperSynthesizer {
    name: String,
    sample_rate: u32,
    espeak_voice: String,
    phoneme_ids: HashMap<char, Vec<i64>>,
    pool: Arc<SessionPool>,
}

impl std::fmt::Debug for PiperSynthesizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperSynthesizer")
            .field("name", &self.name)
            .field("sample_rate", &self.sample_rate)
            .field("sessions", &self.sessions())
            .finish_non_exhaustive()
    }
}

impl PiperSynthesizer {
    /// Loads the voice at `onnx_path` and the `.onnx.json` beside it, with
    /// the default [`PiperOptions`]. Takes seconds: load once, share.
    pub fn load(onnx_path: &Path) -> Result<Self, SpeechError> {
        PiperSynthesizer::load_with(onnx_path, &PiperOptions::default())
    }

    /// Loads the voice at `onnx_path` with these options.
    pub fn load_with(onnx_path: &Path, options: &PiperOptions) -> Result<Self, SpeechError> {
        let json_path = PathBuf::from(format!("{}.json", onnx_path.display()));
        for (what, path) in [
            ("Piper voice model", onnx_path),
            ("Piper voice config", json_path.as_path()),
        ] {
            if !path.is_file() {
                return Err(SpeechError::Missing {
                    what,
                    path: path.display().to_string(),
                    hint: HINT,
                });
            }
        }
        let config: VoiceConfig = std::fs::read(&json_path)
            .map_err(|e| SpeechError::engine(ENGINE, format!("{}: {e}", json_path.display())))
            .and_then(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| {
                    SpeechError::engine(ENGINE, format!("{}: {e}", json_path.display()))
                })
            })?;
        let id_map = phoneme_id_map(config.phoneme_id_map)?;

        let ort_library = match &options.ort_library {
            Some(path) => path.clone(),
            None => default_ort_library(onnx_path),
        };
        let env = ensure_ort(&ort_library)?;
        let i = config.inference;
        let voice = VoiceInputs {
            scales: [i.noise_scale, i.length_scale, i.noise_w],
            multi_speaker: config.num_speakers > 1,
        };
        let warm_up = phoneme_ids(&id_map, WARM_UP_IPA);
        // Every session before returning (one takes ~3 s on a quiet
        // machine): a session still loading on another thread when the
        // process exits crashes ONNX Runtime's teardown.
        let size = options.sessions.max(1);
        let mut sessions = Vec::with_capacity(size);
        for _ in 0..size {
            sessions.push(load_session(env, onnx_path, voice, &warm_up)?);
        }
        let pool = Arc::new(SessionPool {
            free: Mutex::new(sessions),
            loaded: AtomicUsize::new(size),
            returned: Condvar::new(),
        });

        let name = onnx_path
            .file_stem()
            .map(|s| format!("piper {}", s.to_string_lossy()))
            .unwrap_or_else(|| "piper".to_owned());
        Ok(PiperSynthesizer {
            name,
            sample_rate: config.audio.sample_rate,
            espeak_voice: config
                .espeak
                .map(|e| e.voice)
                .unwrap_or_else(|| crate::espeak::DEFAULT_VOICE.to_owned()),
            phoneme_ids: id_map,
            pool,
        })
    }

    /// Sessions loaded: [`PiperOptions::sessions`].
    pub fn sessions(&self) -> usize {
        self.pool.loaded.load(Ordering::Acquire)
    }

    /// One sentence's audio, on the first free session.
    fn infer(&self, ids: Vec<i64>) -> Result<Vec<i16>, SpeechError> {
        self.pool.take().speak(ids)
    }
}

impl Synthesizer for PiperSynthesizer {
    fn name(&self) -> &str {
        &self.name
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn synthesize(
        &self,
        text: &str,
        sink: &mut dyn FnMut(&[i16]) -> bool,
    ) -> Result<(), SpeechError> {
        let gap = vec![0i16; (self.sample_rate * SENTENCE_GAP_MS / 1000) as usize];
        let mut first = true;
        for sentence in crate::sentences(text) {
            for ipa in crate::espeak::phonemize(sentence, &self.espeak_voice)? {
                let mut audio = self.infer(phoneme_ids(&self.phoneme_ids, &ipa))?;
                if audio.is_empty() {
                    continue;
                }
                // The pause goes before every sentence but the first, so
                // that the first audio is not delayed and the last has no
                // dead tail.
                if !first {
                    audio.splice(0..0, gap.iter().copied());
                }
                first = false;
                if !sink(&audio) {
                    return Err(SpeechError::Stopped);
                }
            }
        }
        Ok(())
    }
}

/// What every inference of a voice passes besides the ids.
#[derive(Debug, Clone, Copy)]
struct VoiceInputs {
    /// noise, length, noise_w.
    scales: [f32; 3],
    /// Whether the model wants a speaker id (always 0 here).
    multi_speaker: bool,
}

/// A session and what its inferences pass besides the ids.
struct VoiceSession {
    session: Session,
    inputs: VoiceInputs,
}

impl VoiceSession {
    /// One sentence's ids to 16-bit PCM.
    fn speak(&mut self, ids: Vec<i64>) -> Result<Vec<i16>, SpeechError> {
        let err = |e: ort::Error| SpeechError::engine(ENGINE, e);
        let len = ids.len();
        let input = Tensor::from_array(([1usize, len], ids.into_boxed_slice())).map_err(err)?;
        let lengths =
            Tensor::from_array(([1usize], vec![len as i64].into_boxed_slice())).map_err(err)?;
        let scales = Tensor::from_array(([3usize], self.inputs.scales.to_vec().into_boxed_slice()))
            .map_err(err)?;
        let outputs = if self.inputs.multi_speaker {
            let sid = Tensor::from_array(([1usize], vec![0i64].into_boxed_slice())).map_err(err)?;
            self.session.run(ort::inputs![
                "input" => input, "input_lengths" => lengths, "scales" => scales, "sid" => sid
            ])
        } else {
            self.session.run(ort::inputs![
                "input" => input, "input_lengths" => lengths, "scales" => scales
            ])
        }
        .map_err(err)?;
        let (_, audio) = outputs["output"].try_extract_tensor::<f32>().map_err(err)?;
        Ok(audio
            .iter()
            .map(|&x| (x * 32767.0).clamp(-32768.0, 32767.0) as i16)
            .collect())
    }
}

/// Sessions waiting for work; [`SessionPool::take`] blocks until one is free.
struct SessionPool {
    free: Mutex<Vec<VoiceSession>>,
    /// How many are loaded (free or on loan).
    loaded: AtomicUsize,
    returned: Condvar,
}

impl SessionPool {
    fn put(&self, session: VoiceSession) {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(session);
        self.returned.notify_one();
    }

    fn take(&self) -> PooledSession<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(session) = free.pop() {
                return PooledSession {
                    pool: self,
                    session: Some(session),
                };
            }
            free = self.returned.wait(free).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A session on loan; back to the pool on drop (also on error or unwind).
struct PooledSession<'p> {
    pool: &'p SessionPool,
    session: Option<VoiceSession>,
}

impl std::ops::Deref for PooledSession<'_> {
    type Target = VoiceSession;
    fn deref(&self) -> &VoiceSession {
        self.session.as_ref().expect("session present until drop")
    }
}

impl std::ops::DerefMut for PooledSession<'_> {
    fn deref_mut(&mut self) -> &mut VoiceSession {
        self.session.as_mut().expect("session present until drop")
    }
}

impl Drop for PooledSession<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.pool.put(session);
        }
    }
}

/// Loads a session and runs one short sentence through it: the first
/// inference costs about twice a later one (allocations), and that cost
/// belongs to start-up, not to the first caller.
fn load_session(
    env: &ort::environment::Environment,
    model: &Path,
    inputs: VoiceInputs,
    warm_up: &[i64],
) -> Result<VoiceSession, SpeechError> {
    let err = |e: ort::Error| SpeechError::engine(ENGINE, e);
    // One thread per session: parallelism comes from the pool, and a
    // call's synthesis must not take the cores the other calls need.
    let session = Session::builder(env)
        .map_err(err)?
        .with_intra_threads(1)
        .map_err(|e| err(e.into()))?
        .with_inter_threads(1)
        .map_err(|e| err(e.into()))?
        .commit_from_file(model)
        .map_err(|e| SpeechError::engine(ENGINE, format!("{}: {e}", model.display())))?;
    let mut session = VoiceSession { session, inputs };
    session.speak(warm_up.to_vec())?;
    Ok(session)
}

/// The ids for one sentence's IPA: `^ _`, each phoneme followed by `_`,
/// then `$` (as piper-phonemize builds them for training). Phonemes the
/// voice does not know are left out.
fn phoneme_ids(map: &HashMap<char, Vec<i64>>, ipa: &str) -> Vec<i64> {
    let mut ids = Vec::with_capacity(2 * ipa.len() + 3);
    let pad = &map[&PAD];
    ids.extend_from_slice(&map[&BOS]);
    ids.extend_from_slice(pad);
    for c in ipa.chars() {
        if let Some(id) = map.get(&c) {
            ids.extend_from_slice(id);
            ids.extend_from_slice(pad);
        }
    }
    ids.extend_from_slice(&map[&EOS]);
    ids
}

/// `$ORT_DYLIB_PATH`, else the library in the folder above the model's.
fn default_ort_library(onnx_path: &Path) -> PathBuf {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let models = onnx_path
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    models.join(ORT_LIBRARY)
}

/// The JSON's map from phoneme (one character) to ids; `_ ^ $` must be
/// there.
fn phoneme_id_map(raw: HashMap<String, Vec<i64>>) -> Result<HashMap<char, Vec<i64>>, SpeechError> {
    let mut map = HashMap::with_capacity(raw.len());
    for (phoneme, ids) in raw {
        let mut chars = phoneme.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => {
                map.insert(c, ids);
            }
            _ => {
                return Err(SpeechError::engine(
                    ENGINE,
                    format!("phoneme {phoneme:?} is not one character"),
                ))
            }
        }
    }
    for c in [PAD, BOS, EOS] {
        if map.get(&c).is_none_or(Vec::is_empty) {
            return Err(SpeechError::engine(
                ENGINE,
                format!("phoneme_id_map has no {c:?}"),
            ));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> HashMap<char, Vec<i64>> {
        [
            ('_', 0),
            ('^', 1),
            ('$', 2),
            (' ', 3),
            (',', 8),
            ('a', 14),
            ('ˈ', 120),
        ]
        .into_iter()
        .map(|(c, id)| (c, vec![id]))
        .collect()
    }

    #[test]
    fn ids_intersperse_pad_between_bos_and_eos() {
        for (ipa, ids) in [
            ("", vec![1, 0, 2]),
            ("ˈa", vec![1, 0, 120, 0, 14, 0, 2]),
            ("a, a", vec![1, 0, 14, 0, 8, 0, 3, 0, 14, 0, 2]),
            // Unknown phonemes are dropped, not guessed.
            ("aʘ", vec![1, 0, 14, 0, 2]),
        ] {
            assert_eq!(phoneme_ids(&map(), ipa), ids, "{ipa:?}");
        }
    }

    #[test]
    fn id_map_needs_pad_bos_eos_and_single_characters() {
        let raw = |pairs: &[(&str, i64)]| {
            pairs
                .iter()
                .map(|&(p, id)| (p.to_owned(), vec![id]))
                .collect::<HashMap<_, _>>()
        };
        assert!(phoneme_id_map(raw(&[("_", 0), ("^", 1), ("$", 2)])).is_ok());
        assert!(phoneme_id_map(raw(&[("_", 0), ("^", 1)])).is_err());
        assert!(phoneme_id_map(raw(&[("_", 0), ("^", 1), ("$", 2), ("ab", 3)])).is_err());
    }
}
