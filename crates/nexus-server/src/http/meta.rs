//! `GET /health` (capabilities the CLI negotiates on) and `GET /v1/stats`.

use axum::Json;
use axum::extract::State;
use nexus_proto::api::{Health, Stats};

use super::AppState;
use crate::domain::RelayError;

pub async fn health(State(relay): State<AppState>) -> Json<Health> {
    Json(relay.health())
}

pub async fn stats(State(relay): State<AppState>) -> Result<Json<Stats>, RelayError> {
    Ok(Json(relay.stats().await?))
}
