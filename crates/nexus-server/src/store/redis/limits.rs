//! [`RedisCounters`]: the rate-limit and failed-claim windows of SPEC §2 "Safety middleware" kept
//! in Redis, so `RATE_LIMIT_PER_MINUTE`, `CLAIM_FAILURES_PER_MINUTE` and
//! `CLAIM_FAILURES_GLOBAL_PER_MINUTE` hold across every node sharing it. Each window is one
//! counter key per client IP (or `all`) and window start, living as long as the window plus the
//! grace. A request costs one round trip (`window.lua`: check and count atomically); checking both
//! claim budgets is one pipelined round trip.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nexus_proto::time::Millis;

use super::codec::int;
use super::conn::{Conn, evalsha};
use super::keys::Keys;
use super::scripts::Scripts;
use crate::domain::limits::{LimitCounters, WINDOW_MS, retry_after, window_of};
use crate::store::StoreResult;

/// Counters in Redis.
pub struct RedisCounters {
    conn: Arc<Conn>,
    keys: Keys,
    scripts: Arc<Scripts>,
    grace: Duration,
}

const REQUESTS: &str = "rl";
const CLAIM_FAILURES: &str = "cf";
const EVERYONE: &str = "all";

impl RedisCounters {
    pub(super) fn new(conn: Arc<Conn>, keys: Keys, scripts: Arc<Scripts>, grace: Duration) -> Self {
        Self {
            conn,
            keys,
            scripts,
            grace,
        }
    }

    fn key(&self, kind: &str, now: Millis, who: &str) -> String {
        self.keys.window(kind, window_of(now), who)
    }

    /// How long a window's counter must live from `now`.
    fn lifetime(&self, now: Millis) -> u64 {
        window_of(now) + WINDOW_MS - now + self.grace.as_millis() as u64
    }

    fn count(&self, key: &str, limit: Option<u64>, now: Millis) -> redis::Cmd {
        let mut cmd = evalsha(&self.scripts.window, &[key]);
        cmd.arg(limit.map(|l| l.to_string()).unwrap_or_default())
            .arg(self.lifetime(now));
        cmd
    }
}

#[async_trait]
impl LimitCounters for RedisCounters {
    async fn hit_request(
        &self,
        ip: IpAddr,
        limit: u64,
        now: Millis,
    ) -> StoreResult<Result<(), u64>> {
        let key = self.key(REQUESTS, now, &ip.to_string());
        let cmd = self.count(&key, Some(limit), now);
        let counted = self.conn.eval(&self.scripts.window, &cmd).await?;
        Ok(if int(&counted) == Some(1) {
            Ok(())
        } else {
            Err(retry_after(now))
        })
    }

    async fn check_claims(
        &self,
        ip: IpAddr,
        per_ip: u64,
        global: u64,
        now: Millis,
    ) -> StoreResult<Result<(), u64>> {
        let mut pipe = redis::pipe();
        pipe.cmd("GET")
            .arg(self.key(CLAIM_FAILURES, now, &ip.to_string()))
            .cmd("GET")
            .arg(self.key(CLAIM_FAILURES, now, EVERYONE));
        let counts = self.conn.pipeline(&pipe).await?;
        let count = |i: usize| counts.get(i).and_then(int).unwrap_or(0).max(0) as u64;
        Ok(if count(0) >= per_ip || count(1) >= global {
            Err(retry_after(now))
        } else {
            Ok(())
        })
    }

    async fn record_claim_failure(&self, ip: IpAddr, now: Millis) -> StoreResult<()> {
        let cmds = [
            self.count(&self.key(CLAIM_FAILURES, now, &ip.to_string()), None, now),
            self.count(&self.key(CLAIM_FAILURES, now, EVERYONE), None, now),
        ];
        self.conn.eval_many(&self.scripts.window, &cmds).await?;
        Ok(())
    }
}
