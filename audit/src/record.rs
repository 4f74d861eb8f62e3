//! What the audit log records: calls, turns, events and access/config
//! entries. Times are `i64` microseconds: wall-clock ones (`*_unix_us`) since
//! the Unix epoch, per-call ones (`*_us`) since the call started (monotonic).

use crate::pii::Pii;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Identifies a call in the audit log (32 lowercase hex digits, chosen by the
/// gateway when the call starts, so retries and spool replays are idempotent).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub String);

impl CallId {
    /// A fresh random id.
    pub fn random() -> Self {
        CallId(hex::encode(rand::random::<[u8; 16]>()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The start of a call: written when the call is accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The call's id.
    pub call_id: CallId,
    /// The trunk the INVITE arrived on.
    pub trunk: String,
    /// Caller number (From).
    pub caller: Pii<String>,
    /// Called number (To / DID).
    pub called: Pii<String>,
    /// The route that matched.
    pub route: String,
    /// The app the route sent the call to.
    pub app: String,
    /// SIP Call-ID of the inbound dialog.
    pub sip_call_id: String,
    /// Negotiated codec (`PCMU`, `PCMA`, `opus`).
    pub codec: String,
    /// When the INVITE arrived.
    pub started_unix_us: i64,
}

/// Who ended the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupBy {
    /// The caller sent BYE/CANCEL.
    Caller,
    /// The bot hung up.
    Bot,
    /// The call was transferred away.
    Transfer,
    /// The gateway ended it (media timeout, error, shutdown).
    System,
}

/// How the call turned out for the clinic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An appointment was booked.
    Booked,
    /// A prescription refill was requested.
    RefillRequested,
    /// An appointment was cancelled.
    Cancelled,
    /// The call went to a human.
    Transferred,
    /// The caller left before anything was done.
    Abandoned,
    /// Something broke.
    Failed,
}

/// The end of a call: written when the dialog ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallEnd {
    /// The call's id.
    pub call_id: CallId,
    /// When the 200 OK was sent, if the call was answered.
    pub answered_unix_us: Option<i64>,
    /// When the dialog ended.
    pub ended_unix_us: i64,
    /// Who ended it.
    pub hangup_by: HangupBy,
    /// Final SIP status code when the call was rejected or failed.
    pub sip_code: Option<i64>,
    /// Where it was transferred to.
    pub transfer_target: Option<Pii<String>>,
    /// The outcome.
    pub outcome: Outcome,
    /// The slots at the end (JSON object).
    pub final_slots: Pii<serde_json::Value>,
}

/// Who spoke in a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The caller (a normal dialogue turn).
    Caller,
    /// The bot alone (greeting, prompt without caller input).
    Bot,
    /// The remote model of a realtime bridge.
    Model,
}

/// The seven timestamps of a turn (ARCHITECTURE.md "The turn record"), in µs
/// since the call started; `None` where the stage did not happen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnTimings {
    /// Caller speech started.
    pub speech_start_us: Option<i64>,
    /// Last voiced frame.
    pub speech_end_us: Option<i64>,
    /// Endpoint decided.
    pub endpoint_us: Option<i64>,
    /// Recognition final.
    pub stt_final_us: Option<i64>,
    /// Dialogue decided.
    pub dialogue_us: Option<i64>,
    /// First synthesised audio.
    pub tts_first_audio_us: Option<i64>,
    /// First RTP packet of the reply sent.
    pub first_reply_packet_us: Option<i64>,
}

/// One completed turn, written as soon as it completes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// The call it belongs to.
    pub call_id: CallId,
    /// 0, 1, 2… within the call; with `call_id` the turn's unique key.
    pub seq: i64,
    /// Who spoke.
    pub speaker: Speaker,
    /// Recogniser output as heard.
    pub raw_text: Pii<String>,
    /// Recogniser confidence in 0..=1, if the engine gives one.
    pub raw_confidence: Option<f64>,
    /// Text after vocabulary correction.
    pub corrected_text: Pii<String>,
    /// The corrections made (JSON array).
    pub corrections: Pii<serde_json::Value>,
    /// Slots after the turn (JSON object).
    pub slots: Pii<serde_json::Value>,
    /// What the bot said back.
    pub reply_text: Option<Pii<String>>,
    /// Latency breakdown.
    pub timings: TurnTimings,
    /// When the caller barged in on the reply (µs since call start).
    pub barge_in_us: Option<i64>,
}

/// What kind of event happened in a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// DTMF digit (detail: `{"digit": "5"}`).
    Dtmf,
    /// Caller spoke over the bot.
    BargeIn,
    /// Call transferred (detail: target).
    Transfer,
    /// An error (detail: layer and message, no PII).
    Error,
    /// No RTP for too long.
    MediaTimeout,
    /// The call was answered (200 OK sent).
    Answered,
}

/// A point event in a call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The call.
    pub call_id: CallId,
    /// 0, 1, 2… within the call's events; with `call_id` the unique key.
    pub seq: i64,
    /// µs since call start.
    pub at_us: i64,
    /// What happened.
    pub kind: EventKind,
    /// Details (JSON; may carry digits or targets, hence PII).
    pub detail: Pii<serde_json::Value>,
}

/// A configuration change or a staff access: who did what, when, from where.
/// These form one global chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Access {
    /// Unique id of this entry (random, chosen by the writer's caller).
    pub record_id: String,
    /// When.
    pub at_unix_us: i64,
    /// Who (staff user, `admin-api`, `config-file`).
    pub actor: String,
    /// What (`route.update`, `trunk.create`, `call.view`, `call.export`).
    pub action: String,
    /// On what (a route name, a call id).
    pub target: String,
    /// From where (IP address, `cli`).
    pub source: String,
    /// Details (JSON, e.g. the old and new value).
    pub detail: serde_json::Value,
}

impl Access {
    /// An entry with a fresh random `record_id`.
    pub fn new(
        at_unix_us: i64,
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        source: impl Into<String>,
        detail: serde_json::Value,
    ) -> Self {
        Access {
            record_id: hex::encode(rand::random::<[u8; 16]>()),
            at_unix_us,
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            source: source.into(),
            detail,
        }
    }
}

/// Anything the audit log stores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditRecord {
    /// A call started.
    Call(Call),
    /// A call ended.
    CallEnd(CallEnd),
    /// A turn completed.
    Turn(Turn),
    /// An event in a call.
    Event(Event),
    /// A configuration change or staff access.
    Access(Access),
}

impl From<Call> for AuditRecord {
    fn from(v: Call) -> Self {
        AuditRecord::Call(v)
    }
}
impl From<CallEnd> for AuditRecord {
    fn from(v: CallEnd) -> Self {
        AuditRecord::CallEnd(v)
    }
}
impl From<Turn> for AuditRecord {
    fn from(v: Turn) -> Self {
        AuditRecord::Turn(v)
    }
}
impl From<Event> for AuditRecord {
    fn from(v: Event) -> Self {
        AuditRecord::Event(v)
    }
}
impl From<Access> for AuditRecord {
    fn from(v: Access) -> Self {
        AuditRecord::Access(v)
    }
}

macro_rules! text_enum {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            /// The name stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl FromStr for $t {
            type Err = crate::error::StoreError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok(Self::$v),)*
                    _ => Err(crate::error::StoreError::UnknownValue {
                        what: stringify!($t),
                        value: s.to_owned(),
                    }),
                }
            }
        }
    };
}

text_enum!(HangupBy { Caller = "caller", Bot = "bot", Transfer = "transfer", System = "system" });
text_enum!(Outcome {
    Booked = "booked",
    RefillRequested = "refill_requested",
    Cancelled = "cancelled",
    Transferred = "transferred",
    Abandoned = "abandoned",
    Failed = "failed",
});
text_enum!(Speaker { Caller = "caller", Bot = "bot", Model = "model" });
text_enum!(EventKind {
    Dtmf = "dtmf",
    BargeIn = "barge_in",
    Transfer = "transfer",
    Error = "error",
    MediaTimeout = "media_timeout",
    Answered = "answered",
});
