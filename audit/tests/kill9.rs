//! The writer process killed with SIGKILL mid-stream: after a restart on the
//! same spool and database, every turn whose flush had been acknowledged is
//! in the store exactly once, and the chains verify.
//!
//! The writer runs in `examples/writer_probe.rs`, which `cargo test` builds
//! next to this test's binary.

mod support;

use echo_audit::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::*;

/// Turns acknowledged before the kill, at least.
const ACKED_BEFORE_KILL: i64 = 200;

/// The probe next to this test's binary (`target/<profile>/examples/`).
/// `cargo test -p echo-audit` builds it, `--test kill9` alone does not: it
/// is built here (a no-op when it is up to date).
fn probe_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let probe = deps
        .join("../examples/writer_probe")
        .with_extension(std::env::consts::EXE_EXTENSION);
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args([
            "build",
            "-q",
            "-p",
            "echo-audit",
            "--example",
            "writer_probe",
        ])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    if deps.parent().and_then(|p| p.file_name()) == Some("release".as_ref()) {
        cargo.arg("--release");
    }
    let built = cargo.status().is_ok_and(|s| s.success());
    assert!(
        probe.exists(),
        "{} missing (building it {})",
        probe.display(),
        if built { "succeeded" } else { "failed" }
    );
    if !built {
        eprintln!("warning: could not rebuild the writer_probe example; using the existing one");
    }
    probe
}

/// Runs the probe, kills it with SIGKILL once it has acknowledged
/// [`ACKED_BEFORE_KILL`] turns, and returns the highest acknowledged seq
/// (counting lines it printed before it died).
fn run_and_kill(url: &DatabaseUrl, spool: &Path, id: &CallId) -> i64 {
    let mut child = Command::new(probe_path())
        .arg(url.expose())
        .arg(spool)
        .arg(&id.0)
        .arg("100000")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let seq: i64 = line
                .strip_prefix("acked ")
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("unexpected probe output {line:?}"));
            if tx.send(seq).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut acked = -1;
    while acked + 1 < ACKED_BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(seq) => {
                assert_eq!(seq, acked + 1, "acks in order");
                acked = seq;
            }
            Err(e) => {
                let _ = child.kill();
                panic!(
                    "probe acknowledged only {} turns ({e:?}); status {:?}",
                    acked + 1,
                    child.try_wait()
                );
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the probe was killed: {status:?}");
    // Lines already in the pipe were acknowledged before the kill too.
    for seq in rx.iter() {
        assert_eq!(seq, acked + 1, "acks in order");
        acked = seq;
    }
    reader.join().unwrap();
    acked
}

async fn recover_and_check(url: &DatabaseUrl, spool: &Path, id: &CallId, acked: i64) {
    let store = connect(url).await.unwrap();
    let config = WriterConfig {
        retry_every: Duration::from_millis(200),
        ..WriterConfig::new(spool)
    };
    // A new writer replays whatever the killed one left in the spool.
    let (audit, task) = AuditWriter::spawn(store.clone(), config).unwrap();
    audit.flush().await.unwrap();
    drop(audit);
    task.await.unwrap();
    assert_eq!(
        std::fs::metadata(spool).map(|m| m.len()).unwrap_or(0),
        0,
        "spool replayed and cleared"
    );

    let detail = store.get_call(id).await.unwrap().expect("call stored");
    let seqs: Vec<i64> = detail.turns.iter().map(|t| t.seq).collect();
    let mut unique = seqs.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seqs.len(), "no turn stored twice: {seqs:?}");
    for seq in 0..=acked {
        assert!(
            unique.binary_search(&seq).is_ok(),
            "acknowledged turn {seq} lost (highest acked {acked})"
        );
    }
    // At most the turn in flight at the kill lies beyond the last ack.
    assert!(
        unique.last().is_some_and(|&last| last <= acked + 1),
        "turns beyond the last ack {acked}: {:?}",
        unique.last()
    );
    let report = verify(&*store).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.first());
    assert_eq!(report.records, seqs.len() + 1, "the call and its turns");
    store.close().await;
}

fn kill_and_recover(url: &DatabaseUrl, dir: &Path) {
    let spool = dir.join("audit.spool");
    let id = CallId::random();
    let acked = run_and_kill(url, &spool, &id);
    assert!(acked + 1 >= ACKED_BEFORE_KILL);
    eprintln!(
        "{}: killed after turn {acked} was acknowledged",
        url.scheme()
    );
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(recover_and_check(url, &spool, &id, acked));
}

#[test]
fn sqlite_writer_killed_mid_stream_keeps_every_acknowledged_turn() {
    let dir = tempfile::tempdir().unwrap();
    kill_and_recover(&sqlite_url(dir.path()), dir.path());
}

#[test]
fn postgres_writer_killed_mid_stream_keeps_every_acknowledged_turn() {
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    kill_and_recover(&pg.url(), dir.path());
}
