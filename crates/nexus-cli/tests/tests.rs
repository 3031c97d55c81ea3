//! Integration tests: the real `nexus` binary against the real `nexus-server` (and, where a
//! server must misbehave, a tiny scripted HTTP server), each agent with its own temporary home.
//! One test binary, one link step (see `suite/`).

mod suite;
