//! The one mapping of errors to the wire: every failure becomes
//! `{"error","message","details"}` with its status (and `Retry-After` when it has one). Internal
//! failures answer `internal_error` quoting the request id and are logged, never detailed to the
//! client; an unreachable shared store (Redis) answers 503 `store_unavailable` with
//! `Retry-After: 1`. The error code rides along as a response extension for `/metrics`.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexus_proto::{ErrorBody, ErrorCode};

use super::observe::current_request_id;
use crate::domain::RelayError;
use crate::store::StoreError;

impl IntoResponse for RelayError {
    fn into_response(self) -> Response {
        match self {
            RelayError::Refused {
                code,
                status,
                message,
                details,
                retry_after,
            } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let body = ErrorBody {
                    error: code.as_str().to_owned(),
                    message,
                    details,
                };
                let mut response = (status, Json(body)).into_response();
                // For `/metrics` (429s by code, claims by outcome).
                response.extensions_mut().insert(code);
                if let Some(secs) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                response
            }
            RelayError::Store(StoreError::Unavailable(detail)) => {
                tracing::error!(error = %detail, "store unavailable");
                let body = ErrorBody {
                    error: ErrorCode::StoreUnavailable.as_str().to_owned(),
                    message: "the relay's store cannot be reached right now; retry shortly"
                        .to_owned(),
                    details: None,
                };
                let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
                response
                    .extensions_mut()
                    .insert(ErrorCode::StoreUnavailable);
                response
            }
            internal => {
                tracing::error!(error = %internal, "internal error");
                internal_error_response()
            }
        }
    }
}

/// The `internal_error` answer (also used for panics caught by the middleware).
pub fn internal_error_response() -> Response {
    let id = current_request_id().unwrap_or_default();
    let body = ErrorBody {
        error: ErrorCode::InternalError.as_str().to_owned(),
        message: format!("internal error; please report it quoting request id {id}"),
        details: None,
    };
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
    response.extensions_mut().insert(ErrorCode::InternalError);
    response
}

impl From<PathRejection> for RelayError {
    fn from(rejection: PathRejection) -> Self {
        RelayError::new(
            ErrorCode::InvalidRequest,
            format!("invalid path: {}", rejection.body_text()),
        )
        .with_status(rejection.status().as_u16())
    }
}
