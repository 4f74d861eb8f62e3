//! Shared harness for the end-to-end tests: runs the real `echo-gateway`
//! binary on free loopback ports and talks to it with sipp, raw sockets and
//! plain HTTP/1.0.
//!
//! Every wait here is bounded. On a panicking test the gateway's captured
//! output is printed (the test harness shows it with the failure).

// Each integration test compiles this module on its own and uses only part
// of it.
#![allow(dead_code)]

pub mod sip;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Path of the gateway binary cargo built for these tests
/// (`ECHO_TEST_GATEWAY_BIN` overrides it, e.g. to try the harness on a stand-in).
pub fn gateway_bin() -> PathBuf {
    std::env::var_os("ECHO_TEST_GATEWAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_echo-gateway")))
}

/// Folder holding the sipp scenarios.
pub fn sipp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sipp")
}

/// Path of one scenario file in `tests/sipp/`.
pub fn scenario(name: &str) -> PathBuf {
    let p = sipp_dir().join(name);
    assert!(p.is_file(), "no scenario {}", p.display());
    p
}

// ---------------------------------------------------------------- temp dirs

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system temp dir, unique per process and call.
/// Removed on drop unless `ECHO_TEST_KEEP` is set or the thread is panicking
/// (so the evidence stays around).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("echo-test-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("ECHO_TEST_KEEP").is_none() && !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

// -------------------------------------------------------------------- ports

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static S: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A loopback port that is free for both UDP and TCP right now, and that
/// this process has not handed out before.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp :0");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        if handed_out().lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("no free loopback port found");
}

/// A free UDP-only port (sipp's control socket).
pub fn free_udp_port() -> u16 {
    for _ in 0..200 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp :0");
        let port = udp.local_addr().unwrap().port();
        if handed_out().lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("no free udp port found");
}

/// Size of the RTP port range each gateway instance gets.
pub const RTP_BLOCK: u16 = 100;

/// A block of `RTP_BLOCK` UDP ports, below the kernel's ephemeral range
/// (so sipp and the test sockets never land in it), distinct for every
/// gateway this process starts and spread by pid across processes.
pub fn rtp_range() -> (u16, u16) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LO: u32 = 12_000;
    const BLOCKS: u32 = (32_000 - LO) / RTP_BLOCK as u32;
    let start = std::process::id() * 7;
    for _ in 0..BLOCKS {
        let i = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % BLOCKS;
        let lo = (LO + i * RTP_BLOCK as u32) as u16;
        let hi = lo + RTP_BLOCK - 1;
        // Cheap check that nothing sits on the block's even (RTP) ports.
        let all_free = (lo..=hi)
            .step_by(2)
            .all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return (lo, hi);
        }
    }
    panic!("no free RTP port block");
}

// --------------------------------------------------------------------- HTTP

/// A bounded HTTP/1.0 GET. Returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let r = http_exchange(addr, "GET", path, &[], None, timeout)?;
    Ok((r.status, r.body))
}

/// An HTTP response: status, headers (names lower-cased), body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// A bounded HTTP/1.0 request with extra headers and an optional body; one
/// write, as a server may answer and close as soon as it has the head.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    http_exchange(addr, method, path, headers, body, Duration::from_secs(10))
}

fn http_exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = body {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad HTTP response: {text:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// A signed-in console session: the cookie to send and the CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// The password `Gateway::api_get` signs in with.
pub const TEST_ADMIN: (&str, &str) = ("test-admin", "test-admin-password");

// ------------------------------------------------------------------ metrics

/// Sum of every sample of `name` whose labels include all of `labels`
/// (`&[]` matches all). `None` when no such sample exists. Understands the
/// Prometheus text format (and OpenMetrics, whose counters are exposed as
/// `name_total`).
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, rest) = match line.find(['{', ' ']) {
            Some(i) => (&line[..i], &line[i..]),
            None => continue,
        };
        if series != name {
            continue;
        }
        let (label_text, value_text) = if let Some(r) = rest.strip_prefix('{') {
            match r.rfind('}') {
                Some(j) => (&r[..j], r[j + 1..].trim()),
                None => continue,
            }
        } else {
            ("", rest.trim())
        };
        let got = parse_labels(label_text);
        if !labels
            .iter()
            .all(|(k, v)| got.iter().any(|(gk, gv)| gk == k && gv == v))
        {
            continue;
        }
        // value, optionally followed by a timestamp
        let v = value_text.split_whitespace().next().unwrap_or("");
        let v: f64 = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => match v.parse() {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        *found.get_or_insert(0.0) += v;
    }
    found
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let Some(after) = after.strip_prefix('"') else {
            break;
        };
        let mut val = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(match n {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => val.push(c),
            }
        }
        out.push((key, val));
        rest = after[end..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    out
}

// ------------------------------------------------------------------ gateway

/// What a test wants in the gateway's config beyond the defaults.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Extra TOML appended verbatim (more `[[trunks]]`, `[[routes]]`, …).
    pub extra: String,
    /// `database.url`; by default an SQLite file in the gateway's temp dir.
    pub database_url: Option<String>,
    /// Include the default `open` trunk allowing 127.0.0.1/32.
    pub open_trunk: bool,
    /// Include the `ring*` route that rings for a minute.
    pub ring_route: bool,
    pub rtp_timeout_secs: u64,
    pub drain_timeout_secs: u64,
    /// Extra environment for the process.
    pub env: Vec<(String, String)>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            extra: String::new(),
            database_url: None,
            open_trunk: true,
            ring_route: true,
            rtp_timeout_secs: 30,
            drain_timeout_secs: 30,
            env: Vec::new(),
        }
    }
}

/// Username / password of the digest-authenticated trunk `auth_trunk()`.
pub const AUTH_USER: &str = "alice";
pub const AUTH_PASS: &str = "s3cret";
/// Source address of that trunk (sipp binds it with `-i`).
pub const AUTH_SOURCE: &str = "127.0.0.2";

/// A `[[trunks]]` section that demands digest auth from 127.0.0.2.
pub fn auth_trunk() -> String {
    format!(
        "[[trunks]]\nname = \"auth\"\nallow = [\"{AUTH_SOURCE}/32\"]\nmax_calls = 100\nmax_cps = 1000\n\
         username = \"{AUTH_USER}\"\npassword = \"{AUTH_PASS}\"\n"
    )
}

/// A running `echo-gateway serve`. Killed (SIGTERM, then SIGKILL) on drop.
pub struct Gateway {
    child: Option<Child>,
    exit: Option<ExitStatus>,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub rtp: (u16, u16),
    pub dir: TempDir,
    pub config_path: PathBuf,
    log_path: PathBuf,
    admin: std::sync::OnceLock<Session>,
}

impl Gateway {
    /// Start with the default test config and wait until `/readyz` is 200.
    pub fn start() -> Gateway {
        Gateway::start_with(GatewayConfig::default())
    }

    pub fn start_with(cfg: GatewayConfig) -> Gateway {
        let dir = TempDir::new("gw");
        let sip_port = free_port();
        let http_port = free_port();
        let rtp = rtp_range();
        let sip: SocketAddr = format!("127.0.0.1:{sip_port}").parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();

        let mut toml = String::new();
        let _ = write!(
            toml,
            "[sip]\nlisten = \"{sip}\"\n\n[http]\nlisten = \"{http}\"\n\n\
             [rtp]\nports = \"{}-{}\"\ntimeout_secs = {}\n\n\
             [limits]\ndrain_timeout_secs = {}\n\n",
            rtp.0, rtp.1, cfg.rtp_timeout_secs, cfg.drain_timeout_secs
        );
        if let Some(url) = &cfg.database_url {
            let _ = write!(toml, "[database]\nurl = \"{url}\"\n\n");
        }
        if cfg.open_trunk {
            toml.push_str(
                "[[trunks]]\nname = \"open\"\nallow = [\"127.0.0.1/32\"]\nmax_calls = 100\nmax_cps = 1000\n\n",
            );
        }
        if cfg.ring_route {
            toml.push_str(
                "[[routes]]\nmatch = \"ring*\"\napp = \"echo\"\nanswer_delay_ms = 60000\n\n",
            );
        }
        toml.push_str(&cfg.extra);
        let config_path = dir.path().join("echo.toml");
        fs::write(&config_path, &toml).unwrap();

        let log_path = dir.path().join("gateway.log");
        let child = spawn_gateway(
            &["serve", "--config", config_path.to_str().unwrap()],
            dir.path(),
            &log_path,
            &cfg.env,
        );
        let mut gw = Gateway {
            child: Some(child),
            exit: None,
            sip,
            http,
            rtp,
            dir,
            config_path,
            log_path,
            admin: std::sync::OnceLock::new(),
        };
        gw.wait_ready(Duration::from_secs(30));
        gw
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            if let Some(st) = self.try_exit() {
                // Drop prints the config and the output.
                panic!("gateway exited during startup with {st}");
            }
            match http_get(self.http, "/readyz", Duration::from_millis(500)) {
                Ok((200, _)) => return,
                Ok((code, body)) => last = format!("{code} {body}"),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                panic!("gateway not ready after {timeout:?} (last /readyz: {last})");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Everything the process printed so far (stdout and stderr interleaved).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_else(|e| format!("<no log: {e}>"))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("gateway already reaped").id()
    }

    /// Creates a console account with `echo-gateway users add` (against
    /// this gateway's database).
    pub fn add_user(&self, name: &str, role: &str, password: &str) {
        let mut cmd = Command::new(gateway_bin());
        cmd.args([
            "users",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--config",
            self.config_path.to_str().unwrap(),
        ])
        .current_dir(self.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ECHO_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd.spawn().expect("start users add");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "users add {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Signs in through `POST /api/v1/session`.
    pub fn sign_in(&self, name: &str, password: &str) -> Session {
        let body = serde_json::json!({ "username": name, "password": password }).to_string();
        let r = http_request(
            self.http,
            "POST",
            "/api/v1/session",
            &[("Content-Type", "application/json")],
            Some(&body),
        )
        .unwrap();
        assert_eq!(r.status, 200, "sign in as {name}: {}", r.body);
        let cookie = r
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
        Session { cookie, csrf }
    }

    /// Sends a request in `session` (cookie, and the CSRF header).
    pub fn api(
        &self,
        session: &Session,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> HttpResponse {
        let body = body.map(|b| b.to_string());
        http_request(
            self.http,
            method,
            path,
            &[
                ("Cookie", &session.cookie),
                ("X-CSRF-Token", &session.csrf),
                ("Content-Type", "application/json"),
            ],
            body.as_deref(),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\n--- output ---\n{}", self.log()))
    }

    /// GET through the console API as an admin (created on first use).
    pub fn api_get(&self, path: &str) -> (u16, String) {
        let session = self.admin.get_or_init(|| {
            self.add_user(TEST_ADMIN.0, "admin", TEST_ADMIN.1);
            self.sign_in(TEST_ADMIN.0, TEST_ADMIN.1)
        });
        let r = self.api(session, "GET", path, None);
        (r.status, r.body)
    }

    pub fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n--- output ---\n{}", self.log()))
    }

    /// `/metrics` text.
    pub fn metrics(&self) -> String {
        let (code, body) = self.http_get("/metrics");
        assert_eq!(code, 200, "/metrics answered {code}: {body}");
        body
    }

    /// One metric (summed over matching series), 0 when absent.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.metrics(), name, labels).unwrap_or(0.0)
    }

    /// Poll `/metrics` until `pred(value)` holds; panics after `timeout`.
    pub fn wait_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        timeout: Duration,
        pred: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.metric(name, labels);
            if pred(v) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "metric {name}{labels:?} stuck at {v} after {timeout:?}\n{}",
                    self.metrics()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn sigterm(&self) {
        signal(self.pid(), "TERM");
    }

    /// Non-blocking: the exit status if the process has ended.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.exit = Some(st);
                }
            }
        }
        self.exit
    }

    /// Wait up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_exit() {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A `sipp` run against this gateway (adds the remote address).
    pub fn sipp(&self) -> Sipp {
        Sipp::new(self.sip)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.exit.is_none() {
                if let Ok(None) = child.try_wait() {
                    signal(child.id(), "TERM");
                    let deadline = Instant::now() + Duration::from_secs(3);
                    while Instant::now() < deadline {
                        if let Ok(Some(_)) = child.try_wait() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "--- gateway config ({}) ---\n{}\n--- gateway output ---\n{}\n--- end gateway output ---",
                self.config_path.display(),
                fs::read_to_string(&self.config_path).unwrap_or_default(),
                self.log()
            );
        }
    }
}

/// Spawn the gateway binary with stdout+stderr into `log` and a clean
/// `ECHO_*` environment.
pub fn spawn_gateway(args: &[&str], cwd: &Path, log: &Path, env: &[(String, String)]) -> Child {
    let out = fs::File::create(log).expect("create log");
    let err = out.try_clone().unwrap();
    let mut cmd = Command::new(gateway_bin());
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ECHO_") {
            cmd.env_remove(k);
        }
    }
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", gateway_bin().display()))
}

/// Run the gateway binary to completion with a bounded wait (for commands
/// that are expected to exit, like `serve` with a bad config).
pub fn run_gateway(args: &[&str], cwd: &Path, timeout: Duration) -> Output {
    let mut cmd = Command::new(gateway_bin());
    cmd.args(args).current_dir(cwd);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ECHO_") {
            cmd.env_remove(k);
        }
    }
    run_with_timeout(cmd, timeout)
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Run a command, capturing stdout/stderr, killing it after `timeout`.
/// A killed process shows as a non-success status.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let dir = TempDir::new("run");
    let out_p = dir.path().join("stdout");
    let err_p = dir.path().join("stderr");
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out_p).unwrap())
        .stderr(fs::File::create(&err_p).unwrap());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            signal(child.id(), "TERM");
            std::thread::sleep(Duration::from_millis(300));
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: fs::read(&out_p).unwrap_or_default(),
        stderr: fs::read(&err_p).unwrap_or_default(),
    }
}

// --------------------------------------------------------------------- sipp

/// One sipp invocation. Every run gets its own working directory (so its
/// trace files don't mix), a free control port, `-nostdin`, a global
/// `-timeout` with `-timeout_error`, and an outer kill 15 s later.
pub struct Sipp {
    remote: SocketAddr,
    args: Vec<String>,
    local_ip: String,
    timeout: Duration,
}

/// A finished sipp run.
pub struct SippRun {
    pub output: Output,
    /// The trace files sipp wrote (errors, messages, screens), concatenated.
    pub traces: String,
    pub cmdline: String,
}

impl SippRun {
    pub fn success(&self) -> bool {
        self.output.status.success()
    }

    /// Everything useful for a failure message.
    pub fn report(&self) -> String {
        format!(
            "$ {}\nstatus: {}\n--- sipp stdout (tail) ---\n{}\n--- sipp stderr ---\n{}\n--- sipp traces ---\n{}",
            self.cmdline,
            self.output.status,
            tail(&String::from_utf8_lossy(&self.output.stdout), 4000),
            String::from_utf8_lossy(&self.output.stderr),
            tail(&self.traces, 20000)
        )
    }
}

fn tail(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut i = s.len() - n;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

impl Sipp {
    pub fn new(remote: SocketAddr) -> Sipp {
        Sipp {
            remote,
            args: Vec::new(),
            local_ip: "127.0.0.1".into(),
            timeout: Duration::from_secs(30),
        }
    }

    /// Source address sipp binds (`-i`, also used for `-mi`).
    pub fn local_ip(mut self, ip: &str) -> Sipp {
        self.local_ip = ip.into();
        self
    }

    /// sipp's global `-timeout` (the harness kills it 15 s after that).
    pub fn timeout(mut self, t: Duration) -> Sipp {
        self.timeout = t;
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Sipp
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Run a scenario file from `tests/sipp/` (e.g. `"options.xml"`), or a
    /// built-in one when `scenario` starts with `-sn:` (e.g. `"-sn:uac"`).
    pub fn run(self, scenario_name: &str) -> SippRun {
        let dir = TempDir::new("sipp");
        let mut cmd = Command::new("sipp");
        cmd.current_dir(dir.path());
        let mut all: Vec<String> = vec![self.remote.to_string()];
        if let Some(builtin) = scenario_name.strip_prefix("-sn:") {
            all.extend(["-sn".into(), builtin.into()]);
        } else {
            all.extend([
                "-sf".into(),
                scenario(scenario_name).to_string_lossy().into_owned(),
            ]);
        }
        let secs = self.timeout.as_secs().max(1);
        all.extend(
            [
                "-i",
                &self.local_ip,
                "-mi",
                &self.local_ip,
                "-nostdin",
                "-cp",
                &free_udp_port().to_string(),
                "-timeout",
                &format!("{secs}s"),
                "-timeout_error",
                "-trace_err",
                "-trace_msg",
                "-trace_screen",
            ]
            .map(String::from),
        );
        // Default: one call unless the test says otherwise.
        if !self.args.iter().any(|a| a == "-m") {
            all.extend(["-m".into(), "1".into()]);
        }
        all.extend(self.args);
        cmd.args(&all);
        let cmdline = format!("sipp {}", all.join(" "));
        let output = run_with_timeout(cmd, self.timeout + Duration::from_secs(15));
        let mut traces = String::new();
        if let Ok(rd) = fs::read_dir(dir.path()) {
            let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                if f.extension().is_some_and(|e| e == "log") {
                    let _ = writeln!(
                        traces,
                        "=== {} ===\n{}",
                        f.file_name().unwrap().to_string_lossy(),
                        fs::read_to_string(&f).unwrap_or_default()
                    );
                }
            }
        }
        SippRun {
            output,
            traces,
            cmdline,
        }
    }
}

/// `run_sipp(gw.sip, args, scenario)`: a bounded sipp run (see [`Sipp`]).
pub fn run_sipp(remote: SocketAddr, args: &[&str], scenario_name: &str) -> SippRun {
    Sipp::new(remote)
        .args(args.iter().copied())
        .run(scenario_name)
}

/// Assert a sipp run succeeded (exit code 0 = every call succeeded).
#[track_caller]
pub fn assert_sipp_ok(run: &SippRun) {
    assert!(run.success(), "sipp failed\n{}", run.report());
}

/// True when the `sipp` binary is on PATH.
pub fn have_sipp() -> bool {
    Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// A sipp UAS running a stub scenario (for checking the UAC scenarios
/// without a gateway). Handles exactly one call (`-m 1`).
pub struct SippUas {
    child: Option<Child>,
    pub addr: SocketAddr,
    dir: TempDir,
    cmdline: String,
}

impl SippUas {
    pub fn start(scenario_name: &str, transport: &str, extra: &[&str]) -> SippUas {
        let dir = TempDir::new("uas");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut args: Vec<String> = vec![
            "-sf".into(),
            scenario(scenario_name).to_string_lossy().into_owned(),
            "-i".into(),
            "127.0.0.1".into(),
            "-mi".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-t".into(),
            transport.into(),
            "-m".into(),
            "1".into(),
            "-nostdin".into(),
            "-cp".into(),
            free_udp_port().to_string(),
            "-timeout".into(),
            "20s".into(),
            "-timeout_error".into(),
            "-trace_err".into(),
            "-trace_msg".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let cmdline = format!("sipp {}", args.join(" "));
        let child = Command::new("sipp")
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path().join("stdout")).unwrap())
            .stderr(fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .expect("spawn sipp uas");
        // Wait until sipp holds the port (bounded).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let busy = if transport.starts_with('t') {
                TcpListener::bind(addr).is_err()
            } else {
                UdpSocket::bind(addr).is_err()
            };
            if busy || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        SippUas {
            child: Some(child),
            addr,
            dir,
            cmdline,
        }
    }

    /// Wait (bounded) for the UAS to finish its one call.
    pub fn finish(mut self, timeout: Duration) -> SippRun {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut traces = String::new();
        if let Ok(rd) = fs::read_dir(self.dir.path()) {
            let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                if f.extension().is_some_and(|e| e == "log") {
                    let _ = writeln!(
                        traces,
                        "=== {} ===\n{}",
                        f.file_name().unwrap().to_string_lossy(),
                        fs::read_to_string(&f).unwrap_or_default()
                    );
                }
            }
        }
        SippRun {
            output: Output {
                status,
                stdout: fs::read(self.dir.path().join("stdout")).unwrap_or_default(),
                stderr: fs::read(self.dir.path().join("stderr")).unwrap_or_default(),
            },
            traces,
            cmdline: self.cmdline.clone(),
        }
    }
}

impl Drop for SippUas {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
