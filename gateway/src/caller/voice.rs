//! The caller's voice: text to 16 kHz PCM with a command-line synthesiser
//! (espeak-ng, or Debian's flite), a WAV reader for what they print, a
//! band-limited resampler to 16 kHz, and a WAV writer for `--save-audio`.
//!
//! Everything here blocks (it runs a process): call it from
//! `spawn_blocking`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The rate the caller hands its lines to the media session at.
pub const VOICE_RATE: u32 = 16_000;

/// Why a line could not be synthesised.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// The synthesiser could not be run.
    #[error("cannot run {program}: {source} (install it: apt-get install {program})")]
    Spawn {
        /// espeak-ng or flite.
        program: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// It ran and failed.
    #[error("{program} failed: {stderr}")]
    Failed {
        /// espeak-ng or flite.
        program: &'static str,
        /// What it printed.
        stderr: String,
    },
    /// Its output is not a WAV we read (16-bit PCM).
    #[error("bad WAV: {0}")]
    Wav(&'static str),
    /// A temporary file failed.
    #[error("temporary file: {0}")]
    Io(#[from] std::io::Error),
}

/// A synthesiser voice: `en-us+f3` (espeak-ng) or `flite:slt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voice {
    /// `espeak-ng -v VOICE -s 160 --stdout TEXT`.
    Espeak(String),
    /// `flite -voice VOICE -t TEXT -o FILE.wav`.
    Flite(String),
}

impl Voice {
    /// Parses `--voice`: `flite:NAME` or an espeak-ng voice name.
    pub fn parse(spec: &str) -> Voice {
        match spec.strip_prefix("flite:") {
            Some(name) => Voice::Flite(name.to_owned()),
            None => Voice::Espeak(spec.to_owned()),
        }
    }

    /// Speaks `text`: mono PCM at [`VOICE_RATE`].
    pub fn synthesize(&self, text: &str) -> Result<Vec<i16>, VoiceError> {
        let wav = match self {
            Voice::Espeak(voice) => {
                let out = Command::new("espeak-ng")
                    .args(["-v", voice, "-s", "160", "--stdout", "--", text])
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|source| VoiceError::Spawn {
                        program: "espeak-ng",
                        source,
                    })?;
                if !out.status.success() {
                    return Err(VoiceError::Failed {
                        program: "espeak-ng",
                        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    });
                }
                out.stdout
            }
            Voice::Flite(voice) => {
                let file = tempfile_path("wav");
                let out = Command::new("flite")
                    .args(["-voice", voice, "-t", text, "-o"])
                    .arg(&file)
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|source| VoiceError::Spawn {
                        program: "flite",
                        source,
                    })?;
                let wav = std::fs::read(&file);
                let _ = std::fs::remove_file(&file);
                if !out.status.success() {
                    return Err(VoiceError::Failed {
                        program: "flite",
                        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    });
                }
                wav?
            }
        };
        let (rate, pcm) = read_wav(&wav)?;
        Ok(resample(&pcm, rate, VOICE_RATE))
    }
}

fn tempfile_path(ext: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "echo-caller-{}-{}.{ext}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Reads a RIFF WAV of 16-bit PCM: (rate, first channel). A data chunk
/// longer than the file (espeak-ng writing to a pipe cannot seek back to
/// fill in sizes) is read to the end.
pub fn read_wav(bytes: &[u8]) -> Result<(u32, Vec<i16>), VoiceError> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(VoiceError::Wav("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut format: Option<(u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = &bytes[at + 8..];
        let body = &body[..size.min(body.len())];
        match id {
            b"fmt " => {
                if body.len() < 16 {
                    return Err(VoiceError::Wav("short fmt chunk"));
                }
                let tag = u16::from_le_bytes([body[0], body[1]]);
                let channels = u16::from_le_bytes([body[2], body[3]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                if tag != 1 || bits != 16 || channels == 0 {
                    return Err(VoiceError::Wav("not 16-bit PCM"));
                }
                format = Some((channels, rate, bits));
            }
            b"data" => {
                let (channels, rate, _) = format.ok_or(VoiceError::Wav("data before fmt"))?;
                let pcm = body
                    .chunks_exact(2 * channels as usize)
                    .map(|frame| i16::from_le_bytes([frame[0], frame[1]]))
                    .collect();
                return Ok((rate, pcm));
            }
            _ => {}
        }
        at += 8 + size + (size & 1);
    }
    Err(VoiceError::Wav("no data chunk"))
}

/// Writes mono 16-bit PCM as a WAV file.
pub fn write_wav(path: &Path, rate: u32, pcm: &[i16]) -> std::io::Result<()> {
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::File::create(path)?.write_all(&out)
}

/// Converts a whole clip between any two rates with a Hann-windowed sinc
/// whose cutoff sits under the lower Nyquist frequency (synthesisers speak
/// at 22 050 Hz, which the media session's resampler does not take).
pub fn resample(pcm: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || pcm.is_empty() {
        return pcm.to_vec();
    }
    const HALF_TAPS: i64 = 16;
    let ratio = f64::from(to) / f64::from(from);
    let cutoff = ratio.min(1.0) * 0.92;
    let out_len = (pcm.len() as f64 * ratio).floor() as usize;
    let mut out = Vec::with_capacity(out_len);
    let step = f64::from(from) / f64::from(to);
    let width = HALF_TAPS as f64 / cutoff;
    for n in 0..out_len {
        let t = n as f64 * step;
        let centre = t.floor() as i64;
        let reach = width.ceil() as i64;
        let mut acc = 0.0;
        let mut norm = 0.0;
        for k in (centre - reach)..=(centre + reach + 1) {
            let x = t - k as f64;
            if x.abs() >= width {
                continue;
            }
            let arg = std::f64::consts::PI * x * cutoff;
            let sinc = if arg.abs() < 1e-9 {
                1.0
            } else {
                arg.sin() / arg
            };
            let window = 0.5 + 0.5 * (std::f64::consts::PI * x / width).cos();
            let weight = sinc * window;
            norm += weight;
            if k >= 0 && (k as usize) < pcm.len() {
                acc += weight * f64::from(pcm[k as usize]);
            }
        }
        let sample = if norm.abs() > 1e-9 { acc / norm } else { 0.0 };
        out.push(sample.round().clamp(-32768.0, 32767.0) as i16);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                ((i as f64 / f64::from(rate) * hz * std::f64::consts::TAU).sin() * 10_000.0) as i16
            })
            .collect()
    }

    fn rms(pcm: &[i16]) -> f64 {
        (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt()
    }

    #[test]
    fn wav_round_trip_and_streamed_sizes() {
        let path = tempfile_path("wav");
        let pcm = tone(22_050, 440.0, 2205);
        write_wav(&path, 22_050, &pcm).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(read_wav(&bytes).unwrap(), (22_050, pcm.clone()));
        // As espeak-ng writes to a pipe: sizes 0x7ffff000-ish.
        bytes[4..8].copy_from_slice(&0x7fff_f024u32.to_le_bytes());
        bytes[40..44].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        assert_eq!(read_wav(&bytes).unwrap(), (22_050, pcm));
        assert!(read_wav(b"RIFF....WAVE").is_err());
        assert!(read_wav(b"nonsense").is_err());
    }

    #[test]
    fn resampling_keeps_speech_band_and_drops_what_aliases() {
        let speech = resample(&tone(22_050, 1_000.0, 22_050), 22_050, 16_000);
        assert_eq!(speech.len(), 16_000);
        let level = rms(&speech[1000..15_000]);
        assert!((level - 7071.0).abs() < 300.0, "{level}");
        // 10 kHz is above 8 kHz Nyquist: it must not fold back.
        let high = resample(&tone(22_050, 10_000.0, 22_050), 22_050, 16_000);
        assert!(rms(&high[1000..15_000]) < 300.0);
    }

    #[test]
    fn espeak_speaks_when_installed() {
        match Voice::parse("en-us+f3").synthesize("Linda Park") {
            Ok(pcm) => assert!(pcm.len() > VOICE_RATE as usize / 4, "{}", pcm.len()),
            Err(VoiceError::Spawn { .. }) => eprintln!("espeak-ng not installed; skipped"),
            Err(e) => panic!("{e}"),
        }
        assert_eq!(Voice::parse("flite:slt"), Voice::Flite("slt".into()));
    }

    #[test]
    fn flite_speaks_when_installed() {
        match Voice::parse("flite:slt").synthesize("Linda Park") {
            Ok(pcm) => assert!(pcm.len() > VOICE_RATE as usize / 4, "{}", pcm.len()),
            Err(VoiceError::Spawn { .. }) => eprintln!("flite not installed; skipped"),
            Err(e) => panic!("{e}"),
        }
    }
}
