//! The gateway's TOML configuration.
//!
//! Every key has a default, so an empty file (or none) is valid. A few keys
//! can be overridden from the environment: `ECHO_SIP_LISTEN`,
//! `ECHO_HTTP_LISTEN`, `ECHO_DATABASE_URL`, `ECHO_RTP_PORTS`,
//! `ECHO_MODELS_DIR`, `ECHO_VOCABULARY_DIR` and `ECHO_TODAY` (an empty
//! variable counts as unset).
//!
//! ```toml
//! [sip]
//! listen = "127.0.0.1:5060"     # UDP and TCP on the same address
//! advertised_host = ""          # host/IP for Contact/SDP; empty = listen ip
//! [http]
//! listen = "127.0.0.1:8080"
//! [database]
//! url = "sqlite://echo.db"
//! [rtp]
//! ports = "20000-20999"         # low-high, inclusive, both >= 1024
//! timeout_secs = 30             # hang up when RTP stops this long
//! [limits]
//! drain_timeout_secs = 30
//! [speech]
//! models_dir = "models"         # Whisper, Piper, ONNX Runtime (scripts/fetch-models.sh)
//! workers = 2                   # inference threads shared by all calls
//! vocabulary_dir = "../shared/data/clinic"
//! flow = ""                     # a flow file; empty = the shipped clinic flow
//! today = ""                    # YYYY-MM-DD for relative dates; empty = the local date
//! scheduler_url = ""            # booking webhook; empty = in-memory diary
//! whisper_window = "fit"        # utterance + 8 s of silence; "full": the 30 s window (~5x slower)
//! [[trunks]]
//! name = "carrier-a"
//! allow = ["198.51.100.0/24"]
//! username = "alice"            # with password: digest auth required
//! password = "secret"
//! max_calls = 100
//! max_cps = 10
//! [[routes]]
//! match = "echo"                # exact user part, "prefix*", or "*"
//! app = "echo"
//! answer_delay_ms = 0           # ring (180) this long before answering
//! staff_uri = "sip:frontdesk@192.0.2.10"  # REFER target for "talk to staff"
//! staff_number = "555 0100"     # said when the trunk refuses REFER
//! pause_ms = 200                # start recognising after this pause (0: off)
//! ```
//!
//! The file is read into a raw, all-strings shape and then validated key by
//! key, so that every error names the key (or environment variable) and the
//! problem, e.g. `rtp.ports: "30000-20000": low port is above high port`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use echo_media::MediaSettings;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::routing::{App, BadRouteMatch, RouteMatch, UnknownApp};

/// The longest `answer_delay_ms` accepted: ringing longer than a minute is
/// almost certainly a typo (and races the caller's INVITE timeouts).
pub const MAX_ANSWER_DELAY_MS: u64 = 60_000;

/// The gateway's validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[sip]`
    pub sip: SipConfig,
    /// `[http]`
    pub http: HttpConfig,
    /// `[database]`
    pub database: DatabaseConfig,
    /// `[rtp]`
    pub rtp: RtpConfig,
    /// `[limits]`
    pub limits: LimitsConfig,
    /// `[speech]`
    pub speech: SpeechConfig,
    /// `[[trunks]]`, in file order; empty means the implicit loopback trunk.
    pub trunks: Vec<TrunkConfig>,
    /// `[[routes]]`, in file order; built-in routes are added by the route table.
    pub routes: Vec<RouteConfig>,
    /// `[[trunks]]` as written, for the console to show and overlay.
    pub trunk_entries: Vec<TrunkEntry>,
    /// `[[routes]]` as written, for the console to show and overlay.
    pub route_entries: Vec<RouteEntry>,
}

/// `[sip]`: where SIP listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipConfig {
    /// UDP and TCP listen address.
    pub listen: SocketAddr,
    /// Host or IP for Contact and SDP, when it differs from the listen IP.
    pub advertised_host: Option<Host>,
}

impl SipConfig {
    /// The host to put in Contact and SDP: `advertised_host`, else the
    /// listen IP (which is useless to peers when it is unspecified).
    pub fn contact_host(&self) -> Host {
        self.advertised_host
            .clone()
            .unwrap_or(Host::Ip(self.listen.ip()))
    }
}

/// A host as it goes into Contact and SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP address (IPv6 unbracketed; SIP URIs add the brackets).
    Ip(IpAddr),
    /// A DNS name.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => ip.fmt(f),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// `[http]`: where the HTTP API and metrics listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// TCP listen address.
    pub listen: SocketAddr,
}

/// `[database]`: where calls and audit records are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// Connection URL; its backend is picked from the scheme.
    pub url: DatabaseUrl,
}

/// A database connection URL whose `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The full URL, password included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL scheme, e.g. `sqlite` or `postgres`.
    pub fn scheme(&self) -> &str {
        self.0.split_once(':').map_or("", |(scheme, _)| scheme)
    }

    fn redacted(&self) -> String {
        let url = &self.0;
        let Some(authority_start) = url.find("://").map(|i| i + 3) else {
            return redact_query(url);
        };
        let rest = &url[authority_start..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let redacted_authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***@{host}"),
                None => authority.to_owned(),
            },
            None => authority.to_owned(),
        };
        redact_query(&format!(
            "{}{}{}",
            &url[..authority_start],
            redacted_authority,
            &rest[authority_end..]
        ))
    }
}

/// Hides `password=` (and `pass=`, `pwd=`) query parameters.
fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _))
                if matches!(
                    key.to_ascii_lowercase().as_str(),
                    "password" | "pass" | "pwd"
                ) =>
            {
                format!("{key}=***")
            }
            _ => param.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `[rtp]`: media ports and liveness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpConfig {
    /// UDP ports to allocate RTP sockets from.
    pub ports: RtpPortRange,
    /// Hang up when no RTP arrives for this long.
    pub timeout: Duration,
}

/// An inclusive UDP port range, both ends at least 1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPortRange {
    low: u16,
    high: u16,
}

impl RtpPortRange {
    /// The lowest port.
    pub fn low(self) -> u16 {
        self.low
    }

    /// The highest port (inclusive).
    pub fn high(self) -> u16 {
        self.high
    }

    /// How many ports the range holds.
    pub fn len(self) -> usize {
        usize::from(self.high - self.low) + 1
    }

    /// Always false: a range holds at least one port.
    pub fn is_empty(self) -> bool {
        false
    }

    /// Whether `port` is in the range.
    pub fn contains(self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }

    fn parse(text: &str) -> Result<Self, Problem> {
        let bad = || Problem::NotPortRange(text.to_owned());
        let (low, high) = text.split_once('-').ok_or_else(bad)?;
        let low: u16 = low.trim().parse().map_err(|_| bad())?;
        let high: u16 = high.trim().parse().map_err(|_| bad())?;
        if low > high {
            return Err(Problem::PortRangeInverted(text.to_owned()));
        }
        if low < 1024 {
            return Err(Problem::PrivilegedPort {
                range: text.to_owned(),
                port: low,
            });
        }
        Ok(Self { low, high })
    }
}

impl fmt::Display for RtpPortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

/// `[limits]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// On shutdown, how long to let calls finish before hanging up.
    pub drain_timeout: Duration,
}

/// One `[[trunks]]` entry: a carrier or PBX allowed to send calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkConfig {
    /// Unique name (letters, digits, `-`, `_`, `.`), used in logs and metrics.
    pub name: String,
    /// Source networks this trunk calls from; at least one, host bits clear.
    pub allow: Vec<IpNet>,
    /// Digest credentials calls must prove, if set.
    pub credentials: Option<TrunkCredentials>,
    /// Most calls up at once.
    pub max_calls: Option<u32>,
    /// Most new calls per second.
    pub max_cps: Option<u32>,
}

/// Username and password a trunk must authenticate with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkCredentials {
    /// Digest username.
    pub username: String,
    /// Digest password.
    pub password: Password,
}

/// A password whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password itself: only for computing digests.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// Which user parts this route matches.
    pub pattern: RouteMatch,
    /// The app that answers.
    pub app: App,
    /// How long to ring before answering.
    pub answer_delay: Duration,
    /// Jitter buffer, endpointing, VAD and barge-in settings.
    pub media: MediaSettings,
    /// Where "talk to staff" transfers the call (REFER target).
    pub staff_uri: Option<String>,
    /// The number the bot says when the transfer cannot be made.
    pub staff_number: Option<String>,
}

/// `[speech]`: the engines and the dialogue of voice apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeechConfig {
    /// Folder with the models and libraries `scripts/fetch-models.sh` fetches.
    pub models_dir: PathBuf,
    /// Inference threads shared by all calls.
    pub workers: usize,
    /// Folder with the flow's vocabulary files.
    pub vocabulary_dir: PathBuf,
    /// A flow file; `None` is the shipped clinic flow.
    pub flow: Option<PathBuf>,
    /// The date relative dates count from; `None` is the local date.
    pub today: Option<chrono::NaiveDate>,
    /// The booking webhook; `None` books in an in-memory diary.
    pub scheduler_url: Option<String>,
    /// Whisper's encoder window: the utterance padded with 8 s of silence
    /// (`true`, the default: ~5× faster than the full window, within a few
    /// points of its accuracy) or the full 30 s (`false`).
    pub whisper_fit: bool,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        SpeechConfig {
            models_dir: PathBuf::from("models"),
            workers: 2,
            vocabulary_dir: PathBuf::from("../shared/data/clinic"),
            flow: None,
            today: None,
            scheduler_url: None,
            whisper_fit: true,
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has unknown keys or wrong types.
    #[error("{origin}: {source}")]
    Parse {
        /// The file name, or `<config>` for text.
        origin: String,
        /// The parser's message, which shows the offending line and key.
        source: toml::de::Error,
    },
    /// A key (or environment variable) has a bad value.
    #[error("{key}: {problem}")]
    Invalid {
        /// The key, e.g. `trunks[1].allow[0]`, or the variable, e.g. `ECHO_SIP_LISTEN`.
        key: String,
        /// What is wrong with it.
        problem: Problem,
    },
}

/// What is wrong with a configuration value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// Not `ip:port`.
    #[error("{0:?} is not ip:port")]
    NotSocketAddr(String),
    /// Not `low-high`.
    #[error("{0:?} is not low-high (e.g. \"20000-20999\")")]
    NotPortRange(String),
    /// `low > high`.
    #[error("{0:?}: low port is above high port")]
    PortRangeInverted(String),
    /// A port below 1024.
    #[error("{range:?}: port {port} is below 1024")]
    PrivilegedPort {
        /// The range as written.
        range: String,
        /// The offending port.
        port: u16,
    },
    /// Not `address/prefix` (or a bare address).
    #[error("{0:?} is not a CIDR")]
    NotCidr(String),
    /// A CIDR with bits set past its prefix, which usually means a typo
    /// that would allow far more than intended.
    #[error("{written:?} has host bits set (did you mean {network}?)")]
    HostBitsSet {
        /// The CIDR as written.
        written: String,
        /// The network it truncates to.
        network: IpNet,
    },
    /// The same network is allowed for two trunks, so neither would win.
    #[error("{network} is already allowed for trunk {trunk:?}")]
    DuplicateNetwork {
        /// The network.
        network: IpNet,
        /// The trunk that listed it first.
        trunk: String,
    },
    /// Not a host name or IP address.
    #[error("{0:?} is not a host name or IP address")]
    NotHost(String),
    /// An empty string or list where a value is needed.
    #[error("must not be empty")]
    Empty,
    /// Zero where at least one is needed.
    #[error("must be at least 1")]
    Zero,
    /// A number outside its range.
    #[error("{value} is outside {min}..={max}")]
    OutOfRange {
        /// What was written.
        value: f64,
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
    },
    /// A lower bound above its upper bound.
    #[error("{low} is above {high_key} = {high}")]
    AboveUpperBound {
        /// The lower bound.
        low: u64,
        /// The key of the upper bound.
        high_key: &'static str,
        /// The upper bound.
        high: u64,
    },
    /// A number above its maximum.
    #[error("{value} is above the maximum of {max}")]
    TooLarge {
        /// The value given.
        value: u64,
        /// The largest value accepted.
        max: u64,
    },
    /// A trunk name with characters unfit for logs and metric labels.
    #[error("{0:?} may contain only letters, digits, '-', '_' and '.'")]
    BadName(String),
    /// Two trunks with one name.
    #[error("duplicate trunk name {name:?} (also trunks[{first}])")]
    DuplicateTrunkName {
        /// The name.
        name: String,
        /// Index of the trunk that has it first.
        first: usize,
    },
    /// A password with no username.
    #[error("password is set without username")]
    PasswordWithoutUsername,
    /// A username with no password.
    #[error("username is set without password")]
    UsernameWithoutPassword,
    /// The database URL has no `scheme:`.
    #[error("{0:?} is not a URL (expected e.g. \"sqlite://echo.db\")")]
    NotUrl(String),
    /// A route pattern that is not `user`, `prefix*` or `*`.
    #[error(transparent)]
    BadRouteMatch(#[from] BadRouteMatch),
    /// Two routes with one pattern.
    #[error("duplicate route {pattern:?} (also routes[{first}])")]
    DuplicateRoute {
        /// The pattern.
        pattern: String,
        /// Index of the route that has it first.
        first: usize,
    },
    /// An app that does not exist.
    #[error(transparent)]
    UnknownApp(#[from] UnknownApp),
    /// A word outside its set.
    #[error("{value:?} is not one of: {allowed}")]
    NotOneOf {
        /// What was written.
        value: String,
        /// The accepted words.
        allowed: &'static str,
    },
    /// Not a `YYYY-MM-DD` date.
    #[error("{0:?} is not a date (expected YYYY-MM-DD)")]
    NotDate(String),
    /// Not a `sip:` or `sips:` URI.
    #[error("{0:?} is not a sip: or sips: URI")]
    NotSipUri(String),
}

fn invalid(key: impl Into<String>, problem: impl Into<Problem>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

// The file's shape, strings as written, so validation can name the key.

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    sip: RawSip,
    http: RawHttp,
    database: RawDatabase,
    rtp: RawRtp,
    limits: RawLimits,
    speech: RawSpeech,
    trunks: Vec<TrunkEntry>,
    routes: Vec<RouteEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSpeech {
    models_dir: String,
    workers: u64,
    vocabulary_dir: String,
    flow: String,
    today: String,
    scheduler_url: String,
    whisper_window: String,
}

impl Default for RawSpeech {
    fn default() -> Self {
        let d = SpeechConfig::default();
        Self {
            models_dir: d.models_dir.display().to_string(),
            workers: d.workers as u64,
            vocabulary_dir: d.vocabulary_dir.display().to_string(),
            flow: String::new(),
            today: String::new(),
            scheduler_url: String::new(),
            whisper_window: "fit".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSip {
    listen: String,
    advertised_host: String,
}

impl Default for RawSip {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5060".into(),
            advertised_host: String::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawHttp {
    listen: String,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawDatabase {
    url: String,
}

impl Default for RawDatabase {
    fn default() -> Self {
        Self {
            url: "sqlite://echo.db".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRtp {
    ports: String,
    timeout_secs: u64,
}

impl Default for RawRtp {
    fn default() -> Self {
        Self {
            ports: "20000-20999".into(),
            timeout_secs: 30,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawLimits {
    drain_timeout_secs: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            drain_timeout_secs: 30,
        }
    }
}

/// One `[[trunks]]` entry as written: the file's keys, unvalidated. The
/// console stores its edits in this shape; [`validate_trunks`] checks it.
/// `Debug` hides the password.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkEntry {
    /// `name`
    pub name: String,
    /// `allow`: CIDRs.
    #[serde(default)]
    pub allow: Vec<String>,
    /// `username`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `password`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// `max_calls`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_calls: Option<u32>,
    /// `max_cps`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cps: Option<u32>,
}

impl fmt::Debug for TrunkEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrunkEntry")
            .field("name", &self.name)
            .field("allow", &self.allow)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("max_calls", &self.max_calls)
            .field("max_cps", &self.max_cps)
            .finish()
    }
}

/// One `[[routes]]` entry as written: the file's keys, unvalidated. The
/// console stores its edits in this shape; [`validate_routes`] checks it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    /// `match`: `user`, `prefix*` or `*`.
    #[serde(rename = "match")]
    pub pattern: String,
    /// `app`
    pub app: String,
    /// `answer_delay_ms`
    #[serde(default)]
    pub answer_delay_ms: u64,
    /// `jitter_min_ms`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_min_ms: Option<u64>,
    /// `jitter_max_ms`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_max_ms: Option<u64>,
    /// `min_speech_ms`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_speech_ms: Option<u64>,
    /// `silence_ms`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_ms: Option<u64>,
    /// `max_utterance_ms`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_utterance_ms: Option<u64>,
    /// `vad_threshold`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vad_threshold: Option<f64>,
    /// `barge_in_min_ms`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barge_in_min_ms: Option<u64>,
    /// `pause_ms`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_ms: Option<u64>,
    /// `staff_uri`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_uri: Option<String>,
    /// `staff_number`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_number: Option<String>,
}

/// Validates trunk entries as the file's `[[trunks]]` would be (keys in
/// errors are `trunks[i].field`).
pub fn validate_trunks(entries: Vec<TrunkEntry>) -> Result<Vec<TrunkConfig>, ConfigError> {
    trunks(entries)
}

/// Validates route entries as the file's `[[routes]]` would be (keys in
/// errors are `routes[i].field`).
pub fn validate_routes(entries: Vec<RouteEntry>) -> Result<Vec<RouteConfig>, ConfigError> {
    routes(entries)
}

/// Where a value came from: its key in the file, or the variable that
/// overrode it.
fn overridden(
    env: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    file_key: &'static str,
    value: &mut String,
) -> &'static str {
    match env(var).filter(|v| !v.is_empty()) {
        Some(v) => {
            *value = v;
            var
        }
        None => file_key,
    }
}

impl Config {
    /// Loads the file at `path` (or only the defaults, with `None`), then
    /// applies the `ECHO_*` overrides that `env` returns, and validates.
    /// Pass `&|name| std::env::var(name).ok()` for the real environment.
    pub fn load(
        path: Option<&Path>,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Self::from_raw(RawConfig::default(), env);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), env)
    }

    /// Like [`load`](Self::load), from TOML text.
    pub fn from_toml(
        text: &str,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Self::parse(text, "<config>", env)
    }

    fn parse(
        text: &str,
        origin: &str,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|source| ConfigError::Parse {
            origin: origin.to_owned(),
            source,
        })?;
        Self::from_raw(raw, env)
    }

    fn from_raw(
        mut raw: RawConfig,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let sip_key = overridden(env, "ECHO_SIP_LISTEN", "sip.listen", &mut raw.sip.listen);
        let http_key = overridden(env, "ECHO_HTTP_LISTEN", "http.listen", &mut raw.http.listen);
        let db_key = overridden(
            env,
            "ECHO_DATABASE_URL",
            "database.url",
            &mut raw.database.url,
        );
        let rtp_key = overridden(env, "ECHO_RTP_PORTS", "rtp.ports", &mut raw.rtp.ports);
        overridden(
            env,
            "ECHO_MODELS_DIR",
            "speech.models_dir",
            &mut raw.speech.models_dir,
        );
        overridden(
            env,
            "ECHO_VOCABULARY_DIR",
            "speech.vocabulary_dir",
            &mut raw.speech.vocabulary_dir,
        );
        let today_key = overridden(env, "ECHO_TODAY", "speech.today", &mut raw.speech.today);

        let sip = SipConfig {
            listen: socket_addr(sip_key, &raw.sip.listen)?,
            advertised_host: advertised_host(&raw.sip.advertised_host)?,
        };
        let http = HttpConfig {
            listen: socket_addr(http_key, &raw.http.listen)?,
        };
        let database = DatabaseConfig {
            url: database_url(db_key, &raw.database.url)?,
        };
        if raw.rtp.timeout_secs == 0 {
            return Err(invalid("rtp.timeout_secs", Problem::Zero));
        }
        let rtp = RtpConfig {
            ports: RtpPortRange::parse(&raw.rtp.ports).map_err(|p| invalid(rtp_key, p))?,
            timeout: Duration::from_secs(raw.rtp.timeout_secs),
        };
        let limits = LimitsConfig {
            drain_timeout: Duration::from_secs(raw.limits.drain_timeout_secs),
        };
        let speech = speech(raw.speech, today_key)?;
        let trunk_entries = raw.trunks.clone();
        let route_entries = raw.routes.clone();
        let trunks = trunks(raw.trunks)?;
        let routes = routes(raw.routes)?;
        Ok(Config {
            sip,
            http,
            database,
            rtp,
            limits,
            speech,
            trunks,
            routes,
            trunk_entries,
            route_entries,
        })
    }
}

impl Default for Config {
    /// The embedded defaults: what an empty file gives.
    fn default() -> Self {
        Config {
            sip: SipConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
                advertised_host: None,
            },
            http: HttpConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            },
            database: DatabaseConfig {
                url: DatabaseUrl("sqlite://echo.db".into()),
            },
            rtp: RtpConfig {
                ports: RtpPortRange {
                    low: 20000,
                    high: 20999,
                },
                timeout: Duration::from_secs(30),
            },
            limits: LimitsConfig {
                drain_timeout: Duration::from_secs(30),
            },
            speech: SpeechConfig::default(),
            trunks: Vec::new(),
            routes: Vec::new(),
            trunk_entries: Vec::new(),
            route_entries: Vec::new(),
        }
    }
}

fn socket_addr(key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.trim()
        .parse()
        .map_err(|_| invalid(key, Problem::NotSocketAddr(text.to_owned())))
}

fn advertised_host(text: &str) -> Result<Option<Host>, ConfigError> {
    const KEY: &str = "sip.advertised_host";
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        if ip.is_unspecified() {
            return Err(invalid(KEY, Problem::NotHost(text.to_owned())));
        }
        return Ok(Some(Host::Ip(ip)));
    }
    let is_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.len() <= 253 && name.split('.').all(is_label) {
        Ok(Some(Host::Name(text.to_owned())))
    } else {
        Err(invalid(KEY, Problem::NotHost(text.to_owned())))
    }
}

fn database_url(key: &str, text: &str) -> Result<DatabaseUrl, ConfigError> {
    let url = DatabaseUrl(text.trim().to_owned());
    let scheme = url.scheme();
    let valid_scheme = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        // Show the redacted form: a malformed URL may still hold a password.
        return Err(invalid(key, Problem::NotUrl(url.redacted())));
    }
    Ok(url)
}

fn cidr(key: &str, text: &str) -> Result<IpNet, ConfigError> {
    let trimmed = text.trim();
    let net = match trimmed.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => match trimmed.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => return Err(invalid(key, Problem::NotCidr(text.to_owned()))),
        },
    };
    if net.trunc() != net {
        return Err(invalid(
            key,
            Problem::HostBitsSet {
                written: text.to_owned(),
                network: net.trunc(),
            },
        ));
    }
    Ok(net)
}

fn trunks(raw: Vec<TrunkEntry>) -> Result<Vec<TrunkConfig>, ConfigError> {
    let mut trunks: Vec<TrunkConfig> = Vec::with_capacity(raw.len());
    for (i, trunk) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("trunks[{i}].{field}");
        if trunk.name.is_empty() {
            return Err(invalid(key("name"), Problem::Empty));
        }
        if !trunk
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(invalid(key("name"), Problem::BadName(trunk.name)));
        }
        if let Some(first) = trunks.iter().position(|t| t.name == trunk.name) {
            return Err(invalid(
                key("name"),
                Problem::DuplicateTrunkName {
                    name: trunk.name,
                    first,
                },
            ));
        }
        if trunk.allow.is_empty() {
            return Err(invalid(key("allow"), Problem::Empty));
        }
        let mut allow = Vec::with_capacity(trunk.allow.len());
        for (j, text) in trunk.allow.iter().enumerate() {
            let net_key = format!("trunks[{i}].allow[{j}]");
            let net = cidr(&net_key, text)?;
            let earlier = trunks
                .iter()
                .find(|t| t.allow.contains(&net))
                .map(|t| t.name.clone())
                .or_else(|| allow.contains(&net).then(|| trunk.name.clone()));
            if let Some(other) = earlier {
                return Err(invalid(
                    net_key,
                    Problem::DuplicateNetwork {
                        network: net,
                        trunk: other,
                    },
                ));
            }
            allow.push(net);
        }
        let credentials = match (trunk.username, trunk.password) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(invalid(key("password"), Problem::PasswordWithoutUsername))
            }
            (Some(_), None) => {
                return Err(invalid(key("username"), Problem::UsernameWithoutPassword))
            }
            (Some(username), Some(password)) => {
                if username.is_empty() {
                    return Err(invalid(key("username"), Problem::Empty));
                }
                if password.is_empty() {
                    return Err(invalid(key("password"), Problem::Empty));
                }
                Some(TrunkCredentials {
                    username,
                    password: Password(password),
                })
            }
        };
        if trunk.max_calls == Some(0) {
            return Err(invalid(key("max_calls"), Problem::Zero));
        }
        if trunk.max_cps == Some(0) {
            return Err(invalid(key("max_cps"), Problem::Zero));
        }
        trunks.push(TrunkConfig {
            name: trunk.name,
            allow,
            credentials,
            max_calls: trunk.max_calls,
            max_cps: trunk.max_cps,
        });
    }
    Ok(trunks)
}

fn speech(raw: RawSpeech, today_key: &str) -> Result<SpeechConfig, ConfigError> {
    let non_empty = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    if raw.models_dir.trim().is_empty() {
        return Err(invalid("speech.models_dir", Problem::Empty));
    }
    if raw.workers == 0 || raw.workers > 64 {
        return Err(invalid(
            "speech.workers",
            Problem::OutOfRange {
                value: raw.workers as f64,
                min: 1.0,
                max: 64.0,
            },
        ));
    }
    let today = match non_empty(raw.today) {
        None => None,
        Some(t) => Some(
            chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d")
                .map_err(|_| invalid(today_key, Problem::NotDate(t)))?,
        ),
    };
    let whisper_fit = match raw.whisper_window.trim() {
        "full" | "" => false,
        "fit" => true,
        other => {
            return Err(invalid(
                "speech.whisper_window",
                Problem::NotOneOf {
                    value: other.to_owned(),
                    allowed: "full, fit",
                },
            ))
        }
    };
    Ok(SpeechConfig {
        whisper_fit,
        models_dir: PathBuf::from(raw.models_dir.trim()),
        workers: raw.workers as usize,
        vocabulary_dir: PathBuf::from(raw.vocabulary_dir.trim()),
        flow: non_empty(raw.flow).map(PathBuf::from),
        today,
        scheduler_url: non_empty(raw.scheduler_url),
    })
}

fn routes(raw: Vec<RouteEntry>) -> Result<Vec<RouteConfig>, ConfigError> {
    let mut routes: Vec<RouteConfig> = Vec::with_capacity(raw.len());
    for (i, route) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("routes[{i}].{field}");
        let pattern: RouteMatch = route
            .pattern
            .parse()
            .map_err(|e: BadRouteMatch| invalid(key("match"), e))?;
        if let Some(first) = routes.iter().position(|r| r.pattern == pattern) {
            return Err(invalid(
                key("match"),
                Problem::DuplicateRoute {
                    pattern: route.pattern,
                    first,
                },
            ));
        }
        let app: App = route
            .app
            .parse()
            .map_err(|e: UnknownApp| invalid(key("app"), e))?;
        if route.answer_delay_ms > MAX_ANSWER_DELAY_MS {
            return Err(invalid(
                key("answer_delay_ms"),
                Problem::TooLarge {
                    value: route.answer_delay_ms,
                    max: MAX_ANSWER_DELAY_MS,
                },
            ));
        }
        let media = route_media(&route, &key)?;
        let staff_uri = match route.staff_uri.filter(|u| !u.trim().is_empty()) {
            None => None,
            Some(uri) => {
                let uri = uri.trim().to_owned();
                let lower = uri.to_ascii_lowercase();
                let ok = (lower.starts_with("sip:") || lower.starts_with("sips:"))
                    && uri.contains('@')
                    && !uri.contains(|c: char| c.is_whitespace() || c == '<' || c == '>');
                if !ok {
                    return Err(invalid(key("staff_uri"), Problem::NotSipUri(uri)));
                }
                Some(uri)
            }
        };
        routes.push(RouteConfig {
            pattern,
            app,
            answer_delay: Duration::from_millis(route.answer_delay_ms),
            media,
            staff_uri,
            staff_number: route.staff_number.filter(|n| !n.trim().is_empty()),
        });
    }
    Ok(routes)
}

/// A route's media settings: the engine's defaults, overridden key by key.
fn route_media(
    route: &RouteEntry,
    key: &impl Fn(&str) -> String,
) -> Result<MediaSettings, ConfigError> {
    let mut media = MediaSettings::default();
    let ms = |field: &str, value: Option<u64>, min: u64, max: u64, default: Duration| match value {
        None => Ok(default),
        Some(v) if (min..=max).contains(&v) => Ok(Duration::from_millis(v)),
        Some(v) => Err(invalid(
            key(field),
            Problem::OutOfRange {
                value: v as f64,
                min: min as f64,
                max: max as f64,
            },
        )),
    };
    media.jitter_min = ms(
        "jitter_min_ms",
        route.jitter_min_ms,
        0,
        1000,
        media.jitter_min,
    )?;
    media.jitter_max = ms(
        "jitter_max_ms",
        route.jitter_max_ms,
        20,
        2000,
        media.jitter_max,
    )?;
    if media.jitter_min > media.jitter_max {
        return Err(invalid(
            key("jitter_min_ms"),
            Problem::AboveUpperBound {
                low: media.jitter_min.as_millis() as u64,
                high_key: "jitter_max_ms",
                high: media.jitter_max.as_millis() as u64,
            },
        ));
    }
    media.min_speech = ms(
        "min_speech_ms",
        route.min_speech_ms,
        20,
        2000,
        media.min_speech,
    )?;
    media.silence = ms("silence_ms", route.silence_ms, 100, 5000, media.silence)?;
    media.max_utterance = ms(
        "max_utterance_ms",
        route.max_utterance_ms,
        1000,
        60_000,
        media.max_utterance,
    )?;
    media.barge_in_min = ms(
        "barge_in_min_ms",
        route.barge_in_min_ms,
        20,
        2000,
        media.barge_in_min,
    )?;
    media.pause = ms(
        "pause_ms",
        route.pause_ms,
        0,
        5000,
        Duration::from_millis(200),
    )?;
    if media.pause >= media.silence {
        // A pause as long as the silence is the end itself: no speculation.
        media.pause = Duration::ZERO;
    }
    if let Some(t) = route.vad_threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(invalid(
                key("vad_threshold"),
                Problem::OutOfRange {
                    value: t,
                    min: 0.0,
                    max: 1.0,
                },
            ));
        }
        media.vad_threshold = t as f32;
    }
    Ok(media)
}

/// Prints the effective configuration as TOML, passwords hidden.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[sip]")?;
        writeln!(f, "listen = \"{}\"", self.sip.listen)?;
        let advertised = self.sip.advertised_host.as_ref().map(Host::to_string);
        writeln!(f, "advertised_host = {:?}", advertised.unwrap_or_default())?;
        writeln!(f, "\n[http]")?;
        writeln!(f, "listen = \"{}\"", self.http.listen)?;
        writeln!(f, "\n[database]")?;
        writeln!(f, "url = {:?}", self.database.url.redacted())?;
        writeln!(f, "\n[rtp]")?;
        writeln!(f, "ports = \"{}\"", self.rtp.ports)?;
        writeln!(f, "timeout_secs = {}", self.rtp.timeout.as_secs())?;
        writeln!(f, "\n[limits]")?;
        writeln!(
            f,
            "drain_timeout_secs = {}",
            self.limits.drain_timeout.as_secs()
        )?;
        let sp = &self.speech;
        writeln!(f, "\n[speech]")?;
        writeln!(f, "models_dir = {:?}", sp.models_dir.display().to_string())?;
        writeln!(f, "workers = {}", sp.workers)?;
        writeln!(
            f,
            "vocabulary_dir = {:?}",
            sp.vocabulary_dir.display().to_string()
        )?;
        let flow = sp.flow.as_ref().map(|p| p.display().to_string());
        writeln!(f, "flow = {:?}", flow.unwrap_or_default())?;
        let today = sp.today.map(|d| d.to_string());
        writeln!(f, "today = {:?}", today.unwrap_or_default())?;
        writeln!(
            f,
            "scheduler_url = {:?}",
            sp.scheduler_url
                .as_deref()
                .map(redact_query)
                .unwrap_or_default()
        )?;
        let window = if sp.whisper_fit { "fit" } else { "full" };
        writeln!(f, "whisper_window = \"{window}\"")?;
        for trunk in &self.trunks {
            writeln!(f, "\n[[trunks]]")?;
            writeln!(f, "name = {:?}", trunk.name)?;
            let allow: Vec<String> = trunk.allow.iter().map(|n| format!("\"{n}\"")).collect();
            writeln!(f, "allow = [{}]", allow.join(", "))?;
            if let Some(credentials) = &trunk.credentials {
                writeln!(f, "username = {:?}", credentials.username)?;
                writeln!(f, "password = \"***\"")?;
            }
            if let Some(max) = trunk.max_calls {
                writeln!(f, "max_calls = {max}")?;
            }
            if let Some(max) = trunk.max_cps {
                writeln!(f, "max_cps = {max}")?;
            }
        }
        for route in &self.routes {
            writeln!(f, "\n[[routes]]")?;
            writeln!(f, "match = \"{}\"", route.pattern)?;
            writeln!(f, "app = \"{}\"", route.app)?;
            writeln!(f, "answer_delay_ms = {}", route.answer_delay.as_millis())?;
            let m = &route.media;
            writeln!(f, "jitter_min_ms = {}", m.jitter_min.as_millis())?;
            writeln!(f, "jitter_max_ms = {}", m.jitter_max.as_millis())?;
            writeln!(f, "min_speech_ms = {}", m.min_speech.as_millis())?;
            writeln!(f, "silence_ms = {}", m.silence.as_millis())?;
            writeln!(f, "max_utterance_ms = {}", m.max_utterance.as_millis())?;
            writeln!(f, "vad_threshold = {}", m.vad_threshold)?;
            writeln!(f, "barge_in_min_ms = {}", m.barge_in_min.as_millis())?;
            writeln!(f, "pause_ms = {}", m.pause.as_millis())?;
            if let Some(uri) = &route.staff_uri {
                writeln!(f, "staff_uri = {uri:?}")?;
            }
            if let Some(number) = &route.staff_number {
                writeln!(f, "staff_number = {number:?}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load(toml: &str) -> Result<Config, ConfigError> {
        Config::from_toml(toml, &no_env)
    }

    fn error(toml: &str) -> String {
        load(toml)
            .expect_err("config should be rejected")
            .to_string()
    }

    fn env_error(var: &str, value: &str) -> String {
        let env = |name: &str| (name == var).then(|| value.to_owned());
        Config::from_toml("", &env)
            .expect_err("override should be rejected")
            .to_string()
    }

    const FULL: &str = r#"
        [sip]
        listen = "0.0.0.0:5070"
        advertised_host = "sip.example.org"
        [http]
        listen = "[::1]:8081"
        [database]
        url = "postgres://echo:hunter2@db.example.org/echo"
        [rtp]
        ports = "30000-30099"
        timeout_secs = 10
        [limits]
        drain_timeout_secs = 5
        [[trunks]]
        name = "carrier-a"
        allow = ["198.51.100.0/24", "127.0.0.1/32"]
        username = "alice"
        password = "s3cret-pw"
        max_calls = 100
        max_cps = 10
        [[trunks]]
        name = "pbx"
        allow = ["2001:db8::/32", "203.0.113.9"]
        [[routes]]
        match = "echo"
        app = "echo"
        answer_delay_ms = 1500
        [[routes]]
        match = "49*"
        app = "echo"
    "#;

    #[test]
    fn empty_file_and_no_file_give_the_defaults() {
        assert_eq!(load("").unwrap(), Config::default());
        assert_eq!(Config::load(None, &no_env).unwrap(), Config::default());
        assert_eq!(load("[sip]\n[rtp]\n").unwrap(), Config::default());
    }

    #[test]
    fn full_file_parses() {
        let config = load(FULL).unwrap();
        assert_eq!(config.sip.listen, "0.0.0.0:5070".parse().unwrap());
        assert_eq!(
            config.sip.contact_host(),
            Host::Name("sip.example.org".into())
        );
        assert_eq!(config.http.listen, "[::1]:8081".parse().unwrap());
        assert_eq!(
            config.database.url.expose(),
            "postgres://echo:hunter2@db.example.org/echo"
        );
        assert_eq!(config.database.url.scheme(), "postgres");
        assert_eq!(
            (config.rtp.ports.low(), config.rtp.ports.high()),
            (30000, 30099)
        );
        assert_eq!(config.rtp.ports.len(), 100);
        assert!(config.rtp.ports.contains(30099) && !config.rtp.ports.contains(30100));
        assert_eq!(config.rtp.timeout, Duration::from_secs(10));
        assert_eq!(config.limits.drain_timeout, Duration::from_secs(5));
        let a = &config.trunks[0];
        assert_eq!(a.name, "carrier-a");
        assert_eq!(a.allow.len(), 2);
        let credentials = a.credentials.as_ref().unwrap();
        assert_eq!(credentials.username, "alice");
        assert_eq!(credentials.password.expose(), "s3cret-pw");
        assert_eq!((a.max_calls, a.max_cps), (Some(100), Some(10)));
        let pbx = &config.trunks[1];
        assert_eq!(pbx.allow[1], "203.0.113.9/32".parse::<IpNet>().unwrap());
        assert!(pbx.credentials.is_none());
        assert_eq!(config.routes[0].answer_delay, Duration::from_millis(1500));
        assert_eq!(config.routes[1].pattern, RouteMatch::Prefix("49".into()));
        assert_eq!(config.routes[1].answer_delay, Duration::ZERO);
    }

    #[test]
    fn contact_host_falls_back_to_the_listen_ip() {
        let config = Config::default();
        assert_eq!(
            config.sip.contact_host(),
            Host::Ip("127.0.0.1".parse().unwrap())
        );
        let config = load("[sip]\nadvertised_host = \"[2001:db8::1]\"").unwrap();
        assert_eq!(config.sip.contact_host().to_string(), "2001:db8::1");
    }

    #[test]
    fn display_and_debug_hide_secrets() {
        let config = load(FULL).unwrap();
        for text in [
            config.to_string(),
            format!("{config:?}"),
            format!("{config:#?}"),
        ] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!text.contains("s3cret-pw"), "{text}");
            assert!(text.contains("alice"), "{text}");
        }
        assert!(config
            .to_string()
            .contains("url = \"postgres://echo:***@db.example.org/echo\""));
    }

    #[test]
    fn display_round_trips() {
        let config = load(FULL).unwrap();
        let mut reparsed = load(&config.to_string()).unwrap();
        // Secrets are printed hidden, so restore them before comparing.
        reparsed.database.url = config.database.url.clone();
        reparsed.trunks[0].credentials = config.trunks[0].credentials.clone();
        // The entries as written differ in form (defaults printed out).
        reparsed.trunk_entries = config.trunk_entries.clone();
        reparsed.route_entries = config.route_entries.clone();
        assert_eq!(reparsed, config);
        assert_eq!(
            load(&Config::default().to_string()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn database_url_redaction() {
        let cases = [
            ("sqlite://echo.db", "sqlite://echo.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("postgres://u:p@h:5432/db", "postgres://u:***@h:5432/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://u:p:q@h/db?sslmode=require",
                "postgres://u:***@h/db?sslmode=require",
            ),
            (
                "postgres://h/db?user=u&password=p",
                "postgres://h/db?user=u&password=***",
            ),
        ];
        for (url, shown) in cases {
            let url = DatabaseUrl(url.into());
            assert_eq!(url.to_string(), shown);
            assert_eq!(format!("{url:?}"), format!("DatabaseUrl({shown:?})"));
        }
        assert_eq!(format!("{:?}", Password::new("x")), "Password(***)");
    }

    #[test]
    fn env_overrides() {
        let env = |name: &str| {
            Some(
                match name {
                    "ECHO_SIP_LISTEN" => "10.0.0.1:5080",
                    "ECHO_HTTP_LISTEN" => "0.0.0.0:9090",
                    "ECHO_DATABASE_URL" => "sqlite:///var/lib/echo/echo.db",
                    "ECHO_RTP_PORTS" => "40000-40001",
                    _ => return None,
                }
                .to_owned(),
            )
        };
        let config = Config::from_toml(FULL, &env).unwrap();
        assert_eq!(config.sip.listen, "10.0.0.1:5080".parse().unwrap());
        assert_eq!(config.http.listen, "0.0.0.0:9090".parse().unwrap());
        assert_eq!(
            config.database.url.expose(),
            "sqlite:///var/lib/echo/echo.db"
        );
        assert_eq!(config.rtp.ports.to_string(), "40000-40001");
        // Overrides apply over the defaults too, and one at a time.
        let only_sip = |name: &str| (name == "ECHO_SIP_LISTEN").then(|| "[::]:5060".to_owned());
        let config = Config::load(None, &only_sip).unwrap();
        assert_eq!(config.sip.listen, "[::]:5060".parse().unwrap());
        assert_eq!(config.http, Config::default().http);
        // An empty variable counts as unset.
        let empty = |_: &str| Some(String::new());
        assert_eq!(Config::load(None, &empty).unwrap(), Config::default());
    }

    #[test]
    fn env_override_errors_name_the_variable() {
        assert_eq!(
            env_error("ECHO_SIP_LISTEN", "localhost"),
            r#"ECHO_SIP_LISTEN: "localhost" is not ip:port"#
        );
        assert_eq!(
            env_error("ECHO_HTTP_LISTEN", "8080"),
            r#"ECHO_HTTP_LISTEN: "8080" is not ip:port"#
        );
        assert_eq!(
            env_error("ECHO_DATABASE_URL", "echo.db"),
            r#"ECHO_DATABASE_URL: "echo.db" is not a URL (expected e.g. "sqlite://echo.db")"#
        );
        assert_eq!(
            env_error("ECHO_RTP_PORTS", "30000-20000"),
            r#"ECHO_RTP_PORTS: "30000-20000": low port is above high port"#
        );
    }

    #[test]
    fn value_errors_name_the_key() {
        let cases: &[(&str, &str)] = &[
            (
                "[sip]\nlisten = \"localhost\"",
                r#"sip.listen: "localhost" is not ip:port"#,
            ),
            (
                "[sip]\nadvertised_host = \"bad host\"",
                r#"sip.advertised_host: "bad host" is not a host name or IP address"#,
            ),
            (
                "[sip]\nadvertised_host = \"0.0.0.0\"",
                r#"sip.advertised_host: "0.0.0.0" is not a host name or IP address"#,
            ),
            (
                "[http]\nlisten = \"127.0.0.1\"",
                r#"http.listen: "127.0.0.1" is not ip:port"#,
            ),
            (
                "[database]\nurl = \"\"",
                r#"database.url: "" is not a URL (expected e.g. "sqlite://echo.db")"#,
            ),
            (
                "[rtp]\nports = \"30000-20000\"",
                r#"rtp.ports: "30000-20000": low port is above high port"#,
            ),
            (
                "[rtp]\nports = \"20000\"",
                r#"rtp.ports: "20000" is not low-high (e.g. "20000-20999")"#,
            ),
            (
                "[rtp]\nports = \"20000-70000\"",
                r#"rtp.ports: "20000-70000" is not low-high (e.g. "20000-20999")"#,
            ),
            (
                "[rtp]\nports = \"80-2000\"",
                r#"rtp.ports: "80-2000": port 80 is below 1024"#,
            ),
            (
                "[rtp]\ntimeout_secs = 0",
                "rtp.timeout_secs: must be at least 1",
            ),
        ];
        for (toml, message) in cases {
            assert_eq!(error(toml), *message, "for {toml}");
        }
    }

    fn trunk_error(body: &str) -> String {
        error(&format!(
            "[[trunks]]\nname = \"a\"\nallow = [\"127.0.0.1/32\"]\n[[trunks]]\n{body}"
        ))
    }

    #[test]
    fn trunk_errors_name_the_key() {
        let cases: &[(&str, &str)] = &[
            (
                "name = \"b\"\nallow = [\"10.0.0.0/8\", \"10.0.0.300/8\"]",
                r#"trunks[1].allow[1]: "10.0.0.300/8" is not a CIDR"#,
            ),
            (
                "name = \"b\"\nallow = [\"10.0.0.300/8\"]",
                r#"trunks[1].allow[0]: "10.0.0.300/8" is not a CIDR"#,
            ),
            (
                "name = \"b\"\nallow = [\"10.1.2.3/8\"]",
                r#"trunks[1].allow[0]: "10.1.2.3/8" has host bits set (did you mean 10.0.0.0/8?)"#,
            ),
            (
                "name = \"b\"\nallow = [\"127.0.0.1\"]",
                r#"trunks[1].allow[0]: 127.0.0.1/32 is already allowed for trunk "a""#,
            ),
            (
                "name = \"b\"\nallow = [\"10.0.0.0/8\", \"10.0.0.0/8\"]",
                r#"trunks[1].allow[1]: 10.0.0.0/8 is already allowed for trunk "b""#,
            ),
            (
                "name = \"b\"\nallow = []",
                "trunks[1].allow: must not be empty",
            ),
            ("name = \"b\"", "trunks[1].allow: must not be empty"),
            (
                "name = \"a\"\nallow = [\"10.0.0.0/8\"]",
                r#"trunks[1].name: duplicate trunk name "a" (also trunks[0])"#,
            ),
            (
                "name = \"\"\nallow = [\"10.0.0.0/8\"]",
                "trunks[1].name: must not be empty",
            ),
            (
                "name = \"carrier b\"\nallow = [\"10.0.0.0/8\"]",
                r#"trunks[1].name: "carrier b" may contain only letters, digits, '-', '_' and '.'"#,
            ),
            (
                "name = \"b\"\nallow = [\"10.0.0.0/8\"]\npassword = \"x\"",
                "trunks[1].password: password is set without username",
            ),
            (
                "name = \"b\"\nallow = [\"10.0.0.0/8\"]\nusername = \"x\"",
                "trunks[1].username: username is set without password",
            ),
            (
                "name = \"b\"\nallow = [\"10.0.0.0/8\"]\nusername = \"x\"\npassword = \"\"",
                "trunks[1].password: must not be empty",
            ),
            (
                "name = \"b\"\nallow = [\"10.0.0.0/8\"]\nmax_calls = 0",
                "trunks[1].max_calls: must be at least 1",
            ),
            (
                "name = \"b\"\nallow = [\"10.0.0.0/8\"]\nmax_cps = 0",
                "trunks[1].max_cps: must be at least 1",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(trunk_error(body), *message, "for {body}");
        }
    }

    #[test]
    fn route_errors_name_the_key() {
        let cases: &[(&str, &str)] = &[
            (
                "[[routes]]\nmatch = \"echo\"\napp = \"clinc\"",
                r#"routes[0].app: unknown app "clinc" (known: echo, clinic)"#,
            ),
            ("[[routes]]\nmatch = \"\"\napp = \"echo\"", "routes[0].match: must not be empty"),
            (
                "[[routes]]\nmatch = \"4*9\"\napp = \"echo\"",
                r#"routes[0].match: "4*9": '*' may only end the pattern"#,
            ),
            (
                "[[routes]]\nmatch = \"*\"\napp = \"echo\"\n[[routes]]\nmatch = \"*\"\napp = \"echo\"",
                r#"routes[1].match: duplicate route "*" (also routes[0])"#,
            ),
            (
                "[[routes]]\nmatch = \"1\"\napp = \"echo\"\nanswer_delay_ms = 60001",
                "routes[0].answer_delay_ms: 60001 is above the maximum of 60000",
            ),
        ];
        for (toml, message) in cases {
            assert_eq!(error(toml), *message, "for {toml}");
        }
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_rejected() {
        let message = error("[sip]\nlisten = \"127.0.0.1:5060\"\nlisen = \"x\"");
        assert!(message.starts_with("<config>: "), "{message}");
        assert!(message.contains("unknown field `lisen`"), "{message}");
        assert!(error("[sipp]").contains("unknown field `sipp`"));
        assert!(error("[[trunks]]\nname = \"a\"\nallow = []\nmaxcalls = 1")
            .contains("unknown field `maxcalls`"));
        assert!(
            error("[[routes]]\nmatch = \"a\"\napp = \"echo\"\ndelay = 1")
                .contains("unknown field `delay`")
        );
        assert!(error("[rtp]\ntimeout_secs = \"30\"").contains("invalid type"));
        assert!(error("[[routes]]\napp = \"echo\"").contains("missing field `match`"));
    }

    #[test]
    fn load_reads_files_and_names_them_in_errors() {
        let dir = std::env::temp_dir().join(format!("echo-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(&good, FULL).unwrap();
        assert_eq!(
            Config::load(Some(&good), &no_env).unwrap(),
            load(FULL).unwrap()
        );
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "oops = 1").unwrap();
        let message = Config::load(Some(&bad), &no_env).unwrap_err().to_string();
        assert!(message.starts_with(&bad.display().to_string()), "{message}");
        let missing = dir.join("missing.toml");
        let err = Config::load(Some(&missing), &no_env).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
