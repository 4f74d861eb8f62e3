//! Correction cost per utterance with a lexicon of the seed's size:
//! 2,000 providers and 500 medications (the clinic's, plus generated names).
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use echo_dialogue::sim::synthetic_vocabulary;
use echo_dialogue::{Lexicon, TermKind, VocabularyCorrector, VocabularySources};

fn read(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/clinic")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn bench(c: &mut Criterion) {
    let (providers, medications) = synthetic_vocabulary(
        &read("providers.txt"),
        &read("medications.txt"),
        2000,
        500,
        7,
    );
    let specialties = read("specialties.txt");
    let confusions = read("confusions.txt");
    let lexicon = Lexicon::parse(&VocabularySources {
        providers: &providers,
        specialties: &specialties,
        medications: &medications,
        confusions: &confusions,
    })
    .expect("lexicon");
    let corrector = VocabularyCorrector::new(lexicon);
    let utterances = [
        (
            "I need a refill of my met for men please",
            Some(TermKind::Medication),
        ),
        (
            "Can I get an appointment with Doctor Nguyen next Monday at nine a m?",
            None,
        ),
        ("I need to see someone in aunt about my ears", None),
        ("sim va statin", Some(TermKind::Medication)),
        ("no, make it two p m instead", None),
        (
            "my mother needs to see a heart doctor as soon as possible please",
            None,
        ),
    ];
    c.bench_function(
        "correct/2000 providers, 500 medications, mixed utterances",
        |b| {
            b.iter(|| {
                for (u, k) in &utterances {
                    std::hint::black_box(corrector.correct(u, *k));
                }
            })
        },
    );
    for (u, k) in &utterances {
        c.bench_function(&format!("correct/{u}"), |b| {
            b.iter(|| std::hint::black_box(corrector.correct(u, *k)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
