//! The always-on tier: a level check against the louder of a fixed floor and
//! a tracked noise floor, and earshot's small spectral network (pure Rust,
//! a few µs per 16 ms).

use super::FRAME_SAMPLES;

/// earshot's fixed input: 16 ms at 16 kHz.
const EARSHOT_SAMPLES: usize = 256;

/// How fast (dB per frame) the noise floor may rise while the level stays
/// above it: 2.5 dB/s, slow enough that a sentence barely moves it.
const FLOOR_RISE_DB: f32 = 0.05;
/// How fast it follows the level down (fraction of the gap per frame).
const FLOOR_FALL: f32 = 0.5;

/// What the gate says about one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateFrame {
    /// RMS level of the frame, dBFS.
    pub level_dbfs: f32,
    /// Speech score, 0.0–1.0 (0 when the frame was under the floor).
    pub score: f32,
    /// The network's own score, whatever the level.
    pub network_score: f32,
    /// The tracked noise floor before this frame, dBFS.
    pub noise_floor_dbfs: f32,
}

/// The per-frame gate; it keeps earshot's streaming state and the samples
/// left over between our 20 ms frames and its 16 ms ones.
pub struct Gate {
    detector: Box<earshot::Detector>,
    pending: [i16; EARSHOT_SAMPLES],
    pending_len: usize,
    last_score: f32,
    noise_floor: Option<f32>,
    listening: bool,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("pending_len", &self.pending_len)
            .field("last_score", &self.last_score)
            .finish_non_exhaustive()
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

impl Gate {
    /// A gate with fresh state.
    pub fn new() -> Self {
        Gate {
            detector: earshot::Detector::default_boxed(),
            pending: [0; EARSHOT_SAMPLES],
            pending_len: 0,
            last_score: 0.0,
            noise_floor: None,
            listening: false,
        }
    }

    /// Scores one frame (any length; 20 ms expected). Frames under
    /// `floor_dbfs`, or less than `noise_margin_db` above the tracked noise
    /// floor, score 0 and, unless `listen`, are not given to the network.
    /// `listen` keeps the network running on quiet frames too (the caller
    /// holds the gate open inside speech).
    pub fn process(
        &mut self,
        frame: &[i16],
        floor_dbfs: f32,
        noise_margin_db: f32,
        listen: bool,
    ) -> GateFrame {
        let level_dbfs = super::dbfs(frame);
        let noise_floor_dbfs = self.noise_floor.unwrap_or(floor_dbfs).max(floor_dbfs);
        let next = if level_dbfs < noise_floor_dbfs {
            noise_floor_dbfs + FLOOR_FALL * (level_dbfs - noise_floor_dbfs)
        } else {
            noise_floor_dbfs + FLOOR_RISE_DB.min(level_dbfs - noise_floor_dbfs)
        };
        self.noise_floor = Some(next);
        let loud = level_dbfs > floor_dbfs
            && level_dbfs > noise_floor_dbfs + noise_margin_db
            && frame.len() >= FRAME_SAMPLES / 2;
        if loud || listen {
            self.listen(frame);
        } else if self.listening {
            // Quiet: skip the network (most of a call is quiet, and the
            // network is most of the gate's cost); it restarts fresh.
            self.listening = false;
            self.pending_len = 0;
            self.last_score = 0.0;
        }
        let score = if loud { self.last_score } else { 0.0 };
        GateFrame {
            level_dbfs,
            score,
            network_score: self.last_score,
            noise_floor_dbfs,
        }
    }

    fn listen(&mut self, frame: &[i16]) {
        if !self.listening {
            self.detector.reset();
            self.listening = true;
        }
        let mut best: Option<f32> = None;
        let mut rest = frame;
        while !rest.is_empty() {
            let take = (EARSHOT_SAMPLES - self.pending_len).min(rest.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&rest[..take]);
            self.pending_len += take;
            rest = &rest[take..];
            if self.pending_len == EARSHOT_SAMPLES {
                let s = self.detector.predict_i16(&self.pending).clamp(0.0, 1.0);
                best = Some(best.map_or(s, |b: f32| b.max(s)));
                self.pending_len = 0;
            }
        }
        if let Some(s) = best {
            self.last_score = s;
        }
    }

    /// Forgets the audio seen so far.
    pub fn reset(&mut self) {
        self.detector.reset();
        self.pending_len = 0;
        self.last_score = 0.0;
        self.noise_floor = None;
        self.listening = false;
    }
}
