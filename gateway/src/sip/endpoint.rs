//! The SIP endpoint: Echo's user-agent server core, sans-IO.
//!
//! The driver feeds it what arrives (`handle_message`), timer expiries
//! (`handle_timeout`), the call layer's decisions (`accept`, `reject`,
//! `hangup`) and new trunks and routes (`reconfigure`), and drains
//! `poll_transmit`, `poll_event` and `poll_timeout`.
//! It owns the transactions, the dialogs, trunk admission and routing; it
//! never touches a socket or reads the clock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rsip::headers::Header;
use rsip::{Request, SipMessage};

use super::auth::{AuthFailure, AuthResult, DigestAuthenticator, DigestCredentials};
use super::message::{self, header_value, header_values, TopVia};
use super::sdp::{self, LocalMedia, NegotiatedMedia, NegotiationError, SessionDescription};
use super::transaction::{
    ClientOutput, ClientTransaction, ServerKey, ServerKind, ServerState, ServerTimeout,
    ServerTransaction,
};
use super::{Flow, Transmit, Transport};
use crate::config::{RouteConfig, TrunkConfig};
use crate::metrics::Metrics;
use crate::routing::{Admission, App, RouteTable, TrunkId, TrunkTable};

/// Methods Echo implements, for `Allow` (RFC 3261 §20.5).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY";
/// The only body type Echo takes.
const SDP: &str = "application/sdp";
/// How long a digest nonce stays valid.
const NONCE_TTL: Duration = Duration::from_secs(300);

/// A call, as the driver and the call layer know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller hung up with BYE.
    RemoteBye,
    /// Echo hung up with BYE (the app, a media timeout, draining).
    LocalBye,
    /// The caller cancelled before the answer.
    Cancelled,
    /// Echo refused the call after accepting the INVITE (e.g. no RTP port).
    Rejected(u16),
    /// The caller never acknowledged the 2xx.
    NoAck,
}

impl EndReason {
    /// The label used in `echo_calls_total{status}`.
    pub fn label(self) -> &'static str {
        match self {
            EndReason::RemoteBye | EndReason::LocalBye => "completed",
            EndReason::Cancelled => "cancelled",
            EndReason::Rejected(_) => "rejected",
            EndReason::NoAck => "no_ack",
        }
    }
}

/// What the endpoint tells the call layer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
// A few events per call, moved once each: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// A new INVITE passed every check: the driver must `accept` it with a
    /// local RTP address, or `reject` it.
    IncomingCall {
        /// The call.
        call: CallHandle,
        /// The app its route leads to.
        app: App,
        /// The route's media settings.
        media: echo_media::MediaSettings,
        /// The route's way to a person.
        staff: crate::routing::Staff,
        /// The route's pattern, as configured.
        route: String,
        /// The trunk it came from.
        trunk: String,
        /// The From URI.
        from: String,
        /// The dialled user part.
        to_user: String,
        /// The SIP Call-ID.
        call_id: String,
    },
    /// Media was negotiated (first time, or again after a re-INVITE).
    Media {
        /// The call.
        call: CallHandle,
        /// What was agreed.
        media: NegotiatedMedia,
    },
    /// The final answer to our REFER (RFC 3515): 2xx means the caller's
    /// side took the transfer on; 408 when nothing came back.
    ReferAnswered {
        /// The call.
        call: CallHandle,
        /// The final status code.
        code: u16,
    },
    /// The call is over; its resources can go.
    Ended {
        /// The call.
        call: CallHandle,
        /// Why.
        reason: EndReason,
    },
}

/// Fixed settings of the endpoint.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Host (IP) put in Contact and Via headers.
    pub host: String,
    /// SIP port (UDP and TCP).
    pub port: u16,
    /// Seed for tags, branches and nonces.
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// Waiting for the driver to accept.
    Incoming,
    /// 180 sent; answering at the deadline.
    Ringing { answer_at: Instant },
    /// 200 sent; dialog confirmed by the ACK.
    Answered,
    /// BYE sent; waiting for its final response.
    Terminating,
}

#[derive(Debug)]
struct Dialog {
    call_id: String,
    local_tag: String,
    /// The To of the INVITE, without tag: our identity.
    local_uri: String,
    /// The From of the INVITE, with its tag.
    remote: String,
    remote_target: String,
    route_set: Vec<String>,
    local_cseq: u32,
    remote_cseq: u32,
}

#[derive(Debug)]
struct Call {
    trunk: TrunkId,
    state: CallState,
    /// The INVITE (initial or the re-INVITE in progress) and its key.
    invite: Request,
    invite_key: ServerKey,
    flow: Flow,
    dialog: Dialog,
    /// Copied from the route at the INVITE, so a reconfigure that changes or
    /// removes the route leaves this call as it was answered.
    answer_delay: Duration,
    local_media: Option<LocalMedia>,
    /// Our offer, when the INVITE came without one (late offer).
    our_offer: Option<SessionDescription>,
    /// Hang up as soon as the ACK arrives (RFC 3261 §15: no BYE before it).
    hangup_after_ack: bool,
}

/// The sans-IO SIP user-agent server.
pub struct SipEndpoint {
    config: EndpointConfig,
    trunks: TrunkTable,
    routes: RouteTable,
    auth: DigestAuthenticator,
    metrics: Arc<Metrics>,
    rng: SmallRng,
    server_tx: HashMap<ServerKey, ServerTransaction>,
    client_tx: HashMap<String, (ClientTransaction, CallHandle, Purpose)>,
    calls: HashMap<CallHandle, Call>,
    /// (Call-ID, our tag) → call.
    dialogs: HashMap<(String, String), CallHandle>,
    /// INVITE transactions still owned by a call, for CANCEL.
    invites: HashMap<ServerKey, CallHandle>,
    next_call: u64,
    draining: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Deadlines of transactions and ringing calls; entries may be stale
    /// (re-armed or stopped timers), which `handle_timeout` skips.
    timers: BinaryHeap<Reverse<(Instant, TimerKey)>>,
}

/// Why Echo sent a request in a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Bye,
    Refer,
}

/// What a deadline in the timer heap belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Server(ServerKey),
    Client(String),
    Answer(CallHandle),
}

impl SipEndpoint {
    /// A new endpoint.
    pub fn new(
        config: EndpointConfig,
        trunks: TrunkTable,
        routes: RouteTable,
        metrics: Arc<Metrics>,
    ) -> Self {
        let auth = DigestAuthenticator::new(
            "echo".to_owned(),
            NONCE_TTL,
            rand::rngs::StdRng::seed_from_u64(config.seed ^ 0x5eed),
        );
        SipEndpoint {
            rng: SmallRng::seed_from_u64(config.seed),
            config,
            trunks,
            routes,
            auth,
            metrics,
            server_tx: HashMap::new(),
            client_tx: HashMap::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            next_call: 1,
            draining: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            timers: BinaryHeap::new(),
        }
    }

    /// Swaps in new trunks and routes. New requests use them at once; calls
    /// in progress keep the route they came in on (app, media, ringing
    /// time) and their trunk, even one that is now removed (see
    /// [`TrunkTable::reconfigure`]).
    pub fn reconfigure(&mut self, trunks: &[TrunkConfig], routes: &[RouteConfig]) {
        self.routes = RouteTable::from_config(routes);
        self.trunks.reconfigure(trunks);
    }

    /// The trunks, with their live call counts.
    pub fn trunks(&self) -> &TrunkTable {
        &self.trunks
    }

    /// Refuse new calls with 503 (SIGTERM) or take them again.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Number of calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Transactions alive, and deadlines queued (for tests and metrics).
    pub fn transactions(&self) -> (usize, usize) {
        (
            self.server_tx.len() + self.client_tx.len(),
            self.timers.len(),
        )
    }

    /// Calls in progress.
    pub fn calls(&self) -> impl Iterator<Item = CallHandle> + '_ {
        self.calls.keys().copied()
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the call layer.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Bytes arrived on `flow` (one datagram, or one framed TCP message).
    pub fn handle_message(&mut self, now: Instant, flow: Flow, bytes: &[u8]) {
        let parsed = match message::parse(bytes) {
            Ok(p) => p,
            Err(_) => {
                self.metrics.sip_parse_failures.inc();
                return;
            }
        };
        match parsed.message {
            SipMessage::Request(req) => self.on_request(now, flow, req, parsed.unknown_method),
            SipMessage::Response(resp) => self.on_response(now, resp),
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, key))) = self.timers.pop() else {
                break;
            };
            // Entries go stale when a timer is re-armed or stopped; the
            // transaction's own table says whether anything is due.
            match key {
                TimerKey::Server(key) => {
                    if self
                        .server_tx
                        .get(&key)
                        .and_then(|t| t.next_timeout())
                        .is_some_and(|at| at <= now)
                    {
                        self.server_timeouts(now, &key);
                    } else {
                        // Stale: the heap only ever holds the minimum that
                        // was armed then; queue the real next deadline.
                        self.schedule_server(&key);
                    }
                }
                TimerKey::Client(branch) => {
                    if self
                        .client_tx
                        .get(&branch)
                        .and_then(|(t, _, _)| t.next_timeout())
                        .is_some_and(|at| at <= now)
                    {
                        self.client_timeouts(now, &branch);
                    } else {
                        self.schedule_client(&branch);
                    }
                }
                TimerKey::Answer(call) => {
                    let due = self.calls.get(&call).is_some_and(
                        |c| matches!(c.state, CallState::Ringing { answer_at } if answer_at <= now),
                    );
                    if due {
                        self.answer(now, call);
                    }
                }
            }
        }
    }

    /// Puts a transaction's next deadline in the timer heap.
    fn schedule_server(&mut self, key: &ServerKey) {
        if let Some(at) = self.server_tx.get(key).and_then(|t| t.next_timeout()) {
            self.timers
                .push(Reverse((at, TimerKey::Server(key.clone()))));
        }
    }

    fn schedule_client(&mut self, branch: &str) {
        if let Some(at) = self
            .client_tx
            .get(branch)
            .and_then(|(t, _, _)| t.next_timeout())
        {
            self.timers
                .push(Reverse((at, TimerKey::Client(branch.to_owned()))));
        }
    }

    /// The call layer takes an incoming call, with the RTP address its
    /// media socket is bound to (the address the SDP advertises).
    pub fn accept(&mut self, now: Instant, call: CallHandle, rtp: SocketAddr) {
        let session_id = self.rng.random::<u32>() as u64;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.state != CallState::Incoming {
            return;
        }
        c.local_media = Some(LocalMedia {
            addr: rtp,
            session_id,
            session_version: 1,
            codecs: default_codecs(),
            hold: false,
        });
        if c.answer_delay.is_zero() {
            self.answer(now, call);
        } else {
            let answer_at = now + c.answer_delay;
            c.state = CallState::Ringing { answer_at };
            self.timers
                .push(Reverse((answer_at, TimerKey::Answer(call))));
            self.respond_in_call(now, call, 180, Vec::new(), None);
        }
    }

    /// The call layer refuses an incoming call (e.g. no RTP port free).
    pub fn reject(&mut self, now: Instant, call: CallHandle, code: u16) {
        if self
            .calls
            .get(&call)
            .is_some_and(|c| matches!(c.state, CallState::Incoming | CallState::Ringing { .. }))
        {
            self.respond_in_call(now, call, code, Vec::new(), None);
            self.end_call(call, EndReason::Rejected(code));
        }
    }

    /// The call layer ends a call: a final response if it is not answered
    /// yet, otherwise a BYE (once the 2xx is acknowledged).
    pub fn hangup(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match c.state {
            CallState::Incoming | CallState::Ringing { .. } => {
                self.respond_in_call(now, call, 480, Vec::new(), None);
                self.end_call(call, EndReason::Rejected(480));
            }
            CallState::Answered => {
                let awaiting_ack = self
                    .server_tx
                    .get(&c.invite_key)
                    .is_some_and(|t| t.awaiting_ack());
                if awaiting_ack {
                    c.hangup_after_ack = true;
                } else {
                    self.send_bye(now, call);
                }
            }
            CallState::Terminating => {}
        }
    }

    // ----- requests -------------------------------------------------------

    fn on_request(
        &mut self,
        now: Instant,
        flow: Flow,
        req: Request,
        unknown_method: Option<String>,
    ) {
        let Some(via) = TopVia::of(&req) else {
            // Without a Via there is nowhere to send a response.
            self.metrics.sip_parse_failures.inc();
            return;
        };
        let method = unknown_method
            .clone()
            .unwrap_or_else(|| req.method.to_string());
        let response_flow = Flow {
            remote: message::response_destination(&via, flow.remote, flow.is_reliable()),
            ..flow
        };
        let key = ServerKey {
            branch: via.branch.clone().unwrap_or_else(|| legacy_branch(&req)),
            sent_by: via.sent_by.clone(),
            method: if method == "ACK" {
                "INVITE".to_owned()
            } else {
                method.clone()
            },
        };

        if method == "ACK" {
            self.on_ack(now, &key, &req);
            return;
        }
        if let Some(tx) = self.server_tx.get_mut(&key) {
            if let Some(bytes) = tx.on_retransmission() {
                self.metrics.sip_retransmissions.inc();
                self.transmits.push_back(Transmit {
                    flow: tx.flow(),
                    data: bytes,
                });
            }
            return;
        }

        self.metrics.request(if unknown_method.is_some() {
            "OTHER"
        } else {
            &method
        });
        let kind = if method == "INVITE" {
            ServerKind::Invite
        } else {
            ServerKind::NonInvite
        };
        self.server_tx
            .insert(key.clone(), ServerTransaction::new(kind, response_flow));
        let ctx = RequestContext {
            key,
            flow: response_flow,
        };

        if let Some(code) = self.basic_checks(&req, &method) {
            let extra = match code {
                405 => vec![Header::Allow(ALLOW.into())],
                _ => Vec::new(),
            };
            self.respond(now, &ctx, &req, code, None, extra, None);
            return;
        }
        if unknown_method.is_some() {
            self.respond(now, &ctx, &req, 405, None, allow(), None);
            return;
        }
        if method != "CANCEL" {
            if let Some(unsupported) = unsupported_require(&req) {
                let extra = vec![Header::Unsupported(unsupported.into())];
                self.respond(now, &ctx, &req, 420, None, extra, None);
                return;
            }
        }

        let to_tag = header_value(&req, "to")
            .and_then(message::tag)
            .map(str::to_owned);
        match (method.as_str(), to_tag) {
            ("CANCEL", _) => self.on_cancel(now, &ctx, &req),
            (_, Some(_)) => self.on_in_dialog(now, &ctx, &req, &method),
            ("OPTIONS", None) => {
                if self.trunks.match_source(flow.remote.ip()).is_none() {
                    self.respond(now, &ctx, &req, 403, None, Vec::new(), None);
                } else {
                    self.respond(now, &ctx, &req, 200, None, capabilities(), None);
                }
            }
            ("INVITE", None) => self.on_new_invite(now, &ctx, flow, req),
            ("BYE", None) => self.respond(now, &ctx, &req, 481, None, Vec::new(), None),
            _ => self.respond(now, &ctx, &req, 405, None, allow(), None),
        }
    }

    /// RFC 3261 §8.2: mandatory headers, CSeq, Max-Forwards.
    fn basic_checks(&self, req: &Request, method: &str) -> Option<u16> {
        for name in ["from", "to", "call-id", "cseq"] {
            if header_value(req, name).is_none_or(|v| v.trim().is_empty()) {
                return Some(400);
            }
        }
        match message::cseq(req) {
            Some((_, m)) if m.eq_ignore_ascii_case(method) => {}
            _ => return Some(400),
        }
        if let Some(mf) = header_value(req, "max-forwards") {
            match mf.trim().parse::<u32>() {
                Ok(0) if method != "ACK" && method != "CANCEL" => return Some(483),
                Ok(_) => {}
                Err(_) => return Some(400),
            }
        }
        None
    }

    fn on_ack(&mut self, now: Instant, key: &ServerKey, req: &Request) {
        // ACK for a non-2xx: same branch as the INVITE.
        if let Some(tx) = self.server_tx.get_mut(key) {
            if tx.state() == ServerState::Completed {
                tx.on_ack(now);
                self.schedule_server(key);
                return;
            }
        }
        // ACK for a 2xx: its own transaction, matched to the dialog.
        let Some(call) = self.dialog_of(req) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(tx) = self.server_tx.get_mut(&c.invite_key) else {
            return;
        };
        if !tx.awaiting_ack() {
            return;
        }
        tx.on_ack(now);
        if let Some(offer) = c.our_offer.take() {
            let answer = std::str::from_utf8(&req.body)
                .ok()
                .and_then(|t| SessionDescription::parse(t).ok());
            match answer.map(|a| sdp::accept_answer(&offer, &a)) {
                Some(Ok(media)) => self.events.push_back(Event::Media { call, media }),
                _ => c.hangup_after_ack = true,
            }
        }
        if self.calls.get(&call).is_some_and(|c| c.hangup_after_ack) {
            self.send_bye(now, call);
        }
    }

    fn on_cancel(&mut self, now: Instant, ctx: &RequestContext, req: &Request) {
        let invite_key = ServerKey {
            method: "INVITE".to_owned(),
            ..ctx.key.clone()
        };
        let Some(&call) = self.invites.get(&invite_key) else {
            self.respond(now, ctx, req, 481, None, Vec::new(), None);
            return;
        };
        let tag = self.calls.get(&call).map(|c| c.dialog.local_tag.clone());
        self.respond(now, ctx, req, 200, tag.as_deref(), Vec::new(), None);
        let pending = self
            .server_tx
            .get(&invite_key)
            .is_some_and(|t| t.state() == ServerState::Proceeding);
        let unanswered = self
            .calls
            .get(&call)
            .is_some_and(|c| matches!(c.state, CallState::Incoming | CallState::Ringing { .. }));
        if pending && unanswered {
            self.respond_in_call(now, call, 487, Vec::new(), None);
            self.end_call(call, EndReason::Cancelled);
        }
    }

    fn on_in_dialog(&mut self, now: Instant, ctx: &RequestContext, req: &Request, method: &str) {
        let Some(call) = self.dialog_of(req) else {
            self.respond(now, ctx, req, 481, None, Vec::new(), None);
            return;
        };
        let cseq = message::cseq(req).map_or(0, |(n, _)| n);
        let c = self.calls.get_mut(&call).expect("dialog maps to a call");
        if cseq <= c.dialog.remote_cseq && method != "ACK" {
            // RFC 3261 §12.2.2: out of order.
            let extra = vec![Header::Other("Retry-After".into(), "1".into())];
            self.respond(now, ctx, req, 500, None, extra, None);
            return;
        }
        c.dialog.remote_cseq = cseq;
        match method {
            "BYE" => {
                self.respond(now, ctx, req, 200, None, Vec::new(), None);
                self.end_call(call, EndReason::RemoteBye);
            }
            "OPTIONS" => self.respond(now, ctx, req, 200, None, capabilities(), None),
            // The progress of a REFER we sent (RFC 3515 §2.4.4): noted only.
            "NOTIFY" => self.respond(now, ctx, req, 200, None, Vec::new(), None),
            "INVITE" => self.on_reinvite(now, ctx, call, req),
            _ => self.respond(now, ctx, req, 405, None, allow(), None),
        }
    }

    fn on_reinvite(&mut self, now: Instant, ctx: &RequestContext, call: CallHandle, req: &Request) {
        let c = self.calls.get(&call).expect("caller checked");
        let busy = c.state != CallState::Answered
            || self
                .server_tx
                .get(&c.invite_key)
                .is_some_and(|t| t.awaiting_ack());
        if busy {
            // RFC 3261 §14.2: an INVITE is still in progress.
            let extra = vec![Header::Other("Retry-After".into(), "1".into())];
            self.respond(now, ctx, req, 500, None, extra, None);
            return;
        }
        if let Some(code) = body_problem(req) {
            self.respond(now, ctx, req, code, None, accept_sdp(code), None);
            return;
        }
        let mut local = c.local_media.clone().expect("answered calls have media");
        local.session_version += 1;
        let (body, media, our_offer) = if req.body.is_empty() {
            let offer = sdp::offer(&local);
            (offer.to_string(), None, Some(offer))
        } else {
            let parsed = std::str::from_utf8(&req.body)
                .ok()
                .and_then(|t| SessionDescription::parse(t).ok());
            let Some(offer) = parsed else {
                self.respond(now, ctx, req, 400, None, Vec::new(), None);
                return;
            };
            match sdp::answer(&offer, &local) {
                Ok((answer, media)) => (answer.to_string(), Some(media), None),
                Err(_) => {
                    self.respond(now, ctx, req, 488, None, Vec::new(), None);
                    return;
                }
            }
        };
        let c = self.calls.get_mut(&call).expect("caller checked");
        c.local_media = Some(local);
        c.invite = req.clone();
        c.invite_key = ctx.key.clone();
        c.our_offer = our_offer;
        if let Some(target) = contact_uri(req) {
            c.dialog.remote_target = target;
        }
        self.respond(now, ctx, req, 100, None, Vec::new(), None);
        let extra = self.contact_headers(ctx.flow);
        self.respond(now, ctx, req, 200, None, extra, Some(body));
        if let Some(media) = media {
            self.events.push_back(Event::Media { call, media });
        }
    }

    fn on_new_invite(&mut self, now: Instant, ctx: &RequestContext, flow: Flow, req: Request) {
        let Some(trunk) = self.trunks.match_source(flow.remote.ip()) else {
            self.reject_invite(now, ctx, &req, 403, Vec::new());
            return;
        };
        if self.draining {
            self.reject_invite(now, ctx, &req, 503, Vec::new());
            return;
        }
        if let Some(credentials) = self.trunks.credentials(trunk) {
            let (user, password) = (
                credentials.username.clone(),
                credentials.password.expose().to_owned(),
            );
            let request_uri = req.uri.to_string();
            let outcome = header_value(&req, "authorization").map(|h| {
                // The digest covers the uri it names: it must name this
                // request's host (sipp and some PBXes leave the user out).
                let uri_matches = DigestCredentials::parse(h)
                    .map(|c| same_host(&c.uri, &request_uri))
                    .unwrap_or(true);
                if uri_matches {
                    self.auth
                        .verify(now, &req.method.to_string(), h, &user, &password)
                } else {
                    AuthResult::Rejected(AuthFailure::WrongResponse)
                }
            });
            match outcome {
                Some(AuthResult::Ok) => {}
                Some(AuthResult::Stale) => {
                    let extra = self.challenge(now, true);
                    self.reject_invite(now, ctx, &req, 401, extra);
                    return;
                }
                Some(AuthResult::Rejected(_)) => {
                    self.reject_invite(now, ctx, &req, 403, Vec::new());
                    return;
                }
                None => {
                    let extra = self.challenge(now, false);
                    self.reject_invite(now, ctx, &req, 401, extra);
                    return;
                }
            }
        }
        let Some(route) =
            message::uri_user(&req.uri.to_string()).and_then(|u| self.routes.lookup(u))
        else {
            self.reject_invite(now, ctx, &req, 404, Vec::new());
            return;
        };
        let (app, answer_delay, media_settings) = (route.app, route.answer_delay, route.media);
        let staff = route.staff.clone();
        let route_name = route.pattern.to_string();
        if let Some(code) = body_problem(&req) {
            self.reject_invite(now, ctx, &req, code, accept_sdp(code));
            return;
        }
        if !req.body.is_empty() {
            let offer = std::str::from_utf8(&req.body)
                .ok()
                .and_then(|t| SessionDescription::parse(t).ok());
            let Some(offer) = offer else {
                self.reject_invite(now, ctx, &req, 400, Vec::new());
                return;
            };
            let probe = LocalMedia {
                addr: SocketAddr::from(([127, 0, 0, 1], 9)),
                session_id: 0,
                session_version: 0,
                codecs: default_codecs(),
                hold: false,
            };
            match sdp::answer(&offer, &probe) {
                Ok(_) => {}
                Err(NegotiationError::NoCommonCodec | NegotiationError::NoAudio) => {
                    self.reject_invite(now, ctx, &req, 488, Vec::new());
                    return;
                }
                Err(_) => {
                    self.reject_invite(now, ctx, &req, 400, Vec::new());
                    return;
                }
            }
        }
        match self.trunks.admit(trunk, now) {
            Admission::Accept => {}
            Admission::OverCallLimit => {
                self.reject_invite(now, ctx, &req, 486, Vec::new());
                return;
            }
            Admission::OverRate { retry_after_secs } => {
                let extra = vec![Header::Other(
                    "Retry-After".into(),
                    retry_after_secs.to_string(),
                )];
                self.reject_invite(now, ctx, &req, 503, extra);
                return;
            }
        }
        self.trunks.call_started(trunk);

        let call = CallHandle(self.next_call);
        self.next_call += 1;
        let local_tag = self.token();
        let call_id = header_value(&req, "call-id").unwrap_or_default().to_owned();
        let remote = header_value(&req, "from").unwrap_or_default().to_owned();
        let to = header_value(&req, "to").unwrap_or_default();
        let local_uri = to.split(";tag=").next().unwrap_or(to).to_owned();
        let dialog = Dialog {
            call_id: call_id.clone(),
            local_tag: local_tag.clone(),
            local_uri,
            remote: remote.clone(),
            remote_target: contact_uri(&req).unwrap_or_else(|| req.uri.to_string()),
            route_set: header_values(&req, "record-route")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            local_cseq: self.rng.random_range(1..10_000),
            remote_cseq: message::cseq(&req).map_or(0, |(n, _)| n),
        };
        let to_user = message::uri_user(&req.uri.to_string())
            .unwrap_or_default()
            .to_owned();
        self.calls.insert(
            call,
            Call {
                trunk,
                state: CallState::Incoming,
                invite: req,
                invite_key: ctx.key.clone(),
                flow,
                dialog,
                answer_delay,
                local_media: None,
                our_offer: None,
                hangup_after_ack: false,
            },
        );
        self.dialogs.insert((call_id.clone(), local_tag), call);
        self.invites.insert(ctx.key.clone(), call);
        self.metrics.active_calls.inc();
        self.respond_in_call(now, call, 100, Vec::new(), None);
        self.events.push_back(Event::IncomingCall {
            call,
            app,
            media: media_settings,
            staff,
            route: route_name,
            trunk: self.trunks.name(trunk).to_owned(),
            from: message::addr_uri(&remote).to_owned(),
            to_user,
            call_id,
        });
    }

    fn reject_invite(
        &mut self,
        now: Instant,
        ctx: &RequestContext,
        req: &Request,
        code: u16,
        extra: Vec<Header>,
    ) {
        let tag = self.token();
        self.respond(now, ctx, req, code, Some(&tag), extra, None);
        self.metrics.call_ended("rejected");
    }

    fn challenge(&mut self, now: Instant, stale: bool) -> Vec<Header> {
        self.auth
            .challenge(now, stale)
            .into_iter()
            .map(|v| Header::WwwAuthenticate(v.into()))
            .collect()
    }

    /// Sends the 200 with our SDP.
    fn answer(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let local = c.local_media.clone().expect("accepted calls have media");
        let (body, media) = if c.invite.body.is_empty() {
            let offer = sdp::offer(&local);
            let body = offer.to_string();
            c.our_offer = Some(offer);
            (body, None)
        } else {
            let offer = std::str::from_utf8(&c.invite.body)
                .ok()
                .and_then(|t| SessionDescription::parse(t).ok());
            match offer.map(|o| sdp::answer(&o, &local)) {
                Some(Ok((answer, media))) => (answer.to_string(), Some(media)),
                _ => {
                    self.respond_in_call(now, call, 488, Vec::new(), None);
                    self.end_call(call, EndReason::Rejected(488));
                    return;
                }
            }
        };
        c.state = CallState::Answered;
        let flow = c.flow;
        let extra = self.contact_headers(flow);
        self.respond_in_call(now, call, 200, extra, Some(body));
        if let Some(media) = media {
            self.events.push_back(Event::Media { call, media });
        }
    }

    // ----- responses ------------------------------------------------------

    fn on_response(&mut self, now: Instant, resp: rsip::Response) {
        let Some(branch) = TopVia::of(&resp).and_then(|v| v.branch) else {
            return;
        };
        let code = resp.status_code.code();
        let Some((tx, call, purpose)) = self.client_tx.get_mut(&branch) else {
            return;
        };
        let (call, purpose) = (*call, *purpose);
        match tx.on_response(now, code) {
            ClientOutput::Final(code) => self.client_final(call, purpose, code),
            ClientOutput::Retransmit(data) => self.transmits.push_back(Transmit {
                flow: tx.flow(),
                data,
            }),
            ClientOutput::None | ClientOutput::TimedOut => {}
        }
        self.schedule_client(&branch);
    }

    // ----- timers ---------------------------------------------------------

    fn server_timeouts(&mut self, now: Instant, key: &ServerKey) {
        loop {
            let Some(tx) = self.server_tx.get_mut(key) else {
                return;
            };
            if tx.next_timeout().is_none_or(|at| at > now) {
                break;
            }
            match tx.on_timeout(now) {
                ServerTimeout::Retransmit(data) => {
                    self.metrics.sip_retransmissions.inc();
                    self.transmits.push_back(Transmit {
                        flow: tx.flow(),
                        data,
                    });
                }
                ServerTimeout::NoAck { code: 200..=299 } => {
                    if let Some(&call) = self.invites.get(key) {
                        // RFC 3261 §13.3.1.4: no ACK → BYE.
                        self.send_bye(now, call);
                        self.end_call(call, EndReason::NoAck);
                    }
                }
                ServerTimeout::NoAck { .. } | ServerTimeout::None => {}
            }
        }
        if self
            .server_tx
            .get(key)
            .is_some_and(|t| t.state() == ServerState::Terminated)
        {
            self.server_tx.remove(key);
            self.invites.remove(key);
        } else {
            self.schedule_server(key);
        }
    }

    fn client_timeouts(&mut self, now: Instant, branch: &str) {
        loop {
            let Some((tx, call, purpose)) = self.client_tx.get_mut(branch) else {
                return;
            };
            let (call, purpose) = (*call, *purpose);
            if tx.next_timeout().is_none_or(|at| at > now) {
                break;
            }
            match tx.on_timeout(now) {
                ClientOutput::Retransmit(data) => {
                    self.metrics.sip_retransmissions.inc();
                    self.transmits.push_back(Transmit {
                        flow: tx.flow(),
                        data,
                    });
                }
                ClientOutput::TimedOut => self.client_final(call, purpose, 408),
                ClientOutput::Final(_) | ClientOutput::None => {}
            }
        }
        if self
            .client_tx
            .get(branch)
            .is_some_and(|(t, _, _)| t.next_timeout().is_none())
        {
            self.client_tx.remove(branch);
        } else {
            self.schedule_client(branch);
        }
    }

    // ----- building and sending -------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        now: Instant,
        ctx: &RequestContext,
        req: &Request,
        code: u16,
        to_tag: Option<&str>,
        extra: Vec<Header>,
        sdp_body: Option<String>,
    ) {
        let mut resp = message::response_to(req, code, to_tag, ctx.flow.remote);
        if (200..300).contains(&code) && req.method == rsip::Method::Invite {
            // RFC 3261 §12.1.1: the dialog's route set comes back in the 2xx.
            for rr in req.headers.iter() {
                if let Header::RecordRoute(_) = rr {
                    resp.headers.push(rr.clone());
                }
            }
        }
        resp.headers.push(Header::Server(
            concat!("Echo/", env!("CARGO_PKG_VERSION")).into(),
        ));
        for h in extra {
            resp.headers.push(h);
        }
        if let Some(body) = sdp_body {
            resp.headers.push(Header::ContentType(SDP.into()));
            resp.body = body.into_bytes();
        }
        let data = message::to_bytes(resp);
        let Some(tx) = self.server_tx.get_mut(&ctx.key) else {
            return;
        };
        if tx.send_response(now, code, &data) {
            self.metrics.response(code);
            self.transmits.push_back(Transmit {
                flow: ctx.flow,
                data,
            });
        }
        if tx.state() == ServerState::Terminated {
            self.server_tx.remove(&ctx.key);
        } else {
            self.schedule_server(&ctx.key);
        }
    }

    /// Responds on a call's current INVITE transaction with its To tag.
    fn respond_in_call(
        &mut self,
        now: Instant,
        call: CallHandle,
        code: u16,
        mut extra: Vec<Header>,
        body: Option<String>,
    ) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let ctx = RequestContext {
            key: c.invite_key.clone(),
            flow: self
                .server_tx
                .get(&c.invite_key)
                .map_or(c.flow, |t| t.flow()),
        };
        if code == 180 {
            extra.extend(self.contact_headers(c.flow));
        }
        let req = c.invite.clone();
        let tag = c.dialog.local_tag.clone();
        self.respond(now, &ctx, &req, code, Some(&tag), extra, body);
    }

    fn contact_headers(&self, flow: Flow) -> Vec<Header> {
        let transport = match flow.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
        };
        let mut headers = vec![Header::Contact(
            format!(
                "<sip:echo@{}:{}{}>",
                self.config.host, self.config.port, transport
            )
            .into(),
        )];
        headers.extend(capabilities());
        headers
    }

    /// A final response (or Timer F, as 408) to a request we sent.
    fn client_final(&mut self, call: CallHandle, purpose: Purpose, code: u16) {
        match purpose {
            Purpose::Bye => self.end_call(call, EndReason::LocalBye),
            Purpose::Refer => self.events.push_back(Event::ReferAnswered { call, code }),
        }
    }

    fn send_bye(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.state == CallState::Terminating {
            return;
        }
        c.state = CallState::Terminating;
        self.send_in_dialog(now, call, Purpose::Bye, "BYE", &[]);
    }

    /// Asks the caller's side to call `target` instead (RFC 3515 REFER, in
    /// the dialog); the answer comes as [`Event::ReferAnswered`]. Ignored
    /// unless the call is answered and acknowledged.
    pub fn refer(&mut self, now: Instant, call: CallHandle, target: &str) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let awaiting_ack = self
            .server_tx
            .get(&c.invite_key)
            .is_some_and(|t| t.awaiting_ack());
        if c.state != CallState::Answered || awaiting_ack {
            self.events
                .push_back(Event::ReferAnswered { call, code: 491 });
            return;
        }
        let referred_by = message::addr_uri(&c.dialog.local_uri).to_owned();
        let headers = [
            format!("Refer-To: <{target}>"),
            format!("Referred-By: <{referred_by}>"),
            format!(
                "Contact: <sip:echo@{}:{}>",
                self.config.host, self.config.port
            ),
        ];
        self.send_in_dialog(now, call, Purpose::Refer, "REFER", &headers);
    }

    /// Sends a request in the call's dialog through a new non-INVITE client
    /// transaction.
    fn send_in_dialog(
        &mut self,
        now: Instant,
        call: CallHandle,
        purpose: Purpose,
        method: &str,
        extra: &[String],
    ) {
        let branch = format!("z9hG4bK{}", self.token());
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.dialog.local_cseq += 1;
        let d = &c.dialog;
        // Loose routing (RFC 3261 §12.2.1.1): Request-URI = remote target,
        // Route = route set (Record-Route in order, for the UAS: §12.1.1),
        // sent to the first hop.
        let routes: Vec<&String> = d.route_set.iter().collect();
        let next_hop = routes
            .first()
            .map(|r| message::addr_uri(r))
            .unwrap_or(&d.remote_target);
        let remote = match c.flow.transport {
            Transport::Tcp => c.flow.remote,
            Transport::Udp => message::uri_socket_addr(next_hop).unwrap_or(c.flow.remote),
        };
        let flow = Flow { remote, ..c.flow };
        let mut text = format!(
            "{method} {} SIP/2.0\r\nVia: SIP/2.0/{} {}:{};branch={};rport\r\nMax-Forwards: 70\r\n",
            d.remote_target,
            flow.transport.as_str(),
            self.config.host,
            self.config.port,
            branch
        );
        for r in &routes {
            text.push_str(&format!("Route: {r}\r\n"));
        }
        for h in extra {
            text.push_str(h);
            text.push_str("\r\n");
        }
        text.push_str(&format!(
            "From: {};tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\nUser-Agent: Echo/{}\r\nContent-Length: 0\r\n\r\n",
            d.local_uri,
            d.local_tag,
            d.remote,
            d.call_id,
            d.local_cseq,
            env!("CARGO_PKG_VERSION"),
        ));
        let data = text.into_bytes();
        self.metrics.request(method);
        self.transmits.push_back(Transmit {
            flow,
            data: data.clone(),
        });
        self.client_tx.insert(
            branch.clone(),
            (ClientTransaction::new(now, flow, data), call, purpose),
        );
        self.schedule_client(&branch);
    }

    fn end_call(&mut self, call: CallHandle, reason: EndReason) {
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        self.dialogs
            .remove(&(c.dialog.call_id.clone(), c.dialog.local_tag.clone()));
        self.invites.retain(|_, h| *h != call);
        self.trunks.call_ended(c.trunk);
        self.metrics.active_calls.dec();
        self.metrics.call_ended(reason.label());
        self.events.push_back(Event::Ended { call, reason });
    }

    fn dialog_of(&self, req: &Request) -> Option<CallHandle> {
        let call_id = header_value(req, "call-id")?;
        let tag = header_value(req, "to").and_then(message::tag)?;
        self.dialogs
            .get(&(call_id.to_owned(), tag.to_owned()))
            .copied()
    }

    fn token(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }
}

#[derive(Debug, Clone)]
struct RequestContext {
    key: ServerKey,
    flow: Flow,
}

fn default_codecs() -> Vec<echo_media::CodecKind> {
    use echo_media::CodecKind::*;
    vec![Pcmu, Pcma, Opus]
}

fn allow() -> Vec<Header> {
    vec![Header::Allow(ALLOW.into())]
}

/// Allow, Accept and Supported: what OPTIONS and dialog-creating responses
/// advertise.
fn capabilities() -> Vec<Header> {
    vec![Header::Allow(ALLOW.into()), Header::Accept(SDP.into())]
}

fn accept_sdp(code: u16) -> Vec<Header> {
    if code == 415 {
        vec![Header::Accept(SDP.into())]
    } else {
        Vec::new()
    }
}

/// A body we cannot take: 415 for a type other than SDP or an encoding.
fn body_problem(req: &Request) -> Option<u16> {
    if req.body.is_empty() {
        return None;
    }
    let content_type = header_value(req, "content-type").unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case(SDP) {
        return Some(415);
    }
    if header_value(req, "content-encoding")
        .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"))
    {
        return Some(415);
    }
    None
}

/// The first option in Require (or Proxy-Require) that Echo does not
/// support: all of them, for now.
fn unsupported_require(req: &Request) -> Option<String> {
    let options: Vec<&str> = header_values(req, "require")
        .into_iter()
        .chain(header_values(req, "proxy-require"))
        .collect();
    (!options.is_empty()).then(|| options.join(", "))
}

fn contact_uri(req: &Request) -> Option<String> {
    header_value(req, "contact").map(|c| message::addr_uri(c).to_owned())
}

/// A stand-in transaction id for RFC 2543 peers without a branch.
fn legacy_branch(req: &Request) -> String {
    format!(
        "2543:{}:{}",
        header_value(req, "call-id").unwrap_or_default(),
        header_value(req, "cseq").unwrap_or_default()
    )
}

/// Whether two SIP URIs name the same host and port (users and parameters
/// aside).
fn same_host(a: &str, b: &str) -> bool {
    fn hostport(uri: &str) -> &str {
        let rest = uri
            .strip_prefix("sips:")
            .or_else(|| uri.strip_prefix("sip:"))
            .unwrap_or(uri);
        let rest = rest.rsplit('@').next().unwrap_or(rest);
        rest.split([';', '?']).next().unwrap_or(rest)
    }
    hostport(a).eq_ignore_ascii_case(hostport(b))
}
