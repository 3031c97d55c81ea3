//! `GET /health` (capabilities the CLI negotiates on) and `GET /v1/stats`.

use axum::Json;
use axum::extract::State;
use nexus_proto::ErrorBody;
use nexus_proto::api::{Health, Stats};

use super::AppState;
use crate::domain::RelayError;

/// Liveness and capabilities (not rate-limited).
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    responses((status = 200, description = "The server is up", body = Health))
)]
pub async fn health(State(relay): State<AppState>) -> Json<Health> {
    Json(relay.health())
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
