//! Every scenario in ../shared/data/scenarios/ as a text conversation: the
//! simulated caller answers what it is asked, and the call must end with the
//! expected outcome and slot values. Then the same with a noisy recogniser.
mod common;

use echo_dialogue::sim::{play, play_with, NoiseRates, NoisyRecognizer, Scenario};

#[test]
fn every_scenario_reaches_its_expected_outcome() {
    let flow = common::clinic_flow();
    let all = common::scenarios();
    assert!(all.len() >= 12, "found {} scenarios", all.len());
    let mut failures = Vec::new();
    for (name, text) in &all {
        let sc = Scenario::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (outcome, transcript) = play(&flow, &sc, None);
        let mut bad: Vec<(String, String, Option<String>)> = sc.mismatches(&outcome);
        // Only what the caller has not said is asked: every slot question
        // must be one the scenario has an answer for.
        let mut d = echo_dialogue::Dialogue::new(
            &flow,
            sc.today,
            echo_dialogue::InMemoryScheduler::from_lexicon(flow.lexicon()),
        );
        for (caller, _) in &transcript {
            d.handle(caller);
            if let echo_dialogue::Expecting::Slot(slot) = d.expecting() {
                if !sc.answers.contains_key(slot) && !sc.answers.contains_key(flow.output_key(slot))
                {
                    bad.push(("asked again".into(), slot.clone(), None));
                }
            }
        }
        if !bad.is_empty() {
            let lines: Vec<String> = transcript
                .iter()
                .map(|(c, b)| format!("  caller: {c}\n  bot:    {b}"))
                .collect();
            failures.push(format!("{name}: {bad:?}\n{}", lines.join("\n")));
        }
    }
    println!(
        "scenarios: {} passed, {} failed",
        all.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn scenarios_through_the_chat_protocol() {
    // The same conversations over the line protocol, answers read from the scenario.
    let flow = common::clinic_flow();
    for (name, text) in common::scenarios() {
        let sc = Scenario::from_toml(&text).unwrap();
        let (_, transcript) = play(&flow, &sc, None);
        let input: String = transcript.iter().map(|(c, _)| format!("{c}\n")).collect();
        let mut out = Vec::new();
        let outcome =
            echo_dialogue::chat::run(input.as_bytes(), &mut out, &flow, sc.today).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines.len(),
            transcript.len() + 2,
            "{name}: greeting + one line per turn + JSON\n{out}"
        );
        assert_eq!(lines[0], flow.greeting);
        let json: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        for (k, v) in &sc.expect {
            assert_eq!(json[k].as_str(), Some(v.as_str()), "{name}: {k}\n{out}");
        }
        assert!(sc.mismatches(&outcome).is_empty());
    }
}

/// Outcome rate with a seeded noisy recogniser (phonetic respellings and
/// splits of vocabulary words, the mishearing table, sound-alike swaps, word
/// drops). Reported, and held above a floor so a regression shows.
#[test]
fn noisy_recogniser_outcome_rate() {
    let flow = common::clinic_flow();
    let confusions = common::read("clinic/confusions.txt");
    let all = common::scenarios();
    let seeds = 20u64;
    let (mut ok, mut total) = (0, 0);
    let mut failed: Vec<String> = Vec::new();
    for seed in 0..seeds {
        let mut noise =
            NoisyRecognizer::new(seed, flow.lexicon(), &confusions, NoiseRates::default());
        for (name, text) in &all {
            let sc = Scenario::from_toml(text).unwrap();
            let (outcome, transcript) = play(&flow, &sc, Some(&mut noise));
            total += 1;
            if sc.mismatches(&outcome).is_empty() {
                ok += 1;
            } else if failed.len() < 5 {
                failed.push(format!(
                    "seed {seed} {name}: {:?}\n{:#?}",
                    sc.mismatches(&outcome),
                    transcript
                ));
            }
        }
    }
    let rate = ok as f64 / total as f64;
    println!(
        "noisy outcome rate (caller corrects a wrong read-back): {ok}/{total} = {:.1} %",
        100.0 * rate
    );
    let mut deaf_ok = 0;
    for seed in 0..seeds {
        let mut noise =
            NoisyRecognizer::new(seed, flow.lexicon(), &confusions, NoiseRates::default());
        for (_, text) in &all {
            let sc = Scenario::from_toml(text).unwrap();
            let (outcome, _) = play_with(&flow, &sc, Some(&mut noise), false);
            deaf_ok += usize::from(sc.mismatches(&outcome).is_empty());
        }
    }
    println!(
        "noisy outcome rate (caller says yes to any read-back): {deaf_ok}/{total} = {:.1} %",
        100.0 * deaf_ok as f64 / total as f64
    );
    for f in &failed {
        println!("{f}");
    }
    // A harsher recogniser, reported only.
    let harsh = NoiseRates {
        term: 0.9,
        word: 0.1,
        drop: 0.05,
    };
    for listens in [true, false] {
        let mut n_ok = 0;
        for seed in 0..seeds {
            let mut noise = NoisyRecognizer::new(seed, flow.lexicon(), &confusions, harsh);
            for (_, text) in &all {
                let sc = Scenario::from_toml(text).unwrap();
                let (outcome, _) = play_with(&flow, &sc, Some(&mut noise), listens);
                n_ok += usize::from(sc.mismatches(&outcome).is_empty());
            }
        }
        println!(
            "harsh noise {harsh:?}, caller listens: {listens}: {n_ok}/{total} = {:.1} %",
            100.0 * n_ok as f64 / total as f64
        );
    }
    assert!(rate >= 0.90, "noisy outcome rate {:.1} %", 100.0 * rate);
    assert!(
        deaf_ok as f64 / total as f64 >= 0.85,
        "noisy outcome rate without read-back corrections"
    );
}
