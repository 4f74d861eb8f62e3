//! Audio codecs carried over RTP.

/// The audio codecs Echo speaks on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 μ-law, static payload type 0, 8 kHz.
    Pcmu,
    /// G.711 A-law, static payload type 8, 8 kHz.
    Pcma,
    /// Opus (RFC 7587), 48 kHz RTP clock, dynamic payload type.
    Opus,
}

impl CodecKind {
    /// The encoding name as written in SDP `a=rtpmap` (RFC 3551, RFC 7587).
    pub fn encoding_name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::Opus => "opus",
        }
    }

    /// The RTP clock rate in Hz.
    pub fn clock_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::Opus => 48000,
        }
    }

    /// The static payload type, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::Opus => None,
        }
    }

    /// Looks a codec up by its SDP encoding name (case-insensitive).
    pub fn from_encoding_name(name: &str) -> Option<Self> {
        [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::Opus]
            .into_iter()
            .find(|c| c.encoding_name().eq_ignore_ascii_case(name))
    }
}
