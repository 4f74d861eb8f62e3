//! The PostgreSQL store (production).

use crate::pii::DatabaseUrl;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

type Db = sqlx::Postgres;
type DbPool = PgPool;

/// Concurrent gateways may extend the global chain: lock its head row.
const LOCK_HEAD: &str = " FOR UPDATE";

fn slot_condition(key: &str, value: &str) -> String {
    format!("strpos(lower(e.final_slots::jsonb ->> {key}), lower({value})) > 0")
}

/// `column` contains `needle`, ignoring case (`strpos`, not `LIKE`, so `%`
/// and `_` in the needle are plain characters).
fn contains_condition(column: &str, needle: &str) -> String {
    format!("strpos(lower({column}), lower({needle})) > 0")
}

fn placeholder(i: usize) -> String {
    format!("${i}")
}

/// `(k1, k2) IN (VALUES ($1, $2), …)`: one index probe per tuple.
fn keys_condition(key: &[&str], n: usize) -> String {
    let w = key.len();
    let tuples: Vec<String> = (0..n).map(|i| placeholders(1 + i * w, w)).collect();
    format!("({}) IN (VALUES {})", key.join(", "), tuples.join(", "))
}

include!("backend_body.rs");

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// The audit store on PostgreSQL.
#[derive(Debug)]
pub(crate) struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub(crate) async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url.expose())
            .await?;
        MIGRATOR.run(&pool).await?;
        tracing::info!(url = %url, "audit store: PostgreSQL ready");
        Ok(PgStore { pool })
    }
}

impl_audit_store!(PgStore, crate::store::Backend::Postgres);
