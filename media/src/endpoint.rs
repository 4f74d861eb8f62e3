//! The endpointer: turns per-frame voiced/unvoiced decisions into "the
//! caller started speaking" and "the caller finished an utterance".
//!
//! Speech starts after `min_speech` of consecutive voiced frames (the start
//! is the first of them). The utterance ends after `silence` without a voiced
//! frame (its end is the end of the last voiced frame), or when it reaches
//! `max_utterance`. The utterance's audio starts `pre_roll` before the first
//! voiced frame, so the recogniser hears the onset the detector missed, and
//! ends with the last voiced frame.
//!
//! With `pause` set, a shorter silence inside an utterance raises a
//! [`EndpointEvent::Pause`] with the audio so far: the gateway starts
//! recognising speculatively while the endpointer still waits for `silence`,
//! and uses the result if no more speech comes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Samples per millisecond at 16 kHz.
const SAMPLES_PER_MS: usize = 16;

/// Endpointing settings (route settings in the gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Voiced time before speech counts as started.
    pub min_speech: Duration,
    /// Silence that ends an utterance.
    pub silence: Duration,
    /// The longest utterance; a longer one is cut here.
    pub max_utterance: Duration,
    /// Audio kept from before the start.
    pub pre_roll: Duration,
    /// Audio kept after the last voiced frame (at most what was heard):
    /// the detector calls the weak endings of words unvoiced ("six",
    /// "please"), and a recogniser that does not hear them guesses.
    pub post_roll: Duration,
    /// Silence after which a [`EndpointEvent::Pause`] is raised (once per
    /// pause); zero: never. Only useful when shorter than `silence`.
    pub pause: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            min_speech: Duration::from_millis(100),
            silence: Duration::from_millis(500),
            max_utterance: Duration::from_secs(15),
            pre_roll: Duration::from_millis(200),
            post_roll: Duration::from_millis(240),
            pause: Duration::ZERO,
        }
    }
}

/// What the endpointer decided after a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointEvent {
    /// Speech started at `at` (the first voiced frame).
    SpeechStarted {
        /// Start of the first voiced frame.
        at: Instant,
    },
    /// The caller paused for `pause` inside an utterance: the audio so far,
    /// as the utterance would be if it ended now.
    Pause {
        /// 16 kHz mono PCM, pre-roll included, up to the last voiced frame.
        pcm_16k: Vec<i16>,
        /// Start of the first voiced frame.
        start: Instant,
        /// End of the last voiced frame.
        end: Instant,
    },
    /// An utterance ended.
    Utterance {
        /// 16 kHz mono PCM, pre-roll included.
        pcm_16k: Vec<i16>,
        /// Start of the first voiced frame.
        start: Instant,
        /// End of the last voiced frame.
        end: Instant,
    },
}

/// The endpointing state machine.
#[derive(Debug)]
pub struct Endpointer {
    config: EndpointConfig,
    /// While idle: the recent audio (pre-roll plus the current voiced run).
    /// While speaking: the utterance so far.
    audio: VecDeque<i16>,
    voiced_run: Duration,
    run_start: Option<Instant>,
    speaking: bool,
    /// Length of `audio` at the end of the last voiced frame.
    audio_at_last_voiced: usize,
    last_voiced_end: Option<Instant>,
    silence_run: Duration,
    utterance_len: Duration,
}

impl Endpointer {
    /// An idle endpointer.
    pub fn new(config: EndpointConfig) -> Self {
        Endpointer {
            config,
            audio: VecDeque::new(),
            voiced_run: Duration::ZERO,
            run_start: None,
            speaking: false,
            audio_at_last_voiced: 0,
            last_voiced_end: None,
            silence_run: Duration::ZERO,
            utterance_len: Duration::ZERO,
        }
    }

    /// Changes the settings; an utterance in progress continues under them.
    pub fn set_config(&mut self, config: EndpointConfig) {
        self.config = config;
    }

    /// Whether the caller is speaking (speech started, utterance not ended).
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Forgets any speech in progress.
    pub fn reset(&mut self) {
        self.audio.clear();
        self.voiced_run = Duration::ZERO;
        self.run_start = None;
        self.speaking = false;
        self.silence_run = Duration::ZERO;
        self.utterance_len = Duration::ZERO;
        self.last_voiced_end = None;
    }

    /// Takes one frame of 16 kHz audio starting at `at` and the detector's
    /// verdict on it.
    pub fn push(&mut self, at: Instant, frame: &[i16], voiced: bool) -> Option<EndpointEvent> {
        let length = Duration::from_micros((frame.len() * 1000 / SAMPLES_PER_MS) as u64);
        self.audio.extend(frame.iter().copied());
        if self.speaking {
            self.utterance_len += length;
            if voiced {
                self.silence_run = Duration::ZERO;
                self.audio_at_last_voiced = self.audio.len();
                self.last_voiced_end = Some(at + length);
            } else {
                self.silence_run += length;
            }
            if self.silence_run >= self.config.silence
                || self.utterance_len >= self.config.max_utterance
            {
                return Some(self.finish());
            }
            let pause = self.config.pause;
            // Raised on the frame that crosses `pause`, so once per pause.
            if !voiced
                && !pause.is_zero()
                && self.silence_run >= pause
                && self.silence_run - length < pause
            {
                return Some(self.pause());
            }
            return None;
        }
        if voiced {
            let start = *self.run_start.get_or_insert(at);
            self.voiced_run += length;
            if self.voiced_run >= self.config.min_speech {
                self.speaking = true;
                self.utterance_len = self.voiced_run;
                self.silence_run = Duration::ZERO;
                self.audio_at_last_voiced = self.audio.len();
                self.last_voiced_end = Some(at + length);
                return Some(EndpointEvent::SpeechStarted { at: start });
            }
        } else {
            self.voiced_run = Duration::ZERO;
            self.run_start = None;
        }
        let keep = pre_roll_samples(&self.config) + duration_samples(self.voiced_run);
        while self.audio.len() > keep {
            self.audio.pop_front();
        }
        None
    }

    /// Where the utterance's audio ends: the last voiced frame plus the
    /// post-roll, within what was heard.
    fn audio_end(&self) -> usize {
        (self.audio_at_last_voiced + duration_samples(self.config.post_roll)).min(self.audio.len())
    }

    fn pause(&self) -> EndpointEvent {
        let start = self
            .run_start
            .unwrap_or_else(|| self.last_voiced_end.expect("speaking"));
        let end = self.last_voiced_end.unwrap_or(start);
        EndpointEvent::Pause {
            pcm_16k: self.audio.range(..self.audio_end()).copied().collect(),
            start,
            end,
        }
    }

    fn finish(&mut self) -> EndpointEvent {
        let start = self
            .run_start
            .unwrap_or_else(|| self.last_voiced_end.expect("speaking"));
        let end = self.last_voiced_end.unwrap_or(start);
        let keep = self.audio_end();
        self.audio.truncate(keep);
        let pcm_16k: Vec<i16> = self.audio.drain(..).collect();
        self.reset();
        EndpointEvent::Utterance {
            pcm_16k,
            start,
            end,
        }
    }
}

fn duration_samples(d: Duration) -> usize {
    (d.as_micros() as usize * SAMPLES_PER_MS) / 1000
}

fn pre_roll_samples(config: &EndpointConfig) -> usize {
    duration_samples(config.pre_roll)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    /// Runs a voiced pattern ('#' voiced, '.' silent, 20 ms per character)
    /// and returns the events as (frame index, what) with times in frames.
    fn run(config: EndpointConfig, pattern: &str) -> Vec<(usize, String)> {
        let t0 = Instant::now();
        let mut endpointer = Endpointer::new(config);
        let mut events = Vec::new();
        let frames = |t: Instant| ((t - t0).as_millis() / 20) as usize;
        // "what start..end audio first..=last", times in frames.
        let described = |what: &str, pcm: &[i16], start: Instant, end: Instant| {
            let first = pcm.first().copied().unwrap_or(-1);
            let last = pcm.last().copied().unwrap_or(-1);
            format!(
                "{what} {}..{} audio {first}..={last}",
                frames(start),
                frames(end)
            )
        };
        for (i, c) in pattern.chars().enumerate() {
            // Each frame's samples carry its index, to check the audio kept.
            let frame = [i as i16; 320];
            let at = t0 + FRAME * i as u32;
            match endpointer.push(at, &frame, c == '#') {
                Some(EndpointEvent::SpeechStarted { at }) => {
                    events.push((i, format!("start@{}", frames(at))))
                }
                Some(EndpointEvent::Pause {
                    pcm_16k,
                    start,
                    end,
                }) => events.push((i, described("pause", &pcm_16k, start, end))),
                Some(EndpointEvent::Utterance {
                    pcm_16k,
                    start,
                    end,
                }) => events.push((i, described("utterance", &pcm_16k, start, end))),
                None => {}
            }
        }
        events
    }

    #[test]
    fn table() {
        let config = EndpointConfig {
            min_speech: 3 * FRAME,
            silence: 5 * FRAME,
            max_utterance: 20 * FRAME,
            pre_roll: 4 * FRAME,
            post_roll: Duration::ZERO,
            pause: Duration::ZERO,
        };
        // (what, pattern, events)
        /// (frame index, event)
        type Event = (usize, &'static str);
        let cases: Vec<(&str, &str, Vec<Event>)> = vec![
            ("silence", "..........", vec![]),
            ("too short", "..##..##....", vec![]),
            (
                "one utterance",
                "......####......",
                vec![(8, "start@6"), (14, "utterance 6..10 audio 2..=9")],
            ),
            (
                "a pause shorter than the silence is bridged",
                "..###...###........",
                vec![(4, "start@2"), (15, "utterance 2..11 audio 0..=10")],
            ),
            (
                "capped",
                "##############################",
                // Speech going on past the cap starts the next utterance.
                vec![
                    (2, "start@0"),
                    (19, "utterance 0..20 audio 0..=19"),
                    (22, "start@20"),
                ],
            ),
        ];
        for (what, pattern, expected) in cases {
            let expected: Vec<(usize, String)> = expected
                .into_iter()
                .map(|(i, s)| (i, s.to_string()))
                .collect();
            assert_eq!(run(config, pattern), expected, "{what}");
        }
    }

    #[test]
    fn pauses_are_raised_once_each_with_the_audio_so_far() {
        let config = EndpointConfig {
            min_speech: 3 * FRAME,
            silence: 5 * FRAME,
            max_utterance: 40 * FRAME,
            pre_roll: 4 * FRAME,
            post_roll: Duration::ZERO,
            pause: 2 * FRAME,
        };
        let events = run(config, "..###...###.##.....");
        assert_eq!(
            events,
            vec![
                (4, "start@2".to_string()),
                (6, "pause 2..5 audio 0..=4".to_string()),
                // A one-frame gap is no pause.
                (15, "pause 2..14 audio 0..=13".to_string()),
                (18, "utterance 2..14 audio 0..=13".to_string()),
            ]
        );
        // With a post-roll, the audio runs on past the last voiced frame
        // (as far as it was heard), the times do not.
        let config = EndpointConfig {
            post_roll: 3 * FRAME,
            ..config
        };
        let events = run(config, "..###.........");
        assert_eq!(
            events,
            vec![
                (4, "start@2".to_string()),
                (6, "pause 2..5 audio 0..=6".to_string()),
                (9, "utterance 2..5 audio 0..=7".to_string()),
            ]
        );
    }
}
