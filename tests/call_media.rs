//! Call and media behaviour of the real binary over loopback, with the
//! hand-written UAC of `common::sip`:
//!
//! * RTP timeout: no RTP after the ACK → the gateway sends BYE, the call is
//!   counted as completed;
//! * RTP port release: a range with one usable (even) port carries calls one
//!   after another, and a second simultaneous call gets 503;
//! * codecs: PCMA alone and Opus alone are echoed in the answered payload
//!   type;
//! * hold and resume by re-INVITE (sendonly → recvonly, no RTP back on hold);
//! * late offer (offer in the 200, answer in the ACK);
//! * telephone-event offered with PCMU: negotiated, not echoed.
//!
//! Every wait is bounded; every test starts its own gateway.

mod common;

use common::sip::*;
use common::*;
use echo_media::codec::{
    alaw_to_linear, linear_to_alaw, AudioDecoder, AudioEncoder, CodecKind, Decoder, Encoder,
};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const SIP_WAIT: Duration = Duration::from_secs(5);

// ------------------------------------------------------------------ helpers

/// A tone of `n` samples at `rate` Hz (two sines, about -10 dBFS).
fn tone(n: usize, rate: f64) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / rate;
            let s = 0.3 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + 0.2 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin();
            (s * 32767.0) as i16
        })
        .collect()
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// An SDP body for audio on `rtp` with the given formats, session version
/// `version` (bumped on every re-offer, RFC 3264 §8) and direction
/// attribute `dir` (`sendrecv`, `sendonly`, ...).
fn sdp(rtp: SocketAddr, formats: &[(u8, &str)], version: u32, dir: &str) -> String {
    let ip = rtp.ip();
    let pts: Vec<String> = formats.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut s = format!(
        "v=0\r\no=echo-test 1 {version} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP {}\r\n",
        rtp.port(),
        pts.join(" ")
    );
    for (pt, map) in formats {
        s.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
        if map.starts_with("telephone-event") {
            s.push_str(&format!("a=fmtp:{pt} 0-15\r\n"));
        }
    }
    s.push_str(&format!("a=ptime:20\r\na={dir}\r\n"));
    s
}

/// The `a=rtpmap` lines of an SDP body: (pt, encoding as written).
fn rtpmaps(sdp: &str) -> Vec<(u8, String)> {
    sdp.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("a=rtpmap:")?;
            let (pt, enc) = rest.split_once(' ')?;
            Some((pt.parse().ok()?, enc.trim().to_string()))
        })
        .collect()
}

/// The direction attribute of an SDP body (`sendrecv` when none).
fn direction(sdp: &str) -> String {
    sdp.lines()
        .map(str::trim)
        .find_map(|l| {
            let a = l.strip_prefix("a=")?;
            ["sendrecv", "sendonly", "recvonly", "inactive"]
                .contains(&a)
                .then(|| a.to_string())
        })
        .unwrap_or_else(|| "sendrecv".to_string())
}

/// Receive every RTP packet arriving on `sock` until `until`.
fn drain_rtp(sock: &UdpSocket, until: Instant, out: &mut Vec<Rtp>) {
    let mut buf = [0u8; 2048];
    loop {
        let Some(left) = until.checked_duration_since(Instant::now()) else {
            return;
        };
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if let Some(p) = parse_rtp(&buf[..n]) {
                out.push(p);
            }
        }
    }
}

/// Send `payloads` as RTP (one every 20 ms, timestamps `ts_step` apart)
/// to `dest`, collecting what comes back; then keep collecting until it has
/// been quiet for `quiet` (at most 2 s more).
#[allow(clippy::too_many_arguments)]
fn send_and_collect(
    sock: &UdpSocket,
    dest: SocketAddr,
    pt: u8,
    seq0: u16,
    ts0: u32,
    ts_step: u32,
    payloads: &[Vec<u8>],
    quiet: Duration,
) -> Vec<Rtp> {
    let ssrc = 0x0bad_cafe;
    let mut got = Vec::new();
    let start = Instant::now();
    for (i, p) in payloads.iter().enumerate() {
        let pkt = rtp_packet(
            pt,
            seq0.wrapping_add(i as u16),
            ts0.wrapping_add(i as u32 * ts_step),
            ssrc,
            i == 0,
            p,
        );
        sock.send_to(&pkt, dest).unwrap();
        drain_rtp(
            sock,
            start + Duration::from_millis(20 * (i as u64 + 1)),
            &mut got,
        );
    }
    let hard_stop = Instant::now() + Duration::from_secs(2);
    let mut last = got.len();
    let mut quiet_since = Instant::now();
    while Instant::now() < hard_stop && quiet_since.elapsed() < quiet {
        drain_rtp(sock, Instant::now() + Duration::from_millis(20), &mut got);
        if got.len() != last {
            last = got.len();
            quiet_since = Instant::now();
        }
    }
    got
}

/// 20 ms μ-law frames of a tone.
fn pcmu_frames(n: usize) -> Vec<Vec<u8>> {
    tone(n * 160, 8000.0)
        .chunks(160)
        .map(|f| f.iter().map(|&s| ulaw_encode(s)).collect())
        .collect()
}

/// Assert that `got` is an echo of PCMU audio: enough packets, all PT 0,
/// audible.
fn assert_pcmu_echo(got: &[Rtp], sent: usize, what: &str) {
    assert!(
        got.len() >= sent * 6 / 10,
        "{what}: only {} RTP packets came back for {sent} sent",
        got.len()
    );
    assert!(
        got.iter().all(|p| p.pt == 0),
        "{what}: echo not in PCMU: PTs {:?}",
        got.iter().map(|p| p.pt).collect::<Vec<_>>()
    );
    let pcm: Vec<i16> = got
        .iter()
        .flat_map(|p| p.payload.iter().map(|&b| ulaw_decode(b)))
        .collect();
    let echoed = loudest_window(&pcm, sent * 160);
    assert!(rms(echoed) > 1000.0, "{what}: the echo is (nearly) silent");
}

/// The `len` samples of `pcm` with the most energy: the echo is a stream
/// (silence frames keep flowing between talkspurts), so the echoed audio
/// is found in it rather than being all of it.
fn loudest_window(pcm: &[i16], len: usize) -> &[i16] {
    if pcm.len() <= len {
        return pcm;
    }
    let energy = |s: &[i16]| s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
    let mut best = (energy(&pcm[..len]), 0);
    let mut current = best.0;
    for start in 1..=pcm.len() - len {
        current += f64::from(pcm[start + len - 1]).powi(2) - f64::from(pcm[start - 1]).powi(2);
        if current > best.0 {
            best = (current, start);
        }
    }
    &pcm[best.1..best.1 + len]
}

/// INVITE `echo` with `offer`, expect 200 with an SDP answer, ACK it.
/// Returns the call and the answer.
fn call_echo(uac: &mut Uac, offer: &str) -> (Call, Msg) {
    let mut call = uac.new_call("echo");
    let ok = uac
        .invite(&mut call, offer, SIP_WAIT)
        .expect("no final response to INVITE");
    assert_eq!(ok.code, 200, "INVITE:\n{}", ok.raw);
    uac.ack(&call);
    (call, ok)
}

fn answer_addr(ok: &Msg) -> SocketAddr {
    parse_sdp_audio(&ok.body_str())
        .unwrap_or_else(|| panic!("no audio in the SDP of:\n{}", ok.raw))
        .addr
}

fn hang_up(uac: &mut Uac, call: &mut Call) {
    let bye = uac.bye(call, SIP_WAIT).expect("no response to BYE");
    assert_eq!(bye.code, 200, "BYE:\n{}", bye.raw);
}

// -------------------------------------------------------------------- tests

/// `[rtp] timeout_secs = 1`; the caller sends no RTP after the ACK: the
/// gateway hangs up with a BYE within a few seconds, our 200 closes the
/// dialog, the call counts as completed.
#[test]
fn rtp_timeout_sends_bye() {
    let gw = Gateway::start_with(GatewayConfig {
        rtp_timeout_secs: 1,
        ..GatewayConfig::default()
    });
    let mut uac = Uac::new(gw.sip);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let offer = sdp(
        rtp.local_addr().unwrap(),
        &[(0, "PCMU/8000")],
        1,
        "sendrecv",
    );
    let (call, _ok) = call_echo(&mut uac, &offer);
    let acked = Instant::now();
    gw.wait_metric("echo_active_calls", &[], SIP_WAIT, |v| v == 1.0);

    let bye = uac
        .wait_request("BYE", Duration::from_secs(5))
        .unwrap_or_else(|| {
            panic!(
                "no BYE within 5 s of the ACK with timeout_secs = 1; got instead: {:#?}",
                uac.stray.iter().map(|m| &m.start_line).collect::<Vec<_>>()
            )
        });
    let waited = acked.elapsed();
    assert!(
        waited >= Duration::from_millis(800),
        "BYE after only {waited:?}, before the 1 s RTP timeout"
    );
    assert_eq!(
        bye.header("call-id"),
        Some(call.call_id.as_str()),
        "BYE:\n{}",
        bye.raw
    );
    // In the dialog: their From carries the tag of our To and vice versa.
    assert_eq!(
        bye.header("from").and_then(tag_of),
        call.to_tag,
        "BYE From tag is not the gateway's To tag:\n{}",
        bye.raw
    );
    assert_eq!(
        bye.header("to").and_then(tag_of),
        Some(call.from_tag.clone()),
        "BYE To tag is not our From tag:\n{}",
        bye.raw
    );
    uac.respond(&bye, 200, "OK");

    gw.wait_metric("echo_active_calls", &[], SIP_WAIT, |v| v == 0.0);
    gw.wait_metric(
        "echo_calls_total",
        &[("status", "completed")],
        SIP_WAIT,
        |v| v == 1.0,
    );
    // Our 200 ended the BYE's transaction: no retransmission of it after
    // Timer E would have fired (500 ms) with margin.
    let again = uac.wait_request("BYE", Duration::from_millis(1200));
    assert!(
        again.is_none(),
        "BYE retransmitted after our 200 (was the 200 matched?):\n{}",
        again.map(|m| m.raw).unwrap_or_default()
    );
}

fn tag_of(header: &str) -> Option<String> {
    let params = match header.rfind('>') {
        Some(i) => &header[i + 1..],
        None => header,
    };
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("tag")
            .then(|| v.trim().to_string())
    })
}

/// Start a gateway whose RTP range (`ECHO_RTP_PORTS`) holds two ports, so
/// exactly one even port: one call at a time. Returns it and that port.
fn one_port_gateway() -> (Gateway, u16) {
    // A block nobody else in this process uses; the gateway gets only its
    // first two ports.
    let (lo, _) = rtp_range();
    assert_eq!(lo % 2, 0, "rtp_range() gave an odd start");
    let gw = Gateway::start_with(GatewayConfig {
        env: vec![("ECHO_RTP_PORTS".to_string(), format!("{lo}-{}", lo + 1))],
        ..GatewayConfig::default()
    });
    (gw, lo)
}

/// INVITE until a 200 (ACKed), retrying on 503 for up to `patience`.
/// Returns the call, its 200, and how many 503s came first.
fn invite_until_port_free(uac: &mut Uac, offer: &str, patience: Duration) -> (Call, Msg, u32) {
    let deadline = Instant::now() + patience;
    let mut refused = 0;
    loop {
        let mut call = uac.new_call("echo");
        let resp = uac
            .invite(&mut call, offer, SIP_WAIT)
            .expect("no final response to INVITE");
        if resp.code == 503 && Instant::now() < deadline {
            uac.ack(&call);
            refused += 1;
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert_eq!(
            resp.code, 200,
            "INVITE ({refused} earlier 503s over {patience:?}):\n{}",
            resp.raw
        );
        uac.ack(&call);
        return (call, resp, refused);
    }
}

/// An RTP range of two ports holds exactly one even port: five calls one
/// after another all get it (the port comes back after each BYE), and
/// while one call is up another INVITE gets 503 promptly instead of
/// hanging.
///
/// The port goes back to the pool when the call task has processed the
/// end of the call, which may be a moment after the 200 to the BYE, so
/// each next call may retry a 503 for up to 2 s; the strict back-to-back
/// case is `next_call_right_after_bye_gets_the_port`.
#[test]
fn rtp_port_is_released_and_exhaustion_is_503() {
    let (gw, port) = one_port_gateway();
    let mut uac = Uac::new(gw.sip);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let offer = sdp(
        rtp.local_addr().unwrap(),
        &[(0, "PCMU/8000")],
        1,
        "sendrecv",
    );

    for i in 0..5 {
        let (mut call, ok, _) = invite_until_port_free(&mut uac, &offer, Duration::from_secs(2));
        assert_eq!(
            answer_addr(&ok).port(),
            port,
            "call {i}: answer not on the one even port {port}:\n{}",
            ok.raw
        );
        hang_up(&mut uac, &mut call);
    }

    // One call up holds the port; a second one must be refused, not hang.
    let (mut first, _, _) = invite_until_port_free(&mut uac, &offer, Duration::from_secs(2));
    let mut second = uac.new_call("echo");
    let asked = Instant::now();
    let resp = uac
        .invite(&mut second, &offer, Duration::from_secs(4))
        .expect("second simultaneous INVITE got no final response within 4 s");
    assert_eq!(
        resp.code, 503,
        "second call while the only RTP port is taken:\n{}",
        resp.raw
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "503 took {:?}",
        asked.elapsed()
    );
    uac.ack(&second); // ACK for the non-2xx, in the INVITE's transaction
    gw.wait_metric("echo_active_calls", &[], SIP_WAIT, |v| v == 1.0);

    hang_up(&mut uac, &mut first);
    gw.wait_metric("echo_active_calls", &[], SIP_WAIT, |v| v == 0.0);

    // And the port is usable again.
    let (mut third, _, _) = invite_until_port_free(&mut uac, &offer, Duration::from_secs(2));
    hang_up(&mut uac, &mut third);
}

/// Strict form: with one RTP port, an INVITE sent as soon as the 200 to
/// the previous call's BYE arrives gets 200. The port goes back to the pool
/// when the ended call's task drops its socket, a moment after the 200;
/// the gateway lets an accepted INVITE wait briefly for it.
#[test]
fn next_call_right_after_bye_gets_the_port() {
    let (gw, _) = one_port_gateway();
    let mut uac = Uac::new(gw.sip);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let offer = sdp(
        rtp.local_addr().unwrap(),
        &[(0, "PCMU/8000")],
        1,
        "sendrecv",
    );
    for i in 0..20 {
        let mut call = uac.new_call("echo");
        let resp = uac
            .invite(&mut call, &offer, SIP_WAIT)
            .unwrap_or_else(|| panic!("call {i}: no final response to INVITE"));
        assert_eq!(
            resp.code, 200,
            "call {i}, sent right after the 200 to the previous call's BYE:\n{}",
            resp.raw
        );
        uac.ack(&call);
        hang_up(&mut uac, &mut call);
    }
}

/// PCMA offered alone: answered with PT 8, echoed as A-law of the same
/// audio.
#[test]
fn echo_with_pcma() {
    let gw = Gateway::start();
    let mut uac = Uac::new(gw.sip);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let offer = sdp(
        rtp.local_addr().unwrap(),
        &[(8, "PCMA/8000")],
        1,
        "sendrecv",
    );
    let (mut call, ok) = call_echo(&mut uac, &offer);
    let answer = parse_sdp_audio(&ok.body_str()).expect("SDP answer");
    assert_eq!(answer.payload_types, vec![8], "answer:\n{}", ok.raw);

    const N: usize = 50;
    let pcm = tone(N * 160, 8000.0);
    let frames: Vec<Vec<u8>> = pcm
        .chunks(160)
        .map(|f| f.iter().map(|&s| linear_to_alaw(s)).collect())
        .collect();
    let got = send_and_collect(
        &rtp,
        answer.addr,
        8,
        100,
        8000,
        160,
        &frames,
        Duration::from_millis(300),
    );
    assert!(
        got.len() >= N * 6 / 10,
        "only {} of {N} PCMA packets echoed",
        got.len()
    );
    assert!(
        got.iter().all(|p| p.pt == 8 && p.payload.len() == 160),
        "echo not 20 ms PCMA frames: {:?}",
        got.iter()
            .map(|p| (p.pt, p.payload.len()))
            .collect::<Vec<_>>()
    );
    let back: Vec<i16> = got
        .iter()
        .flat_map(|p| p.payload.iter().map(|&b| alaw_to_linear(b)))
        .collect();
    let level = rms(loudest_window(&back, pcm.len())) / rms(&pcm);
    assert!(
        (0.7..1.4).contains(&level),
        "PCMA echo level {level:.2} of the original"
    );
    hang_up(&mut uac, &mut call);
}

/// Opus offered alone with a dynamic PT: answered with that PT and
/// opus/48000/2, echoed as Opus that decodes to audio of similar energy.
#[test]
fn echo_with_opus() {
    const PT: u8 = 111;
    const N: usize = 50;
    const FRAME: usize = 960; // 20 ms at 48 kHz
    let gw = Gateway::start();
    let mut uac = Uac::new(gw.sip);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let offer = sdp(
        rtp.local_addr().unwrap(),
        &[(PT, "opus/48000/2")],
        1,
        "sendrecv",
    );
    let (mut call, ok) = call_echo(&mut uac, &offer);
    let body = ok.body_str();
    let answer = parse_sdp_audio(&body).expect("SDP answer");
    assert_eq!(answer.payload_types, vec![PT], "answer:\n{}", ok.raw);
    assert!(
        rtpmaps(&body)
            .iter()
            .any(|(pt, enc)| *pt == PT && enc.eq_ignore_ascii_case("opus/48000/2")),
        "answer lacks a=rtpmap:{PT} opus/48000/2:\n{}",
        ok.raw
    );

    let pcm = tone(N * FRAME, 48_000.0);
    let mut enc = Encoder::new(CodecKind::Opus).expect("opus encoder");
    let frames: Vec<Vec<u8>> = pcm
        .chunks(FRAME)
        .map(|f| {
            let mut out = Vec::new();
            enc.encode(f, &mut out).expect("opus encode");
            out
        })
        .collect();
    let got = send_and_collect(
        &rtp,
        answer.addr,
        PT,
        7,
        48_000,
        FRAME as u32,
        &frames,
        Duration::from_millis(300),
    );
    assert!(
        got.len() >= N * 6 / 10,
        "only {} of {N} Opus packets echoed",
        got.len()
    );
    assert!(
        got.iter().all(|p| p.pt == PT),
        "echo not in the answered PT {PT}: {:?}",
        got.iter().map(|p| p.pt).collect::<Vec<_>>()
    );
    let mut sorted = got.clone();
    let s0 = sorted[0].seq;
    sorted.sort_by_key(|p| p.seq.wrapping_sub(s0));
    let mut dec = Decoder::new(CodecKind::Opus).expect("opus decoder");
    let mut back = Vec::new();
    for p in &sorted {
        dec.decode(&p.payload, &mut back)
            .unwrap_or_else(|e| panic!("echoed Opus payload does not decode: {e}"));
    }
    // Two codec passes each way have some lookahead: compare the second
    // half, well past any start-up.
    let tail = loudest_window(&back, pcm.len() / 2);
    let level = rms(tail) / rms(&pcm[pcm.len() / 2..]);
    assert!(
        (0.5..2.0).contains(&level),
        "Opus echo level {level:.2} of the original ({} samples decoded)",
        back.len()
    );
    hang_up(&mut uac, &mut call);
}

/// Hold by re-INVITE with sendonly → 200 with recvonly and no RTP back;
/// resume with sendrecv → 200 with sendrecv and the echo comes back.
#[test]
fn hold_and_resume_by_reinvite() {
    let gw = Gateway::start();
    let mut uac = Uac::new(gw.sip);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = rtp.local_addr().unwrap();
    let pcmu = [(0, "PCMU/8000")];
    let (mut call, ok) = call_echo(&mut uac, &sdp(me, &pcmu, 1, "sendrecv"));
    let dest = answer_addr(&ok);
    assert_eq!(direction(&ok.body_str()), "sendrecv", "answer:\n{}", ok.raw);

    let frames = pcmu_frames(20);
    let got = send_and_collect(
        &rtp,
        dest,
        0,
        1,
        0,
        160,
        &frames,
        Duration::from_millis(300),
    );
    assert_pcmu_echo(&got, frames.len(), "before hold");

    // --- hold
    let held = uac
        .reinvite(&mut call, &sdp(me, &pcmu, 2, "sendonly"), SIP_WAIT)
        .expect("no final response to the hold re-INVITE");
    assert_eq!(held.code, 200, "hold re-INVITE:\n{}", held.raw);
    assert_eq!(
        direction(&held.body_str()),
        "recvonly",
        "answer to a=sendonly must be a=recvonly (RFC 3264 §6.1):\n{}",
        held.raw
    );
    uac.ack(&call);
    let hold_dest = answer_addr(&held);
    // Anything still in flight from before the hold.
    drain_rtp(
        &rtp,
        Instant::now() + Duration::from_millis(100),
        &mut Vec::new(),
    );
    let got = send_and_collect(
        &rtp,
        hold_dest,
        0,
        100,
        20 * 160,
        160,
        &frames,
        Duration::from_millis(500),
    );
    assert!(
        got.is_empty(),
        "{} RTP packets sent to a caller on hold (a=sendonly)",
        got.len()
    );

    // --- resume
    let resumed = uac
        .reinvite(&mut call, &sdp(me, &pcmu, 3, "sendrecv"), SIP_WAIT)
        .expect("no final response to the resume re-INVITE");
    assert_eq!(resumed.code, 200, "resume re-INVITE:\n{}", resumed.raw);
    assert_eq!(
        direction(&resumed.body_str()),
        "sendrecv",
        "resume answer:\n{}",
        resumed.raw
    );
    uac.ack(&call);
    let got = send_and_collect(
        &rtp,
        answer_addr(&resumed),
        0,
        200,
        40 * 160,
        160,
        &frames,
        Duration::from_millis(300),
    );
    assert_pcmu_echo(&got, frames.len(), "after resume");

    hang_up(&mut uac, &mut call);
    gw.wait_metric("echo_active_calls", &[], SIP_WAIT, |v| v == 0.0);
}

/// INVITE without a body: the 200 carries the gateway's offer (audio on a
/// port of its range, PCMU among the formats); our ACK carries the answer
/// choosing PCMU, and the echo works.
#[test]
fn late_offer_answer_in_ack() {
    let gw = Gateway::start();
    let mut uac = Uac::new(gw.sip);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = rtp.local_addr().unwrap();

    let mut call = uac.new_call("echo");
    let ok = uac
        .invite(&mut call, "", SIP_WAIT)
        .expect("no final response to the INVITE without SDP");
    assert_eq!(ok.code, 200, "INVITE without SDP:\n{}", ok.raw);
    assert!(
        ok.header("content-type")
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp")),
        "200 to an offer-less INVITE must carry an offer:\n{}",
        ok.raw
    );
    let body = ok.body_str();
    let offer = parse_sdp_audio(&body).unwrap_or_else(|| panic!("no audio offer:\n{}", ok.raw));
    assert!(
        (gw.rtp.0..=gw.rtp.1).contains(&offer.addr.port()),
        "offered RTP port {} outside the gateway's range {:?}",
        offer.addr.port(),
        gw.rtp
    );
    assert!(
        offer.payload_types.contains(&0),
        "offer without PCMU:\n{}",
        ok.raw
    );

    uac.ack_with_sdp(&call, &sdp(me, &[(0, "PCMU/8000")], 1, "sendrecv"));
    gw.wait_metric("echo_active_calls", &[], SIP_WAIT, |v| v == 1.0);

    let frames = pcmu_frames(30);
    let got = send_and_collect(
        &rtp,
        offer.addr,
        0,
        1,
        0,
        160,
        &frames,
        Duration::from_millis(300),
    );
    assert_pcmu_echo(&got, frames.len(), "late offer");
    hang_up(&mut uac, &mut call);
}

/// PCMU + telephone-event offered: the answer keeps telephone-event; RTP
/// events are not echoed, voice still is.
#[test]
fn telephone_event_negotiated_but_not_echoed() {
    let gw = Gateway::start();
    let mut uac = Uac::new(gw.sip);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let offer = sdp(
        rtp.local_addr().unwrap(),
        &[(0, "PCMU/8000"), (101, "telephone-event/8000")],
        1,
        "sendrecv",
    );
    let (mut call, ok) = call_echo(&mut uac, &offer);
    let body = ok.body_str();
    let answer = parse_sdp_audio(&body).expect("SDP answer");
    let te = rtpmaps(&body)
        .into_iter()
        .find(|(_, enc)| enc.to_ascii_lowercase().starts_with("telephone-event/8000"))
        .map(|(pt, _)| pt)
        .unwrap_or_else(|| panic!("answer without telephone-event:\n{}", ok.raw));
    assert_eq!(
        te, 101,
        "telephone-event must keep the offered PT:\n{}",
        ok.raw
    );
    assert_eq!(
        answer.payload_types.first(),
        Some(&0),
        "answer:\n{}",
        ok.raw
    );
    assert!(
        answer.payload_types.contains(&te),
        "telephone-event PT not on the m= line:\n{}",
        ok.raw
    );

    // Digit 5, RFC 4733: event, E|R|volume, duration; same timestamp for
    // the whole event, end bit on the last three.
    let events: Vec<Vec<u8>> = (0..10u16)
        .map(|i| {
            let end = if i >= 7 { 0x80 } else { 0 };
            let dur = (i + 1) * 160;
            vec![5, end | 10, (dur >> 8) as u8, dur as u8]
        })
        .collect();
    let mut got = Vec::new();
    let start = Instant::now();
    for (i, ev) in events.iter().enumerate() {
        let pkt = rtp_packet(te, 1 + i as u16, 8000, 0x5151, i == 0, ev);
        rtp.send_to(&pkt, answer.addr).unwrap();
        drain_rtp(
            &rtp,
            start + Duration::from_millis(20 * (i as u64 + 1)),
            &mut got,
        );
    }
    drain_rtp(&rtp, Instant::now() + Duration::from_millis(400), &mut got);
    // The gateway's stream goes on (silence between talkspurts), but no
    // key press comes back, neither as events nor as audio.
    assert!(
        got.iter().all(|p| p.pt == 0),
        "telephone-event packets were echoed: {:?}",
        got.iter()
            .map(|p| (p.pt, p.payload.len()))
            .collect::<Vec<_>>()
    );
    let heard: Vec<i16> = got
        .iter()
        .flat_map(|p| p.payload.iter().map(|&b| ulaw_decode(b)))
        .collect();
    assert!(rms(&heard) < 100.0, "DTMF came back as audio");

    let frames = pcmu_frames(20);
    let got = send_and_collect(
        &rtp,
        answer.addr,
        0,
        11,
        8000 + 1600,
        160,
        &frames,
        Duration::from_millis(300),
    );
    assert_pcmu_echo(&got, frames.len(), "PCMU after DTMF");
    hang_up(&mut uac, &mut call);
}
