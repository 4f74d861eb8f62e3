//! A seeded network emulator in virtual time, for tests and benchmarks
//! (feature `sim`, always on in this crate's own tests).
//!
//! Datagrams go in with `send(now, bytes)` and come out of `deliver(now)`
//! once their delivery time has come; `next_delivery()` is the deadline a
//! simulation steps to. Loss (independent or in Gilbert–Elliott bursts),
//! delay with uniform jitter (which reorders packets as a real network
//! does), explicit reordering and duplication are drawn from a seeded
//! generator, so every run with the same seed is the same run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// A small deterministic generator (SplitMix64): reproducible test runs
/// without a dependency.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }

    /// A uniform duration in `[0, max]`.
    pub fn duration(&mut self, max: Duration) -> Duration {
        Duration::from_micros((self.next_f64() * max.as_micros() as f64) as u64)
    }
}

/// How the emulated network misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NetConfig {
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` per packet.
    pub jitter: Duration,
    /// Probability that a packet is lost (in the good state).
    pub loss: f64,
    /// Gilbert–Elliott bursts: probability of entering the bad state per
    /// packet, and of leaving it. In the bad state every packet is lost.
    pub burst: Option<(f64, f64)>,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that a packet is held back by `reorder_delay` more.
    pub reorder: f64,
    /// The hold-back of a reordered packet.
    pub reorder_delay: Duration,
}

/// What the emulator did, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams sent into the network.
    pub sent: u64,
    /// Datagrams lost.
    pub lost: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Datagrams held back to reorder them.
    pub reordered: u64,
    /// Datagrams delivered (copies included).
    pub delivered: u64,
}

/// One direction of an emulated network path.
#[derive(Debug)]
pub struct NetSim {
    config: NetConfig,
    rng: SimRng,
    in_flight: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    order: u64,
    bad: bool,
    /// The counters.
    pub stats: NetStats,
}

impl NetSim {
    /// A path with the given behaviour and seed.
    pub fn new(config: NetConfig, seed: u64) -> Self {
        NetSim {
            config,
            rng: SimRng::new(seed),
            in_flight: BinaryHeap::new(),
            order: 0,
            bad: false,
            stats: NetStats::default(),
        }
    }

    /// Sends a datagram at `now`.
    pub fn send(&mut self, now: Instant, datagram: &[u8]) {
        self.stats.sent += 1;
        if let Some((enter, leave)) = self.config.burst {
            if self.bad {
                self.bad = !self.rng.chance(leave);
            } else {
                self.bad = self.rng.chance(enter);
            }
        }
        if self.bad || self.rng.chance(self.config.loss) {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.rng.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = now + self.config.delay + self.rng.duration(self.config.jitter);
            if self.rng.chance(self.config.reorder) {
                self.stats.reordered += 1;
                at += self.config.reorder_delay;
            }
            self.order += 1;
            self.in_flight
                .push(Reverse((at, self.order, datagram.to_vec())));
        }
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse((at, _, _))| *at)
    }

    /// A datagram that has arrived by `now`, earliest first.
    pub fn deliver(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_delivery()? > now {
            return None;
        }
        let Reverse((_, _, datagram)) = self.in_flight.pop()?;
        self.stats.delivered += 1;
        Some(datagram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_run_and_rates_roughly_right() {
        let config = NetConfig {
            delay: Duration::from_millis(30),
            jitter: Duration::from_millis(40),
            loss: 0.05,
            duplicate: 0.02,
            reorder: 0.05,
            reorder_delay: Duration::from_millis(60),
            burst: None,
        };
        let run = |seed| {
            let t0 = Instant::now();
            let mut net = NetSim::new(config, seed);
            let mut got = Vec::new();
            for n in 0..2000u32 {
                let now = t0 + Duration::from_millis(u64::from(n) * 20);
                net.send(now, &n.to_be_bytes());
                while let Some(d) = net.deliver(now) {
                    got.push(u32::from_be_bytes(d.try_into().unwrap()));
                }
            }
            (got, net.stats)
        };
        let (a, stats) = run(1);
        let (b, _) = run(1);
        let (c, _) = run(2);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!((60..140).contains(&stats.lost), "{stats:?}");
        assert!((20..70).contains(&stats.duplicated), "{stats:?}");
        assert!(a.windows(2).any(|w| w[1] < w[0]), "jitter reorders");
    }

    #[test]
    fn bursts_lose_consecutive_packets() {
        let config = NetConfig {
            burst: Some((0.02, 0.3)),
            ..NetConfig::default()
        };
        let t0 = Instant::now();
        let mut net = NetSim::new(config, 9);
        let mut delivered = Vec::new();
        for n in 0..5000u32 {
            net.send(t0, &n.to_be_bytes());
        }
        while let Some(d) = net.deliver(t0) {
            delivered.push(u32::from_be_bytes(d.try_into().unwrap()));
        }
        let longest_gap = delivered.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(longest_gap >= 5, "{longest_gap}");
        assert!(net.stats.lost > 100, "{:?}", net.stats);
    }
}
