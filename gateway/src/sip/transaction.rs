//! RFC 3261 §17 transactions, sans-IO. A transaction holds the serialised
//! response (or request) it must retransmit and its timers; the endpoint
//! feeds it retransmissions, ACKs, responses and `now`, and sends what it
//! returns.

use std::time::{Duration, Instant};

use super::timer::{Timer, TimerTable, T1, T2, T4};
use super::Flow;

/// Identifies a server transaction (RFC 3261 §17.2.3): the top Via's
/// branch and sent-by, and the method, with ACK folded into INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey {
    /// The branch parameter.
    pub branch: String,
    /// The sent-by of the top Via, as written.
    pub sent_by: String,
    /// The request method (`INVITE` for an ACK).
    pub method: String,
}

/// Whether an INVITE or a non-INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// INVITE server transaction (Figure 7, with RFC 6026's Accepted).
    Invite,
    /// Non-INVITE server transaction (Figure 8).
    NonInvite,
}

/// States of a server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE: nothing sent yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final non-2xx (INVITE) or any final (non-INVITE) was sent.
    Completed,
    /// INVITE: a 2xx was sent and is retransmitted until the ACK.
    Accepted,
    /// INVITE: the ACK for a non-2xx arrived; absorbing ACK retransmits.
    Confirmed,
    /// Done; the endpoint removes the transaction.
    Terminated,
}

/// What a server transaction asks of the endpoint when a timer fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTimeout {
    /// Nothing to do.
    None,
    /// Send these bytes again.
    Retransmit(Vec<u8>),
    /// Timer H: no ACK arrived for the final response. For a 2xx the
    /// dialog must be torn down with a BYE (RFC 3261 §13.3.1.4).
    NoAck {
        /// The final status that was never acknowledged.
        code: u16,
    },
}

/// A server transaction.
#[derive(Debug, Clone)]
pub struct ServerTransaction {
    kind: ServerKind,
    state: ServerState,
    flow: Flow,
    last_response: Option<(u16, Vec<u8>)>,
    timers: TimerTable,
    retransmit_interval: std::time::Duration,
    acked: bool,
}

impl ServerTransaction {
    /// A new transaction for a request that arrived on `flow`; responses go
    /// back there.
    pub fn new(kind: ServerKind, flow: Flow) -> Self {
        ServerTransaction {
            kind,
            state: match kind {
                ServerKind::Invite => ServerState::Proceeding,
                ServerKind::NonInvite => ServerState::Trying,
            },
            flow,
            last_response: None,
            timers: TimerTable::default(),
            retransmit_interval: T1,
            acked: false,
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Where responses go.
    pub fn flow(&self) -> Flow {
        self.flow
    }

    /// The status of the last response sent, if any.
    pub fn last_status(&self) -> Option<u16> {
        self.last_response.as_ref().map(|(c, _)| *c)
    }

    /// The earliest timer deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// The TU sends a response; returns whether it may go on the wire
    /// (responses after a final one are refused).
    pub fn send_response(&mut self, now: Instant, code: u16, bytes: &[u8]) -> bool {
        if !matches!(self.state, ServerState::Trying | ServerState::Proceeding) {
            return false;
        }
        self.last_response = Some((code, bytes.to_vec()));
        let reliable = self.flow.is_reliable();
        self.state = match (self.kind, code) {
            (_, 100..=199) => ServerState::Proceeding,
            (ServerKind::Invite, 200..=299) => {
                // 2xx retransmission (RFC 3261 §13.3.1.4) until the ACK,
                // which for a 2xx arrives through the dialog.
                if !reliable {
                    self.timers.set(Timer::G, now + T1);
                }
                self.timers.set(Timer::H, now + 64 * T1);
                self.timers.set(Timer::L, now + 64 * T1);
                ServerState::Accepted
            }
            (ServerKind::Invite, _) => {
                if !reliable {
                    self.timers.set(Timer::G, now + T1);
                }
                self.timers.set(Timer::H, now + 64 * T1);
                ServerState::Completed
            }
            (ServerKind::NonInvite, _) => {
                let wait = if reliable { Duration::ZERO } else { 64 * T1 };
                self.timers.set(Timer::J, now + wait);
                ServerState::Completed
            }
        };
        true
    }

    /// A retransmission of the request arrived: the last response to resend,
    /// if any (the request is never passed to the TU again).
    pub fn on_retransmission(&mut self) -> Option<Vec<u8>> {
        match self.state {
            ServerState::Proceeding | ServerState::Completed | ServerState::Accepted => {
                self.last_response.as_ref().map(|(_, b)| b.clone())
            }
            _ => None,
        }
    }

    /// An ACK matched this transaction (for a non-2xx final response: same
    /// branch) or, through the dialog, acknowledged its 2xx.
    pub fn on_ack(&mut self, now: Instant) {
        match self.state {
            ServerState::Completed if self.kind == ServerKind::Invite => {
                self.timers.stop(Timer::G);
                self.timers.stop(Timer::H);
                let wait = if self.flow.is_reliable() {
                    Duration::ZERO
                } else {
                    T4
                };
                self.timers.set(Timer::I, now + wait);
                self.state = ServerState::Confirmed;
            }
            ServerState::Accepted => {
                // Keep absorbing INVITE retransmits until Timer L.
                self.acked = true;
                self.timers.stop(Timer::G);
                self.timers.stop(Timer::H);
            }
            _ => {}
        }
    }

    /// Whether the 2xx of this INVITE transaction is still unacknowledged.
    pub fn awaiting_ack(&self) -> bool {
        self.state == ServerState::Accepted && !self.acked
    }

    /// Fires the timers due at `now`; call until it returns `None`.
    pub fn on_timeout(&mut self, now: Instant) -> ServerTimeout {
        let Some(timer) = self.timers.expired(now) else {
            return ServerTimeout::None;
        };
        match timer {
            Timer::G => {
                self.retransmit_interval = (self.retransmit_interval * 2).min(T2);
                self.timers.set(Timer::G, now + self.retransmit_interval);
                match &self.last_response {
                    Some((_, bytes)) => ServerTimeout::Retransmit(bytes.clone()),
                    None => ServerTimeout::None,
                }
            }
            Timer::H => {
                self.timers.stop(Timer::G);
                let code = self.last_status().unwrap_or(0);
                self.terminate();
                ServerTimeout::NoAck { code }
            }
            Timer::I | Timer::J | Timer::L => {
                self.terminate();
                ServerTimeout::None
            }
            Timer::E | Timer::F | Timer::K => ServerTimeout::None,
        }
    }

    fn terminate(&mut self) {
        self.timers.clear();
        self.state = ServerState::Terminated;
    }
}

/// States of a non-INVITE client transaction (Figure 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Request sent, nothing heard.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing retransmissions.
    Completed,
    /// Done.
    Terminated,
}

/// What a client transaction reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOutput {
    /// Nothing to do.
    None,
    /// Send the request again.
    Retransmit(Vec<u8>),
    /// The final response arrived (the TU hears of it once).
    Final(u16),
    /// Timer F: no final response in time (RFC 3261 §8.1.3.1: as a 408).
    TimedOut,
}

/// A non-INVITE client transaction, for the requests Echo sends (BYE).
#[derive(Debug, Clone)]
pub struct ClientTransaction {
    state: ClientState,
    flow: Flow,
    request: Vec<u8>,
    timers: TimerTable,
    retransmit_interval: std::time::Duration,
}

impl ClientTransaction {
    /// Starts the transaction: the caller sends `request` once now.
    pub fn new(now: Instant, flow: Flow, request: Vec<u8>) -> Self {
        let mut timers = TimerTable::default();
        if !flow.is_reliable() {
            timers.set(Timer::E, now + T1);
        }
        timers.set(Timer::F, now + 64 * T1);
        ClientTransaction {
            state: ClientState::Trying,
            flow,
            request,
            timers,
            retransmit_interval: T1,
        }
    }

    /// The current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Where the request goes.
    pub fn flow(&self) -> Flow {
        self.flow
    }

    /// The earliest timer deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// A response matched this transaction.
    pub fn on_response(&mut self, now: Instant, code: u16) -> ClientOutput {
        match (self.state, code) {
            (ClientState::Trying | ClientState::Proceeding, 100..=199) => {
                self.state = ClientState::Proceeding;
                ClientOutput::None
            }
            (ClientState::Trying | ClientState::Proceeding, _) => {
                self.timers.stop(Timer::E);
                self.timers.stop(Timer::F);
                let wait = if self.flow.is_reliable() {
                    Duration::ZERO
                } else {
                    T4
                };
                self.timers.set(Timer::K, now + wait);
                self.state = ClientState::Completed;
                ClientOutput::Final(code)
            }
            _ => ClientOutput::None,
        }
    }

    /// Fires the timers due at `now`; call until it returns `None`.
    pub fn on_timeout(&mut self, now: Instant) -> ClientOutput {
        let Some(timer) = self.timers.expired(now) else {
            return ClientOutput::None;
        };
        match timer {
            Timer::E => {
                self.retransmit_interval = match self.state {
                    ClientState::Proceeding => T2,
                    _ => (self.retransmit_interval * 2).min(T2),
                };
                self.timers.set(Timer::E, now + self.retransmit_interval);
                ClientOutput::Retransmit(self.request.clone())
            }
            Timer::F => {
                self.timers.clear();
                self.state = ClientState::Terminated;
                ClientOutput::TimedOut
            }
            Timer::K => {
                self.state = ClientState::Terminated;
                ClientOutput::None
            }
            _ => ClientOutput::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Transport;

    fn udp() -> Flow {
        Flow::new(Transport::Udp, "127.0.0.1:5060".parse().unwrap(), None)
    }
    fn tcp() -> Flow {
        Flow::new(Transport::Tcp, "127.0.0.1:5060".parse().unwrap(), Some(1))
    }

    /// Steps virtual time to each deadline and records (ms since t0, output).
    fn run_server(
        tx: &mut ServerTransaction,
        t0: Instant,
        until: Duration,
    ) -> Vec<(u128, ServerTimeout)> {
        let mut log = Vec::new();
        while let Some(at) = tx.next_timeout() {
            if at > t0 + until {
                break;
            }
            loop {
                match tx.on_timeout(at) {
                    ServerTimeout::None if tx.next_timeout().is_none_or(|n| n > at) => break,
                    ServerTimeout::None => continue,
                    out => log.push(((at - t0).as_millis(), out)),
                }
            }
        }
        log
    }

    #[test]
    fn invite_2xx_is_retransmitted_on_timer_g_until_timer_h() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(ServerKind::Invite, udp());
        assert!(tx.send_response(t0, 100, b"100"));
        assert!(tx.send_response(t0, 200, b"200"));
        assert_eq!(tx.state(), ServerState::Accepted);
        let log = run_server(&mut tx, t0, Duration::from_secs(40));
        let retransmits: Vec<u128> = log
            .iter()
            .filter(|(_, o)| matches!(o, ServerTimeout::Retransmit(_)))
            .map(|(t, _)| *t)
            .collect();
        // T1, then doubling, capped at T2 = 4 s, until H = 64*T1 = 32 s.
        assert_eq!(
            retransmits,
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert!(log.contains(&(32000, ServerTimeout::NoAck { code: 200 })));
        assert_eq!(tx.state(), ServerState::Terminated);
    }

    #[test]
    fn ack_stops_2xx_retransmission_and_retransmitted_invite_is_absorbed() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(ServerKind::Invite, udp());
        tx.send_response(t0, 200, b"200");
        assert!(tx.awaiting_ack());
        tx.on_ack(t0 + Duration::from_millis(700));
        assert!(!tx.awaiting_ack());
        assert_eq!(tx.on_retransmission(), Some(b"200".to_vec()));
        let log = run_server(&mut tx, t0, Duration::from_secs(40));
        assert!(
            log.iter().all(|(t, _)| *t < 700),
            "nothing after ACK: {log:?}"
        );
        assert_eq!(tx.state(), ServerState::Terminated);
    }

    #[test]
    fn non_2xx_is_absorbed_by_ack_then_timer_i() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(ServerKind::Invite, udp());
        tx.send_response(t0, 486, b"486");
        assert_eq!(tx.state(), ServerState::Completed);
        assert_eq!(
            tx.on_timeout(t0 + T1),
            ServerTimeout::Retransmit(b"486".to_vec())
        );
        tx.on_ack(t0 + T1);
        assert_eq!(tx.state(), ServerState::Confirmed);
        assert_eq!(tx.next_timeout(), Some(t0 + T1 + T4));
        assert_eq!(tx.on_timeout(t0 + T1 + T4), ServerTimeout::None);
        assert_eq!(tx.state(), ServerState::Terminated);
    }

    #[test]
    fn non_2xx_without_ack_ends_at_timer_h() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(ServerKind::Invite, udp());
        tx.send_response(t0, 487, b"487");
        let log = run_server(&mut tx, t0, Duration::from_secs(60));
        assert_eq!(
            log.last(),
            Some(&(32000, ServerTimeout::NoAck { code: 487 }))
        );
        assert_eq!(tx.state(), ServerState::Terminated);
    }

    #[test]
    fn reliable_transport_does_not_retransmit() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(ServerKind::Invite, tcp());
        tx.send_response(t0, 200, b"200");
        let log = run_server(&mut tx, t0, Duration::from_secs(60));
        assert_eq!(log, vec![(32000, ServerTimeout::NoAck { code: 200 })]);
        let mut nist = ServerTransaction::new(ServerKind::NonInvite, tcp());
        nist.send_response(t0, 200, b"200");
        assert_eq!(nist.next_timeout(), Some(t0));
        nist.on_timeout(t0);
        assert_eq!(nist.state(), ServerState::Terminated);
    }

    #[test]
    fn non_invite_server_answers_retransmits_until_timer_j() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(ServerKind::NonInvite, udp());
        assert_eq!(tx.on_retransmission(), None, "Trying: absorbed");
        tx.send_response(t0, 200, b"200");
        assert!(!tx.send_response(t0, 500, b"500"), "only one final");
        assert_eq!(tx.on_retransmission(), Some(b"200".to_vec()));
        assert_eq!(tx.next_timeout(), Some(t0 + 64 * T1));
        tx.on_timeout(t0 + 64 * T1);
        assert_eq!(tx.state(), ServerState::Terminated);
    }

    #[test]
    fn client_retransmits_on_timer_e_and_times_out_on_f() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(t0, udp(), b"BYE".to_vec());
        let mut sends = Vec::new();
        let mut timed_out = None;
        while let Some(at) = tx.next_timeout() {
            match tx.on_timeout(at) {
                ClientOutput::Retransmit(_) => sends.push((at - t0).as_millis()),
                ClientOutput::TimedOut => timed_out = Some((at - t0).as_millis()),
                _ => {}
            }
        }
        assert_eq!(
            sends,
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(timed_out, Some(32000));
        assert_eq!(tx.state(), ClientState::Terminated);
    }

    #[test]
    fn client_completes_on_final_and_waits_timer_k() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(t0, udp(), b"BYE".to_vec());
        let t = t0 + Duration::from_millis(200);
        assert_eq!(tx.on_response(t, 100), ClientOutput::None);
        // In Proceeding, E fires at T2 intervals.
        assert!(matches!(
            tx.on_timeout(t0 + T1),
            ClientOutput::Retransmit(_)
        ));
        assert_eq!(tx.next_timeout(), Some(t0 + T1 + T2));
        assert_eq!(tx.on_response(t, 200), ClientOutput::Final(200));
        assert_eq!(tx.on_response(t, 200), ClientOutput::None, "once");
        assert_eq!(tx.next_timeout(), Some(t + T4));
        tx.on_timeout(t + T4);
        assert_eq!(tx.state(), ClientState::Terminated);
        let mut reliable = ClientTransaction::new(t0, tcp(), b"BYE".to_vec());
        assert_eq!(reliable.next_timeout(), Some(t0 + 64 * T1), "no Timer E");
        assert_eq!(reliable.on_timeout(t0 + 64 * T1), ClientOutput::TimedOut);
    }
}
