//! `echo-gateway call` end to end against the gateway's echo app: the real
//! binary dials the real gateway over SIP/UDP, speaks espeak-ng lines over
//! RTP, hears them come back, measures the voice-to-voice latency at its
//! sockets and hangs up when its script is done. Listen-only: the echo app
//! says nothing a recogniser could map to a slot.

mod common;

use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

fn have_espeak() -> bool {
    Command::new("espeak-ng")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn caller_talks_to_the_echo_app_and_measures_latency() {
    if !have_espeak() {
        eprintln!("espeak-ng not installed (./x setup installs it); skipped");
        return;
    }
    let gw = Gateway::start();
    let dir = TempDir::new("caller");
    let scenario = dir.path().join("tiny.toml");
    std::fs::write(
        &scenario,
        "opening = \"Hello, this is a test call.\"\n[answers]\npatient_name = \"Linda Park\"\n",
    )
    .unwrap();
    let json = dir.path().join("report.json");
    let audio = dir.path().join("audio");
    let mut cmd = Command::new(gateway_bin());
    cmd.arg("call")
        .arg(format!("sip:echo@{}", gw.sip))
        .arg("--scenario")
        .arg(&scenario)
        .args([
            "--listen-only",
            "--speak-first-after",
            "300",
            "--timeout",
            "60",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--save-audio")
        .arg(&audio)
        .env("RUST_LOG", "info");
    let out = run_with_timeout(cmd, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!(
        "stdout:\n{stdout}\nstderr:\n{stderr}\ngateway:\n{}",
        gw.log()
    );

    // The caller hung up itself (the echo never says goodbye): exit 1.
    assert_eq!(out.status.code(), Some(1), "{context}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written"))
            .expect("valid JSON");
    assert_eq!(report["ended"], "caller-hangup", "{context}");
    assert!(report["sip_call_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    let turns = report["turns"].as_array().unwrap();
    // Spoke first (the echo is silent), then one line per echoed line:
    // the answer, the confirmation, and the last echo ends the script.
    let said: Vec<&str> = turns.iter().filter_map(|t| t["caller"].as_str()).collect();
    assert_eq!(
        said,
        ["Hello, this is a test call.", "Linda Park", "yes"],
        "{context}"
    );
    assert_eq!(turns[0]["asked_slot"], "opening");
    // Every echoed line was heard and timed: our voice comes back at once,
    // so the bot (the echo) was talking over the caller, and the tail of
    // the echo arrives within the jitter buffer's delay of our last voiced
    // packet.
    let heard: Vec<&serde_json::Value> = turns.iter().skip(1).collect();
    assert_eq!(heard.len(), 3, "{context}");
    for turn in heard {
        let v2v = turn["v2v_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("v2v measured: {context}"));
        assert!(v2v < 300, "echo latency {v2v} ms: {context}");
        assert_eq!(turn["barge_in"], true, "{context}");
        assert!(turn["bot"].as_str().unwrap().contains("s of speech"));
    }
    assert!(report["v2v_p50_ms"].as_u64().is_some());
    assert!(stdout.contains("caller: Linda Park"), "{context}");
    assert!(stdout.contains("ended=caller-hangup"), "{context}");
    // What the bot said, saved: three prompts (the shortest, "yes", is
    // about half a second: 16 000 bytes at 16 kHz).
    for n in 1..=3 {
        let wav = audio.join(format!("bot-{n:02}.wav"));
        let len = std::fs::metadata(&wav)
            .unwrap_or_else(|e| panic!("{}: {e}: {context}", wav.display()))
            .len();
        assert!(len > 8_000, "{} is {len} bytes", wav.display());
    }
}

#[test]
fn rejected_call_exits_non_zero_with_the_status() {
    let gw = Gateway::start();
    let dir = TempDir::new("caller-reject");
    let scenario = dir.path().join("tiny.toml");
    std::fs::write(&scenario, "opening = \"Hello.\"\n").unwrap();
    let json = dir.path().join("report.json");
    let mut cmd = Command::new(gateway_bin());
    cmd.arg("call")
        .arg(format!("sip:nobody-here@{}", gw.sip))
        .arg("--scenario")
        .arg(&scenario)
        .arg("--listen-only")
        .arg("--json")
        .arg(&json);
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ended=rejected (404)"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["ended"], "rejected");
    assert_eq!(report["status"], 404);
    assert_eq!(report["turns"].as_array().unwrap().len(), 0);

    // Not a SIP URI with an IP address: refused before dialling.
    let mut cmd = Command::new(gateway_bin());
    cmd.arg("call")
        .arg("sip:echo@not-an-ip")
        .arg("--scenario")
        .arg(&scenario)
        .arg("--listen-only");
    let out = run_with_timeout(cmd, Duration::from_secs(20));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a sip: URI"));
}

/// A recogniser for tests: hands out the given transcripts in order, one
/// per utterance, whatever was said.
struct ScriptedRecognizer(std::sync::Mutex<std::collections::VecDeque<String>>);

struct ScriptedStream(Option<String>);

impl echo_speech::Recognizer for ScriptedRecognizer {
    fn name(&self) -> &str {
        "scripted"
    }

    fn start(&self, _bias: &echo_speech::Bias) -> Box<dyn echo_speech::RecognitionStream> {
        Box::new(ScriptedStream(self.0.lock().unwrap().pop_front()))
    }
}

impl echo_speech::RecognitionStream for ScriptedStream {
    fn push(&mut self, _pcm_16k: &[i16]) {}

    fn finish(self: Box<Self>) -> Result<echo_speech::Transcript, echo_speech::SpeechError> {
        Ok(echo_speech::Transcript {
            text: self.0.unwrap_or_default(),
            confidence: None,
        })
    }
}

/// The recogniser path of the library: what the bot "says" (scripted
/// transcripts of the echoed audio) picks the caller's answers, a missing
/// answer is "I don't know", and the goodbye ends the script.
#[test]
fn caller_answers_what_the_recogniser_heard() {
    use echo_gateway::caller::{self, prompt::DONT_KNOW, scenario::Scenario, voice::Voice};
    if !have_espeak() {
        eprintln!("espeak-ng not installed (./x setup installs it); skipped");
        return;
    }
    let gw = Gateway::start();
    let heard = [
        "may i have the patients first and last name",
        "And what is the patient's date of birth?",
        "Let me read that back: Linda Park. Shall I book it?",
        "Thank you for calling. Goodbye.",
    ];
    let recognizer = ScriptedRecognizer(std::sync::Mutex::new(
        heard.iter().map(|s| s.to_string()).collect(),
    ));
    let options = caller::CallOptions {
        target_uri: format!("sip:echo@{}", gw.sip),
        scenario: Scenario::from_toml(
            "opening = \"I need an appointment.\"\n[answers]\npatient_name = \"Linda Park\"\n",
        )
        .unwrap(),
        voice: Voice::parse("en-us+m3"),
        recognizer: Some(std::sync::Arc::new(recognizer)),
        timeout: Duration::from_secs(60),
        refuse_refer: false,
        save_audio: None,
        speak_first_after: Duration::from_millis(300),
        barge_in: false,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime
        .block_on(caller::call(options))
        .expect("the call runs");
    let context = format!("{report:#?}\ngateway:\n{}", gw.log());
    assert_eq!(report.ended, caller::Ended::CallerHangup, "{context}");
    let asked: Vec<Option<&str>> = report
        .turns
        .iter()
        .map(|t| t.asked_slot.as_deref())
        .collect();
    assert_eq!(
        asked,
        [
            Some("opening"),
            Some("patient_name"),
            Some("date_of_birth"),
            Some("confirm"),
            None
        ],
        "{context}"
    );
    let said: Vec<Option<&str>> = report.turns.iter().map(|t| t.caller.as_deref()).collect();
    assert_eq!(
        said,
        [
            Some("I need an appointment."),
            Some("Linda Park"),
            Some(DONT_KNOW),
            Some("yes"),
            None
        ],
        "{context}"
    );
    assert_eq!(report.turns[1].bot, heard[0]);
    assert!(
        report.turns[1..].iter().all(|t| t.v2v_ms.is_some()),
        "{context}"
    );
}

/// A minimal bot over raw sockets: answers the INVITE, says `words` over
/// RTP (espeak-ng, μ-law), optionally sends a REFER (and expects 202 and
/// the NOTIFY, or 603 when the caller was told to `refuse`), then hangs up
/// with BYE. Returns what it saw.
fn fake_bot(
    words: &'static str,
    refer: bool,
    refuse: bool,
) -> (SocketAddr, std::thread::JoinHandle<Vec<String>>) {
    use common::sip::{parse_sdp_audio, rtp_packet, ulaw_encode, Msg};
    let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sip.local_addr().unwrap();
    let speech = echo_gateway::caller::voice::Voice::parse("en-us+m3")
        .synthesize(words)
        .expect("espeak-ng speaks");
    let speech = echo_gateway::caller::voice::resample(&speech, 16_000, 8_000);
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        sip.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = vec![0u8; 65_536];
        let mut recv = |want: &dyn Fn(&Msg) -> bool| -> (Msg, SocketAddr) {
            loop {
                let (n, from) = sip.recv_from(&mut buf).expect("the caller answers in time");
                let msg = Msg::parse(&buf[..n]).expect("SIP");
                if want(&msg) {
                    return (msg, from);
                }
            }
        };
        let (invite, caller) = recv(&|m| m.method == "INVITE");
        seen.push("INVITE".to_owned());
        let caller_rtp = parse_sdp_audio(&invite.body_str()).unwrap().addr;
        let rtp_addr = rtp.local_addr().unwrap();
        let sdp = format!(
            "v=0\r\no=bot 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n",
            rtp_addr.port()
        );
        let via = invite.header("via").unwrap().to_owned();
        let their_from = invite.header("from").unwrap().to_owned();
        let our_to = format!("{};tag=bot1", invite.header("to").unwrap());
        let call_id = invite.header("call-id").unwrap().to_owned();
        let ok = format!(
            "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {their_from}\r\nTo: {our_to}\r\n\
             Call-ID: {call_id}\r\nCSeq: {}\r\nContact: <sip:bot@{addr}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            invite.header("cseq").unwrap(),
            sdp.len()
        );
        sip.send_to(ok.as_bytes(), caller).unwrap();
        recv(&|m| m.method == "ACK");
        seen.push("ACK".to_owned());
        // The prompt, paced, then a little encoded silence.
        let start = std::time::Instant::now();
        let frames: Vec<&[i16]> = speech.chunks(160).collect();
        let silence = [0i16; 160];
        for (i, frame) in frames
            .iter()
            .chain(std::iter::repeat_n(&&silence[..], 10))
            .enumerate()
        {
            let payload: Vec<u8> = frame.iter().map(|&s| ulaw_encode(s)).collect();
            let packet = rtp_packet(0, i as u16, i as u32 * 160, 0xb07, i == 0, &payload);
            rtp.send_to(&packet, caller_rtp).unwrap();
            let due = start + Duration::from_millis(20 * (i as u64 + 1));
            std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        }
        let request = |method: &str, cseq: u32, extra: &str| {
            format!(
                "{method} sip:caller@{caller} SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKbot{cseq}\r\n\
                 Max-Forwards: 70\r\nFrom: {our_to}\r\nTo: {their_from}\r\nCall-ID: {call_id}\r\n\
                 CSeq: {cseq} {method}\r\n{extra}Content-Length: 0\r\n\r\n"
            )
        };
        if refer {
            let r = request("REFER", 1, "Refer-To: <sip:frontdesk@127.0.0.1:5099>\r\n");
            sip.send_to(r.as_bytes(), caller).unwrap();
            let (accepted, _) = recv(&|m| m.code != 0 && m.cseq().is_some_and(|c| c.1 == "REFER"));
            seen.push(format!("REFER {}", accepted.code));
        }
        if refer && !refuse {
            let (notify, from) = recv(&|m| m.method == "NOTIFY");
            seen.push(format!(
                "NOTIFY {} {} {}",
                notify.header("event").unwrap_or_default(),
                notify.header("subscription-state").unwrap_or_default(),
                notify.body_str().trim()
            ));
            let reply = common::sip::response_to(&notify, 200, "OK");
            sip.send_to(reply.as_bytes(), from).unwrap();
        }
        sip.send_to(request("BYE", 2, "").as_bytes(), caller)
            .unwrap();
        let (ok, _) = recv(&|m| m.code != 0 && m.cseq().is_some_and(|c| c.1 == "BYE"));
        seen.push(format!("BYE {}", ok.code));
        seen
    });
    (addr, handle)
}

fn call_fake_bot(
    bot: SocketAddr,
    transcript: &str,
    refuse_refer: bool,
) -> echo_gateway::caller::CallReport {
    use echo_gateway::caller::{self, scenario::Scenario, voice::Voice};
    let recognizer = ScriptedRecognizer(std::sync::Mutex::new([transcript.to_owned()].into()));
    let options = caller::CallOptions {
        target_uri: format!("sip:clinic@{bot}"),
        scenario: Scenario::from_toml("opening = \"I want to talk to a person.\"\n").unwrap(),
        voice: Voice::parse("en-us+f3"),
        recognizer: Some(std::sync::Arc::new(recognizer)),
        timeout: Duration::from_secs(30),
        refuse_refer,
        save_audio: None,
        speak_first_after: Duration::from_secs(10),
        barge_in: false,
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(caller::call(options))
        .expect("the call runs")
}

/// The bot's goodbye is said just before its BYE: the caller answers the
/// BYE at once, still hears the goodbye out, and reports bye-from-bot.
#[test]
fn bye_from_the_bot_ends_the_call_after_its_last_words() {
    if !have_espeak() {
        eprintln!("espeak-ng not installed; skipped");
        return;
    }
    let (bot, seen) = fake_bot("Thank you for calling. Goodbye.", false, false);
    let report = call_fake_bot(bot, "Thank you for calling. Goodbye.", false);
    let seen = seen.join().expect("the fake bot ran");
    assert_eq!(seen, ["INVITE", "ACK", "BYE 200"], "{report:#?}");
    assert_eq!(
        report.ended,
        echo_gateway::caller::Ended::ByeFromBot,
        "{report:#?}"
    );
    assert!(report.ended_by_bot());
    assert_eq!(report.turns.len(), 1, "{report:#?}");
    assert_eq!(report.turns[0].bot, "Thank you for calling. Goodbye.");
    assert_eq!(report.turns[0].caller, None);
}

/// REFER: 202, then a NOTIFY with the sipfrag `SIP/2.0 200 OK`; the bot's
/// BYE then ends the call as a transfer to the Refer-To target.
#[test]
fn refer_is_accepted_notified_and_reported() {
    if !have_espeak() {
        eprintln!("espeak-ng not installed; skipped");
        return;
    }
    let words = "I'm putting you through to the front desk now. Please hold.";
    let (bot, seen) = fake_bot(words, true, false);
    let report = call_fake_bot(bot, words, false);
    let seen = seen.join().expect("the fake bot ran");
    assert_eq!(
        seen,
        [
            "INVITE",
            "ACK",
            "REFER 202",
            "NOTIFY refer terminated;reason=noresource SIP/2.0 200 OK",
            "BYE 200"
        ],
        "{report:#?}"
    );
    assert_eq!(
        report.ended,
        echo_gateway::caller::Ended::Refer,
        "{report:#?}"
    );
    assert_eq!(
        report.refer_to.as_deref(),
        Some("sip:frontdesk@127.0.0.1:5099")
    );
    assert_eq!(report.turns.len(), 1, "{report:#?}");
    assert_eq!(report.turns[0].caller, None);
}

/// `--refuse-refer`: the REFER gets 603 and no NOTIFY; the bot's BYE then
/// ends the call as bye-from-bot, the target still recorded.
#[test]
fn refer_refused_on_request() {
    if !have_espeak() {
        eprintln!("espeak-ng not installed; skipped");
        return;
    }
    let words = "I'm putting you through to the front desk now. Please hold.";
    let (bot, seen) = fake_bot(words, true, true);
    let report = call_fake_bot(bot, words, true);
    let seen = seen.join().expect("the fake bot ran");
    assert_eq!(
        seen,
        ["INVITE", "ACK", "REFER 603", "BYE 200"],
        "{report:#?}"
    );
    assert_eq!(
        report.ended,
        echo_gateway::caller::Ended::ByeFromBot,
        "{report:#?}"
    );
    assert_eq!(
        report.refer_to.as_deref(),
        Some("sip:frontdesk@127.0.0.1:5099")
    );
}
