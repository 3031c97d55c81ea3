//! Error codes and the error body (SPEC §2 "Error codes"): every failure is
//! `{"error": "<code>", "message": "<human text>", "details": [{"field", "problem"}]}`.
//!
//! The HTTP status is not a function of the code alone (`invalid_session_key` is 401 on leave and
//! 403 on send), so the server decides the status; [`ErrorCode::default_status`] gives the usual one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every error code the relay answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidBody,
    InvalidRequest,
    MissingAgentId,
    InvalidAgentId,
    CreatorIdentityConflict,
    MissingSessionKey,
    InvalidSessionKey,
    Forbidden,
    AgentNotInSession,
    SessionNotFound,
    AgentNotFound,
    CodeNotFound,
    CodeExpiredOrUsed,
    SessionFull,
    AgentIdTaken,
    IdempotencyKeyReused,
    PayloadTooLarge,
    RateLimitExceeded,
    SessionQuotaExceeded,
    ServerAtCapacity,
    /// Too many long-polls are parked on this server (`MAX_WAITERS`); retry shortly.
    ServerBusy,
    /// The relay's shared store (Redis) cannot be reached; retry shortly.
    StoreUnavailable,
    InternalError,
    /// No route has this path.
    NotFound,
    /// The path exists but not with this method.
    MethodNotAllowed,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 25] = [
        Self::InvalidBody,
        Self::InvalidRequest,
        Self::MissingAgentId,
        Self::InvalidAgentId,
        Self::CreatorIdentityConflict,
        Self::MissingSessionKey,
        Self::InvalidSessionKey,
        Self::Forbidden,
        Self::AgentNotInSession,
        Self::SessionNotFound,
        Self::AgentNotFound,
        Self::CodeNotFound,
        Self::CodeExpiredOrUsed,
        Self::SessionFull,
        Self::AgentIdTaken,
        Self::IdempotencyKeyReused,
        Self::PayloadTooLarge,
        Self::RateLimitExceeded,
        Self::SessionQuotaExceeded,
        Self::ServerAtCapacity,
        Self::ServerBusy,
        Self::StoreUnavailable,
        Self::InternalError,
        Self::NotFound,
        Self::MethodNotAllowed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidBody => "invalid_body",
            Self::InvalidRequest => "invalid_request",
            Self::MissingAgentId => "missing_agent_id",
            Self::InvalidAgentId => "invalid_agent_id",
            Self::CreatorIdentityConflict => "creator_identity_conflict",
            Self::MissingSessionKey => "missing_session_key",
            Self::InvalidSessionKey => "invalid_session_key",
            Self::Forbidden => "forbidden",
            Self::AgentNotInSession => "agent_not_in_session",
            Self::SessionNotFound => "session_not_found",
            Self::AgentNotFound => "agent_not_found",
            Self::CodeNotFound => "code_not_found",
            Self::CodeExpiredOrUsed => "code_expired_or_used",
            Self::SessionFull => "session_full",
            Self::AgentIdTaken => "agent_id_taken",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::SessionQuotaExceeded => "session_quota_exceeded",
            Self::ServerAtCapacity => "server_at_capacity",
            Self::ServerBusy => "server_busy",
            Self::StoreUnavailable => "store_unavailable",
            Self::InternalError => "internal_error",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The usual HTTP status for this code.
    pub fn default_status(self) -> u16 {
        match self {
            Self::InvalidBody
            | Self::InvalidRequest
            | Self::MissingAgentId
            | Self::InvalidAgentId
            | Self::CreatorIdentityConflict => 400,
            Self::MissingSessionKey => 401,
            Self::InvalidSessionKey | Self::Forbidden | Self::AgentNotInSession => 403,
            Self::SessionNotFound
            | Self::AgentNotFound
            | Self::CodeNotFound
            | Self::CodeExpiredOrUsed
            | Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::SessionFull | Self::AgentIdTaken | Self::IdempotencyKeyReused => 409,
            Self::PayloadTooLarge => 413,
            Self::RateLimitExceeded | Self::SessionQuotaExceeded => 429,
            Self::InternalError => 500,
            Self::ServerAtCapacity | Self::ServerBusy | Self::StoreUnavailable => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One validation problem: which field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// The body of every error response. `error` is a plain string so that clients can carry codes
/// from servers newer than themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldProblem>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()));
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert!((400..600).contains(&code.default_status()));
        }
    }
}
