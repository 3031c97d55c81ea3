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
use axum::routing::{MethodRouter, delete, get, post, put};
use axum::{Extension, Router};
use nexus_proto::ErrorCode;
use tower::ServiceBuilder;

use crate::domain::{Relay, RelayError};

/// The state every handler gets.
pub type AppState = Arc<Relay>;

/// Every route: its template and its handlers. The one list of the API's paths: the router is
/// built from it, and `/metrics` counts requests by these templates.
fn routes() -> [(&'static str, MethodRouter<AppState>); 16] {
    [
        ("/", get(docs::root)),
        ("/health", get(meta::health)),
        ("/metrics", get(metrics::metrics)),
        ("/v1/stats", get(meta::stats)),
        ("/openapi.json", get(openapi::openapi_json)),
        ("/v1/sessions", put(sessions::create)),
        ("/v1/sessions/{id}", get(sessions::status)),
        ("/v1/sessions/{id}/join", post(sessions::join)),
        (
            "/v1/sessions/{id}/agents/{agent_id}",
            delete(sessions::leave),
        ),
        ("/v1/sessions/{id}/renew", post(sessions::renew)),
        (
            "/v1/sessions/{id}/messages",
            post(messages::send).get(messages::poll),
        ),
        ("/v1/pair", put(pairing::create)),
        ("/v1/pair/{code}/claim", post(pairing::claim)),
        ("/v1/pair/{code}/status", get(pairing::status)),
        ("/v1/pair/{code}/skill", get(docs::pair_skill)),
        ("/p/{code}", get(docs::pair_link)),
    ]
}

/// The whole API as one router.
pub fn router(relay: Arc<Relay>) -> Router {
    let max_body = relay.config.max_body_bytes;
    let routes = routes();
    let metrics = Arc::new(metrics::HttpMetrics::new(routes.iter().map(|(t, _)| *t)));
    routes
        .into_iter()
        .fold(Router::new(), |router, (template, handlers)| {
            router.route(template, handlers)
        })
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
