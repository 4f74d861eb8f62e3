//! The conversation: flows, slot filling, vocabulary-biased correction and
//! normalisation of spoken dates, times and names, plus the turn record.
//!
//! It turns a raw transcript into slots, decides the next prompt or action
//! (transfer, hang up) and can be tested entirely as text. It does I/O only
//! through traits it defines (for example a scheduling backend).
//!
//! Not built yet: see issue 4.
#![warn(missing_docs, unreachable_pub)]
