//! Cost per 20 ms frame of the media paths, for PCMU and Opus:
//! - inbound: RTP parse → jitter buffer → decode → resample to 16 kHz → VAD
//!   gate;
//! - outbound: resample a 16 kHz TTS frame to the codec rate → encode →
//!   packetise;
//! - session: one whole `MediaSession` frame (a packet in, a tick, a packet
//!   out) with a prompt playing.
//!
//! `cargo bench -p echo-media --bench frame -- --measurement-time 3`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use echo_media::codec::{AudioDecoder, AudioEncoder, CodecKind, Decoder, Encoder};
use echo_media::jitter::{JitterBuffer, JitterConfig, Playout};
use echo_media::resample::Resampler;
use echo_media::rtp::{write_packet, RtpHeader, RtpPacket};
use echo_media::vad::{Vad, VadConfig, FRAME_SAMPLES};
use echo_media::{MediaSession, SessionConfig};

const FRAME: Duration = Duration::from_millis(20);

fn voice(rate: u32, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let v: f64 = (1..=8)
                .map(|h| {
                    (2.0 * std::f64::consts::PI * 140.0 * f64::from(h) * t).sin() / f64::from(h)
                })
                .sum();
            (5000.0 * v) as i16
        })
        .collect()
}

/// A second of caller packets, sent in a loop.
fn caller_packets(kind: CodecKind, payload_type: u8) -> Vec<Vec<u8>> {
    caller_packets_scaled(kind, payload_type, 1.0)
}

/// A second of caller packets at `gain` times the usual level.
fn caller_packets_scaled(kind: CodecKind, payload_type: u8, gain: f64) -> Vec<Vec<u8>> {
    let rate = kind.sample_rate();
    let per_frame = kind.samples_per_frame(20);
    let audio: Vec<i16> = voice(rate, per_frame * 50)
        .into_iter()
        .map(|s| (f64::from(s) * gain) as i16)
        .collect();
    let mut encoder = Encoder::new(kind).unwrap();
    audio
        .chunks(per_frame)
        .enumerate()
        .map(|(n, pcm)| {
            let mut payload = Vec::new();
            encoder.encode(pcm, &mut payload).unwrap();
            let header = RtpHeader {
                payload_type,
                marker: n == 0,
                sequence: n as u16,
                timestamp: (n * per_frame) as u32,
                ssrc: 1,
            };
            let mut datagram = Vec::new();
            write_packet(&header, &payload, &mut datagram).unwrap();
            datagram
        })
        .collect()
}

fn inbound(c: &mut Criterion, kind: CodecKind, payload_type: u8) {
    let packets = caller_packets(kind, payload_type);
    let mut jitter = JitterBuffer::new(JitterConfig {
        clock_rate: kind.clock_rate(),
        ..JitterConfig::default()
    });
    let mut decoder = Decoder::new(kind).unwrap();
    let mut resampler = Resampler::new(kind.sample_rate(), 16_000).unwrap();
    let mut vad = Vad::new(VadConfig::default());
    let (mut pcm, mut hearing) = (Vec::with_capacity(5760), Vec::with_capacity(2000));
    let per_frame = kind.samples_per_frame(20) as u32;
    let t0 = Instant::now();
    let mut n: u32 = 0;
    c.bench_function(&format!("inbound/{}", kind.encoding_name()), |b| {
        b.iter(|| {
            let now = t0 + FRAME * n;
            let datagram = &packets[n as usize % packets.len()];
            let packet = RtpPacket::parse(black_box(datagram)).unwrap();
            // Sequence and timestamp keep running across the loop.
            let header = RtpHeader {
                sequence: n as u16,
                timestamp: n.wrapping_mul(per_frame),
                ..packet.header
            };
            jitter.push(now, &header, packet.payload);
            pcm.clear();
            if let Playout::Packet(p) = jitter.poll(now + FRAME) {
                decoder.decode(&p.payload, &mut pcm).unwrap();
                jitter.recycle(p.payload);
            }
            resampler.process(&pcm, &mut hearing);
            let mut voiced = 0;
            while hearing.len() >= FRAME_SAMPLES {
                voiced += usize::from(vad.process(&hearing[..FRAME_SAMPLES], None).voiced);
                hearing.drain(..FRAME_SAMPLES);
            }
            n += 1;
            black_box(voiced)
        })
    });
}

fn outbound(c: &mut Criterion, kind: CodecKind, payload_type: u8) {
    // What a TTS engine hands over: 16 kHz.
    let tts = voice(16_000, 320 * 50);
    let mut resampler = Resampler::new(16_000, kind.sample_rate()).unwrap();
    let mut encoder = Encoder::new(kind).unwrap();
    let per_frame = kind.samples_per_frame(20);
    let (mut pcm, mut payload, mut datagram) = (
        Vec::with_capacity(4000),
        Vec::with_capacity(1500),
        Vec::with_capacity(1500),
    );
    let mut n: usize = 0;
    c.bench_function(&format!("outbound/{}", kind.encoding_name()), |b| {
        b.iter(|| {
            let frame = &tts[(n % 50) * 320..][..320];
            resampler.process(black_box(frame), &mut pcm);
            payload.clear();
            if pcm.len() >= per_frame {
                encoder.encode(&pcm[..per_frame], &mut payload).unwrap();
                pcm.drain(..per_frame);
            }
            let header = RtpHeader {
                payload_type,
                marker: false,
                sequence: n as u16,
                timestamp: (n * per_frame) as u32,
                ssrc: 2,
            };
            write_packet(&header, &payload, &mut datagram).unwrap();
            n += 1;
            black_box(datagram.len())
        })
    });
}

fn session(c: &mut Criterion, kind: CodecKind, payload_type: u8) {
    let remote: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let t0 = Instant::now();
    let mut session =
        MediaSession::new(SessionConfig::new(kind, payload_type, Some(remote)), 9, t0).unwrap();
    let prompt = voice(16_000, 16_000 * 2);
    // The caller is quiet (below the gate) so that it does not barge in.
    let packets: Vec<Vec<u8>> = caller_packets_scaled(kind, payload_type, 0.01);
    let per_frame = kind.samples_per_frame(20) as u32;
    let mut n: u32 = 0;
    c.bench_function(&format!("session/{}", kind.encoding_name()), |b| {
        b.iter(|| {
            if !session.is_playing() {
                session.play(&prompt, 16_000).unwrap();
            }
            assert!(
                n < 10 || session.is_playing(),
                "no barge-in: the prompt plays on"
            );
            let now = t0 + FRAME * n;
            let mut datagram = packets[n as usize % packets.len()].clone();
            datagram[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            datagram[4..8].copy_from_slice(&n.wrapping_mul(per_frame).to_be_bytes());
            session.handle_rtp(now, remote, &datagram);
            session.handle_timeout(now);
            let mut bytes = 0;
            while let Some(t) = session.poll_transmit() {
                bytes += t.data.len();
            }
            while session.poll_event().is_some() {}
            n += 1;
            black_box(bytes)
        })
    });
}

/// The pieces of the G.711 paths, to see where a frame's time goes.
fn parts(c: &mut Criterion) {
    let pcm8 = voice(8000, 160);
    let pcm16 = voice(16_000, 320);
    let mut out = Vec::with_capacity(1000);
    let mut up = Resampler::new(8000, 16_000).unwrap();
    c.bench_function("parts/resample 8k->16k", |b| {
        b.iter(|| {
            out.clear();
            up.process(black_box(&pcm8), &mut out);
            black_box(out.len())
        })
    });
    let mut down = Resampler::new(16_000, 8000).unwrap();
    c.bench_function("parts/resample 16k->8k", |b| {
        b.iter(|| {
            out.clear();
            down.process(black_box(&pcm16), &mut out);
            black_box(out.len())
        })
    });
    let mut vad = Vad::new(VadConfig::default());
    c.bench_function("parts/vad gate", |b| {
        b.iter(|| black_box(vad.process(black_box(&pcm16), Some(-20.0))))
    });
    let mut encoder = Encoder::new(CodecKind::Pcmu).unwrap();
    let mut payload = Vec::with_capacity(200);
    encoder.encode(&pcm8, &mut payload).unwrap();
    let mut decoder = Decoder::new(CodecKind::Pcmu).unwrap();
    let mut decoded = Vec::with_capacity(200);
    c.bench_function("parts/pcmu decode+encode", |b| {
        b.iter(|| {
            decoded.clear();
            decoder.decode(black_box(&payload), &mut decoded).unwrap();
            let mut again = Vec::with_capacity(0);
            std::mem::swap(&mut again, &mut payload);
            again.clear();
            encoder.encode(&decoded, &mut again).unwrap();
            payload = again;
            black_box(payload.len())
        })
    });
}

fn benches(c: &mut Criterion) {
    parts(c);
    for (kind, payload_type) in [(CodecKind::Pcmu, 0), (CodecKind::Opus, 111)] {
        inbound(c, kind, payload_type);
        outbound(c, kind, payload_type);
        session(c, kind, payload_type);
    }
}

criterion_group!(frame, benches);
criterion_main!(frame);
