//! Digest authentication, server side (RFC 7616, RFC 3261 §22), sans-IO.
//!
//! ```text
//! request without Authorization → 401/407 with every challenge(now, false)
//! request with Authorization    → verify(now, method, header, user, pass)
//!     Ok            → go on
//!     Stale         → 401/407 with challenge(now, true)
//!     Rejected(why) → 401/407 with challenge(now, false) (or 403)
//! ```
//!
//! Choices:
//! - Both `MD5` and `SHA-256` are offered with `qop="auth"`, MD5 first for
//!   clients that only read the first challenge (see [`DigestAuthenticator::challenge`]);
//!   both share one nonce. `-sess` algorithms, `auth-int`
//!   and `userhash` are not supported.
//! - RFC 2069 responses (no `qop`) are accepted only with MD5, since only
//!   old MD5-only clients send them, and then the nonce is single-use
//!   because there is no `nc` to detect replays.
//! - A response whose hash is right for a nonce we no longer hold (evicted,
//!   or issued before a restart) gets `Stale`, like an expired one: it never
//!   grants access, and it lets the client retry instead of giving up.
//! - The caller should also check that the `uri` parameter matches the
//!   Request-URI ([`DigestCredentials::parse`] exposes it).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use md5::Md5;
use rand::rngs::StdRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Most nonces held at once; past this the oldest are forgotten, so a flood
/// of unauthenticated requests cannot grow memory.
pub const MAX_OUTSTANDING_NONCES: usize = 10_000;

/// A digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `MD5`, the RFC 2617 / RFC 3261 default.
    Md5,
    /// `SHA-256` (RFC 7616).
    Sha256,
}

impl DigestAlgorithm {
    /// The spelling in the `algorithm` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("MD5") {
            Some(DigestAlgorithm::Md5)
        } else if name.eq_ignore_ascii_case("SHA-256") {
            Some(DigestAlgorithm::Sha256)
        } else {
            None
        }
    }

    /// Lowercase hex of the hash of `data`.
    fn hex(self, data: &str) -> String {
        match self {
            DigestAlgorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            DigestAlgorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything the `response` parameter is computed from.
#[derive(Debug, Clone, Copy)]
pub struct ResponseInput<'a> {
    /// The hash algorithm.
    pub algorithm: DigestAlgorithm,
    /// The username.
    pub username: &'a str,
    /// The realm.
    pub realm: &'a str,
    /// The password.
    pub password: &'a str,
    /// The request method (e.g. `INVITE`).
    pub method: &'a str,
    /// The `uri` parameter.
    pub uri: &'a str,
    /// The server's nonce.
    pub nonce: &'a str,
    /// `(nc, cnonce)` for `qop=auth`, or `None` for an RFC 2069 response.
    pub qop_auth: Option<(&'a str, &'a str)>,
}

/// The `response` parameter as lowercase hex: with `qop=auth`,
/// `H(H(user:realm:pass):nonce:nc:cnonce:auth:H(method:uri))`, else
/// `H(H(user:realm:pass):nonce:H(method:uri))`. Also usable by clients.
pub fn compute_response(input: &ResponseInput<'_>) -> String {
    let h = |data: &str| input.algorithm.hex(data);
    let ha1 = h(&format!(
        "{}:{}:{}",
        input.username, input.realm, input.password
    ));
    let ha2 = h(&format!("{}:{}", input.method, input.uri));
    match input.qop_auth {
        Some((nc, cnonce)) => h(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", input.nonce)),
        None => h(&format!("{ha1}:{}:{ha2}", input.nonce)),
    }
}

/// The outcome of [`DigestAuthenticator::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    /// The credentials are right.
    Ok,
    /// Right credentials on an expired (or forgotten) nonce: challenge again
    /// with `stale=true`.
    Stale,
    /// Wrong or unusable credentials.
    Rejected(AuthFailure),
}

/// Why credentials were rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// The header could not be parsed.
    #[error("malformed Authorization header: {0}")]
    Malformed(#[from] MalformedDigest),
    /// Another username than the one expected.
    #[error("wrong username")]
    WrongUsername,
    /// Another realm than ours.
    #[error("wrong realm")]
    WrongRealm,
    /// An algorithm we do not offer.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// A qop other than `auth`, or none with an algorithm other than MD5.
    #[error("unsupported qop {0:?}")]
    UnsupportedQop(String),
    /// `opaque` differs from the one we sent.
    #[error("opaque does not match")]
    OpaqueMismatch,
    /// The response hash is wrong (usually a wrong password).
    #[error("wrong response")]
    WrongResponse,
    /// The nonce count did not increase: a replayed request.
    #[error("nonce count replayed")]
    Replay,
}

/// What is wrong with an Authorization header's syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedDigest {
    /// The scheme is not `Digest`.
    #[error("not a Digest header")]
    NotDigest,
    /// The parameter list does not parse.
    #[error("bad parameter syntax")]
    Syntax,
    /// A parameter appears twice.
    #[error("duplicate parameter {0:?}")]
    Duplicate(String),
    /// A required parameter is missing.
    #[error("missing parameter {0:?}")]
    Missing(&'static str),
    /// `nc` is not 1 to 8 hex digits.
    #[error("bad nonce count")]
    BadNonceCount,
    /// `response` is not hex of the algorithm's length.
    #[error("bad response")]
    BadResponse,
}

/// The parameters of a `Digest` Authorization (or Proxy-Authorization) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// `username`
    pub username: String,
    /// `realm`
    pub realm: String,
    /// `nonce`
    pub nonce: String,
    /// `uri`; should match the Request-URI.
    pub uri: String,
    /// `response`
    pub response: String,
    /// `algorithm`, as written (absent means MD5).
    pub algorithm: Option<String>,
    /// `qop`, as written.
    pub qop: Option<String>,
    /// `cnonce`
    pub cnonce: Option<String>,
    /// `nc`, as written.
    pub nc: Option<String>,
    /// `opaque`
    pub opaque: Option<String>,
}

impl DigestCredentials {
    /// Parses `Digest k=v, k="v", ...`: scheme and names case-insensitive,
    /// any order, quoted strings with `\` escapes and commas inside, unknown
    /// parameters ignored, duplicates rejected.
    pub fn parse(header: &str) -> Result<Self, MalformedDigest> {
        let header = header.trim_start();
        let (scheme, rest) = header
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or(MalformedDigest::NotDigest)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(MalformedDigest::NotDigest);
        }
        let mut params: HashMap<String, String> = HashMap::new();
        for (name, value) in parse_params(rest)? {
            if params.insert(name.clone(), value).is_some() {
                return Err(MalformedDigest::Duplicate(name));
            }
        }
        let mut take = |name: &'static str| params.remove(name);
        let mut required = |name: &'static str| take(name).ok_or(MalformedDigest::Missing(name));
        Ok(Self {
            username: required("username")?,
            realm: required("realm")?,
            nonce: required("nonce")?,
            uri: required("uri")?,
            response: required("response")?,
            algorithm: take("algorithm"),
            qop: take("qop"),
            cnonce: take("cnonce"),
            nc: take("nc"),
            opaque: take("opaque"),
        })
    }
}

/// Splits `a=b, c="d, e"` into lowercased names and unquoted values.
fn parse_params(mut rest: &str) -> Result<Vec<(String, String)>, MalformedDigest> {
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            return Ok(params);
        }
        let eq = rest.find('=').ok_or(MalformedDigest::Syntax)?;
        let name = rest[..eq].trim();
        let is_token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.!%*+`'~".contains(&b))
        };
        if !is_token(name) {
            return Err(MalformedDigest::Syntax);
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut unquoted = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => unquoted.push(c),
                        None => return Err(MalformedDigest::Syntax),
                    },
                    Some((_, c)) => unquoted.push(c),
                    None => return Err(MalformedDigest::Syntax),
                }
            };
            value = unquoted;
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let token = rest[..end].trim();
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
                return Err(MalformedDigest::Syntax);
            }
            value = token.to_owned();
            rest = &rest[end..];
        }
        // After a value only whitespace and then a comma (or the end) may come.
        let after = rest.trim_start();
        if !(after.is_empty() || after.starts_with(',')) {
            return Err(MalformedDigest::Syntax);
        }
        rest = after;
        params.push((name.to_ascii_lowercase(), value));
    }
}

#[derive(Debug, Clone)]
struct NonceState {
    issued: Instant,
    /// Highest nonce count accepted so far (0: none yet).
    last_nc: u32,
    /// An RFC 2069 (no qop) response used this nonce up.
    used_without_qop: bool,
}

/// Issues digest challenges and verifies the answers.
pub struct DigestAuthenticator {
    realm: String,
    nonce_ttl: Duration,
    rng: StdRng,
    opaque: String,
    nonces: HashMap<String, NonceState>,
    /// Nonces in issue order, for evicting the oldest.
    issue_order: VecDeque<String>,
}

impl fmt::Debug for DigestAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestAuthenticator")
            .field("realm", &self.realm)
            .field("nonce_ttl", &self.nonce_ttl)
            .field("outstanding_nonces", &self.nonces.len())
            .finish_non_exhaustive()
    }
}

impl DigestAuthenticator {
    /// An authenticator for `realm` whose nonces live `nonce_ttl`. Nonces
    /// must be unpredictable: pass `StdRng::from_os_rng()` (tests may seed).
    pub fn new(realm: String, nonce_ttl: Duration, mut rng: StdRng) -> Self {
        let opaque = random_hex(&mut rng, 8);
        Self {
            realm,
            nonce_ttl,
            rng,
            opaque,
            nonces: HashMap::new(),
            issue_order: VecDeque::new(),
        }
    }

    /// The realm challenges name.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Nonces currently held.
    pub fn outstanding_nonces(&self) -> usize {
        self.nonces.len()
    }

    /// Issues a fresh nonce and returns the `WWW-Authenticate` (or
    /// `Proxy-Authenticate`) values to send, one header each: MD5 first,
    /// then SHA-256, both `qop="auth"`, with `stale=true` if asked.
    ///
    /// RFC 7616 §3.7 asks for the preferred algorithm first, but deployed
    /// SIP clients (sipp 3.6 among them) answer only the first challenge
    /// and give up when they cannot do SHA-256; clients that can do both
    /// pick SHA-256 from the list. Interoperability wins here.
    pub fn challenge(&mut self, now: Instant, stale: bool) -> Vec<String> {
        self.forget_expired(now);
        while self.nonces.len() >= MAX_OUTSTANDING_NONCES {
            match self.issue_order.pop_front() {
                Some(oldest) => {
                    self.nonces.remove(&oldest);
                }
                None => break,
            }
        }
        let nonce = random_hex(&mut self.rng, 16);
        self.nonces.insert(
            nonce.clone(),
            NonceState {
                issued: now,
                last_nc: 0,
                used_without_qop: false,
            },
        );
        self.issue_order.push_back(nonce.clone());
        let stale = if stale { ", stale=true" } else { "" };
        [DigestAlgorithm::Md5, DigestAlgorithm::Sha256]
            .into_iter()
            .map(|algorithm| {
                format!(
                    "Digest realm={}, qop=\"auth\", algorithm={algorithm}, nonce=\"{nonce}\", opaque=\"{}\"{stale}",
                    quote(&self.realm),
                    self.opaque
                )
            })
            .collect()
    }

    /// Checks an `Authorization` value against the expected `username` and
    /// `password` for a request with `method`.
    pub fn verify(
        &mut self,
        now: Instant,
        method: &str,
        authorization: &str,
        username: &str,
        password: &str,
    ) -> AuthResult {
        match self.check(now, method, authorization, username, password) {
            Ok(result) => result,
            Err(failure) => AuthResult::Rejected(failure),
        }
    }

    fn check(
        &mut self,
        now: Instant,
        method: &str,
        authorization: &str,
        username: &str,
        password: &str,
    ) -> Result<AuthResult, AuthFailure> {
        let credentials = DigestCredentials::parse(authorization)?;
        if credentials.username != username {
            return Err(AuthFailure::WrongUsername);
        }
        if credentials.realm != self.realm {
            return Err(AuthFailure::WrongRealm);
        }
        let algorithm = match &credentials.algorithm {
            None => DigestAlgorithm::Md5,
            Some(name) => DigestAlgorithm::parse(name)
                .ok_or_else(|| AuthFailure::UnsupportedAlgorithm(name.clone()))?,
        };
        if credentials
            .opaque
            .as_deref()
            .is_some_and(|o| o != self.opaque)
        {
            return Err(AuthFailure::OpaqueMismatch);
        }
        let qop_auth = match &credentials.qop {
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {
                let nc = credentials
                    .nc
                    .as_deref()
                    .ok_or(MalformedDigest::Missing("nc"))?;
                let cnonce = credentials
                    .cnonce
                    .as_deref()
                    .filter(|c| !c.is_empty())
                    .ok_or(MalformedDigest::Missing("cnonce"))?;
                Some((nc, cnonce, parse_nc(nc)?))
            }
            Some(qop) => return Err(AuthFailure::UnsupportedQop(qop.clone())),
            None if algorithm == DigestAlgorithm::Md5 => None,
            None => return Err(AuthFailure::UnsupportedQop(String::new())),
        };

        let expected = compute_response(&ResponseInput {
            algorithm,
            username,
            realm: &self.realm,
            password,
            method,
            uri: &credentials.uri,
            nonce: &credentials.nonce,
            qop_auth: qop_auth.map(|(nc, cnonce, _)| (nc, cnonce)),
        });
        let given = hex::decode(&credentials.response).map_err(|_| MalformedDigest::BadResponse)?;
        let expected = hex::decode(expected).expect("we produce valid hex");
        if given.len() != expected.len() {
            return Err(MalformedDigest::BadResponse.into());
        }
        if !constant_time_eq(&given, &expected) {
            return Err(AuthFailure::WrongResponse);
        }

        let Some(state) = self.nonces.get_mut(&credentials.nonce) else {
            return Ok(AuthResult::Stale);
        };
        if now.saturating_duration_since(state.issued) >= self.nonce_ttl {
            return Ok(AuthResult::Stale);
        }
        match qop_auth {
            Some((_, _, nc)) => {
                if nc <= state.last_nc {
                    return Err(AuthFailure::Replay);
                }
                state.last_nc = nc;
            }
            None => {
                if state.used_without_qop {
                    return Err(AuthFailure::Replay);
                }
                state.used_without_qop = true;
            }
        }
        Ok(AuthResult::Ok)
    }

    /// Drops nonces past their lifetime. Issue order is time order (given
    /// a non-decreasing `now`), so they sit at the front.
    fn forget_expired(&mut self, now: Instant) {
        while let Some(oldest) = self.issue_order.front() {
            let expired = self
                .nonces
                .get(oldest)
                .is_none_or(|s| now.saturating_duration_since(s.issued) >= self.nonce_ttl);
            if !expired {
                break;
            }
            if let Some(oldest) = self.issue_order.pop_front() {
                self.nonces.remove(&oldest);
            }
        }
    }
}

fn parse_nc(nc: &str) -> Result<u32, MalformedDigest> {
    if nc.is_empty() || nc.len() > 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(MalformedDigest::BadNonceCount);
    }
    u32::from_str_radix(nc, 16).map_err(|_| MalformedDigest::BadNonceCount)
}

fn random_hex(rng: &mut StdRng, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A quoted-string with `"` and `\` escaped.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Compares without an early exit, so timing does not reveal how many
/// leading bytes of a guessed response were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const REALM: &str = "sip.example.org";
    const TTL: Duration = Duration::from_secs(60);

    fn authenticator() -> DigestAuthenticator {
        DigestAuthenticator::new(REALM.into(), TTL, StdRng::seed_from_u64(7))
    }

    /// The parameters of a challenge, for playing the client.
    fn challenge_params(challenge: &str) -> HashMap<String, String> {
        let rest = challenge.strip_prefix("Digest ").unwrap();
        parse_params(rest).unwrap().into_iter().collect()
    }

    /// What a client answers to `challenge`.
    fn answer(challenge: &str, password: &str, nc: u32) -> String {
        let params = challenge_params(challenge);
        let algorithm = DigestAlgorithm::parse(&params["algorithm"]).unwrap();
        let nc = format!("{nc:08x}");
        let response = compute_response(&ResponseInput {
            algorithm,
            username: "alice",
            realm: &params["realm"],
            password,
            method: "INVITE",
            uri: "sip:echo@sip.example.org",
            nonce: &params["nonce"],
            qop_auth: Some((&nc, "0a4f113b")),
        });
        format!(
            "Digest username=\"alice\", realm=\"{}\", nonce=\"{}\", uri=\"sip:echo@sip.example.org\", \
             response=\"{response}\", algorithm={algorithm}, cnonce=\"0a4f113b\", opaque=\"{}\", qop=auth, nc={nc}",
            params["realm"], params["nonce"], params["opaque"]
        )
    }

    #[test]
    fn rfc7616_example_responses() {
        let input = |algorithm| ResponseInput {
            algorithm,
            username: "Mufasa",
            realm: "http-auth@example.org",
            password: "Circle of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            qop_auth: Some(("00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")),
        };
        assert_eq!(
            compute_response(&input(DigestAlgorithm::Md5)),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        assert_eq!(
            compute_response(&input(DigestAlgorithm::Sha256)),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn response_without_qop_uses_the_rfc2069_formula() {
        // RFC 2069-style: H(HA1:nonce:HA2), checked against an independent
        // computation of the same formula.
        let input = ResponseInput {
            algorithm: DigestAlgorithm::Md5,
            username: "u",
            realm: "r",
            password: "p",
            method: "INVITE",
            uri: "sip:x",
            nonce: "n",
            qop_auth: None,
        };
        let ha1 = hex::encode(Md5::digest(b"u:r:p"));
        let ha2 = hex::encode(Md5::digest(b"INVITE:sip:x"));
        let expected = hex::encode(Md5::digest(format!("{ha1}:n:{ha2}").as_bytes()));
        assert_eq!(compute_response(&input), expected);
    }

    #[test]
    fn challenge_offers_md5_then_sha256() {
        let mut auth = authenticator();
        let now = Instant::now();
        let challenges = auth.challenge(now, false);
        assert_eq!(challenges.len(), 2);
        let md5 = challenge_params(&challenges[0]);
        let sha = challenge_params(&challenges[1]);
        assert_eq!(sha["algorithm"], "SHA-256");
        assert_eq!(md5["algorithm"], "MD5");
        for params in [&sha, &md5] {
            assert_eq!(params["realm"], REALM);
            assert_eq!(params["qop"], "auth");
            assert_eq!(params["nonce"].len(), 32);
            assert!(!params["opaque"].is_empty());
            assert!(!params.contains_key("stale"));
        }
        let stale = auth.challenge(now, true);
        assert!(stale[0].ends_with(", stale=true"), "{}", stale[0]);
        assert_ne!(challenge_params(&stale[0])["nonce"], sha["nonce"]);
    }

    #[test]
    fn nonces_differ_across_seeds_and_calls() {
        let now = Instant::now();
        let mut a = DigestAuthenticator::new(REALM.into(), TTL, StdRng::seed_from_u64(1));
        let mut b = DigestAuthenticator::new(REALM.into(), TTL, StdRng::seed_from_u64(2));
        let nonce = |c: Vec<String>| challenge_params(&c[0])["nonce"].clone();
        let (a1, a2, b1) = (
            nonce(a.challenge(now, false)),
            nonce(a.challenge(now, false)),
            nonce(b.challenge(now, false)),
        );
        assert_ne!(a1, a2);
        assert_ne!(a1, b1);
    }

    #[test]
    fn round_trip_with_both_algorithms() {
        let mut auth = authenticator();
        let now = Instant::now();
        for index in 0..2 {
            let challenge = auth.challenge(now, false).remove(index);
            let header = answer(&challenge, "secret", 1);
            assert_eq!(
                auth.verify(now, "INVITE", &header, "alice", "secret"),
                AuthResult::Ok
            );
        }
        // Both headers carry one nonce, so its count goes on across them.
        let challenges = auth.challenge(now, false);
        let sha = answer(&challenges[1], "secret", 1);
        let md5 = answer(&challenges[0], "secret", 1);
        assert_eq!(
            auth.verify(now, "INVITE", &sha, "alice", "secret"),
            AuthResult::Ok
        );
        assert_eq!(
            auth.verify(now, "INVITE", &md5, "alice", "secret"),
            AuthResult::Rejected(AuthFailure::Replay)
        );
    }

    #[test]
    fn wrong_password_username_realm_method() {
        let mut auth = authenticator();
        let now = Instant::now();
        let challenge = auth.challenge(now, false).remove(0);
        let header = answer(&challenge, "wrong", 1);
        assert_eq!(
            auth.verify(now, "INVITE", &header, "alice", "secret"),
            AuthResult::Rejected(AuthFailure::WrongResponse)
        );
        let header = answer(&challenge, "secret", 1);
        assert_eq!(
            auth.verify(now, "INVITE", &header, "bob", "secret"),
            AuthResult::Rejected(AuthFailure::WrongUsername)
        );
        assert_eq!(
            auth.verify(now, "BYE", &header, "alice", "secret"),
            AuthResult::Rejected(AuthFailure::WrongResponse)
        );
        let other_realm = header.replace(REALM, "evil.example.org");
        assert_eq!(
            auth.verify(now, "INVITE", &other_realm, "alice", "secret"),
            AuthResult::Rejected(AuthFailure::WrongRealm)
        );
        // Failures do not burn the nonce count.
        assert_eq!(
            auth.verify(now, "INVITE", &header, "alice", "secret"),
            AuthResult::Ok
        );
    }

    #[test]
    fn nonce_count_must_increase() {
        let mut auth = authenticator();
        let now = Instant::now();
        let challenge = auth.challenge(now, false).remove(0);
        let first = answer(&challenge, "secret", 1);
        assert_eq!(
            auth.verify(now, "INVITE", &first, "alice", "secret"),
            AuthResult::Ok
        );
        assert_eq!(
            auth.verify(now, "INVITE", &first, "alice", "secret"),
            AuthResult::Rejected(AuthFailure::Replay)
        );
        let third = answer(&challenge, "secret", 3);
        assert_eq!(
            auth.verify(now, "INVITE", &third, "alice", "secret"),
            AuthResult::Ok
        );
        let second = answer(&challenge, "secret", 2);
        assert_eq!(
            auth.verify(now, "INVITE", &second, "alice", "secret"),
            AuthResult::Rejected(AuthFailure::Replay)
        );
    }

    #[test]
    fn expired_nonce_is_stale() {
        let mut auth = authenticator();
        let base = Instant::now();
        let challenge = auth.challenge(base, false).remove(1);
        let header = answer(&challenge, "secret", 1);
        let late = base + TTL;
        assert_eq!(
            auth.verify(late, "INVITE", &header, "alice", "secret"),
            AuthResult::Stale
        );
        // Stale only for the right password: a wrong one is still rejected.
        let wrong = answer(&challenge, "wrong", 1);
        assert_eq!(
            auth.verify(late, "INVITE", &wrong, "alice", "secret"),
            AuthResult::Rejected(AuthFailure::WrongResponse)
        );
        let fresh = auth.challenge(late, true).remove(0);
        let header = answer(&fresh, "secret", 1);
        assert_eq!(
            auth.verify(late, "INVITE", &header, "alice", "secret"),
            AuthResult::Ok
        );
        assert_eq!(
            auth.outstanding_nonces(),
            1,
            "the expired nonce was dropped"
        );
    }

    #[test]
    fn unknown_nonce_never_passes() {
        let mut auth = authenticator();
        let now = Instant::now();
        auth.challenge(now, false);
        // Not issued by us: a right hash only earns a new challenge.
        let forged = format!(
            "Digest realm=\"{REALM}\", qop=\"auth\", algorithm=MD5, nonce=\"{}\", opaque=\"{}\"",
            "00".repeat(16),
            auth.opaque
        );
        let header = answer(&forged, "secret", 1);
        assert_eq!(
            auth.verify(now, "INVITE", &header, "alice", "secret"),
            AuthResult::Stale
        );
        let header = answer(&forged, "guess", 1);
        assert_eq!(
            auth.verify(now, "INVITE", &header, "alice", "secret"),
            AuthResult::Rejected(AuthFailure::WrongResponse)
        );
    }

    #[test]
    fn nonce_table_is_bounded() {
        let mut auth = authenticator();
        let now = Instant::now();
        let first = auth.challenge(now, false).remove(0);
        for _ in 0..MAX_OUTSTANDING_NONCES + 50 {
            auth.challenge(now, false);
        }
        assert_eq!(auth.outstanding_nonces(), MAX_OUTSTANDING_NONCES);
        // The evicted nonce can only be re-challenged.
        let header = answer(&first, "secret", 1);
        assert_eq!(
            auth.verify(now, "INVITE", &header, "alice", "secret"),
            AuthResult::Stale
        );
    }

    #[test]
    fn rfc2069_responses_md5_only_and_single_use() {
        let mut auth = authenticator();
        let now = Instant::now();
        let challenge = auth.challenge(now, false).remove(1);
        let nonce = challenge_params(&challenge)["nonce"].clone();
        let header = |algorithm: DigestAlgorithm| {
            let response = compute_response(&ResponseInput {
                algorithm,
                username: "alice",
                realm: REALM,
                password: "secret",
                method: "INVITE",
                uri: "sip:echo@x",
                nonce: &nonce,
                qop_auth: None,
            });
            format!(
                "Digest username=\"alice\",realm=\"{REALM}\",nonce=\"{nonce}\",uri=\"sip:echo@x\",response=\"{response}\",algorithm={algorithm}"
            )
        };
        assert_eq!(
            auth.verify(
                now,
                "INVITE",
                &header(DigestAlgorithm::Sha256),
                "alice",
                "secret"
            ),
            AuthResult::Rejected(AuthFailure::UnsupportedQop(String::new()))
        );
        let md5 = header(DigestAlgorithm::Md5);
        assert_eq!(
            auth.verify(now, "INVITE", &md5, "alice", "secret"),
            AuthResult::Ok
        );
        assert_eq!(
            auth.verify(now, "INVITE", &md5, "alice", "secret"),
            AuthResult::Rejected(AuthFailure::Replay)
        );
        // Absent algorithm means MD5.
        let absent = md5.replace(",algorithm=MD5", "");
        let mut auth2 = authenticator();
        auth2.nonces = auth.nonces.clone();
        auth2.nonces.get_mut(&nonce).unwrap().used_without_qop = false;
        assert_eq!(
            auth2.verify(now, "INVITE", &absent, "alice", "secret"),
            AuthResult::Ok
        );
    }

    #[test]
    fn unsupported_parameters() {
        let mut auth = authenticator();
        let now = Instant::now();
        let challenge = auth.challenge(now, false).remove(0);
        let header = answer(&challenge, "secret", 1);
        let cases = [
            (
                header.replace("algorithm=MD5", "algorithm=MD5-sess"),
                AuthFailure::UnsupportedAlgorithm("MD5-sess".into()),
            ),
            (
                header.replace("qop=auth", "qop=auth-int"),
                AuthFailure::UnsupportedQop("auth-int".into()),
            ),
            (
                header.replace(&format!("opaque=\"{}\"", auth.opaque), "opaque=\"x\""),
                AuthFailure::OpaqueMismatch,
            ),
            (
                header.replace(", cnonce=\"0a4f113b\"", ""),
                MalformedDigest::Missing("cnonce").into(),
            ),
            (
                header.replace(", nc=00000001", ""),
                MalformedDigest::Missing("nc").into(),
            ),
            (
                header.replace("nc=00000001", "nc=zz"),
                MalformedDigest::BadNonceCount.into(),
            ),
            (
                header.replace("nc=00000001", "nc=000000001"),
                MalformedDigest::BadNonceCount.into(),
            ),
        ];
        for (header, failure) in cases {
            assert_eq!(
                auth.verify(now, "INVITE", &header, "alice", "secret"),
                AuthResult::Rejected(failure),
                "{header}"
            );
        }
    }

    #[test]
    fn parse_tolerates_order_case_quoting_and_commas() {
        let header = r#"digest  URI="sip:a,b@x", username = "al\"ice" ,realm="r, \\ s",nonce=abc,response="00ff", qop=auth , NC=00000001, cnonce="c,d", opaque="o", extra=1"#;
        let parsed = DigestCredentials::parse(header).unwrap();
        assert_eq!(parsed.uri, "sip:a,b@x");
        assert_eq!(parsed.username, "al\"ice");
        assert_eq!(parsed.realm, r"r, \ s");
        assert_eq!(parsed.nonce, "abc");
        assert_eq!(parsed.response, "00ff");
        assert_eq!(parsed.qop.as_deref(), Some("auth"));
        assert_eq!(parsed.nc.as_deref(), Some("00000001"));
        assert_eq!(parsed.cnonce.as_deref(), Some("c,d"));
        assert_eq!(parsed.opaque.as_deref(), Some("o"));
        assert_eq!(parsed.algorithm, None);
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let base = r#"username="a", realm="r", nonce="n", uri="u", response="00""#;
        let cases = [
            ("".to_owned(), MalformedDigest::NotDigest),
            ("Digest".to_owned(), MalformedDigest::NotDigest),
            (format!("Basic {base}"), MalformedDigest::NotDigest),
            (r#"Digest username="a"#.to_owned(), MalformedDigest::Syntax),
            ("Digest username".to_owned(), MalformedDigest::Syntax),
            ("Digest =x".to_owned(), MalformedDigest::Syntax),
            ("Digest username=".to_owned(), MalformedDigest::Syntax),
            (
                r#"Digest username="a" "b""#.to_owned(),
                MalformedDigest::Syntax,
            ),
            (
                format!("Digest {base}, realm=\"r\""),
                MalformedDigest::Duplicate("realm".into()),
            ),
            (
                r#"Digest realm="r", nonce="n", uri="u", response="00""#.to_owned(),
                MalformedDigest::Missing("username"),
            ),
            (
                r#"Digest username="a", realm="r", uri="u", response="00""#.to_owned(),
                MalformedDigest::Missing("nonce"),
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(DigestCredentials::parse(&header), Err(expected), "{header}");
        }
        // Through verify: malformed, and a non-hex or short response.
        let mut auth = authenticator();
        let now = Instant::now();
        assert_eq!(
            auth.verify(now, "INVITE", "Digest garbage", "alice", "secret"),
            AuthResult::Rejected(MalformedDigest::Syntax.into())
        );
        let header = format!(
            "Digest username=\"alice\", realm=\"{REALM}\", nonce=\"n\", uri=\"u\", response=\"{}\"",
            "zz".repeat(16)
        );
        assert_eq!(
            auth.verify(now, "INVITE", &header, "alice", "secret"),
            AuthResult::Rejected(MalformedDigest::BadResponse.into())
        );
        let short = header.replace(&"zz".repeat(16), "00ff");
        assert_eq!(
            auth.verify(now, "INVITE", &short, "alice", "secret"),
            AuthResult::Rejected(MalformedDigest::BadResponse.into())
        );
    }

    #[test]
    fn realm_is_quoted_in_challenges() {
        let mut auth =
            DigestAuthenticator::new(r#"we"ird\realm"#.into(), TTL, StdRng::seed_from_u64(3));
        let challenge = auth.challenge(Instant::now(), false).remove(0);
        assert!(
            challenge.starts_with(r#"Digest realm="we\"ird\\realm""#),
            "{challenge}"
        );
        assert_eq!(challenge_params(&challenge)["realm"], r#"we"ird\realm"#);
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
