//! ort (rc.15) allows one environment per process and keeps it private:
//! an engine that builds its own (echo-media's Silero VAD, today) shuts
//! [`ensure_ort`] out. This pins down that the failure is a clear error
//! that names the fix, not a panic. Its own test binary: it spoils the
//! process for every other ONNX test.

use std::path::PathBuf;

use echo_speech::onnx::{ensure_ort, ORT_LIBRARY};
use echo_speech::SpeechError;

#[test]
fn an_environment_built_elsewhere_is_a_clear_error() {
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(ORT_LIBRARY);
    let _theirs = ort::init_from(&lib)
        .expect("the ONNX Runtime library from scripts/fetch-models.sh")
        .build()
        .expect("first environment");
    match ensure_ort(&lib) {
        Err(SpeechError::Engine { message, .. }) => {
            assert!(message.contains("ensure_ort"), "{message}")
        }
        other => panic!("{:?}", other.map(|_| "an environment")),
    }
}
