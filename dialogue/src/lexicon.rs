//! The clinic's vocabulary: providers with their specialty, specialties with
//! spoken aliases, medications with brand names, and known mishearings.
//! Built from the text of the vocabulary files; reading them is the caller's
//! job (this crate does no file I/O).

use std::collections::HashMap;

use crate::normalize::words;
use crate::phonetic;

/// What a vocabulary term names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TermKind {
    /// A provider ("Dr. Anika Patel").
    Provider,
    /// A specialty ("cardiology").
    Specialty,
    /// A medication's generic name ("atorvastatin").
    Medication,
}

/// One canonical vocabulary term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The canonical name, as the scenario format writes it.
    pub canonical: String,
    /// What it names.
    pub kind: TermKind,
    /// A provider's specialty (canonical), if any.
    pub specialty: Option<String>,
    /// A provider's surname, as it is read back ("Doctor Patel").
    pub surname: Option<String>,
}

/// One way of saying a term.
#[derive(Debug, Clone)]
pub(crate) struct Alias {
    pub(crate) term: u32,
    /// Lower-case words joined by single spaces.
    pub(crate) surface: String,
    /// Letters only, lower case.
    pub(crate) compact: String,
    pub(crate) key: String,
    /// The spelling folded by [`phonetic::fold_spelling`].
    pub(crate) folded: String,
    /// A surname alone only counts after "doctor" or when a provider is asked.
    pub(crate) needs_title: bool,
    /// Short aliases ("ENT", "GI", "Kim") are only matched exactly.
    pub(crate) exact_only: bool,
}

/// The text of a clinic's vocabulary files.
#[derive(Debug, Clone, Copy, Default)]
pub struct VocabularySources<'a> {
    /// providers.txt: `name<TAB>specialty`.
    pub providers: &'a str,
    /// specialties.txt: `specialty<TAB>alias, alias`.
    pub specialties: &'a str,
    /// medications.txt: `generic[<TAB>brand, brand]`.
    pub medications: &'a str,
    /// confusions.txt: `heard<TAB>meant`.
    pub confusions: &'a str,
}

/// A vocabulary file line that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LexiconError {
    /// A line lacks a required field.
    #[error("{file} line {line}: {problem}")]
    BadLine {
        /// Which file.
        file: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// A confusion names a term that is not in the vocabulary.
    #[error("confusions line {line}: \"{meant}\" is not a provider, specialty or medication")]
    UnknownTerm {
        /// 1-based line number.
        line: usize,
        /// The unknown term.
        meant: String,
    },
}

/// The vocabulary with its phonetic index.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    pub(crate) terms: Vec<Term>,
    pub(crate) aliases: Vec<Alias>,
    /// Known mishearing (as words) → term.
    pub(crate) confusions: Vec<(Vec<String>, u32)>,
    /// Compact spelling → aliases, for exact hits.
    pub(crate) by_compact: HashMap<String, Vec<u32>>,
    /// First letter of the phonetic key → aliases, for fuzzy hits.
    pub(crate) by_initial: HashMap<u8, Vec<u32>>,
    /// Every word that occurs in an alias ("doctor" in "heart doctor").
    pub(crate) alias_words: std::collections::HashSet<String>,
}

const TITLES: &[&str] = &["dr", "dr.", "doctor"];

fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim_end()))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

fn compact(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl Lexicon {
    /// Builds the lexicon from the vocabulary files' text.
    pub fn parse(src: &VocabularySources<'_>) -> Result<Self, LexiconError> {
        let mut lx = Lexicon::default();
        for (n, line) in lines(src.specialties) {
            let (name, aliases) = line.split_once('\t').unwrap_or((line, ""));
            let name = name.trim();
            if name.is_empty() {
                return Err(LexiconError::BadLine {
                    file: "specialties",
                    line: n,
                    problem: "empty specialty",
                });
            }
            let t = lx.add_term(name, TermKind::Specialty, None, None);
            lx.add_alias(t, name, false);
            for a in aliases.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                lx.add_alias(t, a, false);
            }
        }
        for (n, line) in lines(src.providers) {
            let Some((name, specialty)) = line.split_once('\t') else {
                return Err(LexiconError::BadLine {
                    file: "providers",
                    line: n,
                    problem: "expected name<TAB>specialty",
                });
            };
            let name = name.trim();
            let ws: Vec<String> = words(name)
                .into_iter()
                .filter(|w| !TITLES.contains(&w.as_str()))
                .collect();
            let Some(last) = ws.last().cloned() else {
                return Err(LexiconError::BadLine {
                    file: "providers",
                    line: n,
                    problem: "empty provider name",
                });
            };
            let surname = name.split_whitespace().last().map(str::to_string);
            let t = lx.add_term(
                name,
                TermKind::Provider,
                Some(specialty.trim().to_string()),
                surname,
            );
            lx.add_alias(t, &ws.join(" "), false);
            lx.add_alias(t, &last, true);
        }
        for (n, line) in lines(src.medications) {
            let (generic, brands) = line.split_once('\t').unwrap_or((line, ""));
            let generic = generic.trim();
            if generic.is_empty() {
                return Err(LexiconError::BadLine {
                    file: "medications",
                    line: n,
                    problem: "empty generic name",
                });
            }
            let t = lx.add_term(generic, TermKind::Medication, None, None);
            lx.add_alias(t, generic, false);
            for b in brands.split(',').map(str::trim).filter(|b| !b.is_empty()) {
                lx.add_alias(t, b, false);
            }
        }
        for (n, line) in lines(src.confusions) {
            let Some((heard, meant)) = line.split_once('\t') else {
                return Err(LexiconError::BadLine {
                    file: "confusions",
                    line: n,
                    problem: "expected heard<TAB>meant",
                });
            };
            let Some(t) = lx.find(meant.trim()) else {
                return Err(LexiconError::UnknownTerm {
                    line: n,
                    meant: meant.trim().to_string(),
                });
            };
            lx.confusions.push((words(heard), t));
        }
        Ok(lx)
    }

    fn add_term(
        &mut self,
        canonical: &str,
        kind: TermKind,
        specialty: Option<String>,
        surname: Option<String>,
    ) -> u32 {
        self.terms.push(Term {
            canonical: canonical.to_string(),
            kind,
            specialty,
            surname,
        });
        (self.terms.len() - 1) as u32
    }

    fn add_alias(&mut self, term: u32, text: &str, needs_title: bool) {
        let surface = words(text).join(" ");
        let compact = compact(&surface);
        if compact.is_empty()
            || self
                .aliases
                .iter()
                .any(|a| a.term == term && a.compact == compact)
        {
            return;
        }
        for w in surface.split(' ') {
            self.alias_words.insert(w.to_string());
        }
        let key = phonetic::key(&compact);
        let exact_only = compact.len() <= 4;
        let id = self.aliases.len() as u32;
        self.by_compact.entry(compact.clone()).or_default().push(id);
        if let Some(&k) = key.as_bytes().first() {
            self.by_initial.entry(k).or_default().push(id);
        }
        let folded = phonetic::fold_spelling(&compact);
        self.aliases.push(Alias {
            term,
            surface,
            compact,
            key,
            folded,
            needs_title,
            exact_only,
        });
    }

    /// The term whose canonical name or alias is exactly `text` (any case).
    pub fn find(&self, text: &str) -> Option<u32> {
        let c = compact(text);
        if let Some(t) = self.terms.iter().position(|t| compact(&t.canonical) == c) {
            return Some(t as u32);
        }
        self.by_compact
            .get(&c)
            .and_then(|ids| ids.first())
            .map(|&a| self.aliases[a as usize].term)
    }

    /// A term by id.
    pub fn term(&self, id: u32) -> &Term {
        &self.terms[id as usize]
    }

    /// All terms.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// The term id of a canonical name.
    pub fn by_canonical(&self, canonical: &str) -> Option<u32> {
        self.terms
            .iter()
            .position(|t| t.canonical == canonical)
            .map(|i| i as u32)
    }

    /// Providers of a specialty.
    pub fn providers_of(&self, specialty: &str) -> impl Iterator<Item = &Term> + '_ {
        let s = specialty.to_string();
        self.terms.iter().filter(move |t| {
            t.kind == TermKind::Provider && t.specialty.as_deref() == Some(s.as_str())
        })
    }

    /// Whether a word is a title that may precede a surname.
    pub(crate) fn is_title(w: &str) -> bool {
        TITLES.contains(&w) || w == "doc"
    }
}
