//! The writer task: call tasks hand it records over a bounded channel and
//! never wait; it batches them into the store, or into the spool while the
//! database is unreachable, and replays the spool in order once it is back.

use crate::record::AuditRecord;
use crate::spool::{Spool, SpoolError};
use crate::store::AuditStore;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};

/// How the writer is sized and paced.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// The spool file.
    pub spool_path: PathBuf,
    /// Records the channel holds. At 64 Ki records a gateway with 1,000
    /// calls each finishing a turn per second can ride out a minute-long
    /// stall of the writer itself; a database outage does not fill it, since
    /// the writer then spools at disk speed.
    pub capacity: usize,
    /// Most records per transaction.
    pub batch_max: usize,
    /// How often to try the database again while spooling.
    pub retry_every: Duration,
    /// A batch that takes longer than this is treated as a failed write.
    pub append_timeout: Duration,
}

impl WriterConfig {
    /// Defaults with the given spool path.
    pub fn new(spool_path: impl Into<PathBuf>) -> Self {
        WriterConfig {
            spool_path: spool_path.into(),
            capacity: 65_536,
            batch_max: 1_000,
            retry_every: Duration::from_secs(1),
            append_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters of a writer (monotonic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records accepted by [`AuditHandle::record`].
    pub accepted: u64,
    /// Records refused because the channel was full or the writer gone.
    pub dropped: u64,
    /// Records written straight to the database.
    pub written: u64,
    /// Records written to the spool.
    pub spooled: u64,
    /// Spooled records replayed into the database (a replay interrupted
    /// and repeated counts twice).
    pub replayed: u64,
    /// Records neither stored nor spooled (the spool itself failed).
    pub lost: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    spooled: AtomicU64,
    replayed: AtomicU64,
    lost: AtomicU64,
}

enum Msg {
    Record(Box<AuditRecord>),
    Flush(oneshot::Sender<()>),
}

/// The writer is gone (its task ended or was aborted).
#[derive(Debug, thiserror::Error)]
#[error("the audit writer has stopped")]
pub struct WriterClosed;

/// What call tasks hold: cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct AuditHandle {
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
}

impl AuditHandle {
    /// Queues a record without waiting. Returns false (and counts it in
    /// [`WriterStats::dropped`]) if the channel is full or the writer gone.
    pub fn record(&self, record: AuditRecord) -> bool {
        match self.tx.try_send(Msg::Record(Box::new(record))) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Relaxed);
                true
            }
            Err(_) => {
                self.counters.dropped.fetch_add(1, Relaxed);
                tracing::error!("audit: writer queue full or closed, record dropped");
                false
            }
        }
    }

    /// Waits until every record queued before this call is committed to the
    /// database or fsync'd to the spool.
    pub async fn flush(&self) -> Result<(), WriterClosed> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Flush(tx))
            .await
            .map_err(|_| WriterClosed)?;
        rx.await.map_err(|_| WriterClosed)
    }

    /// The counters so far.
    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            accepted: c.accepted.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            written: c.written.load(Relaxed),
            spooled: c.spooled.load(Relaxed),
            replayed: c.replayed.load(Relaxed),
            lost: c.lost.load(Relaxed),
        }
    }
}

/// The writer task.
#[derive(Debug)]
pub struct AuditWriter {
    store: Arc<dyn AuditStore>,
    spool: Arc<Mutex<Spool>>,
    config: WriterConfig,
    counters: Arc<Counters>,
    /// The spool holds records not yet in the database: new ones go behind
    /// them, so each chain stays in order.
    spooling: bool,
}

impl AuditWriter {
    /// Opens the spool and starts the writer task (which first replays what
    /// a previous run left in the spool). The task ends once every handle is
    /// dropped and the queue is drained; aborting it loses nothing that
    /// [`AuditHandle::flush`] had confirmed.
    pub fn spawn(
        store: Arc<dyn AuditStore>,
        config: WriterConfig,
    ) -> Result<(AuditHandle, JoinHandle<()>), SpoolError> {
        let spool = Spool::open(&config.spool_path)?;
        let spooling = !spool.is_empty()?;
        let (tx, rx) = mpsc::channel(config.capacity.max(1));
        let counters = Arc::new(Counters::default());
        let writer = AuditWriter {
            store,
            spool: Arc::new(Mutex::new(spool)),
            config,
            counters: counters.clone(),
            spooling,
        };
        let task = tokio::spawn(writer.run(rx));
        Ok((AuditHandle { tx, counters }, task))
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut next_retry = Instant::now();
        if self.spooling {
            self.replay().await;
            next_retry = Instant::now() + self.config.retry_every;
        }
        loop {
            let msg = if self.spooling {
                tokio::select! {
                    m = rx.recv() => m,
                    _ = sleep_until(next_retry) => {
                        self.replay().await;
                        next_retry = Instant::now() + self.config.retry_every;
                        continue;
                    }
                }
            } else {
                rx.recv().await
            };
            let Some(first) = msg else { break };
            let mut batch = Vec::new();
            let mut waiters = Vec::new();
            let mut next = Some(first);
            while let Some(m) = next.take() {
                match m {
                    Msg::Record(r) => batch.push(*r),
                    Msg::Flush(w) => waiters.push(w),
                }
                if batch.len() < self.config.batch_max {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                if !self.spooling && self.store_batch(&batch).await {
                    self.counters.written.fetch_add(batch.len() as u64, Relaxed);
                } else {
                    if !self.spooling {
                        next_retry = Instant::now() + self.config.retry_every;
                    }
                    self.spooling = true;
                    self.spool_batch(batch).await;
                }
            }
            for w in waiters {
                let _ = w.send(());
            }
            if self.spooling && Instant::now() >= next_retry {
                self.replay().await;
                next_retry = Instant::now() + self.config.retry_every;
            }
        }
        if self.spooling {
            self.replay().await;
        }
    }

    async fn store_batch(&self, batch: &[AuditRecord]) -> bool {
        match timeout(self.config.append_timeout, self.store.append(batch)).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, records = batch.len(), "audit: database write failed, spooling");
                false
            }
            Err(_) => {
                tracing::warn!(
                    records = batch.len(),
                    "audit: database write timed out, spooling"
                );
                false
            }
        }
    }

    async fn spool_batch(&self, batch: Vec<AuditRecord>) {
        let n = batch.len() as u64;
        let spool = self.spool.clone();
        let done = tokio::task::spawn_blocking(move || {
            spool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .append(&batch)
        })
        .await;
        match done {
            Ok(Ok(())) => {
                self.counters.spooled.fetch_add(n, Relaxed);
            }
            Ok(Err(e)) => {
                self.counters.lost.fetch_add(n, Relaxed);
                tracing::error!(error = %e, records = n, "audit: spool write failed, records lost");
            }
            Err(e) => {
                self.counters.lost.fetch_add(n, Relaxed);
                tracing::error!(error = %e, records = n, "audit: spool task failed, records lost");
            }
        }
    }

    /// Replays the whole spool in order; clears it only when every record is
    /// in the database. Interrupted, it leaves the spool as it was: the next
    /// replay re-sends records already stored, and the store skips them.
    async fn replay(&mut self) {
        let spool = self.spool.clone();
        let records = match tokio::task::spawn_blocking(move || {
            spool.lock().unwrap_or_else(|p| p.into_inner()).read_all()
        })
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "audit: cannot read the spool");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "audit: spool task failed");
                return;
            }
        };
        for chunk in records.chunks(self.config.batch_max.max(1)) {
            if !self.store_batch(chunk).await {
                return;
            }
            self.counters
                .replayed
                .fetch_add(chunk.len() as u64, Relaxed);
        }
        let spool = self.spool.clone();
        match tokio::task::spawn_blocking(move || {
            spool.lock().unwrap_or_else(|p| p.into_inner()).clear()
        })
        .await
        {
            Ok(Ok(())) => {
                tracing::info!(records = records.len(), "audit: spool replayed");
                self.spooling = false;
            }
            Ok(Err(e)) => tracing::error!(error = %e, "audit: cannot clear the spool"),
            Err(e) => tracing::error!(error = %e, "audit: spool task failed"),
        }
    }
}
