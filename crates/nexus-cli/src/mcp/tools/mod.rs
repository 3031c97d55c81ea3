//! The twelve tools (issue 8), one file per group, each a thin layer over the CLI commands:
//! - [`lifecycle`]: `create_session`, `join`, `status`, `renew`, `leave`;
//! - [`pairing`]: `create_pairing_link`, `claim`;
//! - [`messages`]: `send`, `poll`, `history`;
//! - [`local`]: `list_sessions`, `set_alias`.
//!
//! A tool checks its arguments ([`super::params`]), runs the CLI command with a quiet context
//! ([`super::context`]), and answers a [`ToolReply`] (compact JSON without keys, plus one line of
//! guidance: what happened and what to do next) or a [`ToolError`]. Each description says what
//! the tool does, when to use it and what to do next; it is the doc comment of the tool.

mod lifecycle;
mod local;
mod messages;
mod pairing;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::ProtocolVersion;
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Map, Value};

use super::errors::ToolError;
use super::results::ToolReply;
use super::server::NexusMcp;
use crate::output::{CmdResult, Printed};

/// What every tool returns.
pub(super) type ToolResult = Result<ToolReply, ToolError>;

impl NexusMcp {
    /// Every tool.
    pub(super) fn all_tools() -> ToolRouter<Self> {
        Self::lifecycle_router()
            + Self::pairing_router()
            + Self::messages_router()
            + Self::local_router()
    }

    /// After a tool changed the set of local sessions: `notifications/resources/list_changed`,
    /// sent directly to a session-based client and through `subscriptions/listen` otherwise.
    async fn sessions_changed(&self, context: &RequestContext<RoleServer>) {
        self.shared.sessions_changed();
        let legacy = context
            .protocol_version()
            .is_none_or(|v| v.as_str() < ProtocolVersion::V_2026_07_28.as_str());
        if legacy {
            let _ = context.peer.notify_resource_list_changed().await;
        }
    }
}

/// The JSON object a CLI command produced; a command that "succeeded" with a non-zero exit (a
/// refused `leave`) is an error.
fn printed(result: CmdResult) -> Result<Value, ToolError> {
    let outcome = result.map_err(|f| ToolError::from_failure(&f))?;
    let value = match outcome.printed {
        Printed::Raw(raw) => serde_json::from_str(&raw).unwrap_or(Value::Null),
        Printed::Compact(v) | Printed::Pretty(v) => v,
        Printed::Nothing => Value::Null,
    };
    if outcome.exit != 0 {
        return Err(ToolError::from_failure(
            &crate::output::Failure::from_value(&value),
        ));
    }
    Ok(value)
}

/// The listed fields of `v` that are present and not null, in that order.
fn pick(v: &Value, fields: &[&str]) -> Value {
    let mut out = Map::new();
    for f in fields {
        if let Some(x) = v.get(*f).filter(|x| !x.is_null()) {
            out.insert((*f).to_owned(), x.clone());
        }
    }
    Value::Object(out)
}

/// A string field of `v`, or `fallback`.
fn field<'a>(v: &'a Value, name: &str, fallback: &'a str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Failure, Outcome};
    use serde_json::json;

    #[test]
    fn printed_json_and_refusals() {
        assert_eq!(
            printed(Ok(Outcome::raw(r#"{"ok":true}"#))).unwrap(),
            json!({"ok": true})
        );
        assert_eq!(
            printed(Ok(Outcome::compact(json!({"a": 1})))).unwrap(),
            json!({"a": 1})
        );
        let refused = Outcome::raw(r#"{"error":"forbidden","message":"creator"}"#).with_exit(1);
        let e = printed(Ok(refused)).unwrap_err();
        assert_eq!(e.code, "forbidden");
        assert!(e.hint.contains("creator cannot leave"));
        let e = printed(Err(Failure::transport("refused"))).unwrap_err();
        assert_eq!(e.code, "transport_error");
    }

    #[test]
    fn pick_keeps_present_fields_in_order() {
        let v = json!({"b": 2, "a": 1, "n": null, "x": 9});
        assert_eq!(
            pick(&v, &["a", "b", "n", "missing"]),
            json!({"a": 1, "b": 2})
        );
        assert_eq!(field(&v, "a", "?"), "?");
        assert_eq!(field(&json!({"s": "t"}), "s", "?"), "t");
    }
}
