//! The SQLite store (the embedded default).

use crate::pii::DatabaseUrl;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

type Db = sqlx::Sqlite;
type DbPool = SqlitePool;

/// One connection serialises writers; no row lock needed (or available).
const LOCK_HEAD: &str = "";

fn slot_condition(key: &str, value: &str) -> String {
    format!(
        "instr(lower(CAST(json_extract(e.final_slots, '$.\"' || {key} || '\"') AS TEXT)), lower({value})) > 0"
    )
}

/// `column` contains `needle`, ignoring case (`instr`, not `LIKE`, so `%`
/// and `_` in the needle are plain characters). SQLite's `lower` folds
/// ASCII only.
fn contains_condition(column: &str, needle: &str) -> String {
    format!("instr(lower({column}), lower({needle})) > 0")
}

/// Anonymous `?` in the wide batch statements (bound in order of
/// appearance): sqlx resolves each `$N` through `sqlite3_bind_parameter_name`,
/// a linear scan, which made a 10,000-parameter INSERT quadratic.
fn placeholder(_i: usize) -> String {
    "?".to_owned()
}

/// `(k1 = $1 AND k2 = $2) OR …`: SQLite probes the primary key per term,
/// where a row-value `IN (VALUES …)` would scan the table.
fn keys_condition(key: &[&str], n: usize) -> String {
    let w = key.len();
    let terms: Vec<String> = (0..n)
        .map(|i| {
            let eqs: Vec<String> = key
                .iter()
                .enumerate()
                .map(|(j, k)| format!("{k} = {}", placeholder(1 + i * w + j)))
                .collect();
            format!("({})", eqs.join(" AND "))
        })
        .collect();
    terms.join(" OR ")
}

include!("backend_body.rs");

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// The audit store on SQLite.
#[derive(Debug)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub(crate) async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url.expose())?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a committed batch survives a process crash; only
            // an OS crash or power loss can take the last ones.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // 64 MiB of page cache instead of 2: the console's filtered
            // call lists walk the calls table, and re-reading its pages from
            // the file tripled their time (72 → 27 ms at 10,000 calls).
            .pragma("cache_size", "-65536");
        // One connection: SQLite has one writer anyway, and a deferred
        // transaction that upgrades to a write lock could otherwise fail
        // with SQLITE_BUSY at once.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        tracing::info!(url = %url, "audit store: SQLite ready");
        Ok(SqliteStore { pool })
    }
}

impl_audit_store!(SqliteStore, crate::store::Backend::Sqlite);
