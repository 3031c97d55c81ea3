//! Wire types of the NexusMessaging protocol, shared by `nexus-server` and the `nexus` CLI.
//!
//! This crate owns everything both ends must agree on and nothing else: the formats of agent ids,
//! session ids and keys, cursors and pairing codes (SPEC §1), the request bodies with their
//! validation rules and the response bodies (SPEC §2), the error codes and the error body shape
//! `{"error","message","details"}`, and RFC 3339 timestamps. It performs no I/O: randomness comes in
//! as bytes from the caller, time as milliseconds since the Unix epoch.

pub mod agent_id;
pub mod api;
pub mod cursor;
pub mod error;
pub mod ids;
pub mod pair_code;
pub mod time;
mod validate;

pub use agent_id::{AgentId, AgentIdError};
pub use cursor::{Cursor, CursorError};
pub use error::{ErrorBody, ErrorCode, FieldProblem};
pub use ids::{SessionId, SessionKey};
pub use pair_code::PairCode;
