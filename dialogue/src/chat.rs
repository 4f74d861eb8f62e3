//! The text channel: the same dialogue as a conversation on lines of text.
//! The greeting is the first line written; each caller line read gets
//! exactly one reply line, flushed; at the end (an outcome, or end of
//! input) one JSON line with `outcome`, `intent` and the slots in the
//! scenario format.

use std::io::{self, BufRead, Write};

use chrono::NaiveDate;

use crate::flow::Flow;
use crate::manager::{ChatOutcome, Dialogue};
use crate::schedule::{InMemoryScheduler, Scheduler};

/// Runs a text conversation with the embedded scheduler.
pub fn run(
    input: impl BufRead,
    output: impl Write,
    flow: &Flow,
    today: NaiveDate,
) -> io::Result<ChatOutcome> {
    let scheduler = InMemoryScheduler::from_lexicon(flow.lexicon());
    run_with(input, output, flow, today, scheduler)
}

/// Runs a text conversation with the given scheduler.
pub fn run_with<S: Scheduler>(
    input: impl BufRead,
    mut output: impl Write,
    flow: &Flow,
    today: NaiveDate,
    scheduler: S,
) -> io::Result<ChatOutcome> {
    let mut dialogue = Dialogue::new(flow, today, scheduler);
    writeln!(output, "{}", one_line(dialogue.greeting()))?;
    output.flush()?;
    for line in input.lines() {
        let line = line?;
        let turn = dialogue.handle(line.trim());
        writeln!(output, "{}", one_line(&turn.reply))?;
        output.flush()?;
        if dialogue.is_done() {
            break;
        }
    }
    let outcome = dialogue.outcome();
    let json = serde_json::to_string(&outcome).map_err(io::Error::other)?;
    writeln!(output, "{json}")?;
    output.flush()?;
    Ok(outcome)
}

/// Replies are spoken text; a newline inside one would break the protocol.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_then_one_line_per_turn_then_json() {
        let flow = Flow::clinic();
        let mut out = Vec::new();
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let o = run(
            &b"hmm\nI want to talk to a real person\n"[..],
            &mut out,
            &flow,
            today,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], flow.greeting);
        assert_eq!(o.outcome, "transferred");
        assert_eq!(
            lines[3],
            r#"{"outcome":"transferred","intent":"talk_to_staff"}"#
        );
    }
}
