//! `nexus mcp` (issue 8): the relay as MCP tools and resources over stdio, for any MCP client.
//!
//! It is a thin layer over the CLI: the same HTTP client, server selection and local state, so a
//! session created through MCP is listed by `nexus ls` and the other way round (SPEC §3 "Local
//! state"). Layout, one concern per file:
//! - [`server`]: the `ServerHandler` — capabilities, tool dispatch, resources, subscriptions;
//! - [`tools`]: the twelve tools, one file per group, over the CLI commands;
//! - [`params`]: the tools' arguments and their JSON schemas;
//! - [`results`]: the shape of results (compact JSON plus guidance) and key stripping;
//! - [`errors`]: the one error type and its mapping to tool errors and JSON-RPC errors;
//! - [`resources`]: transcripts as `nexus://sessions/<id>`;
//! - [`watch`]: one background long-poll per subscribed transcript;
//! - [`history`]: reading what a session holds without moving the saved cursor;
//! - [`context`]: the per-process state and the per-call CLI context;
//! - [`identity`]: the agent id (`--agent-id`, `NEXUS_AGENT_ID`, `agentId` in config.json);
//! - [`transport`]: stdin/stdout, with a signal when the client closes stdin.
//!
//! stdout carries only the protocol; the one human line (which agent, which server) goes to
//! stderr and `--quiet` silences it. Session keys never reach a tool result, a resource or a log.

pub mod context;
pub mod errors;
pub mod history;
pub mod identity;
pub mod params;
pub mod resources;
pub mod results;
pub mod server;
pub mod tools;
pub mod transport;
pub mod watch;

use rmcp::ServiceExt;

use crate::cli::Global;
use crate::output::Ui;

/// Serves MCP on stdin/stdout until the client closes stdin; returns the exit status.
pub async fn serve(global: Global) -> u8 {
    let ui = Ui {
        quiet: global.quiet,
    };
    let shared = match context::Shared::new(&global) {
        Ok(s) => s,
        Err(f) => {
            ui.line(format!("nexus mcp: cannot start: {}", f.stdout));
            return 1;
        }
    };
    ui.line(format!(
        "nexus mcp {}: {}, server {} — speaking MCP on stdio",
        env!("CARGO_PKG_VERSION"),
        shared.identity.describe(&shared.home),
        shared.resolver().effective().url,
    ));
    let handler = server::NexusMcp::new(shared);
    let (stdin, stdout) = rmcp::transport::io::stdio_pipes();
    // End of input stops watchers, listens and long-polls at once (see `transport`).
    let stdin = transport::EofSignal::new(stdin, handler.closing().clone());
    let running = match handler.clone().serve((stdin, stdout)).await {
        Ok(r) => r,
        Err(e) => {
            ui.line(format!("nexus mcp: the client did not initialise: {e}"));
            handler.shutdown();
            return 1;
        }
    };
    let ended = running.waiting().await;
    handler.shutdown();
    match ended {
        Ok(_) => 0,
        Err(e) => {
            ui.line(format!("nexus mcp: stopped: {e}"));
            1
        }
    }
}
