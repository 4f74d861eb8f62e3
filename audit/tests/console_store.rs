//! The store methods the staff console uses (console state, richer call
//! filters, the access log, per-call verification, turns for export),
//! against both backends: a SQLite file and a throw-away PostgreSQL cluster.

mod support;

use echo_audit::*;
use serde_json::json;
use std::sync::Arc;
use support::*;

/// Runs `$body(url)` once on a fresh SQLite file and once on a fresh
/// PostgreSQL cluster, as two tests.
macro_rules! on_both_backends {
    ($body:ident) => {
        mod $body {
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                super::$body(super::sqlite_url(dir.path())).await;
            }
            #[tokio::test]
            async fn postgres() {
                let pg = super::PgCluster::start();
                super::$body(pg.url()).await;
            }
        }
    };
}

async fn console_state(url: DatabaseUrl) {
    let store: Arc<dyn AuditStore> = connect(&url).await.unwrap();
    assert_eq!(store.state_get("account", "alice").await.unwrap(), None);
    assert_eq!(store.state_count("account").await.unwrap(), 0);
    assert!(store.state_list("account").await.unwrap().is_empty());

    let before = now_unix_us();
    store
        .state_put("account", "bob", &json!({"role": "viewer"}))
        .await
        .unwrap();
    store
        .state_put("account", "alice", &json!({"role": "admin", "hash": "x"}))
        .await
        .unwrap();
    store
        .state_put("session", "alice", &json!("token"))
        .await
        .unwrap();
    let alice = store.state_get("account", "alice").await.unwrap().unwrap();
    assert_eq!(alice.kind, "account");
    assert_eq!(alice.key, "alice");
    assert_eq!(alice.value, json!({"role": "admin", "hash": "x"}));
    assert!(alice.updated_unix_us >= before && alice.updated_unix_us <= now_unix_us());

    // upsert replaces the value and restamps it
    store
        .state_put("account", "alice", &json!({"role": "viewer"}))
        .await
        .unwrap();
    let again = store.state_get("account", "alice").await.unwrap().unwrap();
    assert_eq!(again.value, json!({"role": "viewer"}));
    assert!(again.updated_unix_us >= alice.updated_unix_us);

    let keys: Vec<String> = store
        .state_list("account")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["alice", "bob"], "ordered by key, one kind only");
    assert_eq!(store.state_count("account").await.unwrap(), 2);
    assert_eq!(store.state_count("session").await.unwrap(), 1);

    assert!(store.state_delete("account", "bob").await.unwrap());
    assert!(!store.state_delete("account", "bob").await.unwrap());
    assert_eq!(store.state_get("account", "bob").await.unwrap(), None);
    assert_eq!(store.state_count("account").await.unwrap(), 1);
    assert_eq!(store.state_count("session").await.unwrap(), 1);

    // state is outside the hash chain: verify sees no chain at all
    let report = verify(&*store).await.unwrap();
    assert!(report.is_ok());
    assert_eq!((report.chains, report.records), (0, 0));
    store.close().await;
}
on_both_backends!(console_state);

fn now_unix_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}
