//! Echo's audit log: every call, turn and event, and every configuration
//! change and staff access, hash-chained in PostgreSQL (production) or
//! SQLite (the embedded default), written off the media path and never lost.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use echo_audit::{connect, AuditWriter, DatabaseUrl, WriterConfig};
//! let store = connect(&DatabaseUrl::new("sqlite://./echo.db")).await?; // migrates
//! let (audit, task) = AuditWriter::spawn(store.clone(), WriterConfig::new("./echo-audit.spool"))?;
//! // in each call task, never waiting on the database:
//! # let turn: echo_audit::Turn = todo!();
//! audit.record(turn.into());
//! // at shutdown:
//! audit.flush().await?;
//! drop(audit);
//! task.await?;
//! let report = echo_audit::verify(&*store).await?;
//! assert!(report.is_ok());
//! # Ok(()) }
//! ```
#![warn(missing_docs, unreachable_pub)]

mod error;
mod pii;
mod postgres;
mod record;
pub mod schema;
mod spool;
mod sqlite;
mod store;
mod verify;
mod writer;

pub use error::StoreError;
pub use pii::{DatabaseUrl, Pii};
pub use record::{
    Access, AuditRecord, Call, CallEnd, CallId, Event, EventKind, HangupBy, Outcome, Speaker, Turn,
    TurnTimings,
};
pub use spool::{Spool, SpoolError};
pub use store::{
    connect, AppendOutcome, AuditStore, Backend, CallDetail, CallFilter, CallPage, CallSummary,
    ChainHead, ChainRow, StateEntry, TurnRow,
};
pub use verify::{verify, verify_call, verify_rows, Finding, FindingKind, VerifyReport};
pub use writer::{AuditHandle, AuditWriter, WriterClosed, WriterConfig, WriterStats};
