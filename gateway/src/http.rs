//! The HTTP side: `/healthz`, `/readyz`, `/metrics`, and the console (its
//! pages and `/api/v1`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    /// Every metric.
    pub registry: Arc<Registry>,
    /// True while the SIP listener takes calls (false before start and
    /// while draining).
    pub ready: Arc<AtomicBool>,
}

/// The router: health and metrics for anyone who can reach the listener
/// (as Prometheus expects), and the console, which asks for a staff session.
pub fn router(state: HttpState, console: Arc<crate::console::Console>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(crate::console::router(console))
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    }
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::encode(&state.registry),
    )
}
