//! The read-only staff API: `GET /api/v1/calls`, `GET /api/v1/calls/{id}`,
//! `GET /api/v1/openapi.json`. The gateway mounts [`router`] and keeps it on
//! loopback until authentication lands.

use crate::record::{CallId, Outcome};
use crate::store::{AuditStore, CallFilter};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

/// The API's routes, with `store` as their state.
pub fn router(store: Arc<dyn AuditStore>) -> Router {
    Router::new()
        .route("/api/v1/calls", get(list_calls))
        .route("/api/v1/calls/{id}", get(get_call))
        .route("/api/v1/openapi.json", get(openapi))
        .with_state(store)
}

/// Query parameters of `GET /api/v1/calls`.
#[derive(Debug, Default, Deserialize)]
struct ListParams {
    from: Option<i64>,
    to: Option<i64>,
    number: Option<String>,
    outcome: Option<String>,
    /// `key:value`
    slot: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn list_calls(
    State(store): State<Arc<dyn AuditStore>>,
    Query(p): Query<ListParams>,
) -> Response {
    let outcome = match p.outcome.as_deref().map(str::parse::<Outcome>) {
        None => None,
        Some(Ok(o)) => Some(o),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "unknown outcome"),
    };
    let slots = match p.slot.as_deref().map(|s| s.split_once(':')) {
        None => Vec::new(),
        Some(Some((k, v))) => vec![(k.to_owned(), v.to_owned())],
        Some(None) => return error(StatusCode::BAD_REQUEST, "slot must be key:value"),
    };
    let filter = CallFilter {
        from_unix_us: p.from,
        to_unix_us: p.to,
        number: p.number,
        outcome,
        slots,
        route: None,
        text: None,
        limit: p.limit.unwrap_or(0),
        offset: p.offset.unwrap_or(0),
    };
    match store.list_calls(&filter).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "audit api: list calls");
            error(StatusCode::SERVICE_UNAVAILABLE, "audit store unavailable")
        }
    }
}

async fn get_call(State(store): State<Arc<dyn AuditStore>>, Path(id): Path<String>) -> Response {
    match store.get_call(&CallId(id)).await {
        Ok(Some(detail)) => Json(detail).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such call"),
        Err(e) => {
            tracing::error!(error = %e, "audit api: get call");
            error(StatusCode::SERVICE_UNAVAILABLE, "audit store unavailable")
        }
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The OpenAPI 3.1 description of these routes.
pub const OPENAPI: &str = include_str!("openapi.json");
