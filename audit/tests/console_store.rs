//! The store methods the staff console uses (console state, richer call
//! filters, the access log, per-call verification, turns for export),
//! against both backends: a SQLite file and a throw-away PostgreSQL cluster.

mod sql;
mod support;

use echo_audit::*;
use serde_json::json;
use sql::exec;
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

fn id(n: u8) -> CallId {
    CallId(format!("{n:032x}"))
}

const T0: i64 = 1_790_000_000_000_000;

/// Three calls for the filters (newest last):
/// 1. `+41790000001` → clinic-main, booked with Dr. Meier, "ibuprofen" said;
/// 2. `+41790000002` → `+41445550099` on clinic-refill, refill of Aspirin
///    from Dr. Keller, "Aspirin 100%_mg" after correction;
/// 3. `Anonymous` → clinic-main, still going, "the MRI" said.
fn filter_records() -> Vec<AuditRecord> {
    let mut v: Vec<AuditRecord> = Vec::new();
    let (a, b, c) = (id(1), id(2), id(3));
    v.push(call(&a, T0, "+41790000001").into());
    let mut t = turn(&a, 0);
    t.raw_text = "i need more ibuprofen".into();
    v.push(t.into());
    v.push(turn(&a, 1).into());
    v.push(
        end(
            &a,
            T0 + 60_000_000,
            Outcome::Booked,
            json!({"provider": "Dr. Meier", "medication": "Ibuprofen"}),
        )
        .into(),
    );

    let mut cb = call(&b, T0 + 1_000_000, "+41790000002");
    cb.called = "+41445550099".into();
    cb.route = "clinic-refill".into();
    v.push(cb.into());
    let mut t = turn(&b, 0);
    t.corrected_text = "Aspirin 100%_mg please".into();
    v.push(t.into());
    v.push(
        end(
            &b,
            T0 + 61_000_000,
            Outcome::RefillRequested,
            json!({"provider": "Dr. Keller", "medication": "Aspirin", "count": 3}),
        )
        .into(),
    );

    v.push(call(&c, T0 + 2_000_000, "Anonymous").into());
    let mut t = turn(&c, 0);
    t.raw_text = "call me back about the MRI".into();
    v.push(t.into());
    v
}

async fn ids(store: &dyn AuditStore, filter: CallFilter) -> Vec<CallId> {
    store
        .list_calls(&filter)
        .await
        .unwrap()
        .calls
        .into_iter()
        .map(|c| c.call.call_id)
        .collect()
}

async fn call_filters(url: DatabaseUrl) {
    let store: Arc<dyn AuditStore> = connect(&url).await.unwrap();
    store.append(&filter_records()).await.unwrap();
    let s = &*store;
    let number = |n: &str| CallFilter {
        number: Some(n.into()),
        ..Default::default()
    };
    let text = |t: &str| CallFilter {
        text: Some(t.into()),
        ..Default::default()
    };
    let slots = |kv: &[(&str, &str)]| CallFilter {
        slots: kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let route = |r: &str| CallFilter {
        route: Some(r.into()),
        ..Default::default()
    };

    // number: a substring of caller or called, ignoring case
    assert_eq!(ids(s, number("+41790000002")).await, [id(2)]);
    assert_eq!(ids(s, number("0002")).await, [id(2)]);
    assert_eq!(ids(s, number("5550099")).await, [id(2)], "called");
    assert_eq!(ids(s, number("ANONYM")).await, [id(3)]);
    assert_eq!(ids(s, number("+4179")).await, [id(2), id(1)]);
    assert_eq!(ids(s, number("+4144555")).await, [id(3), id(2), id(1)]);
    assert!(ids(s, number("%")).await.is_empty(), "no LIKE wildcards");

    // route: exact
    assert_eq!(ids(s, route("clinic-refill")).await, [id(2)]);
    assert_eq!(ids(s, route("clinic-main")).await, [id(3), id(1)]);
    assert!(ids(s, route("clinic")).await.is_empty());

    // slots: each ANDed, values ignoring case, only ended calls
    assert_eq!(ids(s, slots(&[("provider", "dr. meier")])).await, [id(1)]);
    assert_eq!(
        ids(
            s,
            slots(&[("provider", "Dr. Keller"), ("medication", "ASPIRIN")])
        )
        .await,
        [id(2)]
    );
    assert!(ids(
        s,
        slots(&[("provider", "Dr. Keller"), ("medication", "ibuprofen")])
    )
    .await
    .is_empty());
    assert_eq!(
        ids(s, slots(&[("count", "3")])).await,
        [id(2)],
        "numbers as text"
    );
    assert_eq!(
        ids(s, slots(&[("provider", "keller")])).await.len(),
        ids(s, slots(&[("provider", "Dr. Keller")])).await.len(),
        "contains, ignoring case"
    );
    assert!(
        ids(s, slots(&[("provider", "Dr. Kellerman")]))
            .await
            .is_empty(),
        "contains, not overlaps"
    );

    // text: caller, called, final slots' JSON, turns' raw or corrected text
    assert_eq!(ids(s, text("mri")).await, [id(3)], "raw text");
    assert_eq!(ids(s, text("100%_MG")).await, [id(2)], "corrected text");
    assert_eq!(ids(s, text("%")).await, [id(2)], "% is a character");
    assert_eq!(ids(s, text("_")).await, [id(2)], "_ is a character");
    assert_eq!(
        ids(s, text("IBUPROFEN")).await,
        [id(1)],
        "turn and slots, once"
    );
    assert_eq!(ids(s, text("keller")).await, [id(2)], "final slots");
    assert_eq!(
        ids(s, text("\"provider\"")).await,
        [id(2), id(1)],
        "JSON text"
    );
    assert_eq!(ids(s, text("anonymous")).await, [id(3)], "caller");
    assert_eq!(ids(s, text("5550099")).await, [id(2)], "called");
    assert!(ids(s, text("cardiology")).await.is_empty());

    // all together, ANDed
    let mixed = CallFilter {
        text: Some("Tuesday 0".into()),
        route: Some("clinic-main".into()),
        ..Default::default()
    };
    assert_eq!(ids(s, mixed).await, [id(3), id(1)], "not call 2's route");
    let mixed = CallFilter {
        number: Some("+4179".into()),
        outcome: Some(Outcome::Booked),
        slots: vec![("medication".into(), "ibuprofen".into())],
        text: Some("more".into()),
        from_unix_us: Some(T0),
        to_unix_us: Some(T0 + 1),
        ..Default::default()
    };
    assert_eq!(ids(s, mixed).await, [id(1)]);
    store.close().await;
}
on_both_backends!(call_filters);

async fn access_log(url: DatabaseUrl) {
    let store: Arc<dyn AuditStore> = connect(&url).await.unwrap();
    assert!(store.list_access(0, 0).await.unwrap().is_empty());
    // 60 entries in two batches; each pair shares a timestamp, so the
    // position in the global chain breaks the tie.
    let entries: Vec<Access> = (0..60)
        .map(|i| {
            Access::new(
                T0 + (i / 2) * 1_000,
                "admin",
                "call.view",
                format!("target-{i}"),
                "127.0.0.1",
                json!({"i": i}),
            )
        })
        .collect();
    let (first, second) = entries.split_at(25);
    let records = |e: &[Access]| e.iter().cloned().map(AuditRecord::from).collect::<Vec<_>>();
    store.append(&records(first)).await.unwrap();
    store.append(&records(second)).await.unwrap();
    let newest_first: Vec<Access> = entries.iter().rev().cloned().collect();

    assert_eq!(store.list_access(5, 0).await.unwrap(), newest_first[..5]);
    assert_eq!(store.list_access(5, 57).await.unwrap(), newest_first[57..]);
    assert_eq!(
        store.list_access(0, 0).await.unwrap(),
        newest_first[..50],
        "0 is the default page of 50"
    );
    assert_eq!(store.list_access(5000, 0).await.unwrap(), newest_first);
    assert!(store.list_access(10, 60).await.unwrap().is_empty());
    // call records do not show up in the access log
    let c = id(1);
    store
        .append(&[call(&c, T0, "+41790000001").into()])
        .await
        .unwrap();
    assert_eq!(store.list_access(1000, 0).await.unwrap().len(), 60);
    store.close().await;
}
on_both_backends!(access_log);

async fn per_call_verification(url: DatabaseUrl) {
    let store: Arc<dyn AuditStore> = connect(&url).await.unwrap();
    let access = Access::new(T0, "admin", "call.view", "x", "127.0.0.1", json!({}));
    let mut records = filter_records();
    records.push(access.into());
    store.append(&records).await.unwrap();
    let s = &*store;

    let chain = format!("call:{}", id(1));
    let rows = s.chain_rows_of(&chain).await.unwrap();
    let mut seqs: Vec<i64> = rows.iter().map(|r| r.chain_seq).collect();
    seqs.sort();
    assert_eq!(seqs, [0, 1, 2, 3], "call, two turns, end");
    assert!(rows.iter().all(|r| r.chain_id == chain));
    let head = s.chain_head_of(&chain).await.unwrap().unwrap();
    assert_eq!(
        (head.chain_id.as_str(), head.chain_seq),
        (chain.as_str(), 3)
    );
    assert_eq!(s.chain_rows_of("global").await.unwrap().len(), 1);
    assert!(s.chain_rows_of("call:nope").await.unwrap().is_empty());
    assert_eq!(s.chain_head_of("call:nope").await.unwrap(), None);

    for (n, records) in [(1, 4), (2, 3), (3, 2)] {
        let report = verify_call(s, &id(n)).await.unwrap();
        assert!(report.is_ok(), "{:?}", report.findings);
        assert_eq!((report.chains, report.records), (1, records));
    }
    let unknown = verify_call(s, &id(99)).await.unwrap();
    assert!(unknown.is_ok());
    assert_eq!((unknown.chains, unknown.records), (0, 0));

    // Tamper with call 2's turn, delete call 1's end and forge the access log.
    exec(
        &url,
        &format!(
            "UPDATE audit_turns SET raw_text = 'cancel it' WHERE call_id = '{}'",
            id(2)
        ),
    )
    .await;
    exec(
        &url,
        &format!("DELETE FROM audit_call_ends WHERE call_id = '{}'", id(1)),
    )
    .await;
    exec(&url, "UPDATE audit_access SET actor = 'mallory'").await;

    let two = verify_call(s, &id(2)).await.unwrap();
    assert_eq!(two.findings.len(), 1, "{:?}", two.findings);
    assert_eq!(two.findings[0].kind, FindingKind::Altered);
    assert_eq!(two.findings[0].key, format!("call_id={} seq=0", id(2)));
    let one = verify_call(s, &id(1)).await.unwrap();
    assert_eq!(
        one.findings
            .iter()
            .map(|f| f.kind.clone())
            .collect::<Vec<_>>(),
        [FindingKind::Deleted { from: 3, to: 3 }]
    );
    let three = verify_call(s, &id(3)).await.unwrap();
    assert!(three.is_ok(), "other chains do not leak in");
    assert_eq!(verify(s).await.unwrap().findings.len(), 3);
    store.close().await;
}
on_both_backends!(per_call_verification);

async fn turns_for_export(url: DatabaseUrl) {
    let store: Arc<dyn AuditStore> = connect(&url).await.unwrap();
    assert!(store.list_turns(None, None, 0).await.unwrap().is_empty());
    // filter_records, but with call 1's turns written after call 2's and
    // in reverse, to show the order comes from the query
    let mut records = filter_records();
    let late: Vec<AuditRecord> = records.drain(1..3).rev().collect();
    records.splice(6..6, late);
    store.append(&records).await.unwrap();
    // a fourth call, the same start as call 3, with two turns
    let d = id(4);
    let mut cd = call(&d, T0 + 2_000_000, "+41790000004");
    cd.route = "clinic-refill".into();
    store
        .append(&[
            cd.into(),
            turn(&d, 1).into(),
            turn(&d, 0).into(),
            end(&d, T0 + 9_000_000, Outcome::Abandoned, json!({})).into(),
        ])
        .await
        .unwrap();
    let s = &*store;
    let key = |r: &TurnRow| (r.call_id.clone(), r.turn.seq);

    let all = s.list_turns(None, None, 0).await.unwrap();
    assert_eq!(
        all.iter().map(key).collect::<Vec<_>>(),
        [
            (id(1), 0),
            (id(1), 1),
            (id(2), 0),
            (id(3), 0),
            (id(4), 0),
            (id(4), 1)
        ]
    );
    let first = &all[0];
    assert_eq!(first.call_started_unix_us, T0);
    assert_eq!(first.route, "clinic-main");
    assert_eq!(first.outcome, Some(Outcome::Booked));
    assert_eq!(first.turn.raw_text.expose(), "i need more ibuprofen");
    assert_eq!(all[2].outcome, Some(Outcome::RefillRequested));
    assert_eq!(all[2].route, "clinic-refill");
    assert_eq!(all[3].outcome, None, "call 3 has not ended");
    assert_eq!(all[4].turn, turn(&d, 0), "turns come back as written");

    let window = |from, to| async move {
        s.list_turns(from, to, 0)
            .await
            .unwrap()
            .iter()
            .map(key)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        window(Some(T0 + 1), Some(T0 + 2_000_000)).await,
        [(id(2), 0)]
    );
    assert_eq!(
        window(Some(T0 + 1_000_000), None).await.len(),
        4,
        "from is inclusive"
    );
    assert_eq!(
        window(None, Some(T0 + 1_000_000)).await,
        [(id(1), 0), (id(1), 1)],
        "to is exclusive"
    );
    assert!(window(Some(T0 + 3_000_000), None).await.is_empty());
    assert_eq!(
        s.list_turns(None, None, 3)
            .await
            .unwrap()
            .iter()
            .map(key)
            .collect::<Vec<_>>(),
        [(id(1), 0), (id(1), 1), (id(2), 0)]
    );
    store.close().await;
}
on_both_backends!(turns_for_export);
