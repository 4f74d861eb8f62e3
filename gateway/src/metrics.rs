//! The gateway's Prometheus metrics (prometheus-client, the Prometheus
//! project's own crate), exported as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

/// Every metric the gateway exports; cheap to share behind an `Arc`.
#[derive(Debug, Default)]
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
