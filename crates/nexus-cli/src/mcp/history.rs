//! Reading what a session still holds without moving the saved cursor: the `history` tool, the
//! transcript resource and the watchers' starting point (issue 8: "history: the last N messages
//! without moving the cursor"; "reading a resource must not move the saved cursor").
//!
//! The relay has no "last N" query, so this pages forward from the beginning (a poll without
//! `after`, which also returns the greeting, then `after=nextCursor`) until a page comes back
//! empty or without a next cursor, and keeps the last `keep` messages. Polls with an explicit or
//! no `after` never write the cursor file (SPEC §3, `poll --after`). A gap the relay reports
//! (`truncated`, SPEC §1 "Cursors") is passed on. Paging stops after [`MAX_PAGES`] pages so a
//! misbehaving relay cannot keep a call going forever; one more page then tells whether the relay
//! holds more, and if it does the result says so (`incomplete`): `held` is then a lower bound and
//! the messages kept are not the newest.

use std::collections::VecDeque;
use std::future::Future;

use serde_json::Value;

use super::context::SessionRef;
use crate::client::Reply;
use crate::commands::Ctx;
use crate::commands::poll::{After, PollSpec, next_cursor, poll_once};
use crate::output::{Failure, Ui};

/// The most pages read for one call: 100,000 messages in the relay's pages of 1,000, ten times
/// the default quota of a session (10,000 messages).
pub const MAX_PAGES: usize = 100;

/// The tail of a session's messages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recent {
    /// The last messages read, oldest first, as the relay sent them.
    pub messages: Vec<Value>,
    /// How many messages were read in all (at least `messages.len()`): all the relay holds unless
    /// `incomplete`.
    pub held: usize,
    /// The relay said some earlier messages are gone (restart or expiry).
    pub truncated: bool,
    /// Paging stopped at [`MAX_PAGES`] pages before the end: the relay may hold more, so `held`
    /// is a lower bound and `messages` are not the newest.
    pub incomplete: bool,
    /// The cursor of the newest message read, when there is one.
    pub last_cursor: Option<String>,
}

/// Fetches everything the relay holds for `s` and keeps the last `keep` messages.
pub async fn recent(ctx: &Ctx, s: &SessionRef, keep: usize) -> Result<Recent, Failure> {
    let quiet = Ui { quiet: true };
    page_through(keep, MAX_PAGES, |after| {
        let spec = PollSpec {
            after,
            members: false,
            wait: None,
        };
        let quiet = &quiet;
        async move { poll_once(ctx, quiet, &s.sid, &s.server, &s.agent, &spec).await }
    })
    .await
}

/// The paging of [`recent`], with the poll (`fetch`, given where to start) passed in.
async fn page_through<F, Fut>(
    keep: usize,
    max_pages: usize,
    mut fetch: F,
) -> Result<Recent, Failure>
where
    F: FnMut(After) -> Fut,
    Fut: Future<Output = Result<Reply, Failure>>,
{
    let mut tail: VecDeque<Value> = VecDeque::with_capacity(keep.min(1024));
    let mut out = Recent::default();
    let mut after = After::Replay;
    let mut pages = 0;
    loop {
        let reply = fetch(after.clone()).await?;
        if pages == max_pages {
            // One page past the bound, only to tell whether the relay holds more.
            out.incomplete = reply
                .get("messages")
                .and_then(Value::as_array)
                .is_some_and(|m| !m.is_empty());
            break;
        }
        pages += 1;
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use serde_json::json;

    use super::*;

    /// A relay holding messages 1..=`held` (each one's cursor is its number), in pages of `page`.
    fn relay(
        held: usize,
        page: usize,
        calls: &Cell<usize>,
    ) -> impl FnMut(After) -> std::future::Ready<Result<Reply, Failure>> {
        move |after| {
            calls.set(calls.get() + 1);
            let from = match after {
                After::Replay => 0,
                After::Explicit(c) => c.parse::<usize>().expect("a cursor this fake handed out"),
                After::Saved => panic!("history must never poll from the saved cursor"),
            };
            let to = held.min(from + page);
            let messages: Vec<Value> = (from + 1..=to)
                .map(|i| json!({"agentId": "a", "text": format!("m{i}")}))
                .collect();
            let body = json!({"messages": messages, "nextCursor": to.max(from).to_string()});
            std::future::ready(Ok(Reply {
                status: 200,
                raw: body.to_string(),
                json: body.as_object().cloned(),
                retry_after: None,
            }))
        }
    }

    fn texts(r: &Recent) -> Vec<&str> {
        r.messages
            .iter()
            .filter_map(|m| m["text"].as_str())
            .collect()
    }

    #[tokio::test]
    async fn reads_past_twenty_pages_to_the_real_end() {
        let calls = Cell::new(0);
        let got = page_through(3, MAX_PAGES, relay(25_000, 1000, &calls))
            .await
            .unwrap();
        assert_eq!(got.held, 25_000);
        assert_eq!(texts(&got), ["m24998", "m24999", "m25000"]);
        assert_eq!(got.last_cursor.as_deref(), Some("25000"));
        assert!(!got.incomplete && !got.truncated);
        assert_eq!(
            calls.get(),
            26,
            "25 full pages and the empty one that ends them"
        );
    }

    #[tokio::test]
    async fn a_short_session_and_an_empty_one() {
        let calls = Cell::new(0);
        let got = page_through(2, MAX_PAGES, relay(2500, 1000, &calls))
            .await
            .unwrap();
        assert_eq!((got.held, texts(&got)), (2500, vec!["m2499", "m2500"]));
        assert!(!got.incomplete);
        let empty = page_through(2, MAX_PAGES, relay(0, 1000, &calls))
            .await
            .unwrap();
        assert_eq!(empty, Recent::default());
    }

    #[tokio::test]
    async fn stopping_at_the_bound_says_so() {
        let calls = Cell::new(0);
        let got = page_through(2, 3, relay(5000, 1000, &calls)).await.unwrap();
        assert!(got.incomplete, "{got:?}");
        assert_eq!(got.held, 3000, "a lower bound: what was read");
        assert_eq!(texts(&got), ["m2999", "m3000"]);
        assert_eq!(
            calls.get(),
            4,
            "the bound, and one page to see there is more"
        );
        // What fits in the bound is not flagged, even when the bound is reached exactly.
        for held in [2999, 3000] {
            let fits = page_through(2, 3, relay(held, 1000, &calls)).await.unwrap();
            assert!(!fits.incomplete && fits.held == held, "{fits:?}");
            assert_eq!(fits.last_cursor, Some(held.to_string()));
        }
    }

    #[tokio::test]
    async fn a_failed_page_fails_the_call() {
        let got = page_through(2, MAX_PAGES, |_| {
            std::future::ready(Err(Failure::transport("refused")))
        })
        .await;
        assert_eq!(got, Err(Failure::transport("refused")));
    }
}
