//! The process's one ONNX Runtime, loaded from a file at run time (ort's
//! `load-dynamic`). `ort` (2.0.0-rc.15) allows one environment per process
//! and keeps it private, so echo-media owns it
//! ([`echo_media::vad::ort_runtime`]) and every engine here gets it from
//! there, whichever of the VAD and the voice loads first.

use std::path::Path;

use echo_media::vad::{ort_runtime, SileroError};
use ort::environment::Environment;

use crate::SpeechError;

/// The ONNX Runtime library file `scripts/fetch-models.sh` puts in `models/`.
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.31.1";

/// Loads ONNX Runtime from `lib_path` (the versioned library file) and
/// returns the process-wide environment; later calls with the same path
/// return the same one. Fails if the file is missing, or if another library
/// was loaded before.
pub fn ensure_ort(lib_path: &Path) -> Result<&'static Environment, SpeechError> {
    if !lib_path.is_file() {
        return Err(SpeechError::Missing {
            what: "ONNX Runtime library",
            path: lib_path.display().to_string(),
            hint: "run scripts/fetch-models.sh",
        });
    }
    ort_runtime(lib_path).map_err(|e| match e {
        SileroError::OtherRuntime { .. } => SpeechError::engine("onnxruntime", e),
        other => SpeechError::engine(
            "onnxruntime",
            format!("{other}: {:?}", std::error::Error::source(&other)),
        ),
    })
}
