//! Agent ids (SPEC §1 "Agent"): self-declared, `^[A-Za-z0-9._-]{1,128}$`, never `.` or `..`
//! (they are used as path segments), and never `system`, which the server reserves for greetings.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest accepted agent id, in bytes (all accepted characters are ASCII).
pub const MAX_AGENT_ID_LEN: usize = 128;

/// The agent id the server uses for its own messages (the greeting).
pub const SYSTEM_AGENT_ID: &str = "system";

/// A validated agent id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgentId(String);

/// Why a string is not an acceptable agent id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AgentIdError {
    #[error("agent id must not be empty")]
    Empty,
    #[error("agent id is longer than {MAX_AGENT_ID_LEN} characters")]
    TooLong,
    #[error("agent id may only contain letters, digits, '.', '_' and '-'")]
    BadCharacter,
    #[error("agent id must not be '.' or '..'")]
    DotSegment,
    #[error("agent id 'system' is reserved for the server")]
    Reserved,
}

impl AgentId {
    /// Validates `s` as an agent id a client may use.
    pub fn parse(s: &str) -> Result<Self, AgentIdError> {
        if s.is_empty() {
            return Err(AgentIdError::Empty);
        }
        if s.len() > MAX_AGENT_ID_LEN {
            return Err(AgentIdError::TooLong);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(AgentIdError::BadCharacter);
        }
        if s == "." || s == ".." {
            return Err(AgentIdError::DotSegment);
        }
        if s == SYSTEM_AGENT_ID {
            return Err(AgentIdError::Reserved);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AgentId {
    type Error = AgentIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<AgentId> for String {
    fn from(id: AgentId) -> Self {
        id.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_rejects_the_documented_cases() {
        for ok in ["a", "writer-bot", "A.b_c-9", "..a", "a..", &"x".repeat(128)] {
            assert!(AgentId::parse(ok).is_ok(), "{ok} should be valid");
        }
        assert_eq!(AgentId::parse(""), Err(AgentIdError::Empty));
        assert_eq!(AgentId::parse(&"x".repeat(129)), Err(AgentIdError::TooLong));
        assert_eq!(AgentId::parse("."), Err(AgentIdError::DotSegment));
        assert_eq!(AgentId::parse(".."), Err(AgentIdError::DotSegment));
        assert_eq!(AgentId::parse("system"), Err(AgentIdError::Reserved));
        for bad in ["a b", "a/b", "é", "a\n", "a:b", "a%2F"] {
            assert_eq!(
                AgentId::parse(bad),
                Err(AgentIdError::BadCharacter),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn valid_ids_round_trip(s in "[A-Za-z0-9._-]{1,128}") {
            prop_assume!(s != "." && s != ".." && s != "system");
            let id = AgentId::parse(&s).unwrap();
            prop_assert_eq!(id.as_str(), s.as_str());
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<AgentId>(&json).unwrap(), id);
        }

        #[test]
        fn any_other_character_is_rejected(prefix in "[a-z]{0,5}", c in any::<char>(), suffix in "[a-z]{0,5}") {
            prop_assume!(!(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'));
            let s = format!("{prefix}{c}{suffix}");
            prop_assert!(AgentId::parse(&s).is_err());
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = AgentId::parse(&s);
        }
    }
}
