//! The caller's SIP user agent client, sans-IO: one outgoing call over UDP.
//!
//! It runs the INVITE client transaction of RFC 3261 §17.1.1 (Timer A
//! retransmits from T1 doubling, Timer B gives up after 64·T1, Timer D
//! absorbs retransmitted final responses), ACKs a 2xx as a new request and a
//! non-2xx inside the transaction, and keeps the dialog that follows: it
//! answers the bot's BYE, OPTIONS and REFER (202 plus a NOTIFY carrying
//! `SIP/2.0 200 OK`, or 603 when told to refuse), and sends its own BYE on
//! [`Uac::hangup`]. Non-INVITE requests it sends (BYE, NOTIFY, CANCEL) run
//! RFC 3261 §17.1.2 transactions with Timers E and F.
//!
//! Like the gateway's endpoint it never touches a socket or the clock:
//! datagrams and timer ticks go in with `now`, and [`Uac::poll_transmit`],
//! [`Uac::poll_event`] and [`Uac::poll_timeout`] drain what comes out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::{Request, SipMessage};

use crate::sip::message::{self, addr_uri, header_value, header_values, TopVia};
use crate::sip::timer::{T1, T2};

/// Timer D for UDP (RFC 3261 §17.1.1.2): at least 32 s.
const TIMER_D: Duration = Duration::from_secs(32);
/// What we accept in-dialog.
const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REFER, NOTIFY";

/// The fixed parts of one call, chosen by the driver (the core has no
/// randomness).
#[derive(Debug, Clone)]
pub struct UacConfig {
    /// The Request-URI and To, e.g. `sip:clinic@127.0.0.1:5060`.
    pub target_uri: String,
    /// Where the INVITE goes.
    pub remote: SocketAddr,
    /// Our SIP socket's address (Via, Contact).
    pub local: SocketAddr,
    /// The user part of our From and Contact.
    pub user: String,
    /// Call-ID.
    pub call_id: String,
    /// Our From tag.
    pub from_tag: String,
    /// A unique prefix for our branches (after the magic cookie).
    pub branch_seed: String,
    /// The SDP offer for the INVITE body.
    pub sdp_offer: String,
    /// Answer REFER with 603 Decline instead of 202 Accepted.
    pub refuse_refer: bool,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// The serialised message.
    pub data: Vec<u8>,
}

/// What happened to the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UacEvent {
    /// A provisional response (100–199).
    Progress {
        /// Its status code.
        code: u16,
    },
    /// A 2xx arrived and was ACKed; the dialog is up.
    Answered {
        /// The SDP answer (may be empty).
        sdp: Vec<u8>,
    },
    /// The INVITE got a final non-2xx response (already ACKed).
    Rejected {
        /// Its status code.
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// Timer B fired: nothing answered the INVITE.
    NoAnswer,
    /// The bot hung up (its BYE was answered with 200).
    RemoteHangup,
    /// The bot asked us to call someone else.
    Refer {
        /// The Refer-To URI.
        target: String,
        /// Whether we said 202 (true) or 603 (false).
        accepted: bool,
    },
    /// Our own BYE (or CANCEL) completed, or timed out.
    Ended,
}

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// INVITE sent, nothing heard yet (Timer A runs).
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// The dialog is up.
    Confirmed,
    /// We sent BYE or CANCEL and wait for its answer.
    Terminating,
    /// Over.
    Terminated,
}

/// The INVITE client transaction's timers (RFC 3261 §17.1.1), as a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InviteTimer {
    /// Retransmit the INVITE.
    A,
    /// Give up on the INVITE.
    B,
    /// Leave Completed.
    D,
}

/// One deadline per [`InviteTimer`].
#[derive(Debug, Clone, Default)]
struct InviteTimers([Option<Instant>; 3]);

impl InviteTimers {
    fn set(&mut self, timer: InviteTimer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    fn stop(&mut self, timer: InviteTimer) {
        self.0[timer as usize] = None;
    }

    fn next_timeout(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    fn expired(&mut self, now: Instant) -> Option<InviteTimer> {
        let timer = [InviteTimer::A, InviteTimer::B, InviteTimer::D]
            .into_iter()
            .filter(|t| self.0[*t as usize].is_some_and(|at| at <= now))
            .min_by_key(|t| self.0[*t as usize])?;
        self.stop(timer);
        Some(timer)
    }
}

/// The INVITE transaction's state (RFC 3261 Figure 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InviteTxState {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

/// A non-INVITE client transaction (BYE, NOTIFY, CANCEL): Timer E
/// retransmits, Timer F gives up.
#[derive(Debug, Clone)]
struct NonInviteTx {
    method: &'static str,
    branch: String,
    destination: SocketAddr,
    data: Vec<u8>,
    interval: Duration,
    timer_e: Instant,
    timer_f: Instant,
}

/// A request we answered, kept so a retransmission gets the same answer
/// without acting twice.
#[derive(Debug, Clone)]
struct Answered {
    cseq: (u32, String),
    response: Vec<u8>,
}

/// The scripted caller's user agent client: one call.
#[derive(Debug)]
pub struct Uac {
    config: UacConfig,
    state: CallState,
    invite_cseq: u32,
    invite_branch: String,
    invite_data: Vec<u8>,
    invite_tx: InviteTxState,
    invite_interval: Duration,
    timers: InviteTimers,
    /// The ACK for the 2xx, re-sent for each retransmitted 2xx.
    ack: Option<Transmit>,
    /// The ACK for a non-2xx final response.
    error_ack: Option<Vec<u8>>,
    remote_tag: Option<String>,
    remote_target: String,
    route_set: Vec<String>,
    local_cseq: u32,
    branches: u64,
    non_invite: Vec<NonInviteTx>,
    answered: VecDeque<Answered>,
    cancel_pending: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<UacEvent>,
}

impl Uac {
    /// Starts the call at `now`: the INVITE is queued and Timers A and B run.
    pub fn new(config: UacConfig, now: Instant) -> Uac {
        let invite_branch = format!("z9hG4bK{}-0", config.branch_seed);
        let mut uac = Uac {
            state: CallState::Calling,
            invite_cseq: 1,
            invite_data: Vec::new(),
            invite_tx: InviteTxState::Calling,
            invite_interval: T1,
            timers: InviteTimers::default(),
            ack: None,
            error_ack: None,
            remote_tag: None,
            remote_target: config.target_uri.clone(),
            route_set: Vec::new(),
            local_cseq: 1,
            branches: 0,
            non_invite: Vec::new(),
            answered: VecDeque::new(),
            cancel_pending: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            invite_branch,
            config,
        };
        uac.invite_data = uac.invite().into_bytes();
        uac.transmits.push_back(Transmit {
            destination: uac.config.remote,
            data: uac.invite_data.clone(),
        });
        uac.timers.set(InviteTimer::A, now + T1);
        uac.timers.set(InviteTimer::B, now + 64 * T1);
        uac
    }

    /// Where the call is.
    pub fn state(&self) -> CallState {
        self.state
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<UacEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let non_invite = self
            .non_invite
            .iter()
            .map(|tx| tx.timer_e.min(tx.timer_f))
            .min();
        [self.timers.next_timeout(), non_invite]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.expired(now) {
            match timer {
                InviteTimer::A if self.invite_tx == InviteTxState::Calling => {
                    self.invite_interval *= 2;
                    self.timers.set(InviteTimer::A, now + self.invite_interval);
                    self.transmits.push_back(Transmit {
                        destination: self.config.remote,
                        data: self.invite_data.clone(),
                    });
                }
                InviteTimer::B if self.invite_tx == InviteTxState::Calling => {
                    self.invite_tx = InviteTxState::Terminated;
                    self.timers.stop(InviteTimer::A);
                    self.state = CallState::Terminated;
                    self.events.push_back(if self.cancel_pending {
                        UacEvent::Ended
                    } else {
                        UacEvent::NoAnswer
                    });
                }
                InviteTimer::D => self.invite_tx = InviteTxState::Terminated,
                _ => {}
            }
        }
        let mut timed_out = Vec::new();
        for tx in &mut self.non_invite {
            if now >= tx.timer_f {
                timed_out.push(tx.branch.clone());
            } else if now >= tx.timer_e {
                tx.interval = (tx.interval * 2).min(T2);
                tx.timer_e = now + tx.interval;
                self.transmits.push_back(Transmit {
                    destination: tx.destination,
                    data: tx.data.clone(),
                });
            }
        }
        for branch in timed_out {
            if let Some(tx) = self.take_non_invite(&branch) {
                self.non_invite_done(tx.method, None);
            }
        }
    }

    /// Ends the call: BYE in a dialog, CANCEL while ringing, nothing more
    /// before any answer (RFC 3261 §9.1 forbids CANCEL before a 1xx).
    pub fn hangup(&mut self, now: Instant) {
        match self.state {
            CallState::Confirmed => {
                self.state = CallState::Terminating;
                self.send_in_dialog(now, "BYE", &[], None);
            }
            CallState::Proceeding => {
                self.state = CallState::Terminating;
                self.cancel_pending = true;
                let cancel = self.cancel();
                let branch = self.invite_branch.clone();
                self.start_non_invite(now, "CANCEL", branch, self.config.remote, cancel);
            }
            CallState::Calling => {
                self.state = CallState::Terminated;
                self.timers = InviteTimers::default();
                self.invite_tx = InviteTxState::Terminated;
                self.events.push_back(UacEvent::Ended);
            }
            CallState::Terminating | CallState::Terminated => {}
        }
    }

    /// Takes a datagram received on the SIP socket from `source`.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, bytes: &[u8]) {
        let Ok(parsed) = message::parse(bytes) else {
            return;
        };
        match parsed.message {
            SipMessage::Response(response) => self.handle_response(now, &response, bytes),
            SipMessage::Request(request) => {
                let method = parsed
                    .unknown_method
                    .unwrap_or_else(|| request.method.to_string());
                self.handle_request(now, source, &request, &method, bytes);
            }
        }
    }

    fn handle_response(&mut self, now: Instant, response: &rsip::Response, raw: &[u8]) {
        let Some(via) = TopVia::of(response) else {
            return;
        };
        let Some((_, method)) = message::cseq(response) else {
            return;
        };
        let code = response.status_code.code();
        let branch = via.branch.unwrap_or_default();
        if method == "INVITE" && branch == self.invite_branch {
            self.invite_response(now, response, code, &reason_of(raw));
        } else if code >= 200 {
            if let Some(tx) = self.take_non_invite(&branch) {
                self.non_invite_done(tx.method, Some(code));
            }
        } else if let Some(tx) = self.non_invite.iter_mut().find(|tx| tx.branch == branch) {
            // Proceeding: keep retransmitting, but at T2.
            tx.interval = T2;
            tx.timer_e = now + T2;
        }
    }

    fn invite_response(
        &mut self,
        now: Instant,
        response: &rsip::Response,
        code: u16,
        reason: &str,
    ) {
        match code {
            100..=199 => {
                if self.invite_tx == InviteTxState::Calling {
                    self.invite_tx = InviteTxState::Proceeding;
                    self.timers.stop(InviteTimer::A);
                    self.timers.stop(InviteTimer::B);
                    if self.state == CallState::Calling {
                        self.state = CallState::Proceeding;
                    }
                }
                if code > 100 && self.state == CallState::Proceeding {
                    self.events.push_back(UacEvent::Progress { code });
                }
            }
            200..=299 => {
                if let Some(ack) = &self.ack {
                    // A retransmitted 2xx: our ACK was lost.
                    self.transmits.push_back(ack.clone());
                    return;
                }
                self.invite_tx = InviteTxState::Terminated;
                self.timers = InviteTimers::default();
                self.remote_tag = header_value(response, "to")
                    .and_then(message::tag)
                    .map(str::to_owned);
                if let Some(contact) = header_value(response, "contact") {
                    self.remote_target = addr_uri(contact).to_owned();
                }
                self.route_set = header_values(response, "record-route")
                    .into_iter()
                    .rev()
                    .map(str::to_owned)
                    .collect();
                let ack = self.request_in_dialog("ACK", self.invite_cseq, &[], None);
                let ack = Transmit {
                    destination: self.in_dialog_destination(),
                    data: ack.into_bytes(),
                };
                self.transmits.push_back(ack.clone());
                self.ack = Some(ack);
                if self.state == CallState::Terminating {
                    // We hung up while it rang and the answer crossed our
                    // CANCEL: end the dialog it made.
                    self.state = CallState::Confirmed;
                    self.hangup(now);
                } else {
                    self.state = CallState::Confirmed;
                    self.events.push_back(UacEvent::Answered {
                        sdp: response.body.clone(),
                    });
                }
            }
            _ => {
                if let Some(ack) = &self.error_ack {
                    self.transmits.push_back(Transmit {
                        destination: self.config.remote,
                        data: ack.clone(),
                    });
                    return;
                }
                if !matches!(
                    self.invite_tx,
                    InviteTxState::Calling | InviteTxState::Proceeding
                ) {
                    return;
                }
                self.invite_tx = InviteTxState::Completed;
                self.timers = InviteTimers::default();
                self.timers.set(InviteTimer::D, now + TIMER_D);
                let to = header_value(response, "to").unwrap_or_default().to_owned();
                let ack = self.error_ack_request(&to).into_bytes();
                self.transmits.push_back(Transmit {
                    destination: self.config.remote,
                    data: ack.clone(),
                });
                self.error_ack = Some(ack);
                let cancelled = self.cancel_pending;
                self.state = CallState::Terminated;
                self.events.push_back(if cancelled {
                    UacEvent::Ended
                } else {
                    UacEvent::Rejected {
                        code,
                        reason: reason.to_owned(),
                    }
                });
            }
        }
    }

    fn handle_request(
        &mut self,
        now: Instant,
        source: SocketAddr,
        request: &Request,
        method: &str,
        raw: &[u8],
    ) {
        if method == "ACK" {
            return;
        }
        let Some(cseq) = message::cseq(request) else {
            return;
        };
        if let Some(done) = self.answered.iter().find(|a| a.cseq == cseq) {
            // A retransmission: the same answer, no second action.
            let response = done.response.clone();
            self.respond_raw(source, response);
            return;
        }
        let ours = header_value(request, "call-id") == Some(self.config.call_id.as_str());
        let in_dialog = ours
            && matches!(
                self.state,
                CallState::Confirmed | CallState::Terminating | CallState::Terminated
            );
        let code = match method {
            "OPTIONS" => 200,
            _ if !in_dialog => 481,
            "BYE" => {
                if matches!(self.state, CallState::Confirmed | CallState::Terminating) {
                    self.state = CallState::Terminated;
                    self.non_invite.retain(|tx| tx.method != "BYE");
                    self.events.push_back(UacEvent::RemoteHangup);
                }
                200
            }
            "REFER" => match refer_to(raw) {
                None => 400,
                Some(target) => {
                    let accepted = !self.config.refuse_refer;
                    self.events.push_back(UacEvent::Refer { target, accepted });
                    if accepted {
                        202
                    } else {
                        603
                    }
                }
            },
            "NOTIFY" | "INFO" | "UPDATE" => 200,
            "INVITE" => 488,
            _ => 405,
        };
        let mut response = message::response_to(request, code, Some(&self.config.from_tag), source);
        if code == 200 || code == 405 {
            response
                .headers
                .push(rsip::Header::Other("Allow".into(), ALLOW.into()));
        }
        let bytes = message::to_bytes(response);
        self.answered.push_back(Answered {
            cseq,
            response: bytes.clone(),
        });
        if self.answered.len() > 16 {
            self.answered.pop_front();
        }
        self.respond_raw(source, bytes);
        if method == "REFER" && code == 202 && self.state == CallState::Confirmed {
            let headers = [
                "Event: refer".to_owned(),
                "Subscription-State: terminated;reason=noresource".to_owned(),
                "Content-Type: message/sipfrag".to_owned(),
            ];
            self.send_in_dialog(now, "NOTIFY", &headers, Some("SIP/2.0 200 OK\r\n"));
        }
    }

    fn respond_raw(&mut self, destination: SocketAddr, data: Vec<u8>) {
        self.transmits.push_back(Transmit { destination, data });
    }

    fn next_branch(&mut self) -> String {
        self.branches += 1;
        format!("z9hG4bK{}-{}", self.config.branch_seed, self.branches)
    }

    fn send_in_dialog(
        &mut self,
        now: Instant,
        method: &'static str,
        headers: &[String],
        body: Option<&str>,
    ) {
        self.local_cseq += 1;
        let cseq = self.local_cseq;
        let branch = self.next_branch();
        let text = self.request_with_branch(method, cseq, &branch, headers, body);
        let destination = self.in_dialog_destination();
        self.start_non_invite(now, method, branch, destination, text);
    }

    fn start_non_invite(
        &mut self,
        now: Instant,
        method: &'static str,
        branch: String,
        destination: SocketAddr,
        text: String,
    ) {
        let data = text.into_bytes();
        self.transmits.push_back(Transmit {
            destination,
            data: data.clone(),
        });
        self.non_invite.push(NonInviteTx {
            method,
            branch,
            destination,
            data,
            interval: T1,
            timer_e: now + T1,
            timer_f: now + 64 * T1,
        });
    }

    fn take_non_invite(&mut self, branch: &str) -> Option<NonInviteTx> {
        let i = self.non_invite.iter().position(|tx| tx.branch == branch)?;
        Some(self.non_invite.remove(i))
    }

    /// A non-INVITE transaction ended with `code`, or timed out (`None`).
    fn non_invite_done(&mut self, method: &str, _code: Option<u16>) {
        match method {
            "BYE" if self.state == CallState::Terminating => {
                self.state = CallState::Terminated;
                self.events.push_back(UacEvent::Ended);
            }
            // A CANCEL that went unanswered: the INVITE's final response
            // (487) or Timer B ends the call.
            _ => {}
        }
    }

    fn in_dialog_destination(&self) -> SocketAddr {
        let next_hop = self
            .route_set
            .first()
            .map(|r| addr_uri(r))
            .unwrap_or(&self.remote_target);
        message::uri_socket_addr(next_hop).unwrap_or(self.config.remote)
    }

    fn our_from(&self) -> String {
        format!(
            "<sip:{}@{}>;tag={}",
            self.config.user,
            self.config.local.ip(),
            self.config.from_tag
        )
    }

    fn common_headers(&self, branch: &str, to: &str, cseq: u32, method: &str) -> String {
        format!(
            "Via: SIP/2.0/UDP {};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {}\r\n\
             To: {to}\r\n\
             Call-ID: {}\r\n\
             CSeq: {cseq} {method}\r\n",
            self.config.local,
            self.our_from(),
            self.config.call_id,
        )
    }

    fn invite(&self) -> String {
        let to = format!("<{}>", self.config.target_uri);
        format!(
            "INVITE {} SIP/2.0\r\n{}Contact: <sip:{}@{}>\r\nAllow: {ALLOW}\r\n\
             User-Agent: echo-caller\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{}",
            self.config.target_uri,
            self.common_headers(&self.invite_branch, &to, self.invite_cseq, "INVITE"),
            self.config.user,
            self.config.local,
            self.config.sdp_offer.len(),
            self.config.sdp_offer
        )
    }

    fn cancel(&self) -> String {
        let to = format!("<{}>", self.config.target_uri);
        format!(
            "CANCEL {} SIP/2.0\r\n{}Content-Length: 0\r\n\r\n",
            self.config.target_uri,
            self.common_headers(&self.invite_branch, &to, self.invite_cseq, "CANCEL"),
        )
    }

    /// The ACK of a non-2xx: part of the INVITE transaction (same branch,
    /// same Request-URI), To from the response (RFC 3261 §17.1.1.3).
    fn error_ack_request(&self, to: &str) -> String {
        format!(
            "ACK {} SIP/2.0\r\n{}Content-Length: 0\r\n\r\n",
            self.config.target_uri,
            self.common_headers(&self.invite_branch, to, self.invite_cseq, "ACK"),
        )
    }

    fn request_in_dialog(
        &mut self,
        method: &str,
        cseq: u32,
        headers: &[String],
        body: Option<&str>,
    ) -> String {
        let branch = self.next_branch();
        self.request_with_branch(method, cseq, &branch, headers, body)
    }

    fn request_with_branch(
        &self,
        method: &str,
        cseq: u32,
        branch: &str,
        headers: &[String],
        body: Option<&str>,
    ) -> String {
        let to = match &self.remote_tag {
            Some(tag) => format!("<{}>;tag={tag}", self.config.target_uri),
            None => format!("<{}>", self.config.target_uri),
        };
        let mut text = format!(
            "{method} {} SIP/2.0\r\n{}",
            self.remote_target,
            self.common_headers(branch, &to, cseq, method)
        );
        for route in &self.route_set {
            text.push_str(&format!("Route: {route}\r\n"));
        }
        if method != "ACK" {
            text.push_str(&format!(
                "Contact: <sip:{}@{}>\r\n",
                self.config.user, self.config.local
            ));
        }
        for header in headers {
            text.push_str(header);
            text.push_str("\r\n");
        }
        let body = body.unwrap_or("");
        text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        text
    }
}

/// The reason phrase of a response's status line.
fn reason_of(raw: &[u8]) -> String {
    let line = raw
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    line.splitn(3, ' ')
        .nth(2)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The Refer-To URI of a REFER (`Refer-To` or its compact form `r`), read
/// from the raw datagram: rsip has no typed header for it.
fn refer_to(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("refer-to") || name.eq_ignore_ascii_case("r"))
            .then(|| addr_uri(value.trim()).to_owned())
            .filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot() -> SocketAddr {
        "127.0.0.1:5060".parse().unwrap()
    }

    fn config() -> UacConfig {
        UacConfig {
            target_uri: "sip:clinic@127.0.0.1:5060".into(),
            remote: bot(),
            local: "127.0.0.1:40000".parse().unwrap(),
            user: "caller".into(),
            call_id: "call-1".into(),
            from_tag: "ft".into(),
            branch_seed: "seed".into(),
            sdp_offer: "v=0\r\n".into(),
            refuse_refer: false,
        }
    }

    fn drain(uac: &mut Uac) -> Vec<String> {
        std::iter::from_fn(|| uac.poll_transmit())
            .map(|t| String::from_utf8(t.data).unwrap())
            .collect()
    }

    fn events(uac: &mut Uac) -> Vec<UacEvent> {
        std::iter::from_fn(|| uac.poll_event()).collect()
    }

    /// A response to the INVITE with `code`, To tag `bt`, Contact at the bot.
    fn invite_response(code: u16, body: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 {code} {}\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKseed-0;rport=40000\r\n\
             From: <sip:caller@127.0.0.1>;tag=ft\r\nTo: <sip:clinic@127.0.0.1:5060>;tag=bt\r\n\
             Call-ID: call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:clinic@127.0.0.1:5070>\r\n\
             Content-Length: {}\r\n\r\n{body}",
            message::reason_phrase(code),
            body.len()
        )
        .into_bytes()
    }

    /// A request from the bot inside the dialog.
    fn bot_request(method: &str, cseq: u32, extra: &str, body: &str) -> Vec<u8> {
        format!(
            "{method} sip:caller@127.0.0.1:40000 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbot{cseq}\r\n\
             From: <sip:clinic@127.0.0.1:5060>;tag=bt\r\nTo: <sip:caller@127.0.0.1>;tag=ft\r\n\
             Call-ID: call-1\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn answered(t0: Instant) -> Uac {
        let mut uac = Uac::new(config(), t0);
        drain(&mut uac);
        uac.handle_datagram(t0, bot(), &invite_response(200, "v=0\r\n"));
        drain(&mut uac);
        events(&mut uac);
        uac
    }

    #[test]
    fn invite_retransmits_on_timer_a_and_gives_up_on_timer_b() {
        let t0 = Instant::now();
        let mut uac = Uac::new(config(), t0);
        let first = drain(&mut uac);
        assert_eq!(first.len(), 1);
        assert!(first[0].starts_with("INVITE sip:clinic@127.0.0.1:5060 SIP/2.0"));
        assert!(first[0].contains("CSeq: 1 INVITE"));
        // Retransmits at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; B at 32 s.
        let mut sent_at = Vec::new();
        let mut now = t0;
        while let Some(at) = uac.poll_timeout() {
            now = at;
            uac.handle_timeout(now);
            if !drain(&mut uac).is_empty() {
                sent_at.push((now - t0).as_millis());
            }
        }
        assert_eq!(sent_at, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(now - t0, 64 * T1);
        assert_eq!(events(&mut uac), vec![UacEvent::NoAnswer]);
        assert_eq!(uac.state(), CallState::Terminated);
    }

    #[test]
    fn provisional_stops_retransmits_and_2xx_is_acked_in_a_new_transaction() {
        let t0 = Instant::now();
        let mut uac = Uac::new(config(), t0);
        drain(&mut uac);
        uac.handle_datagram(t0 + T1 / 2, bot(), &invite_response(180, ""));
        assert_eq!(events(&mut uac), vec![UacEvent::Progress { code: 180 }]);
        assert_eq!(uac.poll_timeout(), None, "no retransmits after a 1xx");
        uac.handle_datagram(t0 + T1, bot(), &invite_response(200, "v=0\r\n"));
        let sent = drain(&mut uac);
        assert_eq!(sent.len(), 1);
        let ack = &sent[0];
        // To the Contact, same CSeq number, method ACK, a new branch.
        assert!(
            ack.starts_with("ACK sip:clinic@127.0.0.1:5070 SIP/2.0"),
            "{ack}"
        );
        assert!(ack.contains("CSeq: 1 ACK"));
        assert!(ack.contains(";tag=bt"));
        assert!(!ack.contains("branch=z9hG4bKseed-0;"));
        assert_eq!(
            events(&mut uac),
            vec![UacEvent::Answered {
                sdp: b"v=0\r\n".to_vec()
            }]
        );
        // A retransmitted 2xx gets the same ACK again, and no new event.
        uac.handle_datagram(t0 + 2 * T1, bot(), &invite_response(200, "v=0\r\n"));
        assert_eq!(drain(&mut uac), vec![ack.clone()]);
        assert!(events(&mut uac).is_empty());
    }

    #[test]
    fn final_error_is_acked_in_the_transaction() {
        let t0 = Instant::now();
        let mut uac = Uac::new(config(), t0);
        drain(&mut uac);
        uac.handle_datagram(t0, bot(), &invite_response(486, ""));
        let sent = drain(&mut uac);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].starts_with("ACK sip:clinic@127.0.0.1:5060 SIP/2.0"));
        assert!(sent[0].contains("branch=z9hG4bKseed-0;"));
        assert!(sent[0].contains("CSeq: 1 ACK"));
        assert!(sent[0].contains("tag=bt"));
        assert_eq!(
            events(&mut uac),
            vec![UacEvent::Rejected {
                code: 486,
                reason: "Busy Here".into()
            }]
        );
        // Retransmitted 486 → the ACK again; Timer D ends the transaction.
        uac.handle_datagram(t0 + T1, bot(), &invite_response(486, ""));
        assert_eq!(drain(&mut uac).len(), 1);
        assert_eq!(uac.poll_timeout(), Some(t0 + TIMER_D));
        uac.handle_timeout(t0 + TIMER_D);
        assert_eq!(uac.poll_timeout(), None);
    }

    #[test]
    fn bye_from_the_bot_is_answered_200() {
        let t0 = Instant::now();
        let mut uac = answered(t0);
        uac.handle_datagram(t0, bot(), &bot_request("BYE", 2, "", ""));
        let sent = drain(&mut uac);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].starts_with("SIP/2.0 200 OK"), "{}", sent[0]);
        assert!(sent[0].contains("CSeq: 2 BYE"));
        assert_eq!(events(&mut uac), vec![UacEvent::RemoteHangup]);
        // The retransmitted BYE gets the same 200, and no second event.
        uac.handle_datagram(t0 + T1, bot(), &bot_request("BYE", 2, "", ""));
        assert_eq!(drain(&mut uac), sent);
        assert!(events(&mut uac).is_empty());
    }

    #[test]
    fn our_bye_retransmits_until_answered() {
        let t0 = Instant::now();
        let mut uac = answered(t0);
        uac.hangup(t0);
        let bye = drain(&mut uac);
        assert_eq!(bye.len(), 1);
        assert!(bye[0].starts_with("BYE sip:clinic@127.0.0.1:5070 SIP/2.0"));
        assert!(bye[0].contains("CSeq: 2 BYE"));
        uac.handle_timeout(t0 + T1);
        assert_eq!(drain(&mut uac), bye, "Timer E");
        assert_eq!(uac.poll_timeout(), Some(t0 + 3 * T1));
        let branch = message::header_param(
            bye[0].lines().find(|l| l.starts_with("Via:")).unwrap(),
            "branch",
        )
        .unwrap()
        .to_owned();
        let ok = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch={branch}\r\n\
             From: <sip:caller@127.0.0.1>;tag=ft\r\nTo: <sip:clinic@127.0.0.1>;tag=bt\r\n\
             Call-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        );
        uac.handle_datagram(t0 + 2 * T1, bot(), ok.as_bytes());
        assert_eq!(events(&mut uac), vec![UacEvent::Ended]);
        assert_eq!(uac.state(), CallState::Terminated);
        assert_eq!(uac.poll_timeout(), None);
    }

    #[test]
    fn unanswered_bye_ends_on_timer_f() {
        let t0 = Instant::now();
        let mut uac = answered(t0);
        uac.hangup(t0);
        let mut retransmits = 0;
        let mut last = t0;
        while let Some(at) = uac.poll_timeout() {
            last = at;
            uac.handle_timeout(at);
            retransmits += drain(&mut uac).len();
        }
        // The BYE, then E at 0.5, 1.5, 3.5, 7.5 s and every 4 s up to F
        // at 32 s.
        assert_eq!(retransmits, 1 + 4 + 6);
        assert_eq!(last - t0, 64 * T1);
        assert_eq!(events(&mut uac), vec![UacEvent::Ended]);
    }

    #[test]
    fn refer_is_accepted_and_notified() {
        let t0 = Instant::now();
        let mut uac = answered(t0);
        let refer = bot_request(
            "REFER",
            3,
            "Refer-To: <sip:frontdesk@127.0.0.1:5080>\r\n",
            "",
        );
        uac.handle_datagram(t0, bot(), &refer);
        let sent = drain(&mut uac);
        assert_eq!(sent.len(), 2);
        assert!(sent[0].starts_with("SIP/2.0 202 Accepted"));
        let notify = &sent[1];
        assert!(notify.starts_with("NOTIFY sip:clinic@127.0.0.1:5070 SIP/2.0"));
        assert!(notify.contains("Event: refer\r\n"));
        assert!(notify.contains("Subscription-State: terminated;reason=noresource\r\n"));
        assert!(notify.contains("Content-Type: message/sipfrag\r\n"));
        assert!(notify.ends_with("\r\n\r\nSIP/2.0 200 OK\r\n"));
        assert_eq!(
            events(&mut uac),
            vec![UacEvent::Refer {
                target: "sip:frontdesk@127.0.0.1:5080".into(),
                accepted: true
            }]
        );
        // A retransmitted REFER: 202 again, no second NOTIFY.
        uac.handle_datagram(t0 + T1 / 4, bot(), &refer);
        assert_eq!(drain(&mut uac), vec![sent[0].clone()]);
    }

    #[test]
    fn refer_refused_with_603_when_asked() {
        let t0 = Instant::now();
        let mut uac = Uac::new(
            UacConfig {
                refuse_refer: true,
                ..config()
            },
            t0,
        );
        drain(&mut uac);
        uac.handle_datagram(t0, bot(), &invite_response(200, ""));
        drain(&mut uac);
        events(&mut uac);
        uac.handle_datagram(
            t0,
            bot(),
            &bot_request("REFER", 3, "r: sip:desk@127.0.0.1\r\n", ""),
        );
        let sent = drain(&mut uac);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].starts_with("SIP/2.0 603 Decline"), "{}", sent[0]);
        assert_eq!(
            events(&mut uac),
            vec![UacEvent::Refer {
                target: "sip:desk@127.0.0.1".into(),
                accepted: false
            }]
        );
    }

    #[test]
    fn options_get_200_and_strangers_481() {
        let t0 = Instant::now();
        let mut uac = answered(t0);
        uac.handle_datagram(t0, bot(), &bot_request("OPTIONS", 4, "", ""));
        let sent = drain(&mut uac);
        assert!(sent[0].starts_with("SIP/2.0 200 OK"));
        assert!(sent[0].contains("Allow: "));
        let stranger = String::from_utf8(bot_request("BYE", 5, "", ""))
            .unwrap()
            .replace("Call-ID: call-1", "Call-ID: other");
        uac.handle_datagram(t0, bot(), stranger.as_bytes());
        assert!(drain(&mut uac)[0].starts_with("SIP/2.0 481"));
        assert!(events(&mut uac).is_empty());
        // Garbage is ignored.
        uac.handle_datagram(t0, bot(), b"\x00\x01garbage");
        assert!(drain(&mut uac).is_empty());
    }

    #[test]
    fn hangup_while_ringing_cancels() {
        let t0 = Instant::now();
        let mut uac = Uac::new(config(), t0);
        drain(&mut uac);
        uac.handle_datagram(t0, bot(), &invite_response(180, ""));
        events(&mut uac);
        uac.hangup(t0);
        let sent = drain(&mut uac);
        assert!(sent[0].starts_with("CANCEL sip:clinic@127.0.0.1:5060"));
        assert!(sent[0].contains("branch=z9hG4bKseed-0;"));
        uac.handle_datagram(t0, bot(), &invite_response(487, ""));
        assert!(drain(&mut uac)[0].starts_with("ACK "));
        assert_eq!(events(&mut uac), vec![UacEvent::Ended]);
    }
}
