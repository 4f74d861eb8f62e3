//! The one thin tokio loop around the sans-IO [`SipEndpoint`]: socket and
//! connection input → `handle_message`, deadlines → `handle_timeout`, then
//! drain `poll_transmit` to the sockets and `poll_event` to the call tasks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant as TokioInstant;
use tracing::{debug, info, warn};

use crate::audit_log::CallAudit;
use crate::call::{self, CallSignal, CallSpec, PortPool};
use crate::config::{RouteConfig, TrunkConfig};
use crate::metrics::Metrics;
use crate::routing::App;
use crate::sip::endpoint::{CallHandle, Event, SipEndpoint};
use crate::sip::{ConnectionId, Flow, Transmit, Transport};
use crate::tcp;

/// What the rest of the gateway asks of the SIP loop.
#[derive(Debug)]
pub enum Command {
    /// Hang a call up (the app is done).
    Hangup(crate::sip::endpoint::CallHandle),
    /// The caller's RTP stopped: log it and hang up.
    MediaTimeout(crate::sip::endpoint::CallHandle),
    /// Transfer the caller to `target` with a REFER; the answer comes back
    /// as [`CallSignal::ReferAnswered`].
    Refer {
        /// The call.
        call: CallHandle,
        /// The staff URI.
        target: String,
    },
    /// Write a point event of the call to the audit log.
    Event {
        /// The call.
        call: CallHandle,
        /// What happened.
        kind: echo_audit::EventKind,
        /// Details (no caller words).
        detail: serde_json::Value,
    },
    /// The app's verdict on the call, written with its end.
    Outcome {
        /// The call.
        call: CallHandle,
        /// What the call achieved.
        outcome: crate::audit_log::AppOutcome,
    },
    /// Refuse new calls; stop once the calls in progress are over, or hang
    /// them up at the deadline.
    Drain {
        /// When to hang up what is still running.
        deadline: TokioInstant,
        /// Answered once new INVITEs are being refused.
        refusing: tokio::sync::oneshot::Sender<()>,
    },
    /// Replace the trunks and routes (validated config) without dropping
    /// calls in progress; see [`SipEndpoint::reconfigure`].
    Reconfigure {
        /// The new `[[trunks]]`; empty means the implicit loopback trunk.
        trunks: Vec<TrunkConfig>,
        /// The new `[[routes]]`.
        routes: Vec<RouteConfig>,
        /// Answered once new requests use them.
        done: tokio::sync::oneshot::Sender<()>,
    },
}

/// What the TCP connection tasks hand the SIP loop.
#[derive(Debug)]
pub enum Inbound {
    /// A connection opened; bytes for it go to `tx`.
    Connected {
        /// Its id.
        id: ConnectionId,
        /// Its writer.
        tx: mpsc::Sender<Vec<u8>>,
    },
    /// One framed SIP message.
    Message {
        /// Where it came from.
        flow: Flow,
        /// The message.
        bytes: Vec<u8>,
    },
    /// A connection closed.
    Closed(ConnectionId),
}

/// Everything the loop needs.
pub struct SipDriver {
    /// The core.
    pub endpoint: SipEndpoint,
    /// The UDP socket (shared with nobody else).
    pub udp: Arc<UdpSocket>,
    /// TCP connection input.
    pub inbound: mpsc::Receiver<Inbound>,
    /// A sender for new outbound connections to register themselves.
    pub inbound_tx: mpsc::Sender<Inbound>,
    /// Commands from call tasks and the signal handler.
    pub commands: mpsc::Receiver<Command>,
    /// Handed to call tasks so they can send commands.
    pub commands_tx: mpsc::Sender<Command>,
    /// RTP ports.
    pub ports: Arc<PortPool>,
    /// The IP RTP sockets bind to.
    pub bind_ip: IpAddr,
    /// The IP SDP advertises for them.
    pub media_ip: IpAddr,
    /// Hang up calls whose RTP stops this long.
    pub rtp_timeout: Duration,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The audit log of calls.
    pub audit: CallAudit,
    /// What voice apps need (speech engines, flow, pool); `None` runs the
    /// echo app only.
    pub voice: Option<Arc<crate::voice::VoiceShared>>,
}

impl SipDriver {
    /// Runs until drained.
    pub async fn run(mut self) {
        let clock = Clock::new();
        let mut buf = vec![0u8; 65_536];
        let mut connections: HashMap<ConnectionId, mpsc::Sender<Vec<u8>>> = HashMap::new();
        let mut calls = Calls::default();
        let mut drain_deadline: Option<TokioInstant> = None;
        let mut hung_up_all = false;
        loop {
            let next = self.endpoint.poll_timeout().map(|t| clock.to_tokio(t));
            let drain_at = drain_deadline.filter(|_| !hung_up_all);
            let retry_at =
                (!calls.waiting.is_empty()).then(|| TokioInstant::now() + PORT_RETRY_INTERVAL);
            tokio::select! {
                received = self.udp.recv_from(&mut buf) => match received {
                    Ok((n, from)) => {
                        let flow = Flow::new(Transport::Udp, from, None);
                        self.endpoint.handle_message(clock.now(), flow, &buf[..n]);
                    }
                    // ICMP port unreachable and the like surface here on
                    // Linux; they concern one peer, not the socket.
                    Err(e) => debug!(error = %e, "udp receive error"),
                },
                Some(input) = self.inbound.recv() => match input {
                    Inbound::Connected { id, tx } => { connections.insert(id, tx); }
                    Inbound::Closed(id) => { connections.remove(&id); }
                    Inbound::Message { flow, bytes } => {
                        self.endpoint.handle_message(clock.now(), flow, &bytes);
                    }
                },
                Some(command) = self.commands.recv() => match command {
                    Command::Hangup(call) => self.endpoint.hangup(clock.now(), call),
                    Command::MediaTimeout(call) => {
                        self.audit.media_timeout(call);
                        self.endpoint.hangup(clock.now(), call);
                    }
                    Command::Refer { call, target } => {
                        self.endpoint.refer(clock.now(), call, &target);
                    }
                    Command::Event { call, kind, detail } => self.audit.event(call, kind, detail),
                    Command::Outcome { call, outcome } => self.audit.outcome(call, outcome),
                    Command::Drain { deadline, refusing } => {
                        info!(calls = self.endpoint.active_calls(), "draining");
                        self.endpoint.set_draining(true);
                        drain_deadline = Some(deadline);
                        let _ = refusing.send(());
                    }
                    Command::Reconfigure { trunks, routes, done } => {
                        self.endpoint.reconfigure(&trunks, &routes);
                        info!(trunks = trunks.len(), routes = routes.len(), "reconfigured");
                        let _ = done.send(());
                    }
                },
                _ = sleep_until_opt(next) => self.endpoint.handle_timeout(clock.now()),
                _ = sleep_until_opt(retry_at) => self.retry_waiting(&clock, &mut calls),
                _ = sleep_until_opt(drain_at) => {
                    warn!(calls = self.endpoint.active_calls(), "drain timeout: hanging up");
                    let now = clock.now();
                    let all: Vec<_> = self.endpoint.calls().collect();
                    for call in all {
                        self.endpoint.hangup(now, call);
                    }
                    hung_up_all = true;
                }
            }
            self.flush(&mut connections);
            while let Some(event) = self.endpoint.poll_event() {
                self.on_event(&clock, event, &mut calls);
                self.flush(&mut connections);
            }
            if drain_deadline.is_some() && self.endpoint.active_calls() == 0 {
                // Let final responses and BYEs go out before we stop.
                self.flush(&mut connections);
                info!("drained");
                return;
            }
        }
    }

    fn flush(&mut self, connections: &mut HashMap<ConnectionId, mpsc::Sender<Vec<u8>>>) {
        while let Some(Transmit { flow, data }) = self.endpoint.poll_transmit() {
            match flow.transport {
                Transport::Udp => {
                    if let Err(e) = self.udp.try_send_to(&data, flow.remote) {
                        debug!(error = %e, to = %flow.remote, "udp send failed");
                    }
                }
                Transport::Tcp => {
                    let conn = flow.connection.and_then(|id| connections.get(&id));
                    match conn {
                        Some(tx) => {
                            if tx.try_send(data).is_err() {
                                debug!(to = %flow.remote, "tcp connection backed up or closed");
                            }
                        }
                        None => tcp::connect_and_send(
                            flow.remote,
                            data,
                            self.inbound_tx.clone(),
                            self.metrics.clone(),
                        ),
                    }
                }
            }
        }
    }

    fn on_event(&mut self, clock: &Clock, event: Event, calls: &mut Calls) {
        match event {
            Event::IncomingCall {
                call,
                app,
                media,
                staff,
                trunk,
                from,
                to_user,
                call_id,
                route,
            } => {
                self.audit
                    .incoming(call, &trunk, &from, &to_user, &route, app, &call_id);
                let start = Start {
                    call,
                    app,
                    media,
                    staff,
                };
                if !self.start_call(clock, &start, calls) {
                    // A port may be on its way back from a call that just
                    // ended (its task drops the socket): wait a little.
                    calls.waiting.push(Waiting {
                        start,
                        give_up: TokioInstant::now() + PORT_WAIT,
                    });
                }
            }
            Event::Media { call, media } => {
                self.audit.media(call, media.codec.encoding_name());
                if let Some(tx) = calls.running.get(&call) {
                    let _ = tx.send(CallSignal::Media(media));
                }
            }
            Event::ReferAnswered { call, code } => {
                if let Some(tx) = calls.running.get(&call) {
                    let _ = tx.send(CallSignal::ReferAnswered(code));
                }
            }
            Event::Ended { call, reason } => {
                debug!(?call, ?reason, "call ended");
                self.audit.ended(call, reason);
                calls.waiting.retain(|w| w.start.call != call);
                if let Some(tx) = calls.running.remove(&call) {
                    let _ = tx.send(CallSignal::Ended);
                }
            }
        }
    }

    /// Binds the call's RTP socket, starts its task and answers; false if
    /// no port is free.
    fn start_call(&mut self, clock: &Clock, start: &Start, calls: &mut Calls) -> bool {
        let Start {
            call,
            app,
            media,
            ref staff,
        } = *start;
        let Some(bound) = self.ports.bind(self.bind_ip) else {
            return false;
        };
        let local = std::net::SocketAddr::new(self.media_ip, bound.local_addr().port());
        // Unbounded: signals are a handful per call, and the SIP loop must
        // never wait on a call task.
        let (tx, rx) = mpsc::unbounded_channel();
        calls.running.insert(call, tx);
        debug!(?call, %local, "call accepted");
        tokio::spawn(call::run(CallSpec {
            call,
            app,
            socket: bound,
            signals: rx,
            commands: self.commands_tx.clone(),
            rtp_timeout: self.rtp_timeout,
            media,
            staff: staff.clone(),
            metrics: self.metrics.clone(),
            turns: self.audit.turn_log(call),
            voice: self.voice.clone(),
        }));
        self.endpoint.accept(clock.now(), call, local);
        true
    }

    fn retry_waiting(&mut self, clock: &Clock, calls: &mut Calls) {
        let waiting = std::mem::take(&mut calls.waiting);
        for w in waiting {
            if self.start_call(clock, &w.start, calls) {
                continue;
            }
            if TokioInstant::now() >= w.give_up {
                warn!(call = ?w.start.call, "no RTP port free");
                self.endpoint.reject(clock.now(), w.start.call, 503);
            } else {
                calls.waiting.push(w);
            }
        }
    }
}

/// How long an accepted INVITE waits for an RTP port before 503.
const PORT_WAIT: Duration = Duration::from_millis(300);
/// How often a waiting call tries again.
const PORT_RETRY_INTERVAL: Duration = Duration::from_millis(10);

/// The calls the loop has started, and those waiting for an RTP port.
#[derive(Default)]
struct Calls {
    running: HashMap<CallHandle, mpsc::UnboundedSender<CallSignal>>,
    waiting: Vec<Waiting>,
}

struct Waiting {
    start: Start,
    give_up: TokioInstant,
}

/// What a call task needs from the INVITE's route.
#[derive(Clone)]
struct Start {
    call: CallHandle,
    app: App,
    media: echo_media::MediaSettings,
    staff: crate::routing::Staff,
}

/// Maps the endpoint's `std::time::Instant`s to tokio's clock, so the core
/// sees one monotonic time and the loop sleeps on tokio's.
struct Clock {
    origin_std: std::time::Instant,
    origin_tokio: TokioInstant,
}

impl Clock {
    fn new() -> Self {
        Clock {
            origin_std: std::time::Instant::now(),
            origin_tokio: TokioInstant::now(),
        }
    }

    fn now(&self) -> std::time::Instant {
        self.origin_std + self.origin_tokio.elapsed()
    }

    fn to_tokio(&self, at: std::time::Instant) -> TokioInstant {
        self.origin_tokio + at.saturating_duration_since(self.origin_std)
    }
}

/// Sleeps until `at`, or forever when there is no deadline (a `select!`
/// branch that never fires).
pub(crate) async fn sleep_until_opt(at: Option<TokioInstant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
