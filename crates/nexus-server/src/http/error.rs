//! The one mapping of errors to the wire: every failure becomes
//! `{"error","message","details"}` with its status (and `Retry-After` when it has one). Internal
//! failures answer `internal_error` quoting the request id and are logged, never detailed to the
//! client.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexus_proto::{ErrorBody, ErrorCode};

use super::observe::current_request_id;
use crate::domain::RelayError;

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
                if let Some(secs) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
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
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
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
