//! Understanding one caller turn with rules: the intent, any slots said
//! (mixed initiative), yes/no, "no preference", and a choice between
//! candidates. A [`LanguageModel`] may be consulted when the rules find
//! nothing; the rules are complete on their own.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use crate::correct::{Ambiguity, Corrected};
use crate::flow::{Flow, SlotKind};
use crate::lexicon::TermKind;
use crate::normalize::{self, words};

/// Slot values in the scenario format (dates `YYYY-MM-DD`, times `HH:MM`).
pub type Slots = BTreeMap<String, String>;

/// What one caller turn said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Understanding {
    /// The intent, if the turn names one.
    pub intent: Option<String>,
    /// Slot values said, by output key.
    pub slots: Slots,
    /// A clear yes or no.
    pub yes_no: Option<bool>,
    /// "No preference", "anyone is fine".
    pub no_preference: bool,
    /// Terms too close to choose between.
    pub ambiguity: Option<Ambiguity>,
    /// "The first one" → 0, "the second" → 1.
    pub choice: Option<usize>,
}

/// What the manager knows when it asks for help understanding a turn.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The call's date.
    pub today: NaiveDate,
    /// The slot just asked for.
    pub asking: Option<&'a str>,
    /// The intent so far.
    pub intent: Option<&'a str>,
}

/// A hook for a language model: asked only when the rules understood
/// nothing; whatever it returns is validated like the rules' output.
pub trait LanguageModel {
    /// Interprets the corrected text, or returns `None`.
    fn interpret(&self, flow: &Flow, text: &str, context: &Context<'_>) -> Option<Understanding>;
}

const NO_PREFERENCE: &[&str] = &[
    "no preference",
    "any of them",
    "anyone",
    "anybody",
    "any doctor",
    "doesn't matter",
    "does not matter",
    "whoever",
    "first available",
    "don't mind",
    "don't care",
    "no one in particular",
    "either",
    "any is fine",
];

fn contains_phrase(ws: &[String], phrase: &str) -> bool {
    let pw: Vec<&str> = phrase.split(' ').collect();
    ws.windows(pw.len())
        .any(|w| w.iter().zip(&pw).all(|(a, b)| a == b))
}

/// The rules: reads `c` (the corrected turn) in the light of the slot asked.
pub fn understand(flow: &Flow, c: &Corrected, ctx: &Context<'_>) -> Understanding {
    let ws = words(&c.text);
    let mut u = Understanding {
        yes_no: normalize::yes_no(&ws),
        ..Default::default()
    };
    let asking_kind = ctx.asking.and_then(|s| flow.slots.get(s)).map(|s| s.kind);
    let lx = flow.lexicon();

    // Intent: a person at any point wins, then keywords, then the terms said.
    let mut best: Option<(usize, &str)> = None;
    for (name, spec) in &flow.intents {
        for k in &spec.keywords {
            if contains_phrase(&ws, &k.to_lowercase()) {
                let rank = match spec.action {
                    crate::flow::Action::Transfer => 0,
                    crate::flow::Action::Cancel => 1,
                    crate::flow::Action::Refill => 2,
                    crate::flow::Action::Book => 3,
                };
                if best.is_none_or(|(r, _)| rank < r) {
                    best = Some((rank, name));
                }
            }
        }
    }
    u.intent = best.map(|(_, n)| n.to_string());

    // Vocabulary terms.
    for t in &c.terms {
        match t.kind {
            TermKind::Provider => {
                u.slots.insert("provider".into(), t.to.clone());
                if let Some(sp) = lx
                    .by_canonical(&t.to)
                    .and_then(|id| lx.term(id).specialty.clone())
                {
                    u.slots.insert("specialty".into(), sp);
                }
            }
            TermKind::Specialty => {
                u.slots
                    .entry("specialty".into())
                    .or_insert_with(|| t.to.clone());
            }
            TermKind::Medication => {
                u.slots.insert("medication".into(), t.to.clone());
            }
        }
    }
    u.ambiguity = c.ambiguities.first().cloned();
    if u.intent.is_none() {
        let intent_of = |action: crate::flow::Action| {
            flow.intents
                .iter()
                .find(|(_, s)| s.action == action)
                .map(|(n, _)| n.clone())
        };
        if u.slots.contains_key("medication") {
            u.intent = intent_of(crate::flow::Action::Refill);
        } else if u.slots.contains_key("provider") || u.slots.contains_key("specialty") {
            u.intent = intent_of(crate::flow::Action::Book);
        }
    }

    u.no_preference = NO_PREFERENCE.iter().any(|p| contains_phrase(&ws, p));
    u.choice = if contains_phrase(&ws, "first") || contains_phrase(&ws, "earlier") {
        Some(0)
    } else if contains_phrase(&ws, "second")
        || contains_phrase(&ws, "later")
        || contains_phrase(&ws, "other")
    {
        Some(1)
    } else {
        None
    };

    // Dates: a full date with a past year is a date of birth.
    let dob = normalize::date_of_birth(&ws).filter(|d| d.year() >= 1900 && *d < ctx.today);
    let asked_dob = asking_kind == Some(SlotKind::DateOfBirth);
    if let Some(d) = dob.filter(|d| asked_dob || d.year() < ctx.today.year()) {
        u.slots
            .insert("date_of_birth".into(), d.format("%Y-%m-%d").to_string());
    } else if !asked_dob {
        if let Some((d, _, _)) = normalize::relative_date(&ws, ctx.today) {
            u.slots
                .insert("date".into(), d.format("%Y-%m-%d").to_string());
        }
    }
    // Times: a bare number only counts when the time was asked.
    if !asked_dob {
        let date_span = normalize::find_calendar_date(&ws).map(|d| (d.start, d.end));
        let rest: Vec<String> = ws
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if date_span.is_some_and(|(s, e)| i >= s && i < e) {
                    "_".to_string()
                } else {
                    w.clone()
                }
            })
            .collect();
        if let Some((t, _, _)) = normalize::time_of_day(&rest, asking_kind == Some(SlotKind::Time))
        {
            u.slots.insert("time".into(), t.format("%H:%M").to_string());
        }
    }
    // Names: when asked, or "my name is …".
    if asking_kind == Some(SlotKind::PersonName) {
        if let Some(n) = normalize::person_name(&ws) {
            u.slots.insert("patient_name".into(), n);
        }
    } else if let Some(i) = ws.windows(2).position(|w| w[0] == "name" && w[1] == "is") {
        let tail: Vec<String> = ws[i + 2..]
            .iter()
            .take_while(|w| !matches!(w.as_str(), "and" | "born" | "i"))
            .cloned()
            .collect();
        if let Some(n) = normalize::person_name(&tail).filter(|n| n.split(' ').count() >= 2) {
            u.slots.insert("patient_name".into(), n);
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_initiative() {
        let flow = Flow::clinic();
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let ctx = Context {
            today,
            asking: None,
            intent: None,
        };
        let c = Corrected {
            text: "Can I get an appointment next Monday at nine a m?".into(),
            ..Default::default()
        };
        let u = understand(&flow, &c, &ctx);
        assert_eq!(u.intent.as_deref(), Some("book_appointment"));
        assert_eq!(u.slots["date"], "2026-12-07");
        assert_eq!(u.slots["time"], "09:00");
        let c = Corrected {
            text: "I just want to talk to a real person.".into(),
            ..Default::default()
        };
        assert_eq!(
            understand(&flow, &c, &ctx).intent.as_deref(),
            Some("talk_to_staff")
        );
        let c = Corrected {
            text: "I have to cancel my appointment.".into(),
            ..Default::default()
        };
        assert_eq!(
            understand(&flow, &c, &ctx).intent.as_deref(),
            Some("cancel_appointment")
        );
    }
}
