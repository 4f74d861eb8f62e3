//! A caller scenario (`../shared/data/scenarios/*.toml`): what the caller
//! says first, its answer per slot and what it says to the read-back.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One scripted call.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Scenario {
    /// The first thing the caller says after the greeting.
    pub opening: String,
    /// The answer per slot name (`patient_name`, `date`…).
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
    /// What the caller says to the read-back.
    #[serde(default)]
    pub confirm: Confirm,
    /// The call's date (informational: the bot resolves dates).
    #[serde(default)]
    pub today: Option<String>,
    /// What the end-to-end tests check; the caller ignores it.
    #[serde(default)]
    pub expect: Option<toml::Table>,
}

/// The `[confirm]` table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Confirm {
    /// Said to the first read-back (a correction, say); `then` otherwise.
    pub say: Option<String>,
    /// Said to later read-backs; "yes" when absent.
    pub then: Option<String>,
}

/// Why a scenario file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Not TOML of the expected shape.
    #[error("bad scenario: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A line the caller would have to say is empty.
    #[error("empty line in the scenario: {0}")]
    Empty(String),
}

/// The slots in the order the clinic flow asks them, for listen-only mode
/// (no recogniser: answers are said in this order).
const SCRIPT_ORDER: [&str; 7] = [
    "provider",
    "specialty",
    "medication",
    "patient_name",
    "date_of_birth",
    "date",
    "time",
];

impl Scenario {
    /// Parses a scenario file's text.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text)?;
        if scenario.opening.trim().is_empty() {
            return Err(ScenarioError::Empty("opening".into()));
        }
        if let Some((slot, _)) = scenario.answers.iter().find(|(_, v)| v.trim().is_empty()) {
            return Err(ScenarioError::Empty(format!("answers.{slot}")));
        }
        Ok(scenario)
    }

    /// The answer to a slot question: `provider` falls back to `specialty`.
    pub fn answer(&self, slot: &str) -> Option<&str> {
        self.answers
            .get(slot)
            .or_else(|| match slot {
                "provider" => self.answers.get("specialty"),
                _ => None,
            })
            .map(String::as_str)
    }

    /// Every line the caller may say, for synthesising ahead of time.
    pub fn all_lines(&self) -> Vec<String> {
        let mut lines = vec![self.opening.clone()];
        lines.extend(self.answers.values().cloned());
        lines.extend(self.confirm.say.iter().cloned());
        lines.push(self.confirmation().to_owned());
        lines.push(super::prompt::DONT_KNOW.to_owned());
        lines.push(super::prompt::FIRST_ONE.to_owned());
        lines.dedup();
        lines
    }

    /// What the caller says to a read-back after the first.
    pub fn confirmation(&self) -> &str {
        self.confirm.then.as_deref().unwrap_or("yes")
    }

    /// The lines in order for a caller that cannot understand the bot: the
    /// opening, the answers in the flow's usual order, then the read-back
    /// replies.
    pub fn script(&self) -> Vec<(Option<String>, String)> {
        let mut lines = vec![(Some("opening".to_owned()), self.opening.clone())];
        let mut slots: Vec<&String> = self.answers.keys().collect();
        slots.sort_by_key(|s| {
            SCRIPT_ORDER
                .iter()
                .position(|o| o == s)
                .unwrap_or(SCRIPT_ORDER.len())
        });
        for slot in slots {
            lines.push((Some(slot.clone()), self.answers[slot].clone()));
        }
        if let Some(say) = &self.confirm.say {
            lines.push((Some("confirm".into()), say.clone()));
        }
        lines.push((Some("confirm".into()), self.confirmation().to_owned()));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenarios_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/scenarios")
    }

    #[test]
    fn every_shared_scenario_parses() {
        let Ok(dir) = std::fs::read_dir(scenarios_dir()) else {
            eprintln!("no shared scenarios here; skipped");
            return;
        };
        let mut n = 0;
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let s = Scenario::from_toml(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!s.script().is_empty());
                n += 1;
            }
        }
        assert!(n > 0);
    }

    #[test]
    fn confirm_defaults_and_script_order() {
        let s = Scenario::from_toml(
            "opening = \"hi\"\n[answers]\ntime = \"nine\"\npatient_name = \"Ann Lee\"\nprovider = \"any\"\n",
        )
        .unwrap();
        assert_eq!(s.confirmation(), "yes");
        let lines: Vec<String> = s.script().into_iter().map(|(_, l)| l).collect();
        assert_eq!(lines, ["hi", "any", "Ann Lee", "nine", "yes"]);
        let s = Scenario::from_toml("opening = \"hi\"\n[answers]\nspecialty = \"cardiology\"\n")
            .unwrap();
        assert_eq!(s.answer("provider"), Some("cardiology"));
        assert!(Scenario::from_toml("opening = \" \"").is_err());
    }
}
