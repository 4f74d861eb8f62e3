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
use crate::sip::sdp::{self, Direction, LocalMedia, NegotiatedMedia, SessionDescription};
use measure::{EdgeMeter, VOICED_DBFS};
use prompt::{Reply, Script};
use scenario::Scenario;
use uac::{CallState, Uac, UacConfig, UacEvent};
use voice::{Voice, VoiceError, VOICE_RATE};

/// Bot utterances closer than this are one prompt.
const JOIN_GAP: Duration = Duration::from_millis(1200);
/// The media session's end-of-utterance silence: long enough that the
/// pauses between a prompt's sentences do not split it.
const LISTEN_SILENCE: Duration = Duration::from_millis(900);
/// After the goodbye (or an accepted REFER), how long the bot has to hang
/// up before the caller does.
const HANGUP_GRACE: Duration = Duration::from_secs(4);
/// How long the caller keeps listening after the call ended for the bot's
/// last prompt to be endpointed and transcribed.
const LAST_WORDS: Duration = Duration::from_secs(8);
/// How long to wait for the answer to our BYE.
const BYE_WAIT: Duration = Duration::from_secs(4);
/// Silence put between joined utterances of one prompt.
const JOIN_SILENCE_SAMPLES: usize = 16_000 * 3 / 10;

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
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Loads the recogniser the caller hears with, from the models folder
/// (`whisper-tiny.en` in it).
pub fn load_recognizer(models_dir: &Path) -> Result<SharedRecognizer, SpeechError> {
    Err(SpeechError::Missing {
        what: "Whisper recogniser",
        path: models_dir.join("whisper-tiny.en").display().to_string(),
        hint: "this build has no Whisper engine yet; run with --listen-only",
    })
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
    let uac = Uac::new(
        UacConfig {
            target_uri: options.target_uri.clone(),
            remote,
            local: sip.local_addr()?,
            user: "caller".into(),
            call_id: format!("{:016x}@echo-caller", rand::random::<u64>()),
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
    let mut call = Call {
        uac,
        offer,
        session: None,
        payload_type: 0,
        meter: EdgeMeter::new(),
        in_decoder: None,
        out_decoder: None,
        script,
        started,
        answered_at: None,
        heard_anything: false,
        heard_pcm: Vec::new(),
        bot_speaking: false,
        last_speech_end: None,
        transcribing: None,
        generation: 0,
        caller_playing: false,
        pending_line: None,
        voices: HashMap::new(),
        synthesising: HashSet::new(),
        turns: Vec::new(),
        prompts_saved: 0,
        done_at: None,
        ending: None,
        ended_at: None,
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

/// One call in progress.
struct Call {
    options: CallOptions,
    uac: Uac,
    offer: SessionDescription,
    session: Option<MediaSession>,
    payload_type: u8,
    meter: EdgeMeter,
    in_decoder: Option<Decoder>,
    out_decoder: Option<Decoder>,
    script: Script,
    started: Instant,
    answered_at: Option<Instant>,
    /// The bot has said anything at all (no need to speak first).
    heard_anything: bool,
    /// The current prompt's audio, utterances joined.
    heard_pcm: Vec<i16>,
    bot_speaking: bool,
    last_speech_end: Option<Instant>,
    /// The generation of the transcription running, if one is.
    transcribing: Option<u64>,
    generation: u64,
    caller_playing: bool,
    /// A line to say once it is synthesised.
    pending_line: Option<String>,
    voices: HashMap<String, Arc<Vec<i16>>>,
    synthesising: HashSet<String>,
    turns: Vec<Turn>,
    prompts_saved: usize,
    /// The script is done (or the bot transferred us): hang up after the
    /// grace if the bot does not.
    done_at: Option<Instant>,
    ending: Option<Ended>,
    ended_at: Option<Instant>,
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
                }
            }
            let now = Instant::now();
            self.handle_uac_events(now);
            self.handle_media_events(now);
            self.step(now);
        }
    }

    /// Sends what the cores have queued; our voiced audio packets are
    /// timed as they leave.
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
                    self.meter.sent(at, voiced);
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
                self.meter.received(now, voiced);
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
                    self.answered_at = Some(now);
                    if let Err(e) = self.start_media(now, &sdp) {
                        self.fail(now, format!("cannot use the bot's SDP answer: {e}"));
                    }
                }
                UacEvent::Rejected { code, reason } => {
                    warn!(code, reason, "call rejected");
                    self.status = Some(code);
                    self.end(Ended::Rejected);
                }
                UacEvent::NoAnswer => self.end(Ended::NoAnswer),
                UacEvent::RemoteHangup => {
                    info!("the bot hung up");
                    let how = if self.refer_to.is_some() && !self.options.refuse_refer {
                        Ended::Refer
                    } else {
                        Ended::ByeFromBot
                    };
                    self.end(how);
                }
                UacEvent::Refer { target, accepted } => {
                    println!(
                        "refer: {target} ({})",
                        if accepted { "accepted" } else { "declined" }
                    );
                    self.refer_to = Some(target);
                    if accepted {
                        self.done_at.get_or_insert(now);
                    }
                }
                UacEvent::Ended => {
                    if self.ending.is_none() {
                        self.ending = Some(Ended::CallerHangup);
                    }
                }
            }
        }
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
            match event {
                MediaEvent::SpeechStarted { .. } => {
                    self.heard_anything = true;
                    self.bot_speaking = true;
                    self.invalidate_transcription();
                }
                MediaEvent::Utterance { pcm_16k, end, .. } => {
                    self.heard_anything = true;
                    self.bot_speaking = false;
                    self.invalidate_transcription();
                    if !self.heard_pcm.is_empty() {
                        self.heard_pcm
                            .extend(std::iter::repeat_n(0, JOIN_SILENCE_SAMPLES));
                    }
                    self.heard_pcm.extend_from_slice(&pcm_16k);
                    self.last_speech_end = Some(end);
                }
                MediaEvent::PlayoutFinished => {
                    self.caller_playing = false;
                    self.meter.line_finished();
                }
                MediaEvent::MediaTimeout => {
                    self.fail(now, "no RTP from the bot".into());
                }
                _ => {}
            }
        }
    }

    fn invalidate_transcription(&mut self) {
        if self.transcribing.take().is_some() {
            self.generation += 1;
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
            Work::Transcript(generation, result) => {
                if self.transcribing != Some(generation) {
                    return;
                }
                self.transcribing = None;
                match result {
                    Ok(text) => self.prompt_over(now, Some(text)),
                    Err(e) => self.fail(now, format!("recogniser: {e}")),
                }
            }
        }
    }

    /// The conversation's own timers: speak first, prompt over, hang up.
    fn step(&mut self, now: Instant) {
        if self.ending.is_none() {
            if now >= self.started + self.options.timeout {
                warn!("the call timed out");
                self.hang_up(now, Ended::Timeout);
                return;
            }
            if let Some(done) = self.done_at {
                if now >= done + HANGUP_GRACE {
                    let how = if self.refer_to.is_some() && !self.options.refuse_refer {
                        Ended::Refer
                    } else {
                        Ended::CallerHangup
                    };
                    self.hang_up(now, how);
                }
            }
        }
        if self.session.is_none() || self.caller_playing || self.pending_line.is_some() {
            return;
        }
        let Some(answered) = self.answered_at else {
            return;
        };
        if self.ending.is_none()
            && self.done_at.is_none()
            && !self.heard_anything
            && self.turns.is_empty()
            && now >= answered + self.options.speak_first_after
        {
            info!("the bot is silent: speaking first");
            let reply = self.script.speak_first();
            self.apply(now, String::new(), None, reply);
            return;
        }
        let prompt_over = !self.heard_pcm.is_empty()
            && !self.bot_speaking
            && self.transcribing.is_none()
            && self
                .last_speech_end
                .is_some_and(|end| now >= end + JOIN_GAP);
        if !prompt_over {
            return;
        }
        match self.options.recognizer.clone() {
            None => self.prompt_over(now, None),
            Some(recognizer) => {
                let generation = self.generation;
                self.transcribing = Some(generation);
                let pcm = self.heard_pcm.clone();
                let tx = self.work_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let result = recognizer
                        .transcribe(&pcm, &Bias::none())
                        .map(|t| t.text.trim().to_owned());
                    let _ = tx.send(Work::Transcript(generation, result));
                });
            }
        }
    }

    /// The bot's prompt is complete: record it and answer.
    fn prompt_over(&mut self, now: Instant, text: Option<String>) {
        let pcm = std::mem::take(&mut self.heard_pcm);
        self.last_speech_end = None;
        if let Some(dir) = &self.options.save_audio {
            self.prompts_saved += 1;
            let path = dir.join(format!("bot-{:02}.wav", self.prompts_saved));
            if let Err(e) = voice::write_wav(&path, 16_000, &pcm) {
                warn!(path = %path.display(), error = %e, "cannot save the bot's audio");
            }
        }
        let bot = match &text {
            Some(t) => t.clone(),
            None => format!("[{:.1} s of speech]", pcm.len() as f64 / 16_000.0),
        };
        let reply = self.script.reply(text.as_deref());
        let timing = self.meter.take();
        self.apply(now, bot, timing, reply);
    }

    fn apply(
        &mut self,
        now: Instant,
        bot: String,
        timing: Option<measure::ReplyTiming>,
        reply: Reply,
    ) {
        let v2v_ms = timing.map(|t| t.v2v.as_millis() as u64);
        let barge_in = timing.is_some_and(|t| t.barge_in);
        if !bot.is_empty() {
            match v2v_ms {
                Some(ms) => println!(
                    "bot: {bot}  [v2v_ms={ms}{}]",
                    if barge_in { " barge-in" } else { "" }
                ),
                None => println!("bot: {bot}"),
            }
        }
        let mut turn = Turn {
            bot,
            caller: None,
            asked_slot: None,
            v2v_ms,
            barge_in,
        };
        let over = self.ending.is_some() || self.done_at.is_some();
        match reply {
            // The bot hung up (or transferred us) while we listened to its
            // last words: they are recorded, not answered.
            Reply::Say { .. } | Reply::Listen if over => {}
            Reply::Say { line, slot } => {
                println!("caller: {line}");
                turn.caller = Some(line.clone());
                turn.asked_slot = slot;
                self.say(line);
            }
            Reply::Listen => {}
            Reply::Done => {
                self.done_at.get_or_insert(now);
            }
        }
        self.turns.push(turn);
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
        match session.play(pcm, VOICE_RATE) {
            Ok(()) => {
                self.caller_playing = true;
                self.meter.line_started();
            }
            Err(e) => warn!(error = %e, "cannot play the caller's line"),
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
        if self.ending.is_none() {
            self.error = Some(error);
            self.hang_up(now, Ended::Error);
        }
    }

    fn end(&mut self, how: Ended) {
        if self.ending.is_none() {
            self.ending = Some(how);
            self.ended_at = Some(Instant::now());
        }
    }

    fn hang_up(&mut self, now: Instant, how: Ended) {
        self.end(how);
        self.uac.hangup(now);
        self.bye_deadline = Some(now + BYE_WAIT);
    }

    fn finished(&self, now: Instant) -> bool {
        self.ending.is_some()
            && (self.uac.state() == CallState::Terminated
                || self.bye_deadline.is_some_and(|d| now >= d))
            && !self.hearing_last_words(now)
    }

    /// After the bot's BYE the session keeps running briefly so that its
    /// last prompt (the goodbye, said just before the BYE) is endpointed,
    /// transcribed and recorded.
    fn hearing_last_words(&self, now: Instant) -> bool {
        let pending =
            self.bot_speaking || !self.heard_pcm.is_empty() || self.transcribing.is_some();
        pending
            && self.ending != Some(Ended::Error)
            && self.ended_at.is_some_and(|at| now < at + LAST_WORDS)
    }

    fn next_deadline(&self) -> Option<Instant> {
        let prompt_over = self.last_speech_end.map(|end| end + JOIN_GAP);
        let conversation = if self.ending.is_some() {
            let last_words = self.ended_at.map(|at| at + LAST_WORDS);
            [self.bye_deadline, prompt_over, last_words]
                .into_iter()
                .flatten()
                .min()
        } else if let Some(done) = self.done_at {
            [Some(done + HANGUP_GRACE), prompt_over]
                .into_iter()
                .flatten()
                .min()
        } else {
            let speak_first = self
                .answered_at
                .filter(|_| !self.heard_anything && self.turns.is_empty())
                .map(|a| a + self.options.speak_first_after);
            [speak_first, prompt_over].into_iter().flatten().min()
        };
        [
            self.uac.poll_timeout(),
            self.session.as_ref().and_then(|s| s.poll_timeout()),
            conversation,
            Some(self.started + self.options.timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn report(&self) -> CallReport {
        let mut v2v: Vec<u64> = self.turns.iter().filter_map(|t| t.v2v_ms).collect();
        v2v.sort_unstable();
        CallReport {
            turns: self.turns.clone(),
            ended: self.ending.unwrap_or(Ended::Error),
            refer_to: self.refer_to.clone(),
            status: self.status,
            error: self.error.clone(),
            duration_ms: self.started.elapsed().as_millis() as u64,
            barge_ins: self.turns.iter().filter(|t| t.barge_in).count(),
            v2v_p50_ms: percentile(&v2v, 50.0),
            v2v_p90_ms: percentile(&v2v, 90.0),
        }
    }
}

/// The listener's media session: no barge-in (the caller finishes its
/// lines), a long end-of-utterance silence, long utterances allowed.
fn session_config(media: &NegotiatedMedia, timeout: Duration) -> SessionConfig {
    let mut config = SessionConfig::new(media.codec, media.payload_type, media.remote_rtp);
    config.telephone_event = media.telephone_event;
    config.ptime = Duration::from_millis(u64::from(media.ptime_ms.clamp(10, 60)));
    config.send = matches!(
        media.local_direction,
        Direction::SendRecv | Direction::SendOnly
    );
    config.media = MediaSettings {
        silence: LISTEN_SILENCE,
        barge_in_min: Duration::from_secs(24 * 3600),
        max_utterance: Duration::from_secs(60),
        media_timeout: timeout.min(Duration::from_secs(30)),
        ..MediaSettings::default()
    };
    config
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
        assert_eq!(json["turns"][0]["asked_slot"], "patient_name");
        assert_eq!(json["turns"][0]["v2v_ms"], 812);
        assert!(report.ended_by_bot());
        assert!(report.summary().contains("ended=bye-from-bot"));
    }
}
