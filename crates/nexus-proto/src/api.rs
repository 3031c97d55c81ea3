//! Request and response bodies of every endpoint in SPEC §2, with the validation rules of
//! SPEC §1 "Limits on create" and §2 "Poll details".
//!
//! Requests are validated from a parsed `serde_json::Value` (not derived `Deserialize`) so that
//! every problem is reported with the field it concerns; unknown fields are ignored. Responses are
//! plain serde structs in camelCase; optional fields are omitted when absent.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cursor::Cursor;
use crate::error::FieldProblem;
use crate::time::{Rfc3339Cache, Timestamp};
use crate::validate;

/// Longest greeting, in characters.
pub const MAX_GREETING_CHARS: usize = 4096;
/// Longest long-poll wait, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;
/// Largest page a poll returns (also the default).
pub const MAX_POLL_LIMIT: u64 = 1000;
/// Default session TTL in seconds.
pub const DEFAULT_TTL_SECONDS: u64 = 3660;
/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// The server limits that request validation depends on.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_ttl_seconds: u64,
    pub max_agents: u64,
}

// ---------------------------------------------------------------------------------------------
// Requests

/// `PUT /v1/sessions` body. `creator_agent_id` is returned raw: a malformed one is
/// `invalid_agent_id`, not `invalid_request`, so the server validates it.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase")
)]
pub struct CreateSessionRequest {
    /// Seconds; at most the server's `MAX_TTL_SECONDS` (default 86400). Default 3660.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub ttl: Option<u64>,
    /// At most the server's `MAX_AGENTS` (default 50). Default 50.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 50))]
    pub max_agents: Option<u64>,
    /// Joined at once, with a session key; must equal `X-Agent-Id` when both are sent.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._-]{1,128}$"))]
    pub creator_agent_id: Option<String>,
    /// Delivered as message `0` from `system`.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4096))]
    pub greeting: Option<String>,
}

impl CreateSessionRequest {
    pub fn from_json(body: Value, limits: Limits) -> Result<Self, Vec<FieldProblem>> {
        let map = validate::object(body)?;
        let mut problems = Vec::new();
        let req = Self {
            ttl: validate::opt_int(&map, "ttl", 1, limits.max_ttl_seconds, &mut problems),
            max_agents: validate::opt_int(&map, "maxAgents", 1, limits.max_agents, &mut problems),
            creator_agent_id: match map.get("creatorAgentId") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    problems.push(FieldProblem::new("creatorAgentId", "must be a string"));
                    None
                }
            },
            greeting: validate::opt_string(&map, "greeting", MAX_GREETING_CHARS, &mut problems),
        };
        validate::finish(problems, req)
    }
}

/// `POST /v1/sessions/:id/renew` body.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase")
)]
pub struct RenewRequest {
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub ttl: Option<u64>,
}

impl RenewRequest {
    pub fn from_json(body: Value, limits: Limits) -> Result<Self, Vec<FieldProblem>> {
        let map = validate::object(body)?;
        let mut problems = Vec::new();
        let ttl = validate::opt_int(&map, "ttl", 1, limits.max_ttl_seconds, &mut problems);
        validate::finish(problems, Self { ttl })
    }
}

/// `POST /v1/sessions/:id/messages` body: `text` (non-empty string) and/or `json` (any value
/// but `null`); at least one.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase")
)]
pub struct SendRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub text: Option<String>,
    /// Any JSON value but `null`.
    pub json: Option<Value>,
}

/// The shape of a well-formed send body, read straight from the bytes (no `Value` tree for the
/// whole body). Anything it cannot take as is goes through [`SendRequest::from_json`].
#[derive(Deserialize)]
struct SendBody {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    json: Option<Value>,
}

impl SendRequest {
    /// A send body parsed in one pass, when it is a valid one: a JSON object whose `text` is a
    /// non-empty string or absent/`null` and whose `json` is anything (`null` counts as absent),
    /// with at least one of them. `None` for everything else — malformed JSON, another shape,
    /// a repeated key — which [`SendRequest::from_json`] then answers with the same problems as
    /// always (so this is only a faster road to the same result).
    pub fn parse_valid(body: &[u8]) -> Option<Self> {
        // Derived struct deserializers also accept a JSON array; only objects are bodies.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        let SendBody { text, json } = serde_json::from_slice(body).ok()?;
        match (&text, &json) {
            (Some(t), _) if t.is_empty() => None,
            (None, None) => None,
            _ => Some(Self { text, json }),
        }
    }

    pub fn from_json(body: Value) -> Result<Self, Vec<FieldProblem>> {
        let map = validate::object(body)?;
        let mut problems = Vec::new();
        let text = match map.get("text") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => {
                problems.push(FieldProblem::new("text", "must not be empty"));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                problems.push(FieldProblem::new("text", "must be a string"));
                None
            }
        };
        let json = match map.get("json") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.clone()),
        };
        if problems.is_empty() && text.is_none() && json.is_none() {
            problems.push(FieldProblem::new(
                "text",
                "at least one of text (a non-empty string) or json (any value but null) is required",
            ));
        }
        validate::finish(problems, Self { text, json })
    }
}

/// `PUT /v1/pair` body.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase")
)]
pub struct CreatePairRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub session_id: String,
}

impl CreatePairRequest {
    pub fn from_json(body: Value) -> Result<Self, Vec<FieldProblem>> {
        let map = validate::object(body)?;
        match map.get("sessionId") {
            Some(Value::String(s)) if !s.is_empty() => Ok(Self {
                session_id: s.clone(),
            }),
            None | Some(Value::Null) => Err(vec![FieldProblem::new("sessionId", "is required")]),
            Some(_) => Err(vec![FieldProblem::new(
                "sessionId",
                "must be a non-empty string",
            )]),
        }
    }
}

/// Query of `GET /v1/sessions/:id/messages`.
#[derive(Clone, Debug, PartialEq)]
pub struct PollQuery {
    pub after: Option<Cursor>,
    pub members: bool,
    /// Long-poll seconds, 0 = answer at once.
    pub wait: u64,
    pub limit: u64,
}

impl Default for PollQuery {
    fn default() -> Self {
        Self {
            after: None,
            members: false,
            wait: 0,
            limit: MAX_POLL_LIMIT,
        }
    }
}

impl PollQuery {
    /// Parses decoded query pairs; unknown parameters are ignored, a repeated one takes the last
    /// value.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, Vec<FieldProblem>> {
        let mut q = Self::default();
        let mut problems = Vec::new();
        for (k, v) in pairs {
            let v = v.as_ref();
            match k.as_ref() {
                "after" => match Cursor::parse(v) {
                    Ok(c) => q.after = Some(c),
                    Err(e) => problems.push(FieldProblem::new("after", e.to_string())),
                },
                "members" => q.members = validate::query_bool(v, "members", &mut problems),
                "wait" => {
                    q.wait = validate::query_int(v, "wait", 0, MAX_WAIT_SECONDS, &mut problems)
                        .unwrap_or(0)
                }
                "limit" => {
                    q.limit = validate::query_int(v, "limit", 1, MAX_POLL_LIMIT, &mut problems)
                        .unwrap_or(MAX_POLL_LIMIT)
                }
                _ => {}
            }
        }
        validate::finish(problems, q)
    }
}

/// Checks an `Idempotency-Key` header value: 1 to 128 visible ASCII characters.
pub fn valid_idempotency_key(key: &str) -> bool {
    (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

// ---------------------------------------------------------------------------------------------
// Responses

/// `PUT /v1/sessions` → 201.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SessionCreated {
    pub session_id: String,
    pub state: String,
    pub ttl: u64,
    pub max_agents: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
}

/// One member in a status response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MemberInfo {
    pub agent_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub joined_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub last_seen_at: Timestamp,
    pub creator: bool,
}

/// `GET /v1/sessions/:id` → 200. `agents` is a list of strings (the bash client relies on it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SessionStatus {
    pub session_id: String,
    pub state: String,
    pub ttl: u64,
    pub max_agents: u64,
    pub agents: Vec<String>,
    pub members: Vec<MemberInfo>,
    pub creator_agent_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
}

/// `POST /v1/sessions/:id/join` → 200.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    pub status: String,
    pub session_id: String,
    pub agents_online: u64,
    pub session_key: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: Timestamp,
}

/// `DELETE /v1/sessions/:id/agents/:agentId` → 200 (`ok: true` is required by the bash client).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Left {
    pub ok: bool,
    pub status: String,
    pub session_id: String,
    pub agent_id: String,
    pub message: String,
}

/// `POST /v1/sessions/:id/renew` → 200.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Renewed {
    pub session_id: String,
    pub state: String,
    pub ttl: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: Timestamp,
    pub agents: Vec<String>,
}

/// `POST /v1/sessions/:id/messages` → 201 (200 for an idempotent repeat).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MessageSent {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "42"))]
    pub cursor: Cursor,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub sent_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: Timestamp,
    pub verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<Vec<String>>,
}

/// A message as polled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub agent_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "42"))]
    pub cursor: Cursor,
    pub verified: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub sent_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: Timestamp,
}

/// Presence entry of a poll with `members=true`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    pub agent_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub last_seen_at: Timestamp,
}

/// `GET /v1/sessions/:id/messages` → 200.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    pub messages: Vec<Message>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "42"))]
    pub next_cursor: Cursor,
    /// True when messages the caller asked for can no longer be delivered (lost in a restart or
    /// expired): a gap is always said.
    #[serde(default)]
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Presence>>,
}

/// `PUT /v1/pair` → 201.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PairCreated {
    pub code: String,
    pub url: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: Timestamp,
}

/// `POST /v1/pair/:code/claim` → 200.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Claimed {
    pub session_id: String,
    pub status: String,
    pub session_key: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: Timestamp,
}

/// `GET /v1/pair/:code/status` → 200.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairStatus {
    /// `pending`, `claimed` or `expired`.
    pub state: String,
}

/// `capabilities` of `GET /health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    pub message_format: Vec<String>,
    pub long_poll: bool,
    #[serde(default)]
    pub max_wait_seconds: u64,
    #[serde(default)]
    pub idempotency: bool,
    #[serde(default)]
    pub truncation: bool,
}

/// `store` of `GET /health`: which storage backend the relay runs on and whether it answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoreHealth {
    /// `embedded` or `redis`.
    pub backend: String,
    pub reachable: bool,
}

/// `GET /health` → 200 (`status: "ok"`), or 503 (`status: "unavailable"`) when the store cannot
/// be reached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub status: String,
    pub version: String,
    /// Seconds since the server started.
    pub uptime: u64,
    pub capabilities: Capabilities,
    /// Absent from servers that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreHealth>,
}

/// `GET /v1/stats` → 200.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub active_sessions: u64,
    pub total_agents: u64,
    /// Messages currently held (unexpired).
    pub total_messages: u64,
    pub uptime: u64,
}

// ---------------------------------------------------------------------------------------------
// The bodies of the hottest responses (send receipts and poll pages), written straight into a
// buffer: the same bytes as `serde_json::to_vec`, without a serializer call per field. Strings
// that need escaping are handed to serde_json, so escaping is never written by hand.

/// Whether `s` can be written between quotes as is. Every byte is looked at (no early exit), so
/// the loop vectorizes.
fn plain(s: &str) -> bool {
    !s.bytes().fold(false, |escape, b| {
        escape | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// Appends `s` as a JSON string.
fn push_str(out: &mut Vec<u8>, s: &str) {
    if plain(s) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // serde_json's escaping; a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn push_cursor(out: &mut Vec<u8>, c: Cursor) {
    out.push(b'"');
    out.extend_from_slice(itoa::Buffer::new().format(c.0).as_bytes());
    out.push(b'"');
}

fn push_time(out: &mut Vec<u8>, t: Timestamp, times: &mut Rfc3339Cache) {
    out.push(b'"');
    out.extend_from_slice(&times.format(t.0));
    out.push(b'"');
}

fn push_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

impl MessageSent {
    /// This receipt as JSON (the bytes `serde_json::to_vec` writes).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        let times = &mut Rfc3339Cache::default();
        out.extend_from_slice(b"{\"id\":");
        push_str(&mut out, &self.id);
        out.extend_from_slice(b",\"cursor\":");
        push_cursor(&mut out, self.cursor);
        out.extend_from_slice(b",\"sentAt\":");
        push_time(&mut out, self.sent_at, times);
        out.extend_from_slice(b",\"expiresAt\":");
        push_time(&mut out, self.expires_at, times);
        out.extend_from_slice(b",\"verified\":");
        push_bool(&mut out, self.verified);
        if let Some(types) = &self.redacted {
            out.extend_from_slice(b",\"redacted\":[");
            for (i, t) in types.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_str(&mut out, t);
            }
            out.push(b']');
        }
        out.push(b'}');
        out
    }
}

/// A polled message borrowed from wherever it is held; written exactly as [`Message`].
#[derive(Clone, Copy, Debug)]
pub struct MessageView<'a> {
    pub id: &'a str,
    pub agent_id: &'a str,
    pub text: Option<&'a str>,
    pub json: Option<&'a Value>,
    pub cursor: Cursor,
    pub verified: bool,
    pub sent_at: Timestamp,
    pub expires_at: Timestamp,
}

impl<'a> From<&'a Message> for MessageView<'a> {
    fn from(m: &'a Message) -> Self {
        Self {
            id: &m.id,
            agent_id: &m.agent_id,
            text: m.text.as_deref(),
            json: m.json.as_ref(),
            cursor: m.cursor,
            verified: m.verified,
            sent_at: m.sent_at,
            expires_at: m.expires_at,
        }
    }
}

impl MessageView<'_> {
    fn write_json(&self, out: &mut Vec<u8>, times: &mut Rfc3339Cache) {
        out.extend_from_slice(b"{\"id\":");
        push_str(out, self.id);
        out.extend_from_slice(b",\"agentId\":");
        push_str(out, self.agent_id);
        if let Some(text) = self.text {
            out.extend_from_slice(b",\"text\":");
            push_str(out, text);
        }
        if let Some(json) = self.json {
            out.extend_from_slice(b",\"json\":");
            // A Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, json);
        }
        out.extend_from_slice(b",\"cursor\":");
        push_cursor(out, self.cursor);
        out.extend_from_slice(b",\"verified\":");
        push_bool(out, self.verified);
        out.extend_from_slice(b",\"sentAt\":");
        push_time(out, self.sent_at, times);
        out.extend_from_slice(b",\"expiresAt\":");
        push_time(out, self.expires_at, times);
        out.push(b'}');
    }
}

/// A poll page as JSON, the bytes `serde_json::to_vec` writes for the [`PollResponse`] with these
/// messages, `nextCursor`, `truncated` and `members` (`(agentId, lastSeenAt)`), from borrowed
/// parts: a page is written without copying the messages it holds.
pub fn poll_page_json<'a>(
    messages: impl IntoIterator<Item = MessageView<'a>>,
    next_cursor: Cursor,
    truncated: bool,
    members: Option<impl IntoIterator<Item = (&'a str, Timestamp)>>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(2048);
    let times = &mut Rfc3339Cache::default();
    out.extend_from_slice(b"{\"messages\":[");
    for (i, m) in messages.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        m.write_json(&mut out, times);
    }
    out.extend_from_slice(b"],\"nextCursor\":");
    push_cursor(&mut out, next_cursor);
    out.extend_from_slice(b",\"truncated\":");
    push_bool(&mut out, truncated);
    if let Some(members) = members {
        out.extend_from_slice(b",\"members\":[");
        for (i, (agent_id, last_seen_at)) in members.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"agentId\":");
            push_str(&mut out, agent_id);
            out.extend_from_slice(b",\"lastSeenAt\":");
            push_time(&mut out, last_seen_at, times);
            out.push(b'}');
        }
        out.push(b']');
    }
    out.push(b'}');
    out
}

impl PollResponse {
    /// This page as JSON (the bytes `serde_json::to_vec` writes).
    pub fn to_json(&self) -> Vec<u8> {
        poll_page_json(
            self.messages.iter().map(MessageView::from),
            self.next_cursor,
            self.truncated,
            self.members.as_ref().map(|members| {
                members
                    .iter()
                    .map(|p| (p.agent_id.as_str(), p.last_seen_at))
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const LIMITS: Limits = Limits {
        max_ttl_seconds: 86_400,
        max_agents: 50,
    };

    fn fields(problems: Vec<FieldProblem>) -> Vec<String> {
        problems.into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn create_accepts_defaults_and_names_every_bad_field() {
        assert_eq!(
            CreateSessionRequest::from_json(json!({}), LIMITS),
            Ok(CreateSessionRequest::default())
        );
        let err = CreateSessionRequest::from_json(
            json!({"ttl": 0, "maxAgents": 51, "greeting": "x".repeat(4097), "creatorAgentId": 5, "other": 1}),
            LIMITS,
        )
        .unwrap_err();
        assert_eq!(
            fields(err),
            ["ttl", "maxAgents", "creatorAgentId", "greeting"]
        );
        for bad_ttl in [
            json!("60"),
            json!(1.5),
            json!(-1),
            json!(86_401),
            json!(true),
        ] {
            let err =
                CreateSessionRequest::from_json(json!({ "ttl": bad_ttl }), LIMITS).unwrap_err();
            assert_eq!(fields(err), ["ttl"]);
        }
        let ok = CreateSessionRequest::from_json(
            json!({"ttl": 86_400, "maxAgents": 1, "greeting": "é".repeat(4096), "creatorAgentId": "a"}),
            LIMITS,
        )
        .unwrap();
        assert_eq!(ok.ttl, Some(86_400));
        assert_eq!(
            fields(CreateSessionRequest::from_json(json!([1]), LIMITS).unwrap_err()),
            ["body"]
        );
    }

    #[test]
    fn the_one_pass_parse_agrees_with_the_field_by_field_validation() {
        // (body, read in one pass); every other body takes the field-by-field road.
        let bodies = [
            (r#"{"text": "hi"}"#, true),
            (
                r#"  {"text": "hi", "json": {"a": [1, null]}, "other": 5} "#,
                true,
            ),
            (r#"{"json": false}"#, true),
            (r#"{"json": 0, "text": null}"#, true),
            (r#"{"text": "h\u00e9 \"q\""}"#, true),
            (r#"{"te\u0078t": "escaped key"}"#, true),
            (r#"{"text": "first", "text": "second"}"#, false),
            (r#"{"json": null, "json": 1}"#, false),
            (r#"{}"#, false),
            (r#"{"text": ""}"#, false),
            (r#"{"text": 5}"#, false),
            (r#"{"json": null}"#, false),
            (r#"["hi", null]"#, false),
            (r#""text""#, false),
            (r#"{"text": "hi"} trailing"#, false),
            (r#"{"text": "hi""#, false),
            ("", false),
            ("null", false),
        ];
        for (body, one_pass) in bodies {
            let slow = serde_json::from_slice::<Value>(body.as_bytes())
                .ok()
                .map(SendRequest::from_json);
            let fast = SendRequest::parse_valid(body.as_bytes());
            assert_eq!(fast.is_some(), one_pass, "{body}");
            if let Some(fast) = fast {
                assert_eq!(slow, Some(Ok(fast)), "{body}");
            }
        }
    }

    #[test]
    fn send_requires_text_or_json() {
        assert!(SendRequest::from_json(json!({})).is_err());
        assert!(SendRequest::from_json(json!({"text": ""})).is_err());
        assert!(SendRequest::from_json(json!({"json": null})).is_err());
        assert!(SendRequest::from_json(json!({"text": 5})).is_err());
        assert!(SendRequest::from_json(json!({"text": "hi"})).is_ok());
        assert!(SendRequest::from_json(json!({"json": false})).is_ok());
        let both = SendRequest::from_json(json!({"text": "hi", "json": {"a": [1]}})).unwrap();
        assert_eq!(both.json, Some(json!({"a": [1]})));
    }

    #[test]
    fn poll_query_validates_each_parameter() {
        let q = PollQuery::from_pairs([
            ("after", "5"),
            ("members", "true"),
            ("wait", "60"),
            ("limit", "1"),
        ])
        .unwrap();
        assert_eq!(
            q,
            PollQuery {
                after: Some(Cursor(5)),
                members: true,
                wait: 60,
                limit: 1
            }
        );
        let err = PollQuery::from_pairs([
            ("after", "-1"),
            ("members", "maybe"),
            ("wait", "61"),
            ("limit", "0"),
            ("x", "y"),
        ])
        .unwrap_err();
        assert_eq!(fields(err), ["after", "members", "wait", "limit"]);
        assert_eq!(
            PollQuery::from_pairs::<&str, &str>([]).unwrap(),
            PollQuery::default()
        );
    }

    #[test]
    fn idempotency_keys() {
        assert!(valid_idempotency_key("abc-123_XYZ"));
        assert!(valid_idempotency_key(&"k".repeat(128)));
        assert!(!valid_idempotency_key(""));
        assert!(!valid_idempotency_key(&"k".repeat(129)));
        assert!(!valid_idempotency_key("has space"));
        assert!(!valid_idempotency_key("é"));
    }

    /// Any JSON value, a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(".*", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn any_message() -> impl Strategy<Value = Message> {
        (
            ".*",
            ".*",
            proptest::option::of(".*"),
            proptest::option::of(any_json()),
            any::<u64>(),
            any::<bool>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(id, agent_id, text, json, c, verified, a, b)| Message {
                id,
                agent_id,
                text,
                json,
                cursor: Cursor(c),
                verified,
                sent_at: Timestamp(a % 253_402_300_800_000),
                expires_at: Timestamp(b % 253_402_300_800_000),
            })
    }

    proptest! {
        #[test]
        fn hand_written_receipts_are_serde_json_bytes(
            id in ".*",
            c in any::<u64>(),
            a in 0u64..253_402_300_800_000,
            b in 0u64..253_402_300_800_000,
            verified in any::<bool>(),
            redacted in proptest::option::of(proptest::collection::vec(".*", 0..3)),
        ) {
            let sent = MessageSent {
                id,
                cursor: Cursor(c),
                sent_at: Timestamp(a),
                expires_at: Timestamp(b),
                verified,
                redacted,
            };
            prop_assert_eq!(
                String::from_utf8(sent.to_json()).unwrap(),
                serde_json::to_string(&sent).unwrap()
            );
        }

        #[test]
        fn hand_written_pages_are_serde_json_bytes(
            messages in proptest::collection::vec(any_message(), 0..4),
            c in any::<u64>(),
            truncated in any::<bool>(),
            members in proptest::option::of(proptest::collection::vec((".*", 0u64..253_402_300_800_000), 0..3)),
        ) {
            let page = PollResponse {
                messages,
                next_cursor: Cursor(c),
                truncated,
                members: members.map(|m| {
                    m.into_iter()
                        .map(|(agent_id, t)| Presence { agent_id, last_seen_at: Timestamp(t) })
                        .collect()
                }),
            };
            prop_assert_eq!(
                String::from_utf8(page.to_json()).unwrap(),
                serde_json::to_string(&page).unwrap()
            );
        }

        #[test]
        fn ttl_in_range_is_accepted_and_out_of_range_rejected(ttl in any::<i64>()) {
            let res = CreateSessionRequest::from_json(json!({ "ttl": ttl }), LIMITS);
            prop_assert_eq!(res.is_ok(), (1..=86_400).contains(&ttl));
        }

        #[test]
        fn wait_and_limit_ranges(wait in any::<u32>(), limit in any::<u32>()) {
            let (w, l) = (wait.to_string(), limit.to_string());
            let res = PollQuery::from_pairs([("wait", w.as_str()), ("limit", l.as_str())]);
            prop_assert_eq!(res.is_ok(), wait <= 60 && (1..=1000).contains(&limit));
        }
    }
}
