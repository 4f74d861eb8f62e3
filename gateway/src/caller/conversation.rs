//! The caller's side of the conversation, sans-IO: when a bot prompt is
//! over, what to say back, when to speak first, when to hang up, and the
//! turn records with their edge latency.
//!
//! The driver feeds it the media session's events, the audio packets it
//! sends and receives (for the [`EdgeMeter`]), transcripts, the SIP side's
//! news and timer ticks, each with `now`; it drains [`Action`]s and sleeps
//! until [`Conversation::poll_timeout`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use echo_media::MediaEvent;

use super::measure::{EdgeMeter, ReplyTiming};
use super::prompt::{Reply, Script};
use super::{Ended, Turn};

/// Bot utterances closer than this are one prompt.
pub const JOIN_GAP: Duration = Duration::from_millis(1200);
/// After the goodbye (or an accepted REFER), how long the bot has to hang
/// up before the caller does.
pub const HANGUP_GRACE: Duration = Duration::from_secs(4);
/// How long the caller keeps listening after the call ended for the bot's
/// last prompt to be endpointed and transcribed.
pub const LAST_WORDS: Duration = Duration::from_secs(8);
/// Silence put between joined utterances of one prompt (16 kHz samples).
const JOIN_SILENCE_SAMPLES: usize = 16_000 * 3 / 10;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Transcribe this prompt audio (16 kHz) and hand the text back with
    /// [`Conversation::transcript`] and the same generation.
    Transcribe {
        /// Identifies the request; a stale answer is ignored.
        generation: u64,
        /// The prompt's audio.
        pcm_16k: Vec<i16>,
    },
    /// A prompt is complete (for `--save-audio`).
    PromptAudio {
        /// The prompt's audio, 16 kHz.
        pcm_16k: Vec<i16>,
    },
    /// A turn was recorded (to print it).
    Turn(Turn),
    /// Speak this line; report [`MediaEvent::PlayoutFinished`] when done.
    Say(String),
    /// End the call (BYE, or CANCEL while ringing).
    HangUp,
}

/// The conversation's settings.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The whole call's limit.
    pub timeout: Duration,
    /// Speak first when the bot said nothing this long after answering.
    pub speak_first_after: Duration,
    /// Whether a recogniser transcribes prompts (else listen-only).
    pub transcribe: bool,
    /// Speak the opening `speak_first_after` after the answer even while
    /// the bot is still greeting (a barge-in test).
    pub barge_in: bool,
}

/// The conversation core.
#[derive(Debug)]
pub struct Conversation {
    timing: Timing,
    script: Script,
    meter: EdgeMeter,
    started: Instant,
    answered_at: Option<Instant>,
    heard_anything: bool,
    heard_pcm: Vec<i16>,
    bot_speaking: bool,
    last_speech_end: Option<Instant>,
    transcribing: Option<u64>,
    generation: u64,
    /// A line is being synthesised or played.
    caller_speaking: bool,
    done_at: Option<Instant>,
    ending: Option<Ended>,
    ended_at: Option<Instant>,
    turns: Vec<Turn>,
    actions: VecDeque<Action>,
}

impl Conversation {
    /// A call placed at `now`.
    pub fn new(script: Script, timing: Timing, now: Instant) -> Conversation {
        Conversation {
            timing,
            script,
            meter: EdgeMeter::new(),
            started: now,
            answered_at: None,
            heard_anything: false,
            heard_pcm: Vec::new(),
            bot_speaking: false,
            last_speech_end: None,
            transcribing: None,
            generation: 0,
            caller_speaking: false,
            done_at: None,
            ending: None,
            ended_at: None,
            turns: Vec::new(),
            actions: VecDeque::new(),
        }
    }

    /// The turns so far.
    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    /// How the call ended, once it has.
    pub fn ending(&self) -> Option<Ended> {
        self.ending
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The bot answered.
    pub fn answered(&mut self, now: Instant) {
        self.answered_at.get_or_insert(now);
    }

    /// The call is over (`how`); the bot's last prompt may still be heard
    /// out for [`LAST_WORDS`]. The first reason given sticks.
    pub fn end(&mut self, now: Instant, how: Ended) {
        if self.ending.is_none() {
            self.ending = Some(how);
            self.ended_at = Some(now);
        }
    }

    /// The bot transferred the call: hang up after the grace unless it does.
    pub fn transferred(&mut self, now: Instant) {
        self.done_at.get_or_insert(now);
    }

    /// One of our audio packets left.
    pub fn sent(&mut self, now: Instant, voiced: bool) {
        self.meter.sent(now, voiced);
    }

    /// One of the bot's audio packets arrived.
    pub fn received(&mut self, now: Instant, voiced: bool) {
        self.meter.received(now, voiced);
    }

    /// An event from the media session.
    pub fn media_event(&mut self, now: Instant, event: &MediaEvent) {
        match event {
            MediaEvent::SpeechStarted { .. } => {
                self.heard_anything = true;
                self.bot_speaking = true;
                self.invalidate_transcription();
            }
            MediaEvent::Utterance { pcm_16k, end, .. } => {
                self.heard_anything = true;
                self.bot_speaking = false;
                self.invalidate_transcription();
                if !self.heard_pcm.is_empty() {
                    self.heard_pcm
                        .extend(std::iter::repeat_n(0, JOIN_SILENCE_SAMPLES));
                }
                self.heard_pcm.extend_from_slice(pcm_16k);
                self.last_speech_end = Some(*end);
            }
            MediaEvent::PlayoutFinished => {
                self.caller_speaking = false;
                self.meter.line_finished();
            }
            _ => {}
        }
        self.step(now);
    }

    /// The transcript of the prompt sent with [`Action::Transcribe`].
    pub fn transcript(&mut self, now: Instant, generation: u64, text: String) {
        if self.transcribing != Some(generation) {
            return;
        }
        self.transcribing = None;
        self.prompt_over(now, Some(text));
    }

    /// Runs the conversation's timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.step(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Only deadlines that step() can act on: a passed one that waits
        // for something else (our line still playing, a transcript) would
        // make the driver spin.
        let prompt_over = self
            .last_speech_end
            .filter(|_| {
                !self.caller_speaking
                    && !self.bot_speaking
                    && self.transcribing.is_none()
                    && !self.heard_pcm.is_empty()
                    && self.answered_at.is_some()
            })
            .map(|end| end + JOIN_GAP);
        if self.ending.is_some() {
            return prompt_over;
        }
        let speak_first = self
            .answered_at
            .filter(|_| {
                (!self.heard_anything || self.timing.barge_in)
                    && !self.caller_speaking
                    && self.turns.is_empty()
                    && self.done_at.is_none()
            })
            .map(|a| a + self.timing.speak_first_after);
        let grace = self.done_at.map(|d| d + HANGUP_GRACE);
        [
            prompt_over,
            speak_first,
            grace,
            Some(self.started + self.timing.timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether the caller is still hearing the bot's last prompt out after
    /// the call ended.
    pub fn hearing_last_words(&self, now: Instant) -> bool {
        let pending =
            self.bot_speaking || !self.heard_pcm.is_empty() || self.transcribing.is_some();
        pending
            && self.ending != Some(Ended::Error)
            && self.ended_at.is_some_and(|at| now < at + LAST_WORDS)
    }

    fn invalidate_transcription(&mut self) {
        if self.transcribing.take().is_some() {
            self.generation += 1;
        }
    }

    fn step(&mut self, now: Instant) {
        if self.ending.is_none() {
            if now >= self.started + self.timing.timeout {
                self.end(now, Ended::Timeout);
                self.actions.push_back(Action::HangUp);
                return;
            }
            if self.done_at.is_some_and(|done| now >= done + HANGUP_GRACE) {
                self.end(now, Ended::CallerHangup);
                self.actions.push_back(Action::HangUp);
            }
        }
        let Some(answered) = self.answered_at else {
            return;
        };
        if self.caller_speaking {
            return;
        }
        if self.ending.is_none()
            && self.done_at.is_none()
            && (!self.heard_anything || self.timing.barge_in)
            && self.turns.is_empty()
            && now >= answered + self.timing.speak_first_after
        {
            let reply = self.script.speak_first();
            self.record(now, String::new(), None, reply);
            return;
        }
        let prompt_over = !self.heard_pcm.is_empty()
            && !self.bot_speaking
            && self.transcribing.is_none()
            && self
                .last_speech_end
                .is_some_and(|end| now >= end + JOIN_GAP);
        if !prompt_over {
            return;
        }
        if self.timing.transcribe {
            self.transcribing = Some(self.generation);
            self.actions.push_back(Action::Transcribe {
                generation: self.generation,
                pcm_16k: self.heard_pcm.clone(),
            });
        } else {
            self.prompt_over(now, None);
        }
    }

    /// The bot's prompt is complete: record it and answer.
    fn prompt_over(&mut self, now: Instant, text: Option<String>) {
        let pcm_16k = std::mem::take(&mut self.heard_pcm);
        self.last_speech_end = None;
        let bot = match &text {
            Some(t) => t.clone(),
            None => format!("[{:.1} s of speech]", pcm_16k.len() as f64 / 16_000.0),
        };
        self.actions.push_back(Action::PromptAudio { pcm_16k });
        let reply = self.script.reply(text.as_deref());
        let timing = self.meter.take();
        self.record(now, bot, timing, reply);
    }

    fn record(&mut self, now: Instant, bot: String, timing: Option<ReplyTiming>, reply: Reply) {
        let mut turn = Turn {
            bot,
            caller: None,
            asked_slot: None,
            v2v_ms: timing.map(|t| t.v2v.as_millis() as u64),
            barge_in: timing.is_some_and(|t| t.barge_in),
        };
        let over = self.ending.is_some() || self.done_at.is_some();
        match reply {
            // The bot hung up (or transferred us) while we listened to its
            // last words: they are recorded, not answered.
            Reply::Say { .. } | Reply::Listen if over => {}
            Reply::Say { line, slot } => {
                turn.caller = Some(line.clone());
                turn.asked_slot = slot;
                self.caller_speaking = true;
                self.meter.line_started();
                self.actions.push_back(Action::Say(line));
            }
            Reply::Listen => {}
            Reply::Done => {
                self.done_at.get_or_insert(now);
            }
        }
        self.actions.push_back(Action::Turn(turn.clone()));
        self.turns.push(turn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::scenario::Scenario;

    const MS: Duration = Duration::from_millis(1);

    fn scenario() -> Scenario {
        Scenario::from_toml(
            "opening = \"I need a refill.\"\n[answers]\nmedication = \"lisinopril\"\n",
        )
        .unwrap()
    }

    fn timing(transcribe: bool) -> Timing {
        Timing {
            timeout: Duration::from_secs(180),
            speak_first_after: Duration::from_secs(5),
            transcribe,
            barge_in: false,
        }
    }

    fn actions(c: &mut Conversation) -> Vec<Action> {
        std::iter::from_fn(|| c.poll_action()).collect()
    }

    fn says(actions: &[Action]) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Say(line) => Some(line.as_str()),
                _ => None,
            })
            .collect()
    }

    fn utterance(end: Instant) -> MediaEvent {
        MediaEvent::Utterance {
            pcm_16k: vec![1000; 16_000],
            start: end - 1000 * MS,
            end,
        }
    }

    /// Drives `c` from `from` to `to` by its own deadlines.
    fn run_until(c: &mut Conversation, to: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let mut steps = 0;
        while let Some(at) = c.poll_timeout().filter(|&at| at <= to) {
            steps += 1;
            assert!(
                steps < 100,
                "a deadline that does not move: the driver would spin"
            );
            c.handle_timeout(at);
            out.extend(actions(c));
        }
        out
    }

    #[test]
    fn utterances_close_together_are_one_prompt() {
        let t0 = Instant::now();
        let mut c = Conversation::new(Script::new(scenario()), timing(true), t0);
        c.answered(t0);
        c.media_event(t0 + 100 * MS, &MediaEvent::SpeechStarted { at: t0 });
        c.media_event(t0 + 2900 * MS, &utterance(t0 + 2000 * MS));
        // The next sentence starts 1 s after: still the same prompt.
        c.media_event(
            t0 + 3000 * MS,
            &MediaEvent::SpeechStarted { at: t0 + 3000 * MS },
        );
        assert!(run_until(&mut c, t0 + 4000 * MS).is_empty());
        c.media_event(t0 + 4900 * MS, &utterance(t0 + 4000 * MS));
        assert!(run_until(&mut c, t0 + 5199 * MS).is_empty());
        let a = run_until(&mut c, t0 + 5200 * MS);
        let Some(Action::Transcribe {
            generation,
            pcm_16k,
        }) = a.first()
        else {
            panic!("{a:?}");
        };
        assert_eq!(pcm_16k.len(), 2 * 16_000 + JOIN_SILENCE_SAMPLES);
        c.transcript(t0 + 5600 * MS, *generation, "How can I help?".into());
        let a = actions(&mut c);
        assert_eq!(says(&a), ["I need a refill."]);
        assert!(matches!(&a[0], Action::PromptAudio { .. }));
        assert_eq!(c.turns()[0].asked_slot.as_deref(), Some("opening"));
    }

    #[test]
    fn a_transcript_outrun_by_more_speech_is_dropped() {
        let t0 = Instant::now();
        let mut c = Conversation::new(Script::new(scenario()), timing(true), t0);
        c.answered(t0);
        c.media_event(t0, &utterance(t0));
        let a = run_until(&mut c, t0 + JOIN_GAP);
        let Some(Action::Transcribe { generation, .. }) = a.first() else {
            panic!("{a:?}");
        };
        // The bot goes on before the transcript is back.
        c.media_event(
            t0 + 1500 * MS,
            &MediaEvent::SpeechStarted { at: t0 + 1500 * MS },
        );
        c.transcript(t0 + 1600 * MS, *generation, "Hello.".into());
        assert!(says(&actions(&mut c)).is_empty());
        c.media_event(t0 + 3000 * MS, &utterance(t0 + 2100 * MS));
        let a = run_until(&mut c, t0 + 3300 * MS);
        let Some(Action::Transcribe {
            generation: g2,
            pcm_16k,
        }) = a.first()
        else {
            panic!("{a:?}");
        };
        assert_ne!(g2, generation);
        assert_eq!(pcm_16k.len(), 2 * 16_000 + JOIN_SILENCE_SAMPLES);
        c.transcript(
            t0 + 3500 * MS,
            *g2,
            "Which medication would you like refilled?".into(),
        );
        assert_eq!(says(&actions(&mut c)), ["lisinopril"]);
    }

    #[test]
    fn a_silent_bot_is_spoken_to_first_and_nothing_overlaps_our_line() {
        let t0 = Instant::now();
        let mut c = Conversation::new(Script::listen_only(scenario()), timing(false), t0);
        c.answered(t0);
        let a = run_until(&mut c, t0 + 5000 * MS);
        assert_eq!(says(&a), ["I need a refill."]);
        // While our line plays, a finished bot prompt waits for it.
        c.media_event(t0 + 6000 * MS, &utterance(t0 + 5500 * MS));
        assert!(run_until(&mut c, t0 + 8000 * MS).is_empty());
        c.media_event(t0 + 8000 * MS, &MediaEvent::PlayoutFinished);
        assert_eq!(says(&actions(&mut c)), ["lisinopril"]);
    }

    #[test]
    fn goodbye_then_no_bye_means_we_hang_up_after_the_grace() {
        let t0 = Instant::now();
        let mut c = Conversation::new(Script::new(scenario()), timing(true), t0);
        c.answered(t0);
        c.media_event(t0, &utterance(t0));
        let a = run_until(&mut c, t0 + JOIN_GAP);
        let Some(Action::Transcribe { generation, .. }) = a.first() else {
            panic!("{a:?}");
        };
        c.transcript(
            t0 + JOIN_GAP,
            *generation,
            "Thank you for calling. Goodbye.".into(),
        );
        assert!(says(&actions(&mut c)).is_empty());
        let a = run_until(&mut c, t0 + JOIN_GAP + HANGUP_GRACE);
        assert!(a.contains(&Action::HangUp), "{a:?}");
        assert_eq!(c.ending(), Some(Ended::CallerHangup));
    }

    #[test]
    fn the_last_words_after_a_bye_are_recorded_not_answered() {
        let t0 = Instant::now();
        let mut c = Conversation::new(Script::new(scenario()), timing(true), t0);
        c.answered(t0);
        c.media_event(t0, &MediaEvent::SpeechStarted { at: t0 });
        c.end(t0 + 500 * MS, Ended::ByeFromBot);
        assert!(c.hearing_last_words(t0 + 500 * MS));
        c.media_event(t0 + 1500 * MS, &utterance(t0 + 600 * MS));
        let a = run_until(&mut c, t0 + 1800 * MS);
        let Some(Action::Transcribe { generation, .. }) = a.first() else {
            panic!("{a:?}");
        };
        c.transcript(t0 + 2000 * MS, *generation, "Which medication?".into());
        assert!(says(&actions(&mut c)).is_empty());
        assert_eq!(c.turns().len(), 1);
        assert_eq!(c.turns()[0].caller, None);
        assert!(!c.hearing_last_words(t0 + 2000 * MS));
    }

    #[test]
    fn the_call_times_out() {
        let t0 = Instant::now();
        let mut c = Conversation::new(
            Script::new(scenario()),
            Timing {
                timeout: Duration::from_secs(3),
                ..timing(true)
            },
            t0,
        );
        let a = run_until(&mut c, t0 + Duration::from_secs(10));
        assert_eq!(a, [Action::HangUp]);
        assert_eq!(c.ending(), Some(Ended::Timeout));
    }
}
