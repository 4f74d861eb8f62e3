//! The HTTP side: `/healthz`, `/readyz`, `/metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
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

/// The router: health and metrics for anyone who can reach the listener,
/// and the audit API (`/api/v1/…`) for loopback clients only until staff
/// sign-in exists.
pub fn router(state: HttpState, store: Arc<dyn echo_audit::AuditStore>) -> Router {
    let api = echo_audit::api::router(store).layer(middleware::from_fn(loopback_only));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(api)
}

async fn loopback_only(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if peer.ip().is_loopback() {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "the audit API answers on loopback only until staff sign-in exists\n",
        )
            .into_response()
    }
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
