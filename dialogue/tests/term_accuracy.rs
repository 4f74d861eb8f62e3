//! Term accuracy before and after correction on generated, corrupted
//! transcripts, and the false-correction rate on transcripts with no term.
//! Run with `--nocapture` to see the numbers.
mod common;

use echo_dialogue::sim::{term_corpus, NoiseRates, NoisyRecognizer};
use echo_dialogue::{Corrected, TermKind, Thresholds, VocabularyCorrector};

struct Score {
    right: usize,
    total: usize,
    false_hits: usize,
    plain: usize,
    ambiguous: usize,
}

/// Right when the distinct terms found are exactly the one said.
fn found_exactly(c: &Corrected, canonical: &str) -> bool {
    !c.terms.is_empty() && c.terms.iter().all(|t| t.to == canonical)
}

fn score(
    corrector: &VocabularyCorrector,
    bias: bool,
    corpus: &[echo_dialogue::sim::LabelledTranscript],
) -> Score {
    let mut s = Score {
        right: 0,
        total: 0,
        false_hits: 0,
        plain: 0,
        ambiguous: 0,
    };
    for t in corpus {
        // The slot being asked biases correction: a medication is expected
        // after "which medication?" (the generated sentences are answers).
        let expected = if bias {
            t.term.as_ref().map(|(k, _)| *k)
        } else {
            None
        };
        let c: Corrected = corrector.correct(&t.heard, expected);
        match &t.term {
            Some((_, canonical)) => {
                s.total += 1;
                if found_exactly(&c, canonical) {
                    s.right += 1;
                } else if !c.ambiguities.is_empty() {
                    s.ambiguous += 1;
                }
            }
            None => {
                s.plain += 1;
                if !c.terms.is_empty() || !c.ambiguities.is_empty() {
                    s.false_hits += 1;
                }
            }
        }
    }
    s
}

fn pct(a: usize, b: usize) -> f64 {
    100.0 * a as f64 / b.max(1) as f64
}

#[test]
fn term_accuracy_before_and_after_correction() {
    let v = common::Vocabulary::load();
    let flow = common::clinic_flow();
    let lexicon = flow.lexicon().clone();
    // Every term is misheard with probability 0.7; other words as in the scenarios' noise.
    let rates = NoiseRates {
        term: 0.7,
        ..NoiseRates::default()
    };
    let mut noise = NoisyRecognizer::new(42, &lexicon, &v.confusions, rates);
    let corpus = term_corpus(&lexicon, &mut noise, 42, 600, 300);

    let exact_only = VocabularyCorrector::new(lexicon.clone()).with_thresholds(Thresholds {
        accept: 1.0,
        accept_expected: 1.0,
        margin: 0.0,
    });
    let corrector = VocabularyCorrector::new(lexicon);
    let before = score(&exact_only, false, &corpus);
    let after = score(&corrector, false, &corpus);
    let biased = score(&corrector, true, &corpus);
    let misheard = corpus
        .iter()
        .filter(|t| t.term.is_some() && t.said != t.heard)
        .count();
    println!(
        "term transcripts: {} ({} with the term misheard), plain transcripts: {}",
        before.total, misheard, before.plain
    );
    println!(
        "term accuracy before correction (exact aliases only): {:.1} %",
        pct(before.right, before.total)
    );
    println!(
        "term accuracy after correction, no slot hint: {:.1} % ({} ambiguous → asked)",
        pct(after.right, after.total),
        after.ambiguous
    );
    println!(
        "term accuracy after correction, biased by the slot asked: {:.1} % ({} ambiguous → asked)",
        pct(biased.right, biased.total),
        biased.ambiguous
    );
    println!(
        "false-correction rate on transcripts with no term: {:.1} %",
        pct(after.false_hits, after.plain)
    );
    for kind in [
        TermKind::Provider,
        TermKind::Specialty,
        TermKind::Medication,
    ] {
        // The same plain transcripts heard right after the bot asked for this kind.
        let plain: Vec<_> = corpus.iter().filter(|t| t.term.is_none()).collect();
        let wrong = plain
            .iter()
            .filter(|t| {
                let c = corrector.correct(&t.heard, Some(kind));
                let bad = !c.terms.is_empty() || !c.ambiguities.is_empty();
                if bad && std::env::var_os("SHOW_MISSES").is_some() {
                    println!(
                        "FALSE {kind:?} heard={:?} got={:?} amb={:?}",
                        t.heard, c.terms, c.ambiguities
                    );
                }
                bad
            })
            .count();
        println!(
            "false-correction rate when a {kind:?} is expected: {:.1} %",
            pct(wrong, plain.len())
        );
    }
    for kind in [
        TermKind::Provider,
        TermKind::Specialty,
        TermKind::Medication,
    ] {
        let sub: Vec<_> = corpus
            .iter()
            .filter(|t| t.term.as_ref().is_some_and(|(k, _)| *k == kind))
            .cloned()
            .collect();
        let s = score(&corrector, false, &sub);
        println!("  {kind:?}: {:.1} % of {}", pct(s.right, s.total), s.total);
    }
    // Calibration: how often a term taken at a given score is the one said.
    let buckets = [
        (0.74, 0.84),
        (0.84, 0.9),
        (0.9, 0.95),
        (0.95, 1.0),
        (1.0, 1.01),
    ];
    let mut counts = vec![(0usize, 0usize); buckets.len()];
    for t in &corpus {
        let expected = t.term.as_ref().map(|(k, _)| *k);
        for found in corrector.correct(&t.heard, expected).terms {
            let right = t.term.as_ref().is_some_and(|(_, c)| *c == found.to);
            if let Some(b) = buckets
                .iter()
                .position(|(lo, hi)| found.score >= *lo && found.score < *hi)
            {
                counts[b].0 += usize::from(right);
                counts[b].1 += 1;
            }
        }
    }
    for ((lo, hi), (right, n)) in buckets.iter().zip(&counts) {
        println!(
            "  score {lo:.2}..{hi:.2}: {right}/{n} right ({:.1} %)",
            pct(*right, *n)
        );
    }
    if std::env::var_os("SHOW_MISSES").is_some() {
        for t in &corpus {
            let c = corrector.correct(&t.heard, None);
            let ok = match &t.term {
                Some((_, canonical)) => found_exactly(&c, canonical),
                None => c.terms.is_empty() && c.ambiguities.is_empty(),
            };
            if !ok {
                println!(
                    "MISS {:?} said={:?} heard={:?} got={:?} amb={:?}",
                    t.term, t.said, t.heard, c.terms, c.ambiguities
                );
            }
        }
    }
    assert!(before.total >= 300 && before.plain >= 100);
    assert!(
        pct(after.right, after.total) > 94.0,
        "accuracy after correction"
    );
    assert!(
        pct(after.false_hits, after.plain) < 3.0,
        "false corrections"
    );
}
