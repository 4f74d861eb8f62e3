//! Robustness: a seeded burst of malformed and randomly mutated SIP over UDP
//! and TCP. Afterwards the gateway must still answer OPTIONS on both
//! transports and must have counted parse failures.
//!
//! The seed is fixed (override with ECHO_FUZZ_SEED) so a failure replays.

mod common;

use common::sip::*;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// xorshift64* — small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn seed() -> u64 {
    std::env::var("ECHO_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_EC40_2026_0001)
}

/// A valid request to start from. Every call gets fresh Call-ID / branch /
/// tag so mutants are new transactions, not retransmissions. The INVITE goes
/// to a user with no route, so any mutant that still parses gets a 404
/// instead of setting up a call and holding RTP ports.
fn template(rng: &mut Rng, me: SocketAddr, gw: SocketAddr, transport: &str) -> String {
    let n = rng.next();
    let body = format!(
        "v=0\r\no=- {n} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    );
    let (method, user, body) = match rng.below(3) {
        0 => ("OPTIONS", "echo", String::new()),
        1 => ("INVITE", "fuzz-nobody", body),
        _ => ("BYE", "echo", String::new()),
    };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:{user}@{gw} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {me};branch=z9hG4bKfz{n:x};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Fuzz\" <sip:fuzz@{me}>;tag=fz{n:x}\r\n\
         To: <sip:{user}@{gw}>\r\n\
         Call-ID: fz{n:x}@127.0.0.1\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:fuzz@{me}>\r\n\
         {ctype}Content-Length: {len}\r\n\r\n{body}",
        cseq = 1 + n % 1000,
        len = body.len(),
    )
}

const REQUIRED: [&str; 5] = ["Via:", "From:", "To:", "Call-ID:", "CSeq:"];

/// One malformed datagram.
fn mutate(rng: &mut Rng, msg: &str) -> Vec<u8> {
    let mut m = msg.as_bytes().to_vec();
    match rng.below(14) {
        // truncation anywhere (inside the start line, a header, the body)
        0 => m.truncate(rng.below(m.len())),
        // byte flips
        1 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(m.len());
                m[i] ^= 1 << rng.below(8);
            }
        }
        // random bytes overwritten
        2 => {
            for _ in 0..1 + rng.below(32) {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
        }
        // a huge header
        3 => {
            let size = [1_000, 8_000, 30_000, 60_000][rng.below(4)];
            let h = format!("X-Huge: {}\r\n", "A".repeat(size));
            return insert_after_first_line(msg, &h).into_bytes();
        }
        // many headers
        4 => {
            let mut h = String::new();
            for i in 0..2000 {
                h.push_str(&format!("X-H{i}: v\r\n"));
            }
            return insert_after_first_line(msg, &h).into_bytes();
        }
        // bad Content-Length: too big, negative, garbage, duplicated, missing
        5 => {
            let bad = [
                "Content-Length: 99999999",
                "Content-Length: -5",
                "Content-Length: abc",
                "Content-Length: 18446744073709551616",
                "Content-Length: 3\r\nContent-Length: 300",
                "",
            ];
            let s = msg
                .lines()
                .map(|l| {
                    if l.starts_with("Content-Length:") {
                        bad[rng.below(bad.len())].to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            return s.replace('\n', "\r\n").replace("\r\r", "\r").into_bytes();
        }
        // pure binary garbage
        6 => {
            let n = 1 + rng.below(1400);
            return rng.bytes(n);
        }
        // a required header missing
        7 => {
            let drop = REQUIRED[rng.below(REQUIRED.len())];
            return msg
                .split("\r\n")
                .filter(|l| !l.starts_with(drop))
                .collect::<Vec<_>>()
                .join("\r\n")
                .into_bytes();
        }
        // broken start line
        8 => {
            let lines = [
                "INVITE",
                "INVITE  SIP/2.0",
                "INVITE sip:echo@127.0.0.1 SIP/3.0",
                "INVITE sip:echo@127.0.0.1 HTTP/1.1",
                "SIP/2.0 999999 Bad",
                "SIP/2.0 abc OK",
                "GET / HTTP/1.1",
                "\u{0}\u{0}\u{0}",
                "INVITE sip:@ SIP/2.0",
                "INVITE <sip:echo@[::1 SIP/2.0",
            ];
            let rest = msg.split_once("\r\n").map(|x| x.1).unwrap_or("");
            return format!("{}\r\n{rest}", lines[rng.below(lines.len())]).into_bytes();
        }
        // header without colon / with folded garbage / bad Via / bad CSeq
        9 => {
            let bad = [
                "NoColonHere\r\n",
                "Via: SIP/2.0/UDP\r\n",
                "Via: ;;;;;;\r\n",
                "CSeq: 99999999999999999999 INVITE\r\n",
                "CSeq: 1\r\n",
                "CSeq: 1 BYE\r\n",
                " folded continuation without a header\r\n",
                "From: <sip:unterminated\r\n",
                "To: \"\r\n",
                "Max-Forwards: -1\r\n",
                "Expires: 99999999999999999999999\r\n",
            ];
            return insert_after_first_line(msg, bad[rng.below(bad.len())]).into_bytes();
        }
        // bad SDP bodies in an otherwise valid message
        10 => {
            let sdps = [
                "v=0\r\nm=audio\r\n",
                "v=0\r\nc=IN IP4\r\nm=audio 99999 RTP/AVP 0\r\n",
                "v=0\r\nm=audio 4000 RTP/AVP 300 -1 x\r\na=rtpmap:0\r\n",
                "garbage-sdp\u{1}\u{2}\u{3}",
                "",
            ];
            let b = sdps[rng.below(sdps.len())];
            let head = msg.split("\r\n\r\n").next().unwrap_or(msg);
            let head: Vec<&str> = head
                .split("\r\n")
                .filter(|l| !l.starts_with("Content-Length:") && !l.starts_with("Content-Type:"))
                .collect();
            return format!(
                "{}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}",
                head.join("\r\n"),
                b.len()
            )
            .into_bytes();
        }
        // lines ending in bare LF or bare CR
        11 => {
            let s = if rng.chance(50) {
                msg.replace("\r\n", "\n")
            } else {
                msg.replace("\r\n", "\r")
            };
            return s.into_bytes();
        }
        // random chunk deleted / duplicated
        12 => {
            let a = rng.below(m.len());
            let b = (a + rng.below(64)).min(m.len());
            if rng.chance(50) {
                m.drain(a..b);
            } else {
                let chunk = m[a..b].to_vec();
                m.splice(a..a, chunk);
            }
        }
        // NULs and non-UTF-8 in header values
        _ => {
            let h = b"X-Bin: \x00\xff\xfe\xc0\x80\r\n";
            let s = msg.find("\r\n").map(|i| i + 2).unwrap_or(0);
            m.splice(s..s, h.iter().copied());
        }
    }
    m
}

fn insert_after_first_line(msg: &str, h: &str) -> String {
    match msg.split_once("\r\n") {
        Some((first, rest)) => format!("{first}\r\n{h}{rest}"),
        None => format!("{msg}{h}"),
    }
}

/// Read from a stream until EOF/reset, bounded. True if the peer closed it.
fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // e.g. a 400 response before the close
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true, // reset
        }
    }
    false
}

#[test]
fn survives_malformed_sip_burst() {
    let gw = Gateway::start();
    let mut rng = Rng(seed());

    // A well-behaved TCP connection opened before the garbage, kept open.
    let mut good = TcpStream::connect(gw.sip).expect("connect TCP");

    // --- UDP burst
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = sock.local_addr().unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut sink = [0u8; 65536];
    let mut sent = 0usize;
    for i in 0..3000 {
        let msg = template(&mut rng, me, gw.sip, "UDP");
        let d = mutate(&mut rng, &msg);
        let d = &d[..d.len().min(65_000)];
        if sock.send_to(d, gw.sip).is_ok() {
            sent += 1;
        }
        // Drain whatever the gateway answers, and give it a breath now and
        // then so the burst measures robustness, not socket buffer size.
        while sock.recv_from(&mut sink).is_ok() {}
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(sent > 2500, "only {sent} datagrams could be sent");

    // --- TCP garbage: binary junk ending in an empty line (unparsable
    // message), an oversized header block with no end, an endless body
    // claim. Each such connection must be closed by the gateway.
    let garbage: Vec<Vec<u8>> = vec![
        {
            let mut g = rng.bytes(3000);
            g.extend_from_slice(b"\r\n\r\n");
            g
        },
        {
            let msg = template(&mut rng, me, gw.sip, "TCP");
            let mut g = msg.split("\r\n\r\n").next().unwrap().as_bytes().to_vec();
            g.extend_from_slice(b"\r\nX-Endless: ");
            g.extend(std::iter::repeat_n(b'A', 1 << 20));
            g
        },
        b"INVITE sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 tls hello on the plain port\r\n\r\n"
            .to_vec(),
    ];
    for g in &garbage {
        let mut bad = TcpStream::connect(gw.sip).expect("connect TCP");
        bad.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        // The gateway may close mid-write: a failed write is fine.
        let _ = bad.write_all(g);
        assert!(
            closed_within(&mut bad, Duration::from_secs(10)),
            "gateway kept a garbage TCP connection open ({} bytes starting {:?})",
            g.len(),
            String::from_utf8_lossy(&g[..g.len().min(40)])
        );
    }
    // Mutants over TCP, each on its own connection (framing after a bad
    // message is lost, so the gateway may close; it must not crash).
    for _ in 0..100 {
        let msg = template(&mut rng, me, gw.sip, "TCP");
        let d = mutate(&mut rng, &msg);
        if let Ok(mut s) = TcpStream::connect(gw.sip) {
            s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.write_all(&d);
        }
    }

    // --- still alive: the connection opened before the garbage, a new TCP
    // connection, and UDP.
    let r = options_over_stream(&mut good, gw.sip, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("OPTIONS on the pre-existing TCP connection: {e}"));
    assert_eq!(r.code, 200, "{}", r.raw);
    let r = options_tcp(gw.sip, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("OPTIONS over new TCP: {e}"));
    assert_eq!(r.code, 200, "{}", r.raw);
    let mut uac = Uac::new(gw.sip);
    let r = uac
        .options("echo", Duration::from_secs(5))
        .expect("no answer to OPTIONS over UDP after the burst");
    assert_eq!(r.code, 200, "{}", r.raw);

    let (code, _) = gw.http_get("/healthz");
    assert_eq!(code, 200);
    let failures = gw.metric("echo_sip_parse_failures_total", &[]);
    assert!(failures > 0.0, "echo_sip_parse_failures_total = {failures}");
    assert_eq!(
        gw.metric("echo_active_calls", &[]),
        0.0,
        "a mutant set up a call"
    );
}
