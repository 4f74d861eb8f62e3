-- The audit log (issue 5). Append-only: the application never UPDATEs or
-- DELETEs these rows. Every table carries the hash-chain columns:
--   chain_id   'call:<call_id>' for a call's records, 'global' for access
--   chain_seq  0, 1, 2, ... within the chain, across tables
--   prev_hash  hash of the chain's previous record (64 zeros for the first)
--   hash       SHA-256 (hex) of the canonical encoding (audit/src/schema.rs)
-- JSON is stored as TEXT so the hashed bytes are the stored bytes.
-- Times: *_unix_us are µs since the Unix epoch, other *_us are µs since the
-- call started.

CREATE TABLE audit_calls (
    call_id          TEXT    NOT NULL PRIMARY KEY,
    chain_id         TEXT    NOT NULL,
    chain_seq        BIGINT  NOT NULL,
    prev_hash        TEXT    NOT NULL,
    hash             TEXT    NOT NULL,
    trunk            TEXT    NOT NULL,
    caller           TEXT    NOT NULL,
    called           TEXT    NOT NULL,
    route            TEXT    NOT NULL,
    app              TEXT    NOT NULL,
    sip_call_id      TEXT    NOT NULL,
    codec            TEXT    NOT NULL,
    started_unix_us  BIGINT  NOT NULL,
    UNIQUE (chain_id, chain_seq)
);
CREATE INDEX audit_calls_started ON audit_calls (started_unix_us);
CREATE INDEX audit_calls_caller ON audit_calls (caller);
CREATE INDEX audit_calls_called ON audit_calls (called);

CREATE TABLE audit_call_ends (
    call_id           TEXT    NOT NULL PRIMARY KEY,
    chain_id          TEXT    NOT NULL,
    chain_seq         BIGINT  NOT NULL,
    prev_hash         TEXT    NOT NULL,
    hash              TEXT    NOT NULL,
    answered_unix_us  BIGINT,
    ended_unix_us     BIGINT  NOT NULL,
    hangup_by         TEXT    NOT NULL,
    sip_code          BIGINT,
    transfer_target   TEXT,
    outcome           TEXT    NOT NULL,
    final_slots       TEXT    NOT NULL,
    UNIQUE (chain_id, chain_seq)
);
CREATE INDEX audit_call_ends_outcome ON audit_call_ends (outcome);

CREATE TABLE audit_turns (
    call_id                TEXT    NOT NULL,
    seq                    BIGINT  NOT NULL,
    chain_id               TEXT    NOT NULL,
    chain_seq              BIGINT  NOT NULL,
    prev_hash              TEXT    NOT NULL,
    hash                   TEXT    NOT NULL,
    speaker                TEXT    NOT NULL,
    raw_text               TEXT    NOT NULL,
    raw_confidence         REAL,
    corrected_text         TEXT    NOT NULL,
    corrections            TEXT    NOT NULL,
    slots                  TEXT    NOT NULL,
    reply_text             TEXT,
    speech_start_us        BIGINT,
    speech_end_us          BIGINT,
    endpoint_us            BIGINT,
    stt_final_us           BIGINT,
    dialogue_us            BIGINT,
    tts_first_audio_us     BIGINT,
    first_reply_packet_us  BIGINT,
    barge_in_us            BIGINT,
    PRIMARY KEY (call_id, seq),
    UNIQUE (chain_id, chain_seq)
);

CREATE TABLE audit_events (
    call_id    TEXT    NOT NULL,
    seq        BIGINT  NOT NULL,
    chain_id   TEXT    NOT NULL,
    chain_seq  BIGINT  NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    at_us      BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    PRIMARY KEY (call_id, seq),
    UNIQUE (chain_id, chain_seq)
);

-- Configuration changes and staff access: who, what, when, from where.
CREATE TABLE audit_access (
    record_id   TEXT    NOT NULL PRIMARY KEY,
    chain_id    TEXT    NOT NULL,
    chain_seq   BIGINT  NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL,
    at_unix_us  BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    UNIQUE (chain_id, chain_seq)
);
CREATE INDEX audit_access_at ON audit_access (at_unix_us);

-- The last record of every chain, advanced in the same transaction as the
-- insert. Lets writers extend a chain without scanning it, and lets verify
-- notice records deleted from (or appended to) a chain's end.
CREATE TABLE audit_chain_heads (
    chain_id   TEXT    NOT NULL PRIMARY KEY,
    chain_seq  BIGINT  NOT NULL,
    hash       TEXT    NOT NULL
);
