//! SDP (RFC 4566 subset) and the RFC 3264 offer/answer model, audio only.
//!
//! The parser is tolerant of what real endpoints send (`\n` line ends,
//! unknown line types and attributes, trailing blank lines) and strict about
//! lines it understands: a malformed `o=`, `c=`, `m=` or known `a=` line is a
//! typed [`SdpError`] naming the line. Printing always uses `\r\n`.
//!
//! ```text
//! INVITE with SDP  -> SessionDescription::parse -> answer(offer, local) -> 200 OK body
//! INVITE w/o SDP   -> offer(local) -> 200 OK body; ACK body -> accept_answer(ours, theirs)
//! ```
//!
//! Not modelled: `i=`, `u=`, `e=`, `p=`, `b=`, `z=`, `k=`, `r=` lines and
//! extra `t=` lines are accepted and dropped; multicast `/ttl` suffixes on
//! `c=` are dropped.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use echo_media::CodecKind;
use thiserror::Error;

/// A parsed SDP session description (RFC 4566 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// The `o=` line.
    pub origin: Origin,
    /// The `s=` line; `-` when absent.
    pub session_name: String,
    /// Session-level `c=` address, the default for every media section.
    pub connection: Option<IpAddr>,
    /// The first `t=` line; `0 0` when absent.
    pub timing: Timing,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// The `m=` sections, in order.
    pub media: Vec<MediaDescription>,
}

/// The `o=` line: who made the session and which version of it this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The user name, `-` when the creator has none.
    pub username: String,
    /// Session id, unique per creator.
    pub session_id: u64,
    /// Incremented each time the session is modified (RFC 3264 §8).
    pub session_version: u64,
    /// The creator's address.
    pub address: OriginAddress,
}

/// The address in an `o=` line, which unlike `c=` may be a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginAddress {
    /// A literal IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A host name, with the address type the line declared.
    Name {
        /// `IP4` or `IP6`.
        address_type: AddressType,
        /// The host name as written.
        name: String,
    },
}

/// The SDP address type (`IP4` or `IP6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressType {
    /// `IP4`.
    Ip4,
    /// `IP6`.
    Ip6,
}

/// The `t=` line, in NTP seconds; `0 0` means a permanent session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// Start time.
    pub start: u64,
    /// Stop time.
    pub stop: u64,
}

/// One `m=` section and the `c=` and `a=` lines under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// The media type (`audio`, `video`, ...).
    pub kind: MediaKind,
    /// Transport port; 0 means the stream is rejected or disabled.
    pub port: u16,
    /// The `/<number of ports>` suffix, if present.
    pub port_count: Option<u16>,
    /// Transport protocol as written, e.g. `RTP/AVP`.
    pub protocol: String,
    /// Media formats; for RTP these are payload type numbers.
    pub formats: Vec<String>,
    /// Media-level `c=`, overriding the session-level one.
    pub connection: Option<IpAddr>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

/// The media type of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaKind {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
    /// Anything else (`application`, `text`, `message`, ...), as written.
    Other(String),
}

/// An `a=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
    RtpMap(RtpMap),
    /// `a=fmtp:<pt> <parameters>`, parameters kept as written.
    Fmtp {
        /// The payload type the parameters apply to.
        payload_type: u8,
        /// The format-specific parameters, e.g. `0-16` or `useinbandfec=1`.
        params: String,
    },
    /// `a=ptime:<ms>`.
    Ptime(u32),
    /// `a=maxptime:<ms>`.
    MaxPtime(u32),
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly` or `a=inactive`.
    Direction(Direction),
    /// Any other attribute, kept verbatim.
    Other {
        /// The attribute name.
        name: String,
        /// The text after the first `:`, if any.
        value: Option<String>,
    },
}

/// The body of an `a=rtpmap` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The RTP payload type.
    pub payload_type: u8,
    /// The encoding name as written, e.g. `PCMU` or `opus`.
    pub encoding_name: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The channel count, when written.
    pub channels: Option<u8>,
}

/// Media direction from the point of view of whoever wrote the SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sends and receives.
    SendRecv,
    /// Only sends.
    SendOnly,
    /// Only receives.
    RecvOnly,
    /// Neither sends nor receives.
    Inactive,
}

impl Direction {
    fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether the SDP's author sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the SDP's author receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same direction seen from the other end (sendonly ↔ recvonly).
    pub fn reversed(self) -> Self {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// What both sides allow: sends only if both sends, and so on.
    fn intersect(self, other: Self) -> Self {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// Why an SDP body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// The body is not UTF-8.
    #[error("SDP is not UTF-8")]
    NotUtf8,
    /// The body has no lines.
    #[error("SDP is empty")]
    Empty,
    /// The body has no `o=` line.
    #[error("SDP has no origin (o=) line")]
    MissingOrigin,
    /// A line could not be understood.
    #[error("SDP line {line}: {kind}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        kind: LineError,
    },
}

/// What was wrong with one SDP line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LineError {
    /// Not of the form `<letter>=<value>`.
    #[error("not a `<type>=<value>` line")]
    NotTypeValue,
    /// The first line is not `v=`.
    #[error("expected `v=0` as the first line")]
    VersionNotFirst,
    /// `v=` is not 0.
    #[error("unsupported SDP version")]
    UnsupportedVersion,
    /// A line that may appear once appeared again.
    #[error("duplicate `{0}=` line")]
    Duplicate(char),
    /// A session-level line inside a media section, or `m=` before `o=`.
    #[error("`{0}=` line out of place")]
    Misplaced(char),
    /// Malformed `o=`.
    #[error("malformed origin (o=)")]
    Origin,
    /// Malformed `c=`.
    #[error("malformed connection (c=)")]
    Connection,
    /// Malformed `t=`.
    #[error("malformed timing (t=)")]
    Timing,
    /// Malformed `m=`.
    #[error("malformed media (m=)")]
    Media,
    /// A known attribute with a malformed value.
    #[error("malformed a={0}")]
    Attribute(&'static str),
}

impl SessionDescription {
    /// Parses an SDP body; `\r\n` and bare `\n` line ends are both accepted.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        let mut saw_version = false;
        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut timing = None;
        let mut attributes = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();

        for (index, raw) in text.split('\n').enumerate() {
            let line = raw.trim_end();
            if line.is_empty() {
                continue;
            }
            let at = |kind| SdpError::Line {
                line: index + 1,
                kind,
            };
            let bytes = line.as_bytes();
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_alphabetic() {
                return Err(at(LineError::NotTypeValue));
            }
            let kind = char::from(bytes[0]);
            let value = &line[2..];
            if !saw_version {
                if kind != 'v' {
                    return Err(at(LineError::VersionNotFirst));
                }
                if value.trim() != "0" {
                    return Err(at(LineError::UnsupportedVersion));
                }
                saw_version = true;
                continue;
            }
            let in_media = !media.is_empty();
            match kind {
                'v' => return Err(at(LineError::Duplicate('v'))),
                'o' | 's' | 't' if in_media => return Err(at(LineError::Misplaced(kind))),
                'o' if origin.is_some() => return Err(at(LineError::Duplicate('o'))),
                's' if session_name.is_some() => return Err(at(LineError::Duplicate('s'))),
                'o' => origin = Some(parse_origin(value).ok_or(at(LineError::Origin))?),
                's' => session_name = Some(value.to_owned()),
                // Repeat times are legal but meaningless for a phone call.
                't' if timing.is_some() => {}
                't' => timing = Some(parse_timing(value).ok_or(at(LineError::Timing))?),
                'c' => {
                    let addr = parse_connection(value).ok_or(at(LineError::Connection))?;
                    match media.last_mut() {
                        Some(m) if m.connection.is_some() => {
                            return Err(at(LineError::Duplicate('c')))
                        }
                        Some(m) => m.connection = Some(addr),
                        None if connection.is_some() => return Err(at(LineError::Duplicate('c'))),
                        None => connection = Some(addr),
                    }
                }
                'm' if origin.is_none() => return Err(at(LineError::Misplaced('m'))),
                'm' => media.push(parse_media(value).ok_or(at(LineError::Media))?),
                'a' => {
                    let attr =
                        parse_attribute(value).map_err(|name| at(LineError::Attribute(name)))?;
                    match media.last_mut() {
                        Some(m) => m.attributes.push(attr),
                        None => attributes.push(attr),
                    }
                }
                // i=, u=, e=, p=, b=, z=, k=, r= and anything newer.
                _ => {}
            }
        }

        if !saw_version {
            return Err(SdpError::Empty);
        }
        Ok(SessionDescription {
            origin: origin.ok_or(SdpError::MissingOrigin)?,
            session_name: session_name.unwrap_or_else(|| "-".to_owned()),
            connection,
            timing: timing.unwrap_or_default(),
            attributes,
            media,
        })
    }

    /// Parses an SDP body straight from a SIP message body.
    pub fn parse_bytes(body: &[u8]) -> Result<Self, SdpError> {
        std::str::from_utf8(body)
            .map_err(|_| SdpError::NotUtf8)
            .and_then(Self::parse)
    }

    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        find_direction(&self.attributes)
    }
}

impl FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v=0\r\n{}\r\ns={}\r\n", self.origin, self.session_name)?;
        if let Some(addr) = self.connection {
            write_connection(f, addr)?;
        }
        write!(f, "t={} {}\r\n", self.timing.start, self.timing.stop)?;
        for attr in &self.attributes {
            write!(f, "a={attr}\r\n")?;
        }
        for media in &self.media {
            write!(f, "{media}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "o={} {} {} IN ",
            self.username, self.session_id, self.session_version
        )?;
        match &self.address {
            OriginAddress::Ip(ip) => write!(f, "{} {ip}", address_type_of(*ip).as_str()),
            OriginAddress::Name { address_type, name } => {
                write!(f, "{} {name}", address_type.as_str())
            }
        }
    }
}

impl AddressType {
    fn as_str(self) -> &'static str {
        match self {
            AddressType::Ip4 => "IP4",
            AddressType::Ip6 => "IP6",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("IP4") {
            Some(AddressType::Ip4)
        } else if s.eq_ignore_ascii_case("IP6") {
            Some(AddressType::Ip6)
        } else {
            None
        }
    }
}

fn address_type_of(ip: IpAddr) -> AddressType {
    match ip {
        IpAddr::V4(_) => AddressType::Ip4,
        IpAddr::V6(_) => AddressType::Ip6,
    }
}

fn write_connection(f: &mut fmt::Formatter<'_>, addr: IpAddr) -> fmt::Result {
    write!(f, "c=IN {} {addr}\r\n", address_type_of(addr).as_str())
}

impl MediaDescription {
    /// The formats that are RTP payload type numbers, in preference order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    /// The `a=rtpmap` for a payload type, if any.
    pub fn rtpmap(&self, payload_type: u8) -> Option<&RtpMap> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::RtpMap(map) if map.payload_type == payload_type => Some(map),
            _ => None,
        })
    }

    /// The `a=fmtp` parameters for a payload type, if any.
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp {
                payload_type: pt,
                params,
            } if *pt == payload_type => Some(params.as_str()),
            _ => None,
        })
    }

    /// The media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        find_direction(&self.attributes)
    }

    /// The media-level `a=ptime`, if any.
    pub fn ptime(&self) -> Option<u32> {
        find_ptime(&self.attributes)
    }
}

fn find_direction(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

fn find_ptime(attributes: &[Attribute]) -> Option<u32> {
    attributes.iter().find_map(|a| match a {
        Attribute::Ptime(ms) => Some(*ms),
        _ => None,
    })
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.kind, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.protocol)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        f.write_str("\r\n")?;
        if let Some(addr) = self.connection {
            write_connection(f, addr)?;
        }
        for attr in &self.attributes {
            write!(f, "a={attr}\r\n")?;
        }
        Ok(())
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaKind::Audio => f.write_str("audio"),
            MediaKind::Video => f.write_str("video"),
            MediaKind::Other(kind) => f.write_str(kind),
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::RtpMap(map) => {
                write!(
                    f,
                    "rtpmap:{} {}/{}",
                    map.payload_type, map.encoding_name, map.clock_rate
                )?;
                match map.channels {
                    Some(channels) => write!(f, "/{channels}"),
                    None => Ok(()),
                }
            }
            Attribute::Fmtp {
                payload_type,
                params,
            } if params.is_empty() => write!(f, "fmtp:{payload_type}"),
            Attribute::Fmtp {
                payload_type,
                params,
            } => write!(f, "fmtp:{payload_type} {params}"),
            Attribute::Ptime(ms) => write!(f, "ptime:{ms}"),
            Attribute::MaxPtime(ms) => write!(f, "maxptime:{ms}"),
            Attribute::Direction(d) => f.write_str(d.as_str()),
            Attribute::Other { name, value: None } => f.write_str(name),
            Attribute::Other {
                name,
                value: Some(value),
            } => write!(f, "{name}:{value}"),
        }
    }
}

fn parse_origin(value: &str) -> Option<Origin> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [username, session_id, session_version, net_type, addr_type, addr] = fields[..] else {
        return None;
    };
    if !net_type.eq_ignore_ascii_case("IN") {
        return None;
    }
    let address_type = AddressType::parse(addr_type)?;
    let address = match addr.parse::<IpAddr>() {
        Ok(ip) if address_type_of(ip) == address_type => OriginAddress::Ip(ip),
        Ok(_) => return None,
        Err(_) if is_host_name(addr) => OriginAddress::Name {
            address_type,
            name: addr.to_owned(),
        },
        Err(_) => return None,
    };
    Some(Origin {
        username: username.to_owned(),
        session_id: session_id.parse().ok()?,
        session_version: session_version.parse().ok()?,
        address,
    })
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn parse_connection(value: &str) -> Option<IpAddr> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [net_type, addr_type, addr] = fields[..] else {
        return None;
    };
    if !net_type.eq_ignore_ascii_case("IN") {
        return None;
    }
    let address_type = AddressType::parse(addr_type)?;
    // Multicast `/ttl/count` suffixes mean nothing to a unicast phone call.
    let addr = addr.split('/').next()?;
    let ip: IpAddr = addr.parse().ok()?;
    (address_type_of(ip) == address_type).then_some(ip)
}

fn parse_timing(value: &str) -> Option<Timing> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [start, stop] = fields[..] else {
        return None;
    };
    Some(Timing {
        start: start.parse().ok()?,
        stop: stop.parse().ok()?,
    })
}

fn parse_media(value: &str) -> Option<MediaDescription> {
    let mut fields = value.split_ascii_whitespace();
    let kind = match fields.next()? {
        "audio" => MediaKind::Audio,
        "video" => MediaKind::Video,
        other => MediaKind::Other(other.to_owned()),
    };
    let port = fields.next()?;
    let (port, port_count) = match port.split_once('/') {
        Some((port, count)) => (port.parse().ok()?, Some(count.parse().ok()?)),
        None => (port.parse().ok()?, None),
    };
    let protocol = fields.next()?.to_owned();
    Some(MediaDescription {
        kind,
        port,
        port_count,
        protocol,
        formats: fields.map(str::to_owned).collect(),
        connection: None,
        attributes: Vec::new(),
    })
}

/// Parses the text after `a=`; the error names the malformed attribute.
fn parse_attribute(value: &str) -> Result<Attribute, &'static str> {
    let (name, rest) = match value.split_once(':') {
        Some((name, rest)) => (name, Some(rest)),
        None => (value, None),
    };
    let known = |n: &str| name.eq_ignore_ascii_case(n);
    let attr = if known("rtpmap") {
        Attribute::RtpMap(rest.and_then(parse_rtpmap).ok_or("rtpmap")?)
    } else if known("fmtp") {
        let rest = rest.ok_or("fmtp")?.trim();
        let (format, params) = rest.split_once(' ').unwrap_or((rest, ""));
        match format.parse() {
            Ok(payload_type) => Attribute::Fmtp {
                payload_type,
                params: params.trim().to_owned(),
            },
            // Non-RTP media (e.g. `webrtc-datachannel`) name formats too.
            Err(_) => Attribute::Other {
                name: name.to_owned(),
                value: Some(rest.to_owned()),
            },
        }
    } else if known("ptime") {
        Attribute::Ptime(parse_millis(rest).ok_or("ptime")?)
    } else if known("maxptime") {
        Attribute::MaxPtime(parse_millis(rest).ok_or("maxptime")?)
    } else if let (Some(direction), None) = (parse_direction(name), rest) {
        Attribute::Direction(direction)
    } else if name.is_empty() {
        return Err("(unnamed)");
    } else {
        Attribute::Other {
            name: name.to_owned(),
            value: rest.map(str::to_owned),
        }
    };
    Ok(attr)
}

fn parse_millis(value: Option<&str>) -> Option<u32> {
    value?.trim().parse().ok()
}

fn parse_direction(name: &str) -> Option<Direction> {
    [
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::RecvOnly,
        Direction::Inactive,
    ]
    .into_iter()
    .find(|d| d.as_str().eq_ignore_ascii_case(name))
}

fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (payload_type, encoding) = value.trim().split_once(' ')?;
    let mut parts = encoding.trim().split('/');
    let encoding_name = parts.next().filter(|n| !n.is_empty())?.to_owned();
    let clock_rate = parts.next()?.parse().ok()?;
    let channels = parts.next().map(str::parse).transpose().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(RtpMap {
        payload_type: payload_type.parse().ok()?,
        encoding_name,
        clock_rate,
        channels,
    })
}

// ---------------------------------------------------------------------------
// Offer/answer (RFC 3264)
// ---------------------------------------------------------------------------

/// The DTMF event name (RFC 4733).
const TELEPHONE_EVENT: &str = "telephone-event";
/// The payload type we offer telephone-event on.
const OFFER_TELEPHONE_EVENT_PT: u8 = 101;
/// The payload type we offer Opus on, as browsers do.
const OFFER_OPUS_PT: u8 = 111;
/// DTMF digits 0-9, *, #, A-D and flash.
const TELEPHONE_EVENTS: &str = "0-16";
/// RFC 3551's default packetisation for G.711, also Opus's usual frame.
const DEFAULT_PTIME_MS: u32 = 20;
/// Opus fmtp parameters that still make sense when echoed by a mono
/// receiver; `stereo` and the `sprop-*` ones describe the other end.
const OPUS_ANSWER_PARAMS: [&str; 6] = [
    "useinbandfec",
    "usedtx",
    "minptime",
    "maxplaybackrate",
    "maxaveragebitrate",
    "cbr",
];
/// The `s=` we write.
const SESSION_NAME: &str = "Echo";

/// What we bring to a negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Our RTP ip:port.
    pub addr: SocketAddr,
    /// The `o=` session id, fixed for the call.
    pub session_id: u64,
    /// The `o=` version; the caller increments it for each new offer/answer.
    pub session_version: u64,
    /// The codecs we support, in our preference order.
    pub codecs: Vec<CodecKind>,
    /// We put the call on hold.
    pub hold: bool,
}

impl LocalMedia {
    /// All three codecs (PCMU, PCMA, Opus), version 0, not on hold.
    pub fn new(addr: SocketAddr, session_id: u64) -> Self {
        LocalMedia {
            addr,
            session_id,
            session_version: 0,
            codecs: vec![CodecKind::Pcmu, CodecKind::Pcma, CodecKind::Opus],
            hold: false,
        }
    }

    fn origin(&self) -> Origin {
        Origin {
            username: "-".to_owned(),
            session_id: self.session_id,
            session_version: self.session_version,
            address: OriginAddress::Ip(self.addr.ip()),
        }
    }

    fn wanted_direction(&self) -> Direction {
        if self.hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        }
    }
}

/// The outcome of a negotiation: what the media session should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Where to send RTP; `None` when the peer's port is 0 or it holds with
    /// `c=0.0.0.0`.
    pub remote_rtp: Option<SocketAddr>,
    /// The agreed codec.
    pub codec: CodecKind,
    /// Its payload type.
    pub payload_type: u8,
    /// Channels per the rtpmap: 1 for G.711, 2 for Opus (RFC 7587).
    pub channels: u8,
    /// The telephone-event payload type, if DTMF was agreed.
    pub telephone_event: Option<u8>,
    /// Packetisation time; 20 unless the peer asked otherwise.
    pub ptime_ms: u32,
    /// The peer's direction, from its point of view.
    pub remote_direction: Direction,
    /// Our direction, from our point of view.
    pub local_direction: Direction,
}

/// Why an offer or answer could not be agreed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NegotiationError {
    /// No usable audio stream at all.
    #[error("no audio stream")]
    NoAudio,
    /// Audio was offered but with no codec we support (SIP 488).
    #[error("no common audio codec")]
    NoCommonCodec,
    /// The SDP is well-formed but breaks offer/answer rules.
    #[error("invalid media description: {0}")]
    Invalid(#[from] InvalidMedia),
}

/// How an SDP breaks the offer/answer rules.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidMedia {
    /// The chosen stream has no `c=` at either level.
    #[error("media section {index} has no connection address")]
    MissingConnection {
        /// 0-based media section index.
        index: usize,
    },
    /// The answer has a different number of `m=` lines than the offer.
    #[error("answer has {answered} media sections, offer had {offered}")]
    MediaCountMismatch {
        /// `m=` lines in our offer.
        offered: usize,
        /// `m=` lines in the answer.
        answered: usize,
    },
    /// The answer changed an audio section into something else.
    #[error("answer media section {index} is not audio")]
    MediaKindMismatch {
        /// 0-based media section index.
        index: usize,
    },
    /// The answer accepted audio with no codec we offered.
    #[error("answer media section {index} has no codec we offered")]
    UnofferedCodec {
        /// 0-based media section index.
        index: usize,
    },
}

/// Answers a peer's offer (RFC 3264 §6): one audio stream with the first
/// codec in the offerer's order that we support; every other `m=` line is
/// rejected with port 0 in the same position.
pub fn answer(
    offer: &SessionDescription,
    local: &LocalMedia,
) -> Result<(SessionDescription, NegotiatedMedia), NegotiationError> {
    let mut saw_audio = false;
    let mut negotiated = None;
    let mut media = Vec::with_capacity(offer.media.len());
    for (index, offered) in offer.media.iter().enumerate() {
        let usable_audio = offered.kind == MediaKind::Audio && offered.port != 0;
        saw_audio |= usable_audio;
        let selection = (usable_audio && negotiated.is_none() && is_rtp_avp(&offered.protocol))
            .then(|| choose_codec(offered, None, &local.codecs))
            .flatten();
        match selection {
            Some(selection) => {
                let (answered, agreed) = answer_stream(offer, index, selection, local)?;
                media.push(answered);
                negotiated = Some(agreed);
            }
            None => media.push(rejected(offered)),
        }
    }
    let negotiated = match negotiated {
        Some(negotiated) => negotiated,
        None if saw_audio => return Err(NegotiationError::NoCommonCodec),
        None => return Err(NegotiationError::NoAudio),
    };
    let sdp = SessionDescription {
        origin: local.origin(),
        session_name: SESSION_NAME.to_owned(),
        connection: Some(local.addr.ip()),
        timing: Timing::default(),
        attributes: Vec::new(),
        media,
    };
    Ok((sdp, negotiated))
}

/// Our offer for a late-offer INVITE: every local codec (Opus on PT 111)
/// plus telephone-event/8000 on PT 101.
pub fn offer(local: &LocalMedia) -> SessionDescription {
    let mut formats = Vec::new();
    let mut attributes = Vec::new();
    for &codec in &local.codecs {
        let payload_type = codec.static_payload_type().unwrap_or(OFFER_OPUS_PT);
        if formats.contains(&payload_type.to_string()) {
            continue;
        }
        formats.push(payload_type.to_string());
        attributes.push(codec_rtpmap(codec, payload_type));
        if codec == CodecKind::Opus {
            attributes.push(Attribute::Fmtp {
                payload_type,
                params: "useinbandfec=1".to_owned(),
            });
        }
    }
    formats.push(OFFER_TELEPHONE_EVENT_PT.to_string());
    attributes.extend(telephone_event_attributes(
        OFFER_TELEPHONE_EVENT_PT,
        8000,
        Some(TELEPHONE_EVENTS),
    ));
    attributes.push(Attribute::Ptime(DEFAULT_PTIME_MS));
    attributes.push(Attribute::Direction(local.wanted_direction()));
    SessionDescription {
        origin: local.origin(),
        session_name: SESSION_NAME.to_owned(),
        connection: Some(local.addr.ip()),
        timing: Timing::default(),
        attributes: Vec::new(),
        media: vec![MediaDescription {
            kind: MediaKind::Audio,
            port: local.addr.port(),
            port_count: None,
            protocol: "RTP/AVP".to_owned(),
            formats,
            connection: None,
            attributes,
        }],
    }
}

/// Reads the peer's answer to our offer (RFC 3264 §7): the first audio
/// stream it accepted, with the first codec it listed.
///
/// `payload_type` is the answer's number for the codec, which is what we
/// send with; RFC 3264 §6.1 makes it equal to ours in practice.
pub fn accept_answer(
    our_offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<NegotiatedMedia, NegotiationError> {
    if our_offer.media.len() != answer.media.len() {
        return Err(InvalidMedia::MediaCountMismatch {
            offered: our_offer.media.len(),
            answered: answer.media.len(),
        }
        .into());
    }
    let mut offered_audio = false;
    for (index, (ours, theirs)) in our_offer.media.iter().zip(&answer.media).enumerate() {
        if ours.kind != MediaKind::Audio || ours.port == 0 {
            continue;
        }
        offered_audio = true;
        if theirs.port == 0 {
            continue;
        }
        if theirs.kind != MediaKind::Audio {
            return Err(InvalidMedia::MediaKindMismatch { index }.into());
        }
        let offered_codecs: Vec<CodecKind> = ours
            .payload_types()
            .filter_map(|pt| resolve_codec(ours, None, pt))
            .map(|(codec, _)| codec)
            .collect();
        let selection = choose_codec(theirs, Some(ours), &offered_codecs)
            .ok_or(InvalidMedia::UnofferedCodec { index })?;
        let remote_direction = effective_direction(answer, theirs);
        let our_direction = ours
            .direction()
            .or(our_offer.direction())
            .unwrap_or(Direction::SendRecv);
        return Ok(NegotiatedMedia {
            remote_rtp: remote_rtp(answer, theirs, index)?,
            codec: selection.codec,
            payload_type: selection.payload_type,
            channels: selection.channels,
            telephone_event: telephone_event(theirs, Some(ours), selection.codec.clock_rate()),
            ptime_ms: theirs
                .ptime()
                .or(find_ptime(&answer.attributes))
                .unwrap_or(DEFAULT_PTIME_MS),
            remote_direction,
            local_direction: our_direction.intersect(remote_direction.reversed()),
        });
    }
    Err(if offered_audio {
        NegotiationError::NoCommonCodec
    } else {
        NegotiationError::NoAudio
    })
}

/// A codec picked from an `m=` line.
#[derive(Debug, Clone, Copy)]
struct CodecSelection {
    codec: CodecKind,
    payload_type: u8,
    channels: u8,
}

/// RTP/AVPF is AVP plus feedback we may ignore; SRTP profiles we cannot do.
fn is_rtp_avp(protocol: &str) -> bool {
    protocol.eq_ignore_ascii_case("RTP/AVP") || protocol.eq_ignore_ascii_case("RTP/AVPF")
}

/// The first payload type in `media`'s order that maps to a codec in
/// `supported`. Rtpmaps come from `media`, then `fallback` (our offer,
/// when reading an answer), then the static table.
fn choose_codec(
    media: &MediaDescription,
    fallback: Option<&MediaDescription>,
    supported: &[CodecKind],
) -> Option<CodecSelection> {
    media.payload_types().find_map(|payload_type| {
        let (codec, channels) = resolve_codec(media, fallback, payload_type)?;
        supported.contains(&codec).then_some(CodecSelection {
            codec,
            payload_type,
            channels,
        })
    })
}

/// Maps a payload type to a codec we know, with its channel count.
fn resolve_codec(
    media: &MediaDescription,
    fallback: Option<&MediaDescription>,
    payload_type: u8,
) -> Option<(CodecKind, u8)> {
    let map = media
        .rtpmap(payload_type)
        .or_else(|| fallback.and_then(|f| f.rtpmap(payload_type)));
    let Some(map) = map else {
        return [CodecKind::Pcmu, CodecKind::Pcma]
            .into_iter()
            .find(|c| c.static_payload_type() == Some(payload_type))
            .map(|c| (c, 1));
    };
    let codec = CodecKind::from_encoding_name(&map.encoding_name)?;
    if map.clock_rate != codec.clock_rate() {
        return None;
    }
    // RFC 7587 §7: Opus is always `opus/48000/2`, whatever is actually sent.
    let expected_channels = if codec == CodecKind::Opus { 2 } else { 1 };
    (map.channels.unwrap_or(1) == expected_channels).then_some((codec, expected_channels))
}

/// The telephone-event payload type at `clock_rate`, else at 8000 Hz.
fn telephone_event(
    media: &MediaDescription,
    fallback: Option<&MediaDescription>,
    clock_rate: u32,
) -> Option<u8> {
    let at_rate = |rate: u32| {
        media.payload_types().find(|&pt| {
            media
                .rtpmap(pt)
                .or_else(|| fallback.and_then(|f| f.rtpmap(pt)))
                .is_some_and(|m| {
                    m.encoding_name.eq_ignore_ascii_case(TELEPHONE_EVENT) && m.clock_rate == rate
                })
        })
    };
    at_rate(clock_rate).or_else(|| at_rate(8000))
}

/// The direction an SDP declares for a stream, with RFC 2543 hold
/// (`c=0.0.0.0`) meaning "do not send to me".
fn effective_direction(sdp: &SessionDescription, media: &MediaDescription) -> Direction {
    let declared = media
        .direction()
        .or(sdp.direction())
        .unwrap_or(Direction::SendRecv);
    let held = media
        .connection
        .or(sdp.connection)
        .is_some_and(|ip| ip.is_unspecified());
    if held {
        Direction::from_flags(declared.sends(), false)
    } else {
        declared
    }
}

fn remote_rtp(
    sdp: &SessionDescription,
    media: &MediaDescription,
    index: usize,
) -> Result<Option<SocketAddr>, InvalidMedia> {
    let ip = media
        .connection
        .or(sdp.connection)
        .ok_or(InvalidMedia::MissingConnection { index })?;
    Ok((media.port != 0 && !ip.is_unspecified()).then(|| SocketAddr::new(ip, media.port)))
}

fn answer_stream(
    offer: &SessionDescription,
    index: usize,
    selection: CodecSelection,
    local: &LocalMedia,
) -> Result<(MediaDescription, NegotiatedMedia), NegotiationError> {
    let offered = &offer.media[index];
    let remote_rtp = remote_rtp(offer, offered, index)?;
    let remote_direction = effective_direction(offer, offered);
    let local_direction = local
        .wanted_direction()
        .intersect(remote_direction.reversed());
    let codec = selection.codec;
    let payload_type = selection.payload_type;
    let telephone_event = telephone_event(offered, None, codec.clock_rate());
    let ptime = offered.ptime().or(find_ptime(&offer.attributes));

    let mut formats = vec![payload_type.to_string()];
    let mut attributes = vec![codec_rtpmap(codec, payload_type)];
    if codec == CodecKind::Opus {
        let params = opus_answer_params(offered.fmtp(payload_type).unwrap_or(""));
        if !params.is_empty() {
            attributes.push(Attribute::Fmtp {
                payload_type,
                params,
            });
        }
    }
    if let Some(pt) = telephone_event {
        formats.push(pt.to_string());
        let clock_rate = offered.rtpmap(pt).map_or(8000, |m| m.clock_rate);
        attributes.extend(telephone_event_attributes(pt, clock_rate, offered.fmtp(pt)));
    }
    if let Some(ms) = ptime {
        attributes.push(Attribute::Ptime(ms));
    }
    attributes.push(Attribute::Direction(local_direction));

    let answered = MediaDescription {
        kind: MediaKind::Audio,
        port: local.addr.port(),
        port_count: None,
        protocol: offered.protocol.clone(),
        formats,
        connection: None,
        attributes,
    };
    let negotiated = NegotiatedMedia {
        remote_rtp,
        codec,
        payload_type,
        channels: selection.channels,
        telephone_event,
        ptime_ms: ptime.unwrap_or(DEFAULT_PTIME_MS),
        remote_direction,
        local_direction,
    };
    Ok((answered, negotiated))
}

/// A rejected stream: same type, protocol and formats, port 0, nothing else.
fn rejected(offered: &MediaDescription) -> MediaDescription {
    MediaDescription {
        kind: offered.kind.clone(),
        port: 0,
        port_count: None,
        protocol: offered.protocol.clone(),
        formats: offered.formats.clone(),
        connection: None,
        attributes: Vec::new(),
    }
}

fn codec_rtpmap(codec: CodecKind, payload_type: u8) -> Attribute {
    Attribute::RtpMap(RtpMap {
        payload_type,
        encoding_name: codec.encoding_name().to_owned(),
        clock_rate: codec.clock_rate(),
        channels: (codec == CodecKind::Opus).then_some(2),
    })
}

fn telephone_event_attributes(
    payload_type: u8,
    clock_rate: u32,
    events: Option<&str>,
) -> impl Iterator<Item = Attribute> {
    let rtpmap = Attribute::RtpMap(RtpMap {
        payload_type,
        encoding_name: TELEPHONE_EVENT.to_owned(),
        clock_rate,
        channels: None,
    });
    let fmtp = events.map(|events| Attribute::Fmtp {
        payload_type,
        params: events.to_owned(),
    });
    std::iter::once(rtpmap).chain(fmtp)
}

/// Keeps the offered Opus parameters that a mono receiver can echo.
fn opus_answer_params(offered: &str) -> String {
    offered
        .split(';')
        .map(str::trim)
        .filter(|param| {
            let name = param.split('=').next().unwrap_or("").trim();
            OPUS_ANSWER_PARAMS
                .iter()
                .any(|keep| keep.eq_ignore_ascii_case(name))
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    const BARESIP: &str = "v=0\n\
o=- 1474289389 3413549412 IN IP4 192.168.1.20\n\
s=-\n\
c=IN IP4 192.168.1.20\n\
t=0 0\n\
m=audio 10036 RTP/AVP 96 0 8 101\n\
b=AS:64\n\
a=rtpmap:96 opus/48000/2\n\
a=fmtp:96 stereo=1;sprop-stereo=1;useinbandfec=1\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-15\n\
a=sendrecv\n\
a=label:1\n\
a=rtcp-rsize\n\
a=ssrc:1450208411 cname:1b2a7f4c-44c9-4c5a-9d3e-8f4ad4c1ce28\n";

    const ASTERISK: &str = "v=0\r\n\
o=- 1718196034 1718196034 IN IP4 10.0.0.5\r\n\
s=Asterisk\r\n\
c=IN IP4 10.0.0.5\r\n\
t=0 0\r\n\
m=audio 18250 RTP/AVP 0 8 3 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:3 GSM/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:150\r\n\
a=sendrecv\r\n";

    const CARRIER: &str = "v=0\r\n\
o=Sonus_UAC 12345 67890 IN IP4 sbc1.carrier.example\r\n\
s=SIP Media Capabilities\r\n\
c=IN IP4 203.0.113.20\r\n\
t=0 0\r\n\
m=audio 32000 RTP/AVP 18 8 0 101\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=ptime:20\r\n\
a=maxptime:20\r\n";

    const WEBRTC_OPUS: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=msid-semantic: WMS\r\n\
m=audio 9 RTP/AVP 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 198.51.100.7\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=mid:0\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1;stereo=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n";

    const SAMPLES: [(&str, &str); 5] = [
        ("sipp", SIPP),
        ("baresip", BARESIP),
        ("asterisk", ASTERISK),
        ("carrier", CARRIER),
        ("webrtc", WEBRTC_OPUS),
    ];

    fn local() -> LocalMedia {
        LocalMedia::new("192.0.2.10:40000".parse().unwrap(), 42)
    }

    fn parse(text: &str) -> SessionDescription {
        SessionDescription::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    /// A one-audio-stream offer from 198.51.100.1:5004 with `lines` after m=.
    fn audio_offer(formats: &str, lines: &[&str]) -> SessionDescription {
        let mut text = format!(
            "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\n\
             t=0 0\r\nm=audio 5004 RTP/AVP {formats}\r\n"
        );
        for line in lines {
            text.push_str(line);
            text.push_str("\r\n");
        }
        parse(&text)
    }

    fn assert_round_trip(sdp: &SessionDescription) {
        let printed = sdp.to_string();
        assert!(
            !printed.replace("\r\n", "").contains('\n'),
            "bare LF in {printed}"
        );
        assert!(printed.ends_with("\r\n"));
        assert_eq!(&parse(&printed), sdp, "{printed}");
    }

    #[test]
    fn samples_parse_and_round_trip() {
        for (name, text) in SAMPLES {
            let sdp = SessionDescription::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(sdp.media.len(), 1, "{name}");
            assert_eq!(sdp.media[0].kind, MediaKind::Audio, "{name}");
            assert_round_trip(&sdp);
        }
    }

    #[test]
    fn asterisk_sample_model() {
        let sdp = parse(ASTERISK);
        assert_eq!(
            sdp.origin,
            Origin {
                username: "-".into(),
                session_id: 1718196034,
                session_version: 1718196034,
                address: OriginAddress::Ip("10.0.0.5".parse().unwrap()),
            }
        );
        assert_eq!(sdp.session_name, "Asterisk");
        assert_eq!(sdp.connection, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(sdp.timing, Timing { start: 0, stop: 0 });
        let m = &sdp.media[0];
        assert_eq!((m.port, m.protocol.as_str()), (18250, "RTP/AVP"));
        assert_eq!(m.payload_types().collect::<Vec<_>>(), [0, 8, 3, 101]);
        assert_eq!(m.rtpmap(3).unwrap().encoding_name, "GSM");
        assert_eq!(m.fmtp(101), Some("0-16"));
        assert_eq!(m.ptime(), Some(20));
        assert!(m.attributes.contains(&Attribute::MaxPtime(150)));
        assert_eq!(m.direction(), Some(Direction::SendRecv));
    }

    #[test]
    fn webrtc_sample_model() {
        let sdp = parse(WEBRTC_OPUS);
        assert_eq!(sdp.origin.session_id, 4611731400430051336);
        assert_eq!(sdp.connection, None);
        assert_eq!(
            sdp.attributes[1],
            Attribute::Other {
                name: "msid-semantic".into(),
                value: Some(" WMS".into())
            }
        );
        let m = &sdp.media[0];
        assert_eq!(m.connection, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(
            m.rtpmap(111),
            Some(&RtpMap {
                payload_type: 111,
                encoding_name: "opus".into(),
                clock_rate: 48000,
                channels: Some(2),
            })
        );
        assert_eq!(m.fmtp(63), Some("111/111"));
    }

    #[test]
    fn carrier_origin_host_name() {
        assert_eq!(
            parse(CARRIER).origin.address,
            OriginAddress::Name {
                address_type: AddressType::Ip4,
                name: "sbc1.carrier.example".into()
            }
        );
    }

    #[test]
    fn lf_and_crlf_parse_the_same() {
        for (name, text) in SAMPLES {
            let lf = text.replace("\r\n", "\n");
            let crlf = lf.replace('\n', "\r\n");
            assert_eq!(parse(&lf), parse(&crlf), "{name}");
        }
    }

    #[test]
    fn every_emitted_line_type_round_trips() {
        let lines = [
            "o=alice 1 2 IN IP6 2001:db8::1",
            "o=- 18446744073709551615 0 IN IP6 host6.example",
            "c=IN IP6 2001:db8::2",
            "t=3034423619 3042462419",
            "a=sendonly",
            "a=recvonly",
            "a=inactive",
            "a=tool:echo",
            "a=flag",
            "m=audio 5004/2 RTP/AVP 0 8",
            "m=video 0 RTP/AVP 96",
            "m=application 5000 UDP/DTLS/SCTP webrtc-datachannel",
            "a=rtpmap:96 opus/48000/2",
            "a=rtpmap:0 PCMU/8000",
            "a=fmtp:96 useinbandfec=1",
            "a=fmtp:101",
            "a=fmtp:webrtc-datachannel max-message-size=262144",
            "a=ptime:30",
            "a=maxptime:60",
            "a=sendrecv",
        ];
        for line in lines {
            let text = if line.starts_with("o=") {
                format!("v=0\r\n{line}\r\ns=x\r\nt=0 0\r\n")
            } else if line.starts_with("c=") || line.starts_with("t=") {
                format!("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=x\r\n{line}\r\n")
            } else if line.starts_with('m') {
                format!("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=x\r\nt=0 0\r\n{line}\r\n")
            } else {
                format!(
                    "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=x\r\nt=0 0\r\n\
                     m=audio 1 RTP/AVP 0\r\n{line}\r\n"
                )
            };
            let sdp = parse(&text);
            assert_round_trip(&sdp);
            assert!(sdp.to_string().contains(&format!("{line}\r\n")), "{line}");
        }
    }

    #[test]
    fn generated_offers_and_answers_round_trip() {
        let mut held = local();
        held.hold = true;
        for local in [local(), held] {
            assert_round_trip(&offer(&local));
            for (_, text) in SAMPLES {
                assert_round_trip(&answer(&parse(text), &local).unwrap().0);
            }
        }
    }

    #[test]
    fn tolerated_input() {
        let text = "v=0\n\
o=- 1 1 IN IP4 192.0.2.1\n\
s=\n\
i=session info\n\
u=http://example.com\n\
e=ops@example.com\n\
b=CT:128\n\
t=0 0\n\
r=604800 3600 0 90000\n\
t=1 2\n\
z=2882844526 -1h\n\
y=unknown future line\n\
a=X-custom:foo:bar\n\
m=audio 5004 RTP/AVP 0\n\
i=audio\n\
c=IN IP4 224.2.1.1/127/3\n\
b=AS:64\n\
k=prompt\n\
a=RTPMAP:0 PCMU/8000\n\
a=rtpmap:0  PCMU/8000  \n\
\n\
\n";
        let sdp = parse(text);
        assert_eq!(sdp.session_name, "");
        assert_eq!(sdp.timing, Timing { start: 0, stop: 0 });
        assert_eq!(
            sdp.attributes,
            [Attribute::Other {
                name: "X-custom".into(),
                value: Some("foo:bar".into())
            }]
        );
        let m = &sdp.media[0];
        assert_eq!(m.connection, Some("224.2.1.1".parse().unwrap()));
        assert_eq!(m.attributes.len(), 2);
        assert_eq!(m.rtpmap(0).unwrap().encoding_name, "PCMU");
        // Missing s= and t= default.
        let minimal = parse("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n");
        assert_eq!(minimal.session_name, "-");
        assert_eq!(minimal.timing, Timing::default());
        assert_eq!(
            SessionDescription::parse_bytes(SIPP.as_bytes()),
            Ok(parse(SIPP))
        );
    }

    #[test]
    fn garbage_is_rejected_with_its_line() {
        const O: &str = "o=- 1 1 IN IP4 192.0.2.1";
        let line = |line, kind| SdpError::Line { line, kind };
        let cases: Vec<(String, SdpError)> = vec![
            ("".into(), SdpError::Empty),
            ("\r\n\r\n".into(), SdpError::Empty),
            ("hello world".into(), line(1, LineError::NotTypeValue)),
            ("<html>".into(), line(1, LineError::NotTypeValue)),
            (
                "o=- 1 1 IN IP4 1.2.3.4".into(),
                line(1, LineError::VersionNotFirst),
            ),
            ("v=1".into(), line(1, LineError::UnsupportedVersion)),
            ("v=0\r\ns=-".into(), SdpError::MissingOrigin),
            ("v=0\r\nv=0".into(), line(2, LineError::Duplicate('v'))),
            (
                format!("v=0\r\n{O}\r\n{O}"),
                line(3, LineError::Duplicate('o')),
            ),
            (
                format!("v=0\r\n{O}\r\n=x"),
                line(3, LineError::NotTypeValue),
            ),
            (
                format!("v=0\r\n{O}\r\n1=x"),
                line(3, LineError::NotTypeValue),
            ),
            (
                format!("v=0\r\n{O}\r\nfoo bar"),
                line(3, LineError::NotTypeValue),
            ),
            (
                "v=0\r\nm=audio 1 RTP/AVP 0".into(),
                line(2, LineError::Misplaced('m')),
            ),
            ("v=0\r\no=- 1 1 IN IP4".into(), line(2, LineError::Origin)),
            (
                "v=0\r\no=- x 1 IN IP4 1.2.3.4".into(),
                line(2, LineError::Origin),
            ),
            (
                "v=0\r\no=- 1 1 IN IP6 1.2.3.4".into(),
                line(2, LineError::Origin),
            ),
            (
                "v=0\r\no=- 1 1 ATM IP4 1.2.3.4".into(),
                line(2, LineError::Origin),
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 a/b".into(),
                line(2, LineError::Origin),
            ),
            (
                format!("v=0\r\n{O}\r\nc=IN IP4 host.example"),
                line(3, LineError::Connection),
            ),
            (
                format!("v=0\r\n{O}\r\nc=IN IP4 2001:db8::1"),
                line(3, LineError::Connection),
            ),
            (
                format!("v=0\r\n{O}\r\nc=IN IP4 300.1.1.1"),
                line(3, LineError::Connection),
            ),
            (
                format!("v=0\r\n{O}\r\nc=IN IP4"),
                line(3, LineError::Connection),
            ),
            (
                format!("v=0\r\n{O}\r\nc=IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.5"),
                line(4, LineError::Duplicate('c')),
            ),
            (format!("v=0\r\n{O}\r\nt=now"), line(3, LineError::Timing)),
            (format!("v=0\r\n{O}\r\nm=audio"), line(3, LineError::Media)),
            (
                format!("v=0\r\n{O}\r\nm=audio x RTP/AVP 0"),
                line(3, LineError::Media),
            ),
            (
                format!("v=0\r\n{O}\r\nm=audio 70000 RTP/AVP 0"),
                line(3, LineError::Media),
            ),
            (
                format!("v=0\r\n{O}\r\nm=audio 1/x RTP/AVP 0"),
                line(3, LineError::Media),
            ),
            (
                format!("v=0\r\n{O}\r\nm=audio 1 RTP/AVP 0\r\ns=late"),
                line(4, LineError::Misplaced('s')),
            ),
            (
                format!("v=0\r\n{O}\r\na=rtpmap:0 PCMU"),
                line(3, LineError::Attribute("rtpmap")),
            ),
            (
                format!("v=0\r\n{O}\r\na=rtpmap:x PCMU/8000"),
                line(3, LineError::Attribute("rtpmap")),
            ),
            (
                format!("v=0\r\n{O}\r\na=rtpmap:0 PCMU/fast"),
                line(3, LineError::Attribute("rtpmap")),
            ),
            (
                format!("v=0\r\n{O}\r\na=rtpmap:0 PCMU/8000/1/2"),
                line(3, LineError::Attribute("rtpmap")),
            ),
            (
                format!("v=0\r\n{O}\r\na=rtpmap"),
                line(3, LineError::Attribute("rtpmap")),
            ),
            (
                format!("v=0\r\n{O}\r\na=fmtp"),
                line(3, LineError::Attribute("fmtp")),
            ),
            (
                format!("v=0\r\n{O}\r\na=ptime:abc"),
                line(3, LineError::Attribute("ptime")),
            ),
            (
                format!("v=0\r\n{O}\r\na=maxptime:-1"),
                line(3, LineError::Attribute("maxptime")),
            ),
            (
                format!("v=0\r\n{O}\r\na=:x"),
                line(3, LineError::Attribute("(unnamed)")),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(SessionDescription::parse(&text), Err(expected), "{text:?}");
        }
        assert_eq!(
            SessionDescription::parse_bytes(b"v=0\r\n\xff"),
            Err(SdpError::NotUtf8)
        );
        let message = SessionDescription::parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=bad")
            .unwrap_err()
            .to_string();
        assert_eq!(message, "SDP line 3: malformed connection (c=)");
    }

    #[test]
    fn codec_choice_follows_offerer_order() {
        use CodecKind::*;
        let all = vec![Pcmu, Pcma, Opus];
        let opus = "a=rtpmap:111 opus/48000/2";
        // (formats, extra lines, our codecs, expected (codec, pt, channels))
        type Case<'a> = (
            &'a str,
            Vec<&'a str>,
            Vec<CodecKind>,
            Option<(CodecKind, u8, u8)>,
        );
        let cases: Vec<Case<'_>> = vec![
            ("0", vec![], all.clone(), Some((Pcmu, 0, 1))),
            ("8 0", vec![], all.clone(), Some((Pcma, 8, 1))),
            ("0 8", vec![], all.clone(), Some((Pcmu, 0, 1))),
            ("0 8", vec![], vec![Pcma, Pcmu], Some((Pcmu, 0, 1))),
            ("0 8", vec![], vec![Pcma], Some((Pcma, 8, 1))),
            (
                "18 8",
                vec!["a=rtpmap:18 G729/8000"],
                all.clone(),
                Some((Pcma, 8, 1)),
            ),
            ("111 0", vec![opus], all.clone(), Some((Opus, 111, 2))),
            ("111 0", vec![opus], vec![Pcmu, Pcma], Some((Pcmu, 0, 1))),
            (
                "96",
                vec!["a=rtpmap:96 OPUS/48000/2"],
                all.clone(),
                Some((Opus, 96, 2)),
            ),
            (
                "97",
                vec!["a=rtpmap:97 pcmu/8000"],
                all.clone(),
                Some((Pcmu, 97, 1)),
            ),
            (
                "97",
                vec!["a=rtpmap:97 PCMA/8000/1"],
                all.clone(),
                Some((Pcma, 97, 1)),
            ),
            // Wrong clock rate or channel count is not our codec.
            (
                "97 8",
                vec!["a=rtpmap:97 PCMU/16000"],
                all.clone(),
                Some((Pcma, 8, 1)),
            ),
            (
                "97 8",
                vec!["a=rtpmap:97 PCMU/8000/2"],
                all.clone(),
                Some((Pcma, 8, 1)),
            ),
            (
                "111 0",
                vec!["a=rtpmap:111 opus/48000/1"],
                all.clone(),
                Some((Pcmu, 0, 1)),
            ),
            (
                "111 0",
                vec!["a=rtpmap:111 opus/48000"],
                all.clone(),
                Some((Pcmu, 0, 1)),
            ),
            // An rtpmap overrides the static table; a dynamic PT needs one.
            (
                "0 8",
                vec!["a=rtpmap:0 G722/8000"],
                all.clone(),
                Some((Pcma, 8, 1)),
            ),
            ("111 8", vec![], all.clone(), Some((Pcma, 8, 1))),
            // An rtpmap for a PT that is not in the m= line is ignored.
            ("8", vec![opus], all.clone(), Some((Pcma, 8, 1))),
            ("18 3", vec!["a=rtpmap:18 G729/8000"], all.clone(), None),
            ("0 8", vec![], vec![Opus], None),
            ("0", vec![], vec![], None),
        ];
        for (formats, lines, codecs, expected) in cases {
            let offer = audio_offer(formats, &lines);
            let local = LocalMedia {
                codecs: codecs.clone(),
                ..local()
            };
            let got = answer(&offer, &local).map(|(sdp, n)| {
                assert_eq!(sdp.media[0].formats, [n.payload_type.to_string()]);
                (n.codec, n.payload_type, n.channels)
            });
            match expected {
                Some(expected) => assert_eq!(got, Ok(expected), "{formats} {lines:?} {codecs:?}"),
                None => assert_eq!(
                    got,
                    Err(NegotiationError::NoCommonCodec),
                    "{formats} {lines:?} {codecs:?}"
                ),
            }
        }
    }

    #[test]
    fn sample_offers_negotiate() {
        use CodecKind::*;
        let cases = [
            (SIPP, Pcmu, 0, None, "127.0.0.1:6000"),
            (BARESIP, Opus, 96, Some(101), "192.168.1.20:10036"),
            (ASTERISK, Pcmu, 0, Some(101), "10.0.0.5:18250"),
            (CARRIER, Pcma, 8, Some(101), "203.0.113.20:32000"),
            (WEBRTC_OPUS, Opus, 111, Some(110), "198.51.100.7:9"),
        ];
        for (text, codec, pt, te, remote) in cases {
            let (_, n) = answer(&parse(text), &local()).unwrap();
            assert_eq!(
                (n.codec, n.payload_type, n.telephone_event, n.remote_rtp),
                (codec, pt, te, Some(remote.parse().unwrap())),
                "{text}"
            );
        }
    }

    #[test]
    fn answer_contents() {
        let (sdp, n) = answer(&parse(ASTERISK), &local()).unwrap();
        let expected = "v=0\r\n\
o=- 42 0 IN IP4 192.0.2.10\r\n\
s=Echo\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";
        assert_eq!(sdp.to_string(), expected);
        assert_eq!(
            n,
            NegotiatedMedia {
                remote_rtp: Some("10.0.0.5:18250".parse().unwrap()),
                codec: CodecKind::Pcmu,
                payload_type: 0,
                channels: 1,
                telephone_event: Some(101),
                ptime_ms: 20,
                remote_direction: Direction::SendRecv,
                local_direction: Direction::SendRecv,
            }
        );
    }

    #[test]
    fn opus_answer_keeps_sensible_fmtp() {
        let (sdp, _) = answer(&parse(WEBRTC_OPUS), &local()).unwrap();
        let m = &sdp.media[0];
        assert_eq!(m.formats, ["111", "110"]);
        assert_eq!(m.rtpmap(111).unwrap().channels, Some(2));
        assert_eq!(m.fmtp(111), Some("minptime=10;useinbandfec=1"));
        assert_eq!(m.rtpmap(110).unwrap().clock_rate, 48000);
        assert_eq!(m.fmtp(110), None);

        let (sdp, _) = answer(&parse(BARESIP), &local()).unwrap();
        assert_eq!(sdp.media[0].fmtp(96), Some("useinbandfec=1"));

        let only_stereo = audio_offer("111", &["a=rtpmap:111 opus/48000/2", "a=fmtp:111 stereo=1"]);
        let (sdp, _) = answer(&only_stereo, &local()).unwrap();
        assert_eq!(sdp.media[0].fmtp(111), None);
    }

    #[test]
    fn telephone_event_matches_codec_clock() {
        let opus = "a=rtpmap:111 opus/48000/2";
        let te8 = "a=rtpmap:101 telephone-event/8000";
        let te48 = "a=rtpmap:110 telephone-event/48000";
        // (formats, lines, expected te PT, expected fmtp in answer)
        type Case<'a> = (&'a str, Vec<&'a str>, Option<u8>, Option<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            ("0", vec![], None, None),
            ("0 101", vec![te8], Some(101), None),
            (
                "0 101",
                vec![te8, "a=fmtp:101 0-15"],
                Some(101),
                Some("0-15"),
            ),
            ("0 110", vec![te48], None, None),
            ("0 110 101", vec![te48, te8], Some(101), None),
            ("111 101 110", vec![opus, te8, te48], Some(110), None),
            (
                "111 101",
                vec![opus, te8, "a=fmtp:101 0-16"],
                Some(101),
                Some("0-16"),
            ),
            ("111", vec![opus, te8], None, None),
            (
                "0 96",
                vec!["a=rtpmap:96 TELEPHONE-EVENT/8000"],
                Some(96),
                None,
            ),
        ];
        for (formats, lines, te, fmtp) in cases {
            let (sdp, n) = answer(&audio_offer(formats, &lines), &local()).unwrap();
            assert_eq!(n.telephone_event, te, "{formats} {lines:?}");
            let m = &sdp.media[0];
            assert_eq!(m.formats.len(), 1 + usize::from(te.is_some()));
            if let Some(pt) = te {
                assert_eq!(m.formats[1], pt.to_string());
                let map = m.rtpmap(pt).unwrap();
                assert_eq!(map.encoding_name, "telephone-event");
                assert_eq!(m.fmtp(pt), fmtp);
            }
        }
    }

    #[test]
    fn ptime_is_echoed_when_offered() {
        let cases: [(&[&str], Option<u32>, u32); 3] = [
            (&[], None, 20),
            (&["a=ptime:30"], Some(30), 30),
            (&["a=maxptime:40"], None, 20),
        ];
        for (lines, echoed, ptime_ms) in cases {
            let (sdp, n) = answer(&audio_offer("8", lines), &local()).unwrap();
            assert_eq!(sdp.media[0].ptime(), echoed, "{lines:?}");
            assert_eq!(n.ptime_ms, ptime_ms, "{lines:?}");
        }
    }

    #[test]
    fn direction_and_hold() {
        use Direction::*;
        // (offered attribute, c= address, our hold, remote, local)
        let cases = [
            (None, "198.51.100.1", false, SendRecv, SendRecv),
            (Some("sendrecv"), "198.51.100.1", false, SendRecv, SendRecv),
            (Some("sendonly"), "198.51.100.1", false, SendOnly, RecvOnly),
            (Some("recvonly"), "198.51.100.1", false, RecvOnly, SendOnly),
            (Some("inactive"), "198.51.100.1", false, Inactive, Inactive),
            (Some("sendrecv"), "198.51.100.1", true, SendRecv, SendOnly),
            (Some("sendonly"), "198.51.100.1", true, SendOnly, Inactive),
            (Some("recvonly"), "198.51.100.1", true, RecvOnly, SendOnly),
            (Some("inactive"), "198.51.100.1", true, Inactive, Inactive),
            // RFC 2543 hold.
            (None, "0.0.0.0", false, SendOnly, RecvOnly),
            (Some("sendonly"), "0.0.0.0", false, SendOnly, RecvOnly),
            (Some("recvonly"), "0.0.0.0", false, Inactive, Inactive),
            (None, "0.0.0.0", true, SendOnly, Inactive),
        ];
        for (attribute, addr, hold, remote, local_direction) in cases {
            let mut text = format!(
                "v=0\r\no=- 1 2 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n\
                 m=audio 5004 RTP/AVP 0\r\n"
            );
            if let Some(attribute) = attribute {
                text.push_str(&format!("a={attribute}\r\n"));
            }
            let local = LocalMedia { hold, ..local() };
            let (sdp, n) = answer(&parse(&text), &local).unwrap();
            let label = format!("{attribute:?} {addr} hold={hold}");
            assert_eq!(n.remote_direction, remote, "{label}");
            assert_eq!(n.local_direction, local_direction, "{label}");
            assert_eq!(sdp.media[0].direction(), Some(local_direction), "{label}");
            let expected_rtp = (addr != "0.0.0.0").then(|| "198.51.100.1:5004".parse().unwrap());
            assert_eq!(n.remote_rtp, expected_rtp, "{label}");
            // Our address stays real even when we hold.
            assert_eq!(sdp.connection, Some(local.addr.ip()));
        }
    }

    #[test]
    fn session_level_direction_and_media_level_override() {
        let offer = parse(
            "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
             a=sendonly\r\nm=audio 5004 RTP/AVP 0\r\n",
        );
        assert_eq!(
            answer(&offer, &local()).unwrap().1.remote_direction,
            Direction::SendOnly
        );
        let offer = parse(
            "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
             a=sendonly\r\nm=audio 5004 RTP/AVP 0\r\na=inactive\r\n",
        );
        assert_eq!(
            answer(&offer, &local()).unwrap().1.remote_direction,
            Direction::Inactive
        );
    }

    #[test]
    fn hold_then_resume_and_new_address() {
        let mut local = local();
        let first = audio_offer("0", &["a=sendrecv"]);
        let (a1, n1) = answer(&first, &local).unwrap();
        assert_eq!(n1.local_direction, Direction::SendRecv);

        // Peer holds with sendonly; the caller bumps our version.
        local.session_version += 1;
        let hold = audio_offer("0", &["a=sendonly"]);
        let (a2, n2) = answer(&hold, &local).unwrap();
        assert_eq!(n2.local_direction, Direction::RecvOnly);
        assert_eq!(a2.origin.session_version, a1.origin.session_version + 1);
        assert_eq!(a2.origin.session_id, a1.origin.session_id);

        // Peer resumes from a new address and port.
        local.session_version += 1;
        let resume = parse(
            "v=0\r\no=- 1 3 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\n\
             m=audio 7078 RTP/AVP 0\r\na=sendrecv\r\n",
        );
        let (a3, n3) = answer(&resume, &local).unwrap();
        assert_eq!(n3.local_direction, Direction::SendRecv);
        assert_eq!(n3.remote_rtp, Some("203.0.113.9:7078".parse().unwrap()));
        assert_eq!(a3.origin.session_version, 2);
    }

    #[test]
    fn media_level_connection_overrides_session() {
        let offer = audio_offer("0", &["c=IN IP6 2001:db8::5"]);
        let (_, n) = answer(&offer, &local()).unwrap();
        assert_eq!(n.remote_rtp, Some("[2001:db8::5]:5004".parse().unwrap()));
    }

    #[test]
    fn multiple_streams() {
        const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\n\
                            c=IN IP4 198.51.100.1\r\nt=0 0\r\n";
        let video = "m=video 5006 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
        let audio = "m=audio 5004 RTP/AVP 0\r\n";
        let g729 = "m=audio 5008 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
        let disabled = "m=audio 0 RTP/AVP 0\r\n";
        let srtp = "m=audio 5010 RTP/SAVP 0\r\n";
        let avpf = "m=audio 5012 RTP/AVPF 8\r\n";
        // (m= sections, Ok((chosen remote port, ports in answer)) or error)
        type Case<'a> = (Vec<&'a str>, Result<(u16, Vec<u16>), NegotiationError>);
        let cases: Vec<Case<'_>> = vec![
            (vec![video, audio], Ok((5004, vec![0, 40000]))),
            (vec![audio, video], Ok((5004, vec![40000, 0]))),
            (vec![g729, audio], Ok((5004, vec![0, 40000]))),
            (vec![disabled, audio], Ok((5004, vec![0, 40000]))),
            (vec![audio, avpf], Ok((5004, vec![40000, 0]))),
            (vec![srtp, avpf], Ok((5012, vec![0, 40000]))),
            (vec![video], Err(NegotiationError::NoAudio)),
            (vec![], Err(NegotiationError::NoAudio)),
            (vec![disabled], Err(NegotiationError::NoAudio)),
            (vec![g729, video], Err(NegotiationError::NoCommonCodec)),
            (vec![srtp], Err(NegotiationError::NoCommonCodec)),
        ];
        for (sections, expected) in cases {
            let offer = parse(&format!("{HEAD}{}", sections.concat()));
            let got = answer(&offer, &local()).map(|(sdp, n)| {
                assert_eq!(sdp.media.len(), offer.media.len());
                for (ours, theirs) in sdp.media.iter().zip(&offer.media) {
                    assert_eq!(ours.kind, theirs.kind);
                    assert_eq!(ours.protocol, theirs.protocol);
                    if ours.port == 0 {
                        assert_eq!(ours.formats, theirs.formats);
                        assert!(ours.attributes.is_empty());
                    }
                }
                (
                    n.remote_rtp.unwrap().port(),
                    sdp.media.iter().map(|m| m.port).collect(),
                )
            });
            assert_eq!(got, expected, "{sections:?}");
        }
    }

    #[test]
    fn missing_connection_is_invalid() {
        let offer = parse("v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\nm=audio 5004 RTP/AVP 0\r\n");
        assert_eq!(
            answer(&offer, &local()),
            Err(InvalidMedia::MissingConnection { index: 0 }.into())
        );
    }

    #[test]
    fn our_offer() {
        let sdp = offer(&local());
        let expected = "v=0\r\n\
o=- 42 0 IN IP4 192.0.2.10\r\n\
s=Echo\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 111 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 useinbandfec=1\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";
        assert_eq!(sdp.to_string(), expected);

        let held = offer(&LocalMedia {
            hold: true,
            codecs: vec![CodecKind::Opus, CodecKind::Pcma],
            ..local()
        });
        let m = &held.media[0];
        assert_eq!(m.formats, ["111", "8", "101"]);
        assert_eq!(m.direction(), Some(Direction::SendOnly));
    }

    #[test]
    fn late_offer_round_trip() {
        use CodecKind::*;
        let peer_addr: SocketAddr = "203.0.113.5:30000".parse().unwrap();
        // (our codecs, peer codecs, expected codec, pt, channels)
        let cases = [
            (vec![Pcmu, Pcma, Opus], vec![Pcmu, Pcma, Opus], Pcmu, 0, 1),
            (vec![Opus, Pcma], vec![Pcmu, Pcma, Opus], Opus, 111, 2),
            (vec![Pcmu, Pcma], vec![Pcma], Pcma, 8, 1),
        ];
        for (ours, theirs, codec, pt, channels) in cases {
            let us = LocalMedia {
                codecs: ours,
                ..local()
            };
            let our_offer = offer(&us);
            let peer = LocalMedia {
                codecs: theirs,
                ..LocalMedia::new(peer_addr, 7)
            };
            let (their_answer, their_view) = answer(&parse(&our_offer.to_string()), &peer).unwrap();
            let ours = accept_answer(&our_offer, &parse(&their_answer.to_string())).unwrap();
            assert_eq!(
                ours,
                NegotiatedMedia {
                    remote_rtp: Some(peer_addr),
                    codec,
                    payload_type: pt,
                    channels,
                    telephone_event: Some(101),
                    ptime_ms: 20,
                    remote_direction: Direction::SendRecv,
                    local_direction: Direction::SendRecv,
                }
            );
            assert_eq!(their_view.remote_rtp, Some(us.addr));
            assert_eq!((their_view.codec, their_view.payload_type), (codec, pt));
        }
    }

    #[test]
    fn accept_answer_rules() {
        use Direction::*;
        let our_offer = offer(&local());
        let held_offer = offer(&LocalMedia {
            hold: true,
            ..local()
        });
        let head = "v=0\r\no=- 9 9 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n";
        // (our offer, answer m= section, expected)
        type Expected = Result<(CodecKind, u8, Option<u8>, Direction, Direction), NegotiationError>;
        let cases: Vec<(&SessionDescription, &str, Expected)> = vec![
            (
                &our_offer,
                "m=audio 30000 RTP/AVP 8\r\n",
                Ok((CodecKind::Pcma, 8, None, SendRecv, SendRecv)),
            ),
            // PT 111 without rtpmap in the answer: our offer's mapping applies.
            (
                &our_offer,
                "m=audio 30000 RTP/AVP 111 101\r\na=ptime:40\r\n",
                Ok((CodecKind::Opus, 111, Some(101), SendRecv, SendRecv)),
            ),
            (
                &our_offer,
                "m=audio 30000 RTP/AVP 0\r\na=recvonly\r\n",
                Ok((CodecKind::Pcmu, 0, None, RecvOnly, SendOnly)),
            ),
            (
                &held_offer,
                "m=audio 30000 RTP/AVP 0\r\na=recvonly\r\n",
                Ok((CodecKind::Pcmu, 0, None, RecvOnly, SendOnly)),
            ),
            (
                &held_offer,
                "m=audio 30000 RTP/AVP 0\r\na=inactive\r\n",
                Ok((CodecKind::Pcmu, 0, None, Inactive, Inactive)),
            ),
            (
                &our_offer,
                "m=audio 0 RTP/AVP 0\r\n",
                Err(NegotiationError::NoCommonCodec),
            ),
            (
                &our_offer,
                "m=audio 30000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",
                Err(InvalidMedia::UnofferedCodec { index: 0 }.into()),
            ),
            (
                &our_offer,
                "m=video 30000 RTP/AVP 96\r\n",
                Err(InvalidMedia::MediaKindMismatch { index: 0 }.into()),
            ),
            (
                &our_offer,
                "m=audio 30000 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n",
                Err(InvalidMedia::MediaCountMismatch {
                    offered: 1,
                    answered: 2,
                }
                .into()),
            ),
        ];
        for (ours, section, expected) in cases {
            let theirs = parse(&format!("{head}{section}"));
            let got = accept_answer(ours, &theirs).map(|n| {
                (
                    n.codec,
                    n.payload_type,
                    n.telephone_event,
                    n.remote_direction,
                    n.local_direction,
                )
            });
            assert_eq!(got, expected, "{section}");
        }
        let ptime = parse(&format!(
            "{head}m=audio 30000 RTP/AVP 111\r\na=ptime:40\r\n"
        ));
        assert_eq!(accept_answer(&our_offer, &ptime).unwrap().ptime_ms, 40);
        let held_answer = parse(
            "v=0\r\no=- 9 9 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
             m=audio 30000 RTP/AVP 0\r\n",
        );
        let n = accept_answer(&our_offer, &held_answer).unwrap();
        assert_eq!((n.remote_rtp, n.remote_direction), (None, SendOnly));
    }

    #[test]
    fn direction_helpers() {
        use Direction::*;
        for (d, sends, receives, reversed) in [
            (SendRecv, true, true, SendRecv),
            (SendOnly, true, false, RecvOnly),
            (RecvOnly, false, true, SendOnly),
            (Inactive, false, false, Inactive),
        ] {
            assert_eq!(
                (d.sends(), d.receives(), d.reversed()),
                (sends, receives, reversed)
            );
        }
    }
}
