//! SIP call flows driven by sipp (Debian package `sip-tester`) against the
//! real `echo-gateway` binary. Scenario files live in `tests/sipp/`; each
//! was checked against a sipp stub UAS (see `tests/sipp_selfcheck.rs`).

mod common;

use common::*;
use std::time::Duration;

fn require_sipp() {
    assert!(
        have_sipp(),
        "sipp not found: install Debian's sip-tester (./x does)"
    );
}

/// 50 basic calls, 10 at a time, with sipp's built-in `uac` scenario.
fn basic_calls(transport: &str) {
    require_sipp();
    let gw = Gateway::start();
    let run = gw
        .sipp()
        .timeout(Duration::from_secs(40))
        .args([
            "-s", "echo", "-m", "50", "-l", "10", "-r", "20", "-d", "500",
        ])
        .args(["-t", transport])
        .run("-sn:uac");
    assert_sipp_ok(&run);
    // Every call was counted and none is left up.
    gw.wait_metric("echo_active_calls", &[], Duration::from_secs(5), |v| {
        v == 0.0
    });
    let invites = gw.metric("echo_sip_requests_total", &[("method", "INVITE")]);
    assert!(
        invites >= 50.0,
        "echo_sip_requests_total{{method=INVITE}} = {invites}"
    );
    let byes = gw.metric("echo_sip_requests_total", &[("method", "BYE")]);
    assert!(
        byes >= 50.0,
        "echo_sip_requests_total{{method=BYE}} = {byes}"
    );
}

#[test]
fn basic_calls_udp() {
    basic_calls("u1");
}

#[test]
fn basic_calls_tcp() {
    basic_calls("t1");
}

#[test]
fn options_answers_200_with_allow() {
    require_sipp();
    let gw = Gateway::start();
    assert_sipp_ok(&gw.sipp().args(["-s", "echo"]).run("options.xml"));
    assert!(gw.metric("echo_sip_requests_total", &[("method", "OPTIONS")]) >= 1.0);
    assert!(gw.metric("echo_sip_responses_total", &[("code", "200")]) >= 1.0);
}

#[test]
fn options_over_tcp() {
    require_sipp();
    let gw = Gateway::start();
    assert_sipp_ok(
        &gw.sipp()
            .args(["-s", "echo", "-t", "t1"])
            .run("options.xml"),
    );
}

#[test]
fn cancel_while_ringing() {
    require_sipp();
    let gw = Gateway::start();
    assert_sipp_ok(&gw.sipp().args(["-s", "ring"]).run("cancel.xml"));
    gw.wait_metric("echo_active_calls", &[], Duration::from_secs(5), |v| {
        v == 0.0
    });
    assert!(gw.metric("echo_sip_responses_total", &[("code", "487")]) >= 1.0);
}

#[test]
fn g729_only_offer_gets_488() {
    require_sipp();
    let gw = Gateway::start();
    assert_sipp_ok(&gw.sipp().args(["-s", "echo"]).run("g729_488.xml"));
    assert!(gw.metric("echo_sip_responses_total", &[("code", "488")]) >= 1.0);
}

#[test]
fn bye_for_unknown_dialog_gets_481() {
    require_sipp();
    let gw = Gateway::start();
    assert_sipp_ok(&gw.sipp().args(["-s", "echo"]).run("bye_481.xml"));
    assert!(gw.metric("echo_sip_responses_total", &[("code", "481")]) >= 1.0);
}

fn auth_gateway() -> Gateway {
    Gateway::start_with(GatewayConfig {
        extra: auth_trunk(),
        ..GatewayConfig::default()
    })
}

#[test]
fn digest_auth_right_password_connects() {
    require_sipp();
    let gw = auth_gateway();
    let run = gw
        .sipp()
        .local_ip(AUTH_SOURCE)
        .args(["-s", "echo", "-au", AUTH_USER, "-ap", AUTH_PASS])
        .run("auth.xml");
    assert_sipp_ok(&run);
    gw.wait_metric("echo_active_calls", &[], Duration::from_secs(5), |v| {
        v == 0.0
    });
}

#[test]
fn digest_auth_wrong_password_is_refused() {
    require_sipp();
    let gw = auth_gateway();
    let run = gw
        .sipp()
        .local_ip(AUTH_SOURCE)
        .args(["-s", "echo", "-au", AUTH_USER, "-ap", "not-the-password"])
        .run("auth_wrong.xml");
    assert_sipp_ok(&run);
    assert_eq!(gw.metric("echo_active_calls", &[]), 0.0);
}

#[test]
fn unknown_source_is_forbidden() {
    // 127.0.0.3 is in no trunk: the INVITE gets 403, whatever the user.
    require_sipp();
    let gw = auth_gateway();
    let mut uac = common::sip::Uac::bind("127.0.0.3:0", gw.sip);
    let mut call = uac.new_call("echo");
    let sdp = common::sip::sdp_offer(uac.local, &[(0, "PCMU/8000")]);
    let r = uac
        .invite(&mut call, &sdp, Duration::from_secs(5))
        .expect("no final response to INVITE from an unknown source");
    assert_eq!(r.code, 403, "{}", r.raw);
    uac.ack(&call);
}

#[test]
fn unrouted_user_gets_404() {
    let gw = Gateway::start();
    let mut uac = common::sip::Uac::new(gw.sip);
    let mut call = uac.new_call("nobody-here");
    let sdp = common::sip::sdp_offer(uac.local, &[(0, "PCMU/8000")]);
    let r = uac
        .invite(&mut call, &sdp, Duration::from_secs(5))
        .expect("no final response to INVITE for an unrouted user");
    assert_eq!(r.code, 404, "{}", r.raw);
    uac.ack(&call);
}

#[test]
fn no_trunks_means_loopback_is_allowed() {
    let gw = Gateway::start_with(GatewayConfig {
        open_trunk: false,
        ring_route: false,
        ..GatewayConfig::default()
    });
    let mut uac = common::sip::Uac::new(gw.sip);
    let mut call = uac.new_call("echo");
    let sdp = common::sip::sdp_offer(uac.local, &[(0, "PCMU/8000")]);
    let r = uac
        .invite(&mut call, &sdp, Duration::from_secs(5))
        .expect("no final response to INVITE");
    assert_eq!(r.code, 200, "{}", r.raw);
    uac.ack(&call);
    let bye = uac
        .bye(&mut call, Duration::from_secs(5))
        .expect("no response to BYE");
    assert_eq!(bye.code, 200, "{}", bye.raw);
}
