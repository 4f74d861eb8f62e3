//! The scripted caller (`echo-gateway call`): a SIP user agent that phones
//! the bot the way a person would, for end-to-end tests and latency
//! measurement.
//!
//! It dials over UDP with its own sans-IO [`uac::Uac`], talks RTP through an
//! [`echo_media::MediaSession`] set up as a listener (no barge-in, long
//! endpointing silence so a multi-sentence prompt is one utterance), speaks
//! its scenario's lines with a command-line synthesiser ([`voice`]), hears
//! the bot through an [`echo_speech::Recognizer`], decides what was asked
//! ([`prompt`]) and measures voice-to-voice latency at the network edge
//! ([`measure`]). The loop around the cores is one task:
//!
//! ```text
//! SIP socket ─▶ Uac::handle_datagram ─┐                 ┌─▶ SIP / RTP sockets
//! RTP socket ─▶ EdgeMeter + MediaSession::handle_rtp ──┼─▶ events → Script → play
//! timers     ─▶ handle_timeout (both) ─┘                 └─  synthesis, recognition
//!                                                            (spawn_blocking)
//! ```

pub mod conversation;
pub mod measure;
pub mod prompt;
pub mod scenario;
pub mod uac;
pub mod voice;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use echo_media::{
    AudioDecoder, CodecKind, Decoder, MediaError, MediaEvent, MediaSession, MediaSettings,
    RtpPacket, SessionConfig, TransmitKind,
};
use echo_speech::{Bias, SharedRecognizer, SpeechError};
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::sip::message;
use crate::sip::sdp::{self, LocalMedia, NegotiatedMedia, SessionDescription};
use conversation::{Action, Conversation};
use measure::VOICED_DBFS;
use prompt::Script;
use scenario::Scenario;
use uac::{CallState, Uac, UacConfig, UacEvent};
use voice::{Voice, VoiceError, VOICE_RATE};

/// The media session's end-of-utterance silence: long enough that the
/// pauses between a prompt's sentences do not split it.
const LISTEN_SILENCE: Duration = Duration::from_millis(900);
/// How long to wait for the answer to our BYE.
const BYE_WAIT: Duration = Duration::from_secs(4);

/// What to call and how to behave.
#[derive(Clone)]
pub struct CallOptions {
    /// `sip:user@ip[:port]`.
    pub target_uri: String,
    /// What the caller says.
    pub scenario: Scenario,
    /// Its voice.
    pub voice: Voice,
    /// How it hears; `None`: listen-only (the scenario's lines in order).
    pub recognizer: Option<SharedRecognizer>,
    /// The whole call's limit.
    pub timeout: Duration,
    /// Answer REFER with 603.
    pub refuse_refer: bool,
    /// Write each bot prompt as a WAV here.
    pub save_audio: Option<PathBuf>,
    /// Speak first when the bot has said nothing this long after answering.
    pub speak_first_after: Duration,
    /// Speak first at `speak_first_after` even over the bot's greeting.
    pub barge_in: bool,
}

impl std::fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("target_uri", &self.target_uri)
            .field("voice", &self.voice)
            .field("recognizer", &self.recognizer.as_ref().map(|r| r.name()))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One exchange: what the bot said and what the caller answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Turn {
    /// The bot's prompt as transcribed (or its length, without a
    /// recogniser; empty when the caller spoke first).
    pub bot: String,
    /// The caller's answer, if it said something.
    pub caller: Option<String>,
    /// What the caller understood the bot asked (`patient_name`,
    /// `confirm`, `opening`…).
    pub asked_slot: Option<String>,
    /// Voice-to-voice latency of this prompt after the caller's previous
    /// line, in ms.
    pub v2v_ms: Option<u64>,
    /// The bot started this prompt before the caller's line ended.
    pub barge_in: bool,
}

/// How the call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    /// The bot sent BYE.
    ByeFromBot,
    /// The bot transferred the call (REFER accepted).
    Refer,
    /// The caller hung up: its script was done.
    CallerHangup,
    /// `--timeout` passed.
    Timeout,
    /// The INVITE got a final error response (`status`).
    Rejected,
    /// Nothing answered the INVITE (Timer B).
    NoAnswer,
    /// Something failed (`error`).
    Error,
}

impl Ended {
    /// The name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::ByeFromBot => "bye-from-bot",
            Ended::Refer => "refer",
            Ended::CallerHangup => "caller-hangup",
            Ended::Timeout => "timeout",
            Ended::Rejected => "rejected",
            Ended::NoAnswer => "no-answer",
            Ended::Error => "error",
        }
    }
}

/// The outcome of one call: the `--json` document.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    /// The SIP Call-ID (to find the call in the bot's audit log).
    pub sip_call_id: String,
    /// The conversation.
    pub turns: Vec<Turn>,
    /// How it ended.
    pub ended: Ended,
    /// The Refer-To of the bot's REFER, if it sent one.
    pub refer_to: Option<String>,
    /// The final status of a rejected INVITE.
    pub status: Option<u16>,
    /// What failed, for `error`.
    pub error: Option<String>,
    /// From the INVITE to the end.
    pub duration_ms: u64,
    /// Turns where the bot talked over the caller.
    pub barge_ins: usize,
    /// Median voice-to-voice latency.
    pub v2v_p50_ms: Option<u64>,
    /// 90th percentile voice-to-voice latency.
    pub v2v_p90_ms: Option<u64>,
}

impl CallReport {
    /// Whether the bot ended the call (BYE or REFER): the success case.
    pub fn ended_by_bot(&self) -> bool {
        matches!(self.ended, Ended::ByeFromBot | Ended::Refer)
    }

    /// The summary printed after the conversation.
    pub fn summary(&self) -> String {
        let ms = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
        let mut ended = self.ended.as_str().to_owned();
        if let Some(target) = &self.refer_to {
            ended.push_str(&format!(" ({target})"));
        }
        if let Some(status) = self.status {
            ended.push_str(&format!(" ({status})"));
        }
        if let Some(error) = &self.error {
            ended.push_str(&format!(" ({error})"));
        }
        format!(
            "turns={} v2v_p50_ms={} v2v_p90_ms={} barge_ins={} duration_ms={} ended={ended}",
            self.turns.len(),
            ms(self.v2v_p50_ms),
            ms(self.v2v_p90_ms),
            self.barge_ins,
            self.duration_ms,
        )
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Why a call could not even start.
#[derive(Debug, thiserror::Error)]
pub enum CallerError {
    /// The target is not `sip:user@ip[:port]`.
    #[error("target {0:?} is not a sip: URI with an IP address")]
    Target(String),
    /// A socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Loads the recogniser the caller hears with: Whisper tiny.en from
/// `models_dir/whisper-tiny.en` (`scripts/fetch-models.sh` puts it there).
pub fn load_recognizer(models_dir: &Path) -> Result<SharedRecognizer, SpeechError> {
    let recognizer = echo_speech::whisper::WhisperRecognizer::load(
        &models_dir.join("whisper-tiny.en"),
        echo_speech::whisper::WhisperOptions {
            // One call: one replica is enough.
            replicas: 1,
            ..Default::default()
        },
    )?;
    Ok(Arc::new(recognizer))
}

/// What blocking helpers send back to the call loop.
enum Work {
    Voice(String, Result<Arc<Vec<i16>>, VoiceError>),
    Transcript(u64, Result<String, SpeechError>),
}

/// Makes the call and returns its report.
pub async fn call(options: CallOptions) -> Result<CallReport, CallerError> {
    let remote = message::uri_socket_addr(&options.target_uri)
        .ok_or_else(|| CallerError::Target(options.target_uri.clone()))?;
    let local_ip = local_ip_towards(remote)?;
    let sip = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?;
    let rtp = bind_even(local_ip).await?;
    let rtp_addr = rtp.local_addr()?;
    let local = LocalMedia {
        codecs: vec![CodecKind::Pcmu],
        ..LocalMedia::new(rtp_addr, u64::from(rand::random::<u32>()))
    };
    let offer = sdp::offer(&local);
    let started = Instant::now();
    let sip_call_id = format!("{:016x}@echo-caller", rand::random::<u64>());
    let uac = Uac::new(
        UacConfig {
            target_uri: options.target_uri.clone(),
            remote,
            local: sip.local_addr()?,
            user: "caller".into(),
            call_id: sip_call_id.clone(),
            from_tag: format!("{:08x}", rand::random::<u32>()),
            branch_seed: format!("{:012x}", rand::random::<u64>() >> 16),
            sdp_offer: offer.to_string(),
            refuse_refer: options.refuse_refer,
        },
        started,
    );
    let (work_tx, work_rx) = mpsc::unbounded_channel();
    let script = match options.recognizer {
        Some(_) => Script::new(options.scenario.clone()),
        None => Script::listen_only(options.scenario.clone()),
    };
    let timing = conversation::Timing {
        timeout: options.timeout,
        speak_first_after: options.speak_first_after,
        transcribe: options.recognizer.is_some(),
        barge_in: options.barge_in,
    };
    let mut call = Call {
        uac,
        offer,
        session: None,
        payload_type: 0,
        in_decoder: None,
        out_decoder: None,
        conversation: Conversation::new(script, timing, started),
        started,
        sip_call_id,
        pending_line: None,
        voices: HashMap::new(),
        synthesising: HashSet::new(),
        prompts_saved: 0,
        bye_deadline: None,
        refer_to: None,
        status: None,
        error: None,
        work_tx,
        options,
    };
    call.presynthesise();
    call.run(&sip, &rtp, work_rx).await;
    Ok(call.report())
}

/// The address of our interface towards `remote` (loopback for a loopback
/// target).
fn local_ip_towards(remote: SocketAddr) -> std::io::Result<IpAddr> {
    if remote.ip().is_loopback() {
        return Ok(remote.ip());
    }
    let any: SocketAddr = if remote.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let probe = std::net::UdpSocket::bind(any)?;
    probe.connect(remote)?;
    Ok(probe.local_addr()?.ip())
}

/// A UDP socket on an even ephemeral port (RFC 3550 §11).
async fn bind_even(ip: IpAddr) -> std::io::Result<UdpSocket> {
    let mut odd = Vec::new();
    for _ in 0..64 {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        if socket.local_addr()?.port() % 2 == 0 {
            return Ok(socket);
        }
        // Keep odd ones bound meanwhile so the next bind gets another port.
        odd.push(socket);
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrNotAvailable,
        "no even UDP port for RTP",
    ))
}

/// Sleeps until `deadline`, or forever.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Whether an RTP packet's audio is voiced.
fn voiced(decoder: &mut Decoder, payload_type: u8, datagram: &[u8]) -> bool {
    let Ok(packet) = RtpPacket::parse(datagram) else {
        return false;
    };
    if packet.header.payload_type != payload_type {
        return false;
    }
    let mut pcm = Vec::with_capacity(packet.payload.len() * 2);
    decoder.decode(packet.payload, &mut pcm).is_ok() && echo_media::vad::dbfs(&pcm) > VOICED_DBFS
}

/// One call in progress: the thin driver around the [`Uac`], the
/// [`MediaSession`] and the [`Conversation`].
struct Call {
    options: CallOptions,
    uac: Uac,
    offer: SessionDescription,
    session: Option<MediaSession>,
    payload_type: u8,
    in_decoder: Option<Decoder>,
    out_decoder: Option<Decoder>,
    conversation: Conversation,
    started: Instant,
    sip_call_id: String,
    /// A line to play once it is synthesised.
    pending_line: Option<String>,
    voices: HashMap<String, Arc<Vec<i16>>>,
    synthesising: HashSet<String>,
    prompts_saved: usize,
    bye_deadline: Option<Instant>,
    refer_to: Option<String>,
    status: Option<u16>,
    error: Option<String>,
    work_tx: mpsc::UnboundedSender<Work>,
}

impl Call {
    async fn run(
        &mut self,
        sip: &UdpSocket,
        rtp: &UdpSocket,
        mut work_rx: mpsc::UnboundedReceiver<Work>,
    ) {
        let mut sip_buf = vec![0u8; 65_536];
        let mut rtp_buf = vec![0u8; 2048];
        // Ctrl-C hangs up properly (BYE) instead of leaving the bot talking.
        let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
        let mut interrupted = false;
        loop {
            self.flush(sip, rtp);
            if self.finished(Instant::now()) {
                return;
            }
            let deadline = self.next_deadline();
            tokio::select! {
                received = sip.recv_from(&mut sip_buf) => {
                    if let Ok((n, from)) = received {
                        self.uac.handle_datagram(Instant::now(), from, &sip_buf[..n]);
                    }
                }
                received = rtp.recv_from(&mut rtp_buf) => {
                    if let Ok((n, from)) = received {
                        self.handle_rtp(Instant::now(), from, &rtp_buf[..n]);
                    }
                }
                work = work_rx.recv() => {
                    if let Some(work) = work {
                        self.handle_work(Instant::now(), work);
                    }
                }
                _ = &mut interrupt, if !interrupted => {
                    interrupted = true;
                    self.fail(Instant::now(), "interrupted".into());
                }
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    self.uac.handle_timeout(now);
                    if let Some(session) = self.session.as_mut() {
                        session.handle_timeout(now);
                    }
                    self.conversation.handle_timeout(now);
                }
            }
            let now = Instant::now();
            self.handle_uac_events(now);
            self.handle_media_events(now);
            self.handle_actions(now);
        }
    }

    /// Sends what the cores have queued; our audio packets are timed as
    /// they leave.
    fn flush(&mut self, sip: &UdpSocket, rtp: &UdpSocket) {
        while let Some(transmit) = self.uac.poll_transmit() {
            if let Err(e) = sip.try_send_to(&transmit.data, transmit.destination) {
                debug!(error = %e, "SIP send failed");
            }
        }
        let Some(session) = self.session.as_mut() else {
            return;
        };
        while let Some(transmit) = session.poll_transmit() {
            let sent = rtp
                .try_send_to(&transmit.data, transmit.destination)
                .is_ok();
            if sent && transmit.kind == TransmitKind::Rtp {
                let at = Instant::now();
                if let Some(decoder) = self.out_decoder.as_mut() {
                    let voiced = voiced(decoder, self.payload_type, &transmit.data);
                    self.conversation.sent(at, voiced);
                }
            }
        }
    }

    fn handle_rtp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let expected = session.config().remote_rtp.is_none_or(|r| r == from);
        if expected {
            if let Some(decoder) = self.in_decoder.as_mut() {
                let voiced = voiced(decoder, self.payload_type, datagram);
                self.conversation.received(now, voiced);
            }
        }
        session.handle_rtp(now, from, datagram);
    }

    fn handle_uac_events(&mut self, now: Instant) {
        while let Some(event) = self.uac.poll_event() {
            match event {
                UacEvent::Progress { code } => info!(code, "ringing"),
                UacEvent::Answered { sdp } => {
                    info!("answered");
                    match self.start_media(now, &sdp) {
                        Ok(()) => self.conversation.answered(now),
                        Err(e) => self.fail(now, format!("cannot use the bot's SDP answer: {e}")),
                    }
                }
                UacEvent::Rejected { code, reason } => {
                    warn!(code, reason, "call rejected");
                    self.status = Some(code);
                    self.conversation.end(now, Ended::Rejected);
                }
                UacEvent::NoAnswer => self.conversation.end(now, Ended::NoAnswer),
                UacEvent::RemoteHangup => {
                    info!("the bot hung up");
                    let how = if self.transferred() {
                        Ended::Refer
                    } else {
                        Ended::ByeFromBot
                    };
                    self.conversation.end(now, how);
                }
                UacEvent::Refer { target, accepted } => {
                    println!(
                        "refer: {target} ({})",
                        if accepted { "accepted" } else { "declined" }
                    );
                    self.refer_to = Some(target);
                    if accepted {
                        self.conversation.transferred(now);
                    }
                }
                UacEvent::Ended => self.conversation.end(now, Ended::CallerHangup),
            }
        }
    }

    /// The bot sent a REFER and we accepted it.
    fn transferred(&self) -> bool {
        self.refer_to.is_some() && !self.options.refuse_refer
    }

    fn start_media(&mut self, now: Instant, sdp: &[u8]) -> Result<(), String> {
        let answer = SessionDescription::parse_bytes(sdp).map_err(|e| e.to_string())?;
        let negotiated = sdp::accept_answer(&self.offer, &answer).map_err(|e| e.to_string())?;
        let config = session_config(&negotiated, self.options.timeout);
        self.payload_type = negotiated.payload_type;
        let mk = || Decoder::new(negotiated.codec).map_err(|e| e.to_string());
        self.in_decoder = Some(mk()?);
        self.out_decoder = Some(mk()?);
        let session = MediaSession::new(config, rand::random(), now)
            .map_err(|e: MediaError| e.to_string())?;
        self.session = Some(session);
        Ok(())
    }

    fn handle_media_events(&mut self, now: Instant) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut events = Vec::new();
        while let Some(event) = session.poll_event() {
            events.push(event);
        }
        for event in events {
            if event == MediaEvent::MediaTimeout {
                self.fail(now, "no RTP from the bot".into());
            } else {
                self.conversation.media_event(now, &event);
            }
        }
    }

    fn handle_actions(&mut self, now: Instant) {
        while let Some(action) = self.conversation.poll_action() {
            match action {
                Action::Transcribe {
                    generation,
                    pcm_16k,
                } => {
                    let Some(recognizer) = self.options.recognizer.clone() else {
                        continue;
                    };
                    let tx = self.work_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let result = recognizer
                            .transcribe(&pcm_16k, &Bias::none())
                            .map(|t| t.text.trim().to_owned());
                        let _ = tx.send(Work::Transcript(generation, result));
                    });
                }
                Action::PromptAudio { pcm_16k } => self.save_prompt(&pcm_16k),
                Action::Turn(turn) => print_turn(&turn),
                Action::Say(line) => self.say(line),
                Action::HangUp => self.hang_up(now),
            }
        }
        if self.conversation.ending().is_some() && self.bye_deadline.is_none() {
            // Ended by the bot or by SIP: nothing more to send but the BYE
            // (a no-op when the dialog is already over).
            self.hang_up(now);
        }
    }

    fn save_prompt(&mut self, pcm: &[i16]) {
        let Some(dir) = &self.options.save_audio else {
            return;
        };
        self.prompts_saved += 1;
        let path = dir.join(format!("bot-{:02}.wav", self.prompts_saved));
        if let Err(e) = voice::write_wav(&path, 16_000, pcm) {
            warn!(path = %path.display(), error = %e, "cannot save the bot's audio");
        }
    }

    fn handle_work(&mut self, now: Instant, work: Work) {
        match work {
            Work::Voice(text, Ok(pcm)) => {
                self.synthesising.remove(&text);
                self.voices.insert(text.clone(), pcm);
                if self.pending_line.as_deref() == Some(text.as_str()) {
                    self.pending_line = None;
                    self.play(&text);
                }
            }
            Work::Voice(text, Err(e)) => {
                self.synthesising.remove(&text);
                self.fail(now, format!("cannot synthesise the caller's voice: {e}"));
            }
            Work::Transcript(generation, Ok(text)) => {
                self.conversation.transcript(now, generation, text);
            }
            Work::Transcript(_, Err(e)) => self.fail(now, format!("recogniser: {e}")),
        }
    }

    fn say(&mut self, line: String) {
        if self.voices.contains_key(&line) {
            self.play(&line);
        } else {
            self.synthesise(line.clone());
            self.pending_line = Some(line);
        }
    }

    fn play(&mut self, line: &str) {
        let (Some(session), Some(pcm)) = (self.session.as_mut(), self.voices.get(line)) else {
            return;
        };
        if let Err(e) = session.play(pcm, VOICE_RATE) {
            warn!(error = %e, "cannot play the caller's line");
            // Let the conversation go on as if it had been said.
            self.conversation
                .media_event(Instant::now(), &MediaEvent::PlayoutFinished);
        }
    }

    fn presynthesise(&mut self) {
        let mut lines = self.options.scenario.all_lines();
        lines.push("yes".into());
        for line in lines {
            self.synthesise(line);
        }
    }

    fn synthesise(&mut self, line: String) {
        if self.voices.contains_key(&line) || !self.synthesising.insert(line.clone()) {
            return;
        }
        let voice = self.options.voice.clone();
        let tx = self.work_tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = voice.synthesize(&line).map(Arc::new);
            let _ = tx.send(Work::Voice(line, result));
        });
    }

    fn fail(&mut self, now: Instant, error: String) {
        warn!(error, "call failed");
        if self.conversation.ending().is_none() {
            self.error = Some(error);
            self.conversation.end(now, Ended::Error);
        }
    }

    fn hang_up(&mut self, now: Instant) {
        if self.bye_deadline.is_none() {
            self.uac.hangup(now);
            self.bye_deadline = Some(now + BYE_WAIT);
        }
    }

    fn finished(&self, now: Instant) -> bool {
        self.conversation.ending().is_some()
            && (self.uac.state() == CallState::Terminated
                || self.bye_deadline.is_some_and(|d| now >= d))
            && !self.conversation.hearing_last_words(now)
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.uac.poll_timeout(),
            self.session.as_ref().and_then(|s| s.poll_timeout()),
            self.conversation.poll_timeout(),
            self.bye_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn report(&self) -> CallReport {
        let turns = self.conversation.turns().to_vec();
        let mut v2v: Vec<u64> = turns.iter().filter_map(|t| t.v2v_ms).collect();
        v2v.sort_unstable();
        let ended = match self.conversation.ending() {
            // We hung up after the bot's REFER: it transferred the call.
            Some(Ended::CallerHangup) if self.transferred() => Ended::Refer,
            Some(ended) => ended,
            None => Ended::Error,
        };
        CallReport {
            sip_call_id: self.sip_call_id.clone(),
            barge_ins: turns.iter().filter(|t| t.barge_in).count(),
            turns,
            ended,
            refer_to: self.refer_to.clone(),
            status: self.status,
            error: self.error.clone(),
            duration_ms: self.started.elapsed().as_millis() as u64,
            v2v_p50_ms: percentile(&v2v, 50.0),
            v2v_p90_ms: percentile(&v2v, 90.0),
        }
    }
}

/// Prints a turn as the conversation goes.
fn print_turn(turn: &Turn) {
    if !turn.bot.is_empty() {
        match turn.v2v_ms {
            Some(ms) => println!(
                "bot: {}  [v2v_ms={ms}{}]",
                turn.bot,
                if turn.barge_in { " barge-in" } else { "" }
            ),
            None => println!("bot: {}", turn.bot),
        }
    }
    if let Some(line) = &turn.caller {
        println!("caller: {line}");
    }
}

/// The listener's media session: no barge-in (the caller finishes its
/// lines), a long end-of-utterance silence, long utterances allowed.
fn session_config(media: &NegotiatedMedia, timeout: Duration) -> SessionConfig {
    let listener = MediaSettings {
        silence: LISTEN_SILENCE,
        barge_in_min: Duration::from_secs(24 * 3600),
        max_utterance: Duration::from_secs(60),
        // A prompt's soft first syllable ("Let me…") stays in the audio the
        // recogniser gets.
        pre_roll: Duration::from_millis(500),
        media_timeout: timeout.min(Duration::from_secs(30)),
        ..MediaSettings::default()
    };
    crate::call::session_config(media, &listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 90.0), Some(7));
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50.0), Some(5));
        assert_eq!(percentile(&v, 90.0), Some(9));
    }

    #[test]
    fn report_json_shape() {
        let report = CallReport {
            sip_call_id: "abc@echo-caller".into(),
            turns: vec![Turn {
                bot: "May I have the patient's first and last name?".into(),
                caller: Some("Linda Park".into()),
                asked_slot: Some("patient_name".into()),
                v2v_ms: Some(812),
                barge_in: false,
            }],
            ended: Ended::ByeFromBot,
            refer_to: None,
            status: None,
            error: None,
            duration_ms: 1000,
            barge_ins: 0,
            v2v_p50_ms: Some(812),
            v2v_p90_ms: Some(812),
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["ended"], "bye-from-bot");
        assert_eq!(json["sip_call_id"], "abc@echo-caller");
        assert_eq!(json["turns"][0]["asked_slot"], "patient_name");
        assert_eq!(json["turns"][0]["v2v_ms"], 812);
        assert!(report.ended_by_bot());
        assert!(report.summary().contains("ended=bye-from-bot"));
    }
}
