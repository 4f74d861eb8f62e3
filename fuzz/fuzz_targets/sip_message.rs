//! SIP parsing: framing, the message, and the header helpers never panic,
//! and a message that parses prints back to one that parses.
#![no_main]

use echo_gateway::sip::message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = message::frame_length(data);
    if let Ok(parsed) = message::parse(data) {
        if let rsip::SipMessage::Request(req) = &parsed.message {
            let _ = message::TopVia::of(req);
            let _ = message::cseq(req);
            let _ = message::uri_user(&req.uri.to_string());
            let _ = message::uri_socket_addr(&req.uri.to_string());
        }
        let printed = message::to_bytes(parsed.message);
        assert!(message::parse(&printed).is_ok(), "printed message must parse");
    }
});
