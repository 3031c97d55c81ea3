//! `create_session`, `join`, `status`, `renew` and `leave`: a session's life (SPEC §1 "Session",
//! "Creator", "Leave order of checks"; §3 `create`, `join`, `status`, `renew`, `leave`).
//!
//! `create_session` makes this server's agent the creator (so its key is saved and it can pair at
//! once). `join` is idempotent for a session this home already belongs to as the same agent. `leave`
//! cleans local state exactly as `nexus leave` does (its decision table), and a creator's refused
//! leave is an error that says the session will expire by itself.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{tool, tool_router};
use serde_json::{Value, json};

use super::{ToolResult, field, pick, printed};
use crate::commands::{leave, session};
use crate::mcp::errors::ToolError;
use crate::mcp::params::{self, CreateSessionArgs, RenewArgs, SessionArgs};
use crate::mcp::results::ToolReply;
use crate::mcp::server::NexusMcp;
use crate::state::SessionFile;

#[tool_router(router = lifecycle_router, vis = "pub(super)")]
impl NexusMcp {
    #[tool(
        description = "Create a new NexusMessaging session on the relay, with you (this server's agent id) \
            as its creator. Use it to start a conversation with another AI agent. Returns the \
            sessionId (the session key is kept for you, never shown). Next: call \
            create_pairing_link with the sessionId and give the URL to your human, then poll \
            with wait to receive messages.",
        annotations(
            title = "Create a session",
            read_only_hint = false,
            open_world_hint = true
        )
    )]
    async fn create_session(
        &self,
        Parameters(args): Parameters<CreateSessionArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let agent = self.shared.agent()?;
        let mut ctx = self.shared.ctx();
        ctx.global.ttl = Some(args.ttl.unwrap_or(nexus_proto::api::DEFAULT_TTL_SECONDS));
        ctx.global.max_agents = args.max_agents;
        ctx.global.greeting = args.greeting.filter(|g| !g.is_empty());
        ctx.global.creator_agent_id = Some(agent.clone());
        let v = printed(session::create(&ctx).await)?;
        self.sessions_changed(&context).await;
        let sid = field(&v, "sessionId", "?").to_owned();
        Ok(ToolReply::new(
            pick(
                &v,
                &[
                    "sessionId",
                    "creatorAgentId",
                    "ttl",
                    "maxAgents",
                    "expiresAt",
                    "greeting",
                ],
            ),
            format!(
                "You created session {sid} as its creator ({agent}). Next: call create_pairing_link with this sessionId and give the URL to your human for the other agent; then poll with wait to receive their messages."
            ),
        ))
    }

    #[tool(
        description = "Join a session by its id, as this server's agent id. Use it only when you were given \
            a session id; with a pairing code or link, use claim instead. Next: poll to read the \
            greeting and messages, send to talk.",
        annotations(
            title = "Join a session",
            read_only_hint = false,
            open_world_hint = true
        )
    )]
    async fn join(
        &self,
        Parameters(args): Parameters<SessionArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let input = params::session(&args.session)?;
        let agent = self.shared.agent()?;
        let mut ctx = self.shared.ctx();
        ctx.global.agent_id = Some(agent.clone());
        let v = match printed(session::join(&ctx, input).await) {
            Ok(v) => v,
            Err(e) if e.code == "agent_id_taken" && self.already_member(input, &agent) => {
                let sid = self
                    .shared
                    .home
                    .resolve(input)
                    .map_err(|f| ToolError::from_failure(&f))?;
                return Ok(ToolReply::new(
                    json!({"sessionId": sid.as_str(), "status": "already_joined", "agentId": agent}),
                    format!(
                        "You are already a member of {sid} as {agent}. Next: poll to read new messages, send to talk."
                    ),
                ));
            }
            Err(e) => return Err(e),
        };
        self.sessions_changed(&context).await;
        let mut out = pick(&v, &["sessionId", "status", "agentsOnline", "expiresAt"]);
        out["agentId"] = json!(agent);
        let sid = field(&v, "sessionId", input).to_owned();
        Ok(ToolReply::new(
            out,
            format!(
                "You joined session {sid} as {agent}. Next: poll to read the greeting and messages (wait up to 60 s to block for the next one), send to talk."
            ),
        ))
    }

    #[tool(
        description = "Show a session's members (with when each was last seen), its TTL and when it \
            expires. Use it to check who is present or how long the session lives. Activity \
            (send, poll, renew) pushes the expiry back; renew extends it without a message.",
        annotations(
            title = "Session status",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn status(&self, Parameters(args): Parameters<SessionArgs>) -> ToolResult {
        let input = params::session(&args.session)?;
        let ctx = self.shared.ctx();
        let mut v = printed(session::status(&ctx, input).await)?;
        if let Value::Object(m) = &mut v {
            // `members` says the same as `agents`, with presence.
            if m.get("members").is_some_and(Value::is_array) {
                m.remove("agents");
            }
            if let Ok(sid) = self.shared.home.resolve(input) {
                if let Some(alias) = self.shared.home.alias_of(&sid) {
                    m.insert("alias".into(), json!(alias));
                }
                if let Some(me) = self.shared.home.read(&sid, SessionFile::Agent) {
                    m.insert("you".into(), json!(me));
                }
            }
        }
        let guidance = match (v.get("expiresAt").and_then(Value::as_str), v.get("ttl")) {
            (Some(exp), Some(ttl)) => format!(
                "Expires at {exp} unless someone sends, polls or renews (each restarts its {ttl} s TTL). Use renew to extend it without a message."
            ),
            _ => "Use renew to extend the session without sending a message.".to_owned(),
        };
        Ok(ToolReply::new(v, guidance))
    }

    #[tool(
        description = "Extend a session's life: restarts its TTL now, optionally with a new ttl in seconds. \
            Use it when a conversation will pause longer than the TTL. Members only.",
        annotations(
            title = "Renew a session",
            read_only_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn renew(&self, Parameters(args): Parameters<RenewArgs>) -> ToolResult {
        let input = params::session(&args.session)?;
        let (mut ctx, s) = self.shared.session(input)?;
        ctx.global.ttl = args.ttl;
        let v = printed(session::renew(&ctx, s.sid.as_str()).await)?;
        let guidance = format!(
            "Renewed: the session now expires at {}.",
            field(&v, "expiresAt", "a later time")
        );
        Ok(ToolReply::new(
            pick(&v, &["sessionId", "ttl", "expiresAt"]),
            guidance,
        ))
    }

    #[tool(
        description = "Leave a session: you stop being a member and its local state (key, cursor, aliases) \
            is removed. Use it when the conversation is over. The creator cannot leave: a \
            creator's session simply expires after its TTL of silence.",
        annotations(
            title = "Leave a session",
            read_only_hint = false,
            destructive_hint = true,
            open_world_hint = true
        )
    )]
    async fn leave(
        &self,
        Parameters(args): Parameters<SessionArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let input = params::session(&args.session)?;
        let (ctx, s) = self.shared.session(input)?;
        let v = printed(leave::leave(&ctx, s.sid.as_str()).await)?;
        self.sessions_changed(&context).await;
        let mut out = json!({"sessionId": s.sid.as_str(), "status": "removed", "agentId": s.agent});
        let guidance = match v.get("error").and_then(Value::as_str) {
            Some(code) => {
                out["relay"] = json!(code);
                format!("The relay no longer had you in this session ({code}); its local state is removed. To talk again, claim a new pairing link.")
            }
            None => "You left the session and its local state is removed. To talk again, claim a new pairing link or create a session.".to_owned(),
        };
        Ok(ToolReply::new(out, guidance))
    }
}

impl NexusMcp {
    /// Whether this home already belongs to `input` as `agent`, with a key (a join refused with
    /// `agent_id_taken` is then a no-op).
    fn already_member(&self, input: &str, agent: &str) -> bool {
        let home = &self.shared.home;
        home.resolve(input).is_ok_and(|sid| {
            home.read(&sid, SessionFile::Agent).as_deref() == Some(agent)
                && home.read(&sid, SessionFile::Key).is_some()
        })
    }
}
