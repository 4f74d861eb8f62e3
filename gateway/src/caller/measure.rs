//! Voice-to-voice latency at the network edge, sans-IO.
//!
//! The driver tells the meter about every audio RTP packet it sends and
//! receives, with the send or arrival time and whether the packet's decoded
//! audio is voiced (RMS over [`VOICED_DBFS`]: the gateway sends encoded
//! silence between prompts, so packets are judged on energy, not on their
//! presence). A turn's latency runs from the send time of the last voiced
//! packet of the caller's line to the arrival of the first voiced packet
//! after it; a barge-in is bot audio arriving while the caller's line was
//! still voiced.

use std::time::{Duration, Instant};

/// A packet whose audio is louder than this (RMS, dBFS) is voiced.
pub const VOICED_DBFS: f32 = -45.0;

/// The latency of the bot's answer to one caller line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTiming {
    /// Last voiced packet of the line sent → first voiced packet received
    /// after it.
    pub v2v: Duration,
    /// The bot was already talking before the caller's line ended.
    pub barge_in: bool,
}

/// The caller's line being played.
#[derive(Debug, Clone, Default)]
struct Line {
    first_voiced: Option<Instant>,
    last_voiced: Option<Instant>,
    /// Arrival times of voiced packets since the line started.
    heard: Vec<Instant>,
}

/// Per-turn edge timing.
#[derive(Debug, Default)]
pub struct EdgeMeter {
    line: Option<Line>,
    /// The end of the last line (its last voiced packet), while waiting for
    /// the reply, and whether the bot talked over it.
    awaiting: Option<(Instant, bool)>,
    result: Option<ReplyTiming>,
}

impl EdgeMeter {
    /// A meter with nothing measured.
    pub fn new() -> EdgeMeter {
        EdgeMeter::default()
    }

    /// The caller started playing a line (any earlier wait is abandoned).
    pub fn line_started(&mut self) {
        self.line = Some(Line::default());
        self.awaiting = None;
    }

    /// An audio packet of ours left at `sent`.
    pub fn sent(&mut self, sent: Instant, voiced: bool) {
        if let (Some(line), true) = (self.line.as_mut(), voiced) {
            line.first_voiced.get_or_insert(sent);
            line.last_voiced = Some(sent);
        }
    }

    /// An audio packet of the bot's arrived at `at`.
    pub fn received(&mut self, at: Instant, voiced: bool) {
        if !voiced {
            return;
        }
        if let Some(line) = self.line.as_mut() {
            line.heard.push(at);
        } else if let Some((end, barge_in)) = self.awaiting.take() {
            self.result = Some(ReplyTiming {
                v2v: at.saturating_duration_since(end),
                barge_in,
            });
        }
    }

    /// The line's audio has all been sent. A line without voiced audio
    /// measures nothing.
    pub fn line_finished(&mut self) {
        let Some(line) = self.line.take() else {
            return;
        };
        let (Some(first), Some(end)) = (line.first_voiced, line.last_voiced) else {
            return;
        };
        let barge_in = line.heard.iter().any(|&t| t > first && t < end);
        match line.heard.iter().find(|&&t| t >= end) {
            Some(&at) => {
                self.result = Some(ReplyTiming {
                    v2v: at - end,
                    barge_in,
                })
            }
            None => self.awaiting = Some((end, barge_in)),
        }
    }

    /// The timing of the latest reply, once (`None` until one arrived).
    pub fn take(&mut self) -> Option<ReplyTiming> {
        self.result.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn latency_from_last_voiced_sent_to_first_voiced_heard() {
        let t0 = Instant::now();
        let mut meter = EdgeMeter::new();
        meter.line_started();
        for i in 0..50u32 {
            // 40 voiced frames, then 10 of the synthesiser's trailing silence.
            meter.sent(t0 + 20 * MS * i, i < 40);
            // Between prompts the bot sends encoded silence.
            meter.received(t0 + 20 * MS * i + 3 * MS, false);
        }
        meter.line_finished();
        assert_eq!(meter.take(), None);
        meter.received(t0 + 1500 * MS, false);
        meter.received(t0 + 1520 * MS, true);
        meter.received(t0 + 1540 * MS, true);
        assert_eq!(
            meter.take(),
            Some(ReplyTiming {
                v2v: 1520 * MS - 780 * MS,
                barge_in: false
            })
        );
        assert_eq!(meter.take(), None, "once per line");
    }

    #[test]
    fn bot_talking_over_the_line_is_a_barge_in() {
        let t0 = Instant::now();
        let mut meter = EdgeMeter::new();
        meter.line_started();
        for i in 0..20u32 {
            meter.sent(t0 + 20 * MS * i, true);
            // An echo: our own voice back 50 ms later.
            meter.received(t0 + 20 * MS * i + 50 * MS, true);
        }
        meter.line_finished();
        let timing = meter.take().expect("the echo's tail is already here");
        assert!(timing.barge_in);
        assert_eq!(timing.v2v, 10 * MS);
    }

    #[test]
    fn a_silent_line_measures_nothing() {
        let t0 = Instant::now();
        let mut meter = EdgeMeter::new();
        meter.line_started();
        meter.sent(t0, false);
        meter.line_finished();
        meter.received(t0 + 100 * MS, true);
        assert_eq!(meter.take(), None);
    }
}
