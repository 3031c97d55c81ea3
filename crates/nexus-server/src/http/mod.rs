//! HTTP: the routes of SPEC §2, thin handlers (extract, call the [`Relay`], answer), the
//! extractors that turn framework rejections into protocol errors, the request-id and access-log
//! middleware, the JSON fallbacks for unknown routes and wrong methods, the OpenAPI document
//! generated from the handlers (`/openapi.json`) and the Prometheus metrics (`/metrics`).

pub mod docs;
pub mod error;
pub mod extract;
pub mod limits;
pub mod messages;
pub mod meta;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod pairing;
pub mod sessions;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::{Extension, Router};
use nexus_proto::ErrorCode;
use tower::ServiceBuilder;

use crate::domain::{Relay, RelayError};

/// The state every handler gets.
pub type AppState = Arc<Relay>;

/// The whole API as one router.
pub fn router(relay: Arc<Relay>) -> Router {
    let max_body = relay.config.max_body_bytes;
    let metrics = Arc::new(metrics::HttpMetrics::default());
    Router::new()
        .route("/", get(docs::root))
        .route("/health", get(meta::health))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/stats", get(meta::stats))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/v1/sessions", put(sessions::create))
        .route("/v1/sessions/{id}", get(sessions::status))
        .route("/v1/sessions/{id}/join", post(sessions::join))
        .route(
            "/v1/sessions/{id}/agents/{agent_id}",
            delete(sessions::leave),
        )
        .route("/v1/sessions/{id}/renew", post(sessions::renew))
        .route(
            "/v1/sessions/{id}/messages",
            post(messages::send).get(messages::poll),
        )
        .route("/v1/pair", put(pairing::create))
        .route("/v1/pair/{code}/claim", post(pairing::claim))
        .route("/v1/pair/{code}/status", get(pairing::status))
        .route("/v1/pair/{code}/skill", get(docs::pair_skill))
        .route("/p/{code}", get(docs::pair_link))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        // One layer of the router (each `Router::layer` call boxes every route once more), run
        // top to bottom: the metrics registry; request id, access log and the counting of every
        // answer (rate-limited and panicked ones included); rate limit; body limit.
        .layer(
            ServiceBuilder::new()
                .layer(Extension(metrics.clone()))
                .layer(observe::ObserveLayer::counting(metrics))
                .layer(limits::RateLimitLayer::new(relay.clone()))
                .layer(DefaultBodyLimit::max(max_body)),
        )
        .with_state(relay)
}

async fn unknown_route() -> RelayError {
    RelayError::new(
        ErrorCode::NotFound,
        "no such endpoint; GET / describes the API",
    )
}

async fn wrong_method() -> RelayError {
    RelayError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not accept that method; GET / describes the API",
    )
}
