//! The store trait and the backend chosen from the URL scheme (STYLE.md 10).

use crate::error::StoreError;
use crate::pii::DatabaseUrl;
use crate::record::{Access, AuditRecord, Call, CallEnd, CallId, Event, Outcome, Turn};
use crate::schema::{Table, Value};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Which database is behind a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL (production).
    Postgres,
    /// SQLite (the embedded default).
    Sqlite,
}

/// What one [`AuditStore::append`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Records newly stored.
    pub inserted: usize,
    /// Records already present (same natural key): skipped, not re-chained.
    pub duplicates: usize,
}

/// Filter and page for [`AuditStore::list_calls`]. All conditions are ANDed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallFilter {
    /// Calls started at or after this (µs since epoch).
    pub from_unix_us: Option<i64>,
    /// Calls started before this (µs since epoch).
    pub to_unix_us: Option<i64>,
    /// Caller or called number contains this (case-insensitive).
    pub number: Option<String>,
    /// Outcome equals this (only ended calls match).
    pub outcome: Option<Outcome>,
    /// For each `(key, value)`: final slot `key` contains `value`, compared
    /// as text, case-insensitively ("patel" finds "Dr. Priya Patel"; only
    /// ended calls match).
    pub slots: Vec<(String, String)>,
    /// Route equals this.
    pub route: Option<String>,
    /// Caller, called number, final slots (as JSON text), or any turn's raw
    /// or corrected text contains this (case-insensitive).
    pub text: Option<String>,
    /// Page size; 0 means the default (50); capped at 1000.
    pub limit: u32,
    /// Rows to skip.
    pub offset: u64,
}

/// The page size [`AuditStore::list_access`] uses for `limit`.
pub(crate) fn access_limit(limit: u32) -> u32 {
    match limit {
        0 => 50,
        n => n.min(1000),
    }
}

impl CallFilter {
    /// The page size actually used.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => 50,
            n => n.min(1000),
        }
    }
}

/// A call in a listing: its start and, once ended, its end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    /// The call start record.
    pub call: Call,
    /// The call end record, if the call has ended.
    pub end: Option<CallEnd>,
}

/// One page of calls, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallPage {
    /// The calls.
    pub calls: Vec<CallSummary>,
    /// Offset of the next page, if there may be one.
    pub next_offset: Option<u64>,
}

/// Everything recorded about one call, turns and events in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallDetail {
    /// The call start record.
    pub call: Call,
    /// The call end record, if the call has ended.
    pub end: Option<CallEnd>,
    /// Turns by `seq`.
    pub turns: Vec<Turn>,
    /// Events by `seq`.
    pub events: Vec<Event>,
}

impl CallDetail {
    /// The call as one JSON document (the export staff download).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// A turn with the call facts an export row needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TurnRow {
    /// The call it belongs to.
    pub call_id: CallId,
    /// When the call started (µs since epoch).
    pub call_started_unix_us: i64,
    /// The route the call matched.
    pub route: String,
    /// The call's outcome, once it has ended.
    pub outcome: Option<Outcome>,
    /// The turn.
    pub turn: Turn,
}

/// The row count [`AuditStore::list_turns`] uses for `limit`.
pub(crate) fn turns_limit(limit: u32) -> u32 {
    match limit {
        0 => 10_000,
        n => n.min(100_000),
    }
}

/// A stored row with its chain columns, as verify reads it.
#[derive(Clone, Debug)]
pub struct ChainRow {
    /// The table it was read from.
    pub table: &'static Table,
    /// Its chain.
    pub chain_id: String,
    /// Its position in the chain.
    pub chain_seq: i64,
    /// The stored hash of the previous record.
    pub prev_hash: String,
    /// The stored hash of this record.
    pub hash: String,
    /// Content columns in the table's order.
    pub values: Vec<Value>,
}

/// The recorded last record of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// The chain.
    pub chain_id: String,
    /// Position of its last record.
    pub chain_seq: i64,
    /// Hash of its last record.
    pub hash: String,
}

/// One row of console state: a JSON value under `(kind, key)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateEntry {
    /// What it is (`account`, `session`, `route`, …).
    pub kind: String,
    /// Its name within the kind.
    pub key: String,
    /// The value.
    pub value: serde_json::Value,
    /// When it was last written (µs since epoch).
    pub updated_unix_us: i64,
}

/// The audit log's storage. One implementation per database; pick one with
/// [`connect`]. Records are only ever appended.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync + fmt::Debug {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Appends records in order, in one transaction, extending each record's
    /// hash chain. A record whose natural key is already stored is skipped,
    /// so replaying a batch is harmless.
    async fn append(&self, records: &[AuditRecord]) -> Result<AppendOutcome, StoreError>;

    /// Lists calls matching `filter`, newest first.
    async fn list_calls(&self, filter: &CallFilter) -> Result<CallPage, StoreError>;

    /// One call with its turns and events, or `None` if unknown.
    async fn get_call(&self, call_id: &CallId) -> Result<Option<CallDetail>, StoreError>;

    /// Configuration changes and staff access, newest first (by time, then
    /// by position in the global chain). `limit` 0 means the default (50);
    /// it is capped at 1000.
    async fn list_access(&self, limit: u32, offset: u64) -> Result<Vec<Access>, StoreError>;

    /// Turns of the calls started in `[from, to)` (either bound optional),
    /// by call start, then call, then turn `seq`. `limit` 0 means the
    /// default (10,000); it is capped at 100,000.
    async fn list_turns(
        &self,
        from_unix_us: Option<i64>,
        to_unix_us: Option<i64>,
        limit: u32,
    ) -> Result<Vec<TurnRow>, StoreError>;

    /// Every chained row of every table, for [`crate::verify`].
    async fn chain_rows(&self) -> Result<Vec<ChainRow>, StoreError>;

    /// The recorded head of every chain, for [`crate::verify`].
    async fn chain_heads(&self) -> Result<Vec<ChainHead>, StoreError>;

    /// The chained rows of one chain, for [`crate::verify_call`].
    async fn chain_rows_of(&self, chain_id: &str) -> Result<Vec<ChainRow>, StoreError>;

    /// The recorded head of one chain, or `None`, for [`crate::verify_call`].
    async fn chain_head_of(&self, chain_id: &str) -> Result<Option<ChainHead>, StoreError>;

    /// The console state entry `(kind, key)`, or `None`.
    ///
    /// Console state: accounts, sessions, configuration overrides; not part
    /// of the hash chain.
    async fn state_get(&self, kind: &str, key: &str) -> Result<Option<StateEntry>, StoreError>;

    /// Every console state entry of `kind`, ordered by key.
    ///
    /// Console state: accounts, sessions, configuration overrides; not part
    /// of the hash chain.
    async fn state_list(&self, kind: &str) -> Result<Vec<StateEntry>, StoreError>;

    /// Inserts or replaces the console state entry `(kind, key)`, stamped
    /// with the current time.
    ///
    /// Console state: accounts, sessions, configuration overrides; not part
    /// of the hash chain.
    async fn state_put(
        &self,
        kind: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError>;

    /// Deletes the console state entry `(kind, key)`; true if there was one.
    ///
    /// Console state: accounts, sessions, configuration overrides; not part
    /// of the hash chain.
    async fn state_delete(&self, kind: &str, key: &str) -> Result<bool, StoreError>;

    /// How many console state entries of `kind` there are.
    ///
    /// Console state: accounts, sessions, configuration overrides; not part
    /// of the hash chain.
    async fn state_count(&self, kind: &str) -> Result<u64, StoreError>;

    /// Cheap round trip to the database.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes the connection pool.
    async fn close(&self);
}

/// Connects to the database named by `url` (`postgres://…`,
/// `postgresql://…` or `sqlite://…`), runs the embedded migrations, and
/// returns the store.
pub async fn connect(url: &DatabaseUrl) -> Result<Arc<dyn AuditStore>, StoreError> {
    match url.scheme() {
        "postgres" | "postgresql" => Ok(Arc::new(crate::postgres::PgStore::connect(url).await?)),
        "sqlite" => Ok(Arc::new(crate::sqlite::SqliteStore::connect(url).await?)),
        other => Err(StoreError::UnsupportedScheme(other.to_owned())),
    }
}
