//! `echo-gateway call` end to end against the gateway's echo app: the real
//! binary dials the real gateway over SIP/UDP, speaks espeak-ng lines over
//! RTP, hears them come back, measures the voice-to-voice latency at its
//! sockets and hangs up when its script is done. Listen-only: the echo app
//! says nothing a recogniser could map to a slot.

mod common;

use common::*;
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
