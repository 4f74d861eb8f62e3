//! What the bot just asked, from its transcribed words, and what the
//! scripted caller says back.
//!
//! The rules are keywords on normalised text (lower case, letters, digits
//! and single spaces) because a recogniser's punctuation, casing and
//! apostrophes vary. They are checked in an order where the more specific
//! prompt wins: a read-back names the date of birth, a rephrase of the
//! provider question says "name", the greeting offers to put you through.

use tracing::warn;

use super::scenario::Scenario;

/// What the caller says when it has no answer.
pub const DONT_KNOW: &str = "I don't know";
/// What the caller says to offered alternatives: it takes the first.
pub const FIRST_ONE: &str = "the first one";

/// The kind of thing the bot said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// The greeting ("How can I help?").
    Greeting,
    /// A question for one slot (its name, `cancel_date` reported as `date`).
    Ask(&'static str),
    /// The read-back ("Let me read that back … Shall I book it?").
    Confirm,
    /// "What would you like to change?"
    Change,
    /// "Sorry, I didn't catch that."
    NotUnderstood,
    /// "Would you like me to put you through to the front desk?"
    OfferTransfer,
    /// "… has nothing free then. The nearest openings are … Would one of
    /// those work?"
    Alternatives,
    /// "Did you mean A or B?" / "Sorry, was that A or B?"
    Clarify,
    /// "I'm putting you through … Please hold."
    Transfer,
    /// A goodbye (the bot is done).
    Goodbye,
    /// "One moment while I check the schedule." (nothing to answer).
    Filler,
    /// None of the above.
    Unknown,
}

/// Lower case, apostrophes dropped, every other non-alphanumeric run a
/// single space.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars() {
        if c == '\'' || c == '’' {
            continue;
        }
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    out.trim_end().to_owned()
}

/// Classifies a bot utterance (several joined sentences are fine).
pub fn classify(text: &str) -> Prompt {
    let t = format!(" {} ", normalise(text));
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if has(&[" goodbye ", " good bye ", " bye bye "]) {
        Prompt::Goodbye
    } else if has(&[
        " how can i help ",
        " how may i help ",
        " thank you for calling the clinic ",
    ]) {
        Prompt::Greeting
    } else if has(&[" putting you through ", " please hold "]) {
        Prompt::Transfer
    } else if has(&[
        " put you through ",
        " trouble understanding ",
        " transfer you ",
    ]) {
        Prompt::OfferTransfer
    } else if has(&[
        " nearest openings ",
        " one of those work ",
        " which of those times ",
    ]) {
        Prompt::Alternatives
    } else if has(&[" did you mean ", " sorry was that "]) {
        Prompt::Clarify
    } else if has(&[
        " didnt catch ",
        " did not catch ",
        " didnt get that ",
        " did not get that ",
        " say that again ",
    ]) {
        // "Sorry, I didn't get that." is usually followed by the question
        // again: answer the question when there is one.
        match asked(&t) {
            Prompt::Unknown | Prompt::Filler => Prompt::NotUnderstood,
            question => question,
        }
    } else {
        asked(&t)
    }
}

/// The question in normalised text padded with spaces.
fn asked(t: &str) -> Prompt {
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if has(&[
        " read that back ",
        " shall i ",
        " is that right ",
        " is that correct ",
    ]) {
        Prompt::Confirm
    } else if has(&[" like to change ", " want to change "]) {
        Prompt::Change
    } else if has(&[
        " of birth ",
        " birth date ",
        " birthday ",
        " born ",
        " birth ",
    ]) {
        // "birth" alone: a recogniser writes "state of birth", "date a birth".
        Prompt::Ask("date_of_birth")
    } else if has(&[
        " want to cancel ",
        " day of the appointment ",
        " date of the appointment ",
    ]) {
        Prompt::Ask("date")
    } else if has(&[" medication ", " medicine ", " refilled ", " prescription "]) {
        Prompt::Ask("medication")
    } else if has(&[
        " doctor ",
        " doctors ",
        " dr ",
        " specialty ",
        " specialist ",
        " anyone fine ",
        " physician ",
    ]) {
        Prompt::Ask("provider")
    } else if has(&[" what time ", " a time ", " time works ", " which time "]) {
        Prompt::Ask("time")
    } else if has(&[
        " what day ",
        " a day ",
        " which day ",
        " what date ",
        " which date ",
    ]) {
        Prompt::Ask("date")
    } else if has(&[" name "]) {
        Prompt::Ask("patient_name")
    } else if has(&[" one moment ", " check the schedule ", " just a moment "]) {
        Prompt::Filler
    } else {
        Prompt::Unknown
    }
}

/// What the caller does after a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Say this line; `slot` is what the bot asked, if it asked for one.
    Say {
        /// The line.
        line: String,
        /// The slot (or `confirm`, `opening`, `change`…) it answers.
        slot: Option<String>,
    },
    /// Nothing to say: keep listening.
    Listen,
    /// The bot is done: hang up if it does not.
    Done,
}

/// The caller's side of the conversation.
#[derive(Debug, Clone)]
pub struct Script {
    scenario: Scenario,
    confirmed_once: bool,
    last_line: Option<(Option<String>, String)>,
    /// Listen-only mode: the lines left, in order.
    blind: Option<std::collections::VecDeque<(Option<String>, String)>>,
}

impl Script {
    /// A caller that answers what it understands.
    pub fn new(scenario: Scenario) -> Script {
        Script {
            scenario,
            confirmed_once: false,
            last_line: None,
            blind: None,
        }
    }

    /// A caller without a recogniser: after each bot utterance it says the
    /// scenario's next line, then it is done.
    pub fn listen_only(scenario: Scenario) -> Script {
        let lines = scenario.script().into();
        Script {
            blind: Some(lines),
            ..Script::new(scenario)
        }
    }

    /// The first line, when the bot stays silent and the caller speaks
    /// first.
    pub fn speak_first(&mut self) -> Reply {
        match self.blind.as_mut() {
            Some(lines) => match lines.pop_front() {
                Some((slot, line)) => self.say(slot, line),
                None => Reply::Done,
            },
            None => self.say(Some("opening".into()), self.scenario.opening.clone()),
        }
    }

    /// The reply to a bot utterance: `text` is its transcript, `None` when
    /// there is no recogniser.
    pub fn reply(&mut self, text: Option<&str>) -> Reply {
        let Some(text) = text else {
            return self.speak_first();
        };
        match classify(text) {
            Prompt::Greeting => self.say(Some("opening".into()), self.scenario.opening.clone()),
            Prompt::Ask(slot) => match self.scenario.answer(slot) {
                Some(answer) => self.say(Some(slot.into()), answer.to_owned()),
                None => {
                    warn!(slot, "the scenario has no answer for what the bot asked");
                    self.say(Some(slot.into()), DONT_KNOW.into())
                }
            },
            Prompt::Confirm => {
                let line = match (&self.scenario.confirm.say, self.confirmed_once) {
                    (Some(say), false) => say.clone(),
                    _ => self.scenario.confirmation().to_owned(),
                };
                self.confirmed_once = true;
                self.say(Some("confirm".into()), line)
            }
            Prompt::Change => match self.scenario.confirm.say.clone() {
                Some(say) => self.say(Some("change".into()), say),
                None => {
                    warn!("the bot asked what to change; the scenario has no correction");
                    self.say(Some("change".into()), DONT_KNOW.into())
                }
            },
            Prompt::Alternatives => self.say(Some("alternative".into()), FIRST_ONE.into()),
            Prompt::NotUnderstood | Prompt::Clarify => match self.last_line.clone() {
                Some((slot, line)) => self.say(slot, line),
                None => self.say(Some("opening".into()), self.scenario.opening.clone()),
            },
            Prompt::OfferTransfer => {
                warn!("the bot offered to transfer the call");
                self.say(Some("transfer".into()), "yes".into())
            }
            Prompt::Transfer | Prompt::Filler => Reply::Listen,
            Prompt::Goodbye => Reply::Done,
            Prompt::Unknown => {
                warn!(
                    chars = text.len(),
                    "the bot said something the caller cannot place"
                );
                self.say(None, DONT_KNOW.into())
            }
        }
    }

    fn say(&mut self, slot: Option<String>, line: String) -> Reply {
        self.last_line = Some((slot.clone(), line.clone()));
        Reply::Say { line, slot }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> toml::Table {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dialogue/flows/clinic.toml");
        toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn text<'a>(table: &'a toml::Table, key: &str) -> &'a str {
        table[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is text"))
    }

    /// Every prompt of the shipped flow, read from the flow file, lands on
    /// the right kind, also without punctuation and in upper case (as a
    /// recogniser may write it).
    #[test]
    fn every_flow_prompt_is_classified() {
        let flow = flow();
        let mut cases: Vec<(String, Prompt)> = vec![
            (text(&flow, "greeting").into(), Prompt::Greeting),
            (text(&flow, "not_understood").into(), Prompt::NotUnderstood),
            (text(&flow, "offer_transfer").into(), Prompt::OfferTransfer),
            (text(&flow, "transfer").into(), Prompt::Transfer),
            (text(&flow, "filler").into(), Prompt::Filler),
            (text(&flow, "goodbye").into(), Prompt::Goodbye),
            (text(&flow, "ask_change").into(), Prompt::Change),
        ];
        for (name, slot) in flow["slots"].as_table().unwrap() {
            let slot = slot.as_table().unwrap();
            let expected = match name.as_str() {
                "cancel_date" => "date",
                other => other,
            };
            let expected = match expected {
                "patient_name" => "patient_name",
                "date_of_birth" => "date_of_birth",
                "provider" => "provider",
                "date" => "date",
                "time" => "time",
                "medication" => "medication",
                other => panic!("a new slot in the flow: {other}; teach classify() about it"),
            };
            for key in ["prompt", "rephrase", "prompt_with_specialty"] {
                if let Some(p) = slot.get(key).and_then(|v| v.as_str()) {
                    let p = p.replace("{specialty}", "cardiology");
                    cases.push((p, Prompt::Ask(expected)));
                }
            }
        }
        for (_, intent) in flow["intents"].as_table().unwrap() {
            let intent = intent.as_table().unwrap();
            let fill = |s: &str| {
                s.replace("{patient_name}", "Linda Park")
                    .replace("{date_of_birth}", "January 22nd, 1970")
                    .replace("{provider}", "Dr. Minh Nguyen")
                    .replace("{date}", "Monday, December 7th")
                    .replace("{time}", "9:00 AM")
                    .replace("{medication}", "lisinopril")
            };
            if let Some(c) = intent.get("confirm").and_then(|v| v.as_str()) {
                cases.push((fill(c), Prompt::Confirm));
            }
            if let Some(d) = intent.get("done").and_then(|v| v.as_str()) {
                cases.push((fill(d), Prompt::Goodbye));
            }
        }
        assert!(cases.len() > 20, "the flow has its prompts");
        for (said, expected) in cases {
            assert_eq!(classify(&said), expected, "{said}");
            let plain: String = said.chars().filter(|c| !c.is_ascii_punctuation()).collect();
            assert_eq!(classify(&plain.to_uppercase()), expected, "{plain}");
        }
    }

    #[test]
    fn recogniser_variations() {
        assert_eq!(
            classify(" may i have the patients first and last name"),
            Prompt::Ask("patient_name")
        );
        assert_eq!(
            classify("And what's the patient's date of birth?"),
            Prompt::Ask("date_of_birth")
        );
        assert_eq!(
            classify("One moment while I check the schedule. What time works for you?"),
            Prompt::Ask("time")
        );
        assert_eq!(classify("Mm."), Prompt::Unknown);
        // Whisper tiny on a telephone line, as heard.
        assert_eq!(
            classify("and what is the patient's state of birth?"),
            Prompt::Ask("date_of_birth")
        );
        // The dialogue manager's own sentences around the flow's prompts.
        assert_eq!(
            classify("Sorry, I didn't get that. What time works for you?"),
            Prompt::Ask("time")
        );
        assert_eq!(classify("Sorry, I didn't get that."), Prompt::NotUnderstood);
        assert_eq!(
            classify("That day has already passed. What day would you like?"),
            Prompt::Ask("date")
        );
        assert_eq!(
            classify(
                "Okay. Let me read that back: Susan Wright, born April 9th, 1966. Shall I book it?"
            ),
            Prompt::Confirm
        );
        assert_eq!(
            classify("Did you mean Dr. Anika Patel or Dr. Sean Park?"),
            Prompt::Clarify
        );
        assert_eq!(
            classify(
                "Sorry, Dr. Patel has nothing free on Tuesday. The nearest openings are \
                 Wednesday at 9 AM or Thursday at 10 AM. Would one of those work?"
            ),
            Prompt::Alternatives
        );
        assert_eq!(
            classify("I'm sorry, I couldn't put you through. You can reach the front desk at 5 5 5. Goodbye."),
            Prompt::Goodbye
        );
        assert_eq!(normalise("Dr. O'Brien, 9:00 AM!"), "dr obrien 9 00 am");
    }

    fn scenario() -> Scenario {
        Scenario::from_toml(
            "opening = \"I want to book with Doctor Okafor.\"\n[answers]\npatient_name = \"Susan Wright\"\n\
             [confirm]\nsay = \"no, make it two p m instead\"\nthen = \"yes\"\n",
        )
        .unwrap()
    }

    fn line(reply: Reply) -> String {
        match reply {
            Reply::Say { line, .. } => line,
            other => panic!("expected a line, got {other:?}"),
        }
    }

    #[test]
    fn answers_follow_the_prompts() {
        let mut script = Script::new(scenario());
        assert_eq!(
            line(script.reply(Some(
                "Hello, thank you for calling the clinic. How can I help?"
            ))),
            "I want to book with Doctor Okafor."
        );
        assert_eq!(
            script.reply(Some("May I have the patient's first and last name?")),
            Reply::Say {
                line: "Susan Wright".into(),
                slot: Some("patient_name".into())
            }
        );
        assert_eq!(
            line(script.reply(Some("Sorry, I didn't catch that."))),
            "Susan Wright"
        );
        assert_eq!(
            line(script.reply(Some("Did you mean Susan Wright or Susan White?"))),
            "Susan Wright"
        );
        assert_eq!(
            line(script.reply(Some(
                "The nearest openings are 9 or 10. Would one of those work?"
            ))),
            FIRST_ONE
        );
        assert_eq!(
            line(script.reply(Some("What day would you like?"))),
            DONT_KNOW
        );
        assert_eq!(
            line(script.reply(Some("Let me read that back: ... Shall I book it?"))),
            "no, make it two p m instead"
        );
        assert_eq!(
            line(script.reply(Some("Let me read that back: ... Shall I book it?"))),
            "yes"
        );
        assert_eq!(
            script.reply(Some("One moment while I check the schedule.")),
            Reply::Listen
        );
        assert_eq!(
            script.reply(Some("Thank you for calling. Goodbye.")),
            Reply::Done
        );
    }

    #[test]
    fn listen_only_says_the_lines_in_order() {
        let mut script = Script::listen_only(scenario());
        assert_eq!(
            line(script.speak_first()),
            "I want to book with Doctor Okafor."
        );
        assert_eq!(line(script.reply(None)), "Susan Wright");
        assert_eq!(line(script.reply(None)), "no, make it two p m instead");
        assert_eq!(line(script.reply(None)), "yes");
        assert_eq!(script.reply(None), Reply::Done);
    }
}
