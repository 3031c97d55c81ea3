//! `GET /health` (capabilities the CLI negotiates on, the store backend and whether it answers:
//! 503 when it does not) and `GET /v1/stats`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::ErrorBody;
use nexus_proto::api::{Health, Stats};

use super::AppState;
use crate::domain::RelayError;

/// Liveness, capabilities and the store (not rate-limited). A load balancer takes a node out of
/// rotation on the 503.
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    responses(
        (status = 200, description = "The server is up and its store answers", body = Health),
        (status = 503, description = "The store cannot be reached (`status: \"unavailable\"`, `store.reachable: false`)", body = Health),
    )
)]
pub async fn health(State(relay): State<AppState>) -> (StatusCode, Json<Health>) {
    let health = relay.health().await;
    let reachable = health.store.as_ref().is_none_or(|s| s.reachable);
    let status = if reachable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health))
}

/// Counters.
#[utoipa::path(
    get,
    path = "/v1/stats",
    tag = "meta",
    responses(
        (status = 200, description = "Current counts", body = Stats),
        (status = 429, description = "`rate_limit_exceeded`: too many requests from this address (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "`internal_error`: a bug; the message quotes the request id", body = ErrorBody),
    )
)]
pub async fn stats(State(relay): State<AppState>) -> Result<Json<Stats>, RelayError> {
    Ok(Json(relay.stats().await?))
}
