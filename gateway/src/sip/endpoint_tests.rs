//! The endpoint driven in virtual time by a scripted peer: every call flow
//! of RFC 3261 that Echo takes part in, with loss where it matters.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::endpoint::{CallHandle, EndReason, EndpointConfig, Event, SipEndpoint};
use super::message;
use super::timer::T1;
use super::{Flow, Transport};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::routing::{App, RouteTable, TrunkTable};
use md5::Digest;

const PEER: &str = "127.0.0.1:5062";
const RTP: &str = "127.0.0.1:20000";

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n";
const G729_OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 6000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";

struct Sim {
    endpoint: SipEndpoint,
    now: Instant,
    metrics: Arc<Metrics>,
}

impl Sim {
    fn new(toml: &str) -> Sim {
        let config = Config::from_toml(toml, &|_| None).expect("test config");
        let metrics = Arc::new(Metrics::default());
        let endpoint = SipEndpoint::new(
            EndpointConfig {
                host: "127.0.0.1".into(),
                port: 5060,
                seed: 7,
            },
            TrunkTable::from_config(&config.trunks),
            RouteTable::from_config(&config.routes),
            metrics.clone(),
        );
        Sim {
            endpoint,
            now: Instant::now(),
            metrics,
        }
    }

    /// Swaps in the trunks and routes of `toml`, as the console would.
    fn reconfigure(&mut self, toml: &str) {
        let config = Config::from_toml(toml, &|_| None).expect("test config");
        self.endpoint.reconfigure(&config.trunks, &config.routes);
    }

    fn send_from(&mut self, from: &str, transport: Transport, text: &str) {
        let flow = Flow::new(transport, from.parse().unwrap(), None);
        self.endpoint
            .handle_message(self.now, flow, text.as_bytes());
    }

    fn send(&mut self, text: &str) {
        self.send_from(PEER, Transport::Udp, text);
    }

    /// Everything sent since the last call, as text.
    fn sent(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.endpoint.poll_transmit())
            .map(|t| String::from_utf8(t.data).unwrap())
            .collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.endpoint.poll_event()).collect()
    }

    /// Advances virtual time to `until`, firing each deadline on the way,
    /// and returns (ms since start of advance, message) for what was sent.
    fn advance(&mut self, by: Duration) -> Vec<(u128, String)> {
        let start = self.now;
        let until = self.now + by;
        let mut out = Vec::new();
        while let Some(at) = self.endpoint.poll_timeout() {
            if at > until {
                break;
            }
            self.now = at.max(self.now);
            self.endpoint.handle_timeout(self.now);
            for m in self.sent() {
                out.push(((self.now - start).as_millis(), m));
            }
        }
        self.now = until;
        out
    }

    /// INVITE → accept → returns the call and the 200.
    fn establish(&mut self, call_id: &str) -> (CallHandle, String) {
        self.send(&invite(call_id, "echo", 1, Some(OFFER)));
        let call = incoming(&self.events());
        self.endpoint.accept(self.now, call, RTP.parse().unwrap());
        let sent = self.sent();
        let ok = sent
            .iter()
            .find(|m| m.starts_with("SIP/2.0 200"))
            .expect("200 sent")
            .clone();
        (call, ok)
    }

    fn metric_responses(&self, code: u16) -> u64 {
        self.metrics
            .sip_responses
            .get_or_create(&crate::metrics::CodeLabel { code })
            .get()
    }
}

fn invite(call_id: &str, user: &str, cseq: u32, body: Option<&str>) -> String {
    let body = body.unwrap_or("");
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".into()
    };
    format!(
        "INVITE sip:{user}@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP {PEER};branch=z9hG4bK-{call_id}-{cseq};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:{user}@127.0.0.1>\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:alice@{PEER}>\r\n{ct}\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A request inside the dialog the 200 `ok` created.
fn in_dialog(method: &str, ok: &str, cseq: u32, branch: &str, body: Option<&str>) -> String {
    let to = ok
        .lines()
        .find(|l| l.starts_with("To:"))
        .unwrap()
        .trim_start_matches("To:")
        .trim();
    let call_id = ok
        .lines()
        .find(|l| l.starts_with("Call-ID:"))
        .unwrap()
        .trim_start_matches("Call-ID:")
        .trim();
    let body = body.unwrap_or("");
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".into()
    };
    let cseq_method = if method == "ACK" { "ACK" } else { method };
    format!(
        "{method} sip:echo@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP {PEER};branch=z9hG4bK-{branch}\r\nMax-Forwards: 70\r\n\
From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
CSeq: {cseq} {cseq_method}\r\nContact: <sip:alice@{PEER}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn incoming(events: &[Event]) -> CallHandle {
    events
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .expect("an incoming call")
}

fn status(msg: &str) -> u16 {
    msg[8..11].parse().unwrap()
}

fn statuses(sent: &[String]) -> Vec<u16> {
    sent.iter().map(|m| status(m)).collect()
}

fn body(msg: &str) -> &str {
    msg.split("\r\n\r\n").nth(1).unwrap_or("")
}

#[test]
fn invite_is_answered_and_retransmissions_are_not_processed_twice() {
    let mut sim = Sim::new("");
    sim.send(&invite("c1", "echo", 1, Some(OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![100]);
    let call = incoming(&sim.events());
    sim.endpoint.accept(sim.now, call, RTP.parse().unwrap());
    let sent = sim.sent();
    assert_eq!(statuses(&sent), vec![200]);
    let ok = &sent[0];
    assert!(ok.contains("Contact: <sip:echo@127.0.0.1:5060>"), "{ok}");
    assert!(message::tag(header_value_text(ok, "To")).is_some());
    let answer = body(ok);
    assert!(answer.contains("m=audio 20000 RTP/AVP 8 101"), "{answer}");
    assert!(matches!(sim.events()[..], [Event::Media { .. }]));

    // The INVITE again: the same 200, no new call.
    sim.send(&invite("c1", "echo", 1, Some(OFFER)));
    assert_eq!(sim.sent(), vec![ok.clone()]);
    assert!(sim.events().is_empty());

    sim.send(&in_dialog("ACK", ok, 1, "ack1", None));
    assert!(
        sim.advance(Duration::from_secs(40)).is_empty(),
        "ACK stops 2xx retransmission"
    );

    sim.send(&in_dialog("BYE", ok, 2, "bye1", None));
    assert_eq!(statuses(&sim.sent()), vec![200]);
    sim.advance(Duration::from_secs(40));
    assert_eq!(
        sim.endpoint.transactions(),
        (0, 0),
        "transactions end and leave no deadlines"
    );
    assert_eq!(
        sim.events(),
        vec![Event::Ended {
            call,
            reason: EndReason::RemoteBye
        }]
    );
    assert_eq!(sim.endpoint.active_calls(), 0);
}

fn header_value_text<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .map(|l| l[name.len() + 1..].trim())
        .unwrap()
}

#[test]
fn unacknowledged_2xx_is_retransmitted_then_the_call_is_torn_down() {
    let mut sim = Sim::new("");
    let (call, _ok) = sim.establish("c2");
    sim.events();
    let sent = sim.advance(Duration::from_secs(40));
    let times: Vec<u128> = sent
        .iter()
        .filter(|(_, m)| m.starts_with("SIP/2.0 200"))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(
        times,
        vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(
        sent.iter()
            .any(|(t, m)| *t == 32000 && m.starts_with("BYE ")),
        "BYE at Timer H"
    );
    assert!(sim.events().contains(&Event::Ended {
        call,
        reason: EndReason::NoAck
    }));
}

#[test]
fn cancel_while_ringing_gets_200_and_487() {
    let mut sim =
        Sim::new("[[routes]]\nmatch = \"ring\"\napp = \"echo\"\nanswer_delay_ms = 5000\n");
    sim.send(&invite("c3", "ring", 1, Some(OFFER)));
    let call = incoming(&sim.events());
    sim.endpoint.accept(sim.now, call, RTP.parse().unwrap());
    assert_eq!(statuses(&sim.sent()), vec![100, 180]);
    sim.advance(Duration::from_secs(1));
    let cancel = invite("c3", "ring", 1, None)
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    sim.send(&cancel);
    let sent = sim.sent();
    assert_eq!(statuses(&sent), vec![200, 487]);
    assert!(sent[0].contains("CSeq: 1 CANCEL"));
    assert!(sent[1].contains("CSeq: 1 INVITE"));
    assert_eq!(
        sim.events(),
        vec![Event::Ended {
            call,
            reason: EndReason::Cancelled
        }]
    );
    // The ACK for the 487 (same branch) stops its retransmission.
    let ack = invite("c3", "ring", 1, None)
        .replacen("INVITE sip", "ACK sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK");
    sim.send(&ack);
    assert!(sim.sent().is_empty());
    assert!(sim
        .advance(Duration::from_secs(40))
        .iter()
        .all(|(_, m)| !m.starts_with("SIP/2.0 487")));
}

#[test]
fn ringing_call_is_answered_after_the_delay() {
    let mut sim =
        Sim::new("[[routes]]\nmatch = \"ring*\"\napp = \"echo\"\nanswer_delay_ms = 3000\n");
    sim.send(&invite("c4", "ringing", 1, Some(OFFER)));
    let call = incoming(&sim.events());
    sim.endpoint.accept(sim.now, call, RTP.parse().unwrap());
    sim.sent();
    let sent = sim.advance(Duration::from_millis(3000));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 3000);
    assert!(sent[0].1.starts_with("SIP/2.0 200"));
}

#[test]
fn no_common_codec_is_488() {
    let mut sim = Sim::new("");
    sim.send(&invite("c5", "echo", 1, Some(G729_OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![488]);
    assert!(sim.events().is_empty());
}

#[test]
fn error_responses_a_peer_relies_on() {
    // Configured routes replace the catch-all, so an unknown number is 404.
    let mut sim = Sim::new("[[routes]]\nmatch = \"ec*\"\napp = \"echo\"\n");
    let base = invite("e1", "echo", 1, Some(OFFER));
    let cases: Vec<(String, u16)> = vec![
        (
            base.replace("Call-ID: e1\r\n", "")
                .replace("branch=z9hG4bK-e1-1", "branch=z9hG4bK-e1a"),
            400,
        ),
        (
            base.replace("Max-Forwards: 70", "Max-Forwards: 0")
                .replace("-e1-1", "-e1b"),
            483,
        ),
        (
            base.replace("Max-Forwards: 70", "Max-Forwards: 70\r\nRequire: 100rel")
                .replace("-e1-1", "-e1c"),
            420,
        ),
        (
            base.replace("application/sdp", "text/plain")
                .replace("-e1-1", "-e1d"),
            415,
        ),
        (
            base.replacen("INVITE sip", "FROB sip", 1)
                .replace("CSeq: 1 INVITE", "CSeq: 1 FROB")
                .replace("-e1-1", "-e1e"),
            405,
        ),
        (
            base.replacen("INVITE sip", "REGISTER sip", 1)
                .replace("CSeq: 1 INVITE", "CSeq: 1 REGISTER")
                .replace("-e1-1", "-e1f"),
            405,
        ),
        (
            base.replacen("INVITE sip", "BYE sip", 1)
                .replace("CSeq: 1 INVITE", "CSeq: 1 BYE")
                .replace("-e1-1", "-e1g"),
            481,
        ),
        (
            base.replace(
                "sip:echo@127.0.0.1:5060 SIP",
                "sip:nobody@127.0.0.1:5060 SIP",
            )
            .replace("-e1-1", "-e1h"),
            404,
        ),
        (
            base.replace(
                "To: <sip:echo@127.0.0.1>",
                "To: <sip:echo@127.0.0.1>;tag=unknown",
            )
            .replace("-e1-1", "-e1i"),
            481,
        ),
    ];
    for (request, expected) in cases {
        sim.send(&request);
        let sent = sim.sent();
        assert_eq!(statuses(&sent), vec![expected], "{request}");
        if expected == 405 {
            assert!(sent[0].contains("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS"));
        }
        if expected == 420 {
            assert!(sent[0].contains("Unsupported: 100rel"));
        }
    }
    assert!(sim.events().is_empty());
    assert_eq!(sim.endpoint.active_calls(), 0);
}

#[test]
fn options_answers_with_allow_and_accept() {
    let mut sim = Sim::new("");
    let options = invite("o1", "echo", 1, None)
        .replacen("INVITE sip", "OPTIONS sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS");
    sim.send(&options);
    let sent = sim.sent();
    assert_eq!(statuses(&sent), vec![200]);
    assert!(sent[0].contains("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS"));
    assert!(sent[0].contains("Accept: application/sdp"));
    // From outside every trunk (no trunks: loopback only): 403.
    sim.send_from(
        "192.0.2.1:5060",
        Transport::Udp,
        &options.replace("-o1-1", "-o2"),
    );
    assert_eq!(statuses(&sim.sent()), vec![403]);
}

#[test]
fn garbage_is_counted_and_dropped() {
    let mut sim = Sim::new("");
    sim.send("\u{1}\u{2}not sip at all");
    sim.send("INVITE sip:x SIP/2.0\r\nContent-Length: 99\r\n\r\nshort");
    assert!(sim.sent().is_empty());
    assert_eq!(sim.metrics.sip_parse_failures.get(), 2);
}

#[test]
fn late_offer_gets_our_offer_and_the_answer_comes_in_the_ack() {
    let mut sim = Sim::new("");
    sim.send(&invite("l1", "echo", 1, None));
    let call = incoming(&sim.events());
    sim.endpoint.accept(sim.now, call, RTP.parse().unwrap());
    let sent = sim.sent();
    let ok = sent.iter().find(|m| m.starts_with("SIP/2.0 200")).unwrap();
    let offer = body(ok);
    assert!(offer.contains("m=audio 20000 RTP/AVP"), "{offer}");
    assert!(sim.events().is_empty(), "no media before the answer");
    let answer = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 7000 RTP/AVP 0\r\n";
    sim.send(&in_dialog("ACK", ok, 1, "lack", Some(answer)));
    let events = sim.events();
    match &events[..] {
        [Event::Media { media, .. }] => {
            assert_eq!(media.remote_rtp, Some("127.0.0.1:7000".parse().unwrap()));
            assert_eq!(media.codec, echo_media::CodecKind::Pcmu);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reinvite_hold_resume_and_new_address() {
    let mut sim = Sim::new("");
    let (_call, ok) = sim.establish("r1");
    sim.events();
    sim.send(&in_dialog("ACK", &ok, 1, "rack", None));
    let hold = OFFER.replace("a=fmtp:101 0-16\r\n", "a=fmtp:101 0-16\r\na=sendonly\r\n");
    sim.send(&in_dialog("INVITE", &ok, 2, "hold", Some(&hold)));
    let sent = sim.sent();
    assert_eq!(statuses(&sent), vec![100, 200]);
    let answer = body(&sent[1]);
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(
        answer.contains("o=echo ") || answer.contains(" 2 IN IP4"),
        "{answer}"
    );
    assert!(matches!(sim.events()[..], [Event::Media { .. }]));
    sim.send(&in_dialog("ACK", &ok, 2, "hack", None));

    let moved = OFFER.replace("m=audio 6000", "m=audio 6100");
    sim.send(&in_dialog("INVITE", &ok, 3, "resume", Some(&moved)));
    let sent = sim.sent();
    assert_eq!(statuses(&sent), vec![100, 200]);
    assert!(body(&sent[1]).contains("a=sendrecv"));
    match &sim.events()[..] {
        [Event::Media { media, .. }] => {
            assert_eq!(media.remote_rtp, Some("127.0.0.1:6100".parse().unwrap()))
        }
        other => panic!("{other:?}"),
    }
    // An old CSeq is out of order.
    sim.send(&in_dialog("INVITE", &ok, 2, "stale", Some(OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![500]);
}

#[test]
fn hangup_sends_bye_with_timer_e_until_answered() {
    let mut sim = Sim::new("");
    let (call, ok) = sim.establish("h1");
    sim.events();
    sim.send(&in_dialog("ACK", &ok, 1, "hack1", None));
    sim.endpoint.hangup(sim.now, call);
    let sent = sim.sent();
    assert_eq!(sent.len(), 1);
    let bye = &sent[0];
    assert!(
        bye.starts_with("BYE sip:alice@127.0.0.1:5062 SIP/2.0"),
        "{bye}"
    );
    assert!(bye.contains("From: <sip:echo@127.0.0.1>;tag="));
    assert!(bye.contains("To: <sip:alice@127.0.0.1>;tag=a1"));
    let resent = sim.advance(Duration::from_millis(1600));
    assert_eq!(
        resent.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        vec![500, 1500]
    );
    let via = header_value_text(bye, "Via");
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: {via}\r\n{}\r\n{}\r\nCall-ID: h1\r\n{}\r\nContent-Length: 0\r\n\r\n",
        bye.lines().find(|l| l.starts_with("From:")).unwrap(),
        bye.lines().find(|l| l.starts_with("To:")).unwrap(),
        bye.lines().find(|l| l.starts_with("CSeq:")).unwrap(),
    );
    sim.send(&reply);
    assert_eq!(
        sim.events(),
        vec![Event::Ended {
            call,
            reason: EndReason::LocalBye
        }]
    );
    assert!(sim.advance(Duration::from_secs(40)).is_empty());
    assert_eq!(sim.endpoint.transactions(), (0, 0), "everything cleaned up");
}

#[test]
fn digest_auth_challenges_then_admits() {
    let mut sim = Sim::new(
        "[[trunks]]\nname = \"carrier\"\nallow = [\"127.0.0.0/8\"]\nusername = \"alice\"\npassword = \"s3cret\"\n",
    );
    sim.send(&invite("a1", "echo", 1, Some(OFFER)));
    let sent = sim.sent();
    assert_eq!(statuses(&sent), vec![401]);
    let challenges: Vec<&str> = sent[0]
        .lines()
        .filter(|l| l.starts_with("WWW-Authenticate:"))
        .collect();
    assert_eq!(challenges.len(), 2, "{}", sent[0]);
    assert!(challenges[1].contains("SHA-256"));
    let md5 = challenges[0];
    let nonce = message::header_param(&md5.replace(',', ";"), "nonce")
        .unwrap()
        .to_owned();
    let uri = "sip:echo@127.0.0.1:5060";
    let ha1 = format!("{:x}", md5::Md5::digest("alice:echo:s3cret"));
    let ha2 = format!("{:x}", md5::Md5::digest(format!("INVITE:{uri}")));
    let response = format!(
        "{:x}",
        md5::Md5::digest(format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"))
    );
    let authorization = format!(
        "Authorization: Digest username=\"alice\", realm=\"echo\", nonce=\"{nonce}\", uri=\"{uri}\", \
response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"abc\"\r\n"
    );
    let authed = invite("a1", "echo", 2, Some(OFFER)).replace(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\n{authorization}"),
    );
    sim.send(&authed);
    assert_eq!(statuses(&sim.sent()), vec![100]);
    incoming(&sim.events());
    // The same nonce count again is a replay.
    sim.send(
        &authed
            .replace("CSeq: 2", "CSeq: 3")
            .replace("-a1-2", "-a1-3"),
    );
    assert_eq!(statuses(&sim.sent()), vec![403]);
    // Wrong password.
    let wrong = authed
        .replace(&response, "0123456789abcdef0123456789abcdef")
        .replace("-a1-2", "-a1-4");
    sim.send(&wrong);
    assert_eq!(statuses(&sim.sent()), vec![403]);
}

#[test]
fn trunk_call_limit_is_486() {
    let mut sim = Sim::new("[[trunks]]\nname = \"t\"\nallow = [\"127.0.0.1/32\"]\nmax_calls = 1\n");
    sim.send(&invite("m1", "echo", 1, Some(OFFER)));
    let call = incoming(&sim.events());
    sim.sent();
    sim.send(&invite("m2", "echo", 1, Some(OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![486]);
    // Once the first call ends, there is room again.
    sim.endpoint.hangup(sim.now, call);
    assert_eq!(
        statuses(&sim.sent()),
        vec![480],
        "unanswered: a final response"
    );
    sim.events();
    sim.send(&invite("m3", "echo", 1, Some(OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![100]);
    // Outside the trunk's CIDR: 403.
    sim.send_from(
        "127.0.0.2:5062",
        Transport::Udp,
        &invite("m4", "echo", 1, Some(OFFER)),
    );
    assert_eq!(statuses(&sim.sent()), vec![403]);
    assert!(sim.metric_responses(403) >= 1);
}

#[test]
fn trunk_rate_limit_is_503_with_retry_after() {
    let mut sim = Sim::new("[[trunks]]\nname = \"t\"\nallow = [\"127.0.0.1/32\"]\nmax_cps = 1\n");
    sim.send(&invite("p1", "echo", 1, Some(OFFER)));
    incoming(&sim.events());
    sim.sent();
    sim.send(&invite("p2", "echo", 1, Some(OFFER)));
    let sent = sim.sent();
    assert_eq!(statuses(&sent), vec![503]);
    assert!(sent[0].contains("Retry-After: 1"), "{}", sent[0]);
    sim.advance(Duration::from_secs(1));
    sim.send(&invite("p3", "echo", 1, Some(OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![100]);
}

#[test]
fn tcp_requests_are_answered_on_the_connection_without_retransmission() {
    let mut sim = Sim::new("");
    let text = invite("t1", "echo", 1, Some(OFFER)).replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let flow = Flow::new(Transport::Tcp, PEER.parse::<SocketAddr>().unwrap(), Some(9));
    sim.endpoint.handle_message(sim.now, flow, text.as_bytes());
    let call = incoming(&sim.events());
    sim.endpoint.accept(sim.now, call, RTP.parse().unwrap());
    let sent: Vec<_> = std::iter::from_fn(|| sim.endpoint.poll_transmit()).collect();
    assert!(sent.iter().all(|t| t.flow.connection == Some(9)));
    let ok = String::from_utf8(sent.last().unwrap().data.clone()).unwrap();
    assert!(ok.contains("transport=tcp"));
    let later = sim.advance(Duration::from_secs(31));
    assert!(
        later.iter().all(|(_, m)| !m.starts_with("SIP/2.0 200")),
        "no 2xx retransmission over TCP"
    );
    let _ = T1;
}

/// A small deterministic PRNG for the mutation test (xorshift64*).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Mutated and truncated versions of every request and response the other
/// tests send, plus timer firings, thrown at one endpoint: nothing panics,
/// and afterwards it still answers an OPTIONS.
#[test]
fn random_mutations_never_panic_the_endpoint() {
    let mut sim = Sim::new("[[routes]]\nmatch = \"*\"\napp = \"echo\"\nanswer_delay_ms = 200\n");
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let seeds = [
        invite("f1", "echo", 1, Some(OFFER)),
        invite("f2", "echo", 1, None),
        invite("f3", "echo", 1, Some(G729_OFFER)),
        invite("f4", "echo", 1, Some(OFFER))
            .replacen("INVITE sip", "CANCEL sip", 1)
            .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL"),
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n\
To: <sip:c@d>;tag=2\r\nCall-ID: f5\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
            .to_owned(),
    ];
    let junk: [&[u8]; 6] = [
        b";tag=",
        b"\r\n",
        b"\0",
        b"Content-Length: 99999999999999999999\r\n",
        "é\u{202e}".as_bytes(),
        b"<sip:@:>",
    ];
    for i in 0..20_000 {
        let mut bytes = seeds[rng.below(seeds.len())].clone().into_bytes();
        for _ in 0..1 + rng.below(4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len());
            match rng.below(5) {
                0 => bytes[at] = rng.next() as u8,
                1 => bytes.truncate(at),
                2 => {
                    let j = junk[rng.below(junk.len())];
                    bytes.splice(at..at, j.iter().copied());
                }
                3 => {
                    let end = (at + rng.below(40)).min(bytes.len());
                    bytes.drain(at..end);
                }
                _ => {
                    let end = (at + rng.below(40)).min(bytes.len());
                    let copy = bytes[at..end].to_vec();
                    bytes.splice(at..at, copy);
                }
            }
        }
        let transport = if i % 3 == 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let flow = Flow::new(transport, PEER.parse().unwrap(), Some(1));
        sim.endpoint.handle_message(sim.now, flow, &bytes);
        for event in sim.events() {
            if let Event::IncomingCall { call, .. } = event {
                match rng.below(3) {
                    0 => sim.endpoint.accept(sim.now, call, RTP.parse().unwrap()),
                    1 => sim.endpoint.reject(sim.now, call, 503),
                    _ => sim.endpoint.hangup(sim.now, call),
                }
            }
        }
        sim.sent();
        if i % 50 == 0 {
            sim.advance(Duration::from_millis(rng.below(5000) as u64));
        }
    }
    sim.advance(Duration::from_secs(120));
    assert_eq!(
        sim.endpoint.transactions().0,
        0,
        "no transaction outlives its timers"
    );
    let options = invite("final", "echo", 1, None)
        .replacen("INVITE sip", "OPTIONS sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS");
    sim.send(&options);
    assert_eq!(statuses(&sim.sent()), vec![200]);
    assert!(sim.metrics.sip_parse_failures.get() > 0);
}

/// A response to `request` (one we sent) with `status`.
fn reply_to(request: &str, status: &str) -> String {
    let via = header_value_text(request, "Via");
    let line = |name: &str| {
        request
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_owned()
    };
    format!(
        "SIP/2.0 {status}\r\nVia: {via}\r\n{}\r\n{}\r\n{}\r\n{}\r\nContent-Length: 0\r\n\r\n",
        line("From:"),
        line("To:"),
        line("Call-ID:"),
        line("CSeq:"),
    )
}

#[test]
fn refer_goes_in_the_dialog_and_its_answer_is_reported() {
    let mut sim = Sim::new("");
    let (call, ok) = sim.establish("r1");
    sim.events();
    sim.send(&in_dialog("ACK", &ok, 1, "rack1", None));
    sim.endpoint
        .refer(sim.now, call, "sip:frontdesk@127.0.0.1:5070");
    let sent = sim.sent();
    assert_eq!(sent.len(), 1);
    let refer = &sent[0];
    assert!(
        refer.starts_with("REFER sip:alice@127.0.0.1:5062 SIP/2.0"),
        "{refer}"
    );
    assert!(refer.contains("Refer-To: <sip:frontdesk@127.0.0.1:5070>"));
    assert!(refer.contains("Referred-By: <sip:echo@127.0.0.1>"));
    assert!(refer.contains("To: <sip:alice@127.0.0.1>;tag=a1"));
    assert!(refer.contains(" REFER\r\n"), "CSeq method");
    sim.send(&reply_to(refer, "202 Accepted"));
    assert_eq!(sim.events(), vec![Event::ReferAnswered { call, code: 202 }]);
    // The transferee's NOTIFY is answered; the call stays up.
    sim.send(&in_dialog("NOTIFY", &ok, 2, "rnotify", None));
    assert_eq!(statuses(&sim.sent()), vec![200]);
    assert_eq!(sim.endpoint.active_calls(), 1);

    // A refused REFER is reported too, and the call can still end with BYE.
    sim.endpoint
        .refer(sim.now, call, "sip:frontdesk@127.0.0.1:5070");
    let refer = sim.sent().remove(0);
    sim.send(&reply_to(&refer, "405 Method Not Allowed"));
    assert_eq!(sim.events(), vec![Event::ReferAnswered { call, code: 405 }]);
    sim.endpoint.hangup(sim.now, call);
    let bye = sim.sent().remove(0);
    assert!(bye.starts_with("BYE "), "{bye}");
    sim.send(&reply_to(&bye, "200 OK"));
    assert_eq!(
        sim.events(),
        vec![Event::Ended {
            call,
            reason: EndReason::LocalBye
        }]
    );
}

#[test]
fn unanswered_refer_is_reported_as_408() {
    let mut sim = Sim::new("");
    let (call, ok) = sim.establish("r2");
    sim.events();
    sim.send(&in_dialog("ACK", &ok, 1, "rack2", None));
    sim.endpoint
        .refer(sim.now, call, "sip:frontdesk@127.0.0.1:5070");
    sim.sent();
    sim.advance(Duration::from_secs(33));
    assert_eq!(sim.events(), vec![Event::ReferAnswered { call, code: 408 }]);
}

#[test]
fn call_on_a_removed_trunk_ends_normally_and_counts_down() {
    let mut sim = Sim::new("[[trunks]]\nname = \"a\"\nallow = [\"127.0.0.1/32\"]\n");
    let (call, ok) = sim.establish("x1");
    sim.events();
    let a = sim.endpoint.trunks().by_name("a").unwrap();
    assert_eq!(sim.endpoint.trunks().active_calls(a), 1);

    sim.reconfigure("[[trunks]]\nname = \"b\"\nallow = [\"127.0.0.2/32\"]\n");
    // New calls from the removed trunk's network are refused...
    sim.send(&invite("x2", "echo", 1, Some(OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![403]);
    // ...while the call in progress carries on and ends with a BYE.
    sim.send(&in_dialog("ACK", &ok, 1, "xack", None));
    sim.send(&in_dialog("OPTIONS", &ok, 2, "xopt", None));
    assert_eq!(statuses(&sim.sent()), vec![200]);
    assert_eq!(sim.endpoint.trunks().active_calls(a), 1);
    sim.endpoint.hangup(sim.now, call);
    let bye = sim.sent().remove(0);
    assert!(bye.starts_with("BYE sip:alice@127.0.0.1:5062"), "{bye}");
    sim.send(&reply_to(&bye, "200 OK"));
    assert_eq!(
        sim.events(),
        vec![Event::Ended {
            call,
            reason: EndReason::LocalBye
        }]
    );
    let trunks = sim.endpoint.trunks();
    assert_eq!(trunks.active_calls(a), 0);
    assert!(trunks.is_retired(a));
    assert_eq!(trunks.name(a), "a");
}

#[test]
fn route_added_by_reconfigure_answers_the_next_invite() {
    let mut sim = Sim::new("[[routes]]\nmatch = \"ec*\"\napp = \"echo\"\n");
    sim.send(&invite("n1", "clinic", 1, Some(OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![404]);

    sim.reconfigure(
        "[[routes]]\nmatch = \"ec*\"\napp = \"echo\"\n\
         [[routes]]\nmatch = \"clinic\"\napp = \"clinic\"\n",
    );
    sim.send(&invite("n2", "clinic", 1, Some(OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![100]);
    let events = sim.events();
    assert!(
        matches!(&events[..], [Event::IncomingCall { app: App::Clinic, route, .. }] if route == "clinic"),
        "{events:?}"
    );
    sim.endpoint
        .accept(sim.now, incoming(&events), RTP.parse().unwrap());
    assert_eq!(statuses(&sim.sent()), vec![200]);
}

#[test]
fn changed_call_limit_applies_to_the_next_invite_and_keeps_the_count() {
    let trunk = |max: u32| {
        format!("[[trunks]]\nname = \"t\"\nallow = [\"127.0.0.1/32\"]\nmax_calls = {max}\n")
    };
    let mut sim = Sim::new(&trunk(1));
    sim.establish("k1");
    sim.send(&invite("k2", "echo", 1, Some(OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![486]);

    sim.reconfigure(&trunk(2));
    let t = sim.endpoint.trunks().by_name("t").unwrap();
    assert_eq!(sim.endpoint.trunks().active_calls(t), 1);
    sim.send(&invite("k3", "echo", 1, Some(OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![100]);
    // Two calls up now: the raised limit is reached, not reset.
    sim.send(&invite("k4", "echo", 1, Some(OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![486]);
    assert_eq!(sim.endpoint.trunks().active_calls(t), 2);
}

#[test]
fn removed_route_still_answers_its_ringing_calls() {
    let mut sim =
        Sim::new("[[routes]]\nmatch = \"ring\"\napp = \"echo\"\nanswer_delay_ms = 3000\n");
    // One call ringing, one not yet accepted by the call layer.
    sim.send(&invite("g1", "ring", 1, Some(OFFER)));
    let ringing = incoming(&sim.events());
    sim.endpoint.accept(sim.now, ringing, RTP.parse().unwrap());
    sim.send(&invite("g2", "ring", 1, Some(OFFER)));
    let waiting = incoming(&sim.events());
    assert_eq!(statuses(&sim.sent()), vec![100, 180, 100]);

    sim.reconfigure("[[routes]]\nmatch = \"other\"\napp = \"echo\"\n");
    sim.send(&invite("g3", "ring", 1, Some(OFFER)));
    assert_eq!(statuses(&sim.sent()), vec![404]);

    sim.advance(Duration::from_millis(1000));
    sim.endpoint.accept(sim.now, waiting, RTP.parse().unwrap());
    assert_eq!(statuses(&sim.sent()), vec![180], "still rings first");
    // First 200 of each call, in ms from now: each after its own 3 s.
    let mut answered: Vec<(u128, String)> = Vec::new();
    for (t, m) in sim.advance(Duration::from_millis(3000)) {
        let call_id = header_value_text(&m, "Call-ID");
        if status(&m) == 200 && !answered.iter().any(|(_, id)| *id == call_id) {
            answered.push((t, call_id.to_owned()));
        }
    }
    assert_eq!(answered, vec![(2000, "g1".into()), (3000, "g2".into())]);
}
