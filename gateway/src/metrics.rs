//! The gateway's Prometheus metrics (prometheus-client, the Prometheus
//! project's own crate), exported as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Label: a SIP method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    /// The method, upper case (`OTHER` for unknown ones).
    pub method: String,
}

/// Label: a SIP status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// The status code.
    pub code: u16,
}

/// Label: how a call ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// `completed`, `cancelled`, `rejected`, `no_ack`, `failed`, ...
    pub status: &'static str,
}

/// Label: packet direction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    /// `in` or `out`.
    pub direction: &'static str,
}

/// Label: what an inference job does (`stt`, `tts`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `stt`, `stt_speculative` or `tts`.
    pub kind: &'static str,
}

/// Label: one leg of a turn's latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LegLabel {
    /// `endpointing`, `recognition`, `dialogue`, `synthesis`, `send` or
    /// `total` (caller's last voiced frame to the reply's first packet).
    pub leg: &'static str,
}

/// A histogram family with latency buckets from 5 ms to 10 s.
pub type LatencyFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
    ])
}

/// Every metric the gateway exports; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    /// Calls in progress (an INVITE accepted until the call ends).
    pub active_calls: Gauge,
    /// Calls by how they ended.
    pub calls: Family<StatusLabel, Counter>,
    /// SIP requests received (new transactions, not retransmissions).
    pub sip_requests: Family<MethodLabel, Counter>,
    /// SIP responses sent, by code (first transmission only).
    pub sip_responses: Family<CodeLabel, Counter>,
    /// Datagrams or frames that were not SIP at all.
    pub sip_parse_failures: Counter,
    /// Retransmissions sent by transactions.
    pub sip_retransmissions: Counter,
    /// RTP packets received and sent.
    pub rtp_packets: Family<DirectionLabel, Counter>,
    /// RTP datagrams that were not valid RTP for the call.
    pub rtp_invalid: Counter,
    /// TCP connections open.
    pub tcp_connections: Gauge,
    /// Inference jobs waiting for a worker.
    pub inference_queue_depth: Gauge,
    /// Time jobs waited for a worker, by kind.
    pub inference_wait: LatencyFamily<KindLabel>,
    /// Time jobs ran, by kind.
    pub inference_run: LatencyFamily<KindLabel>,
    /// Turn latency by leg.
    pub turn_latency: LatencyFamily<LegLabel>,
    /// Caller turns handled by voice apps.
    pub turns: Counter,
    /// Prompts the caller interrupted.
    pub barge_ins: Counter,
    /// Speculative recognitions whose result was used.
    pub speculative_hits: Counter,
    /// Inbound packets the jitter buffer never got (skipped at playout).
    pub jitter_lost: Counter,
    /// Inbound packets that came after their slot had been played.
    pub jitter_late: Counter,
    /// Inbound packets the jitter buffer accepted.
    pub jitter_received: Counter,
    /// 1 while the audit database answers, 0 while records go to the spool.
    pub database_up: Gauge,
    /// Audit records by where they went (written, spooled, replayed, lost,
    /// dropped), as the writer counts them.
    pub audit_records: Family<StateLabel, Gauge>,
}

/// Label: where an audit record went.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// written, spooled, replayed, lost, dropped
    pub state: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            active_calls: Gauge::default(),
            calls: Family::default(),
            sip_requests: Family::default(),
            sip_responses: Family::default(),
            sip_parse_failures: Counter::default(),
            sip_retransmissions: Counter::default(),
            rtp_packets: Family::default(),
            rtp_invalid: Counter::default(),
            tcp_connections: Gauge::default(),
            inference_queue_depth: Gauge::default(),
            inference_wait: Family::new_with_constructor(latency_histogram),
            inference_run: Family::new_with_constructor(latency_histogram),
            turn_latency: Family::new_with_constructor(latency_histogram),
            turns: Counter::default(),
            barge_ins: Counter::default(),
            speculative_hits: Counter::default(),
            jitter_lost: Counter::default(),
            jitter_late: Counter::default(),
            jitter_received: Counter::default(),
            database_up: Gauge::default(),
            audit_records: Family::default(),
        }
    }
}

impl Metrics {
    /// Registers every metric under the `echo_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("echo");
        r.register(
            "active_calls",
            "Calls in progress",
            self.active_calls.clone(),
        );
        r.register("calls", "Calls by final status", self.calls.clone());
        r.register(
            "sip_requests",
            "SIP requests received, by method",
            self.sip_requests.clone(),
        );
        r.register(
            "sip_responses",
            "SIP responses sent, by code",
            self.sip_responses.clone(),
        );
        r.register(
            "sip_parse_failures",
            "Datagrams or frames that did not parse as SIP",
            self.sip_parse_failures.clone(),
        );
        r.register(
            "sip_retransmissions",
            "SIP messages retransmitted by transactions",
            self.sip_retransmissions.clone(),
        );
        r.register(
            "rtp_packets",
            "RTP packets by direction",
            self.rtp_packets.clone(),
        );
        r.register(
            "rtp_invalid",
            "Datagrams on RTP ports that were not valid RTP",
            self.rtp_invalid.clone(),
        );
        r.register(
            "tcp_connections",
            "Open SIP TCP connections",
            self.tcp_connections.clone(),
        );
        r.register(
            "inference_queue_depth",
            "Speech inference jobs waiting for a worker",
            self.inference_queue_depth.clone(),
        );
        r.register(
            "inference_wait_seconds",
            "Time speech inference jobs waited for a worker",
            self.inference_wait.clone(),
        );
        r.register(
            "inference_run_seconds",
            "Time speech inference jobs ran",
            self.inference_run.clone(),
        );
        r.register(
            "turn_latency_seconds",
            "Latency of caller turns by leg (endpointing, recognition, dialogue, synthesis, send, total)",
            self.turn_latency.clone(),
        );
        r.register("turns", "Caller turns handled", self.turns.clone());
        r.register(
            "barge_ins",
            "Prompts the caller interrupted",
            self.barge_ins.clone(),
        );
        r.register(
            "speculative_hits",
            "Speculative recognitions whose result was used",
            self.speculative_hits.clone(),
        );
        r.register(
            "jitter_lost_packets",
            "Inbound RTP packets never received (skipped at playout)",
            self.jitter_lost.clone(),
        );
        r.register(
            "jitter_late_packets",
            "Inbound RTP packets that arrived after their playout slot",
            self.jitter_late.clone(),
        );
        r.register(
            "jitter_received_packets",
            "Inbound RTP packets accepted by the jitter buffer",
            self.jitter_received.clone(),
        );
        r.register(
            "database_up",
            "1 while the audit database answers, 0 while records are spooled",
            self.database_up.clone(),
        );
        r.register(
            "audit_records",
            "Audit records since start by where they went (written, spooled, replayed, lost, dropped)",
            self.audit_records.clone(),
        );
    }

    /// Adds a finished media session's counters: invalid RTP and what its
    /// jitter buffer saw.
    pub fn media_ended(&self, stats: &echo_media::MediaStats) {
        self.rtp_invalid
            .inc_by(stats.invalid + stats.unexpected_source);
        self.jitter_lost.inc_by(stats.jitter.lost);
        self.jitter_late.inc_by(stats.jitter.late);
        self.jitter_received.inc_by(stats.jitter.received);
    }

    /// Copies the audit writer's counters and the database's health.
    pub fn audit_status(&self, stats: echo_audit::WriterStats, database_up: bool) {
        let set = |state, value: u64| {
            self.audit_records
                .get_or_create(&StateLabel { state })
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        set("written", stats.written);
        set("spooled", stats.spooled);
        set("replayed", stats.replayed);
        set("lost", stats.lost);
        set("dropped", stats.dropped);
        self.database_up.set(i64::from(database_up));
    }

    /// Counts a SIP request.
    pub fn request(&self, method: &str) {
        self.sip_requests
            .get_or_create(&MethodLabel {
                method: method.to_owned(),
            })
            .inc();
    }

    /// Counts a SIP response.
    pub fn response(&self, code: u16) {
        self.sip_responses.get_or_create(&CodeLabel { code }).inc();
    }

    /// Counts a call that ended.
    pub fn call_ended(&self, status: &'static str) {
        self.calls.get_or_create(&StatusLabel { status }).inc();
    }

    /// Counts RTP packets.
    pub fn rtp(&self, direction: &'static str) {
        self.rtp_packets
            .get_or_create(&DirectionLabel { direction })
            .inc();
    }
}

/// The registry text for `/metrics`.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

#[cfg(test)]
mod dashboard_tests {
    //! The Grafana dashboard and Prometheus rules under `deploy/` name only
    //! series a scrape of `/metrics` yields, so a renamed metric breaks a
    //! test rather than a panel nobody looks at until an incident.

    use std::collections::BTreeSet;

    use super::*;

    const DASHBOARD: &str = include_str!("../../deploy/grafana/echo-dashboard.json");
    const RULES: &str = include_str!("../../deploy/prometheus/echo-rules.yml");

    /// Series Prometheus makes itself for every scrape target, not scraped
    /// from the gateway. Every gateway metric lives in [`Metrics`]
    /// (inference.rs and voice.rs record into its fields), so nothing else
    /// needs allowing.
    const PROMETHEUS_SERIES: &[&str] = &["up"];

    /// Sample names the gateway exports, built from the `# TYPE` lines as
    /// OpenMetrics names samples.
    fn exported() -> BTreeSet<String> {
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        // prometheus-client leaves a family out of the text until it has a
        // child, so give each one a child with a label the gateway uses. A
        // family added to `Metrics` but not here fails the tests below as
        // "not exported": add it here.
        metrics.call_ended("completed");
        metrics.request("INVITE");
        metrics.response(200);
        metrics.rtp("in");
        metrics.audit_status(echo_audit::WriterStats::default(), true);
        for family in [&metrics.inference_wait, &metrics.inference_run] {
            family
                .get_or_create(&KindLabel { kind: "stt" })
                .observe(0.1);
        }
        metrics
            .turn_latency
            .get_or_create(&LegLabel { leg: "total" })
            .observe(0.5);
        let text = encode(&registry);
        let mut names = BTreeSet::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let (name, kind) = rest.split_once(' ').expect("a TYPE line names a type");
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                "gauge" => {
                    names.insert(name.to_owned());
                }
                other => panic!("{name}: no naming rule for metric type {other}"),
            }
        }
        names
    }

    /// The PromQL-shaped identifiers in `text` (names may hold `:`), each
    /// with whether a `{` follows it, which makes it a series selector.
    fn identifiers(text: &str) -> Vec<(&str, bool)> {
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find(is_name) {
            let tail = &rest[start..];
            let end = tail.find(|c| !is_name(c)).unwrap_or(tail.len());
            out.push((&tail[..end], tail[end..].starts_with('{')));
            rest = &tail[end..];
        }
        out
    }

    /// Names the rules file records (`record: NAME`).
    fn recorded() -> BTreeSet<&'static str> {
        RULES
            .lines()
            .filter_map(|line| {
                let line = line.trim_start().trim_start_matches("- ");
                line.strip_prefix("record:").map(str::trim)
            })
            .collect()
    }

    /// Every series `text` names that neither the gateway, Prometheus nor
    /// the rules provide.
    fn unknown_series(text: &str, exported: &BTreeSet<String>) -> BTreeSet<String> {
        let recorded = recorded();
        identifiers(text)
            .into_iter()
            .filter(|&(name, selector)| {
                let gateway = name.starts_with("echo_");
                // level:metric:operations, the recording-rule convention.
                let rule = name.matches(':').count() == 2;
                if gateway {
                    !exported.contains(name)
                } else if rule {
                    !recorded.contains(name)
                } else {
                    selector && !PROMETHEUS_SERIES.contains(&name)
                }
            })
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    #[test]
    fn dashboard_names_only_exported_series() {
        let exported = exported();
        assert!(exported.contains("echo_turn_latency_seconds_bucket"));
        assert!(exported.contains("echo_calls_total"));
        let used = identifiers(DASHBOARD)
            .into_iter()
            .filter(|(name, _)| name.starts_with("echo_"))
            .count();
        assert!(used > 20, "the dashboard queries gateway series ({used})");
        assert_eq!(
            unknown_series(DASHBOARD, &exported),
            BTreeSet::new(),
            "series in deploy/grafana/echo-dashboard.json the gateway does not export"
        );
    }

    #[test]
    fn dashboard_rules_name_only_exported_or_recorded_series() {
        let exported = exported();
        assert!(recorded().len() >= 5, "{:?}", recorded());
        assert_eq!(
            unknown_series(RULES, &exported),
            BTreeSet::new(),
            "series in deploy/prometheus/echo-rules.yml neither exported nor recorded"
        );
    }

    #[test]
    fn dashboard_check_catches_a_wrong_name() {
        let exported = exported();
        let wrong =
            r#"rate(echo_calls[5m]) + echo_active_calls_total + nope{job="x"} + job:echo_x:rate5m"#;
        let unknown: Vec<_> = unknown_series(wrong, &exported).into_iter().collect();
        assert_eq!(
            unknown,
            [
                "echo_active_calls_total",
                "echo_calls",
                "job:echo_x:rate5m",
                "nope"
            ]
        );
    }
}
