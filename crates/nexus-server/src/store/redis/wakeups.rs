//! Cross-node long-poll wake-ups. Each node keeps ONE subscriber connection to Redis, subscribed
//! to the wake-up channel; every send publishes `"<tag> <cursor>"` from inside its script (and a
//! membership change `"<tag> -"`), and the node fans each message out to the local
//! `tokio::sync::watch` channel of that session, if any poll on this node waits on it. No HTTP
//! waiter ever holds a Redis command or connection.
//!
//! A send also wakes its own node's waiters directly (before its answer), so local wake-ups do not
//! wait for the pub/sub echo. Wake-ups are hints, never data: a poll always re-reads from Redis.
//! A wake-up lost while the subscriber is disconnected costs each waiter at most one re-read at
//! its timeout; on every (re)subscription all local waiters are woken once anyway, so whatever was
//! sent meanwhile is read at once. Nothing is ever lost: messages are in Redis, not in the channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the subscriber checks its connection with a PING (a half-open TCP connection would
/// otherwise go unnoticed).
const PING_EVERY: Duration = Duration::from_secs(5);
/// How long connecting or a PING may take before the connection counts as lost.
const DEADLINE: Duration = Duration::from_secs(2);
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The local fan-out: one watch channel per session tag that has waiters on this node.
#[derive(Default)]
pub struct Wakeups {
    senders: Mutex<HashMap<String, watch::Sender<u64>>>,
}

/// What a wake-up message says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A message with this cursor was stored.
    Cursor(u64),
    /// Members changed (a leave, an inactivity removal): waiters re-check their membership.
    Members,
}

impl Wake {
    /// Parses `"<tag> <cursor>"` / `"<tag> -"`.
    pub fn parse(payload: &str) -> Option<(&str, Wake)> {
        let (tag, what) = payload.split_once(' ')?;
        let wake = match what {
            "-" => Wake::Members,
            c => Wake::Cursor(c.parse().ok()?),
        };
        Some((tag, wake))
    }
}

impl Wakeups {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        self.senders.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver for the session `tag` (created on first use).
    pub fn subscribe(&self, tag: &str) -> watch::Receiver<u64> {
        let mut map = self.lock();
        match map.get(tag) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(0);
                map.insert(tag.to_owned(), tx);
                rx
            }
        }
    }

    /// Wakes the local waiters of `tag`: on a newer cursor, or on any membership change.
    pub fn wake(&self, tag: &str, wake: Wake) {
        let map = self.lock();
        let Some(tx) = map.get(tag) else {
            return;
        };
        match wake {
            Wake::Cursor(c) => {
                tx.send_if_modified(|last| {
                    let newer = c > *last;
                    if newer {
                        *last = c;
                    }
                    newer
                });
            }
            Wake::Members => tx.send_modify(|_| {}),
        }
    }

    /// Wakes every local waiter once (after the subscription was lost: they re-read).
    pub fn wake_all(&self) {
        for tx in self.lock().values() {
            tx.send_modify(|_| {});
        }
    }

    /// Forgets sessions nobody waits on any more.
    pub fn prune(&self) {
        self.lock().retain(|_, tx| tx.receiver_count() > 0);
    }

    /// Sessions with waiters on this node.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Subscribes `wakeups` to `channel` until `stop`, reconnecting forever with a capped backoff.
/// Resolves once the first subscription is in place (or failed), so a node serves no poll before
/// it can be woken; the loop itself runs on in the background.
pub async fn spawn_subscriber(
    client: redis::Client,
    channel: String,
    wakeups: Arc<Wakeups>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut delay = RETRY_MIN;
        loop {
            let session = subscribe_once(&client, &channel, &wakeups, &stop, &mut ready);
            let outcome = tokio::select! {
                outcome = session => outcome,
                _ = stop.cancelled() => return,
            };
            if let Some(tx) = ready.take() {
                let _ = tx.send(());
            }
            match outcome {
                Ok(()) => delay = RETRY_MIN,
                Err(e) => {
                    tracing::warn!(error = %e, "wake-up subscription lost; reconnecting");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => return,
            }
            delay = (delay * 2).min(RETRY_MAX);
        }
    });
    let _ = ready_rx.await;
    handle
}

/// One subscriber connection, until it fails. `Ok(())` when it ran (and then broke).
async fn subscribe_once(
    client: &redis::Client,
    channel: &str,
    wakeups: &Wakeups,
    stop: &CancellationToken,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), String> {
    let mut pubsub = tokio::time::timeout(DEADLINE, client.get_async_pubsub())
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.category().to_owned())?;
    tokio::time::timeout(DEADLINE, pubsub.subscribe(channel))
        .await
        .map_err(|_| "subscribe timed out".to_owned())?
        .map_err(|e| e.category().to_owned())?;
    let (mut sink, mut stream) = pubsub.split();
    // Whatever was published while we were not subscribed: every local waiter re-reads now.
    wakeups.wake_all();
    if let Some(tx) = ready.take() {
        let _ = tx.send(());
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Ok(());
                };
                if let Some((tag, wake)) = std::str::from_utf8(msg.get_payload_bytes())
                    .ok()
                    .and_then(Wake::parse)
                {
                    wakeups.wake(tag, wake);
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(DEADLINE, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    _ => return Ok(()),
                }
            }
            _ = stop.cancelled() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse() {
        assert_eq!(Wake::parse("abc 12"), Some(("abc", Wake::Cursor(12))));
        assert_eq!(Wake::parse("abc -"), Some(("abc", Wake::Members)));
        assert_eq!(Wake::parse("abc"), None);
        assert_eq!(Wake::parse("abc x"), None);
    }

    #[tokio::test]
    async fn only_newer_cursors_and_membership_changes_wake() {
        let w = Wakeups::default();
        let mut rx = w.subscribe("t");
        w.wake("other", Wake::Cursor(5));
        assert!(!rx.has_changed().unwrap());
        w.wake("t", Wake::Cursor(5));
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        // The pub/sub echo of a send already fanned out locally wakes nobody again.
        w.wake("t", Wake::Cursor(5));
        assert!(!rx.has_changed().unwrap());
        w.wake("t", Wake::Members);
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        w.wake_all();
        assert!(rx.has_changed().unwrap());
    }

    #[test]
    fn sessions_without_waiters_are_forgotten() {
        let w = Wakeups::default();
        let rx = w.subscribe("t");
        let _kept = w.subscribe("u");
        w.prune();
        assert_eq!(w.len(), 2);
        drop(rx);
        w.prune();
        assert_eq!(w.len(), 1);
    }
}
