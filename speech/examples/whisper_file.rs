//! Transcribes 16-bit PCM files with the Whisper recogniser:
//!
//! ```text
//! cargo run --release -p echo-speech --example whisper_file -- FILE.wav|FILE.raw [BIAS TERM…]
//! ```
//!
//! A `.wav` is converted to 16 kHz mono by sox; anything else is read as
//! raw 16 kHz mono little-endian PCM.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;

use echo_speech::whisper::{WhisperOptions, WhisperRecognizer};
use echo_speech::Bias;

fn main() {
    let mut args = std::env::args().skip(1);
    let file = args.next().expect("usage: whisper_file FILE [BIAS TERM…]");
    let bias = Bias::terms(args);
    let bytes = if file.ends_with(".wav") {
        let out = Command::new("sox")
            .args([
                file.as_str(),
                "-t",
                "raw",
                "-e",
                "signed",
                "-b",
                "16",
                "-c",
                "1",
            ])
            .args(["-r", "16000", "-"])
            .output()
            .expect("sox runs");
        assert!(out.status.success(), "sox failed on {file}");
        out.stdout
    } else {
        std::fs::read(&file).expect("file readable")
    };
    let pcm: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let model = WhisperRecognizer::load(&support::model_dir(), WhisperOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let (heard, timing) = model.transcribe_timed(&pcm, &bias).expect("decodes");
    println!(
        "{:.1} s audio, mel {:.1} ms, decode {:.0} ms, confidence {:?}\n{}",
        pcm.len() as f64 / 16_000.0,
        timing.mel.as_secs_f64() * 1000.0,
        timing.decode.as_secs_f64() * 1000.0,
        heard.confidence,
        heard.text
    );
}
