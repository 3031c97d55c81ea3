//! Cross-node long-poll wake-ups. Each node keeps ONE subscriber connection to Redis. On it, the
//! node subscribes to the wake-up channel of each session that has a long-poll parked on this
//! node (`P:wake:<tag>`), and only those — and only once a read showed the session exists and the
//! poller is a member, so polls of made-up session ids cost Redis nothing: a send publishes its cursor (a membership change `-`)
//! on its session's channel from inside its script, Redis delivers it to the nodes with waiters
//! on that session, and each fans it out to its local `tokio::sync::watch` channel. A send to a
//! session nobody waits on costs Redis a lookup and nothing more, however many nodes there are.
//! No HTTP waiter ever holds a Redis command or connection.
//!
//! A send also wakes its own node's waiters directly (before its answer), so local wake-ups do not
//! wait for the pub/sub echo. Wake-ups are hints, never data: a poll always re-reads from Redis.
//!
//! Nothing can fall between a poll's read and its subscription: when Redis confirms a session's
//! subscription, that session's local waiters are woken once and re-read, so anything sent before
//! the subscription was active is read then. The same after the subscriber reconnects: every
//! session is subscribed again and every local waiter woken once. A wake-up lost any other way
//! costs a waiter at most one re-read at its timeout; a message is never lost (it is in Redis
//! before anyone is woken). A session's subscription outlives its last waiter by [`LINGER`], so an
//! agent polling in a loop does not resubscribe each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::PubSubSink;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How often the subscriber checks its connection with a PING (a half-open TCP connection would
/// otherwise go unnoticed).
const PING_EVERY: Duration = Duration::from_secs(5);
/// How long connecting, a (un)subscription or a PING may take before the connection counts as lost.
const DEADLINE: Duration = Duration::from_secs(2);
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How long a session stays subscribed after its last local waiter left.
pub const LINGER: Duration = Duration::from_secs(30);

/// What a wake-up message says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A message with this cursor was stored.
    Cursor(u64),
    /// Members changed (a leave, an inactivity removal), or something may have been missed:
    /// waiters re-read.
    Members,
}

impl Wake {
    /// Parses a payload: a cursor, or `-`.
    pub fn parse(payload: &str) -> Option<Wake> {
        match payload {
            "-" => Some(Wake::Members),
            c => c.parse().ok().map(Wake::Cursor),
        }
    }
}

/// A (un)subscription for the subscriber task, in the order they were decided.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    Subscribe(String),
    Unsubscribe(String),
}

struct Entry {
    tx: watch::Sender<u64>,
    /// Since when nobody waits on it (pruned after [`LINGER`]).
    idle_since: Option<Instant>,
    /// Whether this node asked Redis for the session's channel ([`Wakeups::activate`]).
    subscribed: bool,
}

/// The local fan-out: one watch channel per session tag that has (or recently had) waiters here.
pub struct Wakeups {
    entries: Mutex<HashMap<String, Entry>>,
    changes: mpsc::UnboundedSender<Change>,
    /// `P:wake:`; a session's channel is this + its tag.
    channel_prefix: String,
}

impl Wakeups {
    /// The fan-out and the receiving end of its (un)subscriptions, for [`spawn_subscriber`].
    pub fn new(channel_prefix: String) -> (Arc<Self>, Subscriptions) {
        let (changes, rx) = mpsc::unbounded_channel();
        let wakeups = Arc::new(Self {
            entries: Mutex::new(HashMap::new()),
            changes,
            channel_prefix,
        });
        (wakeups, Subscriptions(rx))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The channel of session `tag`.
    pub fn channel(&self, tag: &str) -> String {
        format!("{}{tag}", self.channel_prefix)
    }

    /// A receiver for the session `tag` (local wake-ups at once; other nodes' once
    /// [`Wakeups::activate`]d).
    pub fn subscribe(&self, tag: &str) -> watch::Receiver<u64> {
        let mut map = self.lock();
        if let Some(entry) = map.get_mut(tag) {
            entry.idle_since = None;
            return entry.tx.subscribe();
        }
        let (tx, rx) = watch::channel(0);
        map.insert(
            tag.to_owned(),
            Entry {
                tx,
                idle_since: None,
                subscribed: false,
            },
        );
        rx
    }

    /// Subscribes this node to the session's channel if someone here holds a receiver for it
    /// (called after a member read the session). The confirmation wakes the receivers once, so a
    /// send between that read and the subscription is not missed.
    pub fn activate(&self, tag: &str) {
        let mut map = self.lock();
        if let Some(entry) = map.get_mut(tag)
            && !entry.subscribed
            && entry.tx.receiver_count() > 0
        {
            entry.subscribed = true;
            // Sent under the lock, so changes reach the subscriber in the order they were decided.
            let _ = self.changes.send(Change::Subscribe(tag.to_owned()));
        }
    }

    /// Wakes the local waiters of `tag`: on a newer cursor, or on any membership change.
    pub fn wake(&self, tag: &str, wake: Wake) {
        let map = self.lock();
        let Some(entry) = map.get(tag) else {
            return;
        };
        match wake {
            Wake::Cursor(c) => {
                entry.tx.send_if_modified(|last| {
                    let newer = c > *last;
                    if newer {
                        *last = c;
                    }
                    newer
                });
            }
            Wake::Members => entry.tx.send_modify(|_| {}),
        }
    }

    /// Wakes every local waiter once (they re-read).
    pub fn wake_all(&self) {
        for entry in self.lock().values() {
            entry.tx.send_modify(|_| {});
        }
    }

    /// Unsubscribes sessions nobody has waited on for [`LINGER`].
    pub fn prune(&self) {
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|tag, entry| {
            if entry.tx.receiver_count() > 0 {
                entry.idle_since = None;
                return true;
            }
            let idle_since = *entry.idle_since.get_or_insert(now);
            if now.duration_since(idle_since) < LINGER {
                return true;
            }
            if entry.subscribed {
                let _ = self.changes.send(Change::Unsubscribe(tag.clone()));
            }
            false
        });
    }

    /// Sessions this node is subscribed to (or about to be).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sessions this node has asked Redis for.
    fn subscribed(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.subscribed)
            .map(|(tag, _)| tag.clone())
            .collect()
    }
}

/// The (un)subscriptions the fan-out decided, consumed by the subscriber task.
pub struct Subscriptions(mpsc::UnboundedReceiver<Change>);

/// Keeps `wakeups`' subscriptions on one connection until `stop`, reconnecting forever with a
/// capped backoff. Resolves once the first connection is up (or failed), so a node serves no poll
/// before it can be woken; the loop runs on in the background.
pub async fn spawn_subscriber(
    client: redis::Client,
    wakeups: Arc<Wakeups>,
    mut subscriptions: Subscriptions,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut delay = RETRY_MIN;
        loop {
            let session = subscribe_once(&client, &wakeups, &mut subscriptions, &mut ready);
            let outcome = tokio::select! {
                outcome = session => outcome,
                _ = stop.cancelled() => return,
            };
            if let Some(tx) = ready.take() {
                let _ = tx.send(());
            }
            match outcome {
                Ok(()) => delay = RETRY_MIN,
                Err(e) => tracing::warn!(error = %e, "wake-up subscriber lost Redis; reconnecting"),
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

async fn within<T>(
    what: &str,
    f: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    tokio::time::timeout(DEADLINE, f)
        .await
        .map_err(|_| format!("{what} timed out"))?
        .map_err(|e| format!("{what}: {}", e.category()))
}

/// (Un)subscribes a batch: the first change and whatever else is already queued.
async fn apply(
    sink: &mut PubSubSink,
    wakeups: &Wakeups,
    first: Change,
    subscriptions: &mut Subscriptions,
) -> Result<(), String> {
    let mut changes = vec![first];
    while let Ok(more) = subscriptions.0.try_recv() {
        changes.push(more);
    }
    // In order, grouping runs of the same kind into one command.
    let mut i = 0;
    while i < changes.len() {
        let subscribe = matches!(changes[i], Change::Subscribe(_));
        let mut tags = Vec::new();
        while let Some(change) = changes.get(i) {
            match (change, subscribe) {
                (Change::Subscribe(t), true) | (Change::Unsubscribe(t), false) => tags.push(t),
                _ => break,
            }
            i += 1;
        }
        let channels: Vec<String> = tags.iter().map(|t| wakeups.channel(t)).collect();
        if subscribe {
            within("subscribe", sink.subscribe(&channels)).await?;
            // Anything sent before the subscription was active: those waiters re-read now.
            for tag in tags {
                wakeups.wake(tag, Wake::Members);
            }
        } else {
            within("unsubscribe", sink.unsubscribe(&channels)).await?;
        }
    }
    Ok(())
}

/// One subscriber connection, until it fails. `Ok(())` when it ran (and then broke).
async fn subscribe_once(
    client: &redis::Client,
    wakeups: &Wakeups,
    subscriptions: &mut Subscriptions,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), String> {
    let pubsub = within("connect", client.get_async_pubsub()).await?;
    let (mut sink, mut stream) = pubsub.split();
    // Everything this node waits on, subscribed again; queued changes follow (repeats are no-ops).
    let tags = wakeups.subscribed();
    if !tags.is_empty() {
        let channels: Vec<String> = tags.iter().map(|t| wakeups.channel(t)).collect();
        within("subscribe", sink.subscribe(&channels)).await?;
    }
    // Whatever was published while this node was not subscribed: every local waiter re-reads.
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
                let tag = msg.get_channel_name().strip_prefix(&wakeups.channel_prefix);
                let wake = std::str::from_utf8(msg.get_payload_bytes()).ok().and_then(Wake::parse);
                if let (Some(tag), Some(wake)) = (tag, wake) {
                    wakeups.wake(tag, wake);
                }
            }
            change = subscriptions.0.recv() => {
                let Some(change) = change else {
                    return Ok(()); // the store is gone
                };
                apply(&mut sink, wakeups, change, subscriptions).await?;
            }
            _ = ping.tick() => {
                within("ping", sink.ping::<redis::Value>()).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(Wake::parse("12"), Some(Wake::Cursor(12)));
        assert_eq!(Wake::parse("-"), Some(Wake::Members));
        assert_eq!(Wake::parse("x"), None);
    }

    #[tokio::test]
    async fn only_newer_cursors_and_membership_changes_wake() {
        let (w, _subs) = Wakeups::new("p:wake:".into());
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
    fn a_session_is_subscribed_once_read_and_unsubscribed_after_the_linger() {
        let (w, mut subs) = Wakeups::new("p:wake:".into());
        assert_eq!(w.channel("t"), "p:wake:t");
        let rx = w.subscribe("t");
        let _again = w.subscribe("t");
        let _kept = w.subscribe("u");
        // Nothing goes to Redis before a read showed the session exists.
        assert!(subs.0.try_recv().is_err());
        w.activate("t");
        w.activate("t");
        w.activate("u");
        w.activate("never-subscribed");
        let queued: Vec<Change> = std::iter::from_fn(|| subs.0.try_recv().ok()).collect();
        assert_eq!(
            queued,
            [Change::Subscribe("t".into()), Change::Subscribe("u".into())]
        );
        drop(rx);
        drop(_again);
        w.prune(); // idle from now on, still subscribed
        assert_eq!(w.len(), 2);
        assert!(subs.0.try_recv().is_err());
        // Past the linger it goes.
        w.lock().get_mut("t").unwrap().idle_since = Some(Instant::now() - LINGER);
        w.prune();
        assert_eq!(w.len(), 1);
        assert_eq!(
            subs.0.try_recv().ok(),
            Some(Change::Unsubscribe("t".into()))
        );
        // A new waiter makes a fresh subscription after its read.
        let _back = w.subscribe("t");
        w.activate("t");
        assert_eq!(subs.0.try_recv().ok(), Some(Change::Subscribe("t".into())));
        // A poll of a session that does not exist never subscribes, and is forgotten.
        drop(w.subscribe("made-up"));
        w.lock().get_mut("made-up").unwrap().idle_since = Some(Instant::now() - LINGER);
        w.prune();
        assert!(subs.0.try_recv().is_err());
    }
}
