//! [`Metered`]: a [`Store`] that forwards every call to the real backend and times it, so
//! `/metrics` can show the store's round-trip latency per operation (one Redis round trip for most
//! operations of the Redis backend; in-process work for the embedded one) and its failures.
//! [`crate::domain::Relay::new`] wraps every store in it, whatever the backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use nexus_proto::time::Millis;
use nexus_proto::{AgentId, Cursor, PairCode, SessionId, SessionKey};

use super::*;
use crate::histogram::{Histogram, STORE_BOUNDS_US};

/// The store operations, as labelled in `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Ping,
    CreateSession,
    Session,
    Join,
    Leave,
    Renew,
    Append,
    Read,
    CreateCode,
    ClaimCode,
    CodeState,
    Stats,
    Sweep,
    Flush,
    Close,
}

impl Op {
    pub const ALL: [Op; 15] = [
        Op::Ping,
        Op::CreateSession,
        Op::Session,
        Op::Join,
        Op::Leave,
        Op::Renew,
        Op::Append,
        Op::Read,
        Op::CreateCode,
        Op::ClaimCode,
        Op::CodeState,
        Op::Stats,
        Op::Sweep,
        Op::Flush,
        Op::Close,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Ping => "ping",
            Op::CreateSession => "create_session",
            Op::Session => "session",
            Op::Join => "join",
            Op::Leave => "leave",
            Op::Renew => "renew",
            Op::Append => "append",
            Op::Read => "read",
            Op::CreateCode => "create_code",
            Op::ClaimCode => "claim_code",
            Op::CodeState => "code_state",
            Op::Stats => "stats",
            Op::Sweep => "sweep",
            Op::Flush => "flush",
            Op::Close => "close",
        }
    }
}

/// Latency and failures of every store operation.
pub struct StoreTimings {
    latency: Vec<Histogram>,
    errors: Vec<AtomicU64>,
}

impl Default for StoreTimings {
    fn default() -> Self {
        Self {
            latency: Op::ALL
                .iter()
                .map(|_| Histogram::new(STORE_BOUNDS_US))
                .collect(),
            errors: Op::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl StoreTimings {
    fn index(op: Op) -> usize {
        Op::ALL.iter().position(|o| *o == op).unwrap_or(0)
    }

    pub fn latency(&self, op: Op) -> &Histogram {
        &self.latency[Self::index(op)]
    }

    pub fn errors(&self, op: Op) -> u64 {
        self.errors[Self::index(op)].load(Ordering::Relaxed)
    }

    fn record<T>(&self, op: Op, started: Instant, result: &StoreResult<T>) {
        let i = Self::index(op);
        self.latency[i].observe(started.elapsed());
        if result.is_err() {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The timing wrapper.
pub struct Metered {
    inner: Arc<dyn Store>,
    timings: Arc<StoreTimings>,
}

impl Metered {
    pub fn new(inner: Arc<dyn Store>, timings: Arc<StoreTimings>) -> Self {
        Self { inner, timings }
    }
}

macro_rules! timed {
    ($self:ident, $op:expr, $call:expr) => {{
        let started = Instant::now();
        let result = $call.await;
        $self.timings.record($op, started, &result);
        result
    }};
}

#[async_trait]
impl Store for Metered {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn ping(&self) -> StoreResult<()> {
        timed!(self, Op::Ping, self.inner.ping())
    }

    async fn create_session(&self, record: SessionRecord, max_sessions: u64) -> StoreResult<bool> {
        timed!(
            self,
            Op::CreateSession,
            self.inner.create_session(record, max_sessions)
        )
    }

    async fn session(&self, id: &SessionId, now: Millis) -> StoreResult<Option<SessionRecord>> {
        timed!(self, Op::Session, self.inner.session(id, now))
    }

    async fn join(
        &self,
        id: &SessionId,
        agent: &AgentId,
        key: SessionKey,
        now: Millis,
    ) -> StoreResult<JoinOutcome> {
        timed!(self, Op::Join, self.inner.join(id, agent, key, now))
    }

    async fn leave(
        &self,
        id: &SessionId,
        agent: &AgentId,
        key: &str,
        now: Millis,
    ) -> StoreResult<LeaveOutcome> {
        timed!(self, Op::Leave, self.inner.leave(id, agent, key, now))
    }

    async fn renew(
        &self,
        id: &SessionId,
        ttl_secs: Option<u64>,
        now: Millis,
    ) -> StoreResult<Option<SessionRecord>> {
        timed!(self, Op::Renew, self.inner.renew(id, ttl_secs, now))
    }

    async fn append(
        &self,
        id: &SessionId,
        message: NewMessage,
        limits: AppendLimits,
        now: Millis,
    ) -> StoreResult<AppendOutcome> {
        timed!(
            self,
            Op::Append,
            self.inner.append(id, message, limits, now)
        )
    }

    async fn read(
        &self,
        id: &SessionId,
        reader: &AgentId,
        after: Option<Cursor>,
        limit: usize,
        now: Millis,
    ) -> StoreResult<ReadOutcome> {
        timed!(
            self,
            Op::Read,
            self.inner.read(id, reader, after, limit, now)
        )
    }

    fn subscribe(&self, id: &SessionId) -> Option<Wakeup> {
        self.inner.subscribe(id)
    }

    async fn create_code(&self, record: CodeRecord) -> StoreResult<bool> {
        timed!(self, Op::CreateCode, self.inner.create_code(record))
    }

    async fn claim_code(
        &self,
        code: &PairCode,
        agent: &AgentId,
        key: SessionKey,
        now: Millis,
    ) -> StoreResult<ClaimOutcome> {
        timed!(
            self,
            Op::ClaimCode,
            self.inner.claim_code(code, agent, key, now)
        )
    }

    async fn code_state(
        &self,
        code: &PairCode,
        now: Millis,
    ) -> StoreResult<(CodeState, Option<Millis>)> {
        timed!(self, Op::CodeState, self.inner.code_state(code, now))
    }

    async fn stats(&self, now: Millis) -> StoreResult<StoreStats> {
        timed!(self, Op::Stats, self.inner.stats(now))
    }

    async fn sweep(&self, now: Millis) -> StoreResult<()> {
        timed!(self, Op::Sweep, self.inner.sweep(now))
    }

    async fn flush(&self) -> StoreResult<()> {
        timed!(self, Op::Flush, self.inner.flush())
    }

    async fn close(&self) -> StoreResult<()> {
        timed!(self, Op::Close, self.inner.close())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    #[tokio::test]
    async fn every_call_is_timed_under_its_operation() {
        let timings = Arc::new(StoreTimings::default());
        let inner = EmbeddedStore::in_memory(Deadlines {
            inactivity_ms: None,
            code_memory_ms: 1,
        });
        let store = Metered::new(Arc::new(inner), timings.clone());
        assert_eq!(store.backend(), "embedded");
        store.ping().await.unwrap();
        store.stats(0).await.unwrap();
        store.stats(0).await.unwrap();
        assert_eq!(timings.latency(Op::Ping).snapshot().count, 1);
        assert_eq!(timings.latency(Op::Stats).snapshot().count, 2);
        assert_eq!(timings.latency(Op::Append).snapshot().count, 0);
        assert_eq!(timings.errors(Op::Stats), 0);
    }
}
