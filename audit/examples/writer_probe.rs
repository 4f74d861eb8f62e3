//! A writer in a process of its own, for the kill -9 test (tests/kill9.rs).
//!
//! ```text
//! writer_probe DATABASE_URL SPOOL_PATH CALL_ID TURNS
//! ```
//!
//! Writes the call record, then turns `0..TURNS` one at a time, flushing
//! after each and printing `acked SEQ` once the flush returned (the turn is
//! then committed to the database or fsync'd to the spool). Sleeps 2 ms
//! between turns so that a kill lands mid-stream.

#[path = "../tests/support/mod.rs"]
mod support;

use echo_audit::*;
use std::io::Write;
use std::time::Duration;
use support::*;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(
        args.len(),
        5,
        "usage: writer_probe DATABASE_URL SPOOL_PATH CALL_ID TURNS"
    );
    let url = DatabaseUrl::new(args[1].clone());
    let id = CallId(args[3].clone());
    let turns: i64 = args[4].parse().expect("TURNS is a number");
    let store = connect(&url).await.expect("connect");
    let (audit, _task) =
        AuditWriter::spawn(store, WriterConfig::new(&args[2])).expect("spawn the writer");
    assert!(audit.record(call(&id, 1_790_000_000_000_000, "+41790000000").into()));
    audit.flush().await.expect("flush");
    let mut out = std::io::stdout().lock();
    for seq in 0..turns {
        assert!(audit.record(turn(&id, seq).into()));
        audit.flush().await.expect("flush");
        writeln!(out, "acked {seq}").unwrap();
        out.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
