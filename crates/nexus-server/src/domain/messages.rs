//! Messages (SPEC §1 "Message", "Cursors"; §2 send and poll): verified and unverified sends,
//! secret redaction before storage,
//! `Idempotency-Key`, the per-session quota, polls with exclusive `after`, the greeting at cursor
//! `0`, `limit`, presence, `truncated`, and long-poll `wait`, which is woken by the send itself and
//! released when the session goes, when the reader is removed, or on shutdown. A wait never
//! outlasts half the time left before the reader's inactivity deadline or the session's expiry.
//! At most `MAX_WAITERS` polls are parked at once; past it a poll that would wait answers 503
//! `server_busy` (with `Retry-After`) instead.

use std::time::Duration;

use nexus_proto::api::{
    MessageSent, MessageView, PollQuery, SendRequest, poll_page_json, valid_idempotency_key,
};
use nexus_proto::{Cursor, ErrorCode, FieldProblem};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::redact::redact;
use super::{Relay, RelayError, caller, json_body, session_id, session_not_found, ts};
use crate::secrets::new_message_id;
use crate::store::{AppendLimits, AppendOutcome, NewMessage, Page, ReadOutcome, StoredMessage};

/// Message id of a session's greeting.
pub const GREETING_ID: &str = "msg_greeting";

fn view(m: &StoredMessage) -> MessageView<'_> {
    MessageView {
        id: &m.id,
        agent_id: m.agent_id.as_str(),
        text: m.text.as_deref(),
        json: m.json.as_ref(),
        cursor: m.cursor,
        verified: m.verified,
        sent_at: ts(m.sent_at),
        expires_at: ts(m.expires_at),
    }
}

fn receipt(m: &StoredMessage) -> MessageSent {
    MessageSent {
        id: m.id.clone(),
        cursor: m.cursor,
        sent_at: ts(m.sent_at),
        expires_at: ts(m.expires_at),
        verified: m.verified,
        redacted: None,
    }
}

/// A successful send: the receipt, and whether it repeats an earlier one (200, not 201).
pub struct Sent {
    pub receipt: MessageSent,
    pub repeated: bool,
}

impl Relay {
    /// `POST /v1/sessions/:id/messages`.
    pub async fn send(
        &self,
        raw_id: &str,
        agent_header: Option<&str>,
        key_header: Option<&str>,
        idempotency_header: Option<&str>,
        body: &[u8],
    ) -> Result<Sent, RelayError> {
        let id = session_id(raw_id)?;
        let agent = caller(agent_header)?;
        let idempotency_key = match idempotency_header {
            None => None,
            Some(k) if valid_idempotency_key(k) => Some(k.to_owned()),
            Some(_) => {
                return Err(RelayError::invalid_request(vec![FieldProblem::new(
                    "Idempotency-Key",
                    "must be 1 to 128 visible ASCII characters",
                )]));
            }
        };
        let req = match SendRequest::parse_valid(body) {
            Some(req) => req,
            // Not a valid body: the field-by-field reading names every problem.
            None => {
                SendRequest::from_json(json_body(body)?).map_err(RelayError::invalid_request)?
            }
        };
        let idempotency = idempotency_key.map(|k| {
            let mut h = Sha256::new();
            // Length-prefixed so that text and json cannot be confused with each other.
            for part in [
                req.text.as_deref().map(str::as_bytes),
                req.json
                    .as_ref()
                    .map(|j| j.to_string().into_bytes())
                    .as_deref(),
            ] {
                match part {
                    Some(bytes) => {
                        h.update((bytes.len() as u64 + 1).to_le_bytes());
                        h.update(bytes);
                    }
                    None => h.update(0u64.to_le_bytes()),
                }
            }
            (k, <[u8; 32]>::from(h.finalize()))
        });
        let (mut text, mut json) = (req.text, req.json);
        let redacted = redact(&mut text, &mut json);
        let message = NewMessage {
            id: new_message_id()?,
            agent_id: agent,
            key: key_header.map(str::to_owned),
            text,
            json,
            idempotency,
        };
        let with_redactions = |m: &StoredMessage| MessageSent {
            redacted: (!redacted.is_empty()).then(|| redacted.clone()),
            ..receipt(m)
        };
        let limits = AppendLimits {
            max_messages: self.config.max_messages_per_session,
            require_key: self.config.require_session_key,
        };
        match self.store.append(&id, message, limits, self.now()).await? {
            AppendOutcome::Stored(m) => Ok(Sent {
                receipt: with_redactions(&m),
                repeated: false,
            }),
            AppendOutcome::Repeated(m) => Ok(Sent {
                receipt: with_redactions(&m),
                repeated: true,
            }),
            AppendOutcome::SessionNotFound => Err(session_not_found()),
            AppendOutcome::NotMember => Err(RelayError::new(
                ErrorCode::Forbidden,
                "only members of the session may send; join or claim first",
            )),
            AppendOutcome::MissingKey => Err(RelayError::new(
                ErrorCode::MissingSessionKey,
                "this server requires the X-Session-Key header on sends",
            )),
            AppendOutcome::InvalidKey => Err(RelayError::new(
                ErrorCode::InvalidSessionKey,
                "the session key does not match this agent",
            )),
            AppendOutcome::IdempotencyKeyReused => Err(RelayError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was already used with a different body",
            )),
            AppendOutcome::QuotaExceeded => Err(RelayError::new(
                ErrorCode::SessionQuotaExceeded,
                format!(
                    "the session holds {} unexpired messages; nothing was stored",
                    self.config.max_messages_per_session
                ),
            )),
        }
    }

    /// `GET /v1/sessions/:id/messages`.
    pub async fn poll(
        &self,
        raw_id: &str,
        agent_header: Option<&str>,
        raw_query: Option<&str>,
    ) -> Result<PolledPage, RelayError> {
        let id = session_id(raw_id)?;
        let reader = caller(agent_header)?;
        // Decoded pairs borrow from the query string unless they hold escapes; bytes that are not
        // UTF-8 once decoded are replaced, so they fail validation.
        let pairs = form_urlencoded::parse(raw_query.unwrap_or("").as_bytes());
        let query = PollQuery::from_pairs(pairs).map_err(RelayError::invalid_request)?;
        let mut deadline = Instant::now() + Duration::from_secs(query.wait);
        let mut capped = false;
        // Held while parked: at most MAX_WAITERS polls wait at once.
        let mut slot = None;
        // Subscribe before reading, so a send between the read and the wait still wakes us.
        let mut wake = self.store.subscribe(&id);
        loop {
            let page = match self
                .store
                .read(&id, &reader, query.after, query.limit as usize, self.now())
                .await?
            {
                ReadOutcome::Page(page) => page,
                ReadOutcome::SessionNotFound => return Err(session_not_found()),
                ReadOutcome::NotMember => {
                    return Err(RelayError::new(
                        ErrorCode::AgentNotInSession,
                        "this agent is not a member of the session (never joined, left, or removed for inactivity)",
                    ));
                }
            };
            if !capped {
                // A parked poll is the reader being present: answer (empty) by half-way to the
                // reader's inactivity deadline or the session's expiry, so a reader that polls
                // again at once is never removed or expired while it waits.
                capped = true;
                let now = self.now();
                let half_way = now + page.release_at.saturating_sub(now) / 2;
                deadline = deadline.min(self.clock.instant_at(half_way));
            }
            let has_greeting = query.after.is_none() && page.record.greeting.is_some();
            if !page.messages.is_empty()
                || has_greeting
                || query.wait == 0
                || Instant::now() >= deadline
                || self.shutdown.is_cancelled()
            {
                return Ok(self.page_response(page, &query));
            }
            // Nothing of the empty read is kept while parked.
            drop(page);
            if slot.is_none() {
                slot = Some(self.waiters.try_park().ok_or_else(|| {
                    RelayError::new(
                        ErrorCode::ServerBusy,
                        "too many long-polls are waiting on this server; retry shortly or poll with wait=0",
                    )
                    .with_retry_after(1)
                })?);
            }
            tokio::select! {
                changed = async {
                    match wake.as_mut() {
                        Some(rx) => rx.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                } => {
                    if !changed {
                        wake = None; // the session is gone: the next read says so
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
    }

    fn page_response(&self, page: Page, query: &PollQuery) -> PolledPage {
        PolledPage {
            greeting: query.after.is_none() && page.record.greeting.is_some(),
            page,
            after: query.after,
            limit: query.limit as usize,
            members: query.members,
        }
    }
}

/// A poll's answer (SPEC §2 poll): the greeting when asked from the beginning, then the page
/// read, at most `limit` messages, `nextCursor`, `truncated`, and presence when asked. Written
/// as JSON straight from the messages the store holds, without copying them.
pub struct PolledPage {
    page: Page,
    greeting: bool,
    after: Option<Cursor>,
    limit: usize,
    members: bool,
}

impl PolledPage {
    fn greeting(&self) -> Option<MessageView<'_>> {
        let rec = &self.page.record;
        match (self.greeting, &rec.greeting) {
            (true, Some(text)) => Some(MessageView {
                id: GREETING_ID,
                agent_id: nexus_proto::agent_id::SYSTEM_AGENT_ID,
                text: Some(text),
                json: None,
                cursor: Cursor::ZERO,
                verified: true,
                sent_at: ts(rec.created_at),
                expires_at: ts(rec.expires_at),
            }),
            _ => None,
        }
    }

    fn messages(&self) -> impl Iterator<Item = MessageView<'_>> {
        self.greeting()
            .into_iter()
            .chain(self.page.messages.iter().map(|m| view(m)))
            .take(self.limit)
    }

    /// The cursor of the last message returned, or `after` (or `0`) when none.
    pub fn next_cursor(&self) -> Cursor {
        let shown = (usize::from(self.greeting) + self.page.messages.len()).min(self.limit);
        match shown.checked_sub(1 + usize::from(self.greeting)) {
            Some(last) => self.page.messages[last].cursor,
            None if shown > 0 => Cursor::ZERO,
            None => self.after.unwrap_or(Cursor::ZERO),
        }
    }

    /// The page as the `PollResponse` JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        let members = self.members.then(|| {
            self.page
                .record
                .members
                .iter()
                .map(|m| (m.agent_id.as_str(), ts(m.last_seen_at)))
        });
        poll_page_json(
            self.messages(),
            self.next_cursor(),
            self.page.truncated,
            members,
        )
    }
}
