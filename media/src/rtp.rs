//! RTP (RFC 3550) packets on top of `rtp-rs`: a borrowed view of a received
//! datagram and a writer for outgoing ones. No RTCP, no header extensions on
//! output; the jitter buffer builds on [`RtpPacket`].

use rtp_rs::{RtpPacketBuilder, RtpReader, RtpReaderError};

/// Why a datagram is not an RTP packet we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Fewer than the 12 bytes of a fixed RTP header.
    #[error("datagram of {0} bytes is shorter than an RTP header")]
    TooShort(usize),
    /// The version field is not 2.
    #[error("unsupported RTP version {0}")]
    Version(u8),
    /// CSRC list or header extension runs past the end of the datagram.
    #[error("RTP header of {header_len} bytes truncated to {datagram_len}")]
    Truncated {
        /// Bytes the header claims.
        header_len: usize,
        /// Bytes received.
        datagram_len: usize,
    },
    /// The padding count is zero or larger than the payload.
    #[error("invalid RTP padding length {0}")]
    Padding(u8),
    /// The second byte is 192..=223: an RTCP packet multiplexed on the RTP
    /// port (RFC 5761 §4), not RTP.
    #[error("RTCP packet type {0} on the RTP port")]
    Rtcp(u8),
    /// The payload type to send is above 127.
    #[error("payload type {0} does not fit in 7 bits")]
    PayloadType(u8),
}

impl From<RtpReaderError> for RtpError {
    fn from(e: RtpReaderError) -> Self {
        match e {
            RtpReaderError::BufferTooShort(len) => RtpError::TooShort(len),
            RtpReaderError::UnsupportedVersion(v) => RtpError::Version(v),
            RtpReaderError::HeadersTruncated {
                header_len,
                buffer_len,
            } => RtpError::Truncated {
                header_len,
                datagram_len: buffer_len,
            },
            RtpReaderError::PaddingLengthInvalid(n) => RtpError::Padding(n),
        }
    }
}

/// The RTP header fields Echo acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtpHeader {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Marker bit: start of a talkspurt for audio (RFC 3551 §4.1).
    pub marker: bool,
    /// Sequence number, wrapping at 2^16.
    pub sequence: u16,
    /// Media timestamp in units of the codec's RTP clock.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

/// A received RTP packet, borrowing its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// RTP version; always 2 once parsed.
    pub version: u8,
    /// The fixed header fields.
    pub header: RtpHeader,
    /// The payload, without CSRCs, header extension or padding.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses a datagram received on an RTP port.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, RtpError> {
        if let Some(&second) = datagram.get(1) {
            if (192..=223).contains(&second) && datagram.len() >= RtpReader::MIN_HEADER_LEN {
                return Err(RtpError::Rtcp(second));
            }
        }
        let reader = RtpReader::new(datagram)?;
        Ok(Self {
            version: reader.version(),
            header: RtpHeader {
                payload_type: reader.payload_type(),
                marker: reader.mark(),
                sequence: reader.sequence_number().into(),
                timestamp: reader.timestamp(),
                ssrc: reader.ssrc(),
            },
            payload: reader.payload(),
        })
    }
}

/// Writes an RTP packet (fixed header, then `payload`) into `out`, replacing
/// its contents. Reusing `out` across packets avoids allocating per packet.
pub fn write_packet(header: &RtpHeader, payload: &[u8], out: &mut Vec<u8>) -> Result<(), RtpError> {
    if header.payload_type > 127 {
        return Err(RtpError::PayloadType(header.payload_type));
    }
    let builder = RtpPacketBuilder::new()
        .payload_type(header.payload_type)
        .marked(header.marker)
        .sequence(header.sequence.into())
        .timestamp(header.timestamp)
        .ssrc(header.ssrc)
        .payload(payload);
    out.clear();
    out.resize(builder.target_length(), 0);
    // The payload type was checked above and the buffer sized to fit, the
    // only two ways `build_into` fails without extensions.
    let written = builder
        .build_into(out)
        .map_err(|_| RtpError::PayloadType(header.payload_type))?;
    out.truncate(written);
    Ok(())
}
