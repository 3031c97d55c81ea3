//! Session endpoints: `PUT /v1/sessions`, `GET /v1/sessions/:id`, `POST …/join`,
//! `DELETE …/agents/:agentId`, `POST …/renew`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::ErrorBody;
use nexus_proto::api::{
    CreateSessionRequest, Joined, Left, RenewRequest, Renewed, SessionCreated, SessionStatus,
};

use super::AppState;
use super::extract::{Body, PathParams, ProtocolHeaders};
use crate::domain::RelayError;

/// Create a session.
#[utoipa::path(
    put,
    path = "/v1/sessions",
    tag = "sessions",
    params(("X-Agent-Id" = Option<String>, Header, pattern = r"^[A-Za-z0-9._-]{1,128}$", description = "The calling agent: `^[A-Za-z0-9._-]{1,128}$`, not `.`, `..` or `system`")),
    request_body(content = CreateSessionRequest, description = "All fields optional; an empty body is `{}`"),
    responses(
        (status = 201, description = "Created; with a creator, its `sessionKey`", body = SessionCreated),
        (status = 400, description = "`invalid_body`, `invalid_request` (details name the field), `invalid_agent_id` or `creator_identity_conflict`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over `MAX_BODY_BYTES`", body = ErrorBody),
        (status = 429, description = "`rate_limit_exceeded`: too many requests from this address (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "`internal_error`: a bug; the message quotes the request id", body = ErrorBody),
        (status = 503, description = "`server_at_capacity`: `MAX_SESSIONS` active sessions", body = ErrorBody),
    )
)]
pub async fn create(
    State(relay): State<AppState>,
    headers: ProtocolHeaders,
    Body(body): Body,
) -> Result<(StatusCode, Json<SessionCreated>), RelayError> {
    let created = relay
        .create_session(headers.agent_id().as_deref(), &body)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// A session's state and members.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}",
    tag = "sessions",
    params(("id" = String, Path, description = "Session id: 48 lowercase hex characters (anything else is `session_not_found`)")),
    responses(
        (status = 200, description = "The session", body = SessionStatus),
        (status = 404, description = "`session_not_found`: unknown or expired", body = ErrorBody),
        (status = 429, description = "`rate_limit_exceeded`: too many requests from this address (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "`internal_error`: a bug; the message quotes the request id", body = ErrorBody),
    )
)]
pub async fn status(
    State(relay): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<SessionStatus>, RelayError> {
    Ok(Json(relay.session_status(&id).await?))
}

/// Join a session.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/join",
    tag = "sessions",
    params(("id" = String, Path, description = "Session id: 48 lowercase hex characters (anything else is `session_not_found`)"), ("X-Agent-Id" = String, Header, pattern = r"^[A-Za-z0-9._-]{1,128}$", description = "The calling agent: `^[A-Za-z0-9._-]{1,128}$`, not `.`, `..` or `system`")),
    responses(
        (status = 200, description = "Joined; the agent's `sessionKey`", body = Joined),
        (status = 400, description = "`missing_agent_id` or `invalid_agent_id`", body = ErrorBody),
        (status = 404, description = "`session_not_found`", body = ErrorBody),
        (status = 409, description = "`session_full` or `agent_id_taken`", body = ErrorBody),
        (status = 429, description = "`rate_limit_exceeded`: too many requests from this address (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "`internal_error`: a bug; the message quotes the request id", body = ErrorBody),
    )
)]
pub async fn join(
    State(relay): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: ProtocolHeaders,
) -> Result<Json<Joined>, RelayError> {
    Ok(Json(relay.join(&id, headers.agent_id().as_deref()).await?))
}

/// Leave a session (not the creator).
#[utoipa::path(
    delete,
    path = "/v1/sessions/{id}/agents/{agent_id}",
    tag = "sessions",
    params(
        ("id" = String, Path, description = "Session id: 48 lowercase hex characters (anything else is `session_not_found`)"),
        ("agent_id" = String, Path, description = "The agent leaving; must equal `X-Agent-Id`"),
        ("X-Agent-Id" = String, Header, pattern = r"^[A-Za-z0-9._-]{1,128}$", description = "The calling agent: `^[A-Za-z0-9._-]{1,128}$`, not `.`, `..` or `system`"),
        ("X-Session-Key" = String, Header, description = "The agent's session key"),
    ),
    responses(
        (status = 200, description = "Removed", body = Left),
        (status = 400, description = "`missing_agent_id` or `invalid_agent_id`", body = ErrorBody),
        (status = 401, description = "`missing_session_key` or `invalid_session_key`", body = ErrorBody),
        (status = 403, description = "`forbidden`: leaving for another agent, or the creator", body = ErrorBody),
        (status = 404, description = "`session_not_found` or `agent_not_found`", body = ErrorBody),
        (status = 429, description = "`rate_limit_exceeded`: too many requests from this address (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "`internal_error`: a bug; the message quotes the request id", body = ErrorBody),
    )
)]
pub async fn leave(
    State(relay): State<AppState>,
    PathParams((id, agent)): PathParams<(String, String)>,
    headers: ProtocolHeaders,
) -> Result<Json<Left>, RelayError> {
    let left = relay
        .leave(
            &id,
            &agent,
            headers.agent_id().as_deref(),
            headers.session_key().as_deref(),
        )
        .await?;
    Ok(Json(left))
}

/// Renew a session (slide its expiry, optionally change its TTL).
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/renew",
    tag = "sessions",
    params(("id" = String, Path, description = "Session id: 48 lowercase hex characters (anything else is `session_not_found`)"), ("X-Agent-Id" = String, Header, pattern = r"^[A-Za-z0-9._-]{1,128}$", description = "The calling agent: `^[A-Za-z0-9._-]{1,128}$`, not `.`, `..` or `system`")),
    request_body(content = RenewRequest, description = "Optional; an empty body is `{}`"),
    responses(
        (status = 200, description = "Renewed", body = Renewed),
        (status = 400, description = "`invalid_body`, `invalid_request`, `missing_agent_id` or `invalid_agent_id`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member", body = ErrorBody),
        (status = 404, description = "`session_not_found`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over `MAX_BODY_BYTES`", body = ErrorBody),
        (status = 429, description = "`rate_limit_exceeded`: too many requests from this address (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "`internal_error`: a bug; the message quotes the request id", body = ErrorBody),
    )
)]
pub async fn renew(
    State(relay): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: ProtocolHeaders,
    Body(body): Body,
) -> Result<Json<Renewed>, RelayError> {
    let renewed = relay
        .renew(&id, headers.agent_id().as_deref(), &body)
        .await?;
    Ok(Json(renewed))
}
