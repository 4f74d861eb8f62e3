//! The turn record: what the caller said, what was corrected and
//! understood, and what the bot answered. The gateway adds its timings and
//! writes it to the audit log.

use serde::Serialize;

use crate::correct::{Ambiguity, Correction};
use crate::understand::Slots;

/// What the bot waits for after its reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Expecting {
    /// What the caller wants (the greeting, or after not understanding).
    Intent,
    /// A slot, by its name in the flow.
    Slot(String),
    /// One of several close candidates for a slot.
    Choice {
        /// The slot.
        slot: String,
        /// Canonical names.
        candidates: Vec<String>,
    },
    /// A yes/no (or a correction) to the read-back.
    Confirmation,
    /// What to change after a bare "no".
    Change,
    /// One of the offered alternative times.
    Alternative,
    /// Yes/no to "shall I put you through?".
    TransferOffer,
    /// Nothing: the call is over.
    Nothing,
}

/// What the gateway must do after playing the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnAction {
    /// Keep listening.
    Listen,
    /// Hand the call to staff.
    Transfer,
    /// Hang up.
    HangUp,
}

/// One caller turn and the bot's answer. Serialised in full for the audit
/// log; its `Debug` (what ends up in logs) shows no caller words or values.
#[derive(Clone, PartialEq, Serialize)]
pub struct TurnRecord {
    /// 0-based turn number within the call.
    pub index: u32,
    /// The slot that had been asked for, if any.
    pub asked: Option<String>,
    /// The recogniser's text, untouched.
    pub raw: String,
    /// After vocabulary correction.
    pub corrected: String,
    /// Every vocabulary term found: span (bytes in `raw`), from, to, score.
    pub corrections: Vec<Correction>,
    /// Terms too close to choose between.
    pub ambiguities: Vec<Ambiguity>,
    /// The intent after this turn.
    pub intent: Option<String>,
    /// All slots after this turn.
    pub slots: Slots,
    /// The bot's reply (one line, spoken style).
    pub reply: String,
    /// Say this first if the backend is slow (set when the turn called it).
    pub filler: Option<String>,
    /// What the bot waits for next.
    pub expecting: Expecting,
    /// What to do after the reply.
    pub action: TurnAction,
}

impl std::fmt::Debug for TurnRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnRecord")
            .field("index", &self.index)
            .field("asked", &self.asked)
            .field("raw_chars", &self.raw.chars().count())
            .field("corrections", &self.corrections.len())
            .field("ambiguities", &self.ambiguities.len())
            .field("intent", &self.intent)
            .field("slots", &self.slots.keys().collect::<Vec<_>>())
            .field("expecting", &ExpectingKind(&self.expecting))
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

/// `Expecting` without the candidate names.
struct ExpectingKind<'a>(&'a Expecting);

impl std::fmt::Debug for ExpectingKind<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Expecting::Choice { slot, candidates } => {
                write!(f, "Choice({slot}, {} candidates)", candidates.len())
            }
            other => write!(f, "{other:?}"),
        }
    }
}
