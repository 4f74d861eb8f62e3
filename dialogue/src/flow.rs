//! Flows from configuration: a TOML file names the intents, the slots each
//! asks for, the prompts, the confirmation read-back and the outcome. The
//! clinic flow ships in the crate ([`Flow::clinic`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::correct::VocabularyCorrector;
use crate::lexicon::{Lexicon, LexiconError, VocabularySources};

/// The default clinic flow, as shipped.
pub const CLINIC_FLOW: &str = include_str!("../flows/clinic.toml");

/// What kind of value a slot holds, which picks its normaliser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    /// A person's name.
    PersonName,
    /// A date of birth (a full date with a year).
    DateOfBirth,
    /// A provider or a specialty ("no preference" accepted once a specialty is known).
    Provider,
    /// A specialty.
    Specialty,
    /// A day, relative to the call's date.
    Date,
    /// A clock time.
    Time,
    /// A medication, stored as its generic name.
    Medication,
}

/// What the flow does once an intent's slots are confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Book through the scheduler.
    Book,
    /// Send a refill request.
    Refill,
    /// Cancel an appointment.
    Cancel,
    /// Hand the call to a person.
    Transfer,
}

/// One slot's definition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotSpec {
    /// Its normaliser.
    pub kind: SlotKind,
    /// The question.
    pub prompt: String,
    /// The question after two failed attempts.
    pub rephrase: String,
    /// For a provider slot when the specialty is known; `{specialty}` is filled in.
    #[serde(default)]
    pub prompt_with_specialty: Option<String>,
    /// The key the value is reported under (defaults to the slot's name).
    #[serde(default)]
    pub output: Option<String>,
    /// Whether a date in the past is accepted.
    #[serde(default)]
    pub past_allowed: bool,
}

/// One intent's definition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentSpec {
    /// Phrases that select this intent.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Slots asked in this order (only those still missing).
    pub slots: Vec<String>,
    /// The read-back, with `{slot}` placeholders; absent means no confirmation.
    #[serde(default)]
    pub confirm: Option<String>,
    /// What to do at the end.
    pub action: Action,
    /// The outcome written to the audit log.
    pub outcome: String,
    /// The closing line, with `{slot}` placeholders.
    #[serde(default)]
    pub done: Option<String>,
}

/// Where the vocabulary files are, relative to the flow file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VocabularyPaths {
    /// providers.txt
    pub providers: Option<String>,
    /// specialties.txt
    pub specialties: Option<String>,
    /// medications.txt
    pub medications: Option<String>,
    /// confusions.txt
    pub confusions: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowFile {
    greeting: String,
    not_understood: String,
    offer_transfer: String,
    transfer: String,
    filler: String,
    goodbye: String,
    ask_change: String,
    #[serde(default = "two")]
    rephrase_after: u32,
    #[serde(default = "three")]
    transfer_after: u32,
    #[serde(default)]
    vocabulary: VocabularyPaths,
    slots: BTreeMap<String, SlotSpec>,
    intents: BTreeMap<String, IntentSpec>,
}

fn two() -> u32 {
    2
}
fn three() -> u32 {
    3
}

/// A flow that failed to load.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The TOML did not parse or a key has the wrong type (the message names it).
    #[error("flow file: {0}")]
    Toml(#[from] toml::de::Error),
    /// A key refers to something that does not exist.
    #[error("flow file: `{key}`: {problem}")]
    Invalid {
        /// The dotted key, e.g. `intents.refill.slots`.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A vocabulary file line was bad.
    #[error("vocabulary: {0}")]
    Vocabulary(#[from] LexiconError),
    /// A vocabulary file named in the flow could not be read.
    #[error("flow file: `{key}` = \"{path}\": {source}")]
    VocabularyFile {
        /// The dotted key, e.g. `vocabulary.providers`.
        key: String,
        /// The path as written.
        path: String,
        /// Why reading failed.
        source: std::io::Error,
    },
}

/// A loaded flow: prompts, slots, intents, and the clinic's vocabulary.
#[derive(Debug, Clone)]
pub struct Flow {
    /// First line of every call.
    pub greeting: String,
    /// Said when nothing was understood.
    pub not_understood: String,
    /// Asked after `transfer_after` failed attempts.
    pub offer_transfer: String,
    /// Said before handing the call over.
    pub transfer: String,
    /// Said while the scheduler is slow.
    pub filler: String,
    /// Said when the caller ends without finishing.
    pub goodbye: String,
    /// Asked after a bare "no" at confirmation.
    pub ask_change: String,
    /// Failed attempts before the prompt is rephrased.
    pub rephrase_after: u32,
    /// Failed attempts before a transfer is offered.
    pub transfer_after: u32,
    /// Vocabulary file paths as written in the flow.
    pub vocabulary_paths: VocabularyPaths,
    /// Slot definitions by name.
    pub slots: BTreeMap<String, SlotSpec>,
    /// Intent definitions by name.
    pub intents: BTreeMap<String, IntentSpec>,
    /// The vocabulary and its corrector (empty until [`Flow::with_vocabulary`]).
    pub corrector: VocabularyCorrector,
}

impl Flow {
    /// Parses a flow file and checks every reference in it.
    pub fn from_toml(text: &str) -> Result<Flow, FlowError> {
        let f: FlowFile = toml::from_str(text)?;
        let invalid = |key: String, problem: &str| FlowError::Invalid {
            key,
            problem: problem.to_string(),
        };
        for (name, intent) in &f.intents {
            for s in &intent.slots {
                if !f.slots.contains_key(s) {
                    return Err(invalid(
                        format!("intents.{name}.slots"),
                        &format!("no slot named \"{s}\" under [slots]"),
                    ));
                }
            }
            for (field, text) in [("confirm", &intent.confirm), ("done", &intent.done)] {
                if let Some(t) = text {
                    for ph in placeholders(t) {
                        let known = intent.slots.iter().any(|s| {
                            s == ph
                                || f.slots.get(s).and_then(|sp| sp.output.as_deref()) == Some(ph)
                        }) || ph == "specialty";
                        if !known {
                            return Err(invalid(
                                format!("intents.{name}.{field}"),
                                &format!("{{{ph}}} is not one of this intent's slots"),
                            ));
                        }
                    }
                }
            }
            if intent.action != Action::Transfer && intent.slots.is_empty() {
                return Err(invalid(
                    format!("intents.{name}.slots"),
                    "only a transfer may have no slots",
                ));
            }
        }
        for (name, s) in &f.slots {
            if s.prompt.trim().is_empty() {
                return Err(invalid(format!("slots.{name}.prompt"), "empty prompt"));
            }
        }
        if f.rephrase_after == 0 || f.transfer_after < f.rephrase_after {
            return Err(invalid(
                "transfer_after".into(),
                "must be at least rephrase_after, which must be at least 1",
            ));
        }
        Ok(Flow {
            greeting: f.greeting,
            not_understood: f.not_understood,
            offer_transfer: f.offer_transfer,
            transfer: f.transfer,
            filler: f.filler,
            goodbye: f.goodbye,
            ask_change: f.ask_change,
            rephrase_after: f.rephrase_after,
            transfer_after: f.transfer_after,
            vocabulary_paths: f.vocabulary,
            slots: f.slots,
            intents: f.intents,
            corrector: VocabularyCorrector::default(),
        })
    }

    /// The shipped clinic flow, without vocabulary.
    pub fn clinic() -> Flow {
        Flow::from_toml(CLINIC_FLOW).expect("the shipped clinic flow is valid")
    }

    /// Attaches the clinic's vocabulary, given the files' text.
    pub fn with_vocabulary(mut self, src: &VocabularySources<'_>) -> Result<Flow, FlowError> {
        self.corrector = VocabularyCorrector::new(Lexicon::parse(src)?);
        Ok(self)
    }

    /// Attaches the vocabulary files named under `[vocabulary]`, read by
    /// `read` (the caller does the I/O, typically relative to the flow
    /// file's folder); a missing entry is an empty file.
    pub fn with_vocabulary_from(
        self,
        mut read: impl FnMut(&str) -> std::io::Result<String>,
    ) -> Result<Flow, FlowError> {
        let paths = self.vocabulary_paths.clone();
        let mut load = |key: &str, path: &Option<String>| -> Result<String, FlowError> {
            match path {
                None => Ok(String::new()),
                Some(p) => read(p).map_err(|source| FlowError::VocabularyFile {
                    key: format!("vocabulary.{key}"),
                    path: p.clone(),
                    source,
                }),
            }
        };
        let providers = load("providers", &paths.providers)?;
        let specialties = load("specialties", &paths.specialties)?;
        let medications = load("medications", &paths.medications)?;
        let confusions = load("confusions", &paths.confusions)?;
        self.with_vocabulary(&VocabularySources {
            providers: &providers,
            specialties: &specialties,
            medications: &medications,
            confusions: &confusions,
        })
    }

    /// Attaches an already built lexicon.
    pub fn with_lexicon(mut self, lexicon: Lexicon) -> Flow {
        self.corrector = VocabularyCorrector::new(lexicon);
        self
    }

    /// The vocabulary.
    pub fn lexicon(&self) -> &Lexicon {
        self.corrector.lexicon()
    }

    /// The key a slot's value is reported under.
    pub fn output_key<'a>(&'a self, slot: &'a str) -> &'a str {
        self.slots
            .get(slot)
            .and_then(|s| s.output.as_deref())
            .unwrap_or(slot)
    }
}

/// `{name}` placeholders in a template.
pub(crate) fn placeholders(t: &str) -> impl Iterator<Item = &str> {
    t.split('{')
        .skip(1)
        .filter_map(|p| p.split_once('}').map(|(k, _)| k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clinic_flow_loads() {
        let f = Flow::clinic();
        assert_eq!(f.intents.len(), 4);
        assert_eq!(f.intents["book_appointment"].slots.len(), 5);
    }

    #[test]
    fn errors_name_the_key() {
        let bad = CLINIC_FLOW.replace("slots = [\"medication\", ", "slots = [\"medicine\", ");
        let e = Flow::from_toml(&bad).unwrap_err().to_string();
        assert!(
            e.contains("intents.refill.slots") && e.contains("medicine"),
            "{e}"
        );

        let bad = CLINIC_FLOW.replace("kind = \"time\"", "kind = \"clock\"");
        let e = Flow::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("kind") && e.contains("clock"), "{e}");

        let bad = CLINIC_FLOW.replace(
            "on {date} at {time}. Shall I book",
            "on {day} at {time}. Shall I book",
        );
        let e = Flow::from_toml(&bad).unwrap_err().to_string();
        assert!(
            e.contains("intents.book_appointment.confirm") && e.contains("{day}"),
            "{e}"
        );

        let e = Flow::clinic()
            .with_vocabulary_from(|p| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    p.to_string(),
                ))
            })
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("vocabulary.providers") && e.contains("providers.txt"),
            "{e}"
        );

        let bad = CLINIC_FLOW.replace("prompt = \"What time works for you?\"", "");
        let e = Flow::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("prompt") && e.contains("slots"), "{e}");
    }
}
