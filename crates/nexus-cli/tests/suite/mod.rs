//! Test areas, one module each, and the shared harness.

mod daemon;
mod errors;
mod extras;
mod flows;
mod harness;
mod layout;
mod leave;
mod mcp;
mod mcp_listen;
mod servers;
