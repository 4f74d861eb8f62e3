//! Throughput of the writer into each backend, and the time `verify` takes.
//!
//! ```text
//! cargo run --release -p echo-audit --example audit_bench -- [postgres|sqlite|both] [TURNS] [CALLS]
//! ```
//!
//! PostgreSQL: a throw-away cluster (default settings, fsync on) is started
//! in a temp dir, as the tests do. SQLite: a file in a temp dir (WAL,
//! synchronous=NORMAL). Reports; asserts nothing.

#[path = "../tests/support/mod.rs"]
mod support;

use echo_audit::*;
use std::time::{Duration, Instant};
use support::*;

async fn run(url: DatabaseUrl, name: &str, turns: i64, calls: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = connect(&url).await.unwrap();
    let config = WriterConfig {
        capacity: turns as usize + calls + 16,
        batch_max: 1000,
        ..WriterConfig::new(dir.path().join("spool"))
    };
    let (audit, task) = AuditWriter::spawn(store.clone(), config).unwrap();
    let ids: Vec<CallId> = (0..calls).map(|_| CallId::random()).collect();
    for (i, c) in ids.iter().enumerate() {
        audit.record(call(c, 1_790_000_000_000_000 + i as i64, "+41790000000").into());
    }
    audit.flush().await.unwrap();
    let per_call = turns / calls as i64;
    let start = Instant::now();
    for seq in 0..per_call {
        for c in &ids {
            assert!(audit.record(turn(c, seq).into()));
        }
    }
    let queued = start.elapsed();
    audit.flush().await.unwrap();
    let elapsed = start.elapsed();
    let n = per_call * calls as i64;
    let stats = audit.stats();
    drop(audit);
    task.await.unwrap();
    println!(
        "{name}: {n} turns over {calls} calls in {:.2} s = {:.0} turns/s (queueing took {:.1} ms; written {}, spooled {})",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        queued.as_secs_f64() * 1e3,
        stats.written,
        stats.spooled
    );
    let start = Instant::now();
    let report = verify(&*store).await.unwrap();
    let t = start.elapsed();
    println!(
        "{name}: verify of {} records in {} chains: {:.2} s ({})",
        report.records,
        report.chains,
        t.as_secs_f64(),
        if report.is_ok() { "ok" } else { "FINDINGS" }
    );
    store.close().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("both", String::as_str);
    let turns: i64 = args.get(2).map_or(100_000, |s| s.parse().unwrap());
    let calls: usize = args.get(3).map_or(100, |s| s.parse().unwrap());
    if which == "postgres" || which == "both" {
        let pg = PgCluster::start();
        run(pg.url(), "postgres", turns, calls).await;
    }
    if which == "sqlite" || which == "both" {
        let dir = tempfile::tempdir().unwrap();
        run(sqlite_url(dir.path()), "sqlite", turns, calls).await;
    }
}
