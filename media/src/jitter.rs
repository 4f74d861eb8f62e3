//! The adaptive jitter buffer: received RTP packets go in with their arrival
//! time (`push(now, …)`), one packet per frame slot comes out in sequence
//! order (`poll(now)`), with losses, late and duplicate packets counted as
//! plain fields (STYLE.md 4).
//!
//! How the delay adapts: every packet updates the RFC 3550 §6.4.1
//! interarrival jitter `J`. The target delay is `ptime + 3·J`, clamped to
//! the configured bounds. Playout of a talkspurt starts `target` after its
//! first packet arrives; while more than two frames above target are
//! buffered for a while, one frame is dropped (time compression); when the
//! buffer runs dry for three slots (the caller stopped sending, or a jitter
//! spike), the next packet starts a new prebuffering of `target`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::rtp::RtpHeader;

/// Bits of reception history kept for duplicate detection.
const HISTORY: u64 = 128;
/// A sequence number this far from the highest one restarts the stream
/// (RFC 3550 A.1's `MAX_DROPOUT` scaled to a telephone call).
const MAX_JUMP: u64 = 1000;
/// Consecutive slots with an over-full buffer before a frame is dropped.
const SHRINK_AFTER_POLLS: u32 = 8;
/// Empty slots after which the next packet prebuffers again.
const REBUFFER_AFTER_EMPTY: u32 = 3;
/// Arrival-vs-timestamp steps beyond this are timestamp jumps, not jitter.
const MAX_TRANSIT_STEP: Duration = Duration::from_secs(2);

/// Jitter buffer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// The smallest target delay.
    pub min_delay: Duration,
    /// The largest target delay.
    pub max_delay: Duration,
    /// The RTP clock rate of the stream, in Hz.
    pub clock_rate: u32,
    /// Duration of one frame (packetisation time).
    pub ptime: Duration,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            clock_rate: 8000,
            ptime: Duration::from_millis(20),
        }
    }
}

/// Counters and gauges of a jitter buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    /// Packets accepted (not duplicates), including late ones.
    pub received: u64,
    /// Sequence numbers skipped at playout because they never arrived.
    pub lost: u64,
    /// Packets that arrived after their slot had been played.
    pub late: u64,
    /// Packets received twice.
    pub duplicate: u64,
    /// Packets that arrived with a lower sequence number than one before.
    pub reordered: u64,
    /// Slots filled by loss concealment.
    pub concealed: u64,
    /// Packets played in their slot.
    pub played: u64,
    /// Frames dropped to bring the delay back down to target.
    pub discarded: u64,
    /// Slots with nothing to play mid-stream.
    pub underruns: u64,
    /// Stream restarts (new SSRC or a sequence jump).
    pub restarts: u64,
    /// Packets buffered now.
    pub depth: usize,
    /// The delay the buffer aims for now.
    pub target_delay: Duration,
    /// RFC 3550 interarrival jitter, as a duration.
    pub jitter: Duration,
}

/// A packet held by the buffer. Its payload vector comes from the buffer's
/// pool; give it back with [`JitterBuffer::recycle`] to avoid allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterPacket {
    /// The RTP header.
    pub header: RtpHeader,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

/// What one frame slot plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The packet for this slot.
    Packet(JitterPacket),
    /// The packet for this slot is lost: conceal it (the next packet, if
    /// already here, is [`JitterBuffer::peek_next`], for FEC).
    Lost,
    /// Nothing to play: prebuffering, or the caller is not sending.
    Empty,
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Buffered for playout.
    Buffered,
    /// Already received: dropped.
    Duplicate,
    /// Its slot has been played: dropped.
    Late,
}

/// Data for an RTCP reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceptionReport {
    /// SSRC of the stream reported on.
    pub ssrc: u32,
    /// Extended highest sequence number received.
    pub extended_highest: u32,
    /// Packets expected since the stream (re)started.
    pub expected: u64,
    /// Packets received since the stream (re)started.
    pub received: u64,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

/// The adaptive jitter buffer for one RTP stream.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    stats: JitterStats,
    buffer: BTreeMap<u64, JitterPacket>,
    pool: Vec<Vec<u8>>,
    ssrc: Option<u32>,
    /// Highest extended sequence number received, and the first one.
    highest: Option<u64>,
    base: u64,
    received_since_base: u64,
    /// Bit i set: `highest - i` was received.
    history: u128,
    /// The next extended sequence number to play.
    next: Option<u64>,
    /// No playout before this instant (prebuffering).
    start_at: Option<Instant>,
    rebuffer: bool,
    empty_run: u32,
    high_run: u32,
    epoch: Option<Instant>,
    /// Last transit time (arrival minus timestamp), in timestamp units.
    transit: Option<i64>,
    /// Interarrival jitter in timestamp units, scaled by 16 (RFC 3550 A.8).
    jitter_x16: i64,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(config: JitterConfig) -> Self {
        let stats = JitterStats {
            target_delay: clamp_delay(&config, config.ptime),
            ..JitterStats::default()
        };
        JitterBuffer {
            config,
            stats,
            buffer: BTreeMap::new(),
            pool: Vec::new(),
            ssrc: None,
            highest: None,
            base: 0,
            received_since_base: 0,
            history: 0,
            next: None,
            start_at: None,
            rebuffer: false,
            empty_run: 0,
            high_run: 0,
            epoch: None,
            transit: None,
            jitter_x16: 0,
        }
    }

    /// Changes the settings (a re-INVITE). A new clock rate restarts the
    /// stream.
    pub fn set_config(&mut self, config: JitterConfig) {
        let restart = config.clock_rate != self.config.clock_rate;
        self.config = config;
        if restart {
            self.restart();
            self.ssrc = None;
        }
        self.update_target();
    }

    /// The counters and gauges.
    pub fn stats(&self) -> JitterStats {
        let mut stats = self.stats;
        stats.depth = self.buffer.len();
        stats
    }

    /// Gives a payload vector back to the pool.
    pub fn recycle(&mut self, mut payload: Vec<u8>) {
        if self.pool.len() < 32 {
            payload.clear();
            self.pool.push(payload);
        }
    }

    /// Accepts a received packet.
    pub fn push(&mut self, now: Instant, header: &RtpHeader, payload: &[u8]) -> PushOutcome {
        if self.ssrc.is_some_and(|s| s != header.ssrc) {
            self.restart();
        }
        self.ssrc = Some(header.ssrc);
        let epoch = *self.epoch.get_or_insert(now);
        let ext = match self.highest {
            None => self.start_stream(header.sequence),
            Some(highest) => {
                let ext = extend(highest, header.sequence);
                if ext.abs_diff(highest) > MAX_JUMP {
                    self.restart();
                    self.start_stream(header.sequence)
                } else {
                    ext
                }
            }
        };
        let highest = self.highest.unwrap_or(ext);
        if ext > highest {
            let shift = ext - highest;
            self.history = if shift >= HISTORY {
                0
            } else {
                self.history << shift
            };
            self.history |= 1;
            self.highest = Some(ext);
        } else {
            let age = highest - ext;
            if age >= HISTORY {
                self.stats.late += 1;
                return PushOutcome::Late;
            }
            if age > 0 || self.received_since_base > 0 {
                if self.history & (1 << age) != 0 {
                    self.stats.duplicate += 1;
                    return PushOutcome::Duplicate;
                }
                self.stats.reordered += 1;
            }
            self.history |= 1 << age;
            self.highest = Some(highest);
        }
        self.stats.received += 1;
        self.received_since_base += 1;
        self.update_jitter(now, epoch, header.timestamp);

        if self.next.is_some_and(|next| ext < next) {
            self.stats.late += 1;
            return PushOutcome::Late;
        }
        if self.next.is_none() || self.rebuffer {
            self.start_at = Some(now + self.stats.target_delay);
            self.rebuffer = false;
        }
        self.next.get_or_insert(ext);
        let mut bytes = self.pool.pop().unwrap_or_default();
        bytes.extend_from_slice(payload);
        self.buffer.insert(
            ext,
            JitterPacket {
                header: *header,
                payload: bytes,
            },
        );
        // Never hold more than the largest delay allows (a sender running
        // fast, or a huge burst): drop the oldest.
        let limit = 1
            + (self.config.max_delay.as_micros() / self.config.ptime.as_micros().max(1)) as usize
                * 2;
        while self.buffer.len() > limit {
            if let Some((seq, packet)) = self.buffer.pop_first() {
                self.recycle(packet.payload);
                self.stats.discarded += 1;
                // Holes before it will never be played: they are lost.
                let next = self.next.unwrap_or(seq);
                self.stats.lost += seq.saturating_sub(next);
                self.next = Some(seq + 1);
            }
        }
        PushOutcome::Buffered
    }

    /// The next packet to play, if it is here (for Opus FEC after a loss).
    pub fn peek_next(&self) -> Option<&JitterPacket> {
        let next = self.next?;
        self.buffer.get(&next)
    }

    /// Plays one frame slot.
    pub fn poll(&mut self, now: Instant) -> Playout {
        let Some(next) = self.next else {
            return Playout::Empty;
        };
        if self.start_at.is_some_and(|t| now < t) {
            return Playout::Empty;
        }
        self.start_at = None;
        self.shrink_if_over_target();
        let next = self.next.unwrap_or(next);
        match self.buffer.first_key_value().map(|(&k, _)| k) {
            Some(first) if first == next => {
                self.empty_run = 0;
                self.next = Some(next + 1);
                let (_, packet) = self.buffer.pop_first().expect("first exists");
                self.stats.played += 1;
                Playout::Packet(packet)
            }
            Some(_) => {
                self.empty_run = 0;
                self.next = Some(next + 1);
                self.stats.lost += 1;
                self.stats.concealed += 1;
                Playout::Lost
            }
            None => {
                self.stats.underruns += 1;
                self.empty_run += 1;
                if self.empty_run >= REBUFFER_AFTER_EMPTY {
                    self.rebuffer = true;
                }
                Playout::Empty
            }
        }
    }

    /// Data for the next RTCP reception report, if anything was received.
    pub fn reception_report(&self) -> Option<ReceptionReport> {
        let highest = self.highest?;
        Some(ReceptionReport {
            ssrc: self.ssrc.unwrap_or(0),
            extended_highest: (highest - (1 << 32)) as u32,
            expected: highest + 1 - self.base,
            received: self.received_since_base,
            jitter: (self.jitter_x16 >> 4) as u32,
        })
    }

    fn start_stream(&mut self, sequence: u16) -> u64 {
        // Offset so that sequence numbers below the first one stay positive.
        let ext = (1u64 << 32) + u64::from(sequence);
        self.base = ext;
        self.received_since_base = 0;
        self.history = 0;
        self.highest = Some(ext);
        ext
    }

    fn restart(&mut self) {
        self.stats.restarts += 1;
        while let Some((_, packet)) = self.buffer.pop_first() {
            self.recycle(packet.payload);
        }
        self.highest = None;
        self.next = None;
        self.start_at = None;
        self.transit = None;
        self.rebuffer = false;
        self.empty_run = 0;
        self.high_run = 0;
    }

    fn update_jitter(&mut self, now: Instant, epoch: Instant, timestamp: u32) {
        let rate = u128::from(self.config.clock_rate);
        let arrival = ((now - epoch).as_micros() * rate / 1_000_000) as u32;
        let transit = i64::from(arrival.wrapping_sub(timestamp) as i32);
        if let Some(last) = self.transit {
            let step = (transit - last).abs();
            let max = MAX_TRANSIT_STEP.as_secs() as i64 * i64::from(self.config.clock_rate);
            if step <= max {
                // J += (|D| - J) / 16, kept scaled by 16 (RFC 3550 A.8).
                self.jitter_x16 += step - ((self.jitter_x16 + 8) >> 4);
            }
        }
        self.transit = Some(transit);
        self.update_target();
    }

    fn update_target(&mut self) {
        let rate = u64::from(self.config.clock_rate.max(1));
        let jitter_us = (self.jitter_x16 as u64 >> 4) * 1_000_000 / rate;
        self.stats.jitter = Duration::from_micros(jitter_us);
        let wanted = self.config.ptime + Duration::from_micros(3 * jitter_us);
        self.stats.target_delay = clamp_delay(&self.config, wanted);
    }

    fn shrink_if_over_target(&mut self) {
        let (Some(next), Some(highest)) = (self.next, self.highest) else {
            return;
        };
        let frames = (highest + 1).saturating_sub(next) as u32;
        let buffered = self.config.ptime * frames;
        if buffered > self.stats.target_delay + 2 * self.config.ptime {
            self.high_run += 1;
            if self.high_run >= SHRINK_AFTER_POLLS {
                self.high_run = 0;
                if let Some((&first, _)) = self.buffer.first_key_value() {
                    if first == next {
                        let (_, packet) = self.buffer.pop_first().expect("first exists");
                        self.recycle(packet.payload);
                        self.stats.discarded += 1;
                        self.next = Some(next + 1);
                    }
                }
            }
        } else {
            self.high_run = 0;
        }
    }
}

fn clamp_delay(config: &JitterConfig, wanted: Duration) -> Duration {
    wanted.clamp(config.min_delay, config.max_delay.max(config.min_delay))
}

/// Extends a 16-bit sequence number to the 64-bit one closest to `highest`.
fn extend(highest: u64, sequence: u16) -> u64 {
    let candidate = (highest & !0xFFFF) | u64::from(sequence);
    [
        candidate.wrapping_sub(1 << 16),
        candidate,
        candidate + (1 << 16),
    ]
    .into_iter()
    .min_by_key(|c| c.abs_diff(highest))
    .unwrap_or(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn header(sequence: u16, timestamp: u32) -> RtpHeader {
        RtpHeader {
            payload_type: 0,
            marker: false,
            sequence,
            timestamp,
            ssrc: 7,
        }
    }

    fn played(p: &Playout) -> Option<u16> {
        match p {
            Playout::Packet(packet) => Some(packet.header.sequence),
            _ => None,
        }
    }

    #[test]
    fn extends_sequence_numbers() {
        // (highest, received, extended)
        let cases = [
            (0x1_0005, 6, 0x1_0006),
            (0x1_0005, 3, 0x1_0003),
            (0x1_FFFE, 1, 0x2_0001),
            (0x2_0001, 0xFFFF, 0x1_FFFF),
        ];
        for (highest, seq, ext) in cases {
            assert_eq!(extend(highest, seq), ext, "{highest:x} {seq}");
        }
    }

    /// Arrival orders and what comes out, in virtual time: packets sent every
    /// 20 ms, pushed in the given order at 20 ms steps, polled every 20 ms
    /// after the prebuffer.
    #[test]
    fn orders_drops_and_counts() {
        struct Case {
            what: &'static str,
            arrivals: &'static [u16],
            plays: &'static [Option<u16>],
            lost: u64,
            duplicate: u64,
            reordered: u64,
        }
        let cases = [
            Case {
                what: "in order",
                arrivals: &[0, 1, 2, 3],
                plays: &[Some(0), Some(1), Some(2), Some(3)],
                lost: 0,
                duplicate: 0,
                reordered: 0,
            },
            Case {
                what: "swap",
                arrivals: &[0, 2, 1, 3],
                plays: &[Some(0), Some(1), Some(2), Some(3)],
                lost: 0,
                duplicate: 0,
                reordered: 1,
            },
            Case {
                what: "loss",
                arrivals: &[0, 1, 3, 4],
                plays: &[Some(0), Some(1), None, Some(3), Some(4)],
                lost: 1,
                duplicate: 0,
                reordered: 0,
            },
            Case {
                what: "duplicate",
                arrivals: &[0, 1, 1, 2],
                plays: &[Some(0), Some(1), Some(2)],
                lost: 0,
                duplicate: 1,
                reordered: 0,
            },
            Case {
                what: "wrap",
                arrivals: &[65534, 65535, 0, 1],
                plays: &[Some(65534), Some(65535), Some(0), Some(1)],
                lost: 0,
                duplicate: 0,
                reordered: 0,
            },
        ];
        for case in cases {
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(JitterConfig {
                min_delay: 60 * MS,
                ..JitterConfig::default()
            });
            let mut out = Vec::new();
            let mut t = t0;
            for (i, &seq) in case.arrivals.iter().enumerate() {
                t = t0 + 20 * MS * i as u32;
                jb.push(t, &header(seq, u32::from(seq) * 160), &[seq as u8]);
                if t >= t0 + 60 * MS {
                    out.push(played(&jb.poll(t)));
                }
            }
            while jb.stats().depth > 0 {
                t += 20 * MS;
                out.push(played(&jb.poll(t)));
            }
            assert_eq!(out, case.plays, "{}", case.what);
            let stats = jb.stats();
            assert_eq!(stats.lost, case.lost, "{}", case.what);
            assert_eq!(stats.concealed, case.lost, "{}", case.what);
            assert_eq!(stats.duplicate, case.duplicate, "{}", case.what);
            assert_eq!(stats.reordered, case.reordered, "{}", case.what);
        }
    }

    #[test]
    fn late_packets_are_dropped() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(t0, &header(10, 0), &[]);
        jb.push(t0 + 20 * MS, &header(12, 320), &[]);
        assert_eq!(played(&jb.poll(t0 + 20 * MS)), Some(10));
        assert_eq!(jb.poll(t0 + 40 * MS), Playout::Lost);
        assert_eq!(
            jb.push(t0 + 45 * MS, &header(11, 160), &[]),
            PushOutcome::Late
        );
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.stats().reordered, 1);
    }

    #[test]
    fn new_ssrc_and_sequence_jumps_restart() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(t0, &header(100, 0), &[]);
        let mut other = header(5000, 99);
        other.ssrc = 8;
        assert_eq!(jb.push(t0 + 20 * MS, &other, &[]), PushOutcome::Buffered);
        assert_eq!(jb.stats().restarts, 1);
        assert_eq!(played(&jb.poll(t0 + 60 * MS)), Some(5000));
        // A jump of 20000 in the same SSRC restarts too.
        let mut jumped = header(25000, 1000);
        jumped.ssrc = 8;
        jb.push(t0 + 80 * MS, &jumped, &[]);
        assert_eq!(jb.stats().restarts, 2);
        assert_eq!(played(&jb.poll(t0 + 200 * MS)), Some(25000));
    }

    #[test]
    fn target_follows_jitter_within_bounds() {
        // (arrival jitter amplitude ms, expected target range ms)
        let cases = [
            (0u64, 20..=21),
            (10, 30..=60),
            (40, 80..=200),
            (400, 200..=200),
        ];
        for (amplitude, range) in cases {
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(JitterConfig::default());
            for n in 0..500u64 {
                // Alternating early/late arrivals.
                let wobble = if n % 2 == 0 { 0 } else { amplitude };
                let at = t0 + Duration::from_millis(n * 20 + wobble);
                jb.push(at, &header(n as u16, (n * 160) as u32), &[]);
                jb.poll(at);
            }
            let target = jb.stats().target_delay.as_millis() as u64;
            assert!(range.contains(&target), "{amplitude} ms: target {target}");
        }
    }

    #[test]
    fn reception_report_counts_from_the_first_packet() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for seq in [65530u16, 65531, 65533, 2] {
            jb.push(t0, &header(seq, 0), &[]);
        }
        let report = jb.reception_report().unwrap();
        assert_eq!(report.ssrc, 7);
        assert_eq!(report.extended_highest, 0x1_0002);
        assert_eq!(report.expected, 9);
        assert_eq!(report.received, 4);
    }

    #[test]
    fn timestamp_jumps_are_not_jitter() {
        // (timestamp jump after packet 50 in clock units, jitter after, ms)
        let cases = [(0u32, 0), (8000 * 10, 0), (u32::MAX - 8000 * 60, 0)];
        for (jump, expected_ms) in cases {
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(JitterConfig::default());
            for n in 0..100u32 {
                let skew = if n >= 50 { jump } else { 0 };
                let ts = (n * 160).wrapping_add(skew);
                jb.push(t0 + 20 * MS * n, &header(n as u16, ts), &[]);
            }
            let stats = jb.stats();
            assert_eq!(stats.jitter.as_millis(), expected_ms, "jump {jump}");
            assert_eq!(stats.restarts, 0);
        }
    }
}
