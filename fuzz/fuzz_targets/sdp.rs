//! SDP: parsing and offer/answer never panic, and what parses prints back
//! to something that parses the same.
#![no_main]

use echo_gateway::sip::sdp::{self, LocalMedia, SessionDescription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = SessionDescription::parse_bytes(data) else {
        return;
    };
    let again = SessionDescription::parse(&offer.to_string()).expect("printed SDP parses");
    assert_eq!(again, offer);
    let local = LocalMedia::new("127.0.0.1:20000".parse().unwrap(), 1);
    if let Ok((answer, _)) = sdp::answer(&offer, &local) {
        let _ = sdp::accept_answer(&offer, &answer);
    }
    let _ = sdp::accept_answer(&sdp::offer(&local), &offer);
});
