//! Fills an audit store with synthetic clinic calls, for measuring the
//! console against a realistic amount of data (`tests/load/console-load.sh`).
//!
//! ```text
//! cargo run --release -p echo-gateway --example seed_calls -- \
//!     --database-url sqlite://./load.db --calls 10000 [--days 30] [--seed 1] [--vocabulary-dir DIR]
//! ```
//!
//! Each call is what the clinic app records: the call start, an `answered`
//! event, 4–6 caller turns with all seven timings, recogniser mishearings
//! and their corrections (from `confusions.txt`, and "doctor <surname>" for
//! providers), the slots after every turn, the bot's replies, now and then a
//! barge-in or a DTMF digit, and the call end with its outcome and final
//! slots. Providers and medications are drawn from the vocabulary
//! (`../shared/data/clinic` from the repository root by default, read at run
//! time), start times spread over the last `--days` days in clinic hours.
//! Some refill callers name their pharmacy ("the walgreens on main street")
//! in a turn only, so free-text search has to look into the turns.
//!
//! Records go through the real store (`echo_audit::connect`, then `append`
//! in batches of about 1000), so the hash chains are the gateway's own. The
//! same `--seed` gives the same calls, apart from their times, which count
//! back from now.

use anyhow::{bail, Context, Result};
use clap::Parser;
use echo_audit::{
    AuditRecord, Call, CallEnd, CallId, DatabaseUrl, Event, EventKind, HangupBy, Outcome, Pii,
    Speaker, Turn, TurnTimings,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Records per `append` (whole calls, so a batch may run a few over).
const BATCH_RECORDS: usize = 1000;
const DAY_US: i64 = 86_400_000_000;
const SECOND_US: i64 = 1_000_000;

#[derive(Parser)]
#[command(about = "Append synthetic clinic calls to an audit store")]
struct Args {
    /// The audit store (`sqlite://FILE` or `postgres://…`).
    #[arg(long)]
    database_url: String,
    /// How many calls.
    #[arg(long, default_value_t = 10_000)]
    calls: usize,
    /// Spread the start times over this many days before now.
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// providers.txt, medications.txt and confusions.txt live here.
    #[arg(long, default_value = "../shared/data/clinic")]
    vocabulary_dir: PathBuf,
}

/// The clinic's vocabulary, as the gateway reads it.
struct Vocabulary {
    /// (name, specialty)
    providers: Vec<(String, String)>,
    medications: Vec<String>,
    /// (heard, meant)
    confusions: Vec<(String, String)>,
}

/// The tab-separated fields of each non-comment line of `dir/name`.
fn read_table(dir: &Path, name: &str) -> Result<Vec<Vec<String>>> {
    let path = dir.join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').map(|f| f.trim().to_owned()).collect())
        .collect())
}

impl Vocabulary {
    fn load(dir: &Path) -> Result<Self> {
        let providers: Vec<(String, String)> = read_table(dir, "providers.txt")?
            .into_iter()
            .map(|f| (f[0].clone(), f.get(1).cloned().unwrap_or_default()))
            .collect();
        let medications: Vec<String> = read_table(dir, "medications.txt")?
            .into_iter()
            .map(|f| f[0].clone())
            .collect();
        let confusions = read_table(dir, "confusions.txt")?
            .into_iter()
            .filter(|f| f.len() >= 2)
            .map(|f| (f[0].clone(), f[1].clone()))
            .collect();
        if providers.is_empty() || medications.is_empty() {
            bail!("no providers or medications in {}", dir.display());
        }
        Ok(Vocabulary {
            providers,
            medications,
            confusions,
        })
    }

    /// What a recogniser might write for `term`: a known mishearing now
    /// and then, else the term itself.
    fn heard<'a>(&'a self, rng: &mut StdRng, term: &'a str) -> &'a str {
        let misheard: Vec<&str> = self
            .confusions
            .iter()
            .filter(|(_, meant)| meant.eq_ignore_ascii_case(term))
            .map(|(heard, _)| heard.as_str())
            .collect();
        if !misheard.is_empty() && rng.random_bool(0.6) {
            misheard[rng.random_range(0..misheard.len())]
        } else {
            term
        }
    }
}

const FIRST_NAMES: &[&str] = &[
    "Maria", "James", "Linda", "Robert", "Aisha", "Wei", "Carlos", "Fatima", "John", "Priya",
    "Olga", "David", "Keisha", "Tom", "Mei", "Ahmed", "Grace", "Luis", "Hannah", "Samuel",
];
const LAST_NAMES: &[&str] = &[
    "Garcia", "Smith", "Johnson", "Lee", "Brown", "Nguyen", "Martinez", "Khan", "Miller", "Davis",
    "Wilson", "Lopez", "Clark", "Young", "Walker", "Hall", "Allen", "King",
];
const PHARMACIES: &[&str] = &[
    "the walgreens on main street",
    "cvs on elm",
    "the rite aid by the mall",
    "costco pharmacy",
];
const MONTHS: &[&str] = &[
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
];
const FILLERS: &[(&str, &str)] = &[
    ("sorry what was that", "No problem. "),
    ("um hold on one second", "Take your time. "),
    ("can you repeat that", "Of course. "),
];

/// One caller turn before timing: what was heard, what it became, and how.
struct Said {
    raw: String,
    corrected: String,
    corrections: Vec<Value>,
    /// Slots this turn sets.
    sets: Vec<(&'static str, String)>,
    reply: String,
}

impl Said {
    fn plain(text: impl Into<String>, sets: Vec<(&'static str, String)>, reply: &str) -> Self {
        let text = text.into();
        Said {
            raw: text.clone(),
            corrected: text,
            corrections: Vec::new(),
            sets,
            reply: reply.to_owned(),
        }
    }

    /// `template` with `{}` replaced by `heard` (raw) and `meant` (corrected),
    /// with a correction entry when they differ.
    fn corrected(
        template: &str,
        heard: &str,
        meant: &str,
        kind: &str,
        sets: Vec<(&'static str, String)>,
        reply: String,
    ) -> Self {
        let raw = template.replace("{}", heard);
        let corrected = template.replace("{}", meant);
        let mut corrections = Vec::new();
        if heard != meant {
            let start = raw.find(heard).unwrap_or(0);
            corrections.push(json!({
                "from": heard, "to": meant, "kind": kind, "span": [start, start + heard.len()]
            }));
        }
        Said {
            raw,
            corrected,
            corrections,
            sets,
            reply,
        }
    }
}

struct Caller {
    name: String,
    dob_iso: String,
    dob_said: String,
}

fn caller(rng: &mut StdRng) -> Caller {
    let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
    let (y, m, d) = (
        rng.random_range(1935..2006),
        rng.random_range(1..=12),
        rng.random_range(1..=28),
    );
    Caller {
        name: format!("{first} {last}"),
        dob_iso: format!("{y:04}-{m:02}-{d:02}"),
        dob_said: format!("{} {d} {y}", MONTHS[m - 1]),
    }
}

/// The name and date-of-birth turns every intent asks for.
fn identify(c: &Caller, next_question: &str) -> [Said; 2] {
    [
        Said::plain(
            format!("it's {}", c.name.to_lowercase()),
            vec![("patient_name", c.name.clone())],
            "Thank you. And your date of birth?",
        ),
        Said::plain(
            c.dob_said.clone(),
            vec![("date_of_birth", c.dob_iso.clone())],
            next_question,
        ),
    ]
}

/// A call's script: the turns and how it ends.
fn script(
    rng: &mut StdRng,
    vocab: &Vocabulary,
    day: chrono::NaiveDate,
) -> (Vec<Said>, Outcome, HangupBy) {
    let who = caller(rng);
    let (provider, specialty) = &vocab.providers[rng.random_range(0..vocab.providers.len())];
    let medication = &vocab.medications[rng.random_range(0..vocab.medications.len())];
    let surname = provider
        .rsplit(' ')
        .next()
        .unwrap_or(provider)
        .to_lowercase();
    let roll = rng.random_range(0..100);
    let (mut turns, outcome, hangup) = match roll {
        // Refill, and the abandoned refills.
        0..=29 | 90..=94 => {
            let heard = vocab.heard(rng, medication);
            let mut t = vec![Said::corrected(
                "hi I need a refill of {}",
                heard,
                medication,
                "medication",
                vec![
                    ("intent", "refill".into()),
                    ("medication", medication.clone()),
                ],
                "Sure. May I have your full name?".into(),
            )];
            t.extend(identify(&who, "Which pharmacy should we send it to?"));
            t.push(Said::plain(
                PHARMACIES[rng.random_range(0..PHARMACIES.len())],
                vec![],
                &format!(
                    "Let me read that back: a refill of {medication} for {}, born {}. Shall I send the request?",
                    who.name, who.dob_iso
                ),
            ));
            if roll >= 90 {
                (t, Outcome::Abandoned, HangupBy::Caller)
            } else {
                t.push(Said::plain(
                    "yes please",
                    vec![],
                    &format!("Your {medication} refill request has gone to the pharmacy. Goodbye."),
                ));
                (t, Outcome::RefillRequested, HangupBy::Bot)
            }
        }
        // Booking, and the abandoned bookings.
        30..=64 | 95..=97 => {
            let date = day + chrono::Days::new(rng.random_range(1..21));
            let hour = rng.random_range(8..17);
            let half = if rng.random_bool(0.5) { 30 } else { 0 };
            let mut t = vec![Said::corrected(
                "I'd like to book an appointment with {}",
                &format!("doctor {surname}"),
                provider,
                "provider",
                vec![
                    ("intent", "book_appointment".into()),
                    ("provider", provider.clone()),
                    ("specialty", specialty.clone()),
                ],
                "Sure. May I have your full name?".into(),
            )];
            t.extend(identify(&who, "What day would suit you?"));
            t.push(Said::plain(
                format!(
                    "{} the {}",
                    date.format("%A").to_string().to_lowercase(),
                    date.format("%-d")
                ),
                vec![("date", date.to_string())],
                "And what time?",
            ));
            let time = format!("{hour:02}:{half:02}");
            t.push(Said::plain(
                format!("{hour} {}", if half == 0 { "o'clock" } else { "thirty" }),
                vec![("time", time.clone())],
                &format!(
                    "Let me read that back: {}, born {}, with {provider} on {date} at {time}. Shall I book it?",
                    who.name, who.dob_iso
                ),
            ));
            if roll >= 95 {
                (t, Outcome::Abandoned, HangupBy::Caller)
            } else {
                t.push(Said::plain(
                    "yes that's right",
                    vec![],
                    "You're booked. Goodbye.",
                ));
                (t, Outcome::Booked, HangupBy::Bot)
            }
        }
        // Cancellation.
        65..=74 => {
            let date = day + chrono::Days::new(rng.random_range(1..14));
            let mut t = vec![Said::plain(
                "I need to cancel my appointment",
                vec![("intent", "cancel_appointment".into())],
                "I can help with that. May I have your full name?",
            )];
            t.extend(identify(&who, "Which day is the appointment?"));
            t.push(Said::plain(
                format!("it's on the {}", date.format("%-d")),
                vec![
                    ("cancel_date", date.to_string()),
                    ("provider", provider.clone()),
                ],
                &format!("Cancel the appointment with {provider} on {date}?"),
            ));
            t.push(Said::plain("yes", vec![], "It's cancelled. Goodbye."));
            (t, Outcome::Cancelled, HangupBy::Bot)
        }
        // Wants a person, often after naming a drug or a doctor.
        75..=86 => {
            let heard = vocab.heard(rng, medication);
            let t = vec![
                Said::corrected(
                    "I have a question about my {}",
                    heard,
                    medication,
                    "medication",
                    vec![("medication", medication.clone())],
                    "I can help with refills and appointments. What would you like to do?".into(),
                ),
                Said::corrected(
                    "it's about a side effect {} told me about",
                    &format!("doctor {surname}"),
                    provider,
                    "provider",
                    vec![("provider", provider.clone())],
                    "I'm sorry, I can't advise on that. Would you like to talk to someone?".into(),
                ),
                Said::plain(
                    "yes can I talk to a real person",
                    vec![("intent", "talk_to_staff".into())],
                    "Of course.",
                ),
                Said::plain(
                    "thank you",
                    vec![],
                    "Transferring you to the front desk now.",
                ),
            ];
            (t, Outcome::Transferred, HangupBy::Transfer)
        }
        // Something broke mid-call.
        _ => {
            let heard = vocab.heard(rng, medication);
            let mut t = vec![Said::corrected(
                "refill for {} please",
                heard,
                medication,
                "medication",
                vec![
                    ("intent", "refill".into()),
                    ("medication", medication.clone()),
                ],
                "Sure. May I have your full name?".into(),
            )];
            t.extend(identify(&who, "Which pharmacy should we send it to?"));
            t.push(Said::plain(
                "hello are you there",
                vec![],
                "Sorry, one moment.",
            ));
            (t, Outcome::Failed, HangupBy::System)
        }
    };
    // Real callers stall: up to two asides, kept within 6 turns.
    while turns.len() < 6 && rng.random_bool(0.3) {
        let at = rng.random_range(1..turns.len());
        let (text, prefix) = FILLERS[rng.random_range(0..FILLERS.len())];
        let repeat = turns[at - 1].reply.clone();
        turns.insert(at, Said::plain(text, vec![], &format!("{prefix}{repeat}")));
    }
    (turns, outcome, hangup)
}

/// The records of one call that started at `started_unix_us`.
fn call_records(rng: &mut StdRng, vocab: &Vocabulary, started_unix_us: i64) -> Vec<AuditRecord> {
    let id = CallId(hex::encode(rng.random::<[u8; 16]>()));
    let day = chrono::DateTime::from_timestamp_micros(started_unix_us)
        .map(|t| t.date_naive())
        .unwrap_or_default();
    let (said, outcome, hangup_by) = script(rng, vocab, day);
    let codec = ["PCMU", "PCMU", "PCMA", "opus"][rng.random_range(0..4)];
    let mut records: Vec<AuditRecord> = vec![Call {
        call_id: id.clone(),
        trunk: "clinic-trunk".into(),
        caller: format!("+1555{:07}", rng.random_range(0..10_000_000)).into(),
        called: "+15550100".into(),
        route: "clinic".into(),
        app: "clinic".into(),
        sip_call_id: format!("{}@10.0.0.{}", &id.0[..12], rng.random_range(2..250)),
        codec: codec.into(),
        started_unix_us,
    }
    .into()];
    let answered_us = rng.random_range(20_000..120_000);
    let mut events = vec![(answered_us, EventKind::Answered, json!({}))];
    let mut slots = Map::new();
    // The greeting plays first.
    let mut t = answered_us + rng.random_range(3_500_000..5_000_000);
    for (seq, s) in said.into_iter().enumerate() {
        for (k, v) in s.sets {
            slots.insert(k.to_owned(), Value::String(v));
        }
        let speech_start = t + rng.random_range(300_000..1_500_000);
        let speech_end = speech_start + rng.random_range(700_000..3_500_000);
        let endpoint = speech_end + rng.random_range(200_000..500_000);
        let stt_final = endpoint + rng.random_range(80_000..450_000);
        let dialogue = stt_final + rng.random_range(2_000..60_000);
        let tts = dialogue + rng.random_range(60_000..350_000);
        let packet = tts + rng.random_range(2_000..25_000);
        let reply_len = 60_000 * s.reply.split_whitespace().count() as i64 + 400_000;
        let barge_in = rng
            .random_bool(0.06)
            .then(|| packet + rng.random_range(300_000..reply_len.max(400_000)));
        if let Some(at) = barge_in {
            events.push((at, EventKind::BargeIn, json!({ "turn": seq })));
        }
        if rng.random_bool(0.02) {
            let digit = rng.random_range(0..10).to_string();
            events.push((
                speech_start - 200_000,
                EventKind::Dtmf,
                json!({ "digit": digit }),
            ));
        }
        records.push(
            Turn {
                call_id: id.clone(),
                seq: seq as i64,
                speaker: Speaker::Caller,
                raw_text: s.raw.into(),
                raw_confidence: Some(rng.random_range(0.55..0.98)),
                corrected_text: s.corrected.into(),
                corrections: Pii(Value::Array(s.corrections)),
                slots: Pii(Value::Object(slots.clone())),
                reply_text: Some(s.reply.into()),
                timings: TurnTimings {
                    speech_start_us: Some(speech_start),
                    speech_end_us: Some(speech_end),
                    endpoint_us: Some(endpoint),
                    stt_final_us: Some(stt_final),
                    dialogue_us: Some(dialogue),
                    tts_first_audio_us: Some(tts),
                    first_reply_packet_us: Some(packet),
                },
                barge_in_us: barge_in,
            }
            .into(),
        );
        t = barge_in.unwrap_or(packet + reply_len);
    }
    let ended_us = t + rng.random_range(300_000..1_500_000);
    let transfer_target =
        (outcome == Outcome::Transferred).then(|| "sip:frontdesk@clinic".to_owned());
    if let Some(target) = &transfer_target {
        events.push((
            ended_us - 200_000,
            EventKind::Transfer,
            json!({ "target": target }),
        ));
    }
    if outcome == Outcome::Failed {
        events.push((
            ended_us - 100_000,
            EventKind::Error,
            json!({ "layer": "speech", "message": "recogniser stopped responding" }),
        ));
    }
    events.sort_by_key(|e| e.0);
    for (seq, (at_us, kind, detail)) in events.into_iter().enumerate() {
        records.push(
            Event {
                call_id: id.clone(),
                seq: seq as i64,
                at_us,
                kind,
                detail: Pii(detail),
            }
            .into(),
        );
    }
    records.push(
        CallEnd {
            call_id: id,
            answered_unix_us: Some(started_unix_us + answered_us),
            ended_unix_us: started_unix_us + ended_us,
            hangup_by,
            sip_code: None,
            transfer_target: transfer_target.map(Pii),
            outcome,
            final_slots: Pii(Value::Object(slots)),
        }
        .into(),
    );
    records
}

/// A start time in the last `days` days, in clinic hours (UTC 08–18).
fn start_time(rng: &mut StdRng, now_unix_us: i64, days: i64) -> i64 {
    let today = now_unix_us - now_unix_us.rem_euclid(DAY_US);
    let day = today - rng.random_range(0..days.max(1)) * DAY_US;
    let at =
        day + rng.random_range(8 * 3600..18 * 3600) * SECOND_US + rng.random_range(0..SECOND_US);
    at.min(now_unix_us - 120 * SECOND_US)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let vocab = Vocabulary::load(&args.vocabulary_dir)?;
    let store = echo_audit::connect(&DatabaseUrl::new(args.database_url.clone()))
        .await
        .context("connecting to the audit store")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as i64;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let t0 = Instant::now();
    let (mut batch, mut stored) = (Vec::with_capacity(BATCH_RECORDS + 32), 0usize);
    for n in 0..args.calls {
        let started = start_time(&mut rng, now, args.days);
        batch.extend(call_records(&mut rng, &vocab, started));
        if batch.len() >= BATCH_RECORDS || n + 1 == args.calls {
            let done = store.append(&batch).await.context("appending a batch")?;
            stored += done.inserted;
            batch.clear();
        }
    }
    store.close().await;
    println!(
        "seeded {} calls ({stored} records) in {:.1} s",
        args.calls,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
