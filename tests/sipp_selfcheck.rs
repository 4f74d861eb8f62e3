//! Checks the sipp scenarios in `tests/sipp/` themselves, with no gateway:
//! each UAC scenario runs against a sipp stub UAS (`tests/sipp/stub/`) that
//! verifies what an RFC 3261 UAS would (CANCEL and non-2xx ACK reuse the
//! INVITE's branch, CSeq numbering, digest credentials), plus negative
//! pairs that must fail. If one of these fails, the scenario is wrong, not
//! the gateway.

mod common;

use common::*;
use std::time::Duration;

fn pair(
    uas: &str,
    uas_args: &[&str],
    uac: &str,
    uac_args: &[&str],
    transport: &str,
) -> (SippRun, SippRun) {
    assert!(
        have_sipp(),
        "sipp not found: install Debian's sip-tester (./x does)"
    );
    let stub = SippUas::start(uas, transport, uas_args);
    let client = Sipp::new(stub.addr)
        .timeout(Duration::from_secs(15))
        .args(uac_args.iter().copied())
        .args(["-t", transport])
        .run(uac);
    let server = stub.finish(Duration::from_secs(20));
    (client, server)
}

#[track_caller]
fn both_ok((client, server): (SippRun, SippRun)) {
    assert!(
        client.success() && server.success(),
        "UAC:\n{}\n\nstub UAS:\n{}",
        client.report(),
        server.report()
    );
}

#[track_caller]
fn client_fails((client, server): (SippRun, SippRun)) {
    assert!(
        !client.success(),
        "UAC should have failed\nUAC:\n{}\n\nstub UAS:\n{}",
        client.report(),
        server.report()
    );
}

#[test]
fn options_scenario() {
    both_ok(pair(
        "stub/options_uas.xml",
        &[],
        "options.xml",
        &["-s", "echo"],
        "u1",
    ));
}

#[test]
fn options_scenario_requires_allow() {
    client_fails(pair(
        "stub/options_noallow_uas.xml",
        &[],
        "options.xml",
        &["-s", "echo"],
        "u1",
    ));
}

#[test]
fn cancel_scenario() {
    both_ok(pair(
        "stub/cancel_uas.xml",
        &[],
        "cancel.xml",
        &["-s", "ring"],
        "u1",
    ));
}

#[test]
fn g729_scenario() {
    both_ok(pair(
        "stub/g729_uas.xml",
        &[],
        "g729_488.xml",
        &["-s", "echo"],
        "u1",
    ));
}

#[test]
fn bye_481_scenario() {
    both_ok(pair(
        "stub/bye_uas.xml",
        &[],
        "bye_481.xml",
        &["-s", "echo"],
        "u1",
    ));
}

#[test]
fn auth_scenario() {
    both_ok(pair(
        "stub/auth_uas.xml",
        &["-set", "expect_ok", "1"],
        "auth.xml",
        &["-s", "echo", "-au", AUTH_USER, "-ap", AUTH_PASS],
        "u1",
    ));
}

#[test]
fn auth_scenario_fails_with_wrong_password() {
    client_fails(pair(
        "stub/auth_uas.xml",
        &["-set", "expect_ok", "1"],
        "auth.xml",
        &["-s", "echo", "-au", AUTH_USER, "-ap", "wrong"],
        "u1",
    ));
}

#[test]
fn auth_wrong_scenario() {
    both_ok(pair(
        "stub/auth_uas.xml",
        &["-set", "expect_ok", "0"],
        "auth_wrong.xml",
        &["-s", "echo", "-au", AUTH_USER, "-ap", "wrong"],
        "u1",
    ));
}
