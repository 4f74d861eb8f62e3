//! RFC 3261 transaction timers as a table: each transaction keeps one
//! deadline per timer it runs, and its next deadline is the minimum.

use std::time::{Duration, Instant};

/// RTT estimate (RFC 3261 Table 4).
pub const T1: Duration = Duration::from_millis(500);
/// Maximum retransmit interval for non-INVITE requests and INVITE responses.
pub const T2: Duration = Duration::from_secs(4);
/// Maximum time a message stays in the network.
pub const T4: Duration = Duration::from_secs(5);

/// The timers of RFC 3261 §17 that Echo's transactions run (plus Timer L of
/// RFC 6026 for the Accepted state of an INVITE server transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Non-INVITE client: request retransmit interval.
    E,
    /// Non-INVITE client: transaction timeout.
    F,
    /// INVITE server: response retransmit interval.
    G,
    /// INVITE server: wait time for ACK receipt.
    H,
    /// INVITE server: wait time for ACK retransmits.
    I,
    /// Non-INVITE server: wait time for request retransmits.
    J,
    /// Non-INVITE client: wait time for response retransmits.
    K,
    /// INVITE server (RFC 6026): wait time in Accepted for retransmitted
    /// INVITEs after a 2xx.
    L,
}

const ALL: [Timer; 8] = [
    Timer::E,
    Timer::F,
    Timer::G,
    Timer::H,
    Timer::I,
    Timer::J,
    Timer::K,
    Timer::L,
];

/// One optional deadline per [`Timer`].
#[derive(Debug, Clone, Default)]
pub struct TimerTable([Option<Instant>; 8]);

impl TimerTable {
    /// Arms `timer` to fire at `at`.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }

    /// Disarms every timer.
    pub fn clear(&mut self) {
        self.0 = [None; 8];
    }

    /// The earliest armed deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// Disarms and returns the earliest timer due at `now`, if any.
    pub fn expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = ALL
            .into_iter()
            .filter(|t| self.0[*t as usize].is_some_and(|at| at <= now))
            .min_by_key(|t| self.0[*t as usize])?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_timeout_is_the_minimum_and_expiry_is_in_order() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        assert_eq!(table.next_timeout(), None);
        table.set(Timer::H, t0 + 64 * T1);
        table.set(Timer::G, t0 + T1);
        assert_eq!(table.next_timeout(), Some(t0 + T1));
        assert_eq!(table.expired(t0), None);
        assert_eq!(table.expired(t0 + 64 * T1), Some(Timer::G));
        assert_eq!(table.expired(t0 + 64 * T1), Some(Timer::H));
        assert_eq!(table.expired(t0 + 64 * T1), None);
    }
}
