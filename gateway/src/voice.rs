//! The clinic voice app: one task per call drives the media session, the
//! recogniser, the dialogue and the synthesiser, and writes every turn to
//! the audit log with its seven timestamps.
//!
//! ```text
//! RTP ─▶ MediaSession ─ Pause ──▶ speculative STT (pool) ─┐
//!                     ─ Utterance ─▶ STT (pool) or the    ─┴▶ Dialogue ─▶ TTS (pool, streamed)
//!                                    speculative result         │          │ chunks
//!                     ◀── play ◀─────────────────────────────────┴──────────┘
//! ```
//!
//! Speech work runs on the shared [`InferencePool`]; the task itself only
//! moves audio and decides. The bot's fixed sentences (greeting, slot
//! questions, apologies) are synthesised once at start and played from the
//! cache. Recognition starts speculatively when the caller pauses
//! (`pause_ms`), while the endpointer still waits for the end of the turn;
//! if no more speech comes, its result is the turn's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use echo_audit::{EventKind, Outcome, Pii, Speaker, Turn, TurnTimings};
use echo_dialogue::flow::SlotKind;
use echo_dialogue::schedule::{Booking, BookingRequest, Opening, ScheduleError};
use echo_dialogue::{
    Dialogue, Expecting, Flow, InMemoryScheduler, Scheduler, TermKind, TurnAction, TurnRecord,
};
use echo_media::{MediaEvent, MediaSession, MediaSettings, TransmitKind};
use echo_speech::espeak::EspeakSynthesizer;
use echo_speech::piper::{PiperOptions, PiperSynthesizer};
use echo_speech::whisper::{EncoderWindow, WhisperOptions, WhisperRecognizer};
use echo_speech::{sentences, Bias, SharedRecognizer, SharedSynthesizer, SpeechError, Transcript};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::audit_log::AppOutcome;
use crate::call::{session_config, CallSignal, CallSpec};
use crate::config::SpeechConfig;
use crate::driver::{sleep_until_opt, Command};
use crate::inference::InferencePool;
use crate::metrics::{DirectionLabel, LegLabel, Metrics};
use crate::scheduling::WebhookScheduler;

/// Said (and the call ended) when no recogniser is loaded.
pub const APOLOGY: &str = "Sorry, our automated assistant is not available right now. \
     Please call back later, or call the clinic's front desk. Goodbye.";

/// What every voice call shares: engines, the flow, the pool, the cache.
pub struct VoiceShared {
    /// The recogniser; `None` when its model is missing (calls get the
    /// apology).
    pub recognizer: Option<SharedRecognizer>,
    /// The voice.
    pub synthesizer: SharedSynthesizer,
    /// The dialogue flow with its vocabulary (lives as long as the process).
    pub flow: &'static Flow,
    /// The date relative dates count from; `None`: the local date per call.
    pub today: Option<chrono::NaiveDate>,
    /// The booking webhook; `None` books in an in-memory diary per call.
    pub scheduler_url: Option<String>,
    /// Where speech work runs.
    pub pool: InferencePool,
    /// Audio of the bot's fixed sentences.
    pub cache: PromptCache,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for VoiceShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceShared")
            .field(
                "recognizer",
                &self.recognizer.as_ref().map(|r| r.name().to_owned()),
            )
            .field("synthesizer", &self.synthesizer.name())
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// Why the voice apps could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// The flow file could not be read or is invalid.
    #[error("speech.flow {path}: {message}")]
    Flow {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl VoiceShared {
    /// Loads the flow and its vocabulary, the recogniser and the voice
    /// (falling back to espeak-ng), and starts the pool. A missing model is
    /// not an error: it is logged with how to get it, and the app degrades
    /// (no recogniser: clinic calls get a spoken apology).
    pub fn load(config: &SpeechConfig, metrics: Arc<Metrics>) -> Result<VoiceShared, VoiceError> {
        let flow = match &config.flow {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| Flow::from_toml(&t).map_err(|e| e.to_string()))
                .map_err(|message| VoiceError::Flow {
                    path: path.display().to_string(),
                    message,
                })?,
            None => Flow::clinic(),
        };
        let dir = &config.vocabulary_dir;
        let flow = match flow
            .clone()
            .with_vocabulary_from(|p| std::fs::read_to_string(dir.join(p)))
        {
            Ok(flow) => {
                info!(vocabulary = %dir.display(), terms = flow.lexicon().terms().len(), "dialogue: vocabulary loaded");
                flow
            }
            Err(e) => {
                warn!(vocabulary = %dir.display(), error = %e, "dialogue: no vocabulary (set speech.vocabulary_dir); providers and medications will not be recognised");
                flow
            }
        };
        let flow: &'static Flow = Box::leak(Box::new(flow));
        let models = &config.models_dir;
        let whisper_dir = models.join("whisper-tiny.en");
        let options = WhisperOptions {
            replicas: config.workers.clamp(1, 4),
            encoder_window: if config.whisper_fit {
                EncoderWindow::Fit
            } else {
                EncoderWindow::Full
            },
            ..WhisperOptions::default()
        };
        let window = options.encoder_window;
        let recognizer: Option<SharedRecognizer> = match WhisperRecognizer::load(
            &whisper_dir,
            options,
        ) {
            Ok(r) => {
                info!(model = %whisper_dir.display(), ?window, "speech recognition: Whisper tiny.en (CTranslate2, int8)");
                Some(Arc::new(r))
            }
            Err(e) => {
                warn!(error = %e, "speech recognition: NONE — clinic calls are answered with an apology; run scripts/fetch-models.sh (or set speech.models_dir / ECHO_MODELS_DIR)");
                None
            }
        };
        let piper_model = models.join("piper/en_US-joe-medium.onnx");
        let options = PiperOptions {
            ort_library: Some(models.join(echo_speech::onnx::ORT_LIBRARY)),
            ..PiperOptions::default()
        };
        let synthesizer: SharedSynthesizer = match PiperSynthesizer::load_with(
            &piper_model,
            &options,
        ) {
            Ok(p) => {
                info!(model = %piper_model.display(), "speech synthesis: Piper en_US joe (ONNX Runtime)");
                Arc::new(p)
            }
            Err(e) => {
                warn!(error = %e, "speech synthesis: falling back to espeak-ng; run scripts/fetch-models.sh for the Piper voice");
                match EspeakSynthesizer::default_voice() {
                    Ok(e) => Arc::new(e),
                    Err(e) => {
                        warn!(error = %e, "speech synthesis: espeak-ng failed too; the bot is silent");
                        Arc::new(Silence)
                    }
                }
            }
        };
        let pool = InferencePool::new(config.workers, metrics.clone());
        info!(workers = config.workers, "speech: inference pool");
        Ok(VoiceShared {
            recognizer,
            synthesizer,
            flow,
            today: config.today,
            scheduler_url: config.scheduler_url.clone(),
            pool,
            cache: PromptCache::default(),
            metrics,
        })
    }
}

/// A voice that says nothing (the last resort; the calls still work for
/// DTMF and are logged).
struct Silence;

impl echo_speech::Synthesizer for Silence {
    fn name(&self) -> &str {
        "silence"
    }

    fn sample_rate(&self) -> u32 {
        8000
    }

    fn synthesize(&self, _: &str, _: &mut dyn FnMut(&[i16]) -> bool) -> Result<(), SpeechError> {
        Ok(())
    }
}

/// Synthesised audio of fixed sentences, by their text.
#[derive(Default)]
pub struct PromptCache {
    audio: Mutex<HashMap<String, Arc<Vec<i16>>>>,
}

impl PromptCache {
    /// The audio of `sentence`, if cached.
    pub fn get(&self, sentence: &str) -> Option<Arc<Vec<i16>>> {
        self.audio
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sentence)
            .cloned()
    }

    fn insert(&self, sentence: &str, pcm: Vec<i16>) {
        self.audio
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sentence.to_owned(), Arc::new(pcm));
    }

    /// Sentences cached.
    pub fn len(&self) -> usize {
        self.audio.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl VoiceShared {
    /// The sentences every call may hear: greeting, questions, fixed
    /// replies.
    pub fn fixed_sentences(&self) -> Vec<String> {
        let f = self.flow;
        let mut texts: Vec<&str> = vec![
            &f.greeting,
            &f.not_understood,
            &f.offer_transfer,
            &f.transfer,
            &f.filler,
            &f.goodbye,
            &f.ask_change,
            APOLOGY,
            TRANSFER_FAILED,
        ];
        for slot in f.slots.values() {
            texts.push(&slot.prompt);
            texts.push(&slot.rephrase);
        }
        let mut out: Vec<String> = Vec::new();
        for text in texts {
            for s in sentences(text) {
                if !s.contains('{') && !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
        }
        out
    }

    /// Synthesises the fixed sentences into the cache (blocking; run it on
    /// a worker). Returns how many were cached.
    pub fn prewarm(&self) -> usize {
        let mut n = 0;
        for sentence in self.fixed_sentences() {
            let mut pcm = Vec::new();
            let result = self.synthesizer.synthesize(&sentence, &mut |chunk| {
                pcm.extend_from_slice(chunk);
                true
            });
            match result {
                Ok(()) => {
                    self.cache.insert(&sentence, pcm);
                    n += 1;
                }
                Err(e) => warn!(error = %e, "could not pre-synthesise a prompt"),
            }
        }
        n
    }
}

/// Said when the trunk refuses the transfer; `{number}` is the route's
/// staff number.
const TRANSFER_FAILED: &str = "I'm sorry, I couldn't put you through.";

/// The call's scheduling backend.
#[derive(Clone)]
enum CallScheduler {
    Memory(InMemoryScheduler),
    Webhook(WebhookScheduler),
}

impl Scheduler for CallScheduler {
    fn availability(
        &self,
        provider: Option<&str>,
        specialty: Option<&str>,
        date: chrono::NaiveDate,
    ) -> Result<Vec<Opening>, ScheduleError> {
        match self {
            CallScheduler::Memory(s) => s.availability(provider, specialty, date),
            CallScheduler::Webhook(s) => {
                tokio::task::block_in_place(|| s.availability(provider, specialty, date))
            }
        }
    }

    fn book(&mut self, request: &BookingRequest) -> Result<Booking, ScheduleError> {
        match self {
            CallScheduler::Memory(s) => s.book(request),
            CallScheduler::Webhook(s) => tokio::task::block_in_place(|| s.book(request)),
        }
    }

    fn cancel(
        &mut self,
        patient_name: &str,
        date_of_birth: chrono::NaiveDate,
        date: chrono::NaiveDate,
    ) -> Result<(), ScheduleError> {
        match self {
            CallScheduler::Memory(s) => s.cancel(patient_name, date_of_birth, date),
            CallScheduler::Webhook(s) => {
                tokio::task::block_in_place(|| s.cancel(patient_name, date_of_birth, date))
            }
        }
    }

    fn request_refill(
        &mut self,
        patient_name: &str,
        date_of_birth: chrono::NaiveDate,
        medication: &str,
    ) -> Result<String, ScheduleError> {
        match self {
            CallScheduler::Memory(s) => s.request_refill(patient_name, date_of_birth, medication),
            CallScheduler::Webhook(s) => tokio::task::block_in_place(|| {
                s.request_refill(patient_name, date_of_birth, medication)
            }),
        }
    }
}

/// The vocabulary the recogniser is biased towards while the bot waits for
/// `expecting`: only the slot being asked (a wide bias makes Whisper hear
/// terms that were not said).
pub fn bias_for(flow: &Flow, expecting: &Expecting) -> Bias {
    let kind = match expecting {
        Expecting::Choice { candidates, .. } => return Bias::terms(candidates.iter().cloned()),
        Expecting::Slot(slot) => flow.slots.get(slot).map(|s| s.kind),
        _ => None,
    };
    // Whisper tiny hears synthetic and telephone voices badly on short
    // answers ("this Thursday" → "This is the reason"); the words a date
    // or a time is made of, as a prompt, fix most of it. (A list of months
    // for a birth date made it answer with lists of months: no bias there.)
    let words: &[&str] = match kind {
        Some(SlotKind::Date) => &[
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "tomorrow",
            "next week",
        ],
        Some(SlotKind::Time) => &["9 a.m.", "11:30 a.m.", "2 p.m.", "noon", "in the afternoon"],
        _ => &[],
    };
    if !words.is_empty() {
        return Bias::terms(words.iter().copied());
    }
    let kinds: &[TermKind] = match kind {
        Some(SlotKind::Provider) => &[TermKind::Provider, TermKind::Specialty],
        Some(SlotKind::Specialty) => &[TermKind::Specialty],
        Some(SlotKind::Medication) => &[TermKind::Medication],
        _ => return Bias::none(),
    };
    Bias::terms(
        flow.lexicon()
            .terms()
            .iter()
            .filter(|t| kinds.contains(&t.kind))
            .map(|t| t.canonical.clone()),
    )
}

/// A recognition result coming back from the pool.
struct SttDone {
    job: u64,
    result: Result<Transcript, SpeechError>,
    /// For the caller's first words: the same audio decoded again, biased
    /// towards what callers ask for (refills, medications), used only if
    /// the unbiased words leave the dialogue without a task.
    alternative: Option<Transcript>,
}

/// The bias of the second decode of a caller's request.
fn request_bias(flow: &Flow) -> Bias {
    let mut terms = vec!["refill".to_owned(), "prescription".to_owned()];
    terms.extend(
        flow.lexicon()
            .terms()
            .iter()
            .filter(|t| t.kind == TermKind::Medication)
            .map(|t| t.canonical.clone()),
    );
    Bias { terms }
}

/// Whether a turn at the request left the dialogue without a task to do.
fn weak_request(record: &TurnRecord) -> bool {
    match record.intent.as_deref() {
        None => true,
        Some("refill") => !record.slots.contains_key("medication"),
        Some(_) => false,
    }
}

/// Synthesised audio coming back from the pool.
enum TtsMsg {
    Chunk { reply: u64, pcm: Vec<i16> },
    Done { reply: u64 },
}

/// The timestamps of the turn in progress.
#[derive(Debug, Default, Clone, Copy)]
struct Marks {
    speech_start: Option<Instant>,
    speech_end: Option<Instant>,
    endpoint: Option<Instant>,
    stt_final: Option<Instant>,
    dialogue: Option<Instant>,
    tts_first: Option<Instant>,
    first_packet: Option<Instant>,
    barge_in: Option<Instant>,
}

/// A speculative recognition started at a pause.
struct Speculation {
    job: u64,
    start: Instant,
    end: Instant,
    result: Option<(Result<Transcript, SpeechError>, Option<Transcript>)>,
}

/// What happens once the reply now playing is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Listen,
    Transfer,
    HangUp,
}

/// The reply being spoken.
struct Speaking {
    id: u64,
    cancel: Arc<AtomicBool>,
    synth_done: bool,
    after: After,
    /// The turn to write once the reply is over (none for the greeting).
    turn: Option<(TurnRecord, Option<f32>)>,
    marks: Marks,
}

/// Runs a clinic call until the SIP loop says it ended.
pub async fn clinic(spec: CallSpec) {
    let Some(voice) = spec.voice.clone() else {
        warn!(call = ?spec.call, "clinic call without speech engines: hanging up");
        let _ = spec.commands.send(Command::Hangup(spec.call)).await;
        return;
    };
    let mut call = VoiceCall::new(spec, voice);
    call.run().await;
}

struct VoiceCall {
    spec: CallSpec,
    voice: Arc<VoiceShared>,
    settings: MediaSettings,
    session: Option<MediaSession>,
    dialogue: Dialogue<'static, CallScheduler>,
    stt_tx: mpsc::UnboundedSender<SttDone>,
    stt_rx: mpsc::UnboundedReceiver<SttDone>,
    tts_tx: mpsc::UnboundedSender<TtsMsg>,
    tts_rx: mpsc::UnboundedReceiver<TtsMsg>,
    next_job: u64,
    /// The recognition the current turn waits for, with its marks.
    awaiting: Option<(u64, Marks)>,
    speculation: Option<Speculation>,
    speaking: Option<Speaking>,
    /// Marks of a caller utterance in progress.
    marks: Marks,
    turn_seq: i64,
    transfer_target: Option<String>,
    hung_up: bool,
    greeted: bool,
}

impl VoiceCall {
    fn new(spec: CallSpec, voice: Arc<VoiceShared>) -> Self {
        let settings = MediaSettings {
            loopback: false,
            media_timeout: spec.rtp_timeout,
            ..spec.media
        };
        let today = voice
            .today
            .unwrap_or_else(|| chrono::Local::now().date_naive());
        let scheduler = match &voice.scheduler_url {
            Some(url) => CallScheduler::Webhook(WebhookScheduler::new(
                url.clone(),
                std::time::Duration::from_secs(5),
            )),
            None => CallScheduler::Memory(InMemoryScheduler::from_lexicon(voice.flow.lexicon())),
        };
        let dialogue = Dialogue::new(voice.flow, today, scheduler);
        let (stt_tx, stt_rx) = mpsc::unbounded_channel();
        let (tts_tx, tts_rx) = mpsc::unbounded_channel();
        VoiceCall {
            spec,
            voice,
            settings,
            session: None,
            dialogue,
            stt_tx,
            stt_rx,
            tts_tx,
            tts_rx,
            next_job: 0,
            awaiting: None,
            speculation: None,
            speaking: None,
            marks: Marks::default(),
            turn_seq: 0,
            transfer_target: None,
            hung_up: false,
            greeted: false,
        }
    }

    fn owner(&self) -> u64 {
        self.spec.call.0
    }

    async fn run(&mut self) {
        let mut buf = vec![0u8; 2048];
        let direction = |d| DirectionLabel { direction: d };
        let packets_in = self
            .spec
            .metrics
            .rtp_packets
            .get_or_create(&direction("in"))
            .clone();
        let packets_out = self
            .spec
            .metrics
            .rtp_packets
            .get_or_create(&direction("out"))
            .clone();
        loop {
            let deadline = self
                .session
                .as_ref()
                .and_then(|s| s.poll_timeout())
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                signal = self.spec.signals.recv() => match signal {
                    Some(CallSignal::Media(media)) => self.on_media(media).await,
                    Some(CallSignal::ReferAnswered(code)) => self.on_refer_answered(code).await,
                    Some(CallSignal::Ended) | None => break,
                },
                received = self.spec.socket.socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = received else { continue };
                    packets_in.inc();
                    if let Some(s) = self.session.as_mut() {
                        s.handle_rtp(Instant::now(), from, &buf[..n]);
                    }
                },
                _ = sleep_until_opt(deadline) => {
                    if let Some(s) = self.session.as_mut() {
                        s.handle_timeout(Instant::now());
                    }
                }
                Some(done) = self.stt_rx.recv() => self.on_stt(done).await,
                Some(msg) = self.tts_rx.recv() => self.on_tts(msg).await,
            }
            let Some(s) = self.session.as_mut() else {
                continue;
            };
            while let Some(transmit) = s.poll_transmit() {
                let sent = self
                    .spec
                    .socket
                    .socket
                    .try_send_to(&transmit.data, transmit.destination)
                    .is_ok();
                if sent && transmit.kind == TransmitKind::Rtp {
                    packets_out.inc();
                    if let Some(sp) = self.speaking.as_mut() {
                        if sp.marks.tts_first.is_some() && sp.marks.first_packet.is_none() {
                            sp.marks.first_packet = Some(Instant::now());
                        }
                    }
                }
            }
            let mut events = Vec::new();
            while let Some(event) = s.poll_event() {
                events.push(event);
            }
            for event in events {
                self.on_media_event(event).await;
            }
        }
        self.finish_speaking();
        if let Some(sp) = self.speaking.take() {
            sp.cancel.store(true, Ordering::Relaxed);
        }
        if let Some(s) = &self.session {
            self.spec.metrics.media_ended(&s.stats());
        }
    }

    async fn on_media(&mut self, media: crate::sip::sdp::NegotiatedMedia) {
        let config = session_config(&media, &self.settings);
        let result = match self.session.as_mut() {
            Some(s) => s.update(config),
            None => MediaSession::new(config, rand::random(), Instant::now()).map(|s| {
                self.session = Some(s);
            }),
        };
        if let Err(e) = result {
            warn!(call = ?self.spec.call, error = %e, "media session refused the negotiated media");
            self.hang_up().await;
            return;
        }
        if !self.greeted {
            self.greeted = true;
            if self.voice.recognizer.is_none() {
                self.report_outcome(Outcome::Failed).await;
                self.speak(APOLOGY.to_owned(), After::HangUp, None, Marks::default());
            } else {
                let greeting = self.dialogue.greeting().to_owned();
                self.speak(greeting, After::Listen, None, Marks::default());
            }
        }
    }

    async fn on_media_event(&mut self, event: MediaEvent) {
        match event {
            MediaEvent::SpeechStarted { at } => {
                self.marks = Marks {
                    speech_start: Some(at),
                    ..Marks::default()
                };
            }
            MediaEvent::Pause {
                pcm_16k,
                start,
                end,
            } => self.speculate(pcm_16k, start, end),
            MediaEvent::Utterance {
                pcm_16k,
                start,
                end,
            } => self.on_utterance(pcm_16k, start, end).await,
            MediaEvent::BargeIn { at } => self.on_barge_in(at).await,
            MediaEvent::Dtmf { digit, .. } => self.on_dtmf(digit).await,
            MediaEvent::MediaTimeout if !self.hung_up => {
                self.hung_up = true;
                let _ = self
                    .spec
                    .commands
                    .send(Command::MediaTimeout(self.spec.call))
                    .await;
            }
            MediaEvent::PlayoutFinished => self.maybe_reply_over().await,
            _ => {}
        }
    }

    fn listening(&self) -> bool {
        self.voice.recognizer.is_some()
            && !self.hung_up
            && !self.dialogue.is_done()
            && self
                .speaking
                .as_ref()
                .is_none_or(|s| s.after == After::Listen)
    }

    fn submit_stt(&mut self, pcm: Vec<i16>, kind: &'static str) -> u64 {
        let job = self.next_job;
        self.next_job += 1;
        let Some(recognizer) = self.voice.recognizer.clone() else {
            return job;
        };
        let bias = bias_for(self.voice.flow, self.dialogue.expecting());
        let second = (*self.dialogue.expecting() == Expecting::Intent)
            .then(|| request_bias(self.voice.flow));
        let tx = self.stt_tx.clone();
        let submitted = self.voice.pool.submit(self.owner(), kind, move || {
            let result = recognizer.transcribe(&pcm, &bias);
            let alternative = match (&result, second) {
                (Ok(_), Some(bias)) => recognizer.transcribe(&pcm, &bias).ok(),
                _ => None,
            };
            let _ = tx.send(SttDone {
                job,
                result,
                alternative,
            });
        });
        if submitted.is_err() {
            let _ = self.stt_tx.send(SttDone {
                job,
                result: Err(SpeechError::engine("pool", "shut down")),
                alternative: None,
            });
        }
        job
    }

    fn speculate(&mut self, pcm: Vec<i16>, start: Instant, end: Instant) {
        if !self.listening() || self.awaiting.is_some() {
            return;
        }
        // One speculation at a time: a newer pause replaces the older.
        let job = self.submit_stt(pcm, "stt_speculative");
        self.speculation = Some(Speculation {
            job,
            start,
            end,
            result: None,
        });
    }

    async fn on_utterance(&mut self, pcm: Vec<i16>, start: Instant, end: Instant) {
        let now = Instant::now();
        let mut marks = self.marks;
        marks.speech_start = marks.speech_start.or(Some(start));
        marks.speech_end = Some(end);
        marks.endpoint = Some(now);
        self.marks = Marks::default();
        if !self.listening() || self.awaiting.is_some() {
            debug!(call = ?self.spec.call, "utterance while not listening: dropped");
            return;
        }
        // The speech so far is the whole turn when the pause became its end.
        match self.speculation.take() {
            Some(spec) if spec.start == start && spec.end == end => {
                self.spec.metrics.speculative_hits.inc();
                match spec.result {
                    Some((result, alternative)) => {
                        self.awaiting = Some((spec.job, marks));
                        self.on_stt(SttDone {
                            job: spec.job,
                            result,
                            alternative,
                        })
                        .await;
                    }
                    None => self.awaiting = Some((spec.job, marks)),
                }
            }
            _ => {
                let job = self.submit_stt(pcm, "stt");
                self.awaiting = Some((job, marks));
            }
        }
    }

    async fn on_stt(&mut self, done: SttDone) {
        if let Some(spec) = self.speculation.as_mut() {
            if spec.job == done.job {
                spec.result = Some((done.result, done.alternative));
                return;
            }
        }
        let Some((job, mut marks)) = self.awaiting else {
            return;
        };
        if job != done.job {
            return;
        }
        self.awaiting = None;
        marks.stt_final = Some(Instant::now());
        let (text, confidence) = match done.result {
            Ok(t) => (t.text, t.confidence),
            Err(e) => {
                warn!(call = ?self.spec.call, error = %e, "recognition failed");
                let _ = self
                    .spec
                    .commands
                    .send(Command::Event {
                        call: self.spec.call,
                        kind: EventKind::Error,
                        detail: serde_json::json!({"layer": "stt", "message": e.to_string()}),
                    })
                    .await;
                (String::new(), None)
            }
        };
        if self.hung_up || self.dialogue.is_done() {
            return;
        }
        let before = done.alternative.is_some().then(|| self.dialogue.clone());
        let mut record = self.dialogue.handle(&text);
        let mut confidence = confidence;
        if let (Some(mut retry), Some(alt)) = (before, done.alternative) {
            if weak_request(&record) && alt.text != text {
                let second = retry.handle(&alt.text);
                if !weak_request(&second) {
                    debug!(call = ?self.spec.call, "the biased second decode found the request");
                    self.dialogue = retry;
                    record = second;
                    confidence = alt.confidence;
                }
            }
        }
        marks.dialogue = Some(Instant::now());
        self.spec.metrics.turns.inc();
        let after = match record.action {
            TurnAction::Listen => After::Listen,
            TurnAction::Transfer => After::Transfer,
            TurnAction::HangUp => After::HangUp,
        };
        if self.dialogue.is_done() {
            let outcome = outcome_of(&self.dialogue.outcome().outcome);
            self.report_outcome(outcome).await;
        }
        let reply = record.reply.clone();
        self.speak(reply, after, Some((record, confidence)), marks);
    }

    /// Starts speaking `text`: cached sentences play at once, the rest is
    /// synthesised on the pool and streamed in.
    fn speak(
        &mut self,
        text: String,
        after: After,
        turn: Option<(TurnRecord, Option<f32>)>,
        marks: Marks,
    ) {
        if self.speaking.is_some() {
            // A new reply replaces whatever is still playing.
            if let Some(s) = self.session.as_mut() {
                s.stop_playout();
            }
        }
        self.finish_speaking();
        let id = self.next_job;
        self.next_job += 1;
        let cancel = Arc::new(AtomicBool::new(false));
        let parts = speech_parts(&text);
        let mut speaking = Speaking {
            id,
            cancel: cancel.clone(),
            synth_done: false,
            after,
            turn,
            marks,
        };
        // Leading cached sentences go straight to the playout queue.
        let mut first_uncached = parts.len();
        for (i, part) in parts.iter().enumerate() {
            match self.voice.cache.get(part) {
                Some(pcm) => self.play(&mut speaking, &pcm),
                None => {
                    first_uncached = i;
                    break;
                }
            }
        }
        if first_uncached == parts.len() {
            speaking.synth_done = true;
            self.speaking = Some(speaking);
            return;
        }
        let rest: Vec<String> = parts[first_uncached..].to_vec();
        let synth = self.voice.synthesizer.clone();
        let voice = self.voice.clone();
        let tx = self.tts_tx.clone();
        let submitted = self.voice.pool.submit(self.owner(), "tts", move || {
            for part in rest {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(pcm) = voice.cache.get(&part) {
                    let _ = tx.send(TtsMsg::Chunk {
                        reply: id,
                        pcm: pcm.to_vec(),
                    });
                    continue;
                }
                let result = synth.synthesize(&part, &mut |chunk| {
                    if cancel.load(Ordering::Relaxed) {
                        return false;
                    }
                    tx.send(TtsMsg::Chunk {
                        reply: id,
                        pcm: chunk.to_vec(),
                    })
                    .is_ok()
                });
                if let Err(e) = result {
                    if !matches!(e, SpeechError::Stopped) {
                        warn!(error = %e, "synthesis failed");
                    }
                    break;
                }
            }
            let _ = tx.send(TtsMsg::Done { reply: id });
        });
        if submitted.is_err() {
            speaking.synth_done = true;
        }
        self.speaking = Some(speaking);
    }

    fn play(&mut self, speaking: &mut Speaking, pcm: &[i16]) {
        let rate = self.voice.synthesizer.sample_rate();
        if let Some(s) = self.session.as_mut() {
            if let Err(e) = s.play(pcm, rate) {
                warn!(error = %e, "cannot play synthesised audio");
                return;
            }
            speaking.marks.tts_first.get_or_insert_with(Instant::now);
        }
    }

    async fn on_tts(&mut self, msg: TtsMsg) {
        let Some(mut speaking) = self.speaking.take() else {
            return;
        };
        match msg {
            TtsMsg::Chunk { reply, pcm } if reply == speaking.id => {
                self.play(&mut speaking, &pcm);
                self.speaking = Some(speaking);
            }
            TtsMsg::Done { reply } if reply == speaking.id => {
                speaking.synth_done = true;
                self.speaking = Some(speaking);
                self.maybe_reply_over().await;
            }
            _ => self.speaking = Some(speaking),
        }
    }

    /// The reply is over once it is synthesised and played out.
    async fn maybe_reply_over(&mut self) {
        let playing = self.session.as_ref().is_some_and(|s| s.is_playing());
        let over = self
            .speaking
            .as_ref()
            .is_some_and(|s| s.synth_done && !playing);
        if !over {
            return;
        }
        let after = self.speaking.as_ref().map_or(After::Listen, |s| s.after);
        self.finish_speaking();
        match after {
            After::Listen => {}
            After::HangUp => self.hang_up().await,
            After::Transfer => self.transfer().await,
        }
    }

    /// Writes the spoken turn to the audit log and forgets it.
    fn finish_speaking(&mut self) {
        let Some(mut speaking) = self.speaking.take() else {
            return;
        };
        speaking.cancel.store(true, Ordering::Relaxed);
        let Some((record, confidence)) = speaking.turn.take() else {
            return;
        };
        self.record_turn(&record, confidence, &speaking.marks);
    }

    fn record_turn(&mut self, record: &TurnRecord, confidence: Option<f32>, m: &Marks) {
        let metrics = &self.spec.metrics;
        let leg = |leg: &'static str, from: Option<Instant>, to: Option<Instant>| {
            if let (Some(a), Some(b)) = (from, to) {
                metrics
                    .turn_latency
                    .get_or_create(&LegLabel { leg })
                    .observe(b.saturating_duration_since(a).as_secs_f64());
            }
        };
        leg("endpointing", m.speech_end, m.endpoint);
        leg("recognition", m.endpoint, m.stt_final);
        leg("dialogue", m.stt_final, m.dialogue);
        leg("synthesis", m.dialogue, m.tts_first);
        leg("send", m.tts_first, m.first_packet);
        leg("total", m.speech_end, m.first_packet);
        let Some(log) = &self.spec.turns else {
            return;
        };
        let at = |t: Option<Instant>| t.map(|t| log.offset_us(t));
        let corrections = serde_json::to_value(&record.corrections).unwrap_or_default();
        let slots = serde_json::to_value(&record.slots).unwrap_or_default();
        let turn = Turn {
            call_id: log.call_id.clone(),
            seq: self.turn_seq,
            speaker: Speaker::Caller,
            raw_text: Pii(record.raw.clone()),
            raw_confidence: confidence.map(f64::from),
            corrected_text: Pii(record.corrected.clone()),
            corrections: Pii(corrections),
            slots: Pii(slots),
            reply_text: Some(Pii(record.reply.clone())),
            timings: TurnTimings {
                speech_start_us: at(m.speech_start),
                speech_end_us: at(m.speech_end),
                endpoint_us: at(m.endpoint),
                stt_final_us: at(m.stt_final),
                dialogue_us: at(m.dialogue),
                tts_first_audio_us: at(m.tts_first),
                first_reply_packet_us: at(m.first_packet),
            },
            barge_in_us: at(m.barge_in),
        };
        self.turn_seq += 1;
        log.record(turn);
    }

    async fn on_barge_in(&mut self, at: Instant) {
        self.spec.metrics.barge_ins.inc();
        if let Some(sp) = self.speaking.as_mut() {
            sp.marks.barge_in = Some(at);
            if sp.after != After::Listen {
                // A goodbye or a transfer announcement is not interruptible
                // in effect: the action still follows.
                sp.synth_done = true;
            }
        }
        let after = self.speaking.as_ref().map(|s| s.after);
        self.finish_speaking();
        let _ = self
            .spec
            .commands
            .send(Command::Event {
                call: self.spec.call,
                kind: EventKind::BargeIn,
                detail: serde_json::json!({}),
            })
            .await;
        match after {
            Some(After::HangUp) => self.hang_up().await,
            Some(After::Transfer) => self.transfer().await,
            _ => {}
        }
    }

    async fn on_dtmf(&mut self, digit: char) {
        let _ = self
            .spec
            .commands
            .send(Command::Event {
                call: self.spec.call,
                kind: EventKind::Dtmf,
                detail: serde_json::json!({ "digit": digit.to_string() }),
            })
            .await;
        if digit != '0' || self.hung_up || self.transfer_target.is_some() {
            return;
        }
        // 0 reaches staff at any time.
        if let Some(s) = self.session.as_mut() {
            s.stop_playout();
        }
        self.awaiting = None;
        self.speculation = None;
        let text = self.voice.flow.transfer.clone();
        self.speak(text, After::Transfer, None, Marks::default());
    }

    async fn transfer(&mut self) {
        match self.spec.staff.uri.clone() {
            Some(target) => {
                self.transfer_target = Some(target.clone());
                let _ = self
                    .spec
                    .commands
                    .send(Command::Refer {
                        call: self.spec.call,
                        target,
                    })
                    .await;
            }
            None => self.transfer_failed().await,
        }
    }

    async fn on_refer_answered(&mut self, code: u16) {
        let target = self.transfer_target.clone().unwrap_or_default();
        let _ = self
            .spec
            .commands
            .send(Command::Event {
                call: self.spec.call,
                kind: EventKind::Transfer,
                detail: serde_json::json!({ "target": target, "status": code }),
            })
            .await;
        if (200..300).contains(&code) {
            info!(call = ?self.spec.call, code, "transfer accepted");
            self.report_outcome(Outcome::Transferred).await;
            self.hang_up().await;
        } else {
            info!(call = ?self.spec.call, code, "transfer refused");
            self.transfer_target = None;
            self.transfer_failed().await;
        }
    }

    /// No transfer: say how to reach staff, then hang up.
    async fn transfer_failed(&mut self) {
        self.report_outcome(Outcome::Abandoned).await;
        let text = match &self.spec.staff.number {
            Some(number) => format!(
                "{TRANSFER_FAILED} You can reach the front desk at {}. Goodbye.",
                spoken_number(number)
            ),
            None => format!("{TRANSFER_FAILED} Please call the clinic's front desk. Goodbye."),
        };
        self.speak(text, After::HangUp, None, Marks::default());
    }

    async fn report_outcome(&mut self, outcome: Outcome) {
        let o = self.dialogue.outcome();
        let mut slots = serde_json::to_value(&o.slots).unwrap_or_default();
        if let (Some(intent), Some(map)) = (&o.intent, slots.as_object_mut()) {
            map.insert("intent".into(), serde_json::Value::String(intent.clone()));
        }
        let _ = self
            .spec
            .commands
            .send(Command::Outcome {
                call: self.spec.call,
                outcome: AppOutcome {
                    outcome,
                    slots,
                    transfer_target: self.transfer_target.clone(),
                },
            })
            .await;
    }

    async fn hang_up(&mut self) {
        if self.hung_up {
            return;
        }
        self.hung_up = true;
        let _ = self
            .spec
            .commands
            .send(Command::Hangup(self.spec.call))
            .await;
    }
}

/// Longest first part (in characters) before it is split at a comma: the
/// first audio waits for the whole first part (Piper: ~0.13 s of compute
/// per second of speech, so a 100-character read-back costs ~0.8 s).
const FIRST_PART_CHARS: usize = 48;

/// The reply cut into the pieces synthesised one after another: sentences,
/// and a long first sentence cut at its first comma after a few words, so
/// the first audio leaves sooner.
fn speech_parts(text: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for (i, sentence) in sentences(text).into_iter().enumerate() {
        if i == 0 && sentence.chars().count() > FIRST_PART_CHARS {
            let cut = sentence
                .match_indices(", ")
                .map(|(at, _)| at)
                .find(|at| (12..=FIRST_PART_CHARS).contains(at));
            if let Some(at) = cut {
                parts.push(sentence[..=at].to_owned());
                parts.push(sentence[at + 2..].to_owned());
                continue;
            }
        }
        parts.push(sentence.to_owned());
    }
    parts
}

/// The audit outcome for the dialogue's outcome name.
fn outcome_of(name: &str) -> Outcome {
    match name {
        "booked" => Outcome::Booked,
        "refill_requested" => Outcome::RefillRequested,
        "cancelled" => Outcome::Cancelled,
        "transferred" => Outcome::Transferred,
        _ => Outcome::Abandoned,
    }
}

/// A phone number read digit by digit ("5550100" → "5 5 5, 0 1 0 0").
fn spoken_number(number: &str) -> String {
    number
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .map(|g| {
            g.chars()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_first_sentence_is_cut_at_an_early_comma() {
        assert_eq!(
            speech_parts("Let me read that back: Maria Lopez, born March 4th, 1956, with Dr. Anika Patel. Shall I book it?"),
            vec![
                "Let me read that back: Maria Lopez,",
                "born March 4th, 1956, with Dr. Anika Patel.",
                "Shall I book it?"
            ]
        );
        assert_eq!(
            speech_parts("Thanks. What is your date of birth?"),
            vec!["Thanks.", "What is your date of birth?"]
        );
    }

    #[test]
    fn numbers_are_read_digit_by_digit_in_groups() {
        assert_eq!(spoken_number("555-0100"), "5 5 5, 0 1 0 0");
        assert_eq!(spoken_number("+1 (555) 0100"), "1, 5 5 5, 0 1 0 0");
    }

    #[test]
    fn bias_is_the_asked_slot_only() {
        let flow = Flow::clinic()
            .with_vocabulary_from(|p| {
                std::fs::read_to_string(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../../shared/data/clinic")
                        .join(p),
                )
            })
            .unwrap();
        let meds = bias_for(&flow, &Expecting::Slot("medication".into()));
        assert!(meds.terms.iter().any(|t| t == "metformin"), "{meds:?}");
        assert!(!meds.terms.iter().any(|t| t.starts_with("Dr.")));
        let providers = bias_for(&flow, &Expecting::Slot("provider".into()));
        assert!(providers.terms.iter().any(|t| t.starts_with("Dr.")));
        assert!(bias_for(&flow, &Expecting::Slot("patient_name".into())).is_empty());
        assert!(bias_for(&flow, &Expecting::Intent).is_empty());
        let choice = Expecting::Choice {
            slot: "provider".into(),
            candidates: vec!["Dr. A".into(), "Dr. B".into()],
        };
        assert_eq!(bias_for(&flow, &choice).terms, vec!["Dr. A", "Dr. B"]);
    }

    #[test]
    fn outcomes_map_to_the_audit_log() {
        assert_eq!(outcome_of("booked"), Outcome::Booked);
        assert_eq!(outcome_of("refill_requested"), Outcome::RefillRequested);
        assert_eq!(outcome_of("cancelled"), Outcome::Cancelled);
        assert_eq!(outcome_of("transferred"), Outcome::Transferred);
        assert_eq!(outcome_of("abandoned"), Outcome::Abandoned);
    }
}
