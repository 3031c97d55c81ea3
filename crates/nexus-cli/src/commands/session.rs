//! `create`, `status`, `join` and `renew` (inventory §1.5.1-1.5.3, 1.5.10): the session lifecycle
//! apart from leaving. `create` with a creator and `join` save the agent id, key and server binding.

use serde_json::{Map, Value, json};

use super::{Ctx, validate_agent};
use crate::client::{Request, checked};
use crate::output::{CmdResult, Outcome, short};
use crate::state::Sid;

/// `nexus create [--ttl N] [--max-agents N] [--greeting T] [--creator-agent-id ID | --agent-id ID]`
pub async fn create(ctx: &Ctx) -> CmdResult {
    let g = &ctx.global;
    let ttl = match g.ttl {
        Some(t) => t,
        None => {
            ctx.ui
                .line("⚠️  TTL not specified — using default 3660s (~1h)");
            nexus_proto::api::DEFAULT_TTL_SECONDS
        }
    };
    let mut body = Map::new();
    body.insert("ttl".into(), json!(ttl));
    if let Some(gr) = &g.greeting {
        body.insert("greeting".into(), json!(gr));
    }
    if let Some(m) = g.max_agents {
        body.insert("maxAgents".into(), json!(m));
    }
    if let Some(c) = &g.creator_agent_id {
        body.insert("creatorAgentId".into(), json!(c));
    }
    let server = ctx.effective();
    let mut req = Request::put(format!("{}/v1/sessions", server.base())).json(Value::Object(body));
    if let Some(a) = g.agent_id.as_deref().filter(|a| !a.is_empty()) {
        req = req.header("X-Agent-Id", validate_agent(a)?);
    }
    let reply = checked(ctx.http.call(req).await, &ctx.ui)?;
    // Persistence follows the response (nexus.sh 0.6.6): the server decides who the creator is.
    let sid = reply.str_field("sessionId").and_then(Sid::parse);
    if let (Some(sid), Some(creator)) = (&sid, reply.str_field("creatorAgentId")) {
        ctx.save_acquired(sid, &server, creator, reply.str_field("sessionKey"))?;
        ctx.ui.note(format!(
            "✅ Session created; you are its creator ({creator}). Next: nexus pair {sid}"
        ));
    } else if let Some(sid) = &sid {
        ctx.ui.note(format!(
            "✅ Session created. Next: nexus join {sid} --agent-id <ID>, then nexus pair {sid}"
        ));
    }
    Ok(Outcome::raw(reply.raw))
}

/// `nexus status <SID>`
pub async fn status(ctx: &Ctx, input: &str) -> CmdResult {
    let sid = ctx.sid(input)?;
    let server = ctx.route(&sid);
    let req = Request::get(format!("{}/v1/sessions/{sid}", server.base()));
    let reply = checked(ctx.http.call(req).await, &ctx.ui)?;
    ctx.adopt(&sid, &server);
    Ok(Outcome::raw(reply.raw))
}

/// `nexus join <SID> --agent-id ID`
pub async fn join(ctx: &Ctx, input: &str) -> CmdResult {
    let sid = ctx.sid(input)?;
    let agent = ctx.required_agent()?;
    let server = ctx.effective();
    let req = Request::post(format!("{}/v1/sessions/{sid}/join", server.base()))
        .header("X-Agent-Id", agent.as_str());
    let reply = checked(ctx.http.call(req).await, &ctx.ui)?;
    ctx.save_acquired(&sid, &server, &agent, reply.str_field("sessionKey"))?;
    ctx.ui.note(format!(
        "✅ Joined {}… as {agent}. Next: nexus poll {sid}",
        short(sid.as_str())
    ));
    Ok(Outcome::raw(reply.raw))
}

/// `nexus renew <SID> [--ttl N]`
pub async fn renew(ctx: &Ctx, input: &str) -> CmdResult {
    let sid = ctx.sid(input)?;
    let server = ctx.route(&sid);
    let agent = ctx.session_agent(&sid)?;
    // Never an empty body: `{}` or `{"ttl": N}` (nexus.sh ≥ 0.5.6).
    let body = match ctx.global.ttl {
        Some(t) => json!({ "ttl": t }),
        None => json!({}),
    };
    let req = Request::post(format!("{}/v1/sessions/{sid}/renew", server.base()))
        .header("X-Agent-Id", agent)
        .json(body);
    let reply = checked(ctx.http.call(req).await, &ctx.ui)?;
    ctx.adopt(&sid, &server);
    if let Some(exp) = reply.str_field("expiresAt") {
        ctx.ui
            .note(format!("✅ Session renewed — expires at: {exp}"));
    }
    Ok(Outcome::raw(reply.raw))
}
