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
