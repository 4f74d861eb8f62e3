//! Calls to the echo route land in the audit log as they happen, on the
//! embedded SQLite default and on a real PostgreSQL server this test starts;
//! `echo-gateway audit verify` proves the chains, and catches tampering.

mod common;
#[allow(unused_imports)]
#[path = "../audit/tests/support/mod.rs"]
mod pg;

use std::time::Duration;

use common::*;

fn calls_json(gw: &Gateway) -> serde_json::Value {
    let (code, body) = gw.api_get("/api/v1/calls");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Three echo calls through sipp; returns the gateway's temp dir config.
fn three_calls(gw: &Gateway) {
    assert!(
        have_sipp(),
        "sipp not found: install Debian's sip-tester (./x does)"
    );
    let run = gw
        .sipp()
        .timeout(Duration::from_secs(30))
        .args(["-s", "echo", "-m", "3", "-l", "3", "-r", "10", "-d", "300"])
        .run("-sn:uac");
    assert_sipp_ok(&run);
    gw.wait_metric("echo_active_calls", &[], Duration::from_secs(5), |v| {
        v == 0.0
    });
}

/// The calls are listed with their codec and ending, each with its events,
/// while the gateway is still running (written as they happen).
fn check_logged(gw: &Gateway) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let calls = loop {
        let list = calls_json(gw);
        let calls = list["calls"].as_array().cloned().unwrap_or_default();
        let ended = calls.iter().filter(|c| !c["end"].is_null()).count();
        if ended >= 3 || std::time::Instant::now() > deadline {
            break calls;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(calls.len(), 3, "{calls:?}");
    for c in &calls {
        assert_eq!(c["call"]["codec"], "PCMU");
        assert_eq!(c["call"]["app"], "echo");
        assert_eq!(c["end"]["hangup_by"], "caller");
        assert_eq!(c["end"]["outcome"], "abandoned");
        let id = c["call"]["call_id"].as_str().unwrap();
        let (code, body) = gw.api_get(&format!("/api/v1/calls/{id}"));
        assert_eq!(code, 200, "{body}");
        let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
        let kinds: Vec<&str> = detail["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert_eq!(kinds, vec!["answered"], "{body}");
    }
}

fn verify(gw: &Gateway) -> std::process::Output {
    run_gateway(
        &[
            "audit",
            "verify",
            "--config",
            gw.config_path.to_str().unwrap(),
        ],
        gw.dir.path(),
        Duration::from_secs(30),
    )
}

#[test]
fn echo_calls_are_logged_in_sqlite_and_verify() {
    let gw = Gateway::start();
    three_calls(&gw);
    check_logged(&gw);
    let out = verify(&gw);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Three calls, and the access chain: the test's console account, its
    // sign-in and each call it opened.
    assert!(stdout.contains("verified: 4 chains"), "{stdout}");
}

#[test]
fn echo_calls_are_logged_in_postgres_and_tampering_is_caught() {
    let cluster = pg::PgCluster::start();
    let gw = Gateway::start_with(GatewayConfig {
        database_url: Some(cluster.url().expose().to_owned()),
        ..GatewayConfig::default()
    });
    three_calls(&gw);
    check_logged(&gw);
    let out = verify(&gw);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Someone edits what the caller's phone number was.
    cluster.psql("UPDATE audit_calls SET caller = 'sip:someone-else@127.0.0.1' WHERE call_id = (SELECT min(call_id) FROM audit_calls)");
    let out = verify(&gw);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("BROKEN") && stdout.contains("Altered"),
        "{stdout}"
    );
}
