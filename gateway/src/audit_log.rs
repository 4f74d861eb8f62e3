//! What the SIP loop writes to the audit log about each call: the call when
//! its media is agreed, its events as they happen, and its end. Records go
//! to the [`AuditHandle`] (a bounded channel to the batching writer, which
//! spools to disk while the database is away); nothing here waits.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use echo_audit::{
    AuditHandle, AuditRecord, Call, CallEnd, CallId, Event, EventKind, HangupBy, Outcome, Pii,
};
use tracing::warn;

use crate::routing::App;
use crate::sip::endpoint::{CallHandle, EndReason};

/// A call as the audit log follows it.
struct Followed {
    record: Call,
    started: Instant,
    written: bool,
    answered_unix_us: Option<i64>,
    next_event: i64,
    timed_out: bool,
    outcome: Option<AppOutcome>,
}

/// What an app says the call achieved, for its end record.
#[derive(Debug, Clone)]
pub struct AppOutcome {
    /// The outcome.
    pub outcome: Outcome,
    /// The slots at the end (JSON object).
    pub slots: serde_json::Value,
    /// Where the call was transferred to.
    pub transfer_target: Option<String>,
}

/// What a call task needs to write its turns: the writer, the call's id
/// and the instant turn timestamps count from.
#[derive(Clone)]
pub struct TurnLog {
    /// The writer.
    pub handle: AuditHandle,
    /// The call.
    pub call_id: CallId,
    /// The call's start (µs offsets in turn records count from here).
    pub started: Instant,
}

impl std::fmt::Debug for TurnLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnLog")
            .field("call_id", &self.call_id)
            .finish_non_exhaustive()
    }
}

impl TurnLog {
    /// µs from the call's start to `at` (0 for instants before it).
    pub fn offset_us(&self, at: Instant) -> i64 {
        at.saturating_duration_since(self.started).as_micros() as i64
    }

    /// Sends a record to the writer; false if it was refused.
    pub fn record(&self, record: impl Into<AuditRecord>) -> bool {
        let ok = self.handle.record(record.into());
        if !ok {
            warn!("audit writer refused a turn (channel full or closed)");
        }
        ok
    }
}

/// The audit side of the calls in progress.
pub struct CallAudit {
    handle: Option<AuditHandle>,
    calls: HashMap<CallHandle, Followed>,
}

/// Now, in µs since the Unix epoch (the audit log's wall-clock times).
pub fn now_unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl CallAudit {
    /// Follows calls into `handle`; `None` keeps no log (tests of the SIP
    /// layer alone).
    pub fn new(handle: Option<AuditHandle>) -> Self {
        CallAudit {
            handle,
            calls: HashMap::new(),
        }
    }

    fn send(&self, record: impl Into<AuditRecord>) {
        if let Some(handle) = &self.handle {
            if !handle.record(record.into()) {
                warn!("audit writer refused a record (channel full or closed)");
            }
        }
    }

    /// An INVITE was accepted.
    #[allow(clippy::too_many_arguments)]
    pub fn incoming(
        &mut self,
        call: CallHandle,
        trunk: &str,
        from: &str,
        to_user: &str,
        route: &str,
        app: App,
        sip_call_id: &str,
    ) {
        let record = Call {
            call_id: CallId::random(),
            trunk: trunk.to_owned(),
            caller: Pii(from.to_owned()),
            called: Pii(to_user.to_owned()),
            route: route.to_owned(),
            app: app.as_str().to_owned(),
            sip_call_id: sip_call_id.to_owned(),
            codec: String::new(),
            started_unix_us: now_unix_us(),
        };
        self.calls.insert(
            call,
            Followed {
                record,
                started: Instant::now(),
                written: false,
                answered_unix_us: None,
                next_event: 0,
                timed_out: false,
                outcome: None,
            },
        );
    }

    /// Media was agreed: the call is written (with its codec) on the first
    /// time, and `Answered` logged.
    pub fn media(&mut self, call: CallHandle, codec: &str) {
        let Some(f) = self.calls.get_mut(&call) else {
            return;
        };
        if f.written {
            return;
        }
        f.written = true;
        f.record.codec = codec.to_owned();
        f.answered_unix_us = Some(now_unix_us());
        let record = f.record.clone();
        self.send(record);
        self.event(call, EventKind::Answered, serde_json::json!({}));
    }

    /// What a call task needs to write the call's turns; `None` without a
    /// log or for an unknown call.
    pub fn turn_log(&self, call: CallHandle) -> Option<TurnLog> {
        let handle = self.handle.clone()?;
        let f = self.calls.get(&call)?;
        Some(TurnLog {
            handle,
            call_id: f.record.call_id.clone(),
            started: f.started,
        })
    }

    /// The app's verdict, written when the call ends.
    pub fn outcome(&mut self, call: CallHandle, outcome: AppOutcome) {
        if let Some(f) = self.calls.get_mut(&call) {
            f.outcome = Some(outcome);
        }
    }

    /// A point event in a call.
    pub fn event(&mut self, call: CallHandle, kind: EventKind, detail: serde_json::Value) {
        let Some(f) = self.calls.get_mut(&call) else {
            return;
        };
        if !f.written {
            return;
        }
        let event = Event {
            call_id: f.record.call_id.clone(),
            seq: f.next_event,
            at_us: f.started.elapsed().as_micros() as i64,
            kind,
            detail: Pii(detail),
        };
        f.next_event += 1;
        self.send(event);
    }

    /// The call ended.
    pub fn ended(&mut self, call: CallHandle, reason: EndReason) {
        let Some(mut f) = self.calls.remove(&call) else {
            return;
        };
        if !f.written {
            // Never answered: the call is logged with its end all the same.
            f.written = true;
            self.send(f.record.clone());
        }
        // Without an app's verdict (the echo app completes no task) a call
        // the caller ends is `abandoned`; one the gateway ends for a fault
        // is `failed`.
        let (hangup_by, sip_code, outcome) = match reason {
            _ if f.timed_out => (HangupBy::System, None, Outcome::Failed),
            EndReason::RemoteBye => (HangupBy::Caller, None, Outcome::Abandoned),
            EndReason::Cancelled => (HangupBy::Caller, Some(487), Outcome::Abandoned),
            EndReason::LocalBye => (HangupBy::Bot, None, Outcome::Abandoned),
            EndReason::Rejected(code) => (HangupBy::System, Some(i64::from(code)), Outcome::Failed),
            EndReason::NoAck => (HangupBy::System, None, Outcome::Failed),
        };
        let (outcome, slots, transfer_target) = match f.outcome.take() {
            Some(app) if !f.timed_out => (app.outcome, app.slots, app.transfer_target),
            Some(app) => (outcome, app.slots, app.transfer_target),
            None => (outcome, serde_json::json!({}), None),
        };
        self.send(CallEnd {
            call_id: f.record.call_id.clone(),
            answered_unix_us: f.answered_unix_us,
            ended_unix_us: now_unix_us(),
            hangup_by,
            sip_code,
            transfer_target: transfer_target.map(Pii),
            outcome,
            final_slots: Pii(slots),
        });
    }

    /// Marks that Echo hung up because the caller's media stopped, so the
    /// end is logged as such.
    pub fn media_timeout(&mut self, call: CallHandle) {
        self.event(call, EventKind::MediaTimeout, serde_json::json!({}));
        if let Some(f) = self.calls.get_mut(&call) {
            f.timed_out = true;
        }
    }
}
