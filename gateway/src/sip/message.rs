//! SIP messages on top of `rsip`: parsing with the checks rsip leaves to us
//! (Content-Length, compact header names, methods it does not know), the
//! header fields a transaction and a dialog need, and responses built from a
//! request as RFC 3261 §8.2.6 says.

use std::net::{IpAddr, SocketAddr};

use rsip::headers::{Header, UntypedHeader};
use rsip::{Request, Response, SipMessage};

/// Why a datagram or stream frame is not a SIP message we can act on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    /// No blank line ends the header section.
    #[error("no end of headers")]
    NoHeaderEnd,
    /// The Content-Length header is not a number.
    #[error("bad Content-Length")]
    BadContentLength,
    /// The body is shorter than Content-Length says.
    #[error("body shorter than Content-Length ({declared} declared, {actual} received)")]
    TruncatedBody {
        /// What Content-Length said.
        declared: usize,
        /// What arrived.
        actual: usize,
    },
    /// rsip could not parse the message.
    #[error("unparseable message: {0}")]
    Syntax(String),
}

/// A request whose method rsip does not know is parsed with this stand-in
/// method, and the real name kept, so that we can still answer 405.
const STAND_IN_METHOD: &str = "INFO";

/// A parsed message plus what parsing had to work around.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The message.
    pub message: SipMessage,
    /// For a request with a method rsip does not know: its real name. The
    /// message then carries a stand-in method and must only be answered 405.
    pub unknown_method: Option<String>,
}

/// Length of a complete message at the start of a TCP stream buffer: the
/// header section plus Content-Length bytes of body (RFC 3261 §18.3).
/// `Ok(None)` means more bytes are needed. Leading CRLFs (keep-alives) are
/// counted as part of the frame and tolerated by [`parse`].
pub fn frame_length(buf: &[u8]) -> Result<Option<usize>, MessageError> {
    let Some(head_end) = find_subslice(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = &buf[..head_end];
    let declared = content_length(head)?.unwrap_or(0);
    let total = head_end + 4 + declared;
    Ok((buf.len() >= total).then_some(total))
}

/// Parses one datagram (or one TCP frame) into a SIP message.
pub fn parse(bytes: &[u8]) -> Result<Parsed, MessageError> {
    let bytes = trim_leading_crlf(bytes);
    let (head_end, sep) = match find_subslice(bytes, b"\r\n\r\n") {
        Some(i) => (i, 4),
        None => (
            find_subslice(bytes, b"\n\n").ok_or(MessageError::NoHeaderEnd)?,
            2,
        ),
    };
    let head = &bytes[..head_end];
    let body = &bytes[head_end + sep..];
    let body_len = match content_length(head)? {
        Some(declared) if declared > body.len() => {
            return Err(MessageError::TruncatedBody {
                declared,
                actual: body.len(),
            })
        }
        Some(declared) => declared,
        None => body.len(),
    };

    let mut text = String::from_utf8_lossy(head).into_owned();
    let mut unknown_method = None;
    if let Some((method, _)) = text.split_once(' ') {
        let is_request = !method.starts_with("SIP/");
        if is_request && method.parse::<rsip::Method>().is_err() && is_token(method) {
            unknown_method = Some(method.to_owned());
            text.replace_range(..method.len(), STAND_IN_METHOD);
        }
    }
    let mut raw = text.into_bytes();
    raw.extend_from_slice(b"\r\n\r\n");
    raw.extend_from_slice(&body[..body_len]);

    let mut message =
        SipMessage::try_from(raw.as_slice()).map_err(|e| MessageError::Syntax(e.to_string()))?;
    expand_compact_headers(headers_mut(&mut message));
    Ok(Parsed {
        message,
        unknown_method,
    })
}

fn trim_leading_crlf(mut bytes: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Reads Content-Length (or its compact form `l`) from a header section.
fn content_length(head: &[u8]) -> Result<Option<usize>, MessageError> {
    for line in head.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            return value
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| MessageError::BadContentLength);
        }
    }
    Ok(None)
}

fn headers_mut(message: &mut SipMessage) -> &mut rsip::Headers {
    match message {
        SipMessage::Request(r) => &mut r.headers,
        SipMessage::Response(r) => &mut r.headers,
    }
}

/// RFC 3261 §7.3.3 compact forms, which rsip leaves as `Header::Other`.
fn expand_compact_headers(headers: &mut rsip::Headers) {
    for header in headers.iter_mut() {
        let Header::Other(name, value) = header else {
            continue;
        };
        let value = value.clone();
        let expanded = match name.to_ascii_lowercase().as_str() {
            "v" => Header::Via(value.into()),
            "f" => Header::From(value.into()),
            "t" => Header::To(value.into()),
            "i" => Header::CallId(value.into()),
            "m" => Header::Contact(value.into()),
            "l" => Header::ContentLength(value.into()),
            "c" => Header::ContentType(value.into()),
            "k" => Header::Supported(value.into()),
            "s" => Header::Subject(value.into()),
            "e" => Header::ContentEncoding(value.into()),
            _ => continue,
        };
        *header = expanded;
    }
}

/// Splits a header value on commas that are not inside quotes or angle
/// brackets (several Via, Route or Record-Route values may share a line).
pub fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth_angle, mut quoted, mut start) = (0u32, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth_angle += 1,
            '>' if !quoted => depth_angle = depth_angle.saturating_sub(1),
            ',' if !quoted && depth_angle == 0 => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// The value of `;name=value` (or `Some("")` for a bare `;name`) among the
/// parameters after the URI or sent-by of a header value.
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (key, val) = p.split_once('=').unwrap_or((p, ""));
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().trim_matches('"'))
    })
}

/// The URI inside a name-addr (`"Bob" <sip:bob@host>;tag=1`) or addr-spec.
pub fn addr_uri(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// The fields of the top Via that transactions and responses need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopVia {
    /// `SIP/2.0/UDP` etc.: the transport name.
    pub transport: String,
    /// host[:port] as written.
    pub sent_by: String,
    /// The branch parameter, if any.
    pub branch: Option<String>,
    /// Whether `rport` was asked for (RFC 3581).
    pub rport: bool,
}

impl TopVia {
    /// Reads the top Via of a message.
    pub fn of(message: &impl rsip::message::HasHeaders) -> Option<TopVia> {
        let value = message.headers().iter().find_map(|h| match h {
            Header::Via(v) => Some(v.value().to_owned()),
            _ => None,
        })?;
        let first = split_list(&value).first()?.to_string();
        let (proto, rest) = first.split_once(char::is_whitespace)?;
        let transport = proto.rsplit('/').next()?.trim().to_ascii_uppercase();
        let sent_by = rest.trim().split(';').next()?.trim().to_owned();
        if sent_by.is_empty() {
            return None;
        }
        Some(TopVia {
            transport,
            sent_by,
            branch: header_param(&first, "branch").map(str::to_owned),
            rport: header_param(&first, "rport").is_some(),
        })
    }
}

/// The first header of a kind as text.
pub fn header_value<'a>(
    message: &'a impl rsip::message::HasHeaders,
    name: &str,
) -> Option<&'a str> {
    message.headers().iter().find_map(|h| named_value(h, name))
}

/// All values of a header kind, comma lists split.
pub fn header_values<'a>(message: &'a impl rsip::message::HasHeaders, name: &str) -> Vec<&'a str> {
    message
        .headers()
        .iter()
        .filter_map(|h| named_value(h, name))
        .flat_map(split_list)
        .collect()
}

fn named_value<'a>(header: &'a Header, name: &str) -> Option<&'a str> {
    let (n, v): (&str, &str) = match header {
        Header::Via(h) => ("via", h.value()),
        Header::From(h) => ("from", h.value()),
        Header::To(h) => ("to", h.value()),
        Header::CallId(h) => ("call-id", h.value()),
        Header::CSeq(h) => ("cseq", h.value()),
        Header::Contact(h) => ("contact", h.value()),
        Header::MaxForwards(h) => ("max-forwards", h.value()),
        Header::ContentType(h) => ("content-type", h.value()),
        Header::ContentEncoding(h) => ("content-encoding", h.value()),
        Header::Require(h) => ("require", h.value()),
        Header::ProxyRequire(h) => ("proxy-require", h.value()),
        Header::RecordRoute(h) => ("record-route", h.value()),
        Header::Route(h) => ("route", h.value()),
        Header::Authorization(h) => ("authorization", h.value()),
        Header::ProxyAuthorization(h) => ("proxy-authorization", h.value()),
        Header::Supported(h) => ("supported", h.value()),
        Header::Other(n, v) => (n.as_str(), v.as_str()),
        _ => return None,
    };
    n.eq_ignore_ascii_case(name).then_some(v)
}

/// CSeq number and method.
pub fn cseq(message: &impl rsip::message::HasHeaders) -> Option<(u32, String)> {
    let value = header_value(message, "cseq")?;
    let mut it = value.split_whitespace();
    let number = it.next()?.parse().ok()?;
    let method = it.next()?.to_ascii_uppercase();
    Some((number, method))
}

/// The `tag` parameter of a From or To value.
pub fn tag(value: &str) -> Option<&str> {
    header_param(value, "tag").filter(|t| !t.is_empty())
}

/// host and port of a `sip:` URI (port defaulted to 5060), when the host
/// is an IP literal: Echo does no DNS inside the core.
pub fn uri_socket_addr(uri: &str) -> Option<SocketAddr> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let hostport = rest.rsplit('@').next()?;
    let hostport = hostport.split([';', '?']).next()?;
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let ip: IpAddr = host.parse().ok()?;
        let port = after
            .strip_prefix(':')
            .map_or(Some(5060), |p| p.parse().ok())?;
        return Some(SocketAddr::new(ip, port));
    }
    let (host, port) = match hostport.split_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, 5060),
    };
    Some(SocketAddr::new(host.parse().ok()?, port))
}

/// The user part of a `sip:` request URI (`sip:echo@host` → `echo`).
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let (user, _) = rest.split_once('@')?;
    Some(user.split([';', ':']).next().unwrap_or(user))
}

/// Builds a response to `request` (RFC 3261 §8.2.6.2): Via (all of them, the
/// top one completed with `received`/`rport` per RFC 3581), From, To (with
/// `to_tag` added when it has none), Call-ID, CSeq; no body.
pub fn response_to(
    request: &Request,
    code: u16,
    to_tag: Option<&str>,
    source: SocketAddr,
) -> Response {
    let mut headers = rsip::Headers::default();
    let mut first_via = true;
    for header in request.headers.iter() {
        match header {
            Header::Via(via) if first_via => {
                first_via = false;
                headers.push(Header::Via(stamp_via(via.value(), source).into()));
            }
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(header.clone())
            }
            Header::To(to) => {
                let value = to.value();
                let value = match to_tag {
                    Some(t) if tag(value).is_none() => format!("{value};tag={t}"),
                    _ => value.to_owned(),
                };
                headers.push(Header::To(value.into()));
            }
            _ => {}
        }
    }
    Response {
        status_code: rsip::StatusCode::Other(code, reason_phrase(code).to_owned()),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// The reason phrase RFC 3261 §21 (and RFC 3329, 4412, 6665) gives a code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => match code / 100 {
            1 => "Session Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// Adds `received` and fills `rport` in the first value of a Via header.
fn stamp_via(value: &str, source: SocketAddr) -> String {
    let parts = split_list(value);
    let Some(first) = parts.first() else {
        return value.to_owned();
    };
    let mut stamped = String::with_capacity(first.len() + 40);
    let mut has_received = false;
    for (i, piece) in first.split(';').enumerate() {
        if i > 0 {
            stamped.push(';');
        }
        let key = piece.split('=').next().unwrap_or("").trim();
        if i > 0 && key.eq_ignore_ascii_case("rport") {
            stamped.push_str(&format!("rport={}", source.port()));
        } else {
            has_received |= i > 0 && key.eq_ignore_ascii_case("received");
            stamped.push_str(piece);
        }
    }
    if !has_received {
        stamped.push_str(&format!(";received={}", source.ip()));
    }
    let mut out = stamped;
    for rest in &parts[1..] {
        out.push_str(", ");
        out.push_str(rest);
    }
    out
}

/// Where a response to a request goes (RFC 3261 §18.2.2, RFC 3581 §4): the
/// source IP, and the source port when `rport` was asked for or the
/// transport is a connection, otherwise the sent-by port.
pub fn response_destination(via: &TopVia, source: SocketAddr, reliable: bool) -> SocketAddr {
    if via.rport || reliable {
        return source;
    }
    let port = via
        .sent_by
        .rsplit_once(':')
        .filter(|(host, _)| !host.ends_with(']') || via.sent_by.starts_with('['))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(5060);
    SocketAddr::new(source.ip(), port)
}

/// Serialises a message with a correct Content-Length.
pub fn to_bytes(message: impl Into<SipMessage>) -> Vec<u8> {
    let mut message = message.into();
    let len = message.body().len();
    headers_mut(&mut message).unique_push(Header::ContentLength(len.to_string().into()));
    message.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:echo@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKold\r\n\
Max-Forwards: 70\r\n\
To: <sip:echo@127.0.0.1>\r\n\
From: \"Alice\" <sip:alice@10.0.0.1>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@10.0.0.1:5062>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

    fn request(text: &str) -> Request {
        match parse(text.as_bytes()).unwrap().message {
            SipMessage::Request(r) => r,
            _ => panic!("not a request"),
        }
    }

    #[test]
    fn parses_fields_of_an_invite() {
        let req = request(INVITE);
        let via = TopVia::of(&req).unwrap();
        assert_eq!(via.transport, "UDP");
        assert_eq!(via.sent_by, "10.0.0.1:5062");
        assert_eq!(via.branch.as_deref(), Some("z9hG4bK776asdhds"));
        assert!(via.rport);
        assert_eq!(cseq(&req), Some((314159, "INVITE".into())));
        assert_eq!(tag(header_value(&req, "from").unwrap()), Some("1928301774"));
        assert_eq!(tag(header_value(&req, "to").unwrap()), None);
        assert_eq!(uri_user(&req.uri.to_string()), Some("echo"));
        assert_eq!(req.body, b"v=0\n");
    }

    #[test]
    fn content_length_is_enforced() {
        let short = INVITE.replace("Content-Length: 4", "Content-Length: 40");
        assert!(matches!(
            parse(short.as_bytes()),
            Err(MessageError::TruncatedBody { declared: 40, .. })
        ));
        let extra = format!("{INVITE}garbage");
        assert_eq!(request(&extra).body, b"v=0\n");
        let bad = INVITE.replace("Content-Length: 4", "Content-Length: four");
        assert_eq!(
            parse(bad.as_bytes()).unwrap_err(),
            MessageError::BadContentLength
        );
    }

    #[test]
    fn compact_headers_are_expanded() {
        let compact = "OPTIONS sip:echo@h SIP/2.0\r\nv: SIP/2.0/TCP h:5;branch=z9hG4bK1\r\n\
f: <sip:a@h>;tag=x\r\nt: <sip:b@h>\r\ni: abc\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n";
        let req = request(compact);
        assert_eq!(header_value(&req, "call-id"), Some("abc"));
        assert_eq!(TopVia::of(&req).unwrap().transport, "TCP");
        assert_eq!(tag(header_value(&req, "from").unwrap()), Some("x"));
    }

    #[test]
    fn unknown_method_is_kept_by_name() {
        let parsed = parse(INVITE.replace("INVITE sip", "FROBNICATE sip").as_bytes()).unwrap();
        assert_eq!(parsed.unknown_method.as_deref(), Some("FROBNICATE"));
    }

    #[test]
    fn tcp_framing_waits_for_the_whole_body() {
        let bytes = INVITE.as_bytes();
        assert_eq!(frame_length(&bytes[..50]).unwrap(), None);
        assert_eq!(frame_length(&bytes[..bytes.len() - 1]).unwrap(), None);
        assert_eq!(frame_length(bytes).unwrap(), Some(bytes.len()));
        let two = [bytes, bytes].concat();
        assert_eq!(frame_length(&two).unwrap(), Some(bytes.len()));
    }

    #[test]
    fn response_copies_vias_and_stamps_rport() {
        let req = request(INVITE);
        let src: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let resp = response_to(&req, 180, Some("tt"), src);
        let text = String::from_utf8(to_bytes(resp)).unwrap();
        assert!(text.starts_with("SIP/2.0 180 Ringing\r\n"), "{text}");
        assert!(text.contains(
            "Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK776asdhds;rport=40000;received=192.0.2.7\r\n"
        ));
        assert!(text.contains("Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKold\r\n"));
        assert!(text.contains("To: <sip:echo@127.0.0.1>;tag=tt\r\n"));
        assert!(text.contains("Content-Length: 0\r\n"));
        // Round trip: the response parses again.
        assert!(parse(text.as_bytes()).is_ok());
        let via = TopVia::of(&req).unwrap();
        assert_eq!(response_destination(&via, src, false), src);
    }

    #[test]
    fn response_goes_to_sent_by_port_without_rport() {
        let via = TopVia {
            transport: "UDP".into(),
            sent_by: "10.0.0.1:5070".into(),
            branch: None,
            rport: false,
        };
        let src: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        assert_eq!(
            response_destination(&via, src, false),
            "10.0.0.1:5070".parse().unwrap()
        );
    }

    #[test]
    fn uri_helpers() {
        assert_eq!(
            uri_socket_addr("sip:bob@192.0.2.4:5070;transport=udp"),
            Some("192.0.2.4:5070".parse().unwrap())
        );
        assert_eq!(
            uri_socket_addr("sip:[::1]:5070"),
            Some("[::1]:5070".parse().unwrap())
        );
        assert_eq!(uri_socket_addr("sip:bob@example.com"), None);
        assert_eq!(addr_uri("\"B\" <sip:b@h;lr>;tag=1"), "sip:b@h;lr");
        assert_eq!(
            split_list("<sip:a@h;lr>, \"x,y\" <sip:b@h>"),
            vec!["<sip:a@h;lr>", "\"x,y\" <sip:b@h>"]
        );
    }

    #[test]
    fn garbage_does_not_parse() {
        for g in [
            &b"\x00\x01\x02"[..],
            b"INVITE\r\n\r\n",
            b"hello world\r\n\r\n",
        ] {
            assert!(parse(g).is_err(), "{g:?}");
        }
    }
}
