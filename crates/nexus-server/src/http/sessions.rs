//! Session endpoints: `PUT /v1/sessions`, `GET /v1/sessions/:id`, `POST …/join`,
//! `DELETE …/agents/:agentId`, `POST …/renew`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use nexus_proto::api::{Joined, Left, Renewed, SessionCreated, SessionStatus};

use super::AppState;
use super::extract::{AGENT_ID, Body, PathParams, SESSION_KEY, header};
use crate::domain::RelayError;

pub async fn create(
    State(relay): State<AppState>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<SessionCreated>), RelayError> {
    let created = relay
        .create_session(header(&headers, AGENT_ID).as_deref(), &body)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn status(
    State(relay): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<SessionStatus>, RelayError> {
    Ok(Json(relay.session_status(&id).await?))
}

pub async fn join(
    State(relay): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
) -> Result<Json<Joined>, RelayError> {
    Ok(Json(
        relay
            .join(&id, header(&headers, AGENT_ID).as_deref())
            .await?,
    ))
}

pub async fn leave(
    State(relay): State<AppState>,
    PathParams((id, agent)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Left>, RelayError> {
    let left = relay
        .leave(
            &id,
            &agent,
            header(&headers, AGENT_ID).as_deref(),
            header(&headers, SESSION_KEY).as_deref(),
        )
        .await?;
    Ok(Json(left))
}

pub async fn renew(
    State(relay): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<Renewed>, RelayError> {
    let renewed = relay
        .renew(&id, header(&headers, AGENT_ID).as_deref(), &body)
        .await?;
    Ok(Json(renewed))
}
