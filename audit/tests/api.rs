//! The read-only JSON API over a SQLite store.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use echo_audit::*;
use serde_json::{json, Value};
use support::*;
use tower::ServiceExt;

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn calls_list_detail_and_openapi() {
    let dir = tempfile::tempdir().unwrap();
    let store = connect(&sqlite_url(dir.path())).await.unwrap();
    let a = CallId::random();
    let b = CallId::random();
    store
        .append(&[
            call(&a, 1_000, "+41790000001").into(),
            turn(&a, 0).into(),
            turn(&a, 1).into(),
            event(&a, 0, EventKind::BargeIn).into(),
            end(&a, 9_000, Outcome::Booked, json!({"doctor": "Meier"})).into(),
            call(&b, 2_000, "+41790000002").into(),
        ])
        .await
        .unwrap();
    let app = api::router(store);

    let (s, page) = get(&app, "/api/v1/calls").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["calls"].as_array().unwrap().len(), 2);
    assert_eq!(page["calls"][0]["call"]["call_id"], json!(b.0));
    assert_eq!(page["calls"][0]["end"], Value::Null);

    let (_, page) = get(
        &app,
        "/api/v1/calls?outcome=booked&slot=doctor:Meier&number=%2B41790000001",
    )
    .await;
    assert_eq!(page["calls"].as_array().unwrap().len(), 1);
    assert_eq!(page["calls"][0]["end"]["outcome"], json!("booked"));
    let (_, page) = get(&app, "/api/v1/calls?limit=1").await;
    assert_eq!(page["next_offset"], json!(1));
    let (_, page) = get(&app, "/api/v1/calls?from=1500&to=3000").await;
    assert_eq!(page["calls"].as_array().unwrap().len(), 1);

    let (s, _) = get(&app, "/api/v1/calls?outcome=happy").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, detail) = get(&app, &format!("/api/v1/calls/{a}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(detail["turns"][1]["seq"], json!(1));
    assert_eq!(
        detail["turns"][1]["raw_text"],
        json!("i'd like an appointment on tuesday 1")
    );
    assert_eq!(detail["events"][0]["kind"], json!("barge_in"));
    assert_eq!(detail["end"]["final_slots"]["doctor"], json!("Meier"));

    let (s, _) = get(&app, "/api/v1/calls/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, doc) = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], json!("3.1.0"));
    assert!(doc["paths"]["/api/v1/calls/{id}"]["get"].is_object());
}
