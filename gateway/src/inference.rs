//! The inference pool: a fixed number of OS threads that run the CPU-heavy
//! speech work (recognition, synthesis) of every call, off the async
//! runtime's threads so SIP and RTP never wait behind a decode.
//!
//! Jobs queue per call and the workers serve the calls in turn (round
//! robin), so a call with several jobs queued cannot starve the others: 50
//! calls on 2 workers each wait their turn. The queue depth and each job's
//! wait and run times are metrics.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use tokio::sync::oneshot;

use crate::metrics::{KindLabel, Metrics};

type Job = Box<dyn FnOnce() + Send>;

struct Queued {
    kind: &'static str,
    queued_at: Instant,
    job: Job,
}

#[derive(Default)]
struct Queues {
    /// Calls with jobs waiting, in the order they will be served.
    ring: VecDeque<u64>,
    jobs: HashMap<u64, VecDeque<Queued>>,
    depth: usize,
    closed: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    metrics: Arc<Metrics>,
}

/// The pool; clones share it.
#[derive(Clone)]
pub struct InferencePool {
    shared: Arc<Shared>,
    workers: usize,
}

impl std::fmt::Debug for InferencePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferencePool")
            .field("workers", &self.workers)
            .field("depth", &self.depth())
            .finish()
    }
}

/// The pool was shut down before the job ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the inference pool is shut down")]
pub struct PoolClosed;

impl InferencePool {
    /// Starts `workers` threads.
    pub fn new(workers: usize, metrics: Arc<Metrics>) -> InferencePool {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            metrics,
        });
        let workers = workers.max(1);
        for i in 0..workers {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("echo-inference-{i}"))
                .spawn(move || work(&shared))
                .expect("spawning an inference thread");
        }
        InferencePool { shared, workers }
    }

    /// Jobs waiting now.
    pub fn depth(&self) -> usize {
        self.lock().depth
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.shared.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job` for the call `owner` and waits for its result.
    pub async fn run<T, F>(&self, owner: u64, kind: &'static str, job: F) -> Result<T, PoolClosed>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(owner, kind, move || {
            let _ = tx.send(job());
        })?;
        rx.await.map_err(|_| PoolClosed)
    }

    /// Queues `job` for the call `owner` without waiting.
    pub fn submit(
        &self,
        owner: u64,
        kind: &'static str,
        job: impl FnOnce() + Send + 'static,
    ) -> Result<(), PoolClosed> {
        let mut q = self.lock();
        if q.closed {
            return Err(PoolClosed);
        }
        let queue = q.jobs.entry(owner).or_default();
        let was_idle = queue.is_empty();
        queue.push_back(Queued {
            kind,
            queued_at: Instant::now(),
            job: Box::new(job),
        });
        if was_idle {
            q.ring.push_back(owner);
        }
        q.depth += 1;
        self.shared
            .metrics
            .inference_queue_depth
            .set(q.depth as i64);
        drop(q);
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Stops the workers once the queued jobs are done.
    pub fn shutdown(&self) {
        self.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

/// A worker: takes the next call's oldest job, runs it, puts the call at
/// the back of the ring if it has more.
fn work(shared: &Shared) {
    loop {
        let queued = {
            let mut q = shared.queues.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(owner) = q.ring.pop_front() {
                    let jobs = q.jobs.get_mut(&owner).expect("ring entries have jobs");
                    let job = jobs.pop_front().expect("ring entries have jobs");
                    if jobs.is_empty() {
                        q.jobs.remove(&owner);
                    } else {
                        q.ring.push_back(owner);
                    }
                    q.depth -= 1;
                    shared.metrics.inference_queue_depth.set(q.depth as i64);
                    break job;
                }
                if q.closed {
                    return;
                }
                q = shared.ready.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let label = KindLabel { kind: queued.kind };
        let started = Instant::now();
        shared
            .metrics
            .inference_wait
            .get_or_create(&label)
            .observe((started - queued.queued_at).as_secs_f64());
        // A panicking engine must not take the worker down with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(queued.job));
        shared
            .metrics
            .inference_run
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn calls_are_served_in_turn() {
        let pool = InferencePool::new(1, Arc::new(Metrics::default()));
        let (order_tx, order_rx) = mpsc::channel();
        // Hold the only worker until everything is queued.
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        pool.submit(0, "test", move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv();
        })
        .unwrap();
        started_rx.recv().unwrap();
        // Call 1 queues three jobs before calls 2 and 3 queue one each.
        for (owner, n) in [(1, 0), (1, 1), (1, 2), (2, 0), (3, 0)] {
            let tx = order_tx.clone();
            pool.submit(owner, "test", move || tx.send((owner, n)).unwrap())
                .unwrap();
        }
        assert_eq!(pool.depth(), 5);
        release_tx.send(()).unwrap();
        let order: Vec<(u64, i32)> = (0..5).map(|_| order_rx.recv().unwrap()).collect();
        assert_eq!(order, vec![(1, 0), (2, 0), (3, 0), (1, 1), (1, 2)]);
        assert_eq!(pool.depth(), 0);
        pool.shutdown();
    }

    #[test]
    fn a_panicking_job_leaves_the_worker_alive() {
        let pool = InferencePool::new(1, Arc::new(Metrics::default()));
        pool.submit(1, "test", || panic!("engine bug")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(pool.run(1, "test", || 42)), Ok(42));
        pool.shutdown();
    }
}
