//! Silero VAD through ONNX Runtime, with the files `scripts/fetch-models.sh`
//! puts in `./models` (or `$ECHO_MODELS_DIR`). Missing files fail the test:
//! `./x test` fetches them first.

use std::path::PathBuf;
use std::process::Command;

use echo_media::vad::{SileroError, SileroVad, Vad, VadConfig, FRAME_SAMPLES};

fn models_dir() -> PathBuf {
    std::env::var_os("ECHO_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../models")))
}

fn silero() -> SileroVad {
    let dir = models_dir();
    SileroVad::load_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "Silero VAD could not be loaded from {}: {e}\n\
             run scripts/fetch-models.sh (or ./x setup), or set ECHO_MODELS_DIR",
            dir.display()
        )
    })
}

/// `text` spoken by espeak-ng, 16 kHz mono (its 22 050 Hz output resampled
/// by linear interpolation after a 2-tap low-pass: plenty for a VAD).
fn espeak(text: &str) -> Vec<i16> {
    let out = Command::new("espeak-ng")
        .args(["-v", "en-us+f3", "--stdout", text])
        .output()
        .expect("espeak-ng is needed for this test (apt-get install espeak-ng)");
    assert!(out.status.success(), "espeak-ng failed");
    let wav = out.stdout;
    // Find the "data" chunk of the RIFF file.
    let mut pos = 12;
    let mut data: &[u8] = &[];
    while pos + 8 <= wav.len() {
        let id = &wav[pos..pos + 4];
        let len = u32::from_le_bytes(wav[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &wav[pos + 8..];
        if id == b"data" {
            data = &body[..len.min(body.len())];
            break;
        }
        pos += 8 + len;
    }
    let x: Vec<f32> = data
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32)
        .collect();
    assert!(x.len() > 22_050 / 2, "espeak-ng gave {} samples", x.len());
    let lp: Vec<f32> = x.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
    let n = (lp.len() as f64 * 16_000.0 / 22_050.0) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 * 22_050.0 / 16_000.0;
            let (k, f) = (t as usize, (t.fract()) as f32);
            let a = lp[k.min(lp.len() - 1)];
            let b = lp[(k + 1).min(lp.len() - 1)];
            (a + f * (b - a)) as i16
        })
        .collect()
}

#[test]
fn missing_files_are_a_typed_error() {
    let err = SileroVad::load(
        "/nonexistent/silero_vad.onnx",
        "/nonexistent/libonnxruntime.so",
    )
    .unwrap_err();
    assert!(matches!(err, SileroError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("fetch-models.sh"), "{err}");
}

#[test]
fn silero_marks_speech_voiced_and_silence_unvoiced() {
    let speech = espeak("Hello, I would like to book an appointment for next Tuesday.");
    let mut vad = Vad::with_silero(VadConfig::default(), silero());
    assert!(vad.has_silero());

    let silence = vec![0i16; FRAME_SAMPLES * 50];
    let quiet: Vec<_> = silence
        .chunks(FRAME_SAMPLES)
        .map(|f| vad.process(f, None))
        .collect();
    assert!(quiet.iter().all(|f| !f.voiced), "silence voiced");

    let out: Vec<_> = speech
        .chunks(FRAME_SAMPLES)
        .map(|f| vad.process(f, None))
        .collect();
    let voiced = out.iter().filter(|f| f.voiced).count();
    assert!(
        voiced * 2 > out.len(),
        "only {voiced} of {} speech frames voiced",
        out.len()
    );
    assert!(vad.stats().silero_runs > 0);
    assert_eq!(vad.stats().silero_errors, 0);

    // Silero's own scores: high somewhere in speech, low on silence.
    let mut model = silero();
    let window_of = |x: &[i16]| -> Vec<f32> { x.iter().map(|&s| s as f32 / 32768.0).collect() };
    let mut best = 0.0f32;
    for w in speech.chunks_exact(576) {
        best = best.max(model.predict(&window_of(w)).unwrap());
    }
    assert!(best > 0.8, "best speech probability {best}");
    model.reset();
    let p = model.predict(&[0.0; 576]).unwrap();
    assert!(p < 0.1, "silence probability {p}");
}
