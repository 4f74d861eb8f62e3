//! Synthetic callers for the recogniser's tests and benchmark: espeak-ng
//! speaks, sox resamples (both Debian packages, installed by `./x setup`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `models/whisper-tiny.en`, as `scripts/fetch-models.sh` makes it.
pub fn model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/whisper-tiny.en")
}

/// `text` spoken by espeak-ng (`en-us+f3`, 150 words a minute) as 16 kHz
/// mono PCM; with `telephone`, squeezed through 8 kHz and back first.
pub fn speak(text: &str, telephone: bool) -> Vec<i16> {
    let mut espeak = Command::new("espeak-ng")
        .args(["-v", "en-us+f3", "-s", "150", "--stdout", text])
        .stdout(Stdio::piped())
        .spawn()
        .expect("espeak-ng runs (apt-get install espeak-ng)");
    let wav = espeak.stdout.take().expect("piped");
    // -D: no dither, so that the same text gives the same samples.
    let mut sox = Command::new("sox");
    sox.args([
        "-q", "-D", "-t", "wav", "-", "-t", "raw", "-e", "signed", "-b", "16", "-c", "1",
    ]);
    sox.args(["-r", "16000", "-"]);
    if telephone {
        sox.args(["rate", "8000", "rate", "16000"]);
    }
    let out = sox
        .stdin(Stdio::from(wav))
        .stderr(Stdio::inherit())
        .output()
        .expect("sox runs (apt-get install sox)");
    assert!(espeak.wait().expect("espeak-ng ends").success());
    assert!(out.status.success(), "sox failed");
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// `text` spoken by `voice` as 16 kHz mono PCM (through 8 kHz and back
/// with `telephone`): `espeak` (as [`speak`]) or `flite:VOICE` (Debian's
/// flite, e.g. `flite:slt`).
pub fn speak_as(voice: &str, text: &str, telephone: bool) -> Vec<i16> {
    let Some(name) = voice.strip_prefix("flite:") else {
        return speak(text, telephone);
    };
    let wav = std::env::temp_dir().join(format!(
        "echo-speech-flite-{}-{}.wav",
        std::process::id(),
        text.len()
    ));
    let status = Command::new("flite")
        .args(["-voice", name, "-t", text, "-o"])
        .arg(&wav)
        .status()
        .expect("flite runs (apt-get install flite)");
    assert!(status.success(), "flite failed");
    let mut sox = Command::new("sox");
    sox.args(["-q", "-D"]).arg(&wav);
    sox.args([
        "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", "16000", "-",
    ]);
    if telephone {
        sox.args(["rate", "8000", "rate", "16000"]);
    }
    let out = sox.output().expect("sox runs (apt-get install sox)");
    let _ = std::fs::remove_file(&wav);
    assert!(out.status.success(), "sox failed");
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}
