//! The MCP layer's one error type, [`ToolError`], and the one place where failures become MCP
//! errors (issue 8: "errors are MCP tool errors carrying the protocol error code and what to do").
//!
//! Every failure of a tool is a tool result with `isError: true` whose text is one compact JSON
//! object `{"error": code, "message"?, "hint", "details"?, "retryAfter"?}` followed by the hint on
//! its own line, so a model reads what happened and what to do next. Codes are the protocol's
//! (SPEC §2 "Error codes", passed through from the relay) or the CLI's own (`transport_error`,
//! `non_json_response`, `invalid_session_id`, …, SPEC §3), plus `missing_agent_id` and
//! `invalid_arguments` for this layer. Nothing here panics or ends the server: an unreachable
//! relay, an unknown session or a used code are answers, not crashes. Resource reads have no
//! `isError`; there the same error becomes a JSON-RPC error ([`ToolError::into_mcp_error`]).

use rmcp::ErrorData;
use rmcp::model::{ContentBlock, ErrorCode, IntoContents};
use serde_json::{Map, Value, json};

use super::identity::AgentSource;
use crate::output::Failure;
use crate::state::Home;

/// A failed tool call: the code, the relay's or client's message, and what to do about it.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolError {
    pub code: String,
    pub message: Option<String>,
    pub hint: String,
    /// The relay's `details` (which field was wrong), when it sent them.
    pub details: Option<Value>,
    /// The relay's `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

impl ToolError {
    /// An error with the standard hint for `code`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: Some(message.into()).filter(|m: &String| !m.is_empty()),
            hint: hint(code).to_owned(),
            details: None,
            retry_after: None,
        }
    }

    /// Replaces the standard hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    /// A tool argument the schema allowed but the tool cannot use.
    pub fn invalid_arguments(message: impl Into<String>) -> Self {
        Self::new("invalid_arguments", message)
    }

    /// No agent id configured anywhere.
    pub fn missing_agent_id(home: &Home) -> Self {
        Self::new(
            "missing_agent_id",
            "this MCP server has no agent id, so it cannot create, join or claim sessions",
        )
        .with_hint(format!(
            "Ask your human to configure an agent id for the nexus MCP server: `--agent-id <ID>` in its command line, the NEXUS_AGENT_ID environment variable, or \"agentId\" in {}. Ids are 1-128 characters of A-Z a-z 0-9 . _ - ; sessions you already joined keep working.",
            home.config_path().display()
        ))
    }

    /// A configured agent id that does not match the protocol's pattern.
    pub fn invalid_agent_id(source: AgentSource, problem: &str) -> Self {
        Self::new("invalid_agent_id", format!("the agent id from {} is invalid: {problem}", source.label()))
            .with_hint(format!(
                "Ask your human to fix {}: 1-128 characters of A-Z a-z 0-9 . _ - (not `system`, `.` or `..`).",
                source.label()
            ))
    }

    /// Maps a CLI failure (a server error body passed through, a transport failure or one of the
    /// CLI's own errors) to a tool error. The bash-compatible `{"error": "<sentence>"}` bodies are
    /// given proper codes here.
    pub fn from_failure(f: &Failure) -> Self {
        let body: Option<Map<String, Value>> = match serde_json::from_str(&f.stdout) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        };
        let Some(body) = body else {
            return Self::new("client_error", f.stdout.clone());
        };
        let error = body.get("error").and_then(Value::as_str).unwrap_or("");
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (code, message) = match error {
            // The CLI's sentences (kept for nexus.sh compatibility), turned into codes.
            "missing --agent-id" | "missing --agent-id and no persisted agent-id found" => {
                ("missing_agent_id", Some(error.to_owned()))
            }
            "no session key found" => ("no_session_key", Some(error.to_owned())),
            "session not found locally — join or claim first" => {
                ("unknown_session", Some(error.to_owned()))
            }
            e if is_code(e) => (e, message),
            "" => ("client_error", Some(f.stdout.clone())),
            sentence => ("client_error", Some(sentence.to_owned())),
        };
        let mut err = Self::new(code, message.unwrap_or_default());
        err.details = body.get("details").filter(|d| !d.is_null()).cloned();
        err.retry_after = f.retry_after;
        if let Some(s) = err.retry_after {
            err.hint = format!("{} The relay asked to wait {s} s.", err.hint);
        }
        err
    }

    /// The JSON object of the error (what the model reads first).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("error".into(), json!(self.code));
        if let Some(msg) = &self.message {
            m.insert("message".into(), json!(msg));
        }
        m.insert("hint".into(), json!(self.hint));
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        if let Some(s) = self.retry_after {
            m.insert("retryAfter".into(), json!(s));
        }
        Value::Object(m)
    }

    /// The error as a JSON-RPC error, for requests without tool results (`resources/read`,
    /// `resources/subscribe`): an unknown or gone session is "resource not found", bad input is
    /// "invalid params", anything else "internal error"; the JSON object travels in `data`.
    pub fn into_mcp_error(self) -> ErrorData {
        let code = match self.code.as_str() {
            "session_not_found"
            | "unknown_session"
            | "invalid_session_id"
            | "agent_not_in_session"
            | "forbidden" => ErrorCode::RESOURCE_NOT_FOUND,
            "invalid_arguments" | "missing_agent_id" | "invalid_agent_id" => {
                ErrorCode::INVALID_PARAMS
            }
            _ => ErrorCode::INTERNAL_ERROR,
        };
        let message = format!(
            "{}: {}",
            self.code,
            self.message.as_deref().unwrap_or(&self.hint)
        );
        ErrorData::new(code, message, Some(self.to_json()))
    }
}

/// `{"error": …}` then the hint on the next line.
impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(format!(
            "{}\n{}",
            self.to_json(),
            self.hint
        ))]
    }
}

/// A machine code (`snake_case`), as opposed to one of the CLI's sentences.
fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// What to do about each error, written for a model.
pub fn hint(code: &str) -> &'static str {
    match code {
        // The relay's codes (SPEC §2).
        "session_not_found" => {
            "The session expired or never existed on this relay. Create a new one with create_session and ask your human to share the new pairing link with the other agent (or claim a fresh link they give you)."
        }
        "agent_not_in_session" => {
            "You are not (or no longer) a member of this session — agents silent for too long are removed. Rejoin with join, or claim a new pairing link."
        }
        "agent_not_found" => {
            "This agent is not a member of the session any more; there is nothing to leave."
        }
        "forbidden" => {
            "Not allowed: only members may send or renew, and the creator cannot leave (the session expires by itself after its TTL of silence). Check the session and your agent id with status."
        }
        "code_not_found" => {
            "No such pairing code. Check it with your human (codes look like WORD-WORD-XXXXX; the full pairing URL works too) or ask for a new link."
        }
        "code_expired_or_used" => {
            "This pairing code was already used or has expired (codes are single use and short-lived). Ask your human for a new pairing link from the other agent."
        }
        "session_full" => {
            "The session has reached its maxAgents. Ask its creator for a session with more room."
        }
        "agent_id_taken" => {
            "Another member of this session already uses your agent id. Ask your human to configure a different agent id for this MCP server, then claim a new link."
        }
        "invalid_session_key" => {
            "The relay refused the saved session key for this session. Rejoin through a new pairing link; the old local state can be dropped with leave."
        }
        "missing_session_key" => {
            "The relay requires the session key, and none is saved for this session. Rejoin through a new pairing link."
        }
        "creator_identity_conflict" => {
            "The creator id and the agent id differ. Check the agent id configured for this MCP server."
        }
        "missing_agent_id" => {
            "Configure an agent id for this MCP server (--agent-id, NEXUS_AGENT_ID or agentId in config.json)."
        }
        "invalid_agent_id" => {
            "Agent ids are 1-128 characters of A-Z a-z 0-9 . _ - (not `system`, `.` or `..`). Fix the configured agent id."
        }
        "invalid_request" | "invalid_body" => {
            "The relay refused a value; `details` names the field. Fix it and call the tool again."
        }
        "idempotency_key_reused" => {
            "A retry reused an idempotency key with a different message. Send again."
        }
        "payload_too_large" => {
            "The message is too large for this relay (64 KiB by default). Split it into several messages."
        }
        "rate_limit_exceeded" => {
            "Too many requests to the relay. Wait a little (see retryAfter), then retry."
        }
        "session_quota_exceeded" => {
            "The session holds the most messages it may. Wait for older messages to expire, or start a new session."
        }
        "server_at_capacity" => {
            "The relay holds the most sessions it may. Retry later or use another relay."
        }
        "server_busy" => {
            "Too many long-polls are waiting on this relay. Retry shortly, or poll without wait."
        }
        "store_unavailable" => {
            "The relay cannot reach its storage right now; nothing was lost. Wait a second (see retryAfter), then retry."
        }
        "internal_error" => {
            "The relay failed on its side. Retry; if it keeps failing, tell your human (the message quotes a request id)."
        }
        "not_found" | "method_not_allowed" => {
            "The relay did not understand the request; it may not speak this version of the protocol. Check the server URL."
        }
        // The client's codes (SPEC §3).
        "transport_error" => {
            "The relay did not answer (refused, timed out, DNS or TLS). Check that the server URL (--url, NEXUS_URL or `nexus config`) is right and reachable, then retry."
        }
        "non_json_response" => {
            "Something that is not the relay answered (a proxy or a web page). Check the server URL, then retry."
        }
        "invalid_session_id" => {
            "That is neither a session id nor a local alias. Call list_sessions to see your sessions."
        }
        "unknown_session" => {
            "This session is not known locally. Call list_sessions, or join / claim it first."
        }
        "no_session_key" => {
            "No key is saved for this session, so leaving cannot be verified. The session expires by itself; you can simply stop using it."
        }
        "invalid_code" => {
            "Pass the pairing code (WORD-WORD-XXXXX) or the full pairing URL your human gave you (https://…/p/CODE)."
        }
        "invalid_alias" => "An alias must be a non-empty name.",
        "json_not_supported" => {
            "This relay does not accept JSON messages. Send the content as text instead."
        }
        "leave_not_confirmed" => {
            "The relay did not confirm the leave; local state was kept. Retry leave later."
        }
        "local_state_error" => {
            "The local state folder (NEXUS_HOME or ~/.config/messaging) could not be read or written. Tell your human to check its permissions and free space."
        }
        "invalid_cursor" => "Cursors are the decimal strings the relay returns in nextCursor.",
        // This layer's own.
        "invalid_arguments" => "Check the tool's arguments against its schema and call it again.",
        "cancelled" => "The call was cancelled before the relay answered; nothing was consumed.",
        _ => "Unexpected error; the message says more. Retry once, then tell your human.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_errors_keep_their_code_and_get_a_specific_hint() {
        let f =
            Failure::passthrough(r#"{"error":"session_not_found","message":"no such session"}"#);
        let e = ToolError::from_failure(&f);
        assert_eq!(e.code, "session_not_found");
        assert_eq!(e.message.as_deref(), Some("no such session"));
        assert!(e.hint.contains("create_session"));
        assert!(e.hint.contains("pairing link"));
        let v = e.to_json();
        assert_eq!(v["error"], "session_not_found");
        assert_eq!(v["hint"], e.hint.as_str());
    }

    #[test]
    fn every_protocol_code_has_its_own_hint() {
        let fallback = hint("no_such_code_anywhere");
        for code in nexus_proto::error::ErrorCode::ALL {
            assert_ne!(hint(code.as_str()), fallback, "{}", code.as_str());
        }
        for code in ["transport_error", "non_json_response", "invalid_session_id"] {
            assert_ne!(hint(code), fallback, "{code}");
        }
    }

    #[test]
    fn cli_sentences_become_codes() {
        let cases = [
            ("missing --agent-id", "missing_agent_id"),
            (
                "missing --agent-id and no persisted agent-id found",
                "missing_agent_id",
            ),
            ("no session key found", "no_session_key"),
            (
                "session not found locally — join or claim first",
                "unknown_session",
            ),
            ("something odd happened", "client_error"),
        ];
        for (sentence, code) in cases {
            let e = ToolError::from_failure(&Failure::msg(sentence));
            assert_eq!(e.code, code, "{sentence}");
            assert_eq!(e.message.as_deref(), Some(sentence));
        }
        let e = ToolError::from_failure(&Failure::transport("connection refused"));
        assert_eq!(e.code, "transport_error");
        assert!(e.hint.contains("server URL"));
        assert_eq!(
            ToolError::from_failure(&Failure::non_json()).code,
            "non_json_response"
        );
    }

    #[test]
    fn details_and_retry_after_travel() {
        let mut f = Failure::passthrough(
            r#"{"error":"rate_limit_exceeded","message":"slow down","details":null}"#,
        );
        f.retry_after = Some(7);
        let e = ToolError::from_failure(&f);
        assert_eq!(e.retry_after, Some(7));
        assert!(e.hint.ends_with("The relay asked to wait 7 s."));
        assert_eq!(e.to_json()["retryAfter"], 7);
        assert!(e.to_json().get("details").is_none(), "null details dropped");
        let f = Failure::passthrough(
            r#"{"error":"invalid_request","message":"bad","details":[{"field":"ttl","problem":"too big"}]}"#,
        );
        assert_eq!(
            ToolError::from_failure(&f).to_json()["details"][0]["field"],
            "ttl"
        );
    }

    #[test]
    fn rendered_as_json_then_hint() {
        let e = ToolError::new("code_expired_or_used", "used");
        let blocks = e.clone().into_contents();
        assert_eq!(blocks.len(), 1);
        let text = &blocks[0].as_text().unwrap().text;
        let (first, second) = text.split_once('\n').unwrap();
        let v: Value = serde_json::from_str(first).unwrap();
        assert_eq!(v["error"], "code_expired_or_used");
        assert_eq!(second, e.hint);
    }

    #[test]
    fn resource_errors_map_to_json_rpc_codes() {
        let e = ToolError::new("session_not_found", "gone").into_mcp_error();
        assert_eq!(e.code, ErrorCode::RESOURCE_NOT_FOUND);
        assert_eq!(e.data.as_ref().unwrap()["error"], "session_not_found");
        let e = ToolError::new("transport_error", "refused").into_mcp_error();
        assert_eq!(e.code, ErrorCode::INTERNAL_ERROR);
        let e = ToolError::invalid_arguments("bad uri").into_mcp_error();
        assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    }
}
