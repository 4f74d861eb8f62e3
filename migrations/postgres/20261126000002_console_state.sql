-- Console state (issue 7): staff accounts, sessions and configuration
-- overrides, keyed by (kind, key). Mutable, so NOT hash-chained: who changed
-- what is recorded in audit_access, which is.
-- value is JSON stored as TEXT, like the audit tables.

CREATE TABLE console_state (
    kind             TEXT    NOT NULL,
    key              TEXT    NOT NULL,
    value            TEXT    NOT NULL,
    updated_unix_us  BIGINT  NOT NULL,
    PRIMARY KEY (kind, key)
);
