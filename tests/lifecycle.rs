//! Process lifecycle: config validation, readiness and graceful drain on
//! SIGTERM.

mod common;

use common::sip::*;
use common::*;
use std::fs;
use std::time::{Duration, Instant};

fn serve_with_config(toml: &str) -> std::process::Output {
    let dir = TempDir::new("cfg");
    let path = dir.path().join("bad.toml");
    fs::write(&path, toml).unwrap();
    run_gateway(
        &["serve", "--config", path.to_str().unwrap()],
        dir.path(),
        Duration::from_secs(20),
    )
}

#[test]
fn unknown_config_key_is_rejected_by_name() {
    let sip = free_port();
    let http = free_port();
    let out = serve_with_config(&format!(
        "[sip]\nlisten = \"127.0.0.1:{sip}\"\nlisten_backlog_typo = 5\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n"
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "serve accepted a config with an unknown key (status {}); stderr:\n{stderr}",
        out.status
    );
    // Killed by our timeout would also be "not success": make sure it exited.
    assert!(
        out.status.code().is_some(),
        "serve did not exit on a bad config: {}",
        out.status
    );
    assert!(
        stderr.contains("listen_backlog_typo"),
        "stderr does not name the bad key:\n{stderr}"
    );
}

#[test]
fn unknown_config_section_is_rejected_by_name() {
    let out = serve_with_config("[sipp]\nlisten = \"127.0.0.1:5999\"\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "status {}; stderr:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("sipp"),
        "stderr does not name the bad section:\n{stderr}"
    );
}

#[test]
fn config_with_a_wrong_type_is_rejected() {
    let out = serve_with_config("[rtp]\nports = 20000\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "status {}; stderr:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("ports"),
        "stderr does not name the bad key:\n{stderr}"
    );
}

#[test]
fn healthz_readyz_metrics_answer() {
    let gw = Gateway::start();
    assert_eq!(gw.http_get("/healthz").0, 200);
    assert_eq!(gw.http_get("/readyz").0, 200);
    let m = gw.metrics();
    for name in ["echo_active_calls", "echo_sip_parse_failures_total"] {
        assert!(
            metric_value(&m, name, &[]).is_some(),
            "/metrics lacks {name} before any traffic:\n{m}"
        );
    }
}

#[test]
fn sigterm_drains_calls_then_exits_zero() {
    let mut gw = Gateway::start();
    let mut uac = Uac::new(gw.sip);
    let rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let offer = sdp_offer(rtp.local_addr().unwrap(), &[(0, "PCMU/8000")]);

    // A call is up.
    let mut call = uac.new_call("echo");
    let r = uac
        .invite(&mut call, &offer, Duration::from_secs(5))
        .expect("no answer to INVITE");
    assert_eq!(r.code, 200, "{}", r.raw);
    uac.ack(&call);
    gw.wait_metric("echo_active_calls", &[], Duration::from_secs(5), |v| {
        v == 1.0
    });

    // SIGTERM: not ready any more, but still alive for the call.
    gw.sigterm();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (code, _) = gw.http_get("/readyz");
        if code == 503 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {code} 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        gw.try_exit().is_none(),
        "gateway exited with a call still up"
    );

    // New calls are refused while draining.
    let mut second = uac.new_call("echo");
    let r = uac
        .invite(&mut second, &offer, Duration::from_secs(5))
        .expect("no answer to INVITE while draining");
    assert_eq!(r.code, 503, "INVITE while draining:\n{}", r.raw);
    uac.ack(&second);

    // The established call still works; hanging it up lets the process go.
    let bye = uac
        .bye(&mut call, Duration::from_secs(5))
        .expect("no answer to BYE while draining");
    assert_eq!(bye.code, 200, "{}", bye.raw);
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("gateway still running 10 s after its last call ended");
    assert!(
        status.success(),
        "gateway exited with {status} after draining\n{}",
        gw.log()
    );
}

#[test]
fn sigterm_when_idle_exits_promptly() {
    let mut gw = Gateway::start();
    gw.sigterm();
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("idle gateway still running 10 s after SIGTERM");
    assert!(
        status.success(),
        "idle gateway exited with {status}\n{}",
        gw.log()
    );
}
