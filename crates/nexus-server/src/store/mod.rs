//! Storage: the [`Store`] trait every backend implements, and the records it keeps.
//!
//! Each method is one atomic step of the protocol (a join checks capacity and the id and adds the
//! member at once; an append checks membership, key, idempotency and quota, assigns the cursor and
//! slides the expiry at once), so a networked backend can do each in one round trip. The caller
//! passes `now`; the store applies the deadlines it is given (session expiry, message expiry,
//! agent inactivity) on every access, so nothing past its deadline is ever shown or accepted
//! (SPEC §1 "Inactivity"); [`Store::sweep`] only reclaims memory and disk.
//!
//! Backends: [`embedded::EmbeddedStore`] (in-memory state, metadata journaled to redb; the
//! default) and [`redis::RedisStore`] (everything in Redis or Valkey, so several relay nodes serve
//! one set of sessions; selected with `REDIS_URL`). [`metered::Metered`] wraps either one and times
//! every call for `/metrics`.

pub mod embedded;
pub mod metered;
mod persist;
pub mod redis;

use std::sync::Arc;

use async_trait::async_trait;
use nexus_proto::time::Millis;
use nexus_proto::{AgentId, Cursor, PairCode, SessionId, SessionKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

/// Failures of the storage layer itself (never protocol outcomes).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the store is shutting down")]
    Closed,
    /// A networked store cannot be reached (connection refused or lost, timeout). Answered 503
    /// `store_unavailable`: retrying later can succeed, unlike the other failures.
    #[error("the store is unreachable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A member of a session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberRecord {
    pub agent_id: AgentId,
    /// The member's key as the backend keeps it: the key itself in the embedded store, its
    /// SHA-256 digest in Redis. Only the store compares keys ([`Store::append`], [`Store::leave`]).
    pub key: SessionKey,
    pub joined_at: Millis,
    pub last_seen_at: Millis,
}

/// Everything about a session that survives a restart (SPEC §1 "Persistence").
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: SessionId,
    pub ttl_secs: u64,
    pub max_agents: u64,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub creator: Option<AgentId>,
    pub greeting: Option<String>,
    pub members: Vec<MemberRecord>,
    /// Cursor of the last message appended.
    pub last_cursor: u64,
    /// Highest cursor durably reserved; after a crash, cursors resume above it.
    pub cursor_ceiling: u64,
    /// Every message with a cursor at or below this is gone (lost in a restart or expired).
    pub lost_through: u64,
}

impl SessionRecord {
    pub fn member(&self, agent: &AgentId) -> Option<&MemberRecord> {
        self.members.iter().find(|m| &m.agent_id == agent)
    }

    pub fn agent_ids(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| m.agent_id.as_str().to_owned())
            .collect()
    }
}

/// A stored message (bodies live in memory only).
#[derive(Clone, Debug)]
pub struct StoredMessage {
    pub id: String,
    pub agent_id: AgentId,
    pub text: Option<String>,
    pub json: Option<Value>,
    pub cursor: Cursor,
    pub verified: bool,
    pub sent_at: Millis,
    pub expires_at: Millis,
    /// The `Idempotency-Key` it was sent with, forgotten with the message.
    pub idempotency_key: Option<String>,
}

/// A message to append; the store assigns the cursor and expiry.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub id: String,
    pub agent_id: AgentId,
    /// The `X-Session-Key` sent, if any.
    pub key: Option<String>,
    pub text: Option<String>,
    pub json: Option<Value>,
    /// `Idempotency-Key` and a digest of the request body.
    pub idempotency: Option<(String, [u8; 32])>,
}

/// Limits the store enforces on append.
#[derive(Clone, Copy, Debug)]
pub struct AppendLimits {
    pub max_messages: u64,
    pub require_key: bool,
}

#[derive(Debug)]
pub enum AppendOutcome {
    Stored(Arc<StoredMessage>),
    /// The same idempotency key and body were sent before: the original message.
    Repeated(Arc<StoredMessage>),
    SessionNotFound,
    NotMember,
    MissingKey,
    InvalidKey,
    IdempotencyKeyReused,
    QuotaExceeded,
}

#[derive(Debug)]
pub enum JoinOutcome {
    Joined { record: SessionRecord },
    SessionNotFound,
    AgentIdTaken,
    SessionFull,
}

#[derive(Debug)]
pub enum LeaveOutcome {
    Removed,
    SessionNotFound,
    AgentNotFound,
    /// The `X-Session-Key` presented does not belong to the agent; nothing changed.
    InvalidKey,
}

/// One page read by a member.
#[derive(Debug)]
pub enum ReadOutcome {
    Page(Page),
    SessionNotFound,
    NotMember,
}

#[derive(Debug)]
pub struct Page {
    pub record: SessionRecord,
    pub messages: Vec<Arc<StoredMessage>>,
    /// Messages the reader asked for are gone.
    pub truncated: bool,
    /// When this reader's view changes without a message: session expiry or the reader's
    /// inactivity deadline. A long-poll re-reads at that moment.
    pub release_at: Millis,
}

/// A pairing code's record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CodeRecord {
    pub code: PairCode,
    pub session_id: SessionId,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub claimed_at: Option<Millis>,
    /// When the code is forgotten entirely (`code_not_found`).
    pub forget_at: Millis,
}

impl CodeRecord {
    /// A new, unclaimed code for `session_id`, made at `now`: it expires after `ttl_ms`
    /// (`PAIR_CODE_TTL_SECONDS`) and is remembered as used or expired (`code_expired_or_used`) for
    /// as long again before it is forgotten (`code_not_found`).
    pub fn fresh(code: PairCode, session_id: SessionId, now: Millis, ttl_ms: Millis) -> Self {
        Self {
            code,
            session_id,
            created_at: now,
            expires_at: now + ttl_ms,
            claimed_at: None,
            forget_at: now + 2 * ttl_ms,
        }
    }
}

/// What a code looks like now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeState {
    Pending,
    Claimed,
    Expired,
    Unknown,
}

#[derive(Debug)]
pub enum ClaimOutcome {
    Claimed {
        record: SessionRecord,
    },
    Unknown,
    ExpiredOrUsed,
    /// The join was refused; the code stays pending.
    Refused(JoinOutcome),
}

/// Counts for `/v1/stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreStats {
    pub sessions: u64,
    pub agents: u64,
    pub messages: u64,
}

/// Wakes long-polls of one session: the value is the last cursor; a closed channel means the
/// session is gone; a member removal bumps it too so waiters re-check membership.
pub type Wakeup = watch::Receiver<u64>;

/// Deadlines that the store applies on access.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// Non-creator members silent this long are removed; `None` = never.
    pub inactivity_ms: Option<Millis>,
    /// Claimed or expired codes are remembered this long.
    pub code_memory_ms: Millis,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name for `/health` and `/metrics`: `"embedded"` or `"redis"`.
    fn backend(&self) -> &'static str;
    /// Whether the store answers at all (`/health`); always `Ok` for an in-process store.
    async fn ping(&self) -> StoreResult<()>;
    /// Stores a new session unless `max_sessions` are active. Durable on return.
    async fn create_session(&self, record: SessionRecord, max_sessions: u64) -> StoreResult<bool>;
    /// The session as it is now (inactive members removed), or `None` when gone.
    async fn session(&self, id: &SessionId, now: Millis) -> StoreResult<Option<SessionRecord>>;
    /// Adds a member. Durable on return.
    async fn join(
        &self,
        id: &SessionId,
        agent: &AgentId,
        key: SessionKey,
        now: Millis,
    ) -> StoreResult<JoinOutcome>;
    /// Removes a member whose session key is `key` (compared in constant time, or as digests).
    /// Durable on return.
    async fn leave(
        &self,
        id: &SessionId,
        agent: &AgentId,
        key: &str,
        now: Millis,
    ) -> StoreResult<LeaveOutcome>;
    /// Slides the expiry (with a new TTL if given). Durable on return.
    async fn renew(
        &self,
        id: &SessionId,
        ttl_secs: Option<u64>,
        now: Millis,
    ) -> StoreResult<Option<SessionRecord>>;
    /// Appends a message from a member, sliding the expiry and the sender's `lastSeenAt`.
    async fn append(
        &self,
        id: &SessionId,
        message: NewMessage,
        limits: AppendLimits,
        now: Millis,
    ) -> StoreResult<AppendOutcome>;
    /// Reads up to `limit` messages after `after` (all held ones, greeting excluded, when `None`),
    /// sliding the expiry and the reader's `lastSeenAt`.
    async fn read(
        &self,
        id: &SessionId,
        reader: &AgentId,
        after: Option<Cursor>,
        limit: usize,
        now: Millis,
    ) -> StoreResult<ReadOutcome>;
    /// A wake-up handle for long-polls, `None` when the session is known not to exist. A backend
    /// that cannot tell without I/O (Redis) always answers a handle; the read that follows says
    /// whether the session exists.
    fn subscribe(&self, id: &SessionId) -> Option<Wakeup>;
    /// Stores a new pairing code unless that code is already known (pending, claimed or expired
    /// and not yet forgotten): `false` then, and nothing is written, so a random collision can
    /// never repoint someone's code at another session. Durable on return.
    async fn create_code(&self, record: CodeRecord) -> StoreResult<bool>;
    /// Claims a pending code and joins `agent` at once (single use). Durable on return.
    async fn claim_code(
        &self,
        code: &PairCode,
        agent: &AgentId,
        key: SessionKey,
        now: Millis,
    ) -> StoreResult<ClaimOutcome>;
    /// A code's state and, while it is pending, when it expires.
    async fn code_state(
        &self,
        code: &PairCode,
        now: Millis,
    ) -> StoreResult<(CodeState, Option<Millis>)>;
    async fn stats(&self, now: Millis) -> StoreResult<StoreStats>;
    /// Reclaims memory and disk held by expired sessions, codes and messages.
    async fn sweep(&self, now: Millis) -> StoreResult<()>;
    /// Writes every pending batched change (sliding expiry, `lastSeenAt`, cursors).
    async fn flush(&self) -> StoreResult<()>;
    /// Final flush at shutdown: writes every session with its exact cursor, then closes.
    async fn close(&self) -> StoreResult<()>;
}
