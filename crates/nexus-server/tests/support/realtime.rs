//! Running a networked store under tokio's paused clock.
//!
//! The router tests pause time (`start_paused = true`); tokio then advances the clock to the next
//! timer whenever the runtime has nothing to do — including while it waits for a socket. A test
//! that awaited Redis replies directly would see timers fire early: a parked long-poll's 30 s
//! deadline would pass while Redis answers in 100 µs.
//!
//! [`RealTime`] avoids that soundly: the Redis client (its connections and its subscriber) lives
//! on a separate multi-thread runtime whose clock is real, and every store call is made from
//! `tokio::task::spawn_blocking`, which tokio documents to inhibit auto-advance while it runs (on
//! the current-thread runtime `#[tokio::test]` uses). So paused time moves only when the test
//! advances it or when every task waits on a *timer*, exactly as with the in-memory store. A send
//! wakes local long-polls before it returns (the backend fans out locally, not only through
//! pub/sub), so "answered at once" assertions hold to the millisecond.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use nexus_proto::time::Millis;
use nexus_proto::{AgentId, Cursor, PairCode, SessionId, SessionKey};
use nexus_server::domain::limits::LimitCounters;
use nexus_server::store::*;
use tokio::runtime::Handle;

/// A store (or limit counters) driven on a real-time runtime; see the module documentation.
pub struct RealTime<T: ?Sized> {
    inner: Arc<T>,
    rt: Handle,
}

impl<T: ?Sized + Send + Sync + 'static> RealTime<T> {
    pub fn new(inner: Arc<T>, rt: Handle) -> Self {
        Self { inner, rt }
    }

    /// Runs `call(inner)` on the real-time runtime, from a blocking thread of the test's runtime.
    async fn run<R, F, Fut>(&self, call: F) -> R
    where
        R: Send + 'static,
        F: FnOnce(Arc<T>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let (inner, rt) = (self.inner.clone(), self.rt.clone());
        tokio::task::spawn_blocking(move || rt.block_on(call(inner)))
            .await
            .expect("a store call panicked")
    }
}

#[async_trait]
impl Store for RealTime<dyn Store> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run(|s| async move { s.ping().await }).await
    }

    async fn create_session(&self, record: SessionRecord, max: u64) -> StoreResult<bool> {
        self.run(move |s| async move { s.create_session(record, max).await })
            .await
    }

    async fn session(&self, id: &SessionId, now: Millis) -> StoreResult<Option<SessionRecord>> {
        let id = id.clone();
        self.run(move |s| async move { s.session(&id, now).await })
            .await
    }

    async fn join(
        &self,
        id: &SessionId,
        agent: &AgentId,
        key: SessionKey,
        now: Millis,
    ) -> StoreResult<JoinOutcome> {
        let (id, agent) = (id.clone(), agent.clone());
        self.run(move |s| async move { s.join(&id, &agent, key, now).await })
            .await
    }

    async fn leave(
        &self,
        id: &SessionId,
        agent: &AgentId,
        key: &str,
        now: Millis,
    ) -> StoreResult<LeaveOutcome> {
        let (id, agent, key) = (id.clone(), agent.clone(), key.to_owned());
        self.run(move |s| async move { s.leave(&id, &agent, &key, now).await })
            .await
    }

    async fn renew(
        &self,
        id: &SessionId,
        ttl_secs: Option<u64>,
        now: Millis,
    ) -> StoreResult<Option<SessionRecord>> {
        let id = id.clone();
        self.run(move |s| async move { s.renew(&id, ttl_secs, now).await })
            .await
    }

    async fn append(
        &self,
        id: &SessionId,
        message: NewMessage,
        limits: AppendLimits,
        now: Millis,
    ) -> StoreResult<AppendOutcome> {
        let id = id.clone();
        self.run(move |s| async move { s.append(&id, message, limits, now).await })
            .await
    }

    async fn read(
        &self,
        id: &SessionId,
        reader: &AgentId,
        after: Option<Cursor>,
        limit: usize,
        now: Millis,
    ) -> StoreResult<ReadOutcome> {
        let (id, reader) = (id.clone(), reader.clone());
        self.run(move |s| async move { s.read(&id, &reader, after, limit, now).await })
            .await
    }

    fn subscribe(&self, id: &SessionId) -> Option<Wakeup> {
        self.inner.subscribe(id)
    }

    async fn create_code(&self, record: CodeRecord) -> StoreResult<bool> {
        self.run(move |s| async move { s.create_code(record).await })
            .await
    }

    async fn claim_code(
        &self,
        code: &PairCode,
        agent: &AgentId,
        key: SessionKey,
        now: Millis,
    ) -> StoreResult<ClaimOutcome> {
        let (code, agent) = (code.clone(), agent.clone());
        self.run(move |s| async move { s.claim_code(&code, &agent, key, now).await })
            .await
    }

    async fn code_state(
        &self,
        code: &PairCode,
        now: Millis,
    ) -> StoreResult<(CodeState, Option<Millis>)> {
        let code = code.clone();
        self.run(move |s| async move { s.code_state(&code, now).await })
            .await
    }

    async fn stats(&self, now: Millis) -> StoreResult<StoreStats> {
        self.run(move |s| async move { s.stats(now).await }).await
    }

    async fn sweep(&self, now: Millis) -> StoreResult<()> {
        self.run(move |s| async move { s.sweep(now).await }).await
    }

    async fn flush(&self) -> StoreResult<()> {
        self.run(|s| async move { s.flush().await }).await
    }

    async fn close(&self) -> StoreResult<()> {
        self.run(|s| async move { s.close().await }).await
    }
}

#[async_trait]
impl LimitCounters for RealTime<dyn LimitCounters> {
    async fn hit_request(
        &self,
        ip: IpAddr,
        limit: u64,
        now: Millis,
    ) -> StoreResult<Result<(), u64>> {
        self.run(move |c| async move { c.hit_request(ip, limit, now).await })
            .await
    }

    async fn check_claims(
        &self,
        ip: IpAddr,
        per_ip: u64,
        global: u64,
        now: Millis,
    ) -> StoreResult<Result<(), u64>> {
        self.run(move |c| async move { c.check_claims(ip, per_ip, global, now).await })
            .await
    }

    async fn record_claim_failure(&self, ip: IpAddr, now: Millis) -> StoreResult<()> {
        self.run(move |c| async move { c.record_claim_failure(ip, now).await })
            .await
    }
}
