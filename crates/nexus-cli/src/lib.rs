//! `nexus`: the command-line client of the NexusMessaging protocol (SPEC §3), a drop-in for the
//! upstream bash client `nexus.sh` with its known bugs fixed.
//!
//! The binary (`main.rs`) is a thin shell over this library so that the pure parts (argument
//! parsing, URL normalisation, local state, the `leave` decision table) are unit-tested in place.
//! Layout, by SPEC concept:
//! - [`cli`]: every flag and command, defined once with clap (help, completions and parsing).
//! - [`output`]: the stdout-JSON / stderr-human discipline and the failure type every command uses.
//! - [`state`]: the local files under `$NEXUS_HOME` or `~/.config/messaging/`.
//! - [`server`]: which server a command talks to (precedence, normalisation, session binding).
//! - [`client`]: the HTTP client: timeouts, error passthrough, transport failures.
//! - [`commands`]: one module per command group.
//! - [`mcp`]: `nexus mcp`, the same commands as MCP tools and resources over stdio.

pub mod cli;
pub mod client;
pub mod commands;
pub mod mcp;
pub mod output;
pub mod server;
pub mod state;
