//! Message endpoints: `POST /v1/sessions/:id/messages` (201, or 200 for an idempotent repeat) and
//! `GET /v1/sessions/:id/messages` (poll and long-poll).

use std::borrow::Cow;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexus_proto::ErrorBody;
use nexus_proto::api::{MessageSent, PollResponse, SendRequest};

use super::AppState;
use super::extract::{Body, PathParams, ProtocolHeaders};
use crate::domain::RelayError;

/// A JSON body written by the proto types themselves (the same bytes and `Content-Type` as
/// `axum::Json`, without a serializer call per field).
fn json(body: Vec<u8>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
}

/// Send a message (`text` and/or `json`); secrets are redacted before storage.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/messages",
    tag = "messages",
    params(
        ("id" = String, Path, description = "Session id: 48 lowercase hex characters (anything else is `session_not_found`)"),
        ("X-Agent-Id" = String, Header, pattern = r"^[A-Za-z0-9._-]{1,128}$", description = "The calling agent: `^[A-Za-z0-9._-]{1,128}$`, not `.`, `..` or `system`"),
        ("X-Session-Key" = Option<String>, Header, description = "The agent's session key (64 hex characters)"),
        ("Idempotency-Key" = Option<String>, Header, description = "1-128 visible ASCII characters: a retry returns the original receipt"),
    ),
    request_body(content = SendRequest, description = "At least one of `text` (non-empty) or `json` (not null)"),
    responses(
        (status = 201, description = "Stored", body = MessageSent),
        (status = 200, description = "An idempotent repeat: the original receipt", body = MessageSent),
        (status = 400, description = "`invalid_body`, `invalid_request`, `missing_agent_id` or `invalid_agent_id`", body = ErrorBody),
        (status = 401, description = "`missing_session_key` (server run with `REQUIRE_SESSION_KEY=1`)", body = ErrorBody),
        (status = 403, description = "`forbidden` (not a member) or `invalid_session_key`", body = ErrorBody),
        (status = 404, description = "`session_not_found`", body = ErrorBody),
        (status = 409, description = "`idempotency_key_reused`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over `MAX_BODY_BYTES`", body = ErrorBody),
        (status = 429, description = "`rate_limit_exceeded` (with `Retry-After`) or `session_quota_exceeded`", body = ErrorBody),
        (status = 500, description = "`internal_error`: a bug; the message quotes the request id", body = ErrorBody),
    )
)]
pub async fn send(
    State(relay): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: ProtocolHeaders,
    Body(body): Body,
) -> Result<Response, RelayError> {
    let sent = relay
        .send(
            &id,
            headers.agent_id().as_deref(),
            headers.session_key().as_deref(),
            headers.idempotency_key().as_deref(),
            &body,
        )
        .await?;
    let status = if sent.repeated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, json(sent.receipt.to_json())).into_response())
}

/// Read messages after a cursor; `wait` long-polls.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/messages",
    tag = "messages",
    params(
        ("id" = String, Path, description = "Session id: 48 lowercase hex characters (anything else is `session_not_found`)"),
        ("X-Agent-Id" = String, Header, pattern = r"^[A-Za-z0-9._-]{1,128}$", description = "The calling agent: `^[A-Za-z0-9._-]{1,128}$`, not `.`, `..` or `system`"),
        ("after" = Option<String>, Query, description = "Exclusive cursor (a non-negative integer)"),
        ("members" = Option<bool>, Query, description = "Add presence"),
        ("wait" = Option<u64>, Query, minimum = 0, maximum = 60, description = "Long-poll seconds"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 1000)"),
    ),
    responses(
        (status = 200, description = "A page of messages", body = PollResponse),
        (status = 400, description = "`invalid_request` (a bad query parameter), `missing_agent_id` or `invalid_agent_id`", body = ErrorBody),
        (status = 403, description = "`agent_not_in_session`", body = ErrorBody),
        (status = 404, description = "`session_not_found`", body = ErrorBody),
        (status = 429, description = "`rate_limit_exceeded`: too many requests from this address (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "`internal_error`: a bug; the message quotes the request id", body = ErrorBody),
        (status = 503, description = "`server_busy`: too many parked long-polls (`MAX_WAITERS`); with `Retry-After`", body = ErrorBody),
    )
)]
pub async fn poll(
    State(relay): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: ProtocolHeaders,
    RawQuery(query): RawQuery,
) -> Result<Response, RelayError> {
    // Nothing of the request is kept while a long-poll waits: the header values share the
    // buffer the request was read into, which can then be freed.
    let agent = headers.agent_id().map(Cow::into_owned);
    drop(headers);
    let page = relay.poll(&id, agent.as_deref(), query.as_deref()).await?;
    Ok(json(page.to_json()).into_response())
}
