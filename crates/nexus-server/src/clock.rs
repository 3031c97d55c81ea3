//! The one source of time. Wall-clock milliseconds are derived from `tokio::time::Instant`, so a
//! test that pauses and advances tokio's clock (`tokio::time::pause`/`advance`) moves every TTL,
//! expiry and inactivity deadline with it, and long-poll timers agree with timestamps.

use nexus_proto::time::Millis;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Wall-clock time as seen by the relay.
#[derive(Clone, Debug)]
pub struct Clock {
    base_ms: Millis,
    base_instant: Instant,
}

impl Clock {
    /// A clock starting at the system's current time.
    pub fn system() -> Self {
        let base_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0);
        Self::starting_at(base_ms)
    }

    /// A clock starting at `base_ms` (tests use a fixed start).
    pub fn starting_at(base_ms: Millis) -> Self {
        Self {
            base_ms,
            base_instant: Instant::now(),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> Millis {
        self.base_ms + self.base_instant.elapsed().as_millis() as Millis
    }

    /// The tokio instant at which wall time `ms` is reached (now, if it is in the past).
    pub fn instant_at(&self, ms: Millis) -> Instant {
        let now_ms = self.now_ms();
        Instant::now() + std::time::Duration::from_millis(ms.saturating_sub(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_tokio_time() {
        let clock = Clock::starting_at(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now_ms(), 91_000);
    }
}
