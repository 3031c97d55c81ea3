//! Extractors whose rejections are protocol errors: path segments, the raw body (size-limited:
//! 413 `payload_too_large`) and header values. Bodies are parsed as JSON by the domain, after the
//! checks SPEC orders before them.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use nexus_proto::ErrorCode;

use crate::domain::RelayError;

/// Path parameters, with JSON rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(RelayError))]
pub struct PathParams<T>(pub T);

/// The request body as bytes, at most `MAX_BODY_BYTES`.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = RelayError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(rejection) if rejection.status().as_u16() == 413 => Err(RelayError::new(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than this server accepts (MAX_BODY_BYTES)",
            )),
            Err(rejection) => Err(RelayError::new(
                ErrorCode::InvalidBody,
                format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ),
            )),
        }
    }
}

/// A header's value; bytes that are not UTF-8 are replaced, so they fail validation later.
pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

pub const AGENT_ID: &str = "x-agent-id";
pub const SESSION_KEY: &str = "x-session-key";
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
