//! The domain's error type: a protocol refusal (code, status, message, details) or a failure of
//! the layers below. `http::error` maps it to the wire, in one place.

use nexus_proto::{ErrorCode, FieldProblem};

use crate::secrets::RandomError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The request was refused by a protocol rule.
    #[error("{code}: {message}")]
    Refused {
        code: ErrorCode,
        status: u16,
        message: String,
        details: Option<Vec<FieldProblem>>,
        /// Seconds for `Retry-After`.
        retry_after: Option<u64>,
    },
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] RandomError),
    /// An invariant that should hold did not (answered `internal_error`, logged).
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl RelayError {
    /// A refusal with the code's usual status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            status: code.default_status(),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// `invalid_request` naming each bad field.
    pub fn invalid_request(details: Vec<FieldProblem>) -> Self {
        let fields: Vec<&str> = details.iter().map(|d| d.field.as_str()).collect();
        let message = format!("invalid request: check {}", fields.join(", "));
        Self::new(ErrorCode::InvalidRequest, message).with_details(details)
    }

    pub fn with_status(mut self, new: u16) -> Self {
        if let Self::Refused { status, .. } = &mut self {
            *status = new;
        }
        self
    }

    pub fn with_details(mut self, new: Vec<FieldProblem>) -> Self {
        if let Self::Refused { details, .. } = &mut self {
            *details = Some(new);
        }
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        if let Self::Refused { retry_after, .. } = &mut self {
            *retry_after = Some(secs);
        }
        self
    }

    /// The protocol code this error answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Refused { code, .. } => *code,
            _ => ErrorCode::InternalError,
        }
    }
}
