//! Vocabulary correction over the clinic's development vocabulary.
mod common;

use echo_dialogue::{Lexicon, TermKind, VocabularyCorrector, VocabularySources};

fn corrector() -> VocabularyCorrector {
    VocabularyCorrector::new(common::clinic_flow().lexicon().clone())
}

#[test]
fn misheard_terms_are_corrected() {
    let c = corrector();
    let cases = [
        (
            "I need a refill of my met for men please",
            None,
            "metformin",
        ),
        ("sim va statin", Some(TermKind::Medication), "simvastatin"),
        ("refill my sim va statin", None, "simvastatin"),
        ("I need to see someone in aunt about my ears", None, "ENT"),
        ("I need to see someone in E N T", None, "ENT"),
        ("I am running out of my Lipitor", None, "atorvastatin"),
        ("gaba pen tin", None, "gabapentin"),
        ("lisa no pril", Some(TermKind::Medication), "lisinopril"),
        ("Doctor Patel", None, "Dr. Anika Patel"),
        ("Doctor Patell", None, "Dr. Sean Patell"),
        ("Doctor Nguyen next Monday at nine", None, "Dr. Minh Nguyen"),
        ("a heart doctor", None, "cardiology"),
        ("Doctor Hernandes", None, "Dr. Rafael Hernandez"),
    ];
    for (heard, bias, want) in cases {
        let got = c.correct(heard, bias);
        assert_eq!(
            got.terms.iter().map(|t| t.to.as_str()).collect::<Vec<_>>(),
            vec![want],
            "{heard}: {got:?}"
        );
    }
}

#[test]
fn the_turn_keeps_span_from_to_and_score() {
    let c = corrector();
    let heard = "I need a refill of my met for men please";
    let got = c.correct(heard, None);
    let t = &got.terms[0];
    assert_eq!(&heard[t.span.0..t.span.1], "met for men");
    assert_eq!(
        (t.from.as_str(), t.to.as_str()),
        ("met for men", "metformin")
    );
    assert!(t.score > 0.9 && t.score < 1.0);
    assert_eq!(got.text, "I need a refill of my metformin please");
}

#[test]
fn nothing_close_leaves_the_text_alone() {
    let c = corrector();
    for heard in [
        "my name is Linda Park",
        "I just want to talk to a real person",
        "the twelfth of July nineteen eighty",
        "no, make it two p m instead",
        "my aunt has a cold",
        "is there parking at the clinic",
    ] {
        let got = c.correct(heard, None);
        assert!(
            got.terms.is_empty() && got.ambiguities.is_empty(),
            "{heard}: {got:?}"
        );
        assert_eq!(got.text, heard);
    }
}

#[test]
fn two_close_providers_are_a_question_not_a_guess() {
    let c = corrector();
    let got = c.correct("Doctor Pattell", Some(TermKind::Provider));
    assert!(got.terms.is_empty(), "{got:?}");
    let a = &got.ambiguities[0];
    assert!(
        a.candidates.contains(&"Dr. Anika Patel".to_string())
            && a.candidates.contains(&"Dr. Sean Patell".to_string())
    );
}

#[test]
fn a_new_drug_is_corrected_without_code_changes() {
    let v = common::Vocabulary::load();
    let meds = format!("{}\ntirzepatide\tMounjaro\n", v.medications);
    let lx = Lexicon::parse(&VocabularySources {
        medications: &meds,
        ..v.sources()
    })
    .unwrap();
    let c = VocabularyCorrector::new(lx);
    for heard in ["refill my teer zep a tide", "my moun jar oh"] {
        let got = c.correct(heard, Some(TermKind::Medication));
        assert_eq!(
            got.terms.first().map(|t| t.to.as_str()),
            Some("tirzepatide"),
            "{heard}: {got:?}"
        );
    }
}

#[test]
fn the_slot_asked_biases_correction() {
    let c = corrector();
    // Weak evidence: taken when a medication was just asked for, not otherwise.
    let heard = "pred nee zone";
    let unbiased = c.correct(heard, None);
    let biased = c.correct(heard, Some(TermKind::Medication));
    assert_eq!(
        biased.terms.first().map(|t| t.to.as_str()),
        Some("prednisone"),
        "{biased:?}"
    );
    assert!(
        unbiased.terms.iter().all(|t| t.score >= 0.84),
        "{unbiased:?}"
    );
}
