//! Cost of the VAD tiers: the gate per 20 ms frame, Silero per inference
//! (512 + 64 samples), and the whole detector per frame on speech.
//!
//! `cargo bench -p echo-media --bench vad` (Silero needs
//! `scripts/fetch-models.sh`; without it only the gate is measured).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use echo_media::vad::{Gate, SileroVad, Vad, VadConfig, FRAME_SAMPLES};

fn models_dir() -> PathBuf {
    std::env::var_os("ECHO_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../models")))
}

/// A second of a vowel-like test signal (harmonics of 120 Hz shaped by two
/// formants) over a little noise, then half a second of the noise alone (so
/// the gate's noise floor does not creep up to the looped signal).
fn signal() -> Vec<i16> {
    let mut seed = 1u32;
    (0..24_000)
        .map(|n| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let t = n as f32 / 16_000.0;
            let s: f32 = (1..25)
                .map(|k| {
                    let f = 120.0 * k as f32;
                    let a = (-((f - 700.0) / 150.0).powi(2)).exp()
                        + 0.7 * (-((f - 1200.0) / 200.0).powi(2)).exp();
                    a * (2.0 * std::f32::consts::PI * f * t).sin()
                })
                .sum();
            let s = if n < 16_000 { s } else { 0.0 };
            (3000.0 * s + ((seed >> 16) as f32 / 65536.0 - 0.5) * 200.0) as i16
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let audio = signal();
    let frames: Vec<&[i16]> = audio.chunks(FRAME_SAMPLES).collect();

    let mut gate = Gate::new();
    let mut i = 0;
    c.bench_function("gate per 20 ms frame", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            black_box(gate.process(black_box(frames[i]), -45.0, 3.0, true))
        })
    });

    let mut fvad = webrtc_vad::Vad::new_with_rate_and_mode(
        webrtc_vad::SampleRate::Rate16kHz,
        webrtc_vad::VadMode::Quality,
    );
    c.bench_function("webrtc-vad per 20 ms frame (for comparison)", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            black_box(fvad.is_voice_segment(black_box(frames[i])).unwrap_or(false))
        })
    });

    let mut vad = Vad::new(VadConfig::default());
    c.bench_function("Vad gate alone per frame, silence", |b| {
        let silence = [0i16; FRAME_SAMPLES];
        b.iter(|| black_box(vad.process(black_box(&silence), None)))
    });

    match SileroVad::load_dir(models_dir()) {
        Ok(mut silero) => {
            let window: Vec<f32> = audio[..576].iter().map(|&s| s as f32 / 32768.0).collect();
            c.bench_function("Silero per inference (576 samples)", |b| {
                b.iter(|| black_box(silero.predict(black_box(&window)).unwrap()))
            });
            let silero = SileroVad::load_dir(models_dir()).unwrap();
            let mut vad = Vad::with_silero(VadConfig::default(), silero);
            let mut i = 0;
            c.bench_function("Vad gate + Silero per frame, 2/3 speech", |b| {
                b.iter(|| {
                    i = (i + 1) % frames.len();
                    black_box(vad.process(black_box(frames[i]), None))
                })
            });
        }
        Err(e) => eprintln!("Silero not measured: {e}"),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
