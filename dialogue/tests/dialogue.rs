//! Dialogue behaviours beyond the scenarios: rephrasing, transfer offers,
//! staff at any point, corrections, alternatives, disambiguation, the turn record.
mod common;

use chrono::{NaiveDate, NaiveTime};
use echo_dialogue::schedule::WorkingHours;
use echo_dialogue::{Dialogue, Expecting, InMemoryScheduler, TurnAction};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
}

#[test]
fn rephrases_after_two_failures_and_offers_transfer_after_three() {
    let flow = common::clinic_flow();
    let mut d = Dialogue::new(
        &flow,
        today(),
        InMemoryScheduler::from_lexicon(flow.lexicon()),
    );
    d.handle("I need a refill of my metformin please");
    d.handle("George Miller");
    assert_eq!(d.expecting(), &Expecting::Slot("date_of_birth".into()));
    let spec = &flow.slots["date_of_birth"];
    let r1 = d.handle("uh I'm not sure");
    assert!(r1.reply.ends_with(&spec.prompt), "{}", r1.reply);
    let r2 = d.handle("hmm");
    assert!(r2.reply.ends_with(&spec.rephrase), "{}", r2.reply);
    let r3 = d.handle("what");
    assert_eq!(r3.reply, flow.offer_transfer);
    assert_eq!(d.expecting(), &Expecting::TransferOffer);
    let r4 = d.handle("yes please");
    assert_eq!(r4.action, TurnAction::Transfer);
    assert_eq!(d.outcome().outcome, "transferred");
}

#[test]
fn a_person_can_be_asked_for_at_any_point() {
    let flow = common::clinic_flow();
    let mut d = Dialogue::new(
        &flow,
        today(),
        InMemoryScheduler::from_lexicon(flow.lexicon()),
    );
    d.handle("I want to book with Doctor Okafor");
    d.handle("Susan Wright");
    let t = d.handle("actually can I speak to someone at the front desk");
    assert_eq!(t.action, TurnAction::Transfer);
    let o = d.outcome();
    assert_eq!(
        (o.outcome.as_str(), o.intent.as_deref()),
        ("transferred", Some("book_appointment"))
    );
}

#[test]
fn mixed_initiative_asks_only_what_is_missing_and_reads_back() {
    let flow = common::clinic_flow();
    let mut d = Dialogue::new(
        &flow,
        today(),
        InMemoryScheduler::from_lexicon(flow.lexicon()),
    );
    let t = d.handle("Doctor Nguyen next Monday at nine");
    assert_eq!(t.slots["provider"], "Dr. Minh Nguyen");
    assert_eq!(t.slots["date"], "2026-12-07");
    assert_eq!(t.slots["time"], "09:00");
    assert_eq!(d.expecting(), &Expecting::Slot("patient_name".into()));
    d.handle("Linda Park");
    let t = d.handle("January twenty second nineteen seventy");
    assert_eq!(d.expecting(), &Expecting::Confirmation);
    assert!(
        t.reply.contains("Monday, December 7th at 9 AM") && t.reply.contains("Dr. Minh Nguyen"),
        "{}",
        t.reply
    );
    let t = d.handle("no, make it two p m instead");
    assert!(t.reply.contains("2 PM"), "{}", t.reply);
    let t = d.handle("yes");
    assert_eq!(t.action, TurnAction::HangUp);
    assert_eq!(d.outcome().slots["time"], "14:00");
}

#[test]
fn a_taken_slot_offers_the_nearest_alternatives() {
    let flow = common::clinic_flow();
    let mut s = InMemoryScheduler::default();
    s.add_provider(
        "Dr. Anika Patel",
        "family medicine",
        WorkingHours::default(),
    );
    let tue = NaiveDate::from_ymd_opt(2026, 12, 8).unwrap();
    s.block(
        "Dr. Anika Patel",
        tue,
        NaiveTime::from_hms_opt(15, 0, 0).unwrap(),
    );
    let mut d = Dialogue::new(&flow, today(), s);
    for line in [
        "book with Doctor Patel next Tuesday at three p m",
        "Maria Lopez",
        "March fourth nineteen fifty six",
    ] {
        d.handle(line);
    }
    let t = d.handle("yes");
    assert_eq!(d.expecting(), &Expecting::Alternative);
    assert!(t.filler.is_some());
    assert!(t.reply.contains("2:45 PM or 3:15 PM"), "{}", t.reply);
    let t = d.handle("the second one");
    assert!(t.reply.contains("3:15 PM"), "{}", t.reply);
    d.handle("yes");
    assert_eq!(d.outcome().outcome, "booked");
    assert_eq!(d.outcome().slots["time"], "15:15");
}

#[test]
fn two_close_providers_lead_to_a_question() {
    let flow = common::clinic_flow();
    let mut d = Dialogue::new(
        &flow,
        today(),
        InMemoryScheduler::from_lexicon(flow.lexicon()),
    );
    let t = d.handle("I'd like an appointment with Doctor Pattell");
    assert!(t.reply.starts_with("Did you mean"), "{}", t.reply);
    assert!(matches!(d.expecting(), Expecting::Choice { .. }));
    let t = d.handle("Sean");
    assert_eq!(t.slots["provider"], "Dr. Sean Patell");
}

#[test]
fn the_turn_record_keeps_raw_corrected_and_corrections() {
    let flow = common::clinic_flow();
    let mut d = Dialogue::new(
        &flow,
        today(),
        InMemoryScheduler::from_lexicon(flow.lexicon()),
    );
    let t = d.handle("I need a refill of my met for men please");
    assert_eq!(t.raw, "I need a refill of my met for men please");
    assert_eq!(t.corrected, "I need a refill of my metformin please");
    assert_eq!(t.corrections[0].to, "metformin");
    assert_eq!(t.intent.as_deref(), Some("refill"));
    assert_eq!(t.slots["medication"], "metformin");
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["corrections"][0]["from"], "met for men");
    // Debug output (what logs see) shows slot names, never values or words.
    for debug in [
        format!("{d:?}"),
        format!("{t:?}"),
        format!("{:?}", d.outcome()),
    ] {
        assert!(
            !debug.contains("metformin")
                && !debug.contains("met for")
                && debug.contains("medication"),
            "{debug}"
        );
    }
}

#[test]
fn past_days_are_refused() {
    let flow = common::clinic_flow();
    let mut d = Dialogue::new(
        &flow,
        today(),
        InMemoryScheduler::from_lexicon(flow.lexicon()),
    );
    d.handle("book with Doctor Patel");
    d.handle("Maria Lopez");
    d.handle("March fourth nineteen fifty six");
    let t = d.handle("November third");
    // "November third" without a year is next November; a spoken past year is refused.
    assert_eq!(t.slots.get("date").map(String::as_str), Some("2027-11-03"));
    let mut d = Dialogue::new(
        &flow,
        today(),
        InMemoryScheduler::from_lexicon(flow.lexicon()),
    );
    d.handle("book with Doctor Patel on November third twenty twenty six");
    assert!(!d.outcome().slots.contains_key("date"));
}

/// A stand-in for a language model: consulted only when the rules found nothing.
struct Fake;

impl echo_dialogue::LanguageModel for Fake {
    fn interpret(
        &self,
        _flow: &echo_dialogue::Flow,
        text: &str,
        _context: &echo_dialogue::understand::Context<'_>,
    ) -> Option<echo_dialogue::Understanding> {
        (text == "the usual, for my pressure pills").then(|| echo_dialogue::Understanding {
            intent: Some("refill".into()),
            ..Default::default()
        })
    }
}

#[test]
fn a_language_model_is_asked_only_when_the_rules_find_nothing() {
    let flow = common::clinic_flow();
    let model = Fake;
    let mut d = Dialogue::new(
        &flow,
        today(),
        InMemoryScheduler::from_lexicon(flow.lexicon()),
    )
    .with_model(&model);
    let t = d.handle("the usual, for my pressure pills");
    assert_eq!(t.intent.as_deref(), Some("refill"));
    assert_eq!(d.expecting(), &Expecting::Slot("medication".into()));
    let t = d.handle("lisinopril");
    assert_eq!(t.slots["medication"], "lisinopril");
}

#[test]
fn arbitrary_input_never_panics_and_always_answers() {
    let flow = common::clinic_flow();
    let pieces = [
        "Doctor",
        "ñandú",
        "12:",
        ":30",
        "quarter",
        "to",
        "one",
        "next",
        "the",
        "of",
        "July",
        "nineteen",
        "yes",
        "no",
        "met",
        "for",
        "men",
        "-",
        "'",
        "Ü",
        "2026-02-30",
        "31st",
        "p",
        "m",
        "Dr.",
        "Patell",
        "any",
        "cancel",
        "refill",
        "",
        "  ",
        "a.m.",
        "twenty",
        "thousand",
        "oh",
        "🙂",
        "first",
        "second",
        "talk",
    ];
    let mut rng = echo_dialogue::sim::SplitMix64::new(5);
    for _ in 0..200 {
        let mut d = Dialogue::new(
            &flow,
            today(),
            InMemoryScheduler::from_lexicon(flow.lexicon()),
        );
        for _ in 0..12 {
            let n = rng.below(8);
            let line: Vec<&str> = (0..n).map(|_| *rng.pick(&pieces)).collect();
            let t = d.handle(&line.join(" "));
            assert!(!t.reply.is_empty() && !t.reply.contains('\n'));
            if d.is_done() {
                break;
            }
        }
    }
}
