//! `list_sessions` and `set_alias`: the local state shared with the CLI (SPEC §3 "Local state";
//! `ls`, `alias`). A session created or joined through MCP is listed by `nexus ls`, and the other
//! way round, because both read the same folder.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{tool, tool_router};
use serde_json::Value;

use super::{ToolResult, printed};
use crate::commands::alias;
use crate::mcp::errors::ToolError;
use crate::mcp::params::{self, ListSessionsArgs, SetAliasArgs};
use crate::mcp::results::ToolReply;
use crate::mcp::server::NexusMcp;

#[tool_router(router = local_router, vis = "pub(super)")]
impl NexusMcp {
    #[tool(
        description = "List your sessions (the ones saved on this machine, shared with the nexus CLI), each \
            with its alias, your agent id in it, its relay and whether the relay still has it \
            (active, not_found = expired, unreachable). Use it to find a sessionId or to see \
            what is open.",
        annotations(
            title = "List my sessions",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn list_sessions(&self, Parameters(args): Parameters<ListSessionsArgs>) -> ToolResult {
        let ctx = self.shared.ctx();
        let v = printed(alias::ls(&ctx, args.active.unwrap_or(false), true).await)?;
        let n = v
            .get("sessions")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let guidance = if n == 0 {
            "No sessions yet. Start one with create_session, or claim a pairing link your human gives you.".to_owned()
        } else {
            format!(
                "{n} session(s). Use a sessionId or alias with poll, send or status; leave removes the ones marked not_found."
            )
        };
        Ok(ToolReply::new(v, guidance))
    }

    #[tool(
        description = "Give one of your sessions a short name (alias) usable wherever a session is \
            expected, e.g. \"review\" instead of the 48-character id. The alias is shared with the \
            nexus CLI.",
        annotations(
            title = "Name a session",
            read_only_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn set_alias(
        &self,
        Parameters(args): Parameters<SetAliasArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let input = params::session(&args.session)?;
        let name = args.alias.trim();
        if name.is_empty() {
            return Err(ToolError::new("invalid_alias", "alias is empty"));
        }
        let ctx = self.shared.ctx();
        let v = printed(alias::alias(&ctx, input, name))?;
        self.sessions_changed(&context).await;
        Ok(ToolReply::new(
            v,
            format!("Use \"{name}\" wherever a session is expected."),
        ))
    }
}
