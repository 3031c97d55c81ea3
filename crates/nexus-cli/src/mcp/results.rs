//! What a successful tool call returns (issue 8): one compact JSON object, then one line of
//! guidance for the model — and never a session key.
//!
//! Keys are kept out twice over. Structurally, [`strip_keys`] removes every `sessionKey` field,
//! at any depth, from what the relay returned (create, join and claim replies carry one). Then,
//! because a key could still arrive inside message text, [`scrub`] replaces every key saved in the
//! local state with `[REDACTED:session_key]` in the final text of every tool result and resource
//! (applied once, in `server.rs`). Messages are shown in a compact shape ([`compact_message`]).

use rmcp::model::{ContentBlock, IntoContents};
use serde_json::{Map, Value};

/// What replaces a session key found in a result.
pub const KEY_PLACEHOLDER: &str = "[REDACTED:session_key]";

/// A successful tool result.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolReply {
    pub value: Value,
    pub guidance: String,
}

impl ToolReply {
    pub fn new(value: Value, guidance: impl Into<String>) -> Self {
        Self {
            value,
            guidance: guidance.into(),
        }
    }

    /// The text the model reads: compact JSON without keys, a newline, the guidance.
    pub fn render(mut self) -> String {
        strip_keys(&mut self.value);
        format!("{}\n{}", self.value, self.guidance)
    }
}

impl IntoContents for ToolReply {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.render())]
    }
}

/// Removes every `sessionKey` member, at any depth.
pub fn strip_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("sessionKey");
            m.values_mut().for_each(strip_keys);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_keys),
        _ => {}
    }
}

/// Replaces every occurrence of a known key in `text`. Keys shorter than 16 characters are
/// ignored (a relay issues 64 hex characters; a short string would blank out ordinary text).
pub fn scrub(text: &str, keys: &[String]) -> String {
    let mut out = text.to_owned();
    for k in keys.iter().filter(|k| k.len() >= 16) {
        if out.contains(k.as_str()) {
            out = out.replace(k.as_str(), KEY_PLACEHOLDER);
        }
    }
    out
}

/// A message as tools show it: `cursor`, `agentId`, `text`/`json`, `sentAt`, `verified`. The
/// message `id` and `expiresAt` are left out (no tool takes them; the session's expiry is in
/// `status`). Unknown fields from other relays are dropped too.
pub fn compact_message(m: &Value) -> Value {
    let mut out = Map::new();
    for field in ["cursor", "agentId", "text", "json", "sentAt", "verified"] {
        if let Some(v) = m.get(field).filter(|v| !v.is_null()) {
            out.insert(field.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// The messages of a poll reply, compacted.
pub fn compact_messages(reply: &Value) -> Vec<Value> {
    reply
        .get("messages")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(compact_message).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "31da0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f";

    #[test]
    fn session_keys_are_stripped_at_any_depth() {
        let mut v = json!({
            "sessionId": "s",
            "sessionKey": KEY,
            "nested": [{"sessionKey": KEY, "keep": 1}, {"deeper": {"sessionKey": KEY}}],
        });
        strip_keys(&mut v);
        assert_eq!(
            v,
            json!({"sessionId": "s", "nested": [{"keep": 1}, {"deeper": {}}]})
        );
        let text = ToolReply::new(json!({"sessionKey": KEY, "ok": true}), "next").render();
        assert_eq!(text, "{\"ok\":true}\nnext");
        assert!(!text.contains(KEY));
    }

    #[test]
    fn known_keys_are_scrubbed_from_any_text() {
        let text = format!("they pasted {KEY} here and {KEY} again");
        let out = scrub(&text, &[KEY.to_owned(), "short".to_owned()]);
        assert!(!out.contains(KEY));
        assert_eq!(out.matches(KEY_PLACEHOLDER).count(), 2);
        assert_eq!(scrub("a short text", &["short".to_owned()]), "a short text");
    }

    #[test]
    fn messages_are_compacted() {
        let m = json!({
            "id": "msg_1", "agentId": "a", "text": "hi", "json": {"k": 1}, "cursor": "3",
            "verified": true, "sentAt": "t", "expiresAt": "e", "extra": 1,
        });
        assert_eq!(
            compact_message(&m),
            json!({"cursor": "3", "agentId": "a", "text": "hi", "json": {"k": 1}, "sentAt": "t", "verified": true})
        );
        assert_eq!(
            compact_messages(&json!({"messages": [m.clone(), m]})).len(),
            2
        );
        assert!(compact_messages(&json!({})).is_empty());
    }
}
