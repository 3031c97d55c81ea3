//! Message endpoints: `POST /v1/sessions/:id/messages` (201, or 200 for an idempotent repeat) and
//! `GET /v1/sessions/:id/messages` (poll and long-poll).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use nexus_proto::api::{MessageSent, PollResponse};

use super::AppState;
use super::extract::{AGENT_ID, Body, IDEMPOTENCY_KEY, PathParams, SESSION_KEY, header};
use crate::domain::RelayError;

pub async fn send(
    State(relay): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<MessageSent>), RelayError> {
    let sent = relay
        .send(
            &id,
            header(&headers, AGENT_ID).as_deref(),
            header(&headers, SESSION_KEY).as_deref(),
            header(&headers, IDEMPOTENCY_KEY).as_deref(),
            &body,
        )
        .await?;
    let status = if sent.repeated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(sent.receipt)))
}

pub async fn poll(
    State(relay): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<PollResponse>, RelayError> {
    let page = relay
        .poll(&id, header(&headers, AGENT_ID).as_deref(), query.as_deref())
        .await?;
    Ok(Json(page))
}
