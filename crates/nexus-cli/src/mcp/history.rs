//! Reading what a session still holds without moving the saved cursor: the `history` tool, the
//! transcript resource and the watchers' starting point (issue 8: "history: the last N messages
//! without moving the cursor"; "reading a resource must not move the saved cursor").
//!
//! The relay has no "last N" query, so this pages forward from the beginning (a poll without
//! `after`, which also returns the greeting, then `after=nextCursor`) until a page comes back
//! empty, and keeps the last `keep` messages. Polls with an explicit or no `after` never write the
//! cursor file (SPEC §3, `poll --after`). A gap the relay reports (`truncated`, SPEC §1
//! "Cursors") is passed on. Paging stops after [`MAX_PAGES`] pages so a misbehaving relay cannot
//! keep a call going forever.

use std::collections::VecDeque;

use serde_json::Value;

use super::context::SessionRef;
use crate::commands::Ctx;
use crate::commands::poll::{After, PollSpec, next_cursor, poll_once};
use crate::output::{Failure, Ui};

/// Enough pages for a session at the default quota (10,000 messages in pages of 1,000).
pub const MAX_PAGES: usize = 20;

/// The tail of a session's messages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recent {
    /// The last messages, oldest first, as the relay sent them.
    pub messages: Vec<Value>,
    /// How many messages the relay holds in all (at least `messages.len()`).
    pub held: usize,
    /// The relay said some earlier messages are gone (restart or expiry).
    pub truncated: bool,
    /// The cursor of the newest message, when there is one.
    pub last_cursor: Option<String>,
}

/// Fetches everything the relay holds for `s` and keeps the last `keep` messages.
pub async fn recent(ctx: &Ctx, s: &SessionRef, keep: usize) -> Result<Recent, Failure> {
    let quiet = Ui { quiet: true };
    let mut tail: VecDeque<Value> = VecDeque::with_capacity(keep.min(1024));
    let mut out = Recent::default();
    let mut after = After::Replay;
    for _ in 0..MAX_PAGES {
        let spec = PollSpec {
            after: after.clone(),
            members: false,
            wait: None,
        };
        let reply = poll_once(ctx, &quiet, &s.sid, &s.server, &s.agent, &spec).await?;
        out.truncated |= reply.get("truncated") == Some(&Value::Bool(true));
        let page = reply
            .get("messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let next = next_cursor(&reply);
        if page.is_empty() {
            break;
        }
        out.held += page.len();
        for m in page {
            if keep > 0 && tail.len() == keep {
                tail.pop_front();
            }
            if keep > 0 {
                tail.push_back(m);
            }
        }
        let Some(next) = next else { break };
        // A relay that ignores `after` would return the same page again.
        if after == After::Explicit(next.clone()) {
            break;
        }
        out.last_cursor = Some(next.clone());
        after = After::Explicit(next);
    }
    out.messages = tail.into();
    Ok(out)
}
