//! Background upkeep: every second, sweep expired sessions, codes and messages from memory and
//! disk, and flush batched metadata (sliding expiry, `lastSeenAt`). Correctness never depends on
//! it: every access applies deadlines itself (SPEC §1 "Inactivity", "Persistence").

use std::sync::Arc;
use std::time::Duration;

use super::Relay;

/// How often the sweep and the batched flush run.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Runs until the relay shuts down.
pub async fn run(relay: Arc<Relay>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = relay.shutdown.cancelled() => return,
        }
        if let Err(e) = relay.store.sweep(relay.now()).await {
            tracing::error!(error = %e, "sweep failed");
        }
        if let Err(e) = relay.store.flush().await {
            tracing::error!(error = %e, "flush failed");
        }
    }
}
