//! The protocol rules of SPEC §1–§2, independent of HTTP: what each request may do, in which order
//! its checks run, and what it answers. Handlers call one [`Relay`] method per endpoint.
//!
//! - [`sessions`]: create, status, join, leave (its SPEC order of checks), renew.
//! - [`messages`]: send (verification, idempotency, quota) and poll (cursors, greeting,
//!   `truncated`, presence, long-poll).
//! - [`pairing`]: codes, claims, code states.
//! - [`expiry`]: the background sweep and batched flush.
//! - [`limits`]: rate-limit and claim-failure windows.
//! - [`redact`]: secret redaction of message content.
//! - [`error`]: the domain's one error type.

pub mod error;
pub mod expiry;
pub mod limits;
pub mod messages;
pub mod pairing;
pub mod redact;
pub mod sessions;

use std::sync::Arc;

use nexus_proto::api::{Capabilities, Health, Limits, Stats, StoreHealth};
use nexus_proto::time::{Millis, Timestamp};
use nexus_proto::{AgentId, AgentIdError, ErrorCode, SessionId};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use error::RelayError;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::metered::{Metered, StoreTimings};
use crate::store::{Deadlines, Store};

/// The relay: configuration, clock, store and the shutdown signal long-polls listen to.
pub struct Relay {
    pub config: Config,
    pub clock: Clock,
    /// The backend, wrapped in [`Metered`] so every call is timed.
    pub store: Arc<dyn Store>,
    /// Latency and failures of every store operation (`/metrics`).
    pub store_timings: Arc<StoreTimings>,
    /// Cancelled when the server begins a graceful shutdown: parked long-polls answer at once.
    pub shutdown: CancellationToken,
    /// Base of pairing URLs and skill documents, without a trailing slash.
    pub public_url: String,
    /// Requests per client IP (`RATE_LIMIT_PER_MINUTE`) and failed claims per IP and server-wide:
    /// in this process, or in Redis when nodes share it ([`Relay::with_counters`]).
    pub counters: Arc<dyn limits::LimitCounters>,
    /// Slots for parked long-polls (`MAX_WAITERS`).
    pub waiters: limits::Waiters,
    started_at: Millis,
}

impl Relay {
    /// A relay over `store`, with its limit counters in this process.
    pub fn new(config: Config, clock: Clock, store: Arc<dyn Store>, public_url: String) -> Self {
        let started_at = clock.now_ms();
        let waiters = limits::Waiters::new(config.max_waiters);
        let store_timings = Arc::new(StoreTimings::default());
        Self {
            config,
            clock,
            store: Arc::new(Metered::new(store, store_timings.clone())),
            store_timings,
            shutdown: CancellationToken::new(),
            public_url,
            counters: Arc::new(limits::MemoryCounters::default()),
            waiters,
            started_at,
        }
    }

    /// The same relay counting rate limits and claim failures in `counters` (shared by nodes).
    pub fn with_counters(mut self, counters: Arc<dyn limits::LimitCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// The deadlines the store applies, derived from the configuration.
    pub fn deadlines(config: &Config) -> Deadlines {
        Deadlines {
            inactivity_ms: (config.agent_inactivity_seconds > 0)
                .then(|| config.agent_inactivity_seconds.saturating_mul(1000)),
            code_memory_ms: config.pair_code_ttl_seconds.saturating_mul(1000),
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_ttl_seconds: self.config.max_ttl_seconds,
            max_agents: self.config.max_agents,
        }
    }

    pub(crate) fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// Seconds since this node started.
    pub fn uptime(&self) -> u64 {
        self.now().saturating_sub(self.started_at) / 1000
    }

    /// `GET /health`: `status` is `unavailable` when the store cannot be reached.
    pub async fn health(&self) -> Health {
        let reachable = self.store.ping().await.is_ok();
        Health {
            status: if reachable { "ok" } else { "unavailable" }.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime: self.uptime(),
            capabilities: Capabilities {
                message_format: vec!["text".into(), "json".into()],
                long_poll: true,
                max_wait_seconds: nexus_proto::api::MAX_WAIT_SECONDS,
                idempotency: true,
                truncation: true,
            },
            store: Some(StoreHealth {
                backend: self.store.backend().into(),
                reachable,
            }),
        }
    }

    /// `GET /v1/stats`.
    pub async fn stats(&self) -> Result<Stats, RelayError> {
        let s = self.store.stats(self.now()).await?;
        Ok(Stats {
            active_sessions: s.sessions,
            total_agents: s.agents,
            total_messages: s.messages,
            uptime: self.uptime(),
        })
    }
}

/// 429 `rate_limit_exceeded` with `Retry-After`.
pub(crate) fn rate_limited(retry_after: u64, what: &str) -> RelayError {
    RelayError::new(
        ErrorCode::RateLimitExceeded,
        format!("{what}; retry after {retry_after} s"),
    )
    .with_retry_after(retry_after)
}

/// A path's session id; anything malformed cannot exist, so it is `session_not_found`.
pub(crate) fn session_id(raw: &str) -> Result<SessionId, RelayError> {
    SessionId::parse(raw).ok_or_else(session_not_found)
}

pub(crate) fn session_not_found() -> RelayError {
    RelayError::new(
        ErrorCode::SessionNotFound,
        "no such session: it never existed or has expired",
    )
}

/// The caller's `X-Agent-Id`: required and well-formed.
pub(crate) fn caller(header: Option<&str>) -> Result<AgentId, RelayError> {
    match header {
        None | Some("") => Err(RelayError::new(
            ErrorCode::MissingAgentId,
            "the X-Agent-Id header is required",
        )),
        Some(raw) => parse_agent_id(raw, "X-Agent-Id"),
    }
}

pub(crate) fn parse_agent_id(raw: &str, field: &str) -> Result<AgentId, RelayError> {
    AgentId::parse(raw).map_err(|e: AgentIdError| {
        RelayError::new(ErrorCode::InvalidAgentId, format!("{field}: {e}"))
            .with_details(vec![nexus_proto::FieldProblem::new(field, e.to_string())])
    })
}

/// A request body as JSON; an empty body is `{}` (SPEC §2).
pub(crate) fn json_body(body: &[u8]) -> Result<Value, RelayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body).map_err(|e| {
        RelayError::new(
            ErrorCode::InvalidBody,
            format!("the request body is not valid JSON: {e}"),
        )
    })
}

/// A wire timestamp (formatted only when the response is serialized).
pub(crate) fn ts(ms: Millis) -> Timestamp {
    Timestamp(ms)
}
