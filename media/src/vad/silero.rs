//! Silero VAD (v6, 16 kHz) through ONNX Runtime, loaded at run time from the
//! PyPI wheels that `scripts/fetch-models.sh` unpacks into `./models`.
//!
//! The model takes 512-sample chunks with the previous chunk's last 64
//! samples prepended, and carries a recurrent `state` between calls.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;

/// Samples per Silero chunk at 16 kHz (32 ms).
pub const SILERO_CHUNK: usize = 512;
/// Samples of the previous chunk prepended to each one.
pub const SILERO_CONTEXT: usize = 64;
const STATE_LEN: usize = 2 * 128;

/// Why Silero could not be loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SileroError {
    /// A file is not there; `scripts/fetch-models.sh` puts both in place.
    #[error("{what} not found at {path} (run scripts/fetch-models.sh)")]
    Missing {
        /// Which file.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The ONNX Runtime library did not load (wrong file, wrong version).
    #[error("loading ONNX Runtime from {path}")]
    Runtime {
        /// The library file.
        path: PathBuf,
        /// What the loader said.
        #[source]
        source: ort::LoadDynamicError,
    },
    /// ONNX Runtime was loaded before from another file; a process holds one.
    #[error("ONNX Runtime already loaded from {loaded}, not {requested}")]
    OtherRuntime {
        /// The library in use.
        loaded: PathBuf,
        /// The one asked for now.
        requested: PathBuf,
    },
    /// ONNX Runtime refused the environment, the model or an inference.
    #[error("ONNX Runtime: {0}")]
    Ort(#[from] ort::Error),
    /// The model's outputs are not Silero's.
    #[error("unexpected model output: {0}")]
    Model(&'static str),
}

/// The process-wide ONNX Runtime: the library path and the environment
/// (ONNX Runtime allows one per process, and `ort` one library).
static RUNTIME: OnceLock<(PathBuf, Environment)> = OnceLock::new();
static RUNTIME_INIT: Mutex<()> = Mutex::new(());

/// The process's one ONNX Runtime environment, loaded from `dylib` (the
/// versioned `libonnxruntime.so.1.31.1`) on first use. Every engine that
/// runs ONNX models in the process (this VAD, echo-speech's Piper voice)
/// must get its environment here: `ort` (rc.15) refuses a second one and
/// keeps the first private.
pub fn ort_runtime(dylib: &Path) -> Result<&'static Environment, SileroError> {
    let _guard = RUNTIME_INIT.lock().unwrap_or_else(|e| e.into_inner());
    // "models/x" and "/work/models/x" are the same library.
    let canonical = std::fs::canonicalize(dylib);
    let dylib = canonical.as_deref().unwrap_or(dylib);
    if let Some((loaded, env)) = RUNTIME.get() {
        return if loaded == dylib {
            Ok(env)
        } else {
            Err(SileroError::OtherRuntime {
                loaded: loaded.clone(),
                requested: dylib.to_path_buf(),
            })
        };
    }
    let env = ort::init_from(dylib)
        .map_err(|source| SileroError::Runtime {
            path: dylib.to_path_buf(),
            source,
        })?
        .with_name("echo-vad")
        .build()?;
    Ok(&RUNTIME.get_or_init(|| (dylib.to_path_buf(), env)).1)
}

/// One call's Silero detector: a session plus its recurrent state.
pub struct SileroVad {
    session: Session,
    state: Vec<f32>,
    input: Vec<f32>,
}

impl std::fmt::Debug for SileroVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroVad").finish_non_exhaustive()
    }
}

impl SileroVad {
    /// Loads the model with ONNX Runtime from `ort_dylib_path` (the
    /// versioned `libonnxruntime.so.1.31.1`), one intra-op thread.
    pub fn load(
        model_path: impl AsRef<Path>,
        ort_dylib_path: impl AsRef<Path>,
    ) -> Result<SileroVad, SileroError> {
        let (model, dylib) = (model_path.as_ref(), ort_dylib_path.as_ref());
        for (what, path) in [("Silero VAD model", model), ("ONNX Runtime", dylib)] {
            if !path.is_file() {
                return Err(SileroError::Missing {
                    what,
                    path: path.to_path_buf(),
                });
            }
        }
        let env = ort_runtime(dylib)?;
        // One thread each: a call's VAD must not fan out over the cores
        // the other calls need.
        let builder = Session::builder(env)?
            .with_intra_threads(1)
            .map_err(ort::Error::from)?;
        let session = builder
            .with_inter_threads(1)
            .map_err(ort::Error::from)?
            .commit_from_file(model)?;
        Ok(SileroVad {
            session,
            state: vec![0.0; STATE_LEN],
            input: vec![0.0; SILERO_CONTEXT + SILERO_CHUNK],
        })
    }

    /// Loads `silero_vad.onnx` and `libonnxruntime.so.1.31.1` from a folder.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<SileroVad, SileroError> {
        let dir = dir.as_ref();
        SileroVad::load(
            dir.join("silero_vad.onnx"),
            dir.join("libonnxruntime.so.1.31.1"),
        )
    }

    /// Speech probability of one window: `SILERO_CONTEXT` samples already
    /// seen followed by `SILERO_CHUNK` new ones, scaled to −1.0..1.0.
    pub fn predict(&mut self, window: &[f32]) -> Result<f32, SileroError> {
        if window.len() != SILERO_CONTEXT + SILERO_CHUNK {
            return Err(SileroError::Model("window must be 576 samples"));
        }
        self.input.copy_from_slice(window);
        let input = Tensor::from_array((
            [1usize, SILERO_CONTEXT + SILERO_CHUNK],
            self.input.clone().into_boxed_slice(),
        ))?;
        let state = Tensor::from_array(([2usize, 1, 128], self.state.clone().into_boxed_slice()))?;
        let sr = Tensor::from_array(([1usize], vec![16_000i64].into_boxed_slice()))?;
        let outputs = self
            .session
            .run(ort::inputs!["input" => input, "state" => state, "sr" => sr])?;
        let (_, prob) = outputs["output"].try_extract_tensor::<f32>()?;
        let prob = *prob.first().ok_or(SileroError::Model("empty output"))?;
        let (_, state) = outputs["stateN"].try_extract_tensor::<f32>()?;
        if state.len() != STATE_LEN {
            return Err(SileroError::Model("state is not 2×1×128"));
        }
        self.state.copy_from_slice(state);
        Ok(prob)
    }

    /// Forgets the recurrent state (a new talkspurt after a long gap).
    pub fn reset(&mut self) {
        self.state.fill(0.0);
    }
}
