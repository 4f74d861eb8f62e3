//! The story test: the whole `AuditStore` trait, then tampering with rows by
//! SQL, against both backends (SQLite file, throw-away PostgreSQL cluster).

mod sql;
mod support;

use echo_audit::*;
use serde_json::json;
use sql::exec;
use std::sync::Arc;
use support::*;

fn id(n: u8) -> CallId {
    CallId(format!("{n:032x}"))
}

/// A call with 5 turns and 2 events, ended with `outcome`.
fn call_records(
    n: u8,
    started: i64,
    caller: &str,
    outcome: Outcome,
    doctor: &str,
) -> Vec<AuditRecord> {
    let c = id(n);
    let mut v: Vec<AuditRecord> = vec![call(&c, started, caller).into()];
    v.push(event(&c, 0, EventKind::Answered).into());
    for s in 0..5 {
        v.push(turn(&c, s).into());
        if s == 2 {
            v.push(event(&c, 1, EventKind::Dtmf).into());
        }
    }
    v.push(
        end(
            &c,
            started + 60_000_000,
            outcome,
            json!({"doctor": doctor, "day": "tuesday"}),
        )
        .into(),
    );
    v
}

async fn story(url: DatabaseUrl, expected: Backend) {
    let store: Arc<dyn AuditStore> = connect(&url).await.unwrap();
    assert_eq!(store.backend(), expected);
    // connect twice: migrations are idempotent
    connect(&url).await.unwrap().close().await;

    let t0 = 1_790_000_000_000_000i64;
    let outcomes = [
        Outcome::Booked,
        Outcome::Cancelled,
        Outcome::Booked,
        Outcome::Transferred,
        Outcome::RefillRequested,
        Outcome::Abandoned,
    ];
    let mut all = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        let doctor = if i % 2 == 0 { "Meier" } else { "Keller" };
        let recs = call_records(
            i as u8 + 1,
            t0 + i as i64 * 1_000_000,
            &format!("+4179000000{i}"),
            *o,
            doctor,
        );
        all.extend(recs);
    }
    let access = Access::new(
        t0,
        "admin",
        "route.update",
        "clinic-main",
        "127.0.0.1",
        json!({"old": 1, "new": 2}),
    );
    all.push(access.clone().into());
    // written in two batches, then the first replayed whole
    let (a, b) = all.split_at(20);
    assert_eq!(
        store.append(a).await.unwrap(),
        AppendOutcome {
            inserted: 20,
            duplicates: 0
        }
    );
    assert_eq!(store.append(b).await.unwrap().inserted, b.len());
    assert_eq!(
        store.append(a).await.unwrap(),
        AppendOutcome {
            inserted: 0,
            duplicates: 20
        }
    );

    // read side
    let page = store.list_calls(&CallFilter::default()).await.unwrap();
    assert_eq!(page.calls.len(), 6);
    assert_eq!(page.calls[0].call.call_id, id(6), "newest first");
    assert_eq!(page.next_offset, None);
    let booked = store
        .list_calls(&CallFilter {
            outcome: Some(Outcome::Booked),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        booked
            .calls
            .iter()
            .map(|c| c.call.call_id.clone())
            .collect::<Vec<_>>(),
        vec![id(3), id(1)]
    );
    let by_number = store
        .list_calls(&CallFilter {
            number: Some("+41790000003".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_number.calls.len(), 1);
    assert_eq!(by_number.calls[0].call.call_id, id(4));
    assert_eq!(
        by_number.calls[0].end.as_ref().unwrap().outcome,
        Outcome::Transferred
    );
    let by_slot = store
        .list_calls(&CallFilter {
            slots: vec![("doctor".into(), "Keller".into())],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_slot.calls.len(), 3);
    let by_time = store
        .list_calls(&CallFilter {
            from_unix_us: Some(t0 + 1_000_000),
            to_unix_us: Some(t0 + 3_000_000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        by_time
            .calls
            .iter()
            .map(|c| c.call.call_id.clone())
            .collect::<Vec<_>>(),
        vec![id(3), id(2)]
    );
    let p1 = store
        .list_calls(&CallFilter {
            limit: 4,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((p1.calls.len(), p1.next_offset), (4, Some(4)));
    let p2 = store
        .list_calls(&CallFilter {
            limit: 4,
            offset: 4,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((p2.calls.len(), p2.next_offset), (2, None));

    let detail = store.get_call(&id(2)).await.unwrap().unwrap();
    let written: Vec<&AuditRecord> = all
        .iter()
        .filter(|r| r.chain_id() == format!("call:{}", id(2)))
        .collect();
    assert_eq!(AuditRecord::Call(detail.call.clone()), *written[0]);
    assert_eq!(
        detail.turns.iter().map(|t| t.seq).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(
        detail.turns[3],
        turn(&id(2), 3),
        "turns come back as written"
    );
    assert_eq!(detail.events.len(), 2);
    assert_eq!(detail.events[1].kind, EventKind::Dtmf);
    assert_eq!(detail.end.as_ref().unwrap().outcome, Outcome::Cancelled);
    let exported = detail.to_json();
    assert_eq!(
        exported["turns"][4]["timings"]["first_reply_packet_us"],
        json!(5_270_000)
    );
    assert!(store.get_call(&id(99)).await.unwrap().is_none());

    let report = verify(&*store).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.chains, 7);
    assert_eq!(report.records, all.len());

    // Tampering, one kind per chain.
    let q = |n: u8| format!("'{}'", id(n));
    // 1: a transcript changed
    exec(&url, &format!("UPDATE audit_turns SET corrected_text = 'I want to cancel' WHERE call_id = {} AND seq = 2", q(1))).await;
    // 2: a turn deleted from the middle
    exec(
        &url,
        &format!(
            "DELETE FROM audit_turns WHERE call_id = {} AND seq = 1",
            q(2)
        ),
    )
    .await;
    // 3: an event inserted in the middle (copying a real row's chain position)
    exec(
        &url,
        &format!(
            "INSERT INTO audit_events (call_id, seq, chain_id, chain_seq, prev_hash, hash, at_us, kind, detail) \
             SELECT call_id, 7, chain_id, chain_seq, prev_hash, hash, 5, 'transfer', '{{}}' FROM audit_turns WHERE call_id = {} AND seq = 3",
            q(3)
        ),
    )
    .await;
    // 4: the call's end deleted (the chain's tail)
    exec(
        &url,
        &format!("DELETE FROM audit_call_ends WHERE call_id = {}", q(4)),
    )
    .await;
    // 5: a turn appended after the recorded head
    exec(
        &url,
        &format!(
            "INSERT INTO audit_turns (call_id, seq, chain_id, chain_seq, prev_hash, hash, speaker, raw_text, corrected_text, corrections, slots) \
             SELECT call_id, 50, chain_id, chain_seq + 1, hash, hash, 'caller', 'forged', 'forged', '[]', '{{}}' FROM audit_call_ends WHERE call_id = {}",
            q(5)
        ),
    )
    .await;
    // global chain: who changed the route
    exec(&url, "UPDATE audit_access SET actor = 'mallory'").await;

    let report = verify(&*store).await.unwrap();
    let kinds: Vec<(String, String, FindingKind)> = report
        .findings
        .iter()
        .map(|f| (f.chain_id.clone(), f.key.clone(), f.kind.clone()))
        .collect();
    let chain = |n: u8| format!("call:{}", id(n));
    assert_eq!(report.first().unwrap().chain_id, chain(1), "{kinds:#?}");
    let expect = vec![
        (
            chain(1),
            format!("call_id={} seq=2", id(1)),
            FindingKind::Altered,
        ),
        (
            chain(2),
            format!("call_id={} seq=2", id(2)),
            FindingKind::Deleted { from: 3, to: 3 },
        ),
        (
            chain(3),
            format!("call_id={} seq=7", id(3)),
            FindingKind::Inserted,
        ),
        (
            chain(4),
            format!("call_id={} seq=4", id(4)),
            FindingKind::Deleted { from: 8, to: 8 },
        ),
        (
            chain(5),
            format!("call_id={} seq=50", id(5)),
            FindingKind::Inserted,
        ),
        (
            "global".to_owned(),
            format!("record_id={}", access.record_id),
            FindingKind::Altered,
        ),
    ];
    assert_eq!(kinds, expect);
    store.close().await;
}

#[tokio::test]
async fn story_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    story(sqlite_url(dir.path()), Backend::Sqlite).await;
}

#[tokio::test]
async fn story_postgres() {
    let pg = PgCluster::start();
    story(pg.url(), Backend::Postgres).await;
}

#[tokio::test]
async fn unknown_scheme_is_refused() {
    let err = connect(&DatabaseUrl::new("mysql://u:pw@h/db"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedScheme(ref s) if s == "mysql"),
        "{err}"
    );
}
