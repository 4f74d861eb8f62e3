//! The writer: batching, spooling through a real PostgreSQL outage, and a
//! writer killed in the middle of a replay.

mod support;

use echo_audit::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

fn config(spool: &std::path::Path) -> WriterConfig {
    WriterConfig {
        retry_every: Duration::from_millis(200),
        append_timeout: Duration::from_secs(5),
        batch_max: 200,
        ..WriterConfig::new(spool)
    }
}

fn spool_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Every turn of the call exactly once, in order, and the chains intact.
async fn assert_complete(store: &dyn AuditStore, calls: &[CallId], turns: i64) {
    for c in calls {
        let d = store.get_call(c).await.unwrap().expect("call stored");
        let seqs: Vec<i64> = d.turns.iter().map(|t| t.seq).collect();
        assert_eq!(seqs, (0..turns).collect::<Vec<_>>(), "turns of {c}");
    }
    let report = verify(store).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.first());
    assert_eq!(report.records, calls.len() * (turns as usize + 1));
}

async fn wait_for_empty_spool(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while spool_len(path) > 0 {
        assert!(Instant::now() < deadline, "spool never drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_stream_loses_and_duplicates_nothing() {
    let pg = Arc::new(PgCluster::start());
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("audit.spool");
    let store = connect(&pg.url()).await.unwrap();
    let (audit, task) = AuditWriter::spawn(store.clone(), config(&spool)).unwrap();

    let calls: Vec<CallId> = (0..4).map(|_| CallId::random()).collect();
    for (i, c) in calls.iter().enumerate() {
        assert!(audit.record(call(c, 1_790_000_000_000_000 + i as i64, "+41790000000").into()));
    }
    let turns = 1500i64;
    for seq in 0..turns {
        for c in &calls {
            assert!(audit.record(turn(c, seq).into()), "the channel never fills");
        }
        if seq == 400 {
            audit.flush().await.unwrap();
            let pg = pg.clone();
            tokio::task::spawn_blocking(move || pg.stop())
                .await
                .unwrap();
        }
        if seq == 1000 {
            audit.flush().await.unwrap();
            assert!(audit.stats().spooled > 0, "the outage went to the spool");
            let pg = pg.clone();
            tokio::task::spawn_blocking(move || pg.resume())
                .await
                .unwrap();
        }
        if seq % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    audit.flush().await.unwrap();
    wait_for_empty_spool(&spool).await;
    let stats = audit.stats();
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.lost, 0);
    assert_eq!(stats.written + stats.spooled, stats.accepted);
    drop(audit);
    task.await.unwrap();
    assert_complete(&*store, &calls, turns).await;
}

/// Delegates to a real store, but its `n`th and later appends never return.
#[derive(Debug)]
struct HangsAfter {
    inner: Arc<dyn AuditStore>,
    n: usize,
    done: AtomicUsize,
}

#[async_trait::async_trait]
impl AuditStore for HangsAfter {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    async fn append(&self, records: &[AuditRecord]) -> Result<AppendOutcome, StoreError> {
        if self.done.load(Ordering::SeqCst) >= self.n {
            std::future::pending::<()>().await;
        }
        let r = self.inner.append(records).await;
        self.done.fetch_add(1, Ordering::SeqCst);
        r
    }
    async fn list_calls(&self, f: &CallFilter) -> Result<CallPage, StoreError> {
        self.inner.list_calls(f).await
    }
    async fn get_call(&self, id: &CallId) -> Result<Option<CallDetail>, StoreError> {
        self.inner.get_call(id).await
    }
    async fn list_access(&self, limit: u32, offset: u64) -> Result<Vec<Access>, StoreError> {
        self.inner.list_access(limit, offset).await
    }
    async fn list_turns(
        &self,
        from_unix_us: Option<i64>,
        to_unix_us: Option<i64>,
        limit: u32,
    ) -> Result<Vec<TurnRow>, StoreError> {
        self.inner.list_turns(from_unix_us, to_unix_us, limit).await
    }
    async fn chain_rows(&self) -> Result<Vec<ChainRow>, StoreError> {
        self.inner.chain_rows().await
    }
    async fn chain_heads(&self) -> Result<Vec<ChainHead>, StoreError> {
        self.inner.chain_heads().await
    }
    async fn state_get(&self, kind: &str, key: &str) -> Result<Option<StateEntry>, StoreError> {
        self.inner.state_get(kind, key).await
    }
    async fn state_list(&self, kind: &str) -> Result<Vec<StateEntry>, StoreError> {
        self.inner.state_list(kind).await
    }
    async fn state_put(
        &self,
        kind: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.inner.state_put(kind, key, value).await
    }
    async fn state_delete(&self, kind: &str, key: &str) -> Result<bool, StoreError> {
        self.inner.state_delete(kind, key).await
    }
    async fn state_count(&self, kind: &str) -> Result<u64, StoreError> {
        self.inner.state_count(kind).await
    }
    async fn chain_rows_of(&self, chain_id: &str) -> Result<Vec<ChainRow>, StoreError> {
        self.inner.chain_rows_of(chain_id).await
    }
    async fn chain_head_of(&self, chain_id: &str) -> Result<Option<ChainHead>, StoreError> {
        self.inner.chain_head_of(chain_id).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

async fn killed_mid_replay(url: DatabaseUrl) {
    let dir = tempfile::tempdir().unwrap();
    let spool_path = dir.path().join("audit.spool");
    let calls: Vec<CallId> = (0..10).map(|_| CallId::random()).collect();
    let turns = 300i64;
    {
        // What a writer left behind while the database was down.
        let mut spool = Spool::open(&spool_path).unwrap();
        let mut batch: Vec<AuditRecord> = calls
            .iter()
            .enumerate()
            .map(|(i, c)| call(c, 1_790_000_000_000_000 + i as i64, "+41790000000").into())
            .collect();
        for seq in 0..turns {
            for c in &calls {
                batch.push(turn(c, seq).into());
            }
            if batch.len() >= 250 {
                spool.append(&batch).unwrap();
                batch.clear();
            }
        }
        spool.append(&batch).unwrap();
    }
    let store = connect(&url).await.unwrap();
    let hanging = Arc::new(HangsAfter {
        inner: store.clone(),
        n: 3,
        done: AtomicUsize::new(0),
    });
    let (audit, task) = AuditWriter::spawn(hanging.clone(), config(&spool_path)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while hanging.done.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "replay never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Three batches of the replay are in the database; kill the writer.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    drop(audit);
    assert!(spool_len(&spool_path) > 0, "the spool survives the kill");
    let partial = verify(&*store).await.unwrap();
    assert!(partial.is_ok());
    assert_eq!(
        partial.records, 600,
        "3 batches of 200 got in before the kill"
    );

    let (audit, task) = AuditWriter::spawn(store.clone(), config(&spool_path)).unwrap();
    wait_for_empty_spool(&spool_path).await;
    audit.flush().await.unwrap();
    drop(audit);
    task.await.unwrap();
    assert_complete(&*store, &calls, turns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_killed_mid_replay_duplicates_nothing_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    killed_mid_replay(sqlite_url(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_killed_mid_replay_duplicates_nothing_postgres() {
    let pg = PgCluster::start();
    killed_mid_replay(pg.url()).await;
}

#[tokio::test]
async fn torn_spool_line_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let c = CallId::random();
    let mut s = Spool::open(&path).unwrap();
    s.append(&[turn(&c, 0).into()]).unwrap();
    drop(s);
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"{\"type\":\"turn\",\"call_id\":\"ab").unwrap();
    drop(f);
    let mut s = Spool::open(&path).unwrap();
    s.append(&[turn(&c, 1).into()]).unwrap();
    let got = s.read_all().unwrap();
    assert_eq!(got, vec![turn(&c, 0).into(), turn(&c, 1).into()]);
    s.clear().unwrap();
    assert!(s.is_empty().unwrap());
}
