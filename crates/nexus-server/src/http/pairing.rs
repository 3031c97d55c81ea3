//! Pairing endpoints: `PUT /v1/pair`, `POST /v1/pair/:code/claim`, `GET /v1/pair/:code/status`.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use nexus_proto::api::{Claimed, PairCreated, PairStatus};

use super::AppState;
use super::extract::{AGENT_ID, Body, PathParams, header};
use super::limits::ClientIp;
use crate::domain::RelayError;

pub async fn create(
    State(relay): State<AppState>,
    Body(body): Body,
) -> Result<(StatusCode, Json<PairCreated>), RelayError> {
    Ok((StatusCode::CREATED, Json(relay.create_code(&body).await?)))
}

pub async fn claim(
    State(relay): State<AppState>,
    PathParams(code): PathParams<String>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Result<Json<Claimed>, RelayError> {
    let claimed = relay
        .claim(&code, header(&headers, AGENT_ID).as_deref(), client)
        .await?;
    Ok(Json(claimed))
}

pub async fn status(
    State(relay): State<AppState>,
    PathParams(code): PathParams<String>,
) -> Result<Json<PairStatus>, RelayError> {
    Ok(Json(relay.code_status(&code).await?))
}
