//! Pairing endpoints: `PUT /v1/pair`, `POST /v1/pair/:code/claim`, `GET /v1/pair/:code/status`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::ErrorBody;
use nexus_proto::api::{Claimed, CreatePairRequest, PairCreated, PairStatus};

use super::AppState;
use super::extract::{Body, PathParams, ProtocolHeaders};
use super::limits::ClientIp;
use crate::domain::RelayError;

/// Create a pairing code for a session.
#[utoipa::path(
    put,
    path = "/v1/pair",
    tag = "pairing",
    request_body = CreatePairRequest,
    responses(
        (status = 201, description = "A single-use code and its link", body = PairCreated),
        (status = 400, description = "`invalid_body` or `invalid_request`", body = ErrorBody),
        (status = 404, description = "`session_not_found`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over `MAX_BODY_BYTES`", body = ErrorBody),
        (status = 429, description = "`rate_limit_exceeded`: too many requests from this address (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "`internal_error`: a bug; the message quotes the request id", body = ErrorBody),
    )
)]
pub async fn create(
    State(relay): State<AppState>,
    Body(body): Body,
) -> Result<(StatusCode, Json<PairCreated>), RelayError> {
    Ok((StatusCode::CREATED, Json(relay.create_code(&body).await?)))
}

/// Claim a pairing code: joins the agent to the code's session.
#[utoipa::path(
    post,
    path = "/v1/pair/{code}/claim",
    tag = "pairing",
    params(("code" = String, Path, description = "Pairing code `WORD-WORD-XXXXX` (case-insensitive)"), ("X-Agent-Id" = String, Header, pattern = r"^[A-Za-z0-9._-]{1,128}$", description = "The calling agent: `^[A-Za-z0-9._-]{1,128}$`, not `.`, `..` or `system`")),
    responses(
        (status = 200, description = "Claimed; the agent's `sessionKey`", body = Claimed),
        (status = 400, description = "`missing_agent_id` or `invalid_agent_id`", body = ErrorBody),
        (status = 404, description = "`code_not_found`, `code_expired_or_used` or `session_not_found`", body = ErrorBody),
        (status = 409, description = "`session_full` or `agent_id_taken` (the code stays pending)", body = ErrorBody),
        (status = 429, description = "`rate_limit_exceeded`: too many requests or failed claims (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "`internal_error`: a bug; the message quotes the request id", body = ErrorBody),
    )
)]
pub async fn claim(
    State(relay): State<AppState>,
    PathParams(code): PathParams<String>,
    ClientIp(client): ClientIp,
    headers: ProtocolHeaders,
) -> Result<Json<Claimed>, RelayError> {
    let claimed = relay
        .claim(&code, headers.agent_id().as_deref(), client)
        .await?;
    Ok(Json(claimed))
}

/// A pairing code's state.
#[utoipa::path(
    get,
    path = "/v1/pair/{code}/status",
    tag = "pairing",
    params(("code" = String, Path, description = "Pairing code `WORD-WORD-XXXXX` (case-insensitive)")),
    responses(
        (status = 200, description = "`pending`, `claimed` or `expired`", body = PairStatus),
        (status = 404, description = "`code_not_found`", body = ErrorBody),
        (status = 429, description = "`rate_limit_exceeded`: too many requests from this address (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "`internal_error`: a bug; the message quotes the request id", body = ErrorBody),
    )
)]
pub async fn status(
    State(relay): State<AppState>,
    PathParams(code): PathParams<String>,
) -> Result<Json<PairStatus>, RelayError> {
    Ok(Json(relay.code_status(&code).await?))
}
