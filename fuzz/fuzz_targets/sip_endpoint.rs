//! The whole SIP endpoint: any sequence of datagrams (split on a marker
//! byte) and timer firings never panics it.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use echo_gateway::config::Config;
use echo_gateway::metrics::Metrics;
use echo_gateway::routing::{RouteTable, TrunkTable};
use echo_gateway::sip::endpoint::{EndpointConfig, Event, SipEndpoint};
use echo_gateway::sip::{Flow, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = Config::default();
    let mut endpoint = SipEndpoint::new(
        EndpointConfig {
            host: "127.0.0.1".into(),
            port: 5060,
            seed: 1,
        },
        TrunkTable::from_config(&config.trunks),
        RouteTable::from_config(&config.routes),
        Arc::new(Metrics::default()),
    );
    let mut now = Instant::now();
    for (i, chunk) in data.split(|&b| b == 0xff).enumerate() {
        let transport = if i % 2 == 0 { Transport::Udp } else { Transport::Tcp };
        let flow = Flow::new(transport, "127.0.0.1:5062".parse().unwrap(), Some(1));
        endpoint.handle_message(now, flow, chunk);
        while let Some(event) = endpoint.poll_event() {
            if let Event::IncomingCall { call, .. } = event {
                endpoint.accept(now, call, "127.0.0.1:20000".parse().unwrap());
            }
        }
        while endpoint.poll_transmit().is_some() {}
        now += Duration::from_millis(700);
        endpoint.handle_timeout(now);
    }
});
