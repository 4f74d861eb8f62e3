//! The tables, their columns, and the canonical encoding that the hash chain
//! covers. Insert, read and verify are all driven by these descriptors, so
//! the two backends cannot drift apart column by column.

use crate::error::StoreError;
use crate::pii::Pii;
use crate::record::{Access, AuditRecord, Call, CallEnd, CallId, Event, Turn, TurnTimings};
use sha2::{Digest, Sha256};

/// The SQL type of a column (the same three on both backends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    /// BIGINT / INTEGER
    I64,
    /// DOUBLE PRECISION / REAL
    F64,
    /// TEXT (JSON is stored as TEXT so the hashed bytes are the stored bytes)
    Text,
}

/// One stored column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An integer or NULL.
    I64(Option<i64>),
    /// A float or NULL.
    F64(Option<f64>),
    /// Text or NULL.
    Text(Option<String>),
}

/// A table of the audit log.
#[derive(Debug)]
pub struct Table {
    /// SQL name.
    pub name: &'static str,
    /// The natural unique key (idempotent replay conflicts on it).
    pub key: &'static [&'static str],
    /// Content columns, in canonical order (chain columns come on top).
    pub cols: &'static [(&'static str, ColType)],
}

use ColType::{Text as T, F64 as F, I64 as I};

/// `audit_calls`: one row per call start.
pub static CALLS: Table = Table {
    name: "audit_calls",
    key: &["call_id"],
    cols: &[
        ("call_id", T),
        ("trunk", T),
        ("caller", T),
        ("called", T),
        ("route", T),
        ("app", T),
        ("sip_call_id", T),
        ("codec", T),
        ("started_unix_us", I),
    ],
};

/// `audit_call_ends`: one row per call end.
pub static CALL_ENDS: Table = Table {
    name: "audit_call_ends",
    key: &["call_id"],
    cols: &[
        ("call_id", T),
        ("answered_unix_us", I),
        ("ended_unix_us", I),
        ("hangup_by", T),
        ("sip_code", I),
        ("transfer_target", T),
        ("outcome", T),
        ("final_slots", T),
    ],
};

/// `audit_turns`: one row per turn.
pub static TURNS: Table = Table {
    name: "audit_turns",
    key: &["call_id", "seq"],
    cols: &[
        ("call_id", T),
        ("seq", I),
        ("speaker", T),
        ("raw_text", T),
        ("raw_confidence", F),
        ("corrected_text", T),
        ("corrections", T),
        ("slots", T),
        ("reply_text", T),
        ("speech_start_us", I),
        ("speech_end_us", I),
        ("endpoint_us", I),
        ("stt_final_us", I),
        ("dialogue_us", I),
        ("tts_first_audio_us", I),
        ("first_reply_packet_us", I),
        ("barge_in_us", I),
    ],
};

/// `audit_events`: one row per call event.
pub static EVENTS: Table = Table {
    name: "audit_events",
    key: &["call_id", "seq"],
    cols: &[
        ("call_id", T),
        ("seq", I),
        ("at_us", I),
        ("kind", T),
        ("detail", T),
    ],
};

/// `audit_access`: configuration changes and staff access (global chain).
pub static ACCESS: Table = Table {
    name: "audit_access",
    key: &["record_id"],
    cols: &[
        ("record_id", T),
        ("at_unix_us", I),
        ("actor", T),
        ("action", T),
        ("target", T),
        ("source", T),
        ("detail", T),
    ],
};

/// Every chained table.
pub static TABLES: [&Table; 5] = [&CALLS, &CALL_ENDS, &TURNS, &EVENTS, &ACCESS];

/// The chain that configuration and access records share.
pub const GLOBAL_CHAIN: &str = "global";

/// `prev_hash` of the first record of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain a call's records belong to.
pub fn call_chain(call_id: &CallId) -> String {
    format!("call:{}", call_id.0)
}

fn text(s: &str) -> Value {
    Value::Text(Some(s.to_owned()))
}

fn json(v: &serde_json::Value) -> Value {
    // serde_json's Map is ordered by key, so this text is canonical.
    Value::Text(Some(v.to_string()))
}

fn finite(x: Option<f64>) -> Option<f64> {
    // SQLite turns NaN into NULL; store it as NULL on both sides.
    x.filter(|x| x.is_finite())
}

impl AuditRecord {
    /// The table this record goes to.
    pub fn table(&self) -> &'static Table {
        match self {
            AuditRecord::Call(_) => &CALLS,
            AuditRecord::CallEnd(_) => &CALL_ENDS,
            AuditRecord::Turn(_) => &TURNS,
            AuditRecord::Event(_) => &EVENTS,
            AuditRecord::Access(_) => &ACCESS,
        }
    }

    /// The hash chain this record extends.
    pub fn chain_id(&self) -> String {
        match self {
            AuditRecord::Call(c) => call_chain(&c.call_id),
            AuditRecord::CallEnd(c) => call_chain(&c.call_id),
            AuditRecord::Turn(t) => call_chain(&t.call_id),
            AuditRecord::Event(e) => call_chain(&e.call_id),
            AuditRecord::Access(_) => GLOBAL_CHAIN.to_owned(),
        }
    }

    /// Column values in the table's order.
    pub fn values(&self) -> Vec<Value> {
        match self {
            AuditRecord::Call(c) => vec![
                text(&c.call_id.0),
                text(&c.trunk),
                text(c.caller.expose()),
                text(c.called.expose()),
                text(&c.route),
                text(&c.app),
                text(&c.sip_call_id),
                text(&c.codec),
                Value::I64(Some(c.started_unix_us)),
            ],
            AuditRecord::CallEnd(e) => vec![
                text(&e.call_id.0),
                Value::I64(e.answered_unix_us),
                Value::I64(Some(e.ended_unix_us)),
                text(e.hangup_by.as_str()),
                Value::I64(e.sip_code),
                Value::Text(e.transfer_target.as_ref().map(|t| t.0.clone())),
                text(e.outcome.as_str()),
                json(e.final_slots.expose()),
            ],
            AuditRecord::Turn(t) => vec![
                text(&t.call_id.0),
                Value::I64(Some(t.seq)),
                text(t.speaker.as_str()),
                text(t.raw_text.expose()),
                Value::F64(finite(t.raw_confidence)),
                text(t.corrected_text.expose()),
                json(t.corrections.expose()),
                json(t.slots.expose()),
                Value::Text(t.reply_text.as_ref().map(|r| r.0.clone())),
                Value::I64(t.timings.speech_start_us),
                Value::I64(t.timings.speech_end_us),
                Value::I64(t.timings.endpoint_us),
                Value::I64(t.timings.stt_final_us),
                Value::I64(t.timings.dialogue_us),
                Value::I64(t.timings.tts_first_audio_us),
                Value::I64(t.timings.first_reply_packet_us),
                Value::I64(t.barge_in_us),
            ],
            AuditRecord::Event(e) => vec![
                text(&e.call_id.0),
                Value::I64(Some(e.seq)),
                Value::I64(Some(e.at_us)),
                text(e.kind.as_str()),
                json(e.detail.expose()),
            ],
            AuditRecord::Access(a) => vec![
                text(&a.record_id),
                Value::I64(Some(a.at_unix_us)),
                text(&a.actor),
                text(&a.action),
                text(&a.target),
                text(&a.source),
                json(&a.detail),
            ],
        }
    }

    /// Rebuilds a record from a row of `table` (values in the table's order).
    pub fn from_values(table: &Table, v: &[Value]) -> Result<AuditRecord, StoreError> {
        let mut r = Reader { table, v, i: 0 };
        Ok(match table.name {
            "audit_calls" => AuditRecord::Call(Call {
                call_id: CallId(r.text()?),
                trunk: r.text()?,
                caller: Pii(r.text()?),
                called: Pii(r.text()?),
                route: r.text()?,
                app: r.text()?,
                sip_call_id: r.text()?,
                codec: r.text()?,
                started_unix_us: r.i64()?,
            }),
            "audit_call_ends" => AuditRecord::CallEnd(CallEnd {
                call_id: CallId(r.text()?),
                answered_unix_us: r.opt_i64()?,
                ended_unix_us: r.i64()?,
                hangup_by: r.text()?.parse()?,
                sip_code: r.opt_i64()?,
                transfer_target: r.opt_text()?.map(Pii),
                outcome: r.text()?.parse()?,
                final_slots: Pii(r.json()?),
            }),
            "audit_turns" => AuditRecord::Turn(Turn {
                call_id: CallId(r.text()?),
                seq: r.i64()?,
                speaker: r.text()?.parse()?,
                raw_text: Pii(r.text()?),
                raw_confidence: r.opt_f64()?,
                corrected_text: Pii(r.text()?),
                corrections: Pii(r.json()?),
                slots: Pii(r.json()?),
                reply_text: r.opt_text()?.map(Pii),
                timings: TurnTimings {
                    speech_start_us: r.opt_i64()?,
                    speech_end_us: r.opt_i64()?,
                    endpoint_us: r.opt_i64()?,
                    stt_final_us: r.opt_i64()?,
                    dialogue_us: r.opt_i64()?,
                    tts_first_audio_us: r.opt_i64()?,
                    first_reply_packet_us: r.opt_i64()?,
                },
                barge_in_us: r.opt_i64()?,
            }),
            "audit_events" => AuditRecord::Event(Event {
                call_id: CallId(r.text()?),
                seq: r.i64()?,
                at_us: r.i64()?,
                kind: r.text()?.parse()?,
                detail: Pii(r.json()?),
            }),
            _ => AuditRecord::Access(Access {
                record_id: r.text()?,
                at_unix_us: r.i64()?,
                actor: r.text()?,
                action: r.text()?,
                target: r.text()?,
                source: r.text()?,
                detail: r.json()?,
            }),
        })
    }
}

struct Reader<'a> {
    table: &'a Table,
    v: &'a [Value],
    i: usize,
}

impl Reader<'_> {
    fn next(&mut self) -> Result<(&'static str, &Value), StoreError> {
        let name = self.table.cols.get(self.i).map_or("?", |c| c.0);
        let v = self
            .v
            .get(self.i)
            .ok_or(StoreError::BadColumn { column: name })?;
        self.i += 1;
        Ok((name, v))
    }
    fn opt_text(&mut self) -> Result<Option<String>, StoreError> {
        match self.next()? {
            (_, Value::Text(t)) => Ok(t.clone()),
            (column, _) => Err(StoreError::BadColumn { column }),
        }
    }
    fn text(&mut self) -> Result<String, StoreError> {
        let column = self.table.cols.get(self.i).map_or("?", |c| c.0);
        self.opt_text()?.ok_or(StoreError::BadColumn { column })
    }
    fn json(&mut self) -> Result<serde_json::Value, StoreError> {
        let column = self.table.cols.get(self.i).map_or("?", |c| c.0);
        serde_json::from_str(&self.text()?).map_err(|source| StoreError::Json { column, source })
    }
    fn opt_i64(&mut self) -> Result<Option<i64>, StoreError> {
        match self.next()? {
            (_, Value::I64(x)) => Ok(*x),
            (column, _) => Err(StoreError::BadColumn { column }),
        }
    }
    fn i64(&mut self) -> Result<i64, StoreError> {
        let column = self.table.cols.get(self.i).map_or("?", |c| c.0);
        self.opt_i64()?.ok_or(StoreError::BadColumn { column })
    }
    fn opt_f64(&mut self) -> Result<Option<f64>, StoreError> {
        match self.next()? {
            (_, Value::F64(x)) => Ok(*x),
            (column, _) => Err(StoreError::BadColumn { column }),
        }
    }
}

/// SHA-256 (hex) of a record's canonical encoding:
///
/// ```text
/// "echo-audit/1" 0x00
/// str(table) str(chain_id) i64(chain_seq) str(prev_hash)
/// for each content column in table order: str(name) value
/// value = 0x00 (NULL) | 0x01 i64 BE | 0x02 f64 bits BE | 0x03 str
/// str   = u32 BE byte length, UTF-8 bytes
/// ```
///
/// JSON columns are hashed as their stored text.
pub fn record_hash(
    table: &Table,
    chain_id: &str,
    chain_seq: i64,
    prev_hash: &str,
    values: &[Value],
) -> String {
    fn s(h: &mut Sha256, x: &str) {
        h.update((x.len() as u32).to_be_bytes());
        h.update(x.as_bytes());
    }
    let mut h = Sha256::new();
    h.update(b"echo-audit/1\0");
    s(&mut h, table.name);
    s(&mut h, chain_id);
    h.update(chain_seq.to_be_bytes());
    s(&mut h, prev_hash);
    for ((name, _), v) in table.cols.iter().zip(values) {
        s(&mut h, name);
        match v {
            Value::I64(None) | Value::F64(None) | Value::Text(None) => h.update([0u8]),
            Value::I64(Some(x)) => {
                h.update([1u8]);
                h.update(x.to_be_bytes());
            }
            Value::F64(Some(x)) => {
                h.update([2u8]);
                h.update(x.to_bits().to_be_bytes());
            }
            Value::Text(Some(x)) => {
                h.update([3u8]);
                s(&mut h, x);
            }
        }
    }
    hex::encode(h.finalize())
}

/// A human-readable natural key (`call_id=… seq=3`) for reports; holds no PII.
pub fn key_text(table: &Table, values: &[Value]) -> String {
    let mut out = String::new();
    for k in table.key {
        if let Some(i) = table.cols.iter().position(|c| c.0 == *k) {
            if !out.is_empty() {
                out.push(' ');
            }
            match &values[i] {
                Value::I64(Some(x)) => out.push_str(&format!("{k}={x}")),
                Value::Text(Some(x)) => out.push_str(&format!("{k}={x}")),
                _ => out.push_str(&format!("{k}=NULL")),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::*;
    use serde_json::json;

    #[test]
    fn values_round_trip_and_hash_is_content_sensitive() {
        let t = AuditRecord::Turn(Turn {
            call_id: CallId("ab".into()),
            seq: 3,
            speaker: Speaker::Caller,
            raw_text: "tuesday at nine".into(),
            raw_confidence: Some(0.87),
            corrected_text: "Tuesday at 09:00".into(),
            corrections: Pii(json!([{"from": "nine", "to": "09:00"}])),
            slots: Pii(json!({"time": "09:00", "day": "tuesday"})),
            reply_text: Some("Booked.".into()),
            timings: TurnTimings {
                speech_start_us: Some(1),
                ..Default::default()
            },
            barge_in_us: None,
        });
        let v = t.values();
        assert_eq!(v.len(), TURNS.cols.len());
        assert_eq!(AuditRecord::from_values(&TURNS, &v).unwrap(), t);
        let h1 = record_hash(&TURNS, "call:ab", 4, GENESIS_HASH, &v);
        let mut v2 = v.clone();
        v2[3] = Value::Text(Some("tuesday at ten".into()));
        assert_ne!(h1, record_hash(&TURNS, "call:ab", 4, GENESIS_HASH, &v2));
        assert_ne!(h1, record_hash(&TURNS, "call:ab", 5, GENESIS_HASH, &v));
        assert_eq!(key_text(&TURNS, &v), "call_id=ab seq=3");
        assert!(!format!("{t:?}").contains("tuesday"));
    }
}
