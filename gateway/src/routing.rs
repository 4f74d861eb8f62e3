//! Where an incoming call comes from (its trunk, matched by source IP), whether
//! that trunk may place another call now (admission), and which app answers
//! it (routes on the Request-URI user part).
//!
//! Pure logic: time comes in as `now`, nothing here reads the clock.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::config::{RouteConfig, TrunkConfig, TrunkCredentials};

/// The application that handles an answered call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum App {
    /// Plays the caller's audio back to them.
    Echo,
    /// The clinic's voice bot: recognise, understand, answer, audit.
    Clinic,
}

impl App {
    /// Every app a route may name, in the spelling used in the config file.
    pub const KNOWN: &'static [App] = &[App::Echo, App::Clinic];

    /// The config-file spelling of this app.
    pub fn as_str(self) -> &'static str {
        match self {
            App::Echo => "echo",
            App::Clinic => "clinic",
        }
    }
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route named an app that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown app {name:?} (known: {})", known_apps())]
pub struct UnknownApp {
    /// The name as written.
    pub name: String,
}

fn known_apps() -> String {
    App::KNOWN
        .iter()
        .map(|app| app.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for App {
    type Err = UnknownApp;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        App::KNOWN
            .iter()
            .copied()
            .find(|app| app.as_str() == name)
            .ok_or_else(|| UnknownApp {
                name: name.to_owned(),
            })
    }
}

/// Which Request-URI user parts a route matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteMatch {
    /// Exactly this user part (written `echo`).
    Exact(String),
    /// Any user part starting with this non-empty prefix (written `prefix*`).
    Prefix(String),
    /// Any user part at all (written `*`).
    Any,
}

/// A route pattern that is not `user`, `prefix*` or `*`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRouteMatch {
    /// The pattern is empty.
    #[error("must not be empty")]
    Empty,
    /// A `*` somewhere other than at the end.
    #[error("{0:?}: '*' may only end the pattern")]
    MisplacedStar(String),
}

impl FromStr for RouteMatch {
    type Err = BadRouteMatch;

    fn from_str(pattern: &str) -> Result<Self, Self::Err> {
        if pattern.is_empty() {
            return Err(BadRouteMatch::Empty);
        }
        if pattern == "*" {
            return Ok(RouteMatch::Any);
        }
        let (stem, is_prefix) = match pattern.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (pattern, false),
        };
        if stem.contains('*') {
            return Err(BadRouteMatch::MisplacedStar(pattern.to_owned()));
        }
        Ok(if is_prefix {
            RouteMatch::Prefix(stem.to_owned())
        } else {
            RouteMatch::Exact(stem.to_owned())
        })
    }
}

impl fmt::Display for RouteMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteMatch::Exact(user) => f.write_str(user),
            RouteMatch::Prefix(prefix) => write!(f, "{prefix}*"),
            RouteMatch::Any => f.write_str("*"),
        }
    }
}

/// A route's way to a person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Staff {
    /// REFER target.
    pub uri: Option<String>,
    /// Said to the caller when the transfer cannot be made.
    pub number: Option<String>,
}

/// A resolved route: the app that answers and how long to ring first.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The pattern this route was reached through.
    pub pattern: RouteMatch,
    /// The app that handles the call.
    pub app: App,
    /// How long to send 180 Ringing before answering.
    pub answer_delay: Duration,
    /// Whether this route is built in rather than configured.
    pub builtin: bool,
    /// Where "talk to staff" goes, and the number said when it can't.
    pub staff: Staff,
    /// Jitter buffer, endpointing, VAD and barge-in settings.
    pub media: echo_media::MediaSettings,
}

/// Routes on the Request-URI user part: exact beats the longest prefix,
/// which beats `*`.
///
/// Built-ins: `echo` reaches [`App::Echo`] unless a configured route matches
/// it exactly or by prefix. With no routes configured at all (the embedded
/// defaults), `*` reaches [`App::Clinic`]; once an operator configures
/// routes, a number none of them matches gets 404.
#[derive(Debug, Clone)]
pub struct RouteTable {
    exact: HashMap<String, Route>,
    /// Longest prefix first, so the first hit is the most specific.
    prefixes: Vec<(String, Route)>,
    any: Option<Route>,
}

impl RouteTable {
    /// Builds the table from validated config (duplicates were rejected
    /// there; should one slip through, the first one wins).
    pub fn from_config(routes: &[RouteConfig]) -> Self {
        let mut exact = HashMap::new();
        let mut prefixes: Vec<(String, Route)> = Vec::new();
        let mut any = None;
        for config in routes {
            let route = Route {
                pattern: config.pattern.clone(),
                app: config.app,
                answer_delay: config.answer_delay,
                builtin: false,
                media: config.media,
                staff: Staff {
                    uri: config.staff_uri.clone(),
                    number: config.staff_number.clone(),
                },
            };
            match &config.pattern {
                RouteMatch::Exact(user) => {
                    exact.entry(user.clone()).or_insert(route);
                }
                RouteMatch::Prefix(prefix) => {
                    if !prefixes.iter().any(|(p, _)| p == prefix) {
                        prefixes.push((prefix.clone(), route));
                    }
                }
                RouteMatch::Any => {
                    any.get_or_insert(route);
                }
            }
        }
        // Stable sort keeps config order among equal lengths, which cannot
        // both match the same user anyway.
        prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));

        let echo_claimed = exact.contains_key("echo")
            || prefixes.iter().any(|(p, _)| "echo".starts_with(p.as_str()));
        if !echo_claimed {
            exact.insert(
                "echo".to_owned(),
                builtin(RouteMatch::Exact("echo".to_owned())),
            );
        }
        if routes.is_empty() {
            any = Some(Route {
                app: App::Clinic,
                ..builtin(RouteMatch::Any)
            });
        }
        Self {
            exact,
            prefixes,
            any,
        }
    }

    /// The route for a Request-URI user part (compared case-sensitively, as
    /// RFC 3261 §19.1.4 compares user parts).
    pub fn lookup(&self, user: &str) -> Option<&Route> {
        if let Some(route) = self.exact.get(user) {
            return Some(route);
        }
        if let Some((_, route)) = self
            .prefixes
            .iter()
            .find(|(prefix, _)| user.starts_with(prefix.as_str()))
        {
            return Some(route);
        }
        self.any.as_ref()
    }
}

fn builtin(pattern: RouteMatch) -> Route {
    Route {
        pattern,
        app: App::Echo,
        answer_delay: Duration::ZERO,
        builtin: true,
        media: echo_media::MediaSettings {
            pause: Duration::from_millis(200),
            ..echo_media::MediaSettings::default()
        },
        staff: Staff::default(),
    }
}

/// Identifies a trunk within its [`TrunkTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrunkId(usize);

/// Whether a trunk may start another call now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead; call [`TrunkTable::call_started`] now.
    Accept,
    /// The trunk has `max_calls` calls up: answer 486 Busy Here.
    OverCallLimit,
    /// The trunk is over `max_cps`: answer 503 with this `Retry-After`.
    OverRate {
        /// Seconds until a call would be admitted, at least 1.
        retry_after_secs: u32,
    },
}

/// Name of the trunk that exists only when none is configured.
pub const IMPLICIT_TRUNK_NAME: &str = "implicit-loopback";

/// Trunks, the networks they may call from, and their live call counts and
/// rate limiters.
///
/// [`reconfigure`](Self::reconfigure) replaces the trunk list at run time.
/// A [`TrunkId`] stays valid for the table's whole life: a trunk that leaves
/// the list is retired (kept, matching no source) so the calls it still
/// carries can count down, and its index is never given to another trunk.
#[derive(Debug, Clone)]
pub struct TrunkTable {
    /// Indexed by [`TrunkId`]; only ever grows. At most one entry per
    /// configured name, plus at most one implicit trunk.
    trunks: Vec<TrunkState>,
    /// Most specific (longest prefix) first, so the first hit wins. A linear
    /// scan: trunk lists are short, and it keeps the rule obvious. Names
    /// live trunks only.
    networks: Vec<(IpNet, TrunkId)>,
}

#[derive(Debug, Clone)]
struct TrunkState {
    name: String,
    /// The loopback trunk that stands in for an empty list; kept apart from
    /// a configured trunk that happens to share its name.
    implicit: bool,
    /// No longer in the list: matches no source, still counts its calls.
    retired: bool,
    credentials: Option<TrunkCredentials>,
    max_calls: Option<u32>,
    max_cps: Option<u32>,
    rate: Option<RateLimiter>,
    active_calls: u32,
}

impl TrunkTable {
    /// Builds the table; with no trunks configured it holds one implicit
    /// trunk that accepts only loopback (127.0.0.0/8 and ::1), unlimited and
    /// without digest auth.
    pub fn from_config(trunks: &[TrunkConfig]) -> Self {
        let mut table = Self {
            trunks: Vec::new(),
            networks: Vec::new(),
        };
        table.reconfigure(trunks);
        table
    }

    /// Makes source matching, credentials and limits follow `trunks` (as
    /// [`from_config`](Self::from_config) would), keeping every [`TrunkId`]
    /// valid. A trunk kept by name keeps its id and live call count, and its
    /// rate limiter unless `max_cps` changed. A trunk left out is retired:
    /// it matches no source, and its calls count down as they end. A name
    /// that comes back gets its old id (and live calls) again. Validated
    /// config has unique names; should a duplicate slip through, the first
    /// one wins.
    pub fn reconfigure(&mut self, trunks: &[TrunkConfig]) {
        for state in &mut self.trunks {
            state.retired = true;
        }
        let mut networks = Vec::new();
        if trunks.is_empty() {
            let id = self.revive(true, IMPLICIT_TRUNK_NAME);
            let loopback_v4 = IpNet::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8)
                .expect("8 is a valid IPv4 prefix length");
            let loopback_v6 = IpNet::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128)
                .expect("128 is a valid IPv6 prefix length");
            networks.push((loopback_v4, id));
            networks.push((loopback_v6, id));
        }
        for trunk in trunks {
            let duplicate = self
                .find(false, &trunk.name)
                .is_some_and(|id| !self.trunks[id.0].retired);
            if duplicate {
                continue;
            }
            let id = self.revive(false, &trunk.name);
            let state = &mut self.trunks[id.0];
            state.credentials = trunk.credentials.clone();
            state.max_calls = trunk.max_calls;
            if state.max_cps != trunk.max_cps {
                state.max_cps = trunk.max_cps;
                state.rate = trunk.max_cps.map(RateLimiter::new);
            }
            networks.extend(trunk.allow.iter().map(|net| (*net, id)));
        }
        networks.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        self.networks = networks;
    }

    fn find(&self, implicit: bool, name: &str) -> Option<TrunkId> {
        self.trunks
            .iter()
            .position(|t| t.implicit == implicit && t.name == name)
            .map(TrunkId)
    }

    /// The trunk of this name, live again, or a new one (unlimited, no
    /// credentials) at a fresh index.
    fn revive(&mut self, implicit: bool, name: &str) -> TrunkId {
        if let Some(id) = self.find(implicit, name) {
            self.trunks[id.0].retired = false;
            return id;
        }
        self.trunks.push(TrunkState {
            name: name.to_owned(),
            implicit,
            retired: false,
            credentials: None,
            max_calls: None,
            max_cps: None,
            rate: None,
            active_calls: 0,
        });
        TrunkId(self.trunks.len() - 1)
    }

    /// The trunk whose most specific allowed network holds `ip`, or `None`
    /// (answer 403). IPv4-mapped IPv6 sources (from dual-stack sockets)
    /// match as the IPv4 address they carry.
    pub fn match_source(&self, ip: IpAddr) -> Option<TrunkId> {
        let ip = ip.to_canonical();
        self.networks
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, id)| *id)
    }

    /// Checks the trunk's call limit, then its rate. `Accept` uses up one
    /// unit of rate; refusals use up nothing. On `Accept`, call
    /// [`call_started`](Self::call_started) before the next `admit`.
    pub fn admit(&mut self, trunk: TrunkId, now: Instant) -> Admission {
        let state = &mut self.trunks[trunk.0];
        if let Some(max) = state.max_calls {
            if state.active_calls >= max {
                return Admission::OverCallLimit;
            }
        }
        if let Some(rate) = &mut state.rate {
            if let Err(wait) = rate.try_take(now) {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Admission::OverRate {
                    retry_after_secs: u32::try_from(secs.max(1)).unwrap_or(u32::MAX),
                };
            }
        }
        Admission::Accept
    }

    /// Counts a call as up on this trunk (after [`Admission::Accept`]).
    pub fn call_started(&mut self, trunk: TrunkId) {
        let state = &mut self.trunks[trunk.0];
        state.active_calls = state.active_calls.saturating_add(1);
    }

    /// Counts a call on this trunk as over, answered or not. An unmatched
    /// end is ignored rather than wrapping the count.
    pub fn call_ended(&mut self, trunk: TrunkId) {
        let state = &mut self.trunks[trunk.0];
        state.active_calls = state.active_calls.saturating_sub(1);
    }

    /// Calls currently up on this trunk.
    pub fn active_calls(&self, trunk: TrunkId) -> u32 {
        self.trunks[trunk.0].active_calls
    }

    /// The trunk's configured name (or [`IMPLICIT_TRUNK_NAME`]), retired
    /// or not.
    pub fn name(&self, trunk: TrunkId) -> &str {
        &self.trunks[trunk.0].name
    }

    /// Whether the trunk has left the list: it takes no new calls, and
    /// stays only to count down the calls it still carries.
    pub fn is_retired(&self, trunk: TrunkId) -> bool {
        self.trunks[trunk.0].retired
    }

    /// The digest credentials calls on this trunk must prove, if any.
    pub fn credentials(&self, trunk: TrunkId) -> Option<&TrunkCredentials> {
        self.trunks[trunk.0].credentials.as_ref()
    }

    /// Looks a live (not retired) trunk up by name.
    pub fn by_name(&self, name: &str) -> Option<TrunkId> {
        self.trunks
            .iter()
            .position(|t| !t.retired && t.name == name)
            .map(TrunkId)
    }
}

/// A token bucket of `max_cps` tokens refilled at `max_cps` per second, kept
/// as a GCRA "theoretical arrival time" so it needs no floats: a burst of up
/// to `max_cps` calls is admitted, then one every `1/max_cps` seconds.
#[derive(Debug, Clone)]
struct RateLimiter {
    interval: Duration,
    burst: Duration,
    theoretical_arrival: Option<Instant>,
}

impl RateLimiter {
    fn new(max_cps: u32) -> Self {
        let interval = Duration::from_secs(1) / max_cps.max(1);
        Self {
            interval,
            burst: Duration::from_secs(1).saturating_sub(interval),
            theoretical_arrival: None,
        }
    }

    /// Takes a token, or says how long until one is available.
    fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let tat = self.theoretical_arrival.map_or(now, |tat| tat.max(now));
        let ahead = tat - now;
        if ahead > self.burst {
            return Err(ahead - self.burst);
        }
        self.theoretical_arrival = Some(tat + self.interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn trunks(toml: &str) -> TrunkTable {
        let config = Config::from_toml(toml, &|_| None).expect("valid config");
        TrunkTable::from_config(&config.trunks)
    }

    fn routes(toml: &str) -> RouteTable {
        let config = Config::from_toml(toml, &|_| None).expect("valid config");
        RouteTable::from_config(&config.routes)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn implicit_trunk_accepts_only_loopback() {
        let table = trunks("");
        let id = table.match_source(ip("127.0.0.1")).unwrap();
        assert_eq!(table.name(id), IMPLICIT_TRUNK_NAME);
        assert_eq!(table.match_source(ip("127.1.2.3")), Some(id));
        assert_eq!(table.match_source(ip("::1")), Some(id));
        assert_eq!(table.match_source(ip("::ffff:127.0.0.1")), Some(id));
        assert_eq!(table.match_source(ip("198.51.100.7")), None);
        assert_eq!(table.match_source(ip("::2")), None);
        assert!(table.credentials(id).is_none());
    }

    #[test]
    fn configured_trunks_replace_the_implicit_one() {
        let table = trunks(
            r#"
            [[trunks]]
            name = "a"
            allow = ["198.51.100.0/24"]
            "#,
        );
        assert_eq!(table.match_source(ip("127.0.0.1")), None);
        assert_eq!(table.by_name(IMPLICIT_TRUNK_NAME), None);
    }

    #[test]
    fn most_specific_network_wins_whatever_the_order() {
        let table = trunks(
            r#"
            [[trunks]]
            name = "wide"
            allow = ["10.0.0.0/8", "2001:db8::/32"]
            [[trunks]]
            name = "narrow"
            allow = ["10.1.0.0/16", "2001:db8:1::/48"]
            [[trunks]]
            name = "host"
            allow = ["10.1.2.3/32"]
            "#,
        );
        let name = |s: &str| {
            table
                .match_source(ip(s))
                .map(|id| table.name(id).to_owned())
        };
        assert_eq!(name("10.9.9.9").as_deref(), Some("wide"));
        assert_eq!(name("10.1.9.9").as_deref(), Some("narrow"));
        assert_eq!(name("10.1.2.3").as_deref(), Some("host"));
        assert_eq!(name("::ffff:10.1.2.3").as_deref(), Some("host"));
        assert_eq!(name("2001:db8:1::5").as_deref(), Some("narrow"));
        assert_eq!(name("2001:db8:2::5").as_deref(), Some("wide"));
        assert_eq!(name("11.0.0.1"), None);
    }

    #[test]
    fn call_limit_counts_active_calls() {
        let mut table = trunks(
            r#"
            [[trunks]]
            name = "a"
            allow = ["127.0.0.1/32"]
            max_calls = 2
            "#,
        );
        let id = table.by_name("a").unwrap();
        let now = Instant::now();
        for _ in 0..2 {
            assert_eq!(table.admit(id, now), Admission::Accept);
            table.call_started(id);
        }
        assert_eq!(table.admit(id, now), Admission::OverCallLimit);
        table.call_ended(id);
        assert_eq!(table.active_calls(id), 1);
        assert_eq!(table.admit(id, now), Admission::Accept);
        table.call_ended(id);
        table.call_ended(id);
        table.call_ended(id); // unmatched: ignored
        assert_eq!(table.active_calls(id), 0);
    }

    #[test]
    fn rate_limit_allows_a_burst_then_refills_in_virtual_time() {
        let mut table = trunks(
            r#"
            [[trunks]]
            name = "a"
            allow = ["127.0.0.1/32"]
            max_cps = 5
            "#,
        );
        let id = table.by_name("a").unwrap();
        let base = Instant::now();
        for _ in 0..5 {
            assert_eq!(table.admit(id, base), Admission::Accept);
        }
        assert_eq!(
            table.admit(id, base),
            Admission::OverRate {
                retry_after_secs: 1
            }
        );
        // One token comes back every 200 ms.
        let at = |ms| base + Duration::from_millis(ms);
        assert!(matches!(
            table.admit(id, at(199)),
            Admission::OverRate { .. }
        ));
        assert_eq!(table.admit(id, at(200)), Admission::Accept);
        assert!(matches!(
            table.admit(id, at(300)),
            Admission::OverRate { .. }
        ));
        assert_eq!(table.admit(id, at(400)), Admission::Accept);
        // A long pause refills the bucket to at most 5.
        let later = at(10_000);
        for _ in 0..5 {
            assert_eq!(table.admit(id, later), Admission::Accept);
        }
        assert!(matches!(table.admit(id, later), Admission::OverRate { .. }));
    }

    #[test]
    fn sustained_rate_never_exceeds_max_cps() {
        let mut limiter = RateLimiter::new(10);
        let base = Instant::now();
        let mut accepted_per_second = [0u32; 10];
        // An attempt every 10 ms for 10 virtual seconds.
        for ms in 0..10_000u64 {
            if ms % 10 == 0 && limiter.try_take(base + Duration::from_millis(ms)).is_ok() {
                accepted_per_second[(ms / 1000) as usize] += 1;
            }
        }
        // The first second may see the initial burst plus refills.
        assert!(accepted_per_second[0] <= 20);
        for count in &accepted_per_second[1..] {
            assert_eq!(*count, 10);
        }
    }

    #[test]
    fn call_limit_is_checked_before_rate_and_refusals_cost_no_token() {
        let mut table = trunks(
            r#"
            [[trunks]]
            name = "a"
            allow = ["127.0.0.1/32"]
            max_calls = 1
            max_cps = 1
            "#,
        );
        let id = table.by_name("a").unwrap();
        let now = Instant::now();
        assert_eq!(table.admit(id, now), Admission::Accept);
        table.call_started(id);
        assert_eq!(table.admit(id, now), Admission::OverCallLimit);
        table.call_ended(id);
        assert!(matches!(table.admit(id, now), Admission::OverRate { .. }));
        assert_eq!(
            table.admit(id, now + Duration::from_secs(1)),
            Admission::Accept
        );
    }

    #[test]
    fn unlimited_trunk_always_accepts() {
        let mut table = trunks("");
        let id = table.match_source(ip("127.0.0.1")).unwrap();
        let now = Instant::now();
        for _ in 0..1000 {
            assert_eq!(table.admit(id, now), Admission::Accept);
            table.call_started(id);
        }
    }

    fn trunk_list(toml: &str) -> Vec<TrunkConfig> {
        Config::from_toml(toml, &|_| None)
            .expect("valid config")
            .trunks
    }

    #[test]
    fn reconfigure_keeps_counts_by_name_and_retires_the_rest() {
        let mut table = trunks(
            r#"
            [[trunks]]
            name = "a"
            allow = ["10.0.0.0/8"]
            [[trunks]]
            name = "b"
            allow = ["192.0.2.0/24"]
            "#,
        );
        let now = Instant::now();
        let a = table.by_name("a").unwrap();
        let b = table.by_name("b").unwrap();
        table.call_started(a);
        table.call_started(b);
        table.call_started(b);

        table.reconfigure(&trunk_list(
            r#"
            [[trunks]]
            name = "c"
            allow = ["192.0.2.0/24"]
            [[trunks]]
            name = "a"
            allow = ["10.1.0.0/16"]
            max_calls = 1
            username = "u"
            password = "p"
            "#,
        ));
        // Kept by name: same id, same count, new networks, limits, credentials.
        assert_eq!(table.by_name("a"), Some(a));
        assert_eq!(table.active_calls(a), 1);
        assert_eq!(table.match_source(ip("10.1.2.3")), Some(a));
        assert_eq!(table.match_source(ip("10.2.0.1")), None);
        assert_eq!(table.admit(a, now), Admission::OverCallLimit);
        assert_eq!(table.credentials(a).unwrap().username, "u");
        // Removed: retired, still named, counting down, matching nothing.
        assert!(table.is_retired(b));
        assert_eq!(table.by_name("b"), None);
        assert_eq!(table.name(b), "b");
        assert_eq!(table.active_calls(b), 2);
        table.call_ended(b);
        table.call_ended(b);
        assert_eq!(table.active_calls(b), 0);
        // New: a fresh index, never a retired one.
        let c = table.match_source(ip("192.0.2.9")).unwrap();
        assert_eq!(table.name(c), "c");
        assert!(c != a && c != b);
        assert_eq!(table.active_calls(c), 0);

        // A name that comes back gets its old id and live calls again.
        table.call_started(a);
        table.reconfigure(&trunk_list(
            r#"
            [[trunks]]
            name = "b"
            allow = ["198.51.100.0/24"]
            "#,
        ));
        assert_eq!(table.by_name("b"), Some(b));
        assert!(table.is_retired(a) && table.is_retired(c));
        assert_eq!(table.active_calls(a), 2);
        assert_eq!(table.match_source(ip("198.51.100.1")), Some(b));
        assert_eq!(table.match_source(ip("192.0.2.9")), None);
    }

    #[test]
    fn implicit_trunk_appears_and_retires_with_the_list() {
        let mut table = trunks("");
        let implicit = table.match_source(ip("127.0.0.1")).unwrap();
        table.call_started(implicit);
        // A configured trunk of the same name is a different trunk.
        table.reconfigure(&trunk_list(
            r#"
            [[trunks]]
            name = "implicit-loopback"
            allow = ["198.51.100.0/24"]
            "#,
        ));
        assert!(table.is_retired(implicit));
        assert_eq!(table.match_source(ip("127.0.0.1")), None);
        assert_eq!(table.name(implicit), IMPLICIT_TRUNK_NAME);
        let configured = table.by_name(IMPLICIT_TRUNK_NAME).unwrap();
        assert_ne!(configured, implicit);
        assert_eq!(table.active_calls(configured), 0);

        table.reconfigure(&[]);
        assert_eq!(table.match_source(ip("::1")), Some(implicit));
        assert_eq!(table.active_calls(implicit), 1);
        assert!(table.is_retired(configured));
        assert_eq!(table.match_source(ip("198.51.100.1")), None);
    }

    #[test]
    fn reconfigure_resets_the_rate_limiter_only_when_max_cps_changes() {
        let config = |cps: u32| {
            trunk_list(&format!(
                "[[trunks]]\nname = \"a\"\nallow = [\"127.0.0.1/32\"]\nmax_cps = {cps}\n"
            ))
        };
        let mut table = TrunkTable::from_config(&config(1));
        let a = table.by_name("a").unwrap();
        let now = Instant::now();
        assert_eq!(table.admit(a, now), Admission::Accept);
        table.reconfigure(&config(1));
        assert!(matches!(table.admit(a, now), Admission::OverRate { .. }));
        table.reconfigure(&config(2));
        assert_eq!(table.admit(a, now), Admission::Accept);
        assert_eq!(table.admit(a, now), Admission::Accept);
        assert!(matches!(table.admit(a, now), Admission::OverRate { .. }));
    }

    #[test]
    fn reconfigure_with_a_duplicate_name_keeps_the_first() {
        let mut table = trunks("");
        let mut list = trunk_list("[[trunks]]\nname = \"a\"\nallow = [\"10.0.0.0/8\"]\n");
        let mut second = list[0].clone();
        second.allow = vec!["192.0.2.0/24".parse().unwrap()];
        second.max_calls = Some(0);
        list.push(second);
        table.reconfigure(&list);
        let a = table.by_name("a").unwrap();
        assert_eq!(table.match_source(ip("10.0.0.1")), Some(a));
        assert_eq!(table.match_source(ip("192.0.2.1")), None);
        assert_eq!(table.admit(a, Instant::now()), Admission::Accept);
    }

    #[test]
    fn builtin_routes_when_nothing_is_configured() {
        let table = routes("");
        let echo = table.lookup("echo").unwrap();
        assert_eq!(echo.app, App::Echo);
        assert!(echo.builtin);
        assert_eq!(echo.pattern, RouteMatch::Exact("echo".into()));
        let other = table.lookup("4915112345678").unwrap();
        assert_eq!(other.pattern, RouteMatch::Any);
        assert!(other.builtin);
        assert_eq!(other.answer_delay, Duration::ZERO);
    }

    #[test]
    fn exact_beats_longest_prefix_beats_any() {
        let table = routes(
            r#"
            [[routes]]
            match = "*"
            app = "echo"
            answer_delay_ms = 1
            [[routes]]
            match = "49*"
            app = "echo"
            answer_delay_ms = 2
            [[routes]]
            match = "4930*"
            app = "echo"
            answer_delay_ms = 3
            [[routes]]
            match = "493012345"
            app = "echo"
            answer_delay_ms = 4
            "#,
        );
        let delay = |user: &str| table.lookup(user).unwrap().answer_delay.as_millis();
        assert_eq!(delay("493012345"), 4);
        assert_eq!(delay("4930123456"), 3);
        assert_eq!(delay("4930"), 3);
        assert_eq!(delay("4940"), 2);
        assert_eq!(delay("1"), 1);
        assert_eq!(delay(""), 1);
        // A configured `*` replaces the built-in one; `echo` stays built in.
        assert!(!table.lookup("x").unwrap().builtin);
        assert!(table.lookup("echo").unwrap().builtin);
    }

    #[test]
    fn configured_route_claims_echo() {
        let exact = routes(
            r#"
            [[routes]]
            match = "echo"
            app = "echo"
            answer_delay_ms = 500
            "#,
        );
        let route = exact.lookup("echo").unwrap();
        assert!(!route.builtin);
        assert_eq!(route.answer_delay, Duration::from_millis(500));

        let prefix = routes(
            r#"
            [[routes]]
            match = "ec*"
            app = "echo"
            answer_delay_ms = 700
            "#,
        );
        let route = prefix.lookup("echo").unwrap();
        assert_eq!(route.pattern, RouteMatch::Prefix("ec".into()));

        // A `*` route does not claim `echo`: the built-in one still wins.
        let any = routes(
            r#"
            [[routes]]
            match = "*"
            app = "echo"
            answer_delay_ms = 900
            "#,
        );
        assert!(any.lookup("echo").unwrap().builtin);
    }

    #[test]
    fn route_patterns_parse_and_print() {
        for text in ["echo", "49*", "*"] {
            let pattern: RouteMatch = text.parse().unwrap();
            assert_eq!(pattern.to_string(), text);
        }
        assert_eq!("".parse::<RouteMatch>(), Err(BadRouteMatch::Empty));
        assert!(matches!(
            "a*b".parse::<RouteMatch>(),
            Err(BadRouteMatch::MisplacedStar(_))
        ));
        assert!(matches!(
            "**".parse::<RouteMatch>(),
            Err(BadRouteMatch::MisplacedStar(_))
        ));
    }

    #[test]
    fn apps_parse_and_print() {
        assert_eq!("echo".parse::<App>(), Ok(App::Echo));
        assert_eq!(App::Echo.to_string(), "echo");
        let err = "clinc".parse::<App>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown app "clinc" (known: echo, clinic)"#
        );
    }
}
