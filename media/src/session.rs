//! The per-call media session, sans-IO: datagrams, timer ticks and commands
//! in; datagrams to send, events and the next deadline out.
//!
//! One frame clock (every `ptime` from the session's start) drives both
//! directions. At each tick the session
//! 1. takes the next outbound frame (prompt audio, or silence between
//!    prompts so NAT bindings stay open) and measures its level;
//! 2. plays one slot of the jitter buffer (decode, or conceal a loss),
//!    resamples to 16 kHz, cuts 20 ms frames, asks the [`Vad`] (telling it
//!    the outbound level) and feeds the [`Endpointer`]; caller speech for
//!    `barge_in_min` during a prompt raises [`MediaEvent::BargeIn`] and the
//!    prompt is cut before this tick's frame is sent;
//! 3. encodes and packetises the outbound frame, due at the tick.
//!
//! DTMF key presses (RFC 4733) and RTCP reports have their own deadlines.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::codec::{AudioDecoder, AudioEncoder, CodecError, CodecKind, Decoder, Encoder};
use crate::dtmf::{self, DtmfReceiver, DtmfStep};
use crate::endpoint::{EndpointConfig, EndpointEvent, Endpointer};
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::resample::{ResampleError, Resampler};
use crate::rtcp::{self, ReportBlock, SenderInfo};
use crate::rtp::{write_packet, RtpError, RtpHeader, RtpPacket};
use crate::vad::{self, Vad, VadConfig, FRAME_SAMPLES};

/// The rate the hearing side (VAD, endpointer, utterances) runs at.
pub const HEARING_RATE: u32 = 16_000;
/// Interval between RTCP reports (RFC 3550's minimum, not randomised: the
/// session is deterministic).
pub const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// The route's media settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaSettings {
    /// Smallest jitter-buffer delay.
    pub jitter_min: Duration,
    /// Largest jitter-buffer delay.
    pub jitter_max: Duration,
    /// Voiced time before speech counts as started.
    pub min_speech: Duration,
    /// Silence that ends an utterance.
    pub silence: Duration,
    /// The longest utterance.
    pub max_utterance: Duration,
    /// Audio kept from before the speech start.
    pub pre_roll: Duration,
    /// Silence inside an utterance that raises [`MediaEvent::Pause`] (for
    /// speculative recognition); zero: never.
    pub pause: Duration,
    /// VAD probability threshold (0.0–1.0).
    pub vad_threshold: f32,
    /// Caller speech during a prompt for this long interrupts it.
    pub barge_in_min: Duration,
    /// No RTP for this long raises [`MediaEvent::MediaTimeout`].
    pub media_timeout: Duration,
    /// Play the caller's own audio back to them (the operator's echo test):
    /// every decoded frame, concealment included, goes to the playout
    /// queue; barge-in and `PlayoutFinished` are off.
    pub loopback: bool,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            jitter_min: Duration::from_millis(20),
            jitter_max: Duration::from_millis(200),
            min_speech: Duration::from_millis(100),
            silence: Duration::from_millis(500),
            max_utterance: Duration::from_secs(15),
            pre_roll: Duration::from_millis(200),
            pause: Duration::ZERO,
            vad_threshold: 0.5,
            barge_in_min: Duration::from_millis(200),
            media_timeout: Duration::from_secs(30),
            loopback: false,
        }
    }
}

/// What was negotiated in SDP, plus the route's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionConfig {
    /// The agreed codec.
    pub codec: CodecKind,
    /// Its payload type.
    pub payload_type: u8,
    /// Its RTP clock rate in Hz (8000 for G.711, 48000 for Opus).
    pub clock_rate: u32,
    /// Packetisation time.
    pub ptime: Duration,
    /// The telephone-event payload type, if DTMF was agreed.
    pub telephone_event: Option<u8>,
    /// Where to send RTP, and the only source RTP is accepted from; `None`
    /// while on hold (nothing is sent, anything is accepted).
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP; `None` means the RTP port plus one.
    pub remote_rtcp: Option<SocketAddr>,
    /// Whether we send audio (false while the caller holds us: our side is
    /// `recvonly` or `inactive`); RTCP goes on either way.
    pub send: bool,
    /// The route's media settings.
    pub media: MediaSettings,
}

impl SessionConfig {
    /// A configuration with the codec's usual clock rate, 20 ms frames, no
    /// DTMF and default settings.
    pub fn new(codec: CodecKind, payload_type: u8, remote_rtp: Option<SocketAddr>) -> Self {
        SessionConfig {
            codec,
            payload_type,
            clock_rate: codec.clock_rate(),
            ptime: Duration::from_millis(20),
            telephone_event: None,
            remote_rtp,
            remote_rtcp: None,
            send: true,
            media: MediaSettings::default(),
        }
    }

    fn rtcp_destination(&self) -> Option<SocketAddr> {
        self.remote_rtcp.or_else(|| {
            self.remote_rtp.map(|mut a| {
                a.set_port(a.port().wrapping_add(1));
                a
            })
        })
    }

    fn ptime_ms(&self) -> u32 {
        self.ptime.as_millis() as u32
    }

    /// RTP clock ticks per frame.
    fn clock_per_frame(&self) -> u32 {
        (u64::from(self.clock_rate) * self.ptime.as_micros() as u64 / 1_000_000) as u32
    }
}

/// What the session tells the call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// The caller started speaking (at the first voiced frame).
    SpeechStarted {
        /// Start of the first voiced frame.
        at: Instant,
    },
    /// The caller paused inside an utterance (see `MediaSettings::pause`):
    /// the audio so far. An `Utterance` with the same `start` follows if the
    /// pause becomes the end; if speech resumes, more pauses may follow.
    Pause {
        /// 16 kHz mono PCM so far, with ~200 ms of pre-roll.
        pcm_16k: Vec<i16>,
        /// Start of the first voiced frame.
        start: Instant,
        /// End of the last voiced frame.
        end: Instant,
    },
    /// The caller finished an utterance.
    Utterance {
        /// 16 kHz mono PCM, with ~200 ms of pre-roll.
        pcm_16k: Vec<i16>,
        /// Start of the first voiced frame.
        start: Instant,
        /// End of the last voiced frame.
        end: Instant,
    },
    /// The caller spoke over a prompt; playout has stopped.
    BargeIn {
        /// When it was decided.
        at: Instant,
    },
    /// A DTMF key press (once per press).
    Dtmf {
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        digit: char,
        /// When its first packet arrived.
        at: Instant,
    },
    /// No RTP for the configured timeout (raised once until RTP resumes).
    MediaTimeout,
    /// The prompt queue drained (not raised after a stop or a barge-in).
    PlayoutFinished,
}

/// Whether a datagram is RTP or RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmitKind {
    /// To the RTP port.
    Rtp,
    /// To the RTCP port.
    Rtcp,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// RTP or RTCP.
    pub kind: TransmitKind,
    /// The bytes.
    pub data: Vec<u8>,
    /// When it should leave: send it at or right after this instant.
    pub due: Instant,
}

/// What the peer says about our stream in its RTCP reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RemoteReport {
    /// Fraction of our packets lost, 0.0–1.0, over its last interval.
    pub fraction_lost: f32,
    /// Our packets lost in total.
    pub cumulative_lost: i32,
    /// Interarrival jitter it measures on our stream.
    pub jitter: Duration,
    /// Round-trip time, when it echoed one of our SRs.
    pub rtt: Option<Duration>,
}

/// Counters of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MediaStats {
    /// The inbound jitter buffer.
    pub jitter: JitterStats,
    /// Fraction of inbound packets lost so far, 0.0–1.0.
    pub inbound_loss: f32,
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP payload octets sent.
    pub octets_sent: u64,
    /// RTCP packets sent.
    pub rtcp_sent: u64,
    /// RTCP reports received.
    pub rtcp_received: u64,
    /// Datagrams from an address other than the negotiated one (ignored).
    pub unexpected_source: u64,
    /// Datagrams that were neither RTP nor RTCP we could read.
    pub invalid: u64,
    /// RTP packets with a payload type we did not negotiate (ignored).
    pub unknown_payload_type: u64,
    /// Payloads the decoder refused (concealed instead).
    pub decode_errors: u64,
    /// DTMF key presses received.
    pub dtmf_received: u64,
    /// The peer's latest report on our stream.
    pub remote: Option<RemoteReport>,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The codec could not be set up.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The PCM rate is not one we resample.
    #[error(transparent)]
    Resample(#[from] ResampleError),
    /// Not a DTMF key.
    #[error("{0:?} is not a DTMF key")]
    NotADigit(char),
    /// DTMF was not negotiated.
    #[error("no telephone-event payload type negotiated")]
    NoTelephoneEvent,
    /// A payload type above 127.
    #[error(transparent)]
    Rtp(#[from] RtpError),
}

/// A key press being sent.
#[derive(Debug)]
struct DtmfSend {
    start: Instant,
    timestamp: u32,
    steps: Vec<DtmfStep>,
    next: usize,
}

/// The per-call media engine.
#[derive(Debug)]
pub struct MediaSession {
    config: SessionConfig,
    ssrc: u32,
    stats: MediaStats,
    events: VecDeque<MediaEvent>,
    transmits: VecDeque<Transmit>,

    // Inbound.
    jitter: JitterBuffer,
    decoder: Decoder,
    to_hearing: Resampler,
    dtmf_in: DtmfReceiver,
    decoded: Vec<i16>,
    hearing: Vec<i16>,
    vad: Vad,
    endpointer: Endpointer,
    barge_in_run: Duration,
    last_rtp: Instant,
    timed_out: bool,
    /// Middle 32 bits of the peer's last SR and when it arrived.
    last_peer_sr: Option<(u32, Instant)>,
    expected_prior: u64,
    received_prior: u64,

    // Outbound.
    encoder: Encoder,
    playout: VecDeque<i16>,
    prompt_resampler: Option<Resampler>,
    frame: Vec<i16>,
    payload: Vec<u8>,
    sequence: u16,
    timestamp: u32,
    /// The next audio packet starts a talkspurt (marker bit).
    talkspurt: bool,
    was_playing: bool,
    dtmf_queue: VecDeque<u8>,
    dtmf_send: Option<DtmfSend>,
    sent_since_report: bool,

    epoch: Instant,
    next_tick: Instant,
    next_rtcp: Instant,
}

impl MediaSession {
    /// A session starting at `now`, sending with our `ssrc` (pick it at
    /// random in the driver: the core has no randomness).
    pub fn new(config: SessionConfig, ssrc: u32, now: Instant) -> Result<Self, MediaError> {
        if config.payload_type > 127 {
            return Err(RtpError::PayloadType(config.payload_type).into());
        }
        let decoder = Decoder::new(config.codec)?;
        let encoder = Encoder::new(config.codec)?;
        let to_hearing = Resampler::new(decoder.sample_rate(), HEARING_RATE)?;
        Ok(MediaSession {
            jitter: JitterBuffer::new(jitter_config(&config)),
            decoder,
            to_hearing,
            dtmf_in: DtmfReceiver::new(),
            decoded: Vec::with_capacity(5760),
            hearing: Vec::with_capacity(FRAME_SAMPLES * 8),
            vad: Vad::new(vad_config(&config)),
            endpointer: Endpointer::new(endpoint_config(&config)),
            barge_in_run: Duration::ZERO,
            last_rtp: now,
            timed_out: false,
            last_peer_sr: None,
            expected_prior: 0,
            received_prior: 0,
            encoder,
            playout: VecDeque::new(),
            prompt_resampler: None,
            frame: Vec::with_capacity(2880),
            payload: Vec::with_capacity(1500),
            // Initial values derived from the SSRC: random enough when the
            // SSRC is (RFC 3550 §5.1), without a generator in the core.
            sequence: (ssrc >> 16) as u16 ^ (ssrc as u16),
            timestamp: ssrc.rotate_left(11),
            talkspurt: true,
            was_playing: false,
            dtmf_queue: VecDeque::new(),
            dtmf_send: None,
            sent_since_report: false,
            stats: MediaStats::default(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            epoch: now,
            next_tick: now,
            next_rtcp: now + RTCP_INTERVAL,
            config,
            ssrc,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Applies a renegotiation (re-INVITE) or new route settings. Sequence
    /// numbers and timestamps continue; a new codec gets a new encoder and
    /// decoder.
    pub fn update(&mut self, config: SessionConfig) -> Result<(), MediaError> {
        if config.payload_type > 127 {
            return Err(RtpError::PayloadType(config.payload_type).into());
        }
        if config.codec != self.config.codec {
            self.decoder = Decoder::new(config.codec)?;
            self.encoder = Encoder::new(config.codec)?;
            self.to_hearing = Resampler::new(self.decoder.sample_rate(), HEARING_RATE)?;
            self.playout.clear();
            self.prompt_resampler = None;
            self.talkspurt = true;
        }
        self.jitter.set_config(jitter_config(&config));
        self.endpointer.set_config(endpoint_config(&config));
        if config.media.vad_threshold != self.config.media.vad_threshold {
            self.vad = Vad::new(vad_config(&config));
        }
        self.config = config;
        Ok(())
    }

    /// Counters, with the latest jitter-buffer state.
    pub fn stats(&self) -> MediaStats {
        let mut stats = self.stats;
        stats.jitter = self.jitter.stats();
        if let Some(report) = self.jitter.reception_report() {
            if report.expected > 0 {
                let lost = report.expected.saturating_sub(report.received);
                stats.inbound_loss = lost as f32 / report.expected as f32;
            }
        }
        stats
    }

    /// Whether a prompt is playing or queued.
    pub fn is_playing(&self) -> bool {
        !self.playout.is_empty()
    }

    /// Queues a prompt: mono PCM at `rate` Hz (8, 11.025, 16, 22.05, 24,
    /// 32, 44.1 or 48 kHz).
    pub fn play(&mut self, pcm: &[i16], rate: u32) -> Result<(), MediaError> {
        let codec_rate = self.encoder.sample_rate();
        if rate == codec_rate {
            self.playout.extend(pcm.iter().copied());
            return Ok(());
        }
        let resampler = match self.prompt_resampler.as_mut() {
            Some(r) if r.input_rate() == rate && r.output_rate() == codec_rate => r,
            _ => self
                .prompt_resampler
                .insert(Resampler::new(rate, codec_rate)?),
        };
        let mut converted = Vec::with_capacity(pcm.len() * codec_rate as usize / rate as usize);
        resampler.process_clip(pcm, &mut converted);
        self.playout.extend(converted);
        Ok(())
    }

    /// Stops the prompt and drops the queue; the next frame is silence.
    pub fn stop_playout(&mut self) {
        self.playout.clear();
        self.was_playing = false;
    }

    /// Queues a DTMF key press to send as RFC 4733 events.
    pub fn send_dtmf(&mut self, digit: char) -> Result<(), MediaError> {
        if self.config.telephone_event.is_none() {
            return Err(MediaError::NoTelephoneEvent);
        }
        let event = dtmf::digit_to_event(digit).ok_or(MediaError::NotADigit(digit))?;
        self.dtmf_queue.push_back(event);
        Ok(())
    }

    /// Takes a datagram received on the RTP port (RTCP multiplexed on it is
    /// read too).
    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if !self.accepts(from) {
            self.stats.unexpected_source += 1;
            return;
        }
        let packet = match RtpPacket::parse(datagram) {
            Ok(packet) => packet,
            Err(RtpError::Rtcp(_)) => return self.read_rtcp(now, datagram),
            Err(_) => {
                self.stats.invalid += 1;
                return;
            }
        };
        self.last_rtp = now;
        self.timed_out = false;
        let header = packet.header;
        if header.payload_type == self.config.payload_type {
            self.jitter.push(now, &header, packet.payload);
        } else if Some(header.payload_type) == self.config.telephone_event {
            if let Some(digit) = self
                .dtmf_in
                .receive(header.ssrc, header.timestamp, packet.payload)
            {
                self.stats.dtmf_received += 1;
                self.events.push_back(MediaEvent::Dtmf { digit, at: now });
            }
        } else {
            self.stats.unknown_payload_type += 1;
        }
    }

    /// Takes a datagram received on the RTCP port.
    pub fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if self.config.remote_rtp.is_some_and(|r| r.ip() != from.ip()) {
            self.stats.unexpected_source += 1;
            return;
        }
        self.read_rtcp(now, datagram);
    }

    /// Runs everything due by `now`: frame ticks, DTMF packets, RTCP, the
    /// media timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        loop {
            let dtmf_due = self.dtmf_due();
            let next = [Some(self.next_tick), dtmf_due, Some(self.next_rtcp)]
                .into_iter()
                .flatten()
                .min()
                .expect("the tick is always there");
            if next > now {
                break;
            }
            if dtmf_due == Some(next) {
                self.send_dtmf_step();
            } else if next == self.next_tick {
                self.tick(next);
                self.next_tick += self.config.ptime;
            } else {
                self.send_rtcp(next);
                self.next_rtcp += RTCP_INTERVAL;
            }
        }
        if !self.timed_out && now >= self.last_rtp + self.config.media.media_timeout {
            self.timed_out = true;
            self.events.push_back(MediaEvent::MediaTimeout);
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let media_timeout =
            (!self.timed_out).then(|| self.last_rtp + self.config.media.media_timeout);
        [
            Some(self.next_tick),
            self.dtmf_due(),
            Some(self.next_rtcp),
            media_timeout,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn accepts(&self, from: SocketAddr) -> bool {
        self.config.remote_rtp.is_none_or(|r| r == from)
    }

    fn dtmf_due(&self) -> Option<Instant> {
        let send = self.dtmf_send.as_ref()?;
        send.steps.get(send.next).map(|s| send.start + s.offset)
    }

    /// One frame of both directions, at tick time `at`.
    fn tick(&mut self, at: Instant) {
        let samples = self.encoder.samples_per_frame(self.config.ptime_ms());
        // A key press starts on a tick; while it is sent, audio pauses
        // (RFC 4733 §2.5.1.2) but the timestamp clock runs on.
        if self.dtmf_send.is_none() && self.config.telephone_event.is_some() {
            if let Some(event) = self.dtmf_queue.pop_front() {
                self.dtmf_send = Some(DtmfSend {
                    start: at,
                    timestamp: self.timestamp,
                    steps: dtmf::send_schedule(event, self.config.clock_rate),
                    next: 0,
                });
            }
        }
        let sending_dtmf = self.dtmf_send.is_some();

        // 1. The outbound frame and its level.
        self.frame.clear();
        let playing = !sending_dtmf && !self.playout.is_empty();
        if playing {
            let take = samples.min(self.playout.len());
            self.frame.extend(self.playout.drain(..take));
        }
        self.frame.resize(samples, 0);
        let outbound_dbfs = playing.then(|| vad::dbfs(&self.frame));

        // 2. Hearing.
        let barged_in = self.hear(at, playing, outbound_dbfs);
        if barged_in {
            self.playout.clear();
            self.frame.clear();
            self.frame.resize(samples, 0);
        }
        let playing = playing && !barged_in;
        if playing && !self.was_playing {
            self.talkspurt = true;
        }
        if playing && self.playout.is_empty() && !self.config.media.loopback {
            self.events.push_back(MediaEvent::PlayoutFinished);
        }
        self.was_playing = playing;

        // 3. Speaking.
        if !sending_dtmf {
            self.send_audio(at);
        } else {
            self.talkspurt = true;
        }
        self.timestamp = self.timestamp.wrapping_add(self.config.clock_per_frame());
    }

    /// Plays one jitter-buffer slot into the hearing pipeline; true when the
    /// caller barged in.
    fn hear(&mut self, at: Instant, playing: bool, outbound_dbfs: Option<f32>) -> bool {
        self.decoded.clear();
        let decode_samples = self.decoder.samples_per_frame(self.config.ptime_ms());
        match self.jitter.poll(at) {
            Playout::Packet(packet) => {
                if self
                    .decoder
                    .decode(&packet.payload, &mut self.decoded)
                    .is_err()
                {
                    self.stats.decode_errors += 1;
                    let _ = self.decoder.conceal(decode_samples, &mut self.decoded);
                }
                self.jitter.recycle(packet.payload);
            }
            Playout::Lost => {
                let recovered = match (&mut self.decoder, self.jitter.peek_next()) {
                    (Decoder::Opus(opus), Some(next)) => opus
                        .recover_from_fec(&next.payload, decode_samples, &mut self.decoded)
                        .is_ok(),
                    _ => false,
                };
                if !recovered {
                    let _ = self.decoder.conceal(decode_samples, &mut self.decoded);
                }
            }
            Playout::Empty => self.decoded.resize(decode_samples, 0),
        }
        if self.config.media.loopback {
            self.playout.extend(self.decoded.iter().copied());
        }
        self.to_hearing.process(&self.decoded, &mut self.hearing);
        let playing = playing && !self.config.media.loopback;
        let mut barged_in = false;
        let frame_length = Duration::from_millis(20);
        let mut offset = 0;
        while self.hearing.len() - offset >= FRAME_SAMPLES {
            let frame = &self.hearing[offset..offset + FRAME_SAMPLES];
            offset += FRAME_SAMPLES;
            let verdict = self.vad.process(frame, outbound_dbfs);
            if playing && verdict.voiced {
                self.barge_in_run += frame_length;
                if !barged_in && self.barge_in_run >= self.config.media.barge_in_min {
                    barged_in = true;
                    self.events.push_back(MediaEvent::BargeIn { at });
                }
            } else {
                self.barge_in_run = Duration::ZERO;
            }
            match self.endpointer.push(at, frame, verdict.voiced) {
                Some(EndpointEvent::SpeechStarted { at }) => {
                    self.events.push_back(MediaEvent::SpeechStarted { at })
                }
                Some(EndpointEvent::Pause {
                    pcm_16k,
                    start,
                    end,
                }) => self.events.push_back(MediaEvent::Pause {
                    pcm_16k,
                    start,
                    end,
                }),
                Some(EndpointEvent::Utterance {
                    pcm_16k,
                    start,
                    end,
                }) => self.events.push_back(MediaEvent::Utterance {
                    pcm_16k,
                    start,
                    end,
                }),
                None => {}
            }
        }
        self.hearing.drain(..offset);
        if barged_in {
            self.barge_in_run = Duration::ZERO;
        }
        barged_in
    }

    fn send_audio(&mut self, at: Instant) {
        let Some(destination) = self.config.remote_rtp.filter(|_| self.config.send) else {
            return;
        };
        self.payload.clear();
        if self.encoder.encode(&self.frame, &mut self.payload).is_err() {
            return;
        }
        let header = RtpHeader {
            payload_type: self.config.payload_type,
            marker: std::mem::take(&mut self.talkspurt),
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
        };
        self.push_rtp(destination, header, at);
    }

    fn push_rtp(&mut self, destination: SocketAddr, header: RtpHeader, due: Instant) {
        let mut data = Vec::with_capacity(12 + self.payload.len());
        if write_packet(&header, &self.payload, &mut data).is_err() {
            return;
        }
        self.sequence = self.sequence.wrapping_add(1);
        self.stats.packets_sent += 1;
        self.stats.octets_sent += self.payload.len() as u64;
        self.sent_since_report = true;
        self.transmits.push_back(Transmit {
            destination,
            kind: TransmitKind::Rtp,
            data,
            due,
        });
    }

    fn send_dtmf_step(&mut self) {
        let Some(send) = self.dtmf_send.as_mut() else {
            return;
        };
        let step = send.steps[send.next];
        send.next += 1;
        let due = send.start + step.offset;
        let timestamp = send.timestamp;
        if send.next >= send.steps.len() {
            self.dtmf_send = None;
        }
        let (Some(destination), Some(payload_type)) =
            (self.config.remote_rtp, self.config.telephone_event)
        else {
            return;
        };
        self.payload.clear();
        self.payload.extend_from_slice(&step.event.to_bytes());
        let header = RtpHeader {
            payload_type,
            marker: step.marker,
            sequence: self.sequence,
            timestamp,
            ssrc: self.ssrc,
        };
        self.push_rtp(destination, header, due);
    }

    /// NTP-format time since the session started: no wall clock is read, and
    /// peers only echo it back for round-trip times.
    fn ntp(&self, now: Instant) -> u64 {
        let elapsed = now - self.epoch;
        (elapsed.as_secs() << 32) | ((u64::from(elapsed.subsec_nanos()) << 32) / 1_000_000_000)
    }

    fn send_rtcp(&mut self, at: Instant) {
        let Some(destination) = self.config.rtcp_destination() else {
            return;
        };
        let sender = std::mem::take(&mut self.sent_since_report).then(|| SenderInfo {
            ntp: self.ntp(at),
            rtp_timestamp: self.timestamp,
            packets: self.stats.packets_sent as u32,
            octets: self.stats.octets_sent as u32,
        });
        let block = self.jitter.reception_report().map(|r| {
            let expected = r.expected - self.expected_prior.min(r.expected);
            let received = r.received - self.received_prior.min(r.received);
            self.expected_prior = r.expected;
            self.received_prior = r.received;
            let lost_interval = expected.saturating_sub(received);
            let fraction_lost = (lost_interval << 8)
                .checked_div(expected)
                .map_or(0, |f| f.min(255) as u8);
            let (last_sr, delay_since_last_sr) = match self.last_peer_sr {
                Some((lsr, when)) => (lsr, ((at - when).as_micros() * 65536 / 1_000_000) as u32),
                None => (0, 0),
            };
            ReportBlock {
                ssrc: r.ssrc,
                fraction_lost,
                cumulative_lost: (r.expected as i64 - r.received as i64) as i32,
                extended_highest: r.extended_highest,
                jitter: r.jitter,
                last_sr,
                delay_since_last_sr,
            }
        });
        let mut data = Vec::with_capacity(128);
        rtcp::write_compound(self.ssrc, sender, block, "echo", &mut data);
        self.stats.rtcp_sent += 1;
        self.transmits.push_back(Transmit {
            destination,
            kind: TransmitKind::Rtcp,
            data,
            due: at,
        });
    }

    fn read_rtcp(&mut self, now: Instant, datagram: &[u8]) {
        let Ok(reports) = rtcp::parse_reports(datagram) else {
            self.stats.invalid += 1;
            return;
        };
        for report in reports {
            self.stats.rtcp_received += 1;
            if let Some(sender) = report.sender {
                self.last_peer_sr = Some(((sender.ntp >> 16) as u32, now));
            }
            for block in report.blocks.iter().filter(|b| b.ssrc == self.ssrc) {
                let rtt = (block.last_sr != 0).then(|| {
                    let now_mid = (self.ntp(now) >> 16) as u32;
                    let rtt = now_mid
                        .wrapping_sub(block.last_sr)
                        .wrapping_sub(block.delay_since_last_sr);
                    Duration::from_micros(u64::from(rtt) * 1_000_000 / 65536)
                });
                self.stats.remote = Some(RemoteReport {
                    fraction_lost: f32::from(block.fraction_lost) / 256.0,
                    cumulative_lost: block.cumulative_lost,
                    jitter: Duration::from_micros(
                        u64::from(block.jitter) * 1_000_000 / u64::from(self.config.clock_rate),
                    ),
                    rtt,
                });
            }
        }
    }
}

fn jitter_config(config: &SessionConfig) -> JitterConfig {
    JitterConfig {
        min_delay: config.media.jitter_min,
        max_delay: config.media.jitter_max,
        clock_rate: config.clock_rate,
        ptime: config.ptime,
    }
}

fn endpoint_config(config: &SessionConfig) -> EndpointConfig {
    EndpointConfig {
        min_speech: config.media.min_speech,
        silence: config.media.silence,
        max_utterance: config.media.max_utterance,
        pre_roll: config.media.pre_roll,
        post_roll: EndpointConfig::default().post_roll,
        pause: config.media.pause,
    }
}

fn vad_config(config: &SessionConfig) -> VadConfig {
    VadConfig {
        threshold: config.media.vad_threshold,
        ..VadConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> SocketAddr {
        "192.0.2.1:4000".parse().unwrap()
    }

    /// Runs `frames` ticks and returns the RTP headers sent.
    fn headers(session: &mut MediaSession, from: Instant, frames: u32) -> Vec<RtpHeader> {
        let ptime = session.config().ptime;
        let mut out = Vec::new();
        for n in 0..frames {
            session.handle_timeout(from + ptime * n);
            while let Some(t) = session.poll_transmit() {
                if t.kind == TransmitKind::Rtp {
                    out.push(RtpPacket::parse(&t.data).unwrap().header);
                }
            }
        }
        out
    }

    #[test]
    fn commands_refused() {
        let t0 = Instant::now();
        // (what, config, expected to construct)
        let mut bad_pt = SessionConfig::new(CodecKind::Pcmu, 0, None);
        bad_pt.payload_type = 128;
        assert!(matches!(
            MediaSession::new(bad_pt, 1, t0),
            Err(MediaError::Rtp(RtpError::PayloadType(128)))
        ));
        let mut session =
            MediaSession::new(SessionConfig::new(CodecKind::Pcmu, 0, None), 1, t0).unwrap();
        assert!(matches!(
            session.send_dtmf('1'),
            Err(MediaError::NoTelephoneEvent)
        ));
        assert!(matches!(
            session.play(&[0; 100], 44_000),
            Err(MediaError::Resample(_))
        ));
        // On hold (no remote address): nothing is sent, time still runs.
        assert!(headers(&mut session, t0, 10).is_empty());
    }

    #[test]
    fn reinvite_to_another_codec_keeps_the_stream_continuous() {
        let t0 = Instant::now();
        // (first codec and PT, second codec and PT, clock ticks per frame after)
        let cases = [
            ((CodecKind::Pcmu, 0), (CodecKind::Opus, 111), 960),
            ((CodecKind::Opus, 111), (CodecKind::Pcma, 8), 160),
            ((CodecKind::Pcmu, 0), (CodecKind::Pcmu, 0), 160),
        ];
        for ((first, pt1), (second, pt2), step) in cases {
            let config = SessionConfig::new(first, pt1, Some(remote()));
            let mut session = MediaSession::new(config, 77, t0).unwrap();
            let before = headers(&mut session, t0, 5);
            session
                .update(SessionConfig::new(second, pt2, Some(remote())))
                .unwrap();
            let after = headers(&mut session, t0 + Duration::from_millis(100), 5);
            assert!(before.iter().all(|h| h.payload_type == pt1));
            assert!(after.iter().all(|h| h.payload_type == pt2));
            let (last, next) = (before[4], after[0]);
            assert_eq!(next.sequence, last.sequence.wrapping_add(1));
            assert_eq!(next.ssrc, last.ssrc);
            assert_eq!(after[1].timestamp.wrapping_sub(after[0].timestamp), step);
            assert_eq!(next.marker, first != second, "{first:?} -> {second:?}");
        }
    }

    /// Opus losses are concealed by the decoder (FEC when the next packet
    /// is already buffered, PLC otherwise), never decode errors.
    #[test]
    fn opus_losses_are_concealed() {
        let t0 = Instant::now();
        let config = SessionConfig::new(CodecKind::Opus, 111, Some(remote()));
        let mut session = MediaSession::new(config, 5, t0).unwrap();
        let mut encoder = Encoder::new(CodecKind::Opus).unwrap();
        let tone: Vec<i16> = (0..960)
            .map(|n| ((f64::from(n) * 0.05).sin() * 8000.0) as i16)
            .collect();
        let ptime = Duration::from_millis(20);
        let (mut payload, mut datagram) = (Vec::new(), Vec::new());
        for n in 0..100u32 {
            let now = t0 + ptime * n;
            payload.clear();
            encoder.encode(&tone, &mut payload).unwrap();
            let header = RtpHeader {
                payload_type: 111,
                marker: false,
                sequence: n as u16,
                timestamp: n * 960,
                ssrc: 3,
            };
            write_packet(&header, &payload, &mut datagram).unwrap();
            // Every seventh packet is lost.
            if n % 7 != 3 {
                session.handle_rtp(now, remote(), &datagram);
            }
            session.handle_timeout(now);
            while session.poll_transmit().is_some() {}
        }
        let stats = session.stats();
        assert_eq!(stats.decode_errors, 0);
        assert!(stats.jitter.lost >= 13, "{:?}", stats.jitter);
        assert_eq!(stats.jitter.concealed, stats.jitter.lost);
        assert!((0.12..0.16).contains(&stats.inbound_loss), "{stats:?}");
    }
}
