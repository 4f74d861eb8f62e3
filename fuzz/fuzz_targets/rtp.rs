//! RTP parsing and the G.711/Opus decoders never panic on any datagram.
#![no_main]

use echo_media::codec::{AudioDecoder, Decoder};
use echo_media::rtp::RtpPacket;
use echo_media::CodecKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = RtpPacket::parse(data) else {
        return;
    };
    let mut pcm = Vec::new();
    for kind in [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::Opus] {
        if let Ok(mut decoder) = Decoder::new(kind) {
            pcm.clear();
            let _ = decoder.decode(packet.payload, &mut pcm);
        }
    }
});
