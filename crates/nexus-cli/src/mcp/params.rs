//! The tools' arguments: one struct per tool, whose doc comments become the JSON schema the model
//! sees, and the checks the schema cannot express (issue 8; limits from SPEC §1-§2).
//!
//! Names are camelCase like the protocol's (`maxAgents`, `sessionId` in results). A session
//! argument is a session id or a local alias, as everywhere in the CLI. Checks that only the relay
//! can make (its own TTL cap, greeting length) are left to it: its `invalid_request` comes back
//! with `details` naming the field.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::errors::ToolError;

/// The longest long-poll the protocol allows (SPEC §2: `wait` 0-60).
pub const MAX_WAIT: u64 = nexus_proto::api::MAX_WAIT_SECONDS;
/// `history` without `limit`.
pub const DEFAULT_HISTORY: u64 = 20;
/// The most messages `history` returns.
pub const MAX_HISTORY: u64 = nexus_proto::api::MAX_POLL_LIMIT;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionArgs {
    #[schemars(
        description = "Session lifetime in seconds of silence (sliding: every message, poll and renew \
            restarts it). Default 3660 (about an hour); the relay's maximum is usually \
            86400."
    )]
    pub ttl: Option<u64>,
    /// Most agents that may join, you included (default and maximum: the relay's cap, usually 50).
    pub max_agents: Option<u64>,
    #[schemars(
        description = "A first message every member sees when they first poll (at most 4096 \
            characters), e.g. what the conversation is for."
    )]
    pub greeting: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionArgs {
    /// The session id (48 hex characters) or a local alias set with set_alias.
    pub session: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimArgs {
    #[schemars(
        description = "The pairing code (WORD-WORD-XXXXX, any case) or the full pairing URL \
            (https://relay/p/WORD-WORD-XXXXX) your human gave you."
    )]
    pub code: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendArgs {
    /// The session id or a local alias.
    pub session: String,
    /// The message text. Give text, json, or both.
    pub text: Option<String>,
    /// Structured data for the other agent: any JSON value except null (an object is usual).
    pub json: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollArgs {
    /// The session id or a local alias.
    pub session: String,
    #[schemars(
        description = "Seconds to wait for a message when none is new (0-60). The call returns the \
            moment one arrives. Use it to wait for a reply instead of calling poll in a \
            loop."
    )]
    pub wait: Option<u64>,
    /// Also return each member's presence (last seen).
    pub members: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryArgs {
    /// The session id or a local alias.
    pub session: String,
    /// How many of the most recent messages to return (1-1000, default 20).
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenewArgs {
    /// The session id or a local alias.
    pub session: String,
    /// A new TTL in seconds; without it the current TTL restarts.
    pub ttl: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListSessionsArgs {
    /// Leave out sessions the relay no longer knows (expired or left).
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetAliasArgs {
    /// The session id (or an existing alias) to name.
    pub session: String,
    /// The new name, usable wherever a session is expected (e.g. "review").
    pub alias: String,
}

/// The session argument, trimmed and non-empty.
pub fn session(input: &str) -> Result<&str, ToolError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(ToolError::invalid_arguments(
            "session is empty: give a session id or alias",
        ));
    }
    Ok(s)
}

/// `wait` within 0-60 seconds.
pub fn wait(wait: Option<u64>) -> Result<Option<u64>, ToolError> {
    match wait {
        Some(w) if w > MAX_WAIT => Err(ToolError::invalid_arguments(format!(
            "wait is {w}: at most {MAX_WAIT} seconds"
        ))),
        other => Ok(other),
    }
}

/// `limit` within 1-1000, default 20.
pub fn history_limit(limit: Option<u64>) -> Result<usize, ToolError> {
    match limit.unwrap_or(DEFAULT_HISTORY) {
        0 => Err(ToolError::invalid_arguments("limit must be at least 1")),
        n if n > MAX_HISTORY => Err(ToolError::invalid_arguments(format!(
            "limit is {n}: at most {MAX_HISTORY}"
        ))),
        n => Ok(n as usize),
    }
}

/// The text and payload of a message: at least one, text non-empty, json not null (SPEC §1
/// "Message").
pub fn message(
    text: Option<String>,
    json: Option<Value>,
) -> Result<(String, Option<Value>), ToolError> {
    let text = text.unwrap_or_default();
    let json = json.filter(|v| !v.is_null());
    if text.is_empty() && json.is_none() {
        return Err(ToolError::invalid_arguments(
            "give text, json, or both (json must not be null)",
        ));
    }
    Ok((text, json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_deserialize_from_camel_case() {
        let a: CreateSessionArgs =
            serde_json::from_value(json!({"ttl": 600, "maxAgents": 2, "greeting": "hi"})).unwrap();
        assert_eq!(
            (a.ttl, a.max_agents, a.greeting.as_deref()),
            (Some(600), Some(2), Some("hi"))
        );
        let a: CreateSessionArgs = serde_json::from_value(json!({})).unwrap();
        assert_eq!(a.ttl, None);
        let p: PollArgs =
            serde_json::from_value(json!({"session": "s", "wait": 5, "members": true})).unwrap();
        assert_eq!((p.wait, p.members), (Some(5), Some(true)));
        assert!(
            serde_json::from_value::<PollArgs>(json!({"wait": 5})).is_err(),
            "session required"
        );
        assert!(serde_json::from_value::<CreateSessionArgs>(json!({"ttl": -1})).is_err());
    }

    #[test]
    fn schemas_name_the_fields_and_describe_them() {
        let schema = serde_json::to_value(schemars::schema_for!(SendArgs)).unwrap();
        let props = &schema["properties"];
        assert!(
            props["session"]["description"]
                .as_str()
                .unwrap()
                .contains("alias")
        );
        assert!(props.get("text").is_some() && props.get("json").is_some());
        assert_eq!(schema["required"], json!(["session"]));
        let schema = serde_json::to_value(schemars::schema_for!(CreateSessionArgs)).unwrap();
        assert!(schema["properties"].get("maxAgents").is_some());
    }

    #[test]
    fn value_checks() {
        assert_eq!(session("  abc ").unwrap(), "abc");
        assert_eq!(session(" ").unwrap_err().code, "invalid_arguments");
        assert_eq!(wait(Some(60)).unwrap(), Some(60));
        assert_eq!(wait(None).unwrap(), None);
        assert_eq!(wait(Some(61)).unwrap_err().code, "invalid_arguments");
        assert_eq!(history_limit(None).unwrap(), 20);
        assert_eq!(history_limit(Some(1000)).unwrap(), 1000);
        assert!(history_limit(Some(0)).is_err());
        assert!(history_limit(Some(1001)).is_err());
    }

    #[test]
    fn a_message_needs_text_or_json() {
        assert_eq!(
            message(Some("hi".into()), None).unwrap(),
            ("hi".to_owned(), None)
        );
        assert_eq!(
            message(None, Some(json!({"k": 1}))).unwrap(),
            (String::new(), Some(json!({"k": 1})))
        );
        assert_eq!(
            message(None, Some(json!(false))).unwrap().1,
            Some(json!(false)),
            "false is a value"
        );
        assert!(message(Some(String::new()), Some(Value::Null)).is_err());
        assert!(message(None, None).is_err());
    }
}
