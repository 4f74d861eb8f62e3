//! The Silero VAD (echo-media) and the Piper voice share the process's one
//! ONNX Runtime environment, whichever loads first. Its own test binary: it
//! loads the runtime from scratch.

use std::path::PathBuf;

use echo_speech::onnx::{ensure_ort, ORT_LIBRARY};

#[test]
fn the_vad_and_the_voice_share_one_runtime() {
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models");
    let vad = echo_media::vad::SileroVad::load_dir(&models);
    assert!(vad.is_ok(), "Silero: {:?}", vad.err());
    ensure_ort(&models.join(ORT_LIBRARY)).expect("the same environment for the voice");
    // Relative and absolute spellings of the library are the same file.
    ensure_ort(&PathBuf::from("../models").join(ORT_LIBRARY))
        .expect("same library, other spelling");
}
