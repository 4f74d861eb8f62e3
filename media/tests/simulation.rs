//! Deterministic simulation (STYLE.md 8): a simulated caller and a
//! `MediaSession`, joined by two seeded network emulators, stepped to the
//! earliest deadline in virtual time. No sleeps; every run of a seed is the
//! same run.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use echo_media::codec::{AudioDecoder, AudioEncoder, CodecKind, Decoder, Encoder};
use echo_media::dtmf::TelephoneEvent;
use echo_media::netsim::{NetConfig, NetSim};
use echo_media::rtcp::{self, ReportBlock};
use echo_media::rtp::{write_packet, RtpHeader, RtpPacket};
use echo_media::{MediaEvent, MediaSession, SessionConfig, TransmitKind};

const MS: Duration = Duration::from_millis(1);
const FRAME: Duration = Duration::from_millis(20);
const TELEPHONE_EVENT: u8 = 101;

fn caller_addr() -> SocketAddr {
    "192.0.2.10:40000".parse().unwrap()
}

/// A voiced, speech-like signal: harmonics of a 140 Hz pitch under a slow
/// syllable envelope, about −18 dBFS.
fn speechlike(rate: u32, start_sample: usize, samples: usize) -> Vec<i16> {
    (start_sample..start_sample + samples)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let envelope = 0.7 + 0.3 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            let voice: f64 = (1..=12)
                .map(|h| {
                    let f = 140.0 * f64::from(h);
                    (2.0 * std::f64::consts::PI * f * t).sin() / f64::from(h)
                })
                .sum();
            (4000.0 * envelope * voice) as i16
        })
        .collect()
}

/// What the caller sends in a given 20 ms frame.
type Script = Box<dyn FnMut(usize) -> Option<Vec<i16>>>;

/// The far end: sends PCMU every 20 ms from its script (nothing when the
/// script says `None`), keeps what it receives.
struct Caller {
    encoder: Encoder,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    frame: usize,
    next_send: Option<Instant>,
    script: Script,
    /// Telephone-event packets to send: (when, marker, timestamp, payload).
    dtmf: Vec<(Instant, bool, u32, [u8; 4])>,
    received: Vec<(Instant, Vec<u8>)>,
}

impl Caller {
    fn new(t0: Instant, script: Script) -> Self {
        Caller {
            encoder: Encoder::new(CodecKind::Pcmu).unwrap(),
            ssrc: 0xCA11_E500,
            sequence: 65_000,
            timestamp: 1_000,
            frame: 0,
            next_send: Some(t0),
            script,
            dtmf: Vec::new(),
            received: Vec::new(),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let dtmf = self.dtmf.iter().map(|d| d.0).min();
        [self.next_send, dtmf].into_iter().flatten().min()
    }

    fn send_due(&mut self, now: Instant, net: &mut NetSim) {
        while let Some(at) = self.next_send.filter(|&t| t <= now) {
            if let Some(pcm) = (self.script)(self.frame) {
                let mut payload = Vec::new();
                self.encoder.encode(&pcm, &mut payload).unwrap();
                let header = RtpHeader {
                    payload_type: 0,
                    marker: false,
                    sequence: self.sequence,
                    timestamp: self.timestamp,
                    ssrc: self.ssrc,
                };
                let mut datagram = Vec::new();
                write_packet(&header, &payload, &mut datagram).unwrap();
                net.send(at, &datagram);
                self.sequence = self.sequence.wrapping_add(1);
            }
            self.timestamp = self.timestamp.wrapping_add(160);
            self.frame += 1;
            self.next_send = Some(at + FRAME);
        }
        self.dtmf.sort_by_key(|d| d.0);
        while self.dtmf.first().is_some_and(|d| d.0 <= now) {
            let (at, marker, timestamp, payload) = self.dtmf.remove(0);
            let header = RtpHeader {
                payload_type: TELEPHONE_EVENT,
                marker,
                sequence: self.sequence,
                timestamp,
                ssrc: self.ssrc,
            };
            let mut datagram = Vec::new();
            write_packet(&header, &payload, &mut datagram).unwrap();
            net.send(at, &datagram);
            self.sequence = self.sequence.wrapping_add(1);
        }
    }

    /// Queues one RFC 4733 key press starting at `at`.
    fn press(&mut self, at: Instant, event: u8, marker: bool, drop_first: bool) {
        let timestamp = 50_000 + event as u32 * 7919 + self.dtmf.len() as u32;
        let mut packets = Vec::new();
        for (i, offset) in [0u64, 50, 100, 120, 140].into_iter().enumerate() {
            let end = i >= 2;
            let payload = TelephoneEvent {
                event,
                end,
                volume: 10,
                duration: (offset.min(100) * 8 + 400).min(800) as u16,
            }
            .to_bytes();
            packets.push((
                at + MS * offset as u32,
                marker && i == 0,
                timestamp,
                payload,
            ));
        }
        if drop_first {
            packets.remove(0);
        }
        self.dtmf.extend(packets);
    }
}

struct Sim {
    now: Instant,
    session: MediaSession,
    caller: Caller,
    up: NetSim,
    down: NetSim,
    events: Vec<(Instant, MediaEvent)>,
    /// Every RTP/RTCP transmit of the session: (due, kind, bytes).
    sent: Vec<(Instant, TransmitKind, Vec<u8>)>,
}

impl Sim {
    fn new(config: SessionConfig, caller: Caller, up: NetConfig, seed: u64, t0: Instant) -> Self {
        Sim {
            now: t0,
            session: MediaSession::new(config, 0x5E55_1011, t0).unwrap(),
            caller,
            up: NetSim::new(up, seed),
            down: NetSim::new(
                NetConfig {
                    delay: 10 * MS,
                    ..NetConfig::default()
                },
                seed + 1,
            ),
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Steps everything to the earliest deadline until `end`.
    fn run_until(&mut self, end: Instant) {
        loop {
            let next = [
                self.session.poll_timeout(),
                self.caller.next_deadline(),
                self.up.next_delivery(),
                self.down.next_delivery(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
            if next > end {
                self.now = end;
                return;
            }
            assert!(next >= self.now, "time never goes back");
            self.now = next;
            let now = self.now;
            self.caller.send_due(now, &mut self.up);
            while let Some(datagram) = self.up.deliver(now) {
                self.session.handle_rtp(now, caller_addr(), &datagram);
            }
            self.session.handle_timeout(now);
            while let Some(transmit) = self.session.poll_transmit() {
                assert!(transmit.due <= now, "nothing is due in the future");
                if transmit.kind == TransmitKind::Rtp {
                    self.down.send(now, &transmit.data);
                }
                self.sent.push((transmit.due, transmit.kind, transmit.data));
            }
            while let Some(event) = self.session.poll_event() {
                self.events.push((now, event));
            }
            while let Some(datagram) = self.down.deliver(now) {
                self.caller.received.push((now, datagram));
            }
        }
    }

    fn rtp_sent(&self) -> Vec<(Instant, RtpHeader, Vec<u8>)> {
        self.sent
            .iter()
            .filter(|(_, kind, _)| *kind == TransmitKind::Rtp)
            .map(|(due, _, data)| {
                let packet = RtpPacket::parse(data).unwrap();
                (*due, packet.header, packet.payload.to_vec())
            })
            .collect()
    }
}

fn config() -> SessionConfig {
    let mut config = SessionConfig::new(CodecKind::Pcmu, 0, Some(caller_addr()));
    config.telephone_event = Some(TELEPHONE_EVENT);
    config
}

fn level(payload: &[u8]) -> i32 {
    let mut decoder = Decoder::new(CodecKind::Pcmu).unwrap();
    let mut pcm = Vec::new();
    decoder.decode(payload, &mut pcm).unwrap();
    pcm.iter().map(|s| i32::from(*s).abs()).max().unwrap_or(0)
}

#[test]
fn jitter_buffer_counts_match_the_network() {
    for seed in [1, 2, 3] {
        let t0 = Instant::now();
        let frames = 1500;
        let script: Script = Box::new(move |n| (n < frames).then(|| vec![0i16; 160]));
        let network = NetConfig {
            delay: 40 * MS,
            jitter: 60 * MS,
            loss: 0.03,
            burst: Some((0.005, 0.4)),
            duplicate: 0.02,
            reorder: 0.02,
            reorder_delay: 30 * MS,
        };
        let mut sim = Sim::new(config(), Caller::new(t0, script), network, seed, t0);
        sim.run_until(t0 + Duration::from_secs(32));
        let net = sim.up.stats;
        let jb = sim.session.stats().jitter;
        assert_eq!(net.sent, frames as u64, "seed {seed}");
        assert!(net.lost > 20 && net.duplicated > 10, "seed {seed}: {net:?}");
        // Every delivered datagram is either new or a duplicate.
        assert_eq!(
            jb.received + jb.duplicate,
            net.delivered,
            "seed {seed}: {jb:?}"
        );
        assert_eq!(jb.duplicate, net.duplicated, "seed {seed}: {jb:?}");
        // Every slot skipped is a packet the network lost or delivered too
        // late, and each was concealed.
        // Every packet sent was played, lost or dropped to cut the delay;
        // every loss was a packet the network lost or delivered too late.
        // (Losses at the very end have no later packet to reveal them.)
        let accounted = jb.played + jb.lost + jb.discarded;
        let tail = net.sent - accounted;
        assert!(tail <= 2, "seed {seed}: {jb:?} {net:?}");
        assert_eq!(
            jb.lost + tail,
            net.lost + jb.late,
            "seed {seed}: {jb:?} {net:?}"
        );
        assert!(jb.concealed <= jb.lost, "seed {seed}");
        assert!(jb.reordered > 0, "seed {seed}: {jb:?}");
        assert_eq!(jb.depth, 0, "drained");
        // 60 ms of uniform jitter: the target grew beyond the minimum and
        // stayed within bounds, and few packets came too late for it.
        assert!(
            jb.target_delay > 40 * MS && jb.target_delay <= 200 * MS,
            "seed {seed}: {jb:?}"
        );
        assert!(jb.late * 50 < net.delivered, "seed {seed}: {jb:?}");
    }
}

#[test]
fn sequence_wrap_ssrc_change_and_strangers() {
    let t0 = Instant::now();
    // The caller starts near the wrap (65000) and sends 2000 frames.
    let script: Script = Box::new(|n| (n < 2000).then(|| vec![0i16; 160]));
    let mut sim = Sim::new(
        config(),
        Caller::new(t0, script),
        NetConfig::default(),
        5,
        t0,
    );
    sim.run_until(t0 + Duration::from_secs(20));
    // A new source (a carrier switch) and a stranger.
    sim.caller.ssrc = 0x0BAD_CAFE;
    sim.caller.sequence = 10;
    sim.caller.timestamp = 3_000_000_000;
    sim.run_until(t0 + Duration::from_secs(42));
    let stranger: SocketAddr = "198.51.100.7:5004".parse().unwrap();
    let now = sim.now;
    sim.session
        .handle_rtp(now, stranger, &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    let stats = sim.session.stats();
    assert_eq!(stats.unexpected_source, 1);
    assert_eq!(stats.jitter.restarts, 1);
    assert_eq!(stats.jitter.received, 2000);
    assert_eq!(stats.jitter.lost, 0);
    assert_eq!(stats.jitter.late, 0);
}

#[test]
fn dtmf_once_per_press() {
    let t0 = Instant::now();
    let script: Script = Box::new(|_| Some(vec![0i16; 160]));
    let mut caller = Caller::new(t0, script);
    // (start ms, event, marker, drop the start packet)
    let presses = [
        (500, 1, true, false),
        (900, 1, true, false),
        (1300, 11, false, false),
        (1700, 10, true, true),
        (2100, 5, true, false),
    ];
    for (at, event, marker, drop_first) in presses {
        caller.press(t0 + MS * at, event, marker, drop_first);
    }
    let network = NetConfig {
        delay: 20 * MS,
        jitter: 30 * MS,
        duplicate: 0.3,
        ..NetConfig::default()
    };
    let mut sim = Sim::new(config(), caller, network, 11, t0);
    sim.run_until(t0 + Duration::from_secs(3));
    let digits: Vec<char> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            MediaEvent::Dtmf { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, ['1', '1', '#', '*', '5']);
}

#[test]
fn dtmf_sent_as_rfc4733_events() {
    let t0 = Instant::now();
    let script: Script = Box::new(|_| Some(vec![0i16; 160]));
    let mut sim = Sim::new(
        config(),
        Caller::new(t0, script),
        NetConfig::default(),
        3,
        t0,
    );
    sim.run_until(t0 + 100 * MS);
    sim.session.send_dtmf('7').unwrap();
    assert!(sim.session.send_dtmf('x').is_err());
    sim.run_until(t0 + Duration::from_secs(1));
    let rtp = sim.rtp_sent();
    let events: Vec<_> = rtp
        .iter()
        .filter(|(_, h, _)| h.payload_type == TELEPHONE_EVENT)
        .collect();
    assert_eq!(events.len(), 5);
    let start = events[0].0;
    let summary: Vec<(u128, bool, bool, u16)> = events
        .iter()
        .map(|(due, h, p)| {
            let e = TelephoneEvent::parse(p).unwrap();
            assert_eq!(e.event, 7);
            assert_eq!(h.timestamp, events[0].1.timestamp);
            ((*due - start).as_millis(), h.marker, e.end, e.duration)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (0, true, false, 400),
            (50, false, false, 800),
            (100, false, true, 800),
            (120, false, true, 800),
            (140, false, true, 800),
        ]
    );
    // Sequence numbers run on through the event; audio pauses during it and
    // resumes with the marker bit and a timestamp that kept running.
    for pair in rtp.windows(2) {
        assert_eq!(pair[1].1.sequence, pair[0].1.sequence.wrapping_add(1));
    }
    let after = rtp
        .iter()
        .find(|(due, h, _)| h.payload_type == 0 && *due > start)
        .unwrap();
    assert!(after.1.marker);
    let before = rtp
        .iter()
        .rev()
        .find(|(due, h, _)| h.payload_type == 0 && *due < start)
        .unwrap();
    let frames = ((after.0 - before.0).as_millis() / 20) as u32;
    assert_eq!(
        after.1.timestamp,
        before.1.timestamp.wrapping_add(160 * frames)
    );
}

#[test]
fn playout_is_paced_and_continuous() {
    let t0 = Instant::now();
    let script: Script = Box::new(|_| Some(vec![0i16; 160]));
    let mut sim = Sim::new(
        config(),
        Caller::new(t0, script),
        NetConfig::default(),
        4,
        t0,
    );
    sim.run_until(t0 + 190 * MS);
    // Two prompts back to back at 16 kHz (resampled to 8 kHz), then a third
    // after a pause.
    sim.session
        .play(&speechlike(16000, 0, 16000 / 2), 16000)
        .unwrap();
    sim.session
        .play(&speechlike(16000, 0, 16000 / 4), 16000)
        .unwrap();
    sim.run_until(t0 + 1490 * MS);
    sim.session
        .play(&speechlike(8000, 0, 8000 / 5), 8000)
        .unwrap();
    sim.run_until(t0 + 3000 * MS);
    let rtp = sim.rtp_sent();
    assert_eq!(
        rtp.len(),
        151,
        "one packet per 20 ms from 0 to 3 s, silence included"
    );
    for pair in rtp.windows(2) {
        let ((t1, h1, _), (t2, h2, _)) = (&pair[0], &pair[1]);
        assert_eq!(*t2 - *t1, FRAME);
        assert_eq!(h2.sequence, h1.sequence.wrapping_add(1));
        assert_eq!(h2.timestamp, h1.timestamp.wrapping_add(160));
        assert_eq!(h2.ssrc, h1.ssrc);
    }
    // Marker on the first packet and at each talkspurt start (the two
    // queued prompts make one talkspurt).
    let markers: Vec<u128> = rtp
        .iter()
        .filter(|(_, h, _)| h.marker)
        .map(|(due, _, _)| (*due - t0).as_millis())
        .collect();
    assert_eq!(markers, [0, 200, 1500]);
    // 750 ms of prompt audio from 200 ms, 200 ms from 1500 ms.
    let loud: Vec<u128> = rtp
        .iter()
        .filter(|(_, _, p)| level(p) > 1000)
        .map(|(due, _, _)| (*due - t0).as_millis())
        .collect();
    assert_eq!(loud.first(), Some(&200));
    // 37.5 frames (the last padded with silence), then 10.
    assert_eq!(loud.len(), 38 + 10, "{loud:?}");
    let finished: Vec<u128> = sim
        .events
        .iter()
        .filter(|(_, e)| *e == MediaEvent::PlayoutFinished)
        .map(|(t, _)| (*t - t0).as_millis())
        .collect();
    assert_eq!(finished, [940, 1680]);
}

#[test]
fn stop_playout_within_one_frame() {
    let t0 = Instant::now();
    let script: Script = Box::new(|_| Some(vec![0i16; 160]));
    let mut sim = Sim::new(
        config(),
        Caller::new(t0, script),
        NetConfig::default(),
        4,
        t0,
    );
    sim.session
        .play(&speechlike(8000, 0, 8000 * 3), 8000)
        .unwrap();
    sim.run_until(t0 + 505 * MS);
    sim.session.stop_playout();
    sim.run_until(t0 + 1000 * MS);
    let loud_after = sim
        .rtp_sent()
        .iter()
        .filter(|(due, _, p)| *due > t0 + 505 * MS && level(p) > 1000)
        .count();
    assert_eq!(loud_after, 0);
    assert!(!sim
        .events
        .iter()
        .any(|(_, e)| *e == MediaEvent::PlayoutFinished));
}

#[test]
fn caller_speech_becomes_an_utterance() {
    let t0 = Instant::now();
    // Silence, 1.2 s of speech from 1 s, then silence.
    let script: Script = Box::new(|n| {
        let speaking = (50..110).contains(&n);
        Some(if speaking {
            speechlike(8000, n * 160, 160)
        } else {
            vec![0; 160]
        })
    });
    let network = NetConfig {
        delay: 30 * MS,
        jitter: 20 * MS,
        loss: 0.01,
        ..NetConfig::default()
    };
    let mut sim = Sim::new(config(), Caller::new(t0, script), network, 8, t0);
    sim.run_until(t0 + Duration::from_secs(4));
    let mut started = None;
    let mut utterance = None;
    for (when, event) in &sim.events {
        match event {
            MediaEvent::SpeechStarted { at } => started = Some((*when, *at)),
            MediaEvent::Utterance {
                pcm_16k,
                start,
                end,
            } => utterance = Some((*when, pcm_16k.len(), *start, *end)),
            _ => {}
        }
    }
    let (decided, at) = started.expect("speech started");
    let (ended_at, samples, start, end) = utterance.expect("an utterance");
    let ms = |t: Instant| (t - t0).as_millis() as i64;
    // Speech reaches the session ~1.03–1.05 s and plays out after the
    // jitter buffer's delay.
    assert!((1000..1200).contains(&ms(at)), "start at {}", ms(at));
    assert_eq!(start, at);
    // Decided on the fifth voiced frame (min_speech 100 ms).
    let decision = ms(decided) - ms(at);
    assert!(
        (80..=120).contains(&decision),
        "decided after {decision} ms"
    );
    let length = ms(end) - ms(start);
    assert!((1140..=1260).contains(&length), "length {length}");
    // The default 500 ms of silence ends it.
    assert!((ms(ended_at) - ms(end) - 500).abs() <= 20);
    // The audio covers the speech plus ~200 ms of pre-roll and 240 ms of
    // post-roll.
    let audio_ms = samples as i64 / 16;
    assert!(
        (audio_ms - length - 200 - 240).abs() <= 20,
        "{audio_ms} vs {length}"
    );
}

#[test]
fn barge_in_stops_the_prompt_within_one_frame() {
    // (caller speaks?, echo of the prompt in dB or none, barge-ins expected)
    let cases = [
        (true, None, 1),
        (false, Some(-20.0), 0),
        (true, Some(-20.0), 1),
    ];
    for (speaks, echo_db, expected) in cases {
        let t0 = Instant::now();
        // The caller starts speaking at 1 s into a 3 s prompt; its phone may
        // echo the prompt back (delayed by the path, attenuated).
        let prompt = speechlike(8000, 0, 8000 * 3);
        let echo = prompt.clone();
        let script: Script = Box::new(move |n| {
            let mut pcm = if speaks && n >= 50 {
                speechlike(8000, 7 + n * 160, 160)
                    .iter()
                    .map(|s| s / 2 * 3)
                    .collect()
            } else {
                vec![0i16; 160]
            };
            if let Some(db) = echo_db {
                // The prompt plays from tick 0; its echo comes back 3 frames later.
                let gain = 10f64.powf(db / 20.0);
                let from = n.saturating_sub(3) * 160;
                for (i, s) in pcm.iter_mut().enumerate() {
                    let e = echo.get(from + i).copied().unwrap_or(0);
                    *s = s.saturating_add((f64::from(e) * gain) as i16);
                }
            }
            Some(pcm)
        });
        let network = NetConfig {
            delay: 20 * MS,
            jitter: 20 * MS,
            ..NetConfig::default()
        };
        let mut sim = Sim::new(config(), Caller::new(t0, script), network, 21, t0);
        sim.session.play(&prompt, 8000).unwrap();
        sim.run_until(t0 + Duration::from_secs(4));
        let barge_ins: Vec<Instant> = sim
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                MediaEvent::BargeIn { at } => Some(*at),
                _ => None,
            })
            .collect();
        assert_eq!(
            barge_ins.len(),
            expected,
            "speaks {speaks}, echo {echo_db:?}"
        );
        let Some(&at) = barge_ins.first() else {
            continue;
        };
        // Detection: speech sent at 1 s, 20–40 ms on the path, up to
        // `target` in the jitter buffer, then 200 ms of voiced frames, which
        // the gate's noise tracking may take a few frames to grant on this
        // synthetic signal (the delay on real speech is measured by
        // `cargo run --release -p echo-media --example barge_in`).
        let delay = (at - t0).as_millis() as i64 - 1000;
        assert!((200..=500).contains(&delay), "detected after {delay} ms");
        // Reaction: no prompt audio is sent after the decision.
        let rtp = sim.rtp_sent();
        let last_loud = rtp
            .iter()
            .filter(|(_, _, p)| level(p) > 1000)
            .map(|(due, _, _)| *due)
            .max()
            .unwrap();
        assert!(last_loud < at, "prompt audio at or after the barge-in");
        assert!(at - last_loud <= FRAME, "playout ran until the decision");
        assert!(!sim
            .events
            .iter()
            .any(|(_, e)| *e == MediaEvent::PlayoutFinished));
    }
}

#[test]
fn media_timeout_once() {
    let t0 = Instant::now();
    let script: Script = Box::new(|n| (n < 100).then(|| vec![0i16; 160]));
    let mut config = config();
    config.media.media_timeout = Duration::from_secs(1);
    let mut sim = Sim::new(config, Caller::new(t0, script), NetConfig::default(), 2, t0);
    sim.run_until(t0 + Duration::from_secs(10));
    let timeouts: Vec<Instant> = sim
        .events
        .iter()
        .filter(|(_, e)| *e == MediaEvent::MediaTimeout)
        .map(|(t, _)| *t)
        .collect();
    // The last packet left at 1.98 s and arrived at once.
    assert_eq!(timeouts, [t0 + 2980 * MS]);
}

#[test]
fn rtcp_reports_both_ways() {
    let t0 = Instant::now();
    let script: Script = Box::new(|_| Some(vec![0i16; 160]));
    let network = NetConfig {
        loss: 0.1,
        ..NetConfig::default()
    };
    let mut sim = Sim::new(config(), Caller::new(t0, script), network, 2, t0);
    sim.run_until(t0 + Duration::from_millis(5500));
    let reports: Vec<_> = sim
        .sent
        .iter()
        .filter(|(_, k, _)| *k == TransmitKind::Rtcp)
        .map(|(due, _, data)| (*due, rtcp::parse_reports(data).unwrap()))
        .collect();
    assert_eq!(reports.len(), 1);
    let (due, report) = &reports[0];
    assert_eq!(*due, t0 + Duration::from_secs(5));
    let sr = &report[0];
    assert_eq!(sr.ssrc, sim.session.ssrc());
    assert_eq!(sr.sender.unwrap().packets, 251);
    let block = sr.blocks[0];
    assert_eq!(block.ssrc, 0xCA11_E500);
    // The network loses 10 % of the caller's packets.
    let lost = sim.up.stats.lost;
    assert!((15..=40).contains(&lost), "{lost}");
    // (A loss in the very last packets is not visible yet.)
    let reported = block.cumulative_lost as u64;
    assert!(reported <= lost && reported + 2 >= lost, "{block:?}");
    let fraction = f64::from(block.fraction_lost) / 256.0;
    assert!((fraction - lost as f64 / 251.0).abs() < 0.02, "{block:?}");
    // The caller answers with an RR that echoes the SR: loss and RTT.
    let lsr = (sr.sender.unwrap().ntp >> 16) as u32;
    let mut rr = Vec::new();
    rtcp::write_compound(
        0xCA11_E500,
        None,
        Some(ReportBlock {
            ssrc: sim.session.ssrc(),
            fraction_lost: 64,
            cumulative_lost: 12,
            extended_highest: 300,
            jitter: 80,
            last_sr: lsr,
            delay_since_last_sr: 65536 / 10,
        }),
        "caller",
        &mut rr,
    );
    let now = t0 + Duration::from_millis(5250);
    sim.session.handle_rtcp(now, caller_addr(), &rr);
    let remote = sim.session.stats().remote.unwrap();
    assert_eq!(remote.fraction_lost, 0.25);
    assert_eq!(remote.cumulative_lost, 12);
    assert_eq!(remote.jitter, 10 * MS);
    let rtt = remote.rtt.unwrap().as_millis();
    assert!((149..=151).contains(&rtt), "{rtt}");
}
