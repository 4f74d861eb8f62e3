//! RTCP (RFC 3550 §6) sender and receiver reports: writing the compound
//! packet we send every few seconds (SR or RR, then SDES with a CNAME) and
//! reading the peer's SR/RR.

/// RTCP packet types we read or write.
const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction of packets lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Packets lost since the start (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp.
    pub ntp: u64,
    /// The RTP timestamp matching `ntp`.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
}

/// A sender or receiver report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The reporter's SSRC.
    pub ssrc: u32,
    /// Present in an SR.
    pub sender: Option<SenderInfo>,
    /// Reception report blocks.
    pub blocks: Vec<ReportBlock>,
}

/// Why a datagram is not RTCP we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Shorter than its header says, or than a header.
    #[error("truncated RTCP packet")]
    Truncated,
    /// Not RTP version 2.
    #[error("unsupported RTCP version")]
    Version,
}

/// Appends a compound packet: SR (when `sender` is given) or RR, with up to
/// one report block, then SDES with `cname`.
pub fn write_compound(
    ssrc: u32,
    sender: Option<SenderInfo>,
    block: Option<ReportBlock>,
    cname: &str,
    out: &mut Vec<u8>,
) {
    let count = u8::from(block.is_some());
    let words = 1 + if sender.is_some() { 5 } else { 0 } + 6 * usize::from(count);
    out.push(0x80 | count);
    out.push(if sender.is_some() { SR } else { RR });
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(s) = sender {
        out.extend_from_slice(&s.ntp.to_be_bytes());
        out.extend_from_slice(&s.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&s.packets.to_be_bytes());
        out.extend_from_slice(&s.octets.to_be_bytes());
    }
    if let Some(b) = block {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0xFF_FFFF;
        out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
        out.extend_from_slice(&b.extended_highest.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.last_sr.to_be_bytes());
        out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
    }
    // SDES: one chunk, CNAME item, a null item, padded to a word.
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let chunk = 4 + 2 + cname.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    out.push(0x81);
    out.push(SDES);
    out.extend_from_slice(&((padded / 4) as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.resize(out.len() + padded - chunk + 1, 0);
}

/// Reads the SRs and RRs of a compound packet; other packet types are
/// skipped.
pub fn parse_reports(datagram: &[u8]) -> Result<Vec<Report>, RtcpError> {
    let mut reports = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(RtcpError::Truncated);
        }
        if rest[0] >> 6 != 2 {
            return Err(RtcpError::Version);
        }
        let count = usize::from(rest[0] & 0x1F);
        let kind = rest[1];
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if rest.len() < len {
            return Err(RtcpError::Truncated);
        }
        let body = &rest[4..len];
        if kind == SR || kind == RR {
            let fixed = if kind == SR { 24 } else { 4 };
            if body.len() < fixed + 24 * count {
                return Err(RtcpError::Truncated);
            }
            let word = |at: usize| {
                u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]])
            };
            let sender = (kind == SR).then(|| SenderInfo {
                ntp: (u64::from(word(4)) << 32) | u64::from(word(8)),
                rtp_timestamp: word(12),
                packets: word(16),
                octets: word(20),
            });
            let blocks = (0..count)
                .map(|i| {
                    let at = fixed + 24 * i;
                    let lost = word(at + 4);
                    // Sign-extend the 24-bit cumulative loss.
                    let cumulative = ((lost << 8) as i32) >> 8;
                    ReportBlock {
                        ssrc: word(at),
                        fraction_lost: (lost >> 24) as u8,
                        cumulative_lost: cumulative,
                        extended_highest: word(at + 8),
                        jitter: word(at + 12),
                        last_sr: word(at + 16),
                        delay_since_last_sr: word(at + 20),
                    }
                })
                .collect();
            reports.push(Report {
                ssrc: word(0),
                sender,
                blocks,
            });
        }
        rest = &rest[len..];
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let block = ReportBlock {
            ssrc: 0xAABB_CCDD,
            fraction_lost: 25,
            cumulative_lost: -3,
            extended_highest: 0x1_0005,
            jitter: 77,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        };
        let sender = SenderInfo {
            ntp: 0x0000_0005_8000_0000,
            rtp_timestamp: 40000,
            packets: 250,
            octets: 40000,
        };
        // (sender info, block, cname)
        let cases = [
            (Some(sender), Some(block), "echo"),
            (None, Some(block), "a"),
            (Some(sender), None, "echo-gateway@example"),
            (None, None, ""),
        ];
        for (sender, block, cname) in cases {
            let mut out = Vec::new();
            write_compound(42, sender, block, cname, &mut out);
            assert_eq!(out.len() % 4, 0);
            let reports = parse_reports(&out).unwrap();
            assert_eq!(
                reports,
                [Report {
                    ssrc: 42,
                    sender,
                    blocks: block.into_iter().collect()
                }]
            );
        }
    }

    #[test]
    fn rejects_bad_packets() {
        let mut out = Vec::new();
        write_compound(1, None, None, "x", &mut out);
        assert_eq!(
            parse_reports(&out[..out.len() - 1]),
            Err(RtcpError::Truncated)
        );
        out[0] = 0x40;
        assert_eq!(parse_reports(&out), Err(RtcpError::Version));
        assert_eq!(parse_reports(&[0x80, 200]), Err(RtcpError::Truncated));
    }
}
