//! `nexus-server`: the NexusMessaging relay.
//!
//! Layers, each in its own folder (SPEC §1–§2):
//! - [`http`]: routes, extractors, request ids, access logs and the one mapping of errors to the
//!   wire shape `{"error","message","details"}`.
//! - [`domain`]: the protocol rules (sessions, pairing, messages, long-poll, expiry), knowing
//!   nothing about HTTP.
//! - [`store`]: the storage trait and its backends: embedded (messages in memory, session
//!   metadata in `DATA_DIR` via redb; the default) and Redis (`REDIS_URL`: several nodes, one
//!   set of sessions).
//!
//! [`config`] holds every setting; [`clock`] is the one source of time; [`server`] binds, serves and
//! shuts down gracefully; [`connections`] caps open connections; [`histogram`] is the lock-free
//! latency histogram behind `/metrics`; [`logging`] writes logs to stderr off the request path.

pub mod clock;
pub mod config;
pub mod connections;
pub mod domain;
pub mod histogram;
pub mod http;
pub mod logging;
pub mod secrets;
pub mod server;
pub mod store;
