//! Push for MCP clients (issue 8): one background long-poll per subscribed transcript, which sends
//! `notifications/resources/updated` when new messages arrive, and stops on unsubscribe, when the
//! subscription ends or when the server exits.
//!
//! A watcher first finds where the transcript ends now (without moving the saved cursor, see
//! [`super::history`]), then long-polls after that cursor with `wait` when the relay advertises
//! `capabilities.longPoll`, else polls every [`POLL_INTERVAL`]. It keeps its own cursor in memory:
//! the saved cursor is the agent's and only the `poll` tool moves it. Errors back off as the
//! daemons do (1 s doubling to 60 s, jitter, at least `Retry-After`); `session_not_found`, or the
//! session leaving the local state, sends a last update (the transcript now reads as an error)
//! and ends the watcher. Two kinds of subscription share this code: the session-based
//! `resources/subscribe` (protocol versions up to 2025-11-25) and the 2026-07-28
//! `subscriptions/listen`, through [`Notify`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::{Peer, RoleServer, SubscriptionSink};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::context::Shared;
use super::errors::ToolError;
use super::history::recent;
use crate::commands::daemon::{backoff, jitter};
use crate::commands::poll::{After, PollSpec, next_cursor, poll_once};
use crate::output::Ui;

/// The long-poll `wait` of a watcher, in seconds.
pub const WATCH_WAIT: u64 = 30;
/// The pause between polls on a relay without long-poll.
pub const POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Where a watcher reports an update.
#[derive(Clone, Debug)]
pub enum Notify {
    /// A `resources/subscribe` client: a plain notification on the connection.
    Legacy(Peer<RoleServer>),
    /// A `subscriptions/listen` request: its filter-enforcing sink.
    Listen(SubscriptionSink),
}

impl Notify {
    /// Sends `notifications/resources/updated`; `false` when the client can no longer be told.
    async fn updated(&self, uri: &str) -> bool {
        match self {
            Self::Legacy(peer) => peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                .await
                .is_ok(),
            Self::Listen(sink) => sink.notify_resource_updated(uri).await.is_ok(),
        }
    }
}

/// The running watchers.
pub struct Watchers {
    shared: Arc<Shared>,
    /// Cancelled when the server exits: every watcher stops.
    root: CancellationToken,
    /// `resources/subscribe` watchers by URI (a listen request owns its own).
    legacy: Mutex<HashMap<String, CancellationToken>>,
}

impl Watchers {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            root: CancellationToken::new(),
            legacy: Mutex::new(HashMap::new()),
        }
    }

    /// The token every watcher descends from.
    pub fn root(&self) -> &CancellationToken {
        &self.root
    }

    /// `resources/subscribe`: finds where the transcript ends now, then starts a watcher for
    /// `uri` unless one is running (subscribing twice is harmless). Once this returns, every
    /// message sent later is notified. `session` is the id or alias the URI names.
    pub async fn subscribe(
        &self,
        uri: &str,
        session: &str,
        notify: Notify,
    ) -> Result<(), ToolError> {
        if self.is_watched(uri) {
            return Ok(());
        }
        let start = end_of(&self.shared, session).await?;
        let mut map = self
            .legacy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // A concurrent subscribe may have won while this one was reading.
        if map.get(uri).is_some_and(|ct| !ct.is_cancelled()) {
            return Ok(());
        }
        let ct = self.spawn(uri, session, notify, &self.root, Some(start));
        map.insert(uri.to_owned(), ct);
        Ok(())
    }

    fn is_watched(&self, uri: &str) -> bool {
        self.legacy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(uri)
            .is_some_and(|ct| !ct.is_cancelled())
    }

    /// `resources/unsubscribe`: stops the watcher of `uri`, if any.
    pub fn unsubscribe(&self, uri: &str) -> bool {
        let removed = self
            .legacy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(uri);
        removed.map(|ct| ct.cancel()).is_some()
    }

    /// How many `resources/subscribe` watchers are running.
    pub fn running(&self) -> usize {
        self.legacy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .filter(|ct| !ct.is_cancelled())
            .count()
    }

    /// Starts a watcher under `parent`; cancelling the returned token (or `parent`) stops it.
    /// `start` is where the transcript ended when the subscription began (see [`end_of`]); when
    /// `None`, the watcher finds out itself.
    pub fn spawn(
        &self,
        uri: &str,
        session: &str,
        notify: Notify,
        parent: &CancellationToken,
        start: Option<Option<String>>,
    ) -> CancellationToken {
        let ct = parent.child_token();
        tokio::spawn(watch(
            Arc::clone(&self.shared),
            uri.to_owned(),
            session.to_owned(),
            notify,
            ct.clone(),
            start,
        ));
        ct
    }

    /// Stops every watcher (the server is exiting).
    pub fn shutdown(&self) {
        self.root.cancel();
    }
}

/// The cursor after which a transcript's next message will come (`None`: the session holds
/// nothing yet), read without moving the saved cursor.
pub async fn end_of(shared: &Shared, session: &str) -> Result<Option<String>, ToolError> {
    let (ctx, s) = shared.session(session)?;
    recent(&ctx, &s, 0)
        .await
        .map(|r| r.last_cursor)
        .map_err(|f| ToolError::from_failure(&f))
}

/// Runs `fut` unless `ct` is cancelled first.
async fn unless<F: std::future::Future>(ct: &CancellationToken, fut: F) -> Option<F::Output> {
    tokio::select! {
        () = ct.cancelled() => None,
        out = fut => Some(out),
    }
}

/// One watcher's loop.
async fn watch(
    shared: Arc<Shared>,
    uri: String,
    session: String,
    notify: Notify,
    ct: CancellationToken,
    start: Option<Option<String>>,
) {
    // Whatever ends the loop marks the watcher as finished, so a later subscribe starts anew.
    let _finished = ct.clone().drop_guard();
    let Ok((ctx, s)) = shared.session(&session) else {
        return;
    };
    let was_local = shared.home.session_exists(&s.sid);
    let Some(caps) = unless(&ct, ctx.capabilities(&s.server)).await else {
        return;
    };
    let long_poll = caps
        .as_ref()
        .and_then(|c| c.get("longPoll"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let quiet = Ui { quiet: true };
    // `None` until the end of the transcript is known; then the cursor to poll after (`None`
    // inside: the session held nothing yet).
    let mut position: Option<Option<String>> = start;
    let mut errors: u32 = 0;
    loop {
        let result = match &position {
            None => match unless(&ct, recent(&ctx, &s, 0)).await {
                None => return,
                Some(Ok(r)) => {
                    position = Some(r.last_cursor);
                    errors = 0;
                    continue;
                }
                Some(Err(f)) => Err(f),
            },
            Some(cursor) => {
                let spec = PollSpec {
                    after: cursor.clone().map_or(After::Replay, After::Explicit),
                    members: false,
                    wait: long_poll.then_some(WATCH_WAIT),
                };
                match unless(
                    &ct,
                    poll_once(&ctx, &quiet, &s.sid, &s.server, &s.agent, &spec),
                )
                .await
                {
                    None => return,
                    Some(r) => r,
                }
            }
        };
        match result {
            Ok(reply) => {
                errors = 0;
                let new = reply
                    .get("messages")
                    .and_then(Value::as_array)
                    .is_some_and(|m| !m.is_empty());
                if new {
                    if let Some(next) = next_cursor(&reply) {
                        position = Some(Some(next));
                    }
                    if !notify.updated(&uri).await {
                        return;
                    }
                } else if !long_poll
                    && unless(&ct, tokio::time::sleep(POLL_INTERVAL))
                        .await
                        .is_none()
                {
                    return;
                }
            }
            Err(f) => {
                let gone = f.code().as_deref() == Some("session_not_found")
                    || (was_local && !shared.home.session_exists(&s.sid));
                if gone {
                    notify.updated(&uri).await;
                    return;
                }
                errors = errors.saturating_add(1);
                let pause = backoff(errors, jitter(), f.retry_after);
                if unless(&ct, tokio::time::sleep(pause)).await.is_none() {
                    return;
                }
            }
        }
    }
}
