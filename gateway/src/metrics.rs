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
