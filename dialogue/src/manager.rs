//! The dialogue manager: one per call. Each caller turn goes through
//! correction (biased by the slot asked), understanding, slot filling and
//! the next prompt or action. Sans-IO: the only outside calls go through
//! the [`Scheduler`] trait, and the call's date is given, never read.

use chrono::{NaiveDate, NaiveTime};
use serde::Serialize;

use crate::correct::Corrected;
use crate::flow::{Action, Flow, SlotKind};
use crate::lexicon::TermKind;
use crate::normalize::{speak_birth_date, speak_date, speak_time, words};
use crate::schedule::{BookingRequest, Opening, ScheduleError, Scheduler};
use crate::turn::{Expecting, TurnAction, TurnRecord};
use crate::understand::{understand, Context, LanguageModel, Slots, Understanding};

/// How the call ended, with the slots in the scenario format. Its `Debug`
/// shows slot names only (values are the caller's personal data).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct ChatOutcome {
    /// booked, refill_requested, cancelled, transferred or abandoned.
    pub outcome: String,
    /// The intent, if one was understood.
    pub intent: Option<String>,
    /// Slot values, flattened beside `outcome` and `intent` in JSON.
    #[serde(flatten)]
    pub slots: Slots,
}

impl std::fmt::Debug for ChatOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatOutcome")
            .field("outcome", &self.outcome)
            .field("intent", &self.intent)
            .field("slots", &self.slots.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One call's dialogue. Cloning it (with a cloneable scheduler) lets a
/// caller try a turn and keep or drop the result.
#[derive(Clone)]
pub struct Dialogue<'f, S: Scheduler> {
    flow: &'f Flow,
    today: NaiveDate,
    scheduler: S,
    model: Option<&'f (dyn LanguageModel + Sync)>,
    intent: Option<String>,
    slots: Slots,
    any_provider: bool,
    expecting: Expecting,
    attempts: u32,
    alternatives: Vec<Opening>,
    outcome: Option<String>,
    turns: u32,
    past_date: bool,
}

impl<S: Scheduler> std::fmt::Debug for Dialogue<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Slot values are PII: only their names are shown.
        f.debug_struct("Dialogue")
            .field("intent", &self.intent)
            .field("slots", &self.slots.keys().collect::<Vec<_>>())
            .field("expecting", &self.expecting)
            .field("outcome", &self.outcome)
            .finish()
    }
}

struct Reply {
    text: String,
    action: TurnAction,
    filler: bool,
}

impl Reply {
    fn say(text: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            action: TurnAction::Listen,
            filler: false,
        }
    }
}

impl<'f, S: Scheduler> Dialogue<'f, S> {
    /// A new call on `today` using `scheduler`.
    pub fn new(flow: &'f Flow, today: NaiveDate, scheduler: S) -> Self {
        Dialogue {
            flow,
            today,
            scheduler,
            model: None,
            intent: None,
            slots: Slots::new(),
            any_provider: false,
            expecting: Expecting::Intent,
            attempts: 0,
            alternatives: Vec::new(),
            outcome: None,
            turns: 0,
            past_date: false,
        }
    }

    /// Consults `model` when the rules understand nothing.
    pub fn with_model(mut self, model: &'f (dyn LanguageModel + Sync)) -> Self {
        self.model = Some(model);
        self
    }

    /// The first thing the bot says.
    pub fn greeting(&self) -> &str {
        &self.flow.greeting
    }

    /// What the bot waits for.
    pub fn expecting(&self) -> &Expecting {
        &self.expecting
    }

    /// Whether the call has an outcome.
    pub fn is_done(&self) -> bool {
        self.outcome.is_some()
    }

    /// The scheduler (to inspect bookings in tests).
    pub fn scheduler(&self) -> &S {
        &self.scheduler
    }

    /// Ends the call: the outcome, `abandoned` when none was reached.
    pub fn outcome(&self) -> ChatOutcome {
        ChatOutcome {
            outcome: self.outcome.clone().unwrap_or_else(|| "abandoned".into()),
            intent: self.intent.clone(),
            slots: self.slots.clone(),
        }
    }

    fn asking(&self) -> Option<&str> {
        match &self.expecting {
            Expecting::Slot(s) | Expecting::Choice { slot: s, .. } => Some(s),
            _ => None,
        }
    }

    fn term_kind(kind: SlotKind) -> Option<TermKind> {
        match kind {
            SlotKind::Provider => Some(TermKind::Provider),
            SlotKind::Specialty => Some(TermKind::Specialty),
            SlotKind::Medication => Some(TermKind::Medication),
            _ => None,
        }
    }

    /// Handles one caller turn (the recogniser's text) and returns its record.
    pub fn handle(&mut self, raw: &str) -> TurnRecord {
        let asked = self.asking().map(str::to_string);
        let kind = asked
            .as_deref()
            .and_then(|s| self.flow.slots.get(s))
            .map(|s| s.kind);
        // Names are not vocabulary: an answer to "what is your name" is left as heard.
        let corrected = if kind == Some(SlotKind::PersonName) {
            Corrected {
                text: raw.to_string(),
                ..Default::default()
            }
        } else {
            self.flow
                .corrector
                .correct(raw, kind.and_then(Self::term_kind))
        };
        let ctx = Context {
            today: self.today,
            asking: asked.as_deref(),
            intent: self.intent.as_deref(),
        };
        let mut u = understand(self.flow, &corrected, &ctx);
        if u == Understanding::default()
            || (u.intent.is_none() && u.slots.is_empty() && u.yes_no.is_none())
        {
            if let Some(m) = self.model {
                if let Some(v) = m.interpret(self.flow, &corrected.text, &ctx) {
                    u = v;
                }
            }
        }
        let reply = if self.outcome.is_some() {
            Reply {
                text: self.flow.goodbye.clone(),
                action: TurnAction::HangUp,
                filler: false,
            }
        } else {
            self.step(u, &corrected.text)
        };
        let record = TurnRecord {
            index: self.turns,
            asked,
            raw: raw.to_string(),
            corrected: corrected.text,
            corrections: corrected.terms,
            ambiguities: corrected.ambiguities,
            intent: self.intent.clone(),
            slots: self.slots.clone(),
            reply: reply.text,
            filler: reply.filler.then(|| self.flow.filler.clone()),
            expecting: self.expecting.clone(),
            action: reply.action,
        };
        self.turns += 1;
        record
    }

    fn is_staff(&self, intent: &str) -> bool {
        self.flow
            .intents
            .get(intent)
            .is_some_and(|i| i.action == Action::Transfer)
    }

    fn transfer(&mut self) -> Reply {
        // The intent stays what the caller came for (a booking handed to
        // staff is still a booking); only an unknown one becomes the transfer.
        if self.intent.is_none() {
            self.intent = self
                .flow
                .intents
                .iter()
                .find(|(_, s)| s.action == Action::Transfer)
                .map(|(n, _)| n.clone());
        }
        self.outcome = Some(
            self.flow
                .intents
                .values()
                .find(|s| s.action == Action::Transfer)
                .map_or("transferred".into(), |s| s.outcome.clone()),
        );
        self.expecting = Expecting::Nothing;
        Reply {
            text: self.flow.transfer.clone(),
            action: TurnAction::Transfer,
            filler: false,
        }
    }

    fn step(&mut self, u: Understanding, text: &str) -> Reply {
        if u.intent.as_deref().is_some_and(|i| self.is_staff(i)) {
            if self.intent.is_none() {
                self.intent = u.intent.clone();
            }
            return self.transfer();
        }
        match self.expecting.clone() {
            Expecting::TransferOffer => {
                if u.yes_no == Some(true) {
                    return self.transfer();
                }
                self.attempts = 0;
                self.merge(&u);
                if self.intent.is_none() {
                    self.intent = u.intent.clone();
                }
                if self.intent.is_none() {
                    self.expecting = Expecting::Intent;
                    return Reply::say(self.flow.not_understood.clone());
                }
                self.next(None)
            }
            Expecting::Confirmation | Expecting::Change => {
                if self.merge(&u) {
                    return self.read_back(Some("Okay."));
                }
                match u.yes_no {
                    Some(true) => self.execute(),
                    Some(false) => {
                        self.expecting = Expecting::Change;
                        Reply::say(self.flow.ask_change.clone())
                    }
                    None => self.failed("Sorry, I didn't get that."),
                }
            }
            Expecting::Alternative => {
                let chosen = u
                    .choice
                    .or(u.yes_no.filter(|y| *y).map(|_| 0))
                    .and_then(|i| self.alternatives.get(i))
                    .cloned();
                if self.merge(&u) {
                    self.read_back(None)
                } else if let Some(o) = chosen {
                    self.slots
                        .insert("date".into(), o.date.format("%Y-%m-%d").to_string());
                    self.slots
                        .insert("time".into(), o.time.format("%H:%M").to_string());
                    self.slots.insert("provider".into(), o.provider.clone());
                    self.read_back(None)
                } else {
                    self.failed("Sorry, which of those times would you like?")
                }
            }
            Expecting::Choice { candidates, .. } => {
                let lx = self.flow.lexicon();
                let said = u.slots.get("provider").or(u.slots.get("medication"));
                let mut pick = said.filter(|v| candidates.contains(v)).cloned();
                if pick.is_none() {
                    // "Anika", "Sean": a word only one candidate has.
                    let heard = words(text);
                    pick = candidates
                        .iter()
                        .find(|c| {
                            words(c).iter().any(|w| {
                                w.len() > 2
                                    && heard.contains(w)
                                    && candidates.iter().filter(|o| words(o).contains(w)).count()
                                        == 1
                            })
                        })
                        .cloned();
                }
                if pick.is_none() {
                    pick = u.choice.and_then(|i| candidates.get(i)).cloned();
                }
                let Some(p) = pick else {
                    return self.failed(&format!("Sorry, was that {}?", or_list(&candidates)));
                };
                if let Some(t) = lx.by_canonical(&p).map(|id| lx.term(id).clone()) {
                    let key = match t.kind {
                        TermKind::Provider => "provider",
                        TermKind::Specialty => "specialty",
                        TermKind::Medication => "medication",
                    };
                    self.slots.insert(key.into(), p.clone());
                    if let Some(sp) = t.specialty {
                        self.slots.insert("specialty".into(), sp);
                    }
                }
                self.attempts = 0;
                let mut rest = u.clone();
                rest.slots.remove("provider");
                rest.slots.remove("medication");
                rest.slots.remove("specialty");
                self.merge(&rest);
                self.next(None)
            }
            Expecting::Intent | Expecting::Slot(_) | Expecting::Nothing => {
                if self.intent.is_none() {
                    self.intent = u.intent.clone();
                }
                let before = (self.slots.clone(), self.any_provider);
                self.merge(&u);
                if self.intent.is_none() {
                    return self.failed_intent();
                }
                if let Some(a) = &u.ambiguity {
                    let slot = if a.kind == TermKind::Medication {
                        "medication"
                    } else {
                        "provider"
                    };
                    self.expecting = Expecting::Choice {
                        slot: slot.into(),
                        candidates: a.candidates.clone(),
                    };
                    return Reply::say(format!("Did you mean {}?", or_list(&a.candidates)));
                }
                let progressed = (self.slots.clone(), self.any_provider) != before;
                let asked = self.asking().map(str::to_string);
                match asked {
                    Some(s) if !progressed && self.missing().as_deref() == Some(s.as_str()) => {
                        let prefix = if self.past_date {
                            "That day has already passed."
                        } else {
                            "Sorry, I didn't get that."
                        };
                        self.failed(prefix)
                    }
                    _ => self.next(None),
                }
            }
        }
    }

    /// Output keys the current intent uses (all when none is known yet).
    fn relevant(&self, key: &str) -> bool {
        let Some(intent) = self
            .intent
            .as_deref()
            .and_then(|i| self.flow.intents.get(i))
        else {
            return true;
        };
        intent.slots.iter().any(|s| {
            self.flow.output_key(s) == key
                || (key == "specialty"
                    && self
                        .flow
                        .slots
                        .get(s)
                        .is_some_and(|k| k.kind == SlotKind::Provider))
        })
    }

    /// Takes what the turn said; returns whether anything changed.
    fn merge(&mut self, u: &Understanding) -> bool {
        self.past_date = false;
        let mut changed = false;
        let past_ok = self
            .intent
            .as_deref()
            .and_then(|i| self.flow.intents.get(i))
            .map(|i| {
                i.slots
                    .iter()
                    .filter_map(|s| self.flow.slots.get(s))
                    .any(|s| s.kind == SlotKind::Date && s.past_allowed)
            })
            .unwrap_or(false);
        for (k, v) in &u.slots {
            if !self.relevant(k) {
                continue;
            }
            if k == "date"
                && !past_ok
                && v.as_str() < self.today.format("%Y-%m-%d").to_string().as_str()
            {
                self.past_date = true;
                continue;
            }
            if k == "specialty" && !u.slots.contains_key("provider") {
                // A new specialty that the chosen provider does not practise replaces the provider.
                let lx = self.flow.lexicon();
                let clash = self
                    .slots
                    .get("provider")
                    .and_then(|p| lx.by_canonical(p))
                    .and_then(|id| lx.term(id).specialty.clone());
                if clash.is_some_and(|sp| &sp != v) {
                    self.slots.remove("provider");
                }
            }
            if self.slots.get(k) != Some(v) {
                self.slots.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        let asking_provider = self
            .asking()
            .and_then(|s| self.flow.slots.get(s))
            .is_some_and(|s| s.kind == SlotKind::Provider);
        if u.no_preference && asking_provider && !self.any_provider {
            self.any_provider = true;
            changed = true;
        }
        changed
    }

    /// The first slot of the intent still without a value.
    fn missing(&self) -> Option<String> {
        let intent = self.flow.intents.get(self.intent.as_deref()?)?;
        intent
            .slots
            .iter()
            .find(|s| {
                let spec = &self.flow.slots[*s];
                match spec.kind {
                    SlotKind::Provider => {
                        !self.slots.contains_key("provider") && !self.any_provider
                    }
                    _ => !self.slots.contains_key(self.flow.output_key(s)),
                }
            })
            .cloned()
    }

    fn prompt_for(&self, slot: &str, rephrase: bool) -> String {
        let spec = &self.flow.slots[slot];
        if rephrase {
            return spec.rephrase.clone();
        }
        match (&spec.prompt_with_specialty, self.slots.get("specialty")) {
            (Some(p), Some(sp)) if spec.kind == SlotKind::Provider => p.replace("{specialty}", sp),
            _ => spec.prompt.clone(),
        }
    }

    fn next(&mut self, prefix: Option<&str>) -> Reply {
        let join = |p: Option<&str>, s: String| match p {
            Some(p) => format!("{p} {s}"),
            None => s,
        };
        if let Some(slot) = self.missing() {
            if self.asking() != Some(slot.as_str()) {
                self.attempts = 0;
            }
            let text = self.prompt_for(&slot, false);
            self.expecting = Expecting::Slot(slot);
            return Reply::say(join(prefix, text));
        }
        let has_confirm = self
            .intent
            .as_deref()
            .and_then(|i| self.flow.intents.get(i))
            .is_some_and(|i| i.confirm.is_some());
        if has_confirm {
            self.read_back(prefix)
        } else {
            self.execute()
        }
    }

    fn fill(&self, template: &str) -> String {
        let mut out = template.to_string();
        for key in crate::flow::placeholders(template)
            .map(str::to_string)
            .collect::<Vec<_>>()
        {
            let v = self.slots.get(&key).cloned().unwrap_or_default();
            let spoken = match key.as_str() {
                "date_of_birth" => NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                    .map(speak_birth_date)
                    .unwrap_or(v),
                "date" => NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                    .map(speak_date)
                    .unwrap_or(v),
                "time" => NaiveTime::parse_from_str(&v, "%H:%M")
                    .map(speak_time)
                    .unwrap_or(v),
                "provider" if v.is_empty() => match self.slots.get("specialty") {
                    Some(sp) => format!("the first available doctor in {sp}"),
                    None => "the first available doctor".to_string(),
                },
                _ => v,
            };
            out = out.replace(&format!("{{{key}}}"), &spoken);
        }
        out
    }

    fn read_back(&mut self, prefix: Option<&str>) -> Reply {
        let Some(t) = self
            .intent
            .as_deref()
            .and_then(|i| self.flow.intents.get(i))
            .and_then(|i| i.confirm.clone())
        else {
            return self.execute();
        };
        self.attempts = 0;
        self.expecting = Expecting::Confirmation;
        let text = self.fill(&t);
        Reply::say(match prefix {
            Some(p) => format!("{p} {text}"),
            None => text,
        })
    }

    fn date_slot(&self, key: &str) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(self.slots.get(key)?, "%Y-%m-%d").ok()
    }

    fn execute(&mut self) -> Reply {
        let Some(spec) = self
            .intent
            .as_deref()
            .and_then(|i| self.flow.intents.get(i))
            .cloned()
        else {
            return self.failed_intent();
        };
        let name = self.slots.get("patient_name").cloned().unwrap_or_default();
        let dob = self.date_slot("date_of_birth").unwrap_or(NaiveDate::MIN);
        let result = match spec.action {
            Action::Transfer => return self.transfer(),
            Action::Book => {
                let (Some(date), Some(time)) = (
                    self.date_slot("date"),
                    self.slots
                        .get("time")
                        .and_then(|t| NaiveTime::parse_from_str(t, "%H:%M").ok()),
                ) else {
                    return self.next(None);
                };
                let req = BookingRequest {
                    patient_name: name,
                    date_of_birth: dob,
                    provider: self.slots.get("provider").cloned(),
                    specialty: self.slots.get("specialty").cloned(),
                    date,
                    time,
                };
                self.scheduler.book(&req).map(|b| {
                    self.slots.insert("provider".into(), b.provider);
                })
            }
            Action::Refill => {
                let med = self.slots.get("medication").cloned().unwrap_or_default();
                self.scheduler.request_refill(&name, dob, &med).map(|_| ())
            }
            Action::Cancel => {
                let date = self.date_slot("date").unwrap_or(self.today);
                self.scheduler.cancel(&name, dob, date)
            }
        };
        match result {
            Ok(()) => {
                self.outcome = Some(spec.outcome.clone());
                self.expecting = Expecting::Nothing;
                let text = spec
                    .done
                    .as_deref()
                    .map(|d| self.fill(d))
                    .unwrap_or_else(|| self.flow.goodbye.clone());
                Reply {
                    text,
                    action: TurnAction::HangUp,
                    filler: true,
                }
            }
            Err(ScheduleError::Unavailable { alternatives }) if !alternatives.is_empty() => {
                let who = self.fill("{provider}");
                let when = self.fill("{date} at {time}");
                let offers: Vec<String> = alternatives
                    .iter()
                    .map(|o| {
                        if Some(o.date) == self.date_slot("date") {
                            speak_time(o.time)
                        } else {
                            format!("{} at {}", speak_date(o.date), speak_time(o.time))
                        }
                    })
                    .collect();
                self.alternatives = alternatives;
                self.expecting = Expecting::Alternative;
                let mut r = Reply::say(format!(
                    "Sorry, {who} has nothing free on {when}. The nearest openings are {}. Would one of those work?",
                    or_list(&offers)
                ));
                r.filler = true;
                r
            }
            Err(_) => {
                let mut r = self.transfer();
                r.text = format!("Sorry, I couldn't complete that. {}", r.text);
                r.filler = true;
                r
            }
        }
    }

    fn failed(&mut self, prefix: &str) -> Reply {
        self.attempts += 1;
        if self.attempts >= self.flow.transfer_after {
            self.expecting = Expecting::TransferOffer;
            return Reply::say(self.flow.offer_transfer.clone());
        }
        let rephrase = self.attempts >= self.flow.rephrase_after;
        let again = match self.expecting.clone() {
            Expecting::Slot(s) => self.prompt_for(&s, rephrase),
            Expecting::Confirmation | Expecting::Change => {
                let t = self
                    .intent
                    .as_deref()
                    .and_then(|i| self.flow.intents.get(i))
                    .and_then(|i| i.confirm.clone())
                    .unwrap_or_default();
                if rephrase {
                    format!(
                        "{} Please say yes, or tell me what to change.",
                        self.fill(&t)
                    )
                } else {
                    self.fill(&t)
                }
            }
            _ => String::new(),
        };
        Reply::say(format!("{prefix} {again}").trim().to_string())
    }

    fn failed_intent(&mut self) -> Reply {
        self.attempts += 1;
        self.expecting = Expecting::Intent;
        if self.attempts >= self.flow.transfer_after {
            self.expecting = Expecting::TransferOffer;
            return Reply::say(self.flow.offer_transfer.clone());
        }
        Reply::say(self.flow.not_understood.clone())
    }
}

/// "A", "A or B", "A, B or C".
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
