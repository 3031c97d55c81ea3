//! Fixed-window counters for SPEC §2 "Safety middleware": requests per client IP
//! (`RATE_LIMIT_PER_MINUTE`) and failed pairing claims per IP and server-wide
//! (`CLAIM_FAILURES_PER_MINUTE`, `CLAIM_FAILURES_GLOBAL_PER_MINUTE`). Windows are 60 s on the
//! relay's clock; a refusal carries the seconds left in the window for `Retry-After`.
//!
//! The relay counts through the [`LimitCounters`] trait: [`MemoryCounters`] keeps the windows in
//! this process (the embedded configuration), `store::redis::RedisCounters` keeps them in Redis so
//! that the limits hold across every node sharing it.
//!
//! Also the cap on parked long-polls (`MAX_WAITERS`): a poll takes a [`WaiterSlot`] before it
//! parks and gives it back when it answers, so a flood of long-polls cannot hold unbounded tasks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nexus_proto::time::Millis;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::store::StoreResult;

/// Length of a window.
pub const WINDOW_MS: Millis = 60_000;

/// Where the rate-limit and claim-failure windows are counted. Every answer is
/// `Ok(Err(retry_after_secs))` when the caller is over its limit; `Err` only when the counters
/// themselves cannot be reached.
#[async_trait]
pub trait LimitCounters: Send + Sync + 'static {
    /// Counts one request from `ip`; refused when `limit` were already counted in this window.
    async fn hit_request(
        &self,
        ip: IpAddr,
        limit: u64,
        now: Millis,
    ) -> StoreResult<Result<(), u64>>;
    /// Refused when `ip` has `per_ip` failed claims in this window, or the server `global`.
    /// Counts nothing.
    async fn check_claims(
        &self,
        ip: IpAddr,
        per_ip: u64,
        global: u64,
        now: Millis,
    ) -> StoreResult<Result<(), u64>>;
    /// Counts one failed claim for `ip` and for the server.
    async fn record_claim_failure(&self, ip: IpAddr, now: Millis) -> StoreResult<()>;
}

/// The windows of this process alone.
#[derive(Default)]
pub struct MemoryCounters {
    requests: Windows,
    claims: ClaimBudget,
}

#[async_trait]
impl LimitCounters for MemoryCounters {
    async fn hit_request(
        &self,
        ip: IpAddr,
        limit: u64,
        now: Millis,
    ) -> StoreResult<Result<(), u64>> {
        Ok(self.requests.hit(ip, limit, now))
    }

    async fn check_claims(
        &self,
        ip: IpAddr,
        per_ip: u64,
        global: u64,
        now: Millis,
    ) -> StoreResult<Result<(), u64>> {
        Ok(self.claims.check(ip, per_ip, global, now))
    }

    async fn record_claim_failure(&self, ip: IpAddr, now: Millis) -> StoreResult<()> {
        self.claims.record_failure(ip, now);
        Ok(())
    }
}

/// The start of the window `now` falls in.
pub fn window_of(now: Millis) -> Millis {
    now - now % WINDOW_MS
}

/// Seconds left in the window of `now` (at least 1), for `Retry-After`.
pub fn retry_after(now: Millis) -> u64 {
    (window_of(now) + WINDOW_MS - now).div_ceil(1000).max(1)
}

/// Keys past which stale windows are dropped on the next count.
const COMPACT_AT: usize = 100_000;

#[derive(Default)]
pub struct Windows {
    counts: Mutex<HashMap<IpAddr, (Millis, u64)>>,
}

impl Windows {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<IpAddr, (Millis, u64)>) -> T) -> T {
        let mut guard = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Counts one event for `ip`; `Err(retry_after_secs)` when `limit` was already reached.
    pub fn hit(&self, ip: IpAddr, limit: u64, now: Millis) -> Result<(), u64> {
        let window = window_of(now);
        self.with(|counts| {
            if counts.len() >= COMPACT_AT {
                counts.retain(|_, (w, _)| *w == window);
            }
            let slot = counts.entry(ip).or_insert((window, 0));
            if slot.0 != window {
                *slot = (window, 0);
            }
            if slot.1 >= limit {
                return Err(retry_after(now));
            }
            slot.1 += 1;
            Ok(())
        })
    }

    /// `Err(retry_after_secs)` when `ip` has reached `limit` in this window (counts nothing).
    pub fn check(&self, ip: IpAddr, limit: u64, now: Millis) -> Result<(), u64> {
        let window = window_of(now);
        self.with(|counts| match counts.get(&ip) {
            Some((w, n)) if *w == window && *n >= limit => Err(retry_after(now)),
            _ => Ok(()),
        })
    }

    /// Counts one event for `ip` without a limit.
    pub fn add(&self, ip: IpAddr, now: Millis) {
        let _ = self.hit(ip, u64::MAX, now);
    }
}

/// The claim-failure budget: per IP and server-wide.
#[derive(Default)]
pub struct ClaimBudget {
    per_ip: Windows,
    global: Windows,
}

/// The key the server-wide window is counted under.
const GLOBAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

impl ClaimBudget {
    pub fn check(&self, ip: IpAddr, per_ip: u64, global: u64, now: Millis) -> Result<(), u64> {
        self.per_ip.check(ip, per_ip, now)?;
        self.global.check(GLOBAL, global, now)
    }

    pub fn record_failure(&self, ip: IpAddr, now: Millis) {
        self.per_ip.add(ip, now);
        self.global.add(GLOBAL, now);
    }
}

/// The slots for parked long-polls (`MAX_WAITERS`).
pub struct Waiters(Arc<Semaphore>);

/// One parked long-poll; the slot is free again when this is dropped.
pub struct WaiterSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Waiters {
    pub fn new(max: u64) -> Self {
        let max = usize::try_from(max)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Self(Arc::new(Semaphore::new(max)))
    }

    /// A slot, or `None` when `MAX_WAITERS` polls are already parked.
    pub fn try_park(&self) -> Option<WaiterSlot> {
        self.0.clone().try_acquire_owned().ok().map(WaiterSlot)
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_window_and_resets() {
        let w = Windows::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t = 1_795_600_800_000; // a window boundary
        assert!(w.hit(ip, 2, t).is_ok());
        assert!(w.hit(ip, 2, t + 1).is_ok());
        assert_eq!(w.hit(ip, 2, t + 15_000), Err(45));
        assert!(w.hit(other, 2, t + 15_000).is_ok());
        assert!(w.hit(ip, 2, t + WINDOW_MS).is_ok());
    }

    #[test]
    fn claim_budget_counts_failures_only() {
        let b = ClaimBudget::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t = 1_795_600_800_000;
        assert!(b.check(ip, 1, 10, t).is_ok());
        b.record_failure(ip, t);
        assert!(b.check(ip, 1, 10, t).is_err());
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(b.check(other, 1, 1, t).is_err(), "global budget spent");
        assert!(b.check(other, 1, 2, t).is_ok());
    }

    #[tokio::test]
    async fn memory_counters_count_requests_and_claim_failures() {
        let c = MemoryCounters::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t = 1_795_600_800_000;
        assert_eq!(c.hit_request(ip, 1, t).await.unwrap(), Ok(()));
        assert_eq!(c.hit_request(ip, 1, t + 30_000).await.unwrap(), Err(30));
        assert_eq!(c.check_claims(ip, 1, 10, t).await.unwrap(), Ok(()));
        c.record_claim_failure(ip, t).await.unwrap();
        assert_eq!(c.check_claims(ip, 1, 10, t).await.unwrap(), Err(60));
        // Requests and claim failures are separate windows.
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(c.hit_request(other, 1, t).await.unwrap(), Ok(()));
    }

    #[test]
    fn waiter_slots_are_capped_and_given_back() {
        let w = Waiters::new(2);
        let a = w.try_park().unwrap();
        let _b = w.try_park().unwrap();
        assert!(w.try_park().is_none());
        drop(a);
        assert_eq!(w.available(), 1);
        assert!(w.try_park().is_some());
    }
}
