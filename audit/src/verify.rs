//! Recomputes every hash chain and reports what does not add up.
//!
//! Chains: one per call (`call:<id>`: the call start, its turns, events and
//! end, in the order they were written) and one `global` chain for
//! configuration changes and staff access. A chain's records carry
//! `chain_seq` 0, 1, 2… and each stores the previous record's hash;
//! `audit_chain_heads` stores each chain's last `(chain_seq, hash)`.
//!
//! What is caught: a changed column (its hash no longer matches), a deleted
//! record (a gap in `chain_seq`, or a chain shorter than its head says), an
//! inserted record (a `chain_seq` taken twice, past the head, or a chain
//! with no head), and a record rewritten together with its own hash (the
//! next record's `prev_hash`, or the head, no longer links to it). What is
//! not: someone who rewrites a whole chain's tail *and* the head row; for
//! that, copy head hashes somewhere the database's writers cannot change.

use crate::error::StoreError;
use crate::record::CallId;
use crate::schema::{call_chain, key_text, record_hash, GENESIS_HASH};
use crate::store::{AuditStore, ChainHead, ChainRow};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// What is wrong with a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FindingKind {
    /// The record's content no longer matches its stored hash.
    Altered,
    /// The record's `prev_hash` does not match the previous record's hash:
    /// the previous record was replaced (its hash recomputed).
    LinkBroken,
    /// The record was not written by the chain's writer.
    Inserted,
    /// Records `from..=to` of the chain are missing.
    Deleted {
        /// First missing `chain_seq`.
        from: i64,
        /// Last missing `chain_seq`.
        to: i64,
    },
}

/// One problem found by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The chain.
    pub chain_id: String,
    /// Position of the record the finding is about (for `Deleted`: the record
    /// after the gap, or the last one kept).
    pub chain_seq: i64,
    /// The table it is in (empty if the whole chain is gone).
    pub table: &'static str,
    /// Its natural key (`call_id=… seq=…`): no PII.
    pub key: String,
    /// What is wrong.
    pub kind: FindingKind,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} #{} ({} {}): {:?}",
            self.chain_id, self.chain_seq, self.table, self.key, self.kind
        )
    }
}

/// The outcome of [`verify`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Chains checked.
    pub chains: usize,
    /// Records checked.
    pub records: usize,
    /// Problems, in chain order (the first one is the first bad record).
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// True when every chain checks out.
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// The first problem, if any.
    pub fn first(&self) -> Option<&Finding> {
        self.findings.first()
    }
}

/// Reads every chain from `store` and checks it.
pub async fn verify(store: &dyn AuditStore) -> Result<VerifyReport, StoreError> {
    let rows = store.chain_rows().await?;
    let heads = store.chain_heads().await?;
    Ok(verify_rows(rows, heads))
}

/// Reads one call's chain from `store` and checks it. A call the store has
/// never heard of gives an empty report (`chains == 0`), which `is_ok`.
pub async fn verify_call(
    store: &dyn AuditStore,
    call_id: &CallId,
) -> Result<VerifyReport, StoreError> {
    let chain = call_chain(call_id);
    let rows = store.chain_rows_of(&chain).await?;
    let head = store.chain_head_of(&chain).await?;
    Ok(verify_rows(rows, head.into_iter().collect()))
}

/// Checks chains given as rows and heads (what [`verify`] reads).
pub fn verify_rows(rows: Vec<ChainRow>, heads: Vec<ChainHead>) -> VerifyReport {
    let mut chains: BTreeMap<String, Vec<ChainRow>> = BTreeMap::new();
    let records = rows.len();
    for row in rows {
        chains.entry(row.chain_id.clone()).or_default().push(row);
    }
    let mut heads: HashMap<String, ChainHead> =
        heads.into_iter().map(|h| (h.chain_id.clone(), h)).collect();
    let mut report = VerifyReport {
        chains: 0,
        records,
        findings: Vec::new(),
    };
    for (chain_id, mut rows) in chains {
        report.chains += 1;
        rows.sort_by(|a, b| {
            a.chain_seq
                .cmp(&b.chain_seq)
                .then(a.table.name.cmp(b.table.name))
        });
        let head = heads.remove(&chain_id);
        check_chain(&chain_id, &rows, head.as_ref(), &mut report.findings);
    }
    let mut orphans: Vec<ChainHead> = heads.into_values().collect();
    orphans.sort_by(|a, b| a.chain_id.cmp(&b.chain_id));
    for head in orphans {
        report.chains += 1;
        report.findings.push(Finding {
            chain_id: head.chain_id,
            chain_seq: head.chain_seq,
            table: "",
            key: String::new(),
            kind: FindingKind::Deleted {
                from: 0,
                to: head.chain_seq,
            },
        });
    }
    report
}

fn finding(row: &ChainRow, kind: FindingKind) -> Finding {
    Finding {
        chain_id: row.chain_id.clone(),
        chain_seq: row.chain_seq,
        table: row.table.name,
        key: key_text(row.table, &row.values),
        kind,
    }
}

fn hash_ok(row: &ChainRow) -> bool {
    record_hash(
        row.table,
        &row.chain_id,
        row.chain_seq,
        &row.prev_hash,
        &row.values,
    ) == row.hash
}

fn check_chain(
    chain_id: &str,
    rows: &[ChainRow],
    head: Option<&ChainHead>,
    out: &mut Vec<Finding>,
) {
    let mut expected = 0i64;
    let mut prev = GENESIS_HASH.to_owned();
    let mut last: Option<&ChainRow> = None;
    let mut i = 0;
    while i < rows.len() {
        // Rows sharing a chain_seq: the one that links is genuine, the rest inserted.
        let seq = rows[i].chain_seq;
        let mut j = i;
        while j < rows.len() && rows[j].chain_seq == seq {
            j += 1;
        }
        let group = &rows[i..j];
        i = j;
        if seq < expected {
            // Cannot happen after sorting unless seq is negative.
            out.extend(group.iter().map(|r| finding(r, FindingKind::Inserted)));
            continue;
        }
        let genuine = group
            .iter()
            .position(|r| r.prev_hash == prev && hash_ok(r))
            .unwrap_or(0);
        for (k, r) in group.iter().enumerate() {
            if k != genuine {
                out.push(finding(r, FindingKind::Inserted));
            }
        }
        let row = &group[genuine];
        if let Some(h) = head {
            if row.chain_seq > h.chain_seq {
                out.push(finding(row, FindingKind::Inserted));
                continue;
            }
        }
        if seq > expected {
            out.push(finding(
                row,
                FindingKind::Deleted {
                    from: expected,
                    to: seq - 1,
                },
            ));
        } else if !hash_ok(row) {
            out.push(finding(row, FindingKind::Altered));
        } else if row.prev_hash != prev {
            out.push(finding(row, FindingKind::LinkBroken));
        }
        expected = seq + 1;
        prev = row.hash.clone();
        last = Some(row);
    }
    match (head, last) {
        (None, _) => {
            if let Some(first) = rows.first() {
                out.push(finding(first, FindingKind::Inserted));
            }
        }
        (Some(h), Some(last)) => {
            if h.chain_seq > last.chain_seq {
                out.push(finding(
                    last,
                    FindingKind::Deleted {
                        from: last.chain_seq + 1,
                        to: h.chain_seq,
                    },
                ));
            } else if h.chain_seq == last.chain_seq && h.hash != last.hash {
                out.push(finding(last, FindingKind::LinkBroken));
            }
        }
        (Some(h), None) => out.push(Finding {
            chain_id: chain_id.to_owned(),
            chain_seq: h.chain_seq,
            table: "",
            key: String::new(),
            kind: FindingKind::Deleted {
                from: 0,
                to: h.chain_seq,
            },
        }),
    }
}
