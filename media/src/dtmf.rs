//! DTMF as RFC 4733 telephone-events: the 4-byte payload, a receiver that
//! reports each key press once, and the send schedule for one key press.
//!
//! A key press is identified by its RTP timestamp (RFC 4733 §2.5.1.1: every
//! packet of one event carries the event's start timestamp), so the three
//! repeated end packets, a lost start packet or a missing marker bit do not
//! change how many presses are seen.

use std::time::Duration;

/// The telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0–9, 10 = `*`, 11 = `#`, 12–15 = A–D.
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in −dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses a payload; `None` when it is shorter than 4 bytes.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let &[event, flags, hi, lo, ..] = payload else {
            return None;
        };
        Some(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([hi, lo]),
        })
    }

    /// The 4 payload bytes.
    pub fn to_bytes(self) -> [u8; 4] {
        let [hi, lo] = self.duration.to_be_bytes();
        let end = if self.end { 0x80 } else { 0 };
        [self.event, end | (self.volume & 0x3F), hi, lo]
    }
}

/// The event code of a DTMF key (`0`–`9`, `*`, `#`, `A`–`D`).
pub fn digit_to_event(digit: char) -> Option<u8> {
    Some(match digit.to_ascii_uppercase() {
        d @ '0'..='9' => d as u8 - b'0',
        '*' => 10,
        '#' => 11,
        d @ 'A'..='D' => d as u8 - b'A' + 12,
        _ => return None,
    })
}

/// The DTMF key of an event code, if it is one.
pub fn event_to_digit(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None,
    })
}

/// Turns telephone-event packets into one key press each.
#[derive(Debug, Default, Clone)]
pub struct DtmfReceiver {
    /// (SSRC, timestamp) of the last event reported.
    last: Option<(u32, u32)>,
}

impl DtmfReceiver {
    /// A receiver that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one telephone-event packet; returns the key when the packet is
    /// the first seen of a new press.
    pub fn receive(&mut self, ssrc: u32, timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = TelephoneEvent::parse(payload)?;
        let digit = event_to_digit(event.event)?;
        if self.last == Some((ssrc, timestamp)) {
            return None;
        }
        self.last = Some((ssrc, timestamp));
        Some(digit)
    }
}

/// How long a sent key press sounds.
pub const TONE: Duration = Duration::from_millis(100);
/// Interval between the updates of a key press being sent.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(50);
/// Interval between the three end packets.
pub const END_INTERVAL: Duration = Duration::from_millis(20);
/// Volume sent, in −dBm0 (a typical keypad level).
pub const VOLUME: u8 = 10;

/// One packet of a key press being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfStep {
    /// When to send it, after the start of the press.
    pub offset: Duration,
    /// Marker bit: set on the first packet.
    pub marker: bool,
    /// The payload.
    pub event: TelephoneEvent,
}

/// The packets of one key press (RFC 4733 §2.5.1): a start packet with the
/// marker bit, updates every 50 ms while the 100 ms tone lasts, then the
/// end packet three times, 20 ms apart. Each packet's duration is the part
/// of the tone it covers so far; all share the press's RTP timestamp; each
/// gets its own sequence number.
pub fn send_schedule(event: u8, clock_rate: u32) -> Vec<DtmfStep> {
    let units = |d: Duration| (d.as_micros() * u128::from(clock_rate) / 1_000_000) as u16;
    let mut steps = Vec::new();
    let mut offset = Duration::ZERO;
    while offset < TONE {
        let covered = (offset + UPDATE_INTERVAL).min(TONE);
        steps.push(DtmfStep {
            offset,
            marker: offset.is_zero(),
            event: TelephoneEvent {
                event,
                end: false,
                volume: VOLUME,
                duration: units(covered),
            },
        });
        offset += UPDATE_INTERVAL;
    }
    for n in 0..3u32 {
        steps.push(DtmfStep {
            offset: TONE + END_INTERVAL * n,
            marker: false,
            event: TelephoneEvent {
                event,
                end: true,
                volume: VOLUME,
                duration: units(TONE),
            },
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        // (bytes, event)
        let cases = [
            ([5, 0x0A, 0x01, 0x40], (5, false, 10, 320)),
            ([11, 0x8A, 0x03, 0x20], (11, true, 10, 800)),
            ([0, 0x3F, 0xFF, 0xFF], (0, false, 63, 65535)),
        ];
        for (bytes, (event, end, volume, duration)) in cases {
            let parsed = TelephoneEvent::parse(&bytes).unwrap();
            assert_eq!(
                parsed,
                TelephoneEvent {
                    event,
                    end,
                    volume,
                    duration
                }
            );
            assert_eq!(parsed.to_bytes(), bytes);
        }
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), None);
    }

    #[test]
    fn digits_and_codes() {
        for (digit, code) in [
            ('0', 0),
            ('9', 9),
            ('*', 10),
            ('#', 11),
            ('A', 12),
            ('d', 15),
        ] {
            assert_eq!(digit_to_event(digit), Some(code));
            assert_eq!(event_to_digit(code), Some(digit.to_ascii_uppercase()));
        }
        assert_eq!(digit_to_event('x'), None);
        assert_eq!(event_to_digit(16), None);
    }

    #[test]
    fn one_press_per_timestamp() {
        let start = TelephoneEvent {
            event: 1,
            end: false,
            volume: 10,
            duration: 160,
        }
        .to_bytes();
        let end = TelephoneEvent {
            end: true,
            ..TelephoneEvent::parse(&start).unwrap()
        }
        .to_bytes();
        // (what, packets as (ssrc, timestamp, payload), keys seen)
        /// (SSRC, timestamp, payload)
        type Packet = (u32, u32, [u8; 4]);
        let cases: Vec<(&str, Vec<Packet>, Vec<char>)> = vec![
            (
                "start, update, three ends",
                vec![
                    (1, 100, start),
                    (1, 100, start),
                    (1, 100, end),
                    (1, 100, end),
                    (1, 100, end),
                ],
                vec!['1'],
            ),
            (
                "only the end packets",
                vec![(1, 100, end), (1, 100, end)],
                vec!['1'],
            ),
            (
                "same key twice",
                vec![
                    (1, 100, start),
                    (1, 100, end),
                    (1, 900, start),
                    (1, 900, end),
                ],
                vec!['1', '1'],
            ),
            (
                "new SSRC",
                vec![(1, 100, end), (2, 100, end)],
                vec!['1', '1'],
            ),
        ];
        for (what, packets, keys) in cases {
            let mut receiver = DtmfReceiver::new();
            let seen: Vec<char> = packets
                .iter()
                .filter_map(|(ssrc, ts, p)| receiver.receive(*ssrc, *ts, p))
                .collect();
            assert_eq!(seen, keys, "{what}");
        }
    }

    #[test]
    fn schedule_of_one_press() {
        let steps = send_schedule(5, 8000);
        let summary: Vec<(u64, bool, bool, u16)> = steps
            .iter()
            .map(|s| {
                (
                    s.offset.as_millis() as u64,
                    s.marker,
                    s.event.end,
                    s.event.duration,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (0, true, false, 400),
                (50, false, false, 800),
                (100, false, true, 800),
                (120, false, true, 800),
                (140, false, true, 800),
            ]
        );
        assert!(steps
            .iter()
            .all(|s| s.event.event == 5 && s.event.volume == VOLUME));
    }
}
