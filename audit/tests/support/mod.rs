//! Test support: a throw-away PostgreSQL cluster and sample records.
#![allow(dead_code)]

use echo_audit::*;
use serde_json::json;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL cluster in a temporary directory on a free loopback port,
/// started with Debian's binaries; stopped and removed on drop. As root it
/// runs the server as the `postgres` user (initdb refuses root).
pub struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgCluster {
    /// initdb + start. Panics with the apt package to install if the
    /// binaries are missing.
    pub fn start() -> PgCluster {
        assert!(
            Path::new(PG_BIN).join("initdb").exists(),
            "PostgreSQL 15 server binaries missing: apt-get install postgresql-15"
        );
        let dir = tempfile::Builder::new()
            .prefix("echo-audit-pg")
            .tempdir()
            .unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the cluster dir to postgres failed");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = PgCluster {
            dir,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.resume();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, program: &str, args: &[&str]) {
        let bin = Path::new(PG_BIN).join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts (or restarts) the server.
    pub fn resume(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=50",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-w",
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "start",
            ],
        );
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-w",
                "-m",
                "fast",
                "stop",
            ],
        );
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> DatabaseUrl {
        DatabaseUrl::new(format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.port
        ))
    }

    /// Runs SQL as the superuser through psql (for tampering in tests).
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
            ])
            .arg(self.port.to_string())
            .args(["-d", "postgres", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let bin = Path::new(PG_BIN).join("pg_ctl");
        let data = self.data();
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        let _ = cmd
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// Both backends: a fresh SQLite file and a fresh PostgreSQL cluster.
pub struct Backends {
    pub sqlite_dir: tempfile::TempDir,
    pub pg: PgCluster,
}

pub fn sqlite_url(dir: &Path) -> DatabaseUrl {
    DatabaseUrl::new(format!("sqlite://{}", dir.join("audit.db").display()))
}

pub fn call(id: &CallId, started: i64, caller: &str) -> Call {
    Call {
        call_id: id.clone(),
        trunk: "carrier-a".into(),
        caller: caller.into(),
        called: "+41445550000".into(),
        route: "clinic-main".into(),
        app: "booking".into(),
        sip_call_id: format!("{}@carrier", id.0),
        codec: "PCMA".into(),
        started_unix_us: started,
    }
}

pub fn turn(id: &CallId, seq: i64) -> Turn {
    Turn {
        call_id: id.clone(),
        seq,
        speaker: Speaker::Caller,
        raw_text: format!("i'd like an appointment on tuesday {seq}").into(),
        raw_confidence: Some(0.5 + (seq % 5) as f64 / 10.0),
        corrected_text: format!("I'd like an appointment on Tuesday {seq}").into(),
        corrections: Pii(json!([{"from": "tuesday", "to": "Tuesday"}])),
        slots: Pii(json!({"day": "tuesday", "turn": seq})),
        reply_text: Some("At what time?".into()),
        timings: TurnTimings {
            speech_start_us: Some(1_000_000 * seq),
            speech_end_us: Some(1_000_000 * seq + 800_000),
            endpoint_us: Some(1_000_000 * seq + 1_000_000),
            stt_final_us: Some(1_000_000 * seq + 1_100_000),
            dialogue_us: Some(1_000_000 * seq + 1_120_000),
            tts_first_audio_us: Some(1_000_000 * seq + 1_250_000),
            first_reply_packet_us: Some(1_000_000 * seq + 1_270_000),
        },
        barge_in_us: if seq % 3 == 2 {
            Some(1_000_000 * seq + 1_500_000)
        } else {
            None
        },
    }
}

pub fn end(id: &CallId, ended: i64, outcome: Outcome, slots: serde_json::Value) -> CallEnd {
    CallEnd {
        call_id: id.clone(),
        answered_unix_us: Some(ended - 50_000_000),
        ended_unix_us: ended,
        hangup_by: HangupBy::Caller,
        sip_code: None,
        transfer_target: None,
        outcome,
        final_slots: Pii(slots),
    }
}

pub fn event(id: &CallId, seq: i64, kind: EventKind) -> Event {
    Event {
        call_id: id.clone(),
        seq,
        at_us: 1_000 * seq,
        kind,
        detail: Pii(json!({"digit": "5"})),
    }
}
