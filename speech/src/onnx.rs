//! The process's one ONNX Runtime: loaded from a file at run time (ort's
//! `load-dynamic`), with the one environment ort allows per process.
//!
//! `ort` (2.0.0-rc.15) refuses a second `Environment` in a process and
//! keeps the first one private, so every engine that runs ONNX models must
//! get its environment from the same place: [`ensure_ort`]. An engine that
//! builds its own first (echo-media's Silero VAD does, today) makes this
//! one fail with a clear error, and the other way round; media's
//! `silero.rs` should call this function instead of its own `runtime()`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::SpeechError;

/// The ONNX Runtime library file `scripts/fetch-models.sh` puts in `models/`.
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.31.1";

static RUNTIME: OnceLock<(PathBuf, Environment)> = OnceLock::new();
static RUNTIME_INIT: Mutex<()> = Mutex::new(());

/// Loads ONNX Runtime from `lib_path` (the versioned library file) and
/// builds the process-wide environment, once; later calls with the same
/// path return it. Fails if the file is missing, if another library was
/// loaded before, or if something else in the process built ort's
/// environment without this function.
pub fn ensure_ort(lib_path: &Path) -> Result<&'static Environment, SpeechError> {
    let _guard = RUNTIME_INIT.lock().unwrap_or_else(|e| e.into_inner());
    // "models/x" and "/work/models/x" are the same library.
    let canonical = std::fs::canonicalize(lib_path);
    let lib_path = canonical.as_deref().unwrap_or(lib_path);
    if let Some((loaded, env)) = RUNTIME.get() {
        return if loaded == lib_path {
            Ok(env)
        } else {
            Err(SpeechError::engine(
                "onnxruntime",
                format!(
                    "already loaded from {}, not {} (one per process)",
                    loaded.display(),
                    lib_path.display()
                ),
            ))
        };
    }
    if !lib_path.is_file() {
        return Err(SpeechError::Missing {
            what: "ONNX Runtime library",
            path: lib_path.display().to_string(),
            hint: "run scripts/fetch-models.sh",
        });
    }
    let env = ort::init_from(lib_path)
        .map_err(|e| SpeechError::engine("onnxruntime", e))?
        .with_name("echo")
        .build()
        .map_err(|e| {
            SpeechError::engine(
                "onnxruntime",
                format!("{e} (another engine built its own environment instead of calling echo_speech::onnx::ensure_ort)"),
            )
        })?;
    Ok(&RUNTIME.get_or_init(|| (lib_path.to_path_buf(), env)).1)
}
