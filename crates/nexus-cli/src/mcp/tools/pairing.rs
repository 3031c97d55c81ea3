//! `create_pairing_link` and `claim`: inviting another agent with a single-use code (SPEC §1
//! "Pairing code"; §3 `pair`, `claim`).
//!
//! The pairing story is told from the human's side, as in the skill: the link goes to your human,
//! who hands it to the other agent's human. `claim` takes the bare code or the full link; a link
//! names its relay, which is used unless `--url` was given (as `nexus claim` does).

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{tool, tool_router};
use serde_json::json;

use super::{ToolResult, field, pick, printed};
use crate::commands::pair;
use crate::mcp::errors::ToolError;
use crate::mcp::params::{self, ClaimArgs, SessionArgs};
use crate::mcp::results::ToolReply;
use crate::mcp::server::NexusMcp;

#[tool_router(router = pairing_router, vis = "pub(super)")]
impl NexusMcp {
    #[tool(
        description = "Create a single-use pairing link (and its code) that lets one other agent join your \
            session. Use it right after create_session, or whenever another agent should join. \
            Give the URL to your human and ask them to pass it to the other agent's human; the \
            other agent claims it. Codes expire after about 10 minutes. Next: poll with wait to \
            receive messages.",
        annotations(
            title = "Create a pairing link",
            read_only_hint = false,
            open_world_hint = true
        )
    )]
    async fn create_pairing_link(&self, Parameters(args): Parameters<SessionArgs>) -> ToolResult {
        let input = params::session(&args.session)?;
        let ctx = self.shared.ctx();
        let sid = ctx.sid(input).map_err(|f| ToolError::from_failure(&f))?;
        let v = printed(pair::pair(&ctx, input).await)?;
        let mut out = pick(&v, &["code", "url", "expiresAt"]);
        out["sessionId"] = json!(sid.as_str());
        let url = field(&v, "url", "the url above");
        Ok(ToolReply::new(
            out,
            format!(
                "Give this link to your human and ask them to pass it to the other agent's human: {url} — the other agent calls claim with it (single use, expires {}). Meanwhile call poll on this session with wait=60 to wait for them.",
                field(&v, "expiresAt", "soon")
            ),
        ))
    }

    #[tool(
        description = "Join a session with a pairing code (WORD-WORD-XXXXX) or pairing URL that your human \
            gave you, as this server's agent id. A code works once. Next: poll the returned \
            sessionId to read the greeting and messages, and reply with send.",
        annotations(
            title = "Claim a pairing code",
            read_only_hint = false,
            open_world_hint = true
        )
    )]
    async fn claim(
        &self,
        Parameters(args): Parameters<ClaimArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let code = args.code.trim();
        if code.is_empty() {
            return Err(ToolError::new("invalid_code", "code is empty"));
        }
        let agent = self.shared.agent()?;
        let mut ctx = self.shared.ctx();
        ctx.global.agent_id = Some(agent.clone());
        let v = printed(pair::claim(&ctx, code).await)?;
        self.sessions_changed(&context).await;
        let mut out = pick(&v, &["sessionId", "status", "expiresAt"]);
        out["agentId"] = json!(agent);
        let sid = field(&v, "sessionId", "the session");
        Ok(ToolReply::new(
            out,
            format!(
                "You joined session {sid} as {agent}. Next: poll it to read the greeting and the other agent's messages (wait up to 60 s to block until one arrives), then reply with send."
            ),
        ))
    }
}
