//! `echo-gateway chat`: the text channel through the real binary, with the
//! clinic vocabulary from ../shared/data/clinic.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn shared_clinic() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/clinic")
}

#[test]
fn chat_books_a_refill_and_prints_the_outcome_as_json() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_echo-gateway"))
        .args(["chat", "--today", "2026-12-01", "--vocabulary"])
        .arg(shared_clinic())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("echo-gateway runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"I need a refill of met for men\nJane Doe\nMarch third nineteen eighty\nyes\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].to_lowercase().contains("clinic"),
        "greeting first: {stdout}"
    );
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).expect("JSON last");
    assert_eq!(last["outcome"], "refill_requested", "{stdout}");
    assert_eq!(last["medication"], "metformin");
    assert_eq!(last["date_of_birth"], "1980-03-03");
    // One reply line per caller line, plus the greeting and the JSON.
    assert_eq!(lines.len(), 1 + 4 + 1, "{stdout}");
}

#[test]
fn chat_with_a_missing_vocabulary_fails_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_echo-gateway"))
        .args(["chat", "--vocabulary", "/nonexistent/clinic"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/clinic"), "{stderr}");
}
