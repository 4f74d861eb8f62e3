//! A tiny hand-written SIP UAC and RTP peer over real sockets, just enough
//! for the tests: INVITE/ACK/BYE/OPTIONS over UDP with RFC 3261 timer-A
//! style retransmission, OPTIONS over TCP, RTP packets and G.711 μ-law.
//! Independent of the gateway's own SIP code on purpose.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static UNIQUE: AtomicU32 = AtomicU32::new(1);

/// A token unique in this process (and, with the pid, across processes).
pub fn unique(tag: &str) -> String {
    format!(
        "{tag}{}x{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

// ------------------------------------------------------------------ message

/// A parsed SIP message (request or response), leniently.
#[derive(Clone, Debug)]
pub struct Msg {
    /// Status code for responses, 0 for requests.
    pub code: u16,
    /// Method for requests, empty for responses.
    pub method: String,
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub raw: String,
}

fn compact(name: &str) -> &str {
    match name.to_ascii_lowercase().as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        _ => name,
    }
}

impl Msg {
    pub fn parse(data: &[u8]) -> Option<Msg> {
        let text = String::from_utf8_lossy(data).into_owned();
        let split = text.find("\r\n\r\n")?;
        let head = &text[..split];
        let mut lines = head.split("\r\n");
        let start_line = lines.next()?.to_string();
        let (code, method) = if let Some(rest) = start_line.strip_prefix("SIP/2.0 ") {
            (rest.get(..3)?.parse().ok()?, String::new())
        } else {
            (0, start_line.split(' ').next()?.to_string())
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            let (k, v) = line.split_once(':')?;
            headers.push((compact(k.trim()).to_ascii_lowercase(), v.trim().to_string()));
        }
        let body_start = split + 4;
        let body = data.get(body_start..).unwrap_or_default().to_vec();
        Some(Msg {
            code,
            method,
            start_line,
            headers,
            body,
            raw: text,
        })
    }

    /// First value of a header (case-insensitive, compact forms understood).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = compact(name).to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all_headers(&self, name: &str) -> Vec<&str> {
        let name = compact(name).to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// (number, method) of CSeq.
    pub fn cseq(&self) -> Option<(u32, String)> {
        let v = self.header("cseq")?;
        let mut it = v.split_whitespace();
        Some((it.next()?.parse().ok()?, it.next()?.to_string()))
    }

    /// `tag` parameter of the To header.
    pub fn to_tag(&self) -> Option<String> {
        tag_param(self.header("to")?)
    }

    /// The URI inside the Contact header.
    pub fn contact_uri(&self) -> Option<String> {
        let c = self.header("contact")?;
        Some(match (c.find('<'), c.find('>')) {
            (Some(a), Some(b)) if b > a => c[a + 1..b].to_string(),
            _ => c.split(';').next()?.trim().to_string(),
        })
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn tag_param(v: &str) -> Option<String> {
    // parameters after the closing '>' (or the whole value without one)
    let params = match v.rfind('>') {
        Some(i) => &v[i + 1..],
        None => v,
    };
    params.split(';').skip(1).find_map(|p| {
        let (k, val) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("tag")).then(|| val.trim().to_string())
    })
}

// ---------------------------------------------------------------------- SDP

/// The media address and payload types of the first audio m= line.
#[derive(Debug, Clone)]
pub struct SdpAudio {
    pub addr: SocketAddr,
    pub payload_types: Vec<u8>,
}

pub fn parse_sdp_audio(sdp: &str) -> Option<SdpAudio> {
    let mut session_c: Option<String> = None;
    let mut media_c: Option<String> = None;
    let mut port = None;
    let mut pts = Vec::new();
    let mut in_audio = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(c) = line.strip_prefix("c=") {
            let ip = c.split_whitespace().nth(2)?.split('/').next()?.to_string();
            if in_audio {
                media_c = Some(ip);
            } else if port.is_none() {
                session_c = Some(ip);
            }
        } else if let Some(m) = line.strip_prefix("m=") {
            if port.is_some() {
                in_audio = false;
                continue;
            }
            let mut it = m.split_whitespace();
            if it.next()? == "audio" {
                port = Some(it.next()?.parse::<u16>().ok()?);
                it.next()?; // proto
                pts = it.filter_map(|p| p.parse().ok()).collect();
                in_audio = true;
            }
        }
    }
    let ip = media_c.or(session_c)?;
    Some(SdpAudio {
        addr: format!("{ip}:{}", port?).parse().ok()?,
        payload_types: pts,
    })
}

/// An SDP offer for audio on `rtp`, with the given (pt, rtpmap) list.
pub fn sdp_offer(rtp: SocketAddr, formats: &[(u8, &str)]) -> String {
    let ip = rtp.ip();
    let pts: Vec<String> = formats.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut s = format!(
        "v=0\r\no=echo-test 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP {}\r\n",
        rtp.port(),
        pts.join(" ")
    );
    for (pt, map) in formats {
        s.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
        if map.starts_with("telephone-event") {
            s.push_str(&format!("a=fmtp:{pt} 0-15\r\n"));
        }
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    s
}

// ---------------------------------------------------------------------- UAC

/// A UAC over one UDP socket, talking to one gateway.
pub struct Uac {
    pub sock: UdpSocket,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Everything received that was not what a wait was looking for.
    pub stray: Vec<Msg>,
}

/// State of one INVITE-initiated dialog (or attempt).
#[derive(Clone, Debug)]
pub struct Call {
    pub call_id: String,
    pub from_tag: String,
    pub to_tag: Option<String>,
    pub user: String,
    pub cseq: u32,
    pub invite_branch: String,
    /// Remote target (Contact of the 2xx), used as Request-URI in-dialog.
    pub target: Option<String>,
    pub final_response: Option<Msg>,
    pub provisional: Vec<u16>,
}

impl Uac {
    pub fn new(remote: SocketAddr) -> Uac {
        Uac::bind("127.0.0.1:0", remote)
    }

    pub fn bind(local: &str, remote: SocketAddr) -> Uac {
        let sock = UdpSocket::bind(local).expect("bind uac socket");
        let local = sock.local_addr().unwrap();
        Uac {
            sock,
            local,
            remote,
            stray: Vec::new(),
        }
    }

    fn request_uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.remote)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        method: &str,
        ruri: &str,
        branch: &str,
        call: &Call,
        cseq: u32,
        extra: &str,
        body: &str,
    ) -> String {
        let to_tag = call
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let ctype = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".to_string()
        };
        format!(
            "{method} {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:tester@{local}>;tag={from_tag}\r\n\
             To: <sip:{user}@{remote}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:tester@{local}>\r\n\
             {extra}{ctype}Content-Length: {len}\r\n\r\n{body}",
            local = self.local,
            remote = self.remote,
            from_tag = call.from_tag,
            user = call.user,
            call_id = call.call_id,
            len = body.len(),
        )
    }

    pub fn send_raw(&self, data: &[u8]) {
        self.sock.send_to(data, self.remote).expect("send");
    }

    /// Receive one SIP message within `timeout` (skips unparsable datagrams).
    pub fn recv(&mut self, timeout: Duration) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    if let Some(m) = Msg::parse(&buf[..n]) {
                        return Some(m);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                Err(_) => continue, // e.g. ICMP port unreachable surfaced as ECONNREFUSED
            }
        }
    }

    /// Send a request and wait for its final response, retransmitting over
    /// UDP (T1 = 500 ms, doubling, capped at 4 s for non-INVITE) until
    /// `timeout`. Provisional responses are recorded in `provisional`.
    fn transact(
        &mut self,
        req: &str,
        call_id: &str,
        cseq: u32,
        method: &str,
        timeout: Duration,
        provisional: &mut Vec<u16>,
    ) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        let mut interval = Duration::from_millis(500);
        let mut next_send = Instant::now();
        let mut got_provisional = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            // Retransmit until a provisional arrives (INVITE) / until final.
            if now >= next_send && !(method == "INVITE" && got_provisional) {
                self.send_raw(req.as_bytes());
                next_send = now + interval;
                interval = (interval * 2).min(Duration::from_secs(4));
            }
            let wait = next_send
                .min(deadline)
                .saturating_duration_since(Instant::now());
            let Some(m) = self.recv(wait.max(Duration::from_millis(5))) else {
                continue;
            };
            let matches = m.code != 0
                && m.header("call-id") == Some(call_id)
                && m.cseq()
                    .is_some_and(|(n, meth)| n == cseq && meth == method);
            if !matches {
                self.stray.push(m);
                continue;
            }
            if m.code < 200 {
                got_provisional = true;
                provisional.push(m.code);
                continue;
            }
            return Some(m);
        }
    }

    /// A fresh call (not yet sent).
    pub fn new_call(&self, user: &str) -> Call {
        Call {
            call_id: format!("{}@echo-test", unique("c")),
            from_tag: unique("f"),
            to_tag: None,
            user: user.to_string(),
            cseq: 1,
            invite_branch: format!("z9hG4bK{}", unique("b")),
            target: None,
            final_response: None,
            provisional: Vec::new(),
        }
    }

    /// Send INVITE with `sdp`, wait for the final response (up to
    /// `timeout`). Does not ACK.
    pub fn invite(&mut self, call: &mut Call, sdp: &str, timeout: Duration) -> Option<Msg> {
        let ruri = self.request_uri(&call.user);
        let req = self.build(
            "INVITE",
            &ruri,
            &call.invite_branch,
            call,
            call.cseq,
            "",
            sdp,
        );
        let mut prov = Vec::new();
        let cid = call.call_id.clone();
        let resp = self.transact(&req, &cid, call.cseq, "INVITE", timeout, &mut prov);
        call.provisional.extend(prov);
        if let Some(r) = &resp {
            call.to_tag = r.to_tag();
            if (200..300).contains(&r.code) {
                call.target = r.contact_uri();
            }
        }
        call.final_response = resp.clone();
        resp
    }

    /// ACK for the final response of the INVITE: for a 2xx a new
    /// transaction to the remote target, otherwise in the INVITE's
    /// transaction (same branch).
    pub fn ack(&mut self, call: &Call) {
        let code = call.final_response.as_ref().map(|r| r.code).unwrap_or(0);
        let (ruri, branch) = if (200..300).contains(&code) {
            (
                call.target
                    .clone()
                    .unwrap_or_else(|| self.request_uri(&call.user)),
                format!("z9hG4bK{}", unique("ack")),
            )
        } else {
            (self.request_uri(&call.user), call.invite_branch.clone())
        };
        let req = self.build("ACK", &ruri, &branch, call, call.cseq, "", "");
        self.send_raw(req.as_bytes());
    }

    /// In-dialog BYE; returns the final response.
    pub fn bye(&mut self, call: &mut Call, timeout: Duration) -> Option<Msg> {
        call.cseq += 1;
        let ruri = call
            .target
            .clone()
            .unwrap_or_else(|| self.request_uri(&call.user));
        let branch = format!("z9hG4bK{}", unique("bye"));
        let req = self.build("BYE", &ruri, &branch, call, call.cseq, "", "");
        let cid = call.call_id.clone();
        self.transact(&req, &cid, call.cseq, "BYE", timeout, &mut Vec::new())
    }

    /// In-dialog re-INVITE with `sdp` (new CSeq, new branch, Request-URI =
    /// remote target); waits for the final response and records it as the
    /// call's final response, so `ack` then acknowledges it.
    pub fn reinvite(&mut self, call: &mut Call, sdp: &str, timeout: Duration) -> Option<Msg> {
        call.cseq += 1;
        call.invite_branch = format!("z9hG4bK{}", unique("reinv"));
        let ruri = call
            .target
            .clone()
            .unwrap_or_else(|| self.request_uri(&call.user));
        let req = self.build(
            "INVITE",
            &ruri,
            &call.invite_branch,
            call,
            call.cseq,
            "",
            sdp,
        );
        let mut prov = Vec::new();
        let cid = call.call_id.clone();
        let resp = self.transact(&req, &cid, call.cseq, "INVITE", timeout, &mut prov);
        call.provisional.extend(prov);
        if let Some(r) = &resp {
            if (200..300).contains(&r.code) {
                if let Some(t) = r.contact_uri() {
                    call.target = Some(t);
                }
            }
        }
        call.final_response = resp.clone();
        resp
    }

    /// ACK for a 2xx that carries `sdp` (the answer to a late offer).
    pub fn ack_with_sdp(&mut self, call: &Call, sdp: &str) {
        let ruri = call
            .target
            .clone()
            .unwrap_or_else(|| self.request_uri(&call.user));
        let branch = format!("z9hG4bK{}", unique("ack"));
        let req = self.build("ACK", &ruri, &branch, call, call.cseq, "", sdp);
        self.send_raw(req.as_bytes());
    }

    /// Wait up to `timeout` for a request with `method`; everything else
    /// received meanwhile goes to `stray`.
    pub fn wait_request(&mut self, method: &str, timeout: Duration) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let m = self.recv(left)?;
            if m.code == 0 && m.method == method {
                return Some(m);
            }
            self.stray.push(m);
        }
    }

    /// Send a response to `req` (RFC 3261 §8.2.6: Via(s), From, To,
    /// Call-ID and CSeq copied; no body).
    pub fn respond(&self, req: &Msg, code: u16, reason: &str) {
        self.send_raw(response_to(req, code, reason).as_bytes());
    }

    /// OPTIONS over UDP; returns the final response.
    pub fn options(&mut self, user: &str, timeout: Duration) -> Option<Msg> {
        let call = self.new_call(user);
        let ruri = self.request_uri(user);
        let req = self.build(
            "OPTIONS",
            &ruri,
            &call.invite_branch,
            &call,
            1,
            "Accept: application/sdp\r\n",
            "",
        );
        self.transact(&req, &call.call_id, 1, "OPTIONS", timeout, &mut Vec::new())
    }
}

/// The text of a response to `req`: every Via in order, From, To (with
/// `to_tag` added when the request's To has none), Call-ID and CSeq copied
/// from the request, no body.
pub fn response_to(req: &Msg, code: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.all_headers("via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    let from = req.header("from").unwrap_or_default();
    let mut to = req.header("to").unwrap_or_default().to_string();
    if tag_param(&to).is_none() {
        to.push_str(&format!(";tag={}", unique("rt")));
    }
    out.push_str(&format!(
        "From: {from}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        req.header("call-id").unwrap_or_default(),
        req.header("cseq").unwrap_or_default(),
    ));
    out
}

/// An OPTIONS request as sent over TCP from `local` (for raw use).
pub fn options_request(local: SocketAddr, remote: SocketAddr, transport: &str) -> (String, String) {
    let call_id = format!("{}@echo-test", unique("o"));
    let req = format!(
        "OPTIONS sip:echo@{remote} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:tester@{local}>;tag={tag}\r\n\
         To: <sip:echo@{remote}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Contact: <sip:tester@{local};transport={lt}>\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n",
        branch = unique("b"),
        tag = unique("t"),
        lt = transport.to_ascii_lowercase(),
    );
    (req, call_id)
}

/// Read one SIP message from a stream (headers + Content-Length body).
pub fn read_stream_msg(s: &mut TcpStream, timeout: Duration) -> std::io::Result<Msg> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Skip keep-alive CRLFs before a message.
        while buf.starts_with(b"\r\n") {
            buf.drain(..2);
        }
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            let len = head
                .split("\r\n")
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    matches!(k.trim(), "content-length" | "l")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= i + 4 + len {
                return Msg::parse(&buf[..i + 4 + len])
                    .ok_or_else(|| std::io::Error::other("unparsable SIP message on stream"));
            }
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out reading stream")
            })?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "stream closed",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// OPTIONS on an already-open TCP connection; returns the final response.
pub fn options_over_stream(
    s: &mut TcpStream,
    remote: SocketAddr,
    timeout: Duration,
) -> std::io::Result<Msg> {
    let local = s.local_addr()?;
    let (req, call_id) = options_request(local, remote, "TCP");
    s.set_write_timeout(Some(timeout))?;
    s.write_all(req.as_bytes())?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "no final response")
            })?;
        let m = read_stream_msg(s, left)?;
        if m.code >= 200 && m.header("call-id") == Some(call_id.as_str()) {
            return Ok(m);
        }
    }
}

/// OPTIONS over a new TCP connection.
pub fn options_tcp(remote: SocketAddr, timeout: Duration) -> std::io::Result<Msg> {
    let mut s = TcpStream::connect_timeout(&remote, timeout)?;
    options_over_stream(&mut s, remote, timeout)
}

// ---------------------------------------------------------------------- RTP

/// Build an RTP packet (version 2, no CSRC, no extension).
pub fn rtp_packet(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(if marker { 0x80 } else { 0 } | (pt & 0x7f));
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A parsed RTP packet.
#[derive(Debug, Clone)]
pub struct Rtp {
    pub pt: u8,
    pub marker: bool,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

pub fn parse_rtp(d: &[u8]) -> Option<Rtp> {
    if d.len() < 12 || d[0] >> 6 != 2 {
        return None;
    }
    let cc = (d[0] & 0x0f) as usize;
    let mut off = 12 + 4 * cc;
    if d[0] & 0x10 != 0 {
        let ext_len = u16::from_be_bytes([*d.get(off + 2)?, *d.get(off + 3)?]) as usize;
        off += 4 + 4 * ext_len;
    }
    let mut end = d.len();
    if d[0] & 0x20 != 0 {
        end = end.checked_sub(*d.last()? as usize)?;
    }
    Some(Rtp {
        pt: d[1] & 0x7f,
        marker: d[1] & 0x80 != 0,
        seq: u16::from_be_bytes([d[2], d[3]]),
        ts: u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
        ssrc: u32::from_be_bytes([d[8], d[9], d[10], d[11]]),
        payload: d.get(off..end)?.to_vec(),
    })
}

// ------------------------------------------------------------------- G.711

/// G.711 μ-law encode of one 16-bit linear sample (ITU-T G.711 / Sun
/// reference algorithm).
pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let exponent = (7 - (s.leading_zeros() as i32 - 17)).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// G.711 μ-law decode.
pub fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_round_trip_is_close() {
        for s in (-32000i32..32000).step_by(37) {
            let d = ulaw_decode(ulaw_encode(s as i16)) as i32;
            // μ-law error is at most half a step, steps grow with magnitude
            assert!((d - s).abs() <= (s.abs() / 16).max(8) + 8, "{s} -> {d}");
        }
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_decode(0xff), 0);
    }
}
