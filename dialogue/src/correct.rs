//! Vocabulary-biased correction: finds the clinic's terms in a raw
//! transcript, also when the recogniser misheard them, by comparing word
//! n-grams of the transcript with every alias on two levels: the phonetic
//! key (see [`crate::phonetic`]) and the spelling, both by edit distance.
//!
//! Scores are in 0..=1 and read as "how sure": 1.0 is an exact alias, a
//! known mishearing scores [`KNOWN_MISHEARING`], fuzzy matches score
//! `1 - (0.6·key distance + 0.4·folded-spelling distance) - 0.1·raw spelling distance` (distances normalised
//! by length). A match is taken when it reaches [`Thresholds::accept`]
//! (lower when the bot just asked for that kind of term) and leads the
//! best other term by [`Thresholds::margin`]; two terms closer than that
//! are reported as an [`Ambiguity`] so the bot can ask; below the threshold
//! the text is left alone. Thresholds were set on the generated development
//! set (see `examples/term_accuracy.rs`).

use crate::lexicon::{Lexicon, TermKind};
use crate::phonetic;

/// Score given to a hit from the table of known mishearings.
pub const KNOWN_MISHEARING: f32 = 0.99;

/// Weight of the phonetic-key distance in a fuzzy score (the rest is the
/// folded spelling's distance).
pub const KEY_WEIGHT: f32 = 0.6;

/// Acceptance thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Lowest score taken without a hint.
    pub accept: f32,
    /// Lowest score taken for the kind of term the bot just asked for.
    pub accept_expected: f32,
    /// Two terms whose scores differ by less are ambiguous.
    pub margin: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            accept: 0.84,
            accept_expected: 0.74,
            margin: 0.05,
        }
    }
}

/// A vocabulary term found in the transcript.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Correction {
    /// Byte range in the raw transcript.
    pub span: (usize, usize),
    /// The words heard.
    pub from: String,
    /// The canonical term.
    pub to: String,
    /// What kind of term.
    pub kind: TermKind,
    /// Confidence, 0..=1.
    pub score: f32,
}

/// Two or more terms too close to choose between.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Ambiguity {
    /// Byte range in the raw transcript.
    pub span: (usize, usize),
    /// The words heard.
    pub from: String,
    /// Canonical names of the candidates, best first.
    pub candidates: Vec<String>,
    /// What kind of term.
    pub kind: TermKind,
}

/// The result of correcting one transcript.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Corrected {
    /// The transcript with misheard terms replaced by their canonical names.
    pub text: String,
    /// Every term found: exact mentions (score 1) and corrections.
    pub terms: Vec<Correction>,
    /// Spans where two terms were too close to choose.
    pub ambiguities: Vec<Ambiguity>,
}

impl Corrected {
    /// Only the spans whose words were changed (not exact mentions).
    pub fn changes(&self) -> impl Iterator<Item = &Correction> {
        self.terms.iter().filter(|c| c.score < 1.0)
    }
}

/// Words never taken as the first or last word of a term on their own.
const STOP: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "my",
    "to",
    "and",
    "i",
    "is",
    "it",
    "in",
    "on",
    "at",
    "for",
    "with",
    "me",
    "you",
    "can",
    "please",
    "want",
    "need",
    "would",
    "like",
    "see",
    "some",
    "someone",
    "doctor",
    "dr",
    "doc",
    "appointment",
    "refill",
    "book",
    "next",
    "this",
    "that",
    "about",
    "get",
    "have",
    "hi",
    "hello",
    "yes",
    "no",
    "am",
    "pm",
    "m",
    "p",
    "be",
    "do",
    "was",
    "are",
    "her",
    "his",
    "our",
    "your",
    "we",
    "they",
    "them",
    "what",
    "when",
    "how",
    "there",
    "here",
    "up",
    "out",
    "just",
    "so",
    "but",
    "or",
    "if",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "time",
    "day",
    "morning",
    "afternoon",
    "name",
    "mother",
    "father",
    "son",
    "daughter",
    "wife",
    "husband",
    "calling",
    "call",
    "could",
    "will",
    "thank",
    "thanks",
    "okay",
    "ok",
    "right",
    "good",
    "fine",
    "sure",
    "again",
    "today",
    "tomorrow",
    "week",
    "prescription",
    "medication",
    "medicine",
    "pills",
    "running",
    "cancel",
    "person",
    "talk",
    "speak",
    "real",
    "from",
    "by",
    "any",
    "all",
    "not",
    "as",
    "soon",
    "possible",
    "needs",
    "needed",
    "very",
    "much",
    "been",
    "has",
    "had",
    "did",
    "does",
];

/// Common words that are never corrected on their own (single-word n-grams).
const COMMON: &[&str] = &[
    "meeting",
    "mention",
    "morning",
    "evening",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "because",
    "better",
    "really",
    "actually",
    "maybe",
    "perfect",
    "thirty",
    "fifteen",
    "forty",
    "twenty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "nineteen",
    "thousand",
    "hundred",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "twelfth",
    "tonight",
    "feeling",
    "having",
    "little",
    "pressure",
    "pharmacy",
    "insurance",
    "mister",
    "missus",
    "number",
    "please",
    "schedule",
    "available",
    "possible",
    "preference",
    "whoever",
    "anyone",
    "anybody",
    "somebody",
    "needed",
    "question",
    "pain",
    "back",
    "after",
    "before",
    "later",
    "earlier",
    "problem",
    "checkup",
    "check",
    "follow",
    "sorry",
    "there",
    "where",
    "which",
    "while",
    "would",
    "should",
    "could",
    "other",
    "another",
    "those",
    "these",
    "think",
    "thing",
    "something",
    "nothing",
    "everything",
    "ready",
    "still",
    "already",
    "always",
    "never",
    "often",
    "again",
    "ears",
    "ear",
    "eyes",
    "skin",
    "heart",
    "rash",
    "cough",
    "fever",
    "help",
    "thanks",
    "name",
    "patient",
    "office",
    "clinic",
    "aunt",
    "uncle",
    "kind",
    "kinds",
    "mine",
    "times",
    "instead",
    "change",
    "make",
    "made",
    "same",
    "different",
    "people",
];

fn is_stop(w: &str) -> bool {
    STOP.contains(&w)
}

/// Edit distance between two byte strings.
pub fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    if a.is_empty() {
        return b.len();
    }
    let mut row: [usize; 64] = [0; 64];
    if b.len() >= row.len() {
        return a.len().max(b.len());
    }
    for (j, r) in row.iter_mut().enumerate().take(b.len() + 1) {
        *r = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != cb)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

fn distance(a: &str, b: &str) -> f32 {
    let m = a.len().max(b.len()).max(1);
    levenshtein(a.as_bytes(), b.as_bytes()) as f32 / m as f32
}

/// One word of the transcript with its byte range.
#[derive(Debug, Clone)]
struct Word {
    lower: String,
    letters: String,
    start: usize,
    end: usize,
}

fn tokens(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        let inner = c.is_alphanumeric() || c == '\'' || c == '-' || c == '.';
        match (inner, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let raw = text[s..i].trim_end_matches('.');
                if !raw.is_empty() {
                    let lower = raw.to_lowercase();
                    let letters = lower.chars().filter(char::is_ascii_alphabetic).collect();
                    out.push(Word {
                        lower,
                        letters,
                        start: s,
                        end: s + raw.len(),
                    });
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
struct Hit {
    i: usize,
    n: usize,
    term: u32,
    score: f32,
}

/// Finds and corrects vocabulary terms in transcripts.
#[derive(Debug, Clone, Default)]
pub struct VocabularyCorrector {
    lexicon: Lexicon,
    thresholds: Thresholds,
}

impl VocabularyCorrector {
    /// A corrector over `lexicon` with the default thresholds.
    pub fn new(lexicon: Lexicon) -> Self {
        VocabularyCorrector {
            lexicon,
            thresholds: Thresholds::default(),
        }
    }

    /// Replaces the thresholds.
    pub fn with_thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// The lexicon.
    pub fn lexicon(&self) -> &Lexicon {
        &self.lexicon
    }

    /// Finds terms in `text`; `expected` is the kind the bot just asked for.
    pub fn correct(&self, text: &str, expected: Option<TermKind>) -> Corrected {
        let ws = tokens(text);
        let mut hits: Vec<Hit> = Vec::new();
        let mut scratch = String::new();
        for i in 0..ws.len() {
            // "Doctor Patel", "my doctor is Patel": a title just before.
            let titled = ws[i.saturating_sub(2)..i]
                .iter()
                .any(|w| Lexicon::is_title(&w.lower));
            for n in 1..=4.min(ws.len() - i) {
                scratch.clear();
                for w in &ws[i..i + n] {
                    scratch.push_str(&w.letters);
                }
                if scratch.is_empty() {
                    continue;
                }
                // Stop words may sit inside a fuzzy match but not at its edges;
                // exact aliases ("heart doctor") are always looked up.
                let edge =
                    |w: &Word| !is_stop(&w.lower) || self.lexicon.alias_words.contains(&w.lower);
                let fuzzy = edge(&ws[i]) && edge(&ws[i + n - 1]) && !is_stop(&ws[i].lower);
                // A surname said on its own is an answer naming a doctor.
                let titled = titled || n == ws.len();
                self.score_ngram(&ws, i, n, &scratch, titled, expected, fuzzy, &mut hits);
            }
        }
        self.choose(text, &ws, hits, expected)
    }

    #[allow(clippy::too_many_arguments)]
    fn score_ngram(
        &self,
        ws: &[Word],
        i: usize,
        n: usize,
        compact: &str,
        titled: bool,
        expected: Option<TermKind>,
        fuzzy: bool,
        hits: &mut Vec<Hit>,
    ) {
        let lx = &self.lexicon;
        let heard: Vec<&str> = ws[i..i + n].iter().map(|w| w.lower.as_str()).collect();
        // A mishearing that is an everyday word ("aunt") only counts where a
        // term is expected: asked for, or after "in", "see", "with", "an".
        let prev = if i > 0 { ws[i - 1].lower.as_str() } else { "" };
        for (cw, term) in &lx.confusions {
            if cw.len() == n && cw.iter().zip(&heard).all(|(a, b)| a == b) {
                let everyday = n == 1 && COMMON.contains(&heard[0]);
                let possessive = matches!(prev, "my" | "his" | "her" | "our" | "their" | "your");
                let cued = (expected == Some(lx.terms[*term as usize].kind) && !possessive)
                    || matches!(prev, "in" | "see" | "with" | "an" | "from");
                if everyday && !cued {
                    continue;
                }
                hits.push(Hit {
                    i,
                    n,
                    term: *term,
                    score: KNOWN_MISHEARING,
                });
            }
        }
        // A surname right after another first name or "Mr" is someone else
        // ("my sister Patty Kim"), even when a doctor was asked for.
        let foreign = i > 0 && !is_stop(prev) && !Lexicon::is_title(prev);
        let allowed = |needs_title: bool, kind: TermKind| {
            !needs_title || titled || (expected == Some(kind) && !foreign)
        };
        if let Some(ids) = lx.by_compact.get(compact) {
            for &a in ids {
                let al = &lx.aliases[a as usize];
                let kind = lx.terms[al.term as usize].kind;
                if !allowed(al.needs_title, kind) {
                    continue;
                }
                let same_words = al
                    .surface
                    .split(' ')
                    .eq(heard.iter().map(|w| w.trim_matches('.')));
                let score = if same_words || al.surface.split(' ').count() == 1 && n == 1 {
                    1.0
                } else {
                    0.98
                };
                hits.push(Hit {
                    i,
                    n,
                    term: al.term,
                    score,
                });
            }
        }
        if !fuzzy || n == 1 && COMMON.contains(&heard[0]) {
            return;
        }
        if compact.len() < 4 {
            return;
        }
        let key = phonetic::key(compact);
        let folded = phonetic::fold_spelling(compact);
        let Some(k0) = key.as_bytes().first() else {
            return;
        };
        let Some(ids) = lx.by_initial.get(k0) else {
            return;
        };
        for &a in ids {
            let al = &lx.aliases[a as usize];
            if al.exact_only
                || al.compact == compact
                || al.compact.len().abs_diff(compact.len()) > 3
            {
                continue;
            }
            let kind = lx.terms[al.term as usize].kind;
            if !allowed(al.needs_title, kind) {
                continue;
            }
            // Cheap bounds first: a key whose length differs by more than half
            // cannot score, and spelling alone cannot lift a far key.
            if 2 * al.key.len().abs_diff(key.len()) > al.key.len().max(key.len()) {
                continue;
            }
            let kd = distance(&key, &al.key);
            if kd > 0.5 {
                continue;
            }
            let sd = distance(&folded, &al.folded);
            // A respelling never ties with the exact word: the raw spelling
            // distance takes a little off ("Patell" is not "Patel").
            let raw = distance(compact, &al.compact);
            let score = (1.0 - (KEY_WEIGHT * kd + (1.0 - KEY_WEIGHT) * sd) - 0.1 * raw).min(0.98);
            if score
                >= self.thresholds.accept_expected.min(self.thresholds.accept)
                    - self.thresholds.margin
            {
                hits.push(Hit {
                    i,
                    n,
                    term: al.term,
                    score,
                });
            }
        }
    }

    fn choose(
        &self,
        text: &str,
        ws: &[Word],
        mut hits: Vec<Hit>,
        expected: Option<TermKind>,
    ) -> Corrected {
        let lx = &self.lexicon;
        let th = self.thresholds;
        let threshold = |term: u32| {
            if Some(lx.terms[term as usize].kind) == expected {
                th.accept_expected
            } else {
                th.accept
            }
        };
        // Best score per (span, term) first, then spans by score, longer first.
        hits.sort_by(|a, b| {
            b.score
                .partial_cmp(&a.score)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.n.cmp(&a.n))
                .then(a.i.cmp(&b.i))
        });
        let mut taken = vec![false; ws.len()];
        let mut out = Corrected::default();
        let mut replacements: Vec<(usize, usize, String)> = Vec::new();
        for h in &hits {
            if h.score < threshold(h.term) || taken[h.i..h.i + h.n].iter().any(|t| *t) {
                continue;
            }
            // Rivals: other terms over an overlapping span, within the margin.
            let mut rivals: Vec<(u32, f32)> = hits
                .iter()
                .filter(|o| o.term != h.term && o.i < h.i + h.n && h.i < o.i + o.n)
                .filter(|o| o.score >= threshold(o.term) && h.score - o.score < th.margin)
                .filter(|o| !(h.score >= 1.0 && o.score < 1.0))
                .map(|o| (o.term, o.score))
                .collect();
            rivals.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
            rivals.dedup_by_key(|r| r.0);
            for t in &mut taken[h.i..h.i + h.n] {
                *t = true;
            }
            let span = (ws[h.i].start, ws[h.i + h.n - 1].end);
            let from = text[span.0..span.1].to_string();
            let term = &lx.terms[h.term as usize];
            if !rivals.is_empty() {
                let mut candidates = vec![term.canonical.clone()];
                candidates.extend(
                    rivals
                        .iter()
                        .map(|r| lx.terms[r.0 as usize].canonical.clone()),
                );
                candidates.dedup();
                out.ambiguities.push(Ambiguity {
                    span,
                    from,
                    candidates,
                    kind: term.kind,
                });
                continue;
            }
            if h.score < 1.0 {
                replacements.push((span.0, span.1, term.canonical.clone()));
            }
            out.terms.push(Correction {
                span,
                from,
                to: term.canonical.clone(),
                kind: term.kind,
                score: h.score,
            });
        }
        out.terms.sort_by_key(|c| c.span.0);
        replacements.sort_by_key(|r| std::cmp::Reverse(r.0));
        let mut corrected = text.to_string();
        for (s, e, to) in replacements {
            corrected.replace_range(s..e, &to);
        }
        out.text = corrected;
        out
    }
}
