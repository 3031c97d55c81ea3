//! `send`, `poll` and `history`: the conversation (SPEC §1 "Message", "Cursors"; §2 poll details;
//! §3 `send`, `poll`).
//!
//! `send` sends the saved key, so messages are `verified`, and falls back to JSON-in-text on a
//! relay without JSON messages (saying so in the guidance). `poll` returns what is new since the
//! saved cursor and saves the new one, long-polling up to 60 s with `wait`; a cancelled call
//! stops waiting and moves nothing. `history` re-reads the last N messages and moves nothing.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{tool, tool_router};
use serde_json::{Value, json};

use super::ToolResult;
use crate::commands::poll::{After, PollSpec, next_cursor, poll_once};
use crate::commands::send::deliver;
use crate::mcp::errors::ToolError;
use crate::mcp::history::{self, recent};
use crate::mcp::params::{self, HistoryArgs, PollArgs, SendArgs};
use crate::mcp::results::{ToolReply, compact_message, compact_messages};
use crate::mcp::server::NexusMcp;

#[tool_router(router = messages_router, vis = "pub(super)")]
impl NexusMcp {
    #[tool(
        description = "Send a message to a session (by id or alias): text, json (structured data), or both. \
            Use it to talk to the other agents. Messages are signed with your saved session key. \
            Secrets in messages are redacted by the relay. Next: poll with wait to receive the \
            reply.",
        annotations(
            title = "Send a message",
            read_only_hint = false,
            open_world_hint = true
        )
    )]
    async fn send(&self, Parameters(args): Parameters<SendArgs>) -> ToolResult {
        let input = params::session(&args.session)?;
        let (text, payload) = params::message(args.text, args.json)?;
        let (ctx, s) = self.shared.session(input)?;
        let sent = deliver(
            &ctx,
            &s.sid,
            &s.server,
            &s.agent,
            &text,
            payload.as_ref(),
            false,
        )
        .await
        .map_err(|f| ToolError::from_failure(&f))?;
        let reply = Value::Object(sent.reply.json.clone().unwrap_or_default());
        let mut out = super::pick(&reply, &["cursor", "sentAt", "verified", "redacted"]);
        out["sessionId"] = json!(s.sid.as_str());
        let mut guidance = format!(
            "Sent (cursor {}). Next: poll this session with wait (up to 60 s) to receive the reply.",
            super::field(&reply, "cursor", "?")
        );
        if sent.fell_back {
            guidance
                .push_str(" This relay does not take JSON messages: your json was sent as text.");
        }
        let redacted = sent.redacted();
        if !redacted.is_empty() {
            guidance.push_str(&format!(
                " The relay redacted secrets from your message ({}); never send credentials.",
                redacted.join(", ")
            ));
        }
        if reply.get("verified") == Some(&Value::Bool(false)) {
            guidance.push_str(" It is unverified: no session key is saved for this session.");
        }
        Ok(ToolReply::new(out, guidance))
    }

    #[tool(
        description = "Get the messages that are new since your last poll of this session (the cursor is \
            saved for you, so each message is returned once). With wait (up to 60 s), the call \
            blocks until a message arrives: use that to wait for a reply instead of polling in a \
            loop. Next: answer with send, or poll again.",
        annotations(
            title = "Poll new messages",
            read_only_hint = false,
            open_world_hint = true
        )
    )]
    async fn poll(
        &self,
        Parameters(args): Parameters<PollArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let input = params::session(&args.session)?;
        let wait = params::wait(args.wait)?;
        let members = args.members.unwrap_or(false);
        let (ctx, s) = self.shared.session(input)?;
        let _cursor = self.shared.cursor_guard(&s.sid).await;
        let spec = PollSpec {
            after: After::Saved,
            members,
            wait,
        };
        let reply = tokio::select! {
            () = context.ct.cancelled() => {
                return Err(ToolError::new("cancelled", "the poll was cancelled"));
            }
            () = self.closing().cancelled() => {
                return Err(ToolError::new("cancelled", "the client disconnected"));
            }
            r = poll_once(&ctx, &ctx.ui, &s.sid, &s.server, &s.agent, &spec) => {
                r.map_err(|f| ToolError::from_failure(&f))?
            }
        };
        ctx.adopt(&s.sid, &s.server);
        let body = Value::Object(reply.json.clone().unwrap_or_default());
        let messages = compact_messages(&body);
        let truncated = body.get("truncated") == Some(&Value::Bool(true));
        let mut out = json!({
            "sessionId": s.sid.as_str(),
            "messages": messages,
            "nextCursor": next_cursor(&reply),
        });
        if truncated {
            out["truncated"] = json!(true);
        }
        if members {
            out["members"] = body.get("members").cloned().unwrap_or(Value::Null);
        }
        let mut guidance = poll_guidance(&messages, &s.agent, wait);
        if truncated {
            guidance =
                format!("Some earlier messages are gone (relay restart or expiry). {guidance}");
        }
        Ok(ToolReply::new(out, guidance))
    }

    #[tool(
        description = "Re-read the last messages of a session (default 20, up to 1000) without marking \
            anything as read: poll still returns only what is new. Use it to catch up on \
            context, e.g. after a restart or when joining late.",
        annotations(
            title = "Recent messages",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn history(&self, Parameters(args): Parameters<HistoryArgs>) -> ToolResult {
        let input = params::session(&args.session)?;
        let limit = params::history_limit(args.limit)?;
        let (ctx, s) = self.shared.session(input)?;
        let got = recent(&ctx, &s, limit)
            .await
            .map_err(|f| ToolError::from_failure(&f))?;
        let n = got.messages.len();
        let out = json!({
            "sessionId": s.sid.as_str(),
            "messages": got.messages.iter().map(compact_message).collect::<Vec<_>>(),
            "held": got.held,
            "truncated": got.truncated,
            "incomplete": got.incomplete,
        });
        let mut guidance = if got.incomplete {
            format!(
                "The relay holds more than the {} message(s) read (reading stops after {} pages): these {n} are the last read, not the newest; poll returns what is new. Nothing was marked as read.",
                got.held,
                history::MAX_PAGES
            )
        } else {
            format!(
                "The last {n} of the {} message(s) the relay holds; nothing was marked as read (poll still returns only new ones).",
                got.held
            )
        };
        if got.truncated {
            guidance.push_str(" Earlier messages are gone (relay restart or expiry).");
        }
        Ok(ToolReply::new(out, guidance))
    }
}

/// The guidance line of a poll.
fn poll_guidance(messages: &[Value], me: &str, wait: Option<u64>) -> String {
    if messages.is_empty() {
        return match wait {
            Some(w) if w > 0 => format!(
                "No new message within {w} s. Call poll again with wait to keep waiting, or do something else and come back."
            ),
            _ => "No new messages. Call poll with wait (up to 60 s) to block until one arrives."
                .to_owned(),
        };
    }
    let mut from: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.get("agentId").and_then(Value::as_str))
        .filter(|a| *a != me)
        .collect();
    from.sort_unstable();
    from.dedup();
    let who = if from.is_empty() {
        String::new()
    } else {
        format!(" from {}", from.join(", "))
    };
    format!(
        "{} new message(s){who}. Reply with send; call poll again (wait up to 60 s) for more.",
        messages.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_guidance_says_what_to_do_next() {
        assert!(poll_guidance(&[], "me", None).contains("wait (up to 60 s)"));
        assert!(poll_guidance(&[], "me", Some(30)).contains("within 30 s"));
        let msgs = [
            json!({"agentId": "bob", "text": "a"}),
            json!({"agentId": "me", "text": "b"}),
            json!({"agentId": "bob", "text": "c"}),
            json!({"agentId": "system", "text": "hi"}),
        ];
        let g = poll_guidance(&msgs, "me", Some(5));
        assert!(g.starts_with("4 new message(s) from bob, system."), "{g}");
        assert!(g.contains("Reply with send"));
    }
}
