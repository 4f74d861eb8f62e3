//! The store layer's errors.

/// Errors of the audit store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL is neither `postgres://` nor `sqlite://`.
    #[error("unsupported database URL scheme {0:?} (expected postgres:// or sqlite://)")]
    UnsupportedScheme(String),
    /// The driver failed (connection, SQL, constraint).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Running the embedded migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored enum column holds a name this version does not know.
    #[error("stored {what} has unknown value {value:?}")]
    UnknownValue {
        /// Which enum.
        what: &'static str,
        /// The stored text.
        value: String,
    },
    /// A stored JSON column does not parse.
    #[error("stored JSON in {column} does not parse: {source}")]
    Json {
        /// The column.
        column: &'static str,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// A stored column is NULL or of the wrong type where the record needs a value.
    #[error("stored column {column} is missing or has the wrong type")]
    BadColumn {
        /// The column.
        column: &'static str,
    },
    /// Another writer stored records of this batch while it was being
    /// written; the batch was rolled back and can be retried.
    #[error("{rows} rows of {table} were stored concurrently; batch rolled back")]
    ConcurrentWrite {
        /// The table.
        table: &'static str,
        /// How many rows.
        rows: usize,
    },
}
