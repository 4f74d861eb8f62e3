//! The conversation: flows, slot filling, vocabulary-biased correction and
//! normalisation of spoken dates, times and names, plus the turn record.
//!
//! It turns a raw transcript into slots, decides the next prompt or action
//! (transfer, hang up) and can be tested entirely as text. It does I/O only
//! through traits it defines ([`Scheduler`], [`LanguageModel`]) and the
//! reader/writer given to [`chat::run`].
//!
//! One call, as the gateway drives it:
//!
//! ```
//! use echo_dialogue::{Dialogue, Flow, InMemoryScheduler, TurnAction};
//! # let flow = Flow::clinic();
//! let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
//! let mut call = Dialogue::new(&flow, today, InMemoryScheduler::from_lexicon(flow.lexicon()));
//! let _say_first = call.greeting();
//! for heard in ["I just want to talk to a real person."] {
//!     let turn = call.handle(heard); // raw + corrected text, corrections, slots, reply
//!     // speak turn.reply; audit-log turn; then act:
//!     if turn.action != TurnAction::Listen {
//!         break;
//!     }
//! }
//! assert_eq!(call.outcome().outcome, "transferred");
//! ```
//!
//! Correction ([`VocabularyCorrector`]) compares word n-grams (1–4 words) of
//! the transcript with every alias of the lexicon on a Metaphone key written
//! here ([`phonetic`]) and on the spelling, by edit distance, indexed by the
//! key's first letter; see [`correct`] for the score and its thresholds.
//!
//! Measurements (development data in `../shared/data`, read by the tests):
//!
//! ```sh
//! cargo test -p echo-dialogue --test scenarios -- --nocapture      # scenarios, noisy outcome rates
//! cargo test -p echo-dialogue --test term_accuracy -- --nocapture  # term accuracy, false corrections
//! cargo bench -p echo-dialogue --bench correction                  # 2,000 providers, 500 medications
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod chat;
pub mod correct;
pub mod flow;
pub mod lexicon;
pub mod manager;
pub mod normalize;
pub mod phonetic;
pub mod schedule;
pub mod sim;
pub mod turn;
pub mod understand;

pub use correct::{Ambiguity, Corrected, Correction, Thresholds, VocabularyCorrector};
pub use flow::{Flow, FlowError};
pub use lexicon::{Lexicon, LexiconError, Term, TermKind, VocabularySources};
pub use manager::{ChatOutcome, Dialogue};
pub use schedule::{InMemoryScheduler, Scheduler};
pub use turn::{Expecting, TurnAction, TurnRecord};
pub use understand::{LanguageModel, Understanding};
