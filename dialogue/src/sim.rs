//! Simulation for tests, examples and benchmarks: scenario files, a caller
//! that answers what it is asked, a seeded noisy recogniser, and generated
//! vocabularies and corrupted transcripts. Pure functions of their inputs
//! and seeds; the caller of these reads the files.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::flow::Flow;
use crate::lexicon::{Lexicon, TermKind};
use crate::manager::{ChatOutcome, Dialogue};
use crate::schedule::InMemoryScheduler;
use crate::turn::Expecting;

/// A small deterministic generator (SplitMix64): the same seed gives the
/// same corruptions on every platform and every version.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..1.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// True with probability p.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// One element.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
pub struct Scenario {
    /// The call's date.
    pub today: NaiveDate,
    /// The caller's first words.
    pub opening: String,
    /// Answers by slot name.
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
    /// What to say at the read-back.
    #[serde(default)]
    pub confirm: Confirm,
    /// Expected outcome, intent and slots.
    pub expect: BTreeMap<String, String>,
}

/// The caller's words at the read-back.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Confirm {
    /// First answer (default "yes").
    pub say: Option<String>,
    /// Answer to the next read-back.
    pub then: Option<String>,
}

impl Scenario {
    /// Parses a scenario file.
    pub fn from_toml(text: &str) -> Result<Scenario, toml::de::Error> {
        toml::from_str(text)
    }

    /// Fields of `expect` that differ from the outcome: (key, wanted, got).
    pub fn mismatches(&self, got: &ChatOutcome) -> Vec<(String, String, Option<String>)> {
        self.expect
            .iter()
            .filter_map(|(k, want)| {
                let have = match k.as_str() {
                    "outcome" => Some(got.outcome.clone()),
                    "intent" => got.intent.clone(),
                    _ => got.slots.get(k).cloned(),
                };
                (have.as_deref() != Some(want.as_str())).then(|| (k.clone(), want.clone(), have))
            })
            .collect()
    }
}

/// A conversation's lines: (caller heard by the bot, bot reply).
pub type Transcript = Vec<(String, String)>;

/// Plays a scenario against the dialogue: the caller answers the slot it is
/// asked for, confirms as the scenario says (correcting up to two wrong
/// values it hears in the read-back), names its choice when asked to
/// choose, and declines a transfer offer. `noise` corrupts what the caller
/// says before the dialogue hears it.
pub fn play(
    flow: &Flow,
    sc: &Scenario,
    noise: Option<&mut NoisyRecognizer>,
) -> (ChatOutcome, Transcript) {
    play_with(flow, sc, noise, true)
}

/// [`play`] with a choice: `listens = false` makes a caller who says yes to
/// any read-back (the stricter measure of recognition alone).
pub fn play_with(
    flow: &Flow,
    sc: &Scenario,
    mut noise: Option<&mut NoisyRecognizer>,
    listens: bool,
) -> (ChatOutcome, Transcript) {
    let mut call = Dialogue::new(
        flow,
        sc.today,
        InMemoryScheduler::from_lexicon(flow.lexicon()),
    );
    let mut transcript = Vec::new();
    let mut said = sc.opening.clone();
    let mut confirmations = 0;
    let mut fixes = 0;
    for _ in 0..25 {
        let heard = match noise.as_deref_mut() {
            Some(n) => n.hear(&said),
            None => said.clone(),
        };
        let turn = call.handle(&heard);
        transcript.push((heard, turn.reply.clone()));
        if call.is_done() {
            break;
        }
        said = match call.expecting() {
            Expecting::Slot(slot) => {
                let key = flow.output_key(slot);
                sc.answers
                    .get(slot)
                    .or_else(|| sc.answers.get(key))
                    .cloned()
                    .unwrap_or_else(|| {
                        // Asked again for something already said: say it again.
                        match key {
                            "provider" => sc
                                .expect
                                .get("provider")
                                .map(|p| p.replace("Dr.", "Doctor"))
                                .unwrap_or("no preference".into()),
                            _ => sc
                                .expect
                                .get(key)
                                .cloned()
                                .unwrap_or_else(|| sc.opening.clone()),
                        }
                    })
            }
            Expecting::Choice { candidates, .. } => {
                let want = ["provider", "medication", "specialty"]
                    .iter()
                    .find_map(|k| sc.expect.get(*k));
                match want.filter(|w| candidates.contains(w)) {
                    Some(w) => w.trim_start_matches("Dr. ").to_string(),
                    None => "the first one".to_string(),
                }
            }
            Expecting::Confirmation | Expecting::Change => {
                confirmations += 1;
                let scripted = match (confirmations, &sc.confirm.say, &sc.confirm.then) {
                    (1, Some(s), _) => Some(s.clone()),
                    _ => None,
                };
                // A caller listens to the read-back and corrects what is wrong.
                let wrong = || {
                    let now = call.outcome().slots;
                    sc.expect
                        .iter()
                        .find(|(k, v)| {
                            !matches!(k.as_str(), "outcome" | "intent") && now.get(*k) != Some(*v)
                        })
                        .map(|(k, _)| k.clone())
                };
                match scripted {
                    Some(s) => s,
                    None => match wrong().filter(|_| listens && fixes < 2) {
                        Some(key) => {
                            fixes += 1;
                            let answer = sc.answers.get(&key).cloned();
                            match key.as_str() {
                                "patient_name" => {
                                    format!("no, the name is {}", answer.unwrap_or_default())
                                }
                                "date_of_birth" => format!(
                                    "no, the date of birth is {}",
                                    answer.unwrap_or_default()
                                ),
                                "time" => {
                                    let t = chrono::NaiveTime::parse_from_str(
                                        &sc.expect[&key],
                                        "%H:%M",
                                    )
                                    .map(crate::normalize::speak_time);
                                    format!("no, at {}", t.unwrap_or_default())
                                }
                                "date" => {
                                    let d = NaiveDate::parse_from_str(&sc.expect[&key], "%Y-%m-%d")
                                        .map(|d| d.format("%B %-d").to_string());
                                    format!("no, on {}", d.unwrap_or_default())
                                }
                                "provider" => {
                                    format!("no, {}", sc.expect[&key].replace("Dr.", "Doctor"))
                                }
                                _ => format!(
                                    "no, {}",
                                    answer.unwrap_or_else(|| sc.expect[&key].clone())
                                ),
                            }
                        }
                        None => match (confirmations, &sc.confirm.then) {
                            (2, Some(t)) => t.clone(),
                            _ => "yes".into(),
                        },
                    },
                }
            }
            Expecting::Alternative => "the first one".into(),
            Expecting::TransferOffer => "no thanks".into(),
            Expecting::Intent => sc.opening.clone(),
            Expecting::Nothing => break,
        };
    }
    (call.outcome(), transcript)
}

/// How often the simulated recogniser errs.
#[derive(Debug, Clone, Copy)]
pub struct NoiseRates {
    /// A vocabulary word is misheard.
    pub term: f64,
    /// Any other word is swapped for a sound-alike.
    pub word: f64,
    /// Any word is dropped.
    pub drop: f64,
}

impl Default for NoiseRates {
    fn default() -> Self {
        NoiseRates {
            term: 0.5,
            word: 0.04,
            drop: 0.02,
        }
    }
}

/// Sound-alike swaps a general-purpose recogniser makes.
const NEIGHBOURS: &[(&str, &str)] = &[
    ("to", "two"),
    ("for", "four"),
    ("i", "eye"),
    ("right", "write"),
    ("see", "sea"),
    ("would", "wood"),
    ("an", "and"),
    ("my", "might"),
    ("need", "knead"),
    ("please", "pleas"),
    ("hi", "high"),
    ("doctor", "doctors"),
    ("book", "look"),
    ("with", "width"),
    ("about", "a bout"),
    ("appointment", "a point meant"),
    ("refill", "re fill"),
    ("yes", "yeah"),
    ("the", "a"),
    ("in", "and"),
];

/// Letter-level respellings that keep the sound.
const RESPELL: &[(&str, &str)] = &[
    ("ph", "f"),
    ("f", "ph"),
    ("c", "k"),
    ("k", "c"),
    ("y", "i"),
    ("i", "y"),
    ("ll", "l"),
    ("l", "ll"),
    ("tt", "t"),
    ("t", "tt"),
    ("ee", "ea"),
    ("ine", "een"),
    ("in", "en"),
    ("en", "in"),
    ("ol", "al"),
    ("am", "um"),
    ("an", "en"),
    ("on", "un"),
    ("er", "ur"),
    ("x", "cks"),
    ("z", "s"),
    ("s", "z"),
    ("qu", "kw"),
    ("ck", "k"),
    ("ide", "eyed"),
    ("ine", "in"),
];

/// A seeded simulation of a general-purpose recogniser hearing clinic words.
#[derive(Debug, Clone)]
pub struct NoisyRecognizer {
    rng: SplitMix64,
    rates: NoiseRates,
    /// Aliases (lower case words) of the vocabulary, longest first.
    terms: Vec<Vec<String>>,
    /// meant (compact) → heard, from the mishearing table.
    confusions: Vec<(String, String)>,
}

impl NoisyRecognizer {
    /// A recogniser that knows which words are the lexicon's terms.
    pub fn new(seed: u64, lexicon: &Lexicon, confusions_txt: &str, rates: NoiseRates) -> Self {
        let mut terms: Vec<Vec<String>> = lexicon
            .aliases
            .iter()
            .filter(|a| a.compact.len() > 4)
            .map(|a| a.surface.split(' ').map(str::to_string).collect())
            .collect();
        terms.sort_by_key(|t| std::cmp::Reverse(t.len()));
        let confusions = confusions_txt
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('\t'))
            .map(|(h, m)| (m.trim().to_lowercase(), h.trim().to_string()))
            .collect();
        NoisyRecognizer {
            rng: SplitMix64::new(seed),
            rates,
            terms,
            confusions,
        }
    }

    /// What the recogniser writes for `said`.
    pub fn hear(&mut self, said: &str) -> String {
        let ws: Vec<String> = crate::normalize::words(said);
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < ws.len() {
            let found = self
                .terms
                .iter()
                .find(|t| ws.len() >= i + t.len() && ws[i..i + t.len()] == t[..])
                .cloned();
            if let Some(t) = found {
                {
                    let joined = t.join(" ");
                    let heard = if self.rng.chance(self.rates.term) {
                        self.mishear_term(&joined)
                    } else {
                        joined
                    };
                    out.push(heard);
                    i += t.len();
                    continue;
                }
            }
            let w = &ws[i];
            i += 1;
            if self.rng.chance(self.rates.drop) && ws.len() > 2 {
                continue;
            }
            if self.rng.chance(self.rates.word) {
                if let Some((_, to)) = NEIGHBOURS.iter().find(|(from, _)| from == w) {
                    out.push(to.to_string());
                    continue;
                }
            }
            out.push(w.clone());
        }
        out.join(" ")
    }

    /// A misrecognition of one vocabulary term.
    pub fn mishear_term(&mut self, term: &str) -> String {
        let known: Vec<&String> = self
            .confusions
            .iter()
            .filter(|(m, _)| m == term)
            .map(|(_, h)| h)
            .collect();
        if !known.is_empty() && self.rng.chance(0.5) {
            return self.rng.pick(&known).to_string();
        }
        let mut s = term.to_string();
        // One or two sound-keeping respellings, then maybe a split into
        // word-like pieces ("simvastatin" → "sim va statin").
        for _ in 0..1 + self.rng.below(2) {
            let options: Vec<&(&str, &str)> =
                RESPELL.iter().filter(|(a, _)| s[1..].contains(a)).collect();
            if options.is_empty() {
                break;
            }
            let (a, b) = *self.rng.pick(&options);
            let starts: Vec<usize> = s
                .match_indices(a)
                .map(|(i, _)| i)
                .filter(|&i| i > 0)
                .collect();
            let at = *self.rng.pick(&starts);
            s.replace_range(at..at + a.len(), b);
        }
        // No letter three times in a row: recognisers write words.
        let mut squeezed = String::with_capacity(s.len());
        for c in s.chars() {
            if !squeezed.ends_with(&format!("{c}{c}")) {
                squeezed.push(c);
            }
        }
        s = squeezed;
        if s.len() > 7 && !s.contains(' ') && self.rng.chance(0.6) {
            s = split_syllables(&s);
        }
        s
    }
}

/// Splits a word after vowel groups into 2–4 pieces ("metformin" → "met for min").
fn split_syllables(w: &str) -> String {
    let b = w.as_bytes();
    let vowel = |c: u8| b"aeiouy".contains(&c);
    let mut cuts = Vec::new();
    let mut i = 1;
    while i + 2 < b.len() {
        if vowel(b[i]) && !vowel(b[i + 1]) && i + 3 < b.len() {
            // keep one consonant with the vowel ("met|for")
            let cut = if !vowel(b[i + 2]) { i + 2 } else { i + 1 };
            if cut > cuts.last().copied().unwrap_or(0) + 2 && b.len() - cut >= 3 {
                cuts.push(cut);
                i = cut + 1;
                continue;
            }
        }
        i += 1;
    }
    let mut out = String::new();
    let mut last = 0;
    for c in cuts {
        out.push_str(&w[last..c]);
        out.push(' ');
        last = c;
    }
    out.push_str(&w[last..]);
    out
}

/// A labelled transcript for the term-accuracy measurement.
#[derive(Debug, Clone)]
pub struct LabelledTranscript {
    /// What the caller said.
    pub said: String,
    /// What the recogniser wrote.
    pub heard: String,
    /// The canonical term said, if any.
    pub term: Option<(TermKind, String)>,
}

const MED_TEMPLATES: &[&str] = &[
    "I need a refill of my {}",
    "can you refill my {} please",
    "I am almost out of {}",
    "it's for {}",
    "{}",
    "I take {} every morning",
    "calling about my {} prescription",
];
const PROVIDER_TEMPLATES: &[&str] = &[
    "I want to see Doctor {}",
    "can I book with Doctor {} next week",
    "Doctor {} please",
    "my doctor is {}",
    "{}",
];
const SPECIALTY_TEMPLATES: &[&str] = &[
    "I need to see someone in {}",
    "do you have a {} opening",
    "I was told to see {}",
    "{} please",
    "{}",
];
const NO_TERM: &[&str] = &[
    "yes that's right",
    "no make it two p m instead",
    "my name is Linda Park",
    "I have to cancel my appointment",
    "next Tuesday at three in the afternoon",
    "the twelfth of July nineteen eighty",
    "I just want to talk to a real person",
    "can I come in tomorrow morning",
    "I'm calling for my mother",
    "she has been feeling dizzy",
    "any of them is fine",
    "no preference",
    "what time do you open",
    "is there parking at the clinic",
    "I'll hold thank you",
    "could you repeat that please",
    "my husband Mark Allen needs a checkup",
    "Susan Wright April ninth nineteen sixty six",
    "the pharmacy on Main Street",
    "I think I have the flu",
    "my back has been hurting since Monday",
    "can we do ten thirty in the morning",
    "Kevin Brooks June first nineteen ninety",
    "that works for me",
    "sorry I didn't catch that",
    "I need a new insurance card on file",
    "it's about my blood pressure",
    "my mother needs a ride",
    "I missed a call from this number",
    "Angela White October thirtieth",
    // Near misses: everyday words that sound like clinic terms.
    "my aunt is visiting next week",
    "I met a man at the pharmacy",
    "we had lasagna for dinner",
    "the patient portal is not working",
    "I left my golden retriever in the car",
    "she paddled to the island",
    "it's the petrol station on the corner",
    "he has heartburn after meals",
    "my sister Patty Kim drove me",
    "can you mention it to the nurse",
    "my son plays the violin",
    "the parking meter was broken",
    "I'm on the metro right now",
    "I take vitamins and fish oil",
    "my neighbor Mr Mueller is here",
    "the zone is closed on Sundays",
    "I need a letter for my employer",
    "my grandson Gabe is sick",
    "she went to the gallery",
    "I fell on the ice last week",
];

/// Generates `n` transcripts with a term (providers, specialties,
/// medications in turn) and `n_plain` without, corrupted by `noise` whose
/// term rate should be high (every term misheard is the hard case).
pub fn term_corpus(
    lexicon: &Lexicon,
    noise: &mut NoisyRecognizer,
    seed: u64,
    n: usize,
    n_plain: usize,
) -> Vec<LabelledTranscript> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(n + n_plain);
    let by_kind = |k: TermKind| -> Vec<&crate::lexicon::Term> {
        lexicon.terms().iter().filter(|t| t.kind == k).collect()
    };
    let meds = by_kind(TermKind::Medication);
    let provs = by_kind(TermKind::Provider);
    let specs = by_kind(TermKind::Specialty);
    for i in 0..n {
        let (kind, term, template) = match i % 3 {
            0 => (
                TermKind::Medication,
                *rng.pick(&meds),
                *rng.pick(MED_TEMPLATES),
            ),
            1 => (
                TermKind::Provider,
                *rng.pick(&provs),
                *rng.pick(PROVIDER_TEMPLATES),
            ),
            _ => (
                TermKind::Specialty,
                *rng.pick(&specs),
                *rng.pick(SPECIALTY_TEMPLATES),
            ),
        };
        // Say it the way callers do: a brand name, a surname, a spoken alias.
        let aliases: Vec<&str> = lexicon
            .aliases
            .iter()
            .filter(|a| lexicon.terms[a.term as usize].canonical == term.canonical && !a.exact_only)
            .map(|a| a.surface.as_str())
            .collect();
        let spoken = if aliases.is_empty() {
            term.canonical.to_lowercase()
        } else {
            rng.pick(&aliases).to_string()
        };
        let said = template.replace("{}", &spoken);
        let heard = noise.hear(&said);
        out.push(LabelledTranscript {
            said,
            heard,
            term: Some((kind, term.canonical.clone())),
        });
    }
    for _ in 0..n_plain {
        let said = rng.pick(NO_TERM).to_string();
        let heard = noise.hear(&said);
        out.push(LabelledTranscript {
            said,
            heard,
            term: None,
        });
    }
    out
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ra", "ten", "vor", "sel", "dan", "bru", "qui", "zan", "tho", "mer", "lin",
    "gar", "pe", "shi", "nov", "ta", "ber", "cal", "dre", "fin", "hol", "jor", "kes", "lam", "mon",
    "nad", "ost", "pra", "rin", "sto", "tum", "ven", "wil", "yar",
];
const DRUG_ENDINGS: &[&str] = &[
    "pril", "statin", "olol", "azole", "mab", "tidine", "sartan", "cillin", "mycin", "oxetine",
    "afil", "gliptin", "zepam", "dronate",
];

fn name_from(rng: &mut SplitMix64, parts: usize) -> String {
    let mut s = String::new();
    for _ in 0..parts {
        s.push_str(SYLLABLES[rng.below(SYLLABLES.len())]);
    }
    s
}

/// Vocabulary files' text with `providers` and `medications` entries: the
/// given ones first, then generated names (for the benchmark).
pub fn synthetic_vocabulary(
    base_providers: &str,
    base_medications: &str,
    providers: usize,
    medications: usize,
    seed: u64,
) -> (String, String) {
    let mut rng = SplitMix64::new(seed);
    let specialties = [
        "family medicine",
        "cardiology",
        "dermatology",
        "ENT",
        "pediatrics",
        "neurology",
        "urology",
        "oncology",
    ];
    let mut p: Vec<String> = base_providers
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    while p.len() < providers {
        let first = crate::normalize::capitalise(&name_from(&mut rng, 2));
        let parts = 2 + rng.below(2);
        let last = crate::normalize::capitalise(&name_from(&mut rng, parts));
        p.push(format!("Dr. {first} {last}\t{}", rng.pick(&specialties)));
    }
    let mut m: Vec<String> = base_medications
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    while m.len() < medications {
        let parts = 1 + rng.below(2);
        let stem = name_from(&mut rng, parts);
        let generic = format!("{stem}{}", DRUG_ENDINGS[rng.below(DRUG_ENDINGS.len())]);
        let brand = crate::normalize::capitalise(&name_from(&mut rng, 2));
        m.push(format!("{generic}\t{brand}"));
    }
    (p.join("\n"), m.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syllables_split_like_a_recogniser() {
        assert_eq!(split_syllables("metformin"), "met for min");
        assert_eq!(split_syllables("simvastatin"), "sim vas tatin");
    }
}
