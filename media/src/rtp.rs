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

#[cfg(test)]
mod tests {
    use super::*;

    /// A header with version 2, no padding/extension/CSRC, PT 0, seq 1,
    /// timestamp 160, SSRC 0x11223344.
    const PLAIN: [u8; 12] = [
        0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xA0, 0x11, 0x22, 0x33, 0x44,
    ];

    fn with(first: u8, second: u8, rest: &[u8]) -> Vec<u8> {
        let mut d = PLAIN.to_vec();
        d[0] = first;
        d[1] = second;
        d.extend_from_slice(rest);
        d
    }

    /// What a parse should yield: the header and an owned copy of the payload.
    type Expected = Result<(RtpHeader, Vec<u8>), RtpError>;

    #[test]
    fn parses_or_rejects_datagrams() {
        let header = RtpHeader {
            payload_type: 0,
            marker: false,
            sequence: 1,
            timestamp: 160,
            ssrc: 0x1122_3344,
        };
        let marked = RtpHeader {
            payload_type: 111,
            marker: true,
            ..header
        };
        // (what, datagram, expected header and payload)
        let cases: Vec<(&str, Vec<u8>, Expected)> = vec![
            ("empty", vec![], Err(RtpError::TooShort(0))),
            (
                "11 bytes",
                PLAIN[..11].to_vec(),
                Err(RtpError::TooShort(11)),
            ),
            ("header only", PLAIN.to_vec(), Ok((header, vec![]))),
            (
                "payload",
                with(0x80, 0x00, &[1, 2, 3]),
                Ok((header, vec![1, 2, 3])),
            ),
            (
                "marker, PT 111",
                with(0x80, 0xEF, &[9]),
                Ok((marked, vec![9])),
            ),
            (
                "version 1",
                with(0x40, 0x00, &[1]),
                Err(RtpError::Version(1)),
            ),
            (
                "version 0",
                with(0x00, 0x00, &[1]),
                Err(RtpError::Version(0)),
            ),
            (
                "padding stripped",
                with(0xA0, 0x00, &[1, 2, 0, 0, 3]),
                Ok((header, vec![1, 2])),
            ),
            (
                "padding too long",
                with(0xA0, 0x00, &[1, 9]),
                Err(RtpError::Padding(9)),
            ),
            (
                "padding zero",
                with(0xA0, 0x00, &[1, 0]),
                Err(RtpError::Padding(0)),
            ),
            (
                "one CSRC skipped",
                with(0x81, 0x00, &[0, 0, 0, 7, 5, 6]),
                Ok((header, vec![5, 6])),
            ),
            (
                "CSRC truncated",
                with(0x82, 0x00, &[0, 0, 0, 7]),
                Err(RtpError::Truncated {
                    header_len: 20,
                    datagram_len: 16,
                }),
            ),
            (
                "extension skipped",
                with(0x90, 0x00, &[0xBE, 0xDE, 0, 1, 1, 2, 3, 4, 8]),
                Ok((header, vec![8])),
            ),
            (
                "extension truncated",
                with(0x90, 0x00, &[0xBE, 0xDE, 0, 2, 1, 2, 3, 4]),
                Err(RtpError::Truncated {
                    header_len: 24,
                    datagram_len: 20,
                }),
            ),
            ("RTCP SR", with(0x80, 200, &[]), Err(RtpError::Rtcp(200))),
            (
                "RTCP BYE",
                with(0x81, 203, &[0; 4]),
                Err(RtpError::Rtcp(203)),
            ),
        ];
        for (what, datagram, expected) in cases {
            let parsed = RtpPacket::parse(&datagram).map(|p| {
                assert_eq!(p.version, 2, "{what}");
                (p.header, p.payload.to_vec())
            });
            assert_eq!(parsed, expected, "{what}");
        }
    }

    #[test]
    fn written_packets_parse_back() {
        let headers = [
            RtpHeader {
                payload_type: 0,
                marker: true,
                sequence: 0,
                timestamp: 0,
                ssrc: 1,
            },
            RtpHeader {
                payload_type: 8,
                marker: false,
                sequence: u16::MAX,
                timestamp: u32::MAX,
                ssrc: u32::MAX,
            },
            RtpHeader {
                payload_type: 127,
                marker: false,
                sequence: 4242,
                timestamp: 48_000 * 3,
                ssrc: 0xDEAD_BEEF,
            },
        ];
        let mut buffer = vec![0xEE; 400];
        for header in headers {
            for payload in [&[][..], &[1, 2, 3][..], &[0xFF; 160][..]] {
                write_packet(&header, payload, &mut buffer).unwrap();
                assert_eq!(buffer.len(), 12 + payload.len());
                let packet = RtpPacket::parse(&buffer).unwrap();
                assert_eq!(packet.header, header);
                assert_eq!(packet.payload, payload);
            }
        }
        assert_eq!(&buffer[..2], &[0x80, 127]);
    }

    #[test]
    fn payload_type_must_fit_seven_bits() {
        let header = RtpHeader {
            payload_type: 128,
            marker: false,
            sequence: 0,
            timestamp: 0,
            ssrc: 0,
        };
        let mut buffer = vec![1];
        assert_eq!(
            write_packet(&header, &[0], &mut buffer),
            Err(RtpError::PayloadType(128))
        );
        assert_eq!(buffer, [1], "buffer untouched on error");
    }
}
