//! The web console in a real browser: a throw-away PostgreSQL server holds
//! one seeded clinic call (a metformin refill), the gateway serves the
//! console from it, `echo-gateway users add` creates an admin and a viewer,
//! and `tests/browser/console.mjs` drives Chromium through the pages. When
//! the script asks for it, sipp phones the route the admin just added.
//!
//! Needs Debian's `chromium`, Node.js 20 and `tests/browser/node_modules`
//! (`./x setup` installs the latter two's missing parts). Screenshots land
//! in `<target>/console-screenshots/`.

mod common;
#[allow(unused_imports)]
#[path = "../audit/tests/support/mod.rs"]
mod pg;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use echo_audit::{
    AuditRecord, Call, CallEnd, CallId, DatabaseUrl, Event, EventKind, HangupBy, Outcome, Pii,
    Speaker, Turn, TurnTimings,
};
use serde_json::json;

const ADMIN: (&str, &str) = ("dr-admin", "correct horse battery");
const VIEWER: (&str, &str) = ("front-desk", "staple viewer 2026");

/// How long the whole browser run may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn browser_dir() -> PathBuf {
    workspace().join("tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// `<target>/console-screenshots`, next to the profile folder holding the
/// gateway binary cargo built for this test.
fn screenshot_dir() -> PathBuf {
    let bin = gateway_bin();
    let target = bin
        .parent()
        .and_then(Path::parent)
        .expect("gateway binary sits in <target>/<profile>/");
    target.join("console-screenshots")
}

/// Fails (never skips) with the command that installs what is missing.
fn require_browser_tools() {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let major = |v: &str| -> Option<u32> { v.strip_prefix('v')?.split('.').next()?.parse().ok() };
    match node {
        Ok(v) if major(&v).is_some_and(|m| m >= 20) => {}
        Ok(v) => panic!("Node.js 20 or newer is needed, found {v:?}"),
        Err(e) => panic!("`node` not found ({e}): install Node.js 20 or newer"),
    }
    assert!(
        chromium().is_file(),
        "{} not found: apt-get install chromium (./x setup does)",
        chromium().display()
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").is_dir(),
        "playwright-core not installed: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund (./x setup does)"
    );
    assert!(
        have_sipp(),
        "sipp not found: apt-get install sip-tester (./x setup does)"
    );
}

fn now_unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// A refill call as the clinic app records it: four caller turns, the
/// recogniser mishearing "metformin", all seven timings of every turn.
fn metformin_refill(id: &CallId, started_unix_us: i64) -> Vec<AuditRecord> {
    let call = Call {
        call_id: id.clone(),
        trunk: "open".into(),
        caller: "+41791234567".into(),
        called: "clinic".into(),
        route: "clinic".into(),
        app: "clinic".into(),
        sip_call_id: format!("{id}@127.0.0.1"),
        codec: "PCMU".into(),
        started_unix_us,
    };
    let said = [
        (
            "hi I need a refill of met for men",
            "hi I need a refill of metformin",
            json!([{"from": "met for men", "to": "metformin"}]),
            json!({"intent": "refill", "medication": "metformin"}),
            "Sure. What is your date of birth?",
        ),
        (
            "march third nineteen sixty two",
            "march third nineteen sixty two",
            json!([]),
            json!({"intent": "refill", "medication": "metformin", "dob": "1962-03-03"}),
            "Thank you. Which pharmacy should we send it to?",
        ),
        (
            "the walgreens on main street",
            "the Walgreens on Main Street",
            json!([{"from": "walgreens", "to": "Walgreens"}]),
            json!({"intent": "refill", "medication": "metformin", "dob": "1962-03-03",
                   "pharmacy": "Walgreens, Main Street"}),
            "Is that the 500 milligram tablets, twice a day?",
        ),
        (
            "yes five hundred twice a day",
            "yes 500 twice a day",
            json!([{"from": "five hundred", "to": "500"}]),
            json!({"intent": "refill", "medication": "metformin", "dob": "1962-03-03",
                   "pharmacy": "Walgreens, Main Street", "dose": "500 mg twice daily"}),
            "Your metformin refill request has gone to the pharmacy. Goodbye.",
        ),
    ];
    let final_slots = said[said.len() - 1].3.clone();
    let mut records: Vec<AuditRecord> = vec![
        call.into(),
        Event {
            call_id: id.clone(),
            seq: 0,
            at_us: 40_000,
            kind: EventKind::Answered,
            detail: Pii(json!({})),
        }
        .into(),
    ];
    for (seq, (raw, corrected, corrections, slots, reply)) in said.into_iter().enumerate() {
        // The greeting takes the first 4 s; each turn then lasts 8 s.
        let t0 = 4_000_000 + 8_000_000 * seq as i64;
        records.push(
            Turn {
                call_id: id.clone(),
                seq: seq as i64,
                speaker: Speaker::Caller,
                raw_text: raw.into(),
                raw_confidence: Some(0.71 + 0.05 * seq as f64),
                corrected_text: corrected.into(),
                corrections: Pii(corrections),
                slots: Pii(slots),
                reply_text: Some(reply.into()),
                timings: TurnTimings {
                    speech_start_us: Some(t0),
                    speech_end_us: Some(t0 + 1_900_000),
                    endpoint_us: Some(t0 + 2_250_000),
                    stt_final_us: Some(t0 + 2_430_000),
                    dialogue_us: Some(t0 + 2_470_000 + 10_000 * seq as i64),
                    tts_first_audio_us: Some(t0 + 2_680_000 + 10_000 * seq as i64),
                    first_reply_packet_us: Some(t0 + 2_700_000 + 10_000 * seq as i64),
                },
                barge_in_us: None,
            }
            .into(),
        );
    }
    records.push(
        CallEnd {
            call_id: id.clone(),
            answered_unix_us: Some(started_unix_us + 40_000),
            ended_unix_us: started_unix_us + 41_000_000,
            hangup_by: HangupBy::Bot,
            sip_code: None,
            transfer_target: None,
            outcome: Outcome::RefillRequested,
            final_slots: Pii(final_slots),
        }
        .into(),
    );
    records
}

/// Stores the records through the real audit store (the same hash chains
/// the gateway writes).
fn seed(url: &DatabaseUrl, records: &[AuditRecord]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = echo_audit::connect(url)
            .await
            .expect("connect to the audit store");
        let outcome = store.append(records).await.expect("append the seeded call");
        assert_eq!(outcome.inserted, records.len(), "{outcome:?}");
        store.close().await;
    });
}

/// Runs console.mjs, placing a SIP call each time it asks for one. Returns
/// whether it passed, and everything it and sipp printed.
fn run_browser(gw: &Gateway, seeded: &CallId, shots: &Path) -> (bool, String) {
    let mut child = Command::new("node")
        .arg(browser_dir().join("console.mjs"))
        .current_dir(browser_dir())
        .env("BASE_URL", format!("http://{}", gw.http))
        .env("ADMIN_USER", ADMIN.0)
        .env("ADMIN_PASS", ADMIN.1)
        .env("VIEWER_USER", VIEWER.0)
        .env("VIEWER_PASS", VIEWER.1)
        .env("SEED_CALL_ID", seeded.as_str())
        .env("SCREENSHOT_DIR", shots)
        .env("CHROMIUM", chromium())
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let mut to_script = child.stdin.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut transcript = String::new();
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let timed_out = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                println!("console.mjs: {line}");
                transcript.push_str(&line);
                transcript.push('\n');
                if let Some(user) = line.strip_prefix("@@place-call ") {
                    let run = gw
                        .sipp()
                        .timeout(Duration::from_secs(20))
                        .args(["-s", user.trim(), "-d", "500"])
                        .run("-sn:uac");
                    let answer = if run.success() {
                        "@@placed".to_owned()
                    } else {
                        transcript.push_str(&run.report());
                        format!("@@failed sipp exited with {}", run.output.status)
                    };
                    println!("console.mjs <- {answer}");
                    let _ = writeln!(to_script, "{answer}");
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break false,
            Err(mpsc::RecvTimeoutError::Timeout) => break true,
        }
    };
    if timed_out {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let stderr = err_reader.join().unwrap();
    if !stderr.is_empty() {
        transcript.push_str("--- console.mjs stderr ---\n");
        transcript.push_str(&stderr);
    }
    if timed_out {
        transcript.push_str(&format!("killed after {BROWSER_TIMEOUT:?}\n"));
    }
    (!timed_out && status.success(), transcript)
}

#[test]
fn console_works_in_a_browser() {
    require_browser_tools();
    let cluster = pg::PgCluster::start();
    let url = cluster.url();

    let seeded = CallId::random();
    seed(
        &url,
        &metformin_refill(&seeded, now_unix_us() - 5 * 60 * 1_000_000),
    );

    let gw = Gateway::start_with(GatewayConfig {
        database_url: Some(url.expose().to_owned()),
        ..GatewayConfig::default()
    });
    gw.add_user(ADMIN.0, "admin", ADMIN.1);
    gw.add_user(VIEWER.0, "viewer", VIEWER.1);

    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    println!("screenshots: {}", shots.display());
    let (passed, transcript) = run_browser(&gw, &seeded, &shots);
    assert!(
        passed,
        "the browser checks failed (screenshots in {}):\n{transcript}",
        shots.display()
    );
}
