//! `poll <SID>` and `poll-all` (inventory §1.5.9, §1.5.12): reading messages and cursor
//! auto-management.
//!
//! Without `--after`, a poll asks for messages after the saved cursor and saves the returned
//! `nextCursor`. An explicit `--after C` never moves the saved cursor; `--after 0` omits the
//! parameter so the server replays everything it still holds (the greeting has cursor 0 and
//! `after` is exclusive). `--wait S` asks for a long-poll. `poll-all` polls every local session
//! at once and honours `--members` (broken in `nexus.sh`).

use std::time::Duration;

use serde_json::{Value, json};

use super::{Ctx, join_all};
use crate::client::{Reply, Request, checked};
use crate::output::{CmdResult, Failure, Outcome, Ui};
use crate::server::Server;
use crate::state::{SessionFile, Sid};

/// Which cursor a poll starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// No `--after`: the saved cursor, and the answer's `nextCursor` is saved.
    Saved,
    /// `--after 0`: everything still held; nothing saved.
    Replay,
    /// `--after C`: after C; nothing saved.
    Explicit(String),
}

impl After {
    pub fn from_flag(flag: Option<&str>) -> Self {
        match flag {
            None => Self::Saved,
            Some("0") => Self::Replay,
            Some(c) => Self::Explicit(c.to_owned()),
        }
    }

    /// The `after` query value given the saved cursor.
    pub fn param(&self, saved: Option<&str>) -> Option<String> {
        match self {
            Self::Saved => saved.map(str::to_owned),
            Self::Replay => None,
            Self::Explicit(c) => Some(c.clone()),
        }
    }
}

/// `nextCursor` of a poll answer as a string (a number is accepted from other servers).
pub fn next_cursor(reply: &Reply) -> Option<String> {
    match reply.get("nextCursor")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What one poll asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSpec {
    pub after: After,
    pub members: bool,
    /// Long-poll seconds.
    pub wait: Option<u64>,
}

/// One poll request for a session. Saves the cursor when `after` is [`After::Saved`] and the
/// session is local.
pub async fn poll_once(
    ctx: &Ctx,
    ui: &Ui,
    sid: &Sid,
    server: &Server,
    agent: &str,
    spec: &PollSpec,
) -> Result<Reply, Failure> {
    let PollSpec {
        after,
        members,
        wait,
    } = spec;
    let saved = ctx.home.read(sid, SessionFile::Cursor);
    let mut req = Request::get(format!("{}/v1/sessions/{sid}/messages", server.base()))
        .header("X-Agent-Id", agent);
    if let Some(a) = after.param(saved.as_deref()) {
        req = req.query("after", a);
    }
    if *members {
        req = req.query("members", "true");
    }
    if let Some(w) = *wait {
        req = req
            .query("wait", w.to_string())
            .timeout(ctx.http.timeout + Duration::from_secs(w));
    }
    let reply = checked(ctx.http.call(req).await, ui)?;
    if *after == After::Saved
        && ctx.home.session_exists(sid)
        && let Some(next) = next_cursor(&reply)
    {
        ctx.home.write(sid, SessionFile::Cursor, &next)?;
    }
    Ok(reply)
}

fn messages(reply: &Reply) -> &[Value] {
    reply
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `nexus poll <SID> [--after C] [--members] [--wait S]`
pub async fn poll(ctx: &Ctx, input: &str, wait: Option<u64>) -> CmdResult {
    let sid = ctx.sid(input)?;
    let server = ctx.route(&sid);
    let agent = ctx.session_agent(&sid)?;
    if ctx.global.after.as_deref() == Some("") {
        return Err(Failure::coded("invalid_cursor", "--after needs a cursor"));
    }
    let spec = PollSpec {
        after: After::from_flag(ctx.global.after.as_deref()),
        members: ctx.global.members,
        wait,
    };
    let reply = poll_once(ctx, &ctx.ui, &sid, &server, &agent, &spec).await?;
    ctx.adopt(&sid, &server);
    let msgs = messages(&reply);
    if reply.get("truncated") == Some(&Value::Bool(true)) {
        ctx.ui.note(
            "⚠️  Some earlier messages are no longer available (server restart or expiry): there is a gap before these.",
        );
    }
    if !msgs.is_empty() {
        ctx.ui
            .note(format!("💬 Received {} message(s)", msgs.len()));
        ctx.ui.line("Tip: Send a message:");
        ctx.ui.line(format!("nexus send {sid} \"Your message\""));
        let with_json = msgs.iter().filter(|m| m.get("json").is_some()).count();
        if with_json > 0 {
            ctx.ui.line(format!(
                "📦 {with_json} message(s) include structured json data"
            ));
        }
    }
    if let Some(members) = reply.get("members").and_then(Value::as_array)
        && !members.is_empty()
    {
        ctx.ui.note("Members:");
        for m in members {
            ctx.ui.line(format!(
                "  - {} (last seen: {})",
                m.get("agentId").and_then(Value::as_str).unwrap_or("?"),
                m.get("lastSeenAt").and_then(Value::as_str).unwrap_or("?")
            ));
        }
    }
    Ok(Outcome::raw(reply.raw))
}

/// `nexus poll-all [--members] [--active]`
pub async fn poll_all(ctx: &Ctx, active: bool) -> CmdResult {
    let sids = ctx.home.sessions();
    if sids.is_empty() {
        return Ok(Outcome::compact(json!({ "sessions": [] })));
    }
    let targets: Vec<(Sid, Server)> = sids
        .into_iter()
        .map(|sid| {
            let binding = ctx.home.read(&sid, SessionFile::Server);
            let (server, _) = ctx.resolver.route(sid.as_str(), binding.as_deref());
            (sid, server)
        })
        .collect();
    let mut hosts: Vec<String> = targets
        .iter()
        .map(|(_, s)| crate::server::host_of(&s.url))
        .collect();
    hosts.sort();
    hosts.dedup();
    ctx.ui.line(format!(
        "→ polling {} session(s) across: {} (per-session bindings)",
        targets.len(),
        hosts.join(", ")
    ));
    let quiet = Ui { quiet: true };
    let members = ctx.global.members;
    let results = join_all(
        targets
            .iter()
            .map(|(sid, server)| async move {
                let agent = match ctx.home.read(sid, SessionFile::Agent) {
                    Some(a) => a,
                    None => {
                        return Err(Failure::msg(
                            "missing --agent-id and no persisted agent-id found",
                        ));
                    }
                };
                let spec = PollSpec {
                    after: After::Saved,
                    members,
                    wait: None,
                };
                poll_once(ctx, &quiet, sid, server, &agent, &spec).await
            })
            .collect(),
    )
    .await;
    let mut total = 0;
    let mut entries = Vec::new();
    for ((sid, server), result) in targets.iter().zip(results) {
        let alias = ctx.home.alias_of(sid);
        match result {
            Ok(reply) => {
                total += messages(&reply).len();
                ctx.adopt(sid, server);
                entries.push(json!({
                    "sessionId": sid.as_str(),
                    "alias": alias,
                    "messages": reply.get("messages").cloned().unwrap_or(json!([])),
                    "members": reply.get("members").cloned().unwrap_or(Value::Null),
                    "nextCursor": next_cursor(&reply),
                    "truncated": reply.get("truncated").and_then(Value::as_bool).unwrap_or(false),
                }));
            }
            Err(f) => {
                let err: Value = serde_json::from_str(&f.stdout).unwrap_or(Value::Null);
                let transport = matches!(
                    f.code().as_deref(),
                    Some("transport_error" | "non_json_response")
                );
                if active && !transport {
                    continue;
                }
                entries.push(json!({
                    "sessionId": sid.as_str(),
                    "alias": alias,
                    "messages": Value::Null,
                    "members": Value::Null,
                    "error": err,
                }));
            }
        }
    }
    if total > 0 {
        ctx.ui
            .note(format!("💬 {total} new message(s) across sessions"));
    }
    Ok(Outcome::compact(json!({ "sessions": entries })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_selection() {
        assert_eq!(After::from_flag(None).param(Some("7")), Some("7".into()));
        assert_eq!(After::from_flag(None).param(None), None);
        assert_eq!(After::from_flag(Some("0")).param(Some("7")), None);
        assert_eq!(
            After::from_flag(Some("3")).param(Some("7")),
            Some("3".into())
        );
    }
}
