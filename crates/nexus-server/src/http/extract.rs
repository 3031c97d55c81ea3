//! Extractors whose rejections are protocol errors: path segments, the raw body (size-limited:
//! 413 `payload_too_large`) and the protocol's headers. Bodies are parsed as JSON by the domain,
//! after the checks SPEC orders before them.

use std::borrow::Cow;
use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
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

pub static AGENT_ID: HeaderName = HeaderName::from_static("x-agent-id");
pub static SESSION_KEY: HeaderName = HeaderName::from_static("x-session-key");
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The protocol's request headers (`X-Agent-Id`, `X-Session-Key`, `Idempotency-Key`), looked up
/// by their static names without copying the header map. The first value of each counts.
pub struct ProtocolHeaders {
    agent_id: Option<HeaderValue>,
    session_key: Option<HeaderValue>,
    idempotency_key: Option<HeaderValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for ProtocolHeaders {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let h = &parts.headers;
        Ok(Self {
            agent_id: h.get(&AGENT_ID).cloned(),
            session_key: h.get(&SESSION_KEY).cloned(),
            idempotency_key: h.get(&IDEMPOTENCY_KEY).cloned(),
        })
    }
}

/// A header's value as text; bytes that are not UTF-8 are replaced, so they fail validation
/// later. Borrowed (no copy) when the value is valid UTF-8, as every well-formed one is.
fn text(value: &Option<HeaderValue>) -> Option<Cow<'_, str>> {
    value
        .as_ref()
        .map(|v| match std::str::from_utf8(v.as_bytes()) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(v.as_bytes()),
        })
}

impl ProtocolHeaders {
    pub fn agent_id(&self) -> Option<Cow<'_, str>> {
        text(&self.agent_id)
    }

    pub fn session_key(&self) -> Option<Cow<'_, str>> {
        text(&self.session_key)
    }

    pub fn idempotency_key(&self) -> Option<Cow<'_, str>> {
        text(&self.idempotency_key)
    }
}
