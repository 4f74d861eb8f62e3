//! The built-in `echo` app end to end, with a hand-written UAC over real UDP
//! sockets: INVITE offering PCMU → 200 with an SDP answer → ACK → 50 RTP
//! packets of a μ-law tone → the echoed packets decode to (nearly) the same
//! audio → BYE → 200.

mod common;

use common::sip::*;
use common::*;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const RATE: f64 = 8000.0;
const FRAME: usize = 160; // 20 ms at 8 kHz
const PACKETS: usize = 50;

/// Two tones, so a lag that happens to line up with one period of a single
/// tone does not look like a match.
fn test_signal(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / RATE;
            let s = 0.35 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + 0.25 * (2.0 * std::f64::consts::PI * 1330.0 * t).sin();
            (s * 32767.0) as i16
        })
        .collect()
}

fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Best normalised cross-correlation of `window` against every position of
/// `reference`. Returns (correlation, offset).
fn best_match(reference: &[f64], window: &[f64]) -> (f64, usize) {
    let wn = rms(window) * (window.len() as f64).sqrt();
    let mut best = (f64::MIN, 0);
    for off in 0..=reference.len().saturating_sub(window.len()) {
        let r = &reference[off..off + window.len()];
        let rn = rms(r) * (r.len() as f64).sqrt();
        if rn == 0.0 || wn == 0.0 {
            continue;
        }
        let dot: f64 = r.iter().zip(window).map(|(a, b)| a * b).sum();
        let c = dot / (rn * wn);
        if c > best.0 {
            best = (c, off);
        }
    }
    best
}

#[test]
fn echo_app_returns_the_callers_audio() {
    let gw = Gateway::start();
    let mut uac = Uac::new(gw.sip);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_addr = rtp.local_addr().unwrap();

    // --- INVITE / 200 / ACK
    let mut call = uac.new_call("echo");
    let offer = sdp_offer(rtp_addr, &[(0, "PCMU/8000"), (101, "telephone-event/8000")]);
    let ok = uac
        .invite(&mut call, &offer, Duration::from_secs(5))
        .expect("no final response to INVITE");
    assert_eq!(ok.code, 200, "INVITE to echo:\n{}", ok.raw);
    assert!(call.to_tag.is_some(), "200 without To tag:\n{}", ok.raw);
    assert!(
        ok.contact_uri().is_some(),
        "200 without Contact:\n{}",
        ok.raw
    );
    assert!(
        ok.header("content-type")
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp")),
        "200 without SDP:\n{}",
        ok.raw
    );
    let answer =
        parse_sdp_audio(&ok.body_str()).unwrap_or_else(|| panic!("bad SDP answer:\n{}", ok.raw));
    assert_eq!(
        answer.payload_types.first(),
        Some(&0),
        "answer must pick PCMU, the only voice codec offered:\n{}",
        ok.raw
    );
    assert!(
        (gw.rtp.0..=gw.rtp.1).contains(&answer.addr.port()),
        "answer's RTP port {} outside the configured range {:?}",
        answer.addr.port(),
        gw.rtp
    );
    uac.ack(&call);
    gw.wait_metric("echo_active_calls", &[], Duration::from_secs(5), |v| {
        v == 1.0
    });

    // --- RTP: send 50 packets of 20 ms, paced, while collecting the echo
    let signal = test_signal(PACKETS * FRAME);
    let encoded: Vec<u8> = signal.iter().map(|&s| ulaw_encode(s)).collect();
    let ssrc = 0x1234_5678;
    rtp.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut received: Vec<Rtp> = Vec::new();
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    let mut drain = |until: Instant, received: &mut Vec<Rtp>| {
        while Instant::now() < until {
            if let Ok((n, _)) = rtp.recv_from(&mut buf) {
                if let Some(p) = parse_rtp(&buf[..n]) {
                    received.push(p);
                }
            }
        }
    };
    for i in 0..PACKETS {
        let payload = &encoded[i * FRAME..(i + 1) * FRAME];
        let pkt = rtp_packet(
            0,
            1000 + i as u16,
            160_000 + (i * FRAME) as u32,
            ssrc,
            i == 0,
            payload,
        );
        rtp.send_to(&pkt, answer.addr).unwrap();
        drain(
            start + Duration::from_millis(20 * (i as u64 + 1)),
            &mut received,
        );
    }
    // Let the tail of the echo arrive: stop once it has been quiet for a bit.
    let hard_stop = Instant::now() + Duration::from_secs(3);
    let mut last_len = received.len();
    let mut quiet_since = Instant::now();
    while Instant::now() < hard_stop && quiet_since.elapsed() < Duration::from_millis(400) {
        drain(Instant::now() + Duration::from_millis(20), &mut received);
        if received.len() != last_len {
            last_len = received.len();
            quiet_since = Instant::now();
        }
    }

    // --- what came back
    assert!(
        received.len() >= PACKETS * 6 / 10,
        "only {} RTP packets came back for {PACKETS} sent",
        received.len()
    );
    for p in &received {
        assert_eq!(
            p.pt, 0,
            "echo must be re-encoded in the negotiated PCMU, got PT {}",
            p.pt
        );
    }
    let first_seq = received[0].seq;
    received.sort_by_key(|p| p.seq.wrapping_sub(first_seq));
    let decoded: Vec<f64> = received
        .iter()
        .flat_map(|p| p.payload.iter().map(|&b| ulaw_decode(b) as f64))
        .collect();
    let sent: Vec<f64> = encoded.iter().map(|&b| ulaw_decode(b) as f64).collect();

    // Skip leading silence (jitter-buffer priming) and compare a window of
    // the echo against the whole sent signal.
    let first_voiced = decoded
        .chunks(FRAME)
        .position(|f| rms(f) > 1000.0)
        .expect("echo is all silence");
    let voiced = &decoded[first_voiced * FRAME..];
    assert!(
        voiced.len() >= 20 * FRAME,
        "only {} voiced samples came back",
        voiced.len()
    );
    let window = &voiced[2 * FRAME..(2 * FRAME + 10 * FRAME).min(voiced.len())];
    let (corr, offset) = best_match(&sent, window);
    assert!(
        corr > 0.9,
        "echoed audio does not match what was sent: best correlation {corr:.3} at sample {offset}"
    );
    let level = rms(window) / rms(&sent[offset..offset + window.len()]);
    assert!(
        (0.7..1.4).contains(&level),
        "echo level is {level:.2} times the original"
    );

    let rtp_in = gw.metric("echo_rtp_packets_total", &[("direction", "in")]);
    let rtp_out = gw.metric("echo_rtp_packets_total", &[("direction", "out")]);
    assert!(
        rtp_in >= (PACKETS * 8 / 10) as f64,
        "echo_rtp_packets_total{{in}} = {rtp_in}"
    );
    assert!(
        rtp_out >= received.len() as f64,
        "echo_rtp_packets_total{{out}} = {rtp_out}"
    );

    // --- BYE
    let bye = uac
        .bye(&mut call, Duration::from_secs(5))
        .expect("no response to BYE");
    assert_eq!(bye.code, 200, "BYE:\n{}", bye.raw);
    gw.wait_metric("echo_active_calls", &[], Duration::from_secs(5), |v| {
        v == 0.0
    });
}
