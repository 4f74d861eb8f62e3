//! The console: staff review calls, operators edit trunks and routes and
//! watch health. Server-rendered pages ([`pages`]) and the JSON API under
//! `/api/v1` ([`api`]) share one state, one sign-in and the same queries.
//!
//! Who may do what: no session → pages redirect to `/login`, the API
//! answers 401; `viewer` reads calls; `admin` also changes trunks, routes
//! and accounts and reads the access log. Every transcript view, export and
//! change is written to the audit log's access chain.

pub mod api;
pub mod auth;
pub mod health;
pub mod pages;
pub mod settings;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::response::Response;
use axum::Router;
use echo_audit::{Access, AuditHandle, AuditStore, CallFilter, Outcome, StoreError};
use prometheus_client::registry::Registry;

use crate::metrics::Metrics;
use auth::{LoginLimiter, Staff};
use health::Rates;
use settings::Settings;

/// Everything the console's handlers share.
pub struct Console {
    /// Calls, turns, accounts, sessions and configuration edits.
    pub store: Arc<dyn AuditStore>,
    /// Where access records go (the same writer as the calls').
    pub audit: AuditHandle,
    /// Trunks and routes: file + console edits.
    pub settings: Settings,
    /// Every metric (the health page reads their text).
    pub registry: Arc<Registry>,
    /// Samples of the calls counter, for calls per minute.
    pub rates: Rates,
    limiter: Mutex<LoginLimiter>,
    has_accounts: AtomicBool,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    /// The console's state.
    pub fn new(
        store: Arc<dyn AuditStore>,
        audit: AuditHandle,
        settings: Settings,
        registry: Arc<Registry>,
    ) -> Arc<Self> {
        Arc::new(Console {
            store,
            audit,
            settings,
            registry,
            rates: Rates::default(),
            limiter: Mutex::new(LoginLimiter::default()),
            has_accounts: AtomicBool::new(false),
        })
    }

    /// Whether any account exists (accounts are made by another process,
    /// `echo-gateway users add`, so "no" is asked again each time).
    pub async fn has_accounts(&self) -> Result<bool, StoreError> {
        if self.has_accounts.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let yes = self.store.state_count(auth::USER_KIND).await? > 0;
        self.has_accounts.store(yes, Ordering::Relaxed);
        Ok(yes)
    }

    /// Writes an access record: who did what to what, from where.
    pub fn log(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        source: IpAddr,
        detail: serde_json::Value,
    ) {
        let record = Access::new(
            crate::audit_log::now_unix_us(),
            actor,
            action,
            target,
            source.to_canonical().to_string(),
            detail,
        );
        if !self.audit.record(record.into()) {
            tracing::error!(action, "console: access record could not be queued");
        }
    }

    /// Checks the sign-in limit for `keys`.
    fn login_allowed(&self, keys: &[String]) -> Result<(), Duration> {
        self.limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(keys, Instant::now())
    }

    fn login_failed(&self, keys: &[String]) {
        self.limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failed(keys, Instant::now());
    }

    fn login_succeeded(&self, user_key: &str) {
        self.limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .succeeded(user_key);
    }

    /// The `/metrics` text.
    pub fn metrics_text(&self) -> String {
        crate::metrics::encode(&self.registry)
    }
}

/// Every console route: pages and `/api/v1`.
pub fn router(console: Arc<Console>) -> Router {
    pages::routes().merge(api::routes()).with_state(console)
}

/// Samples what the health page needs every few seconds: the calls counter
/// (calls per minute) and the audit writer and database status, which it
/// also exports as metrics.
pub fn spawn_sampler(console: Arc<Console>, metrics: Arc<Metrics>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let up = tokio::time::timeout(Duration::from_secs(3), console.store.ping())
                .await
                .is_ok_and(|r| r.is_ok());
            metrics.audit_status(console.audit.stats(), up);
            let text = console.metrics_text();
            let calls = health::sum(&health::parse(&text), "echo_calls_total", &[]);
            console.rates.record(Instant::now(), calls);
        }
    });
}

/// The request's source address (unspecified when unknown, which counts as
/// not loopback).
pub fn source_of(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Signed-in staff, or the response that says why not: pages redirect to
/// the sign-in page (or the first-account instructions), the API says 401.
impl FromRequestParts<Arc<Console>> for Staff {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Response> {
        let source = source_of(parts);
        let is_api = parts.uri.path().starts_with("/api/");
        let token = auth::cookie(&parts.headers, auth::SESSION_COOKIE).map(str::to_owned);
        let found = match token {
            Some(token) => auth::session(&*console.store, &token, source).await,
            None => Ok(None),
        };
        match found {
            Ok(Some(staff)) => Ok(staff),
            Ok(None) => {
                let no_accounts = matches!(console.has_accounts().await, Ok(false));
                Err(if is_api {
                    api::unauthenticated(no_accounts)
                } else {
                    pages::unauthenticated(no_accounts, source)
                })
            }
            Err(e) => {
                tracing::error!(error = %e, "console: session lookup");
                Err(if is_api {
                    api::store_unavailable()
                } else {
                    pages::store_unavailable()
                })
            }
        }
    }
}

/// Filters of a call list, as the page's form and the API's query write
/// them. Dates are `YYYY-MM-DD` (UTC days, `to` inclusive) or µs since epoch.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct CallQuery {
    /// First day (or µs).
    pub from: Option<String>,
    /// Last day, inclusive (or µs, exclusive).
    pub to: Option<String>,
    /// Part of the caller's or called number.
    pub number: Option<String>,
    /// Outcome.
    pub outcome: Option<String>,
    /// Final slot `provider` contains this.
    pub provider: Option<String>,
    /// Final slot `medication` contains this.
    pub medication: Option<String>,
    /// Any final slot, `key:value`.
    pub slot: Option<String>,
    /// Route pattern.
    pub route: Option<String>,
    /// Free text: numbers, slots and what was said.
    pub q: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u64>,
}

/// A time bound: a date or µs since epoch; `end` makes a date inclusive.
pub fn parse_time(text: &str, end: bool) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(us) = text.parse::<i64>() {
        return Ok(us);
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a date (YYYY-MM-DD)"))?;
    let day = if end {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    Ok(day
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or(0))
}

impl CallQuery {
    /// The store's filter, or a message saying which field is wrong.
    pub fn filter(&self) -> Result<CallFilter, String> {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let from = given(&self.from)
            .map(|t| parse_time(&t, false))
            .transpose()
            .map_err(|e| format!("from: {e}"))?;
        let to = given(&self.to)
            .map(|t| parse_time(&t, true))
            .transpose()
            .map_err(|e| format!("to: {e}"))?;
        let outcome = given(&self.outcome)
            .map(|o| {
                o.parse::<Outcome>()
                    .map_err(|_| format!("outcome: {o:?} is not one of: {}", OUTCOMES.join(", ")))
            })
            .transpose()?;
        let mut slots = Vec::new();
        if let Some(p) = given(&self.provider) {
            slots.push(("provider".to_owned(), p));
        }
        if let Some(m) = given(&self.medication) {
            slots.push(("medication".to_owned(), m));
        }
        if let Some(s) = given(&self.slot) {
            let Some((k, v)) = s.split_once(':') else {
                return Err("slot: must be key:value".into());
            };
            slots.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        Ok(CallFilter {
            from_unix_us: from,
            to_unix_us: to,
            number: given(&self.number),
            outcome,
            slots,
            route: given(&self.route),
            text: given(&self.q),
            limit: self.limit.unwrap_or(0),
            offset: self.offset.unwrap_or(0),
        })
    }
}

/// Every outcome, as stored.
pub const OUTCOMES: [&str; 6] = [
    "booked",
    "refill_requested",
    "cancelled",
    "transferred",
    "abandoned",
    "failed",
];

/// A phone number or SIP URI with all but its last four digits hidden:
/// `sip:+15551234567@10.0.0.1` → `•••••••4567`.
pub fn mask_number(uri: &str) -> String {
    let user = uri
        .trim_start_matches("sips:")
        .trim_start_matches("sip:")
        .trim_start_matches("tel:");
    let user = user.split(['@', ';']).next().unwrap_or(user);
    let chars: Vec<char> = user.chars().collect();
    let keep = chars.len().min(4);
    let hidden = chars.len() - keep;
    let mut out: String = "•".repeat(hidden.min(8));
    out.extend(&chars[hidden..]);
    out
}

/// The latency legs of a turn in ms, from its seven timestamps:
/// endpointing, recognition, dialogue, synthesis, send (`None` where a
/// stage did not happen), and the total from the end of speech to the first
/// reply packet.
pub fn legs(t: &echo_audit::TurnTimings) -> ([Option<f64>; 5], Option<f64>) {
    let d = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) if b >= a => Some((b - a) as f64 / 1000.0),
        _ => None,
    };
    (
        [
            d(t.speech_end_us, t.endpoint_us),
            d(t.endpoint_us, t.stt_final_us),
            d(t.stt_final_us, t.dialogue_us),
            d(t.dialogue_us, t.tts_first_audio_us),
            d(t.tts_first_audio_us, t.first_reply_packet_us),
        ],
        d(t.speech_end_us, t.first_reply_packet_us),
    )
}

/// A UTC time for people: `2026-11-26 09:50:33 UTC`.
pub fn format_time(unix_us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(unix_us)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| unix_us.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_masked_to_their_last_four_digits() {
        assert_eq!(mask_number("sip:+15551234567@10.0.0.1"), "••••••••4567");
        assert_eq!(mask_number("sip:sipp@127.0.0.1:5061"), "sipp");
        assert_eq!(mask_number("tel:12345"), "•2345");
    }

    #[test]
    fn dates_bound_whole_utc_days() {
        let from = parse_time("2026-11-26", false).unwrap();
        let to = parse_time("2026-11-26", true).unwrap();
        assert_eq!(to - from, 86_400_000_000);
        assert_eq!(parse_time("17", false), Ok(17));
        assert!(parse_time("26/11/2026", false).is_err());
    }

    #[test]
    fn a_query_becomes_a_filter_or_names_its_bad_field() {
        let q = CallQuery {
            medication: Some("metformin".into()),
            outcome: Some("booked".into()),
            ..CallQuery::default()
        };
        let f = q.filter().unwrap();
        assert_eq!(
            f.slots,
            vec![("medication".to_owned(), "metformin".to_owned())]
        );
        assert_eq!(f.outcome, Some(Outcome::Booked));
        let bad = CallQuery {
            outcome: Some("won".into()),
            ..CallQuery::default()
        };
        assert!(bad.filter().unwrap_err().starts_with("outcome:"));
    }

    #[test]
    fn legs_are_differences_of_the_timestamps() {
        let t = echo_audit::TurnTimings {
            speech_start_us: Some(0),
            speech_end_us: Some(1_000_000),
            endpoint_us: Some(1_480_000),
            stt_final_us: Some(1_500_000),
            dialogue_us: Some(1_501_000),
            tts_first_audio_us: Some(1_700_000),
            first_reply_packet_us: Some(1_720_000),
        };
        let (l, total) = legs(&t);
        assert_eq!(
            l,
            [Some(480.0), Some(20.0), Some(1.0), Some(199.0), Some(20.0)]
        );
        assert_eq!(total, Some(720.0));
    }
}
