//! The embedded backend: all state in memory behind short `std::sync` lock sections (never held
//! across `.await`), session and code metadata journaled to redb in `DATA_DIR` (see `persist`), or
//! nothing on disk at all for tests ([`EmbeddedStore::in_memory`]). The session map is a
//! `RwLock` that requests only read (a lookup); each session has its own `Mutex`.
//!
//! Lock order, to stay deadlock-free: codes → session map → one session → dirty set. Expired
//! sessions are dropped when touched and by [`Store::sweep`].
//!
//! Cursors never repeat across restarts: blocks of cursors are reserved durably ahead of use
//! ([`RESERVE_BLOCK`]); after a restart a session resumes above everything reserved, and every
//! message up to there counts as lost (`truncated`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use nexus_proto::time::Millis;
use nexus_proto::{AgentId, Cursor, PairCode, SessionId, SessionKey};
use tokio::sync::watch;

use super::persist::{Durable, Journal, Op};
use super::*;
use crate::secrets::secret_eq;

/// Cursors reserved on disk at a time.
pub const RESERVE_BLOCK: u64 = 1024;

struct Entry {
    rec: SessionRecord,
    messages: VecDeque<Arc<StoredMessage>>,
    /// The messages' expiries never decrease front to back (they do after a renew shortened
    /// the TTL, or when concurrent sends took `now` in one order and the lock in the other):
    /// then the unexpired ones are a suffix, counted in O(log n).
    expiry_sorted: bool,
    /// Expiry of the newest message (kept here so a send does not read that message).
    newest_expiry: Millis,
    /// Waiting in the store's dirty set for the next batched flush.
    dirty: bool,
    /// Expiry of the oldest message held (`Millis::MAX` when none), so that checking for expired
    /// messages on every send and poll does not read that message.
    oldest_expiry: Millis,
    /// (sender, Idempotency-Key) → (body digest, cursor).
    idempotency: HashMap<(AgentId, String), ([u8; 32], Cursor)>,
    wake: watch::Sender<u64>,
    /// Highest cursor known to be reserved on disk.
    durable_ceiling: u64,
    reserving: bool,
}

impl Entry {
    fn new(rec: SessionRecord, durable_ceiling: u64) -> Self {
        let (wake, _) = watch::channel(rec.last_cursor);
        Self {
            rec,
            messages: VecDeque::new(),
            expiry_sorted: true,
            newest_expiry: 0,
            dirty: false,
            oldest_expiry: Millis::MAX,
            idempotency: HashMap::new(),
            wake,
            durable_ceiling,
            reserving: false,
        }
    }

    /// Removes members past their inactivity deadline (never the creator). True if any was.
    fn prune(&mut self, now: Millis, inactivity_ms: Option<Millis>) -> bool {
        let Some(limit) = inactivity_ms else {
            return false;
        };
        let creator = self.rec.creator.clone();
        let before = self.rec.members.len();
        self.rec.members.retain(|m| {
            Some(&m.agent_id) == creator.as_ref() || now < m.last_seen_at.saturating_add(limit)
        });
        let changed = self.rec.members.len() != before;
        if changed {
            self.wake.send_modify(|_| {});
        }
        changed
    }

    fn touch(&mut self, now: Millis) {
        self.rec.expires_at = now.saturating_add(self.rec.ttl_secs.saturating_mul(1000));
    }

    fn drop_expired_messages(&mut self, now: Millis) {
        while self.oldest_expiry <= now {
            let Some(front) = self.messages.pop_front() else {
                self.oldest_expiry = Millis::MAX;
                break;
            };
            self.rec.lost_through = self.rec.lost_through.max(front.cursor.0);
            if let Some(key) = &front.idempotency_key {
                self.idempotency
                    .remove(&(front.agent_id.clone(), key.clone()));
            }
            self.oldest_expiry = self.messages.front().map_or(Millis::MAX, |m| m.expires_at);
        }
    }

    /// Unexpired messages held: without a scan of the whole session unless expiries are out of
    /// order.
    fn held_messages(&self, now: Millis) -> u64 {
        let held = if self.expiry_sorted {
            self.messages.len() - self.messages.partition_point(|m| m.expires_at <= now)
        } else {
            self.messages.iter().filter(|m| m.expires_at > now).count()
        };
        held as u64
    }

    /// Whether one more message would exceed `max` unexpired messages. Messages held (expired
    /// or not) bound the count, so it is only taken when the session could be full.
    fn is_full(&self, max: u64, now: Millis) -> bool {
        self.messages.len() as u64 >= max && self.held_messages(now) >= max
    }

    fn push_message(&mut self, message: Arc<StoredMessage>) {
        if self.messages.is_empty() {
            self.expiry_sorted = true;
            self.oldest_expiry = message.expires_at;
        } else if message.expires_at < self.newest_expiry {
            self.expiry_sorted = false;
        }
        self.newest_expiry = message.expires_at;
        self.messages.push_back(message);
    }

    /// Index of the first held message with a cursor above `after`. Held cursors are
    /// consecutive (each append takes the next one; expiry pops from the front), so the index is
    /// arithmetic and only the messages around it are read; a binary search (which reads
    /// log n cold messages) backs it up should that ever not hold.
    fn index_after(&self, after: Cursor) -> usize {
        let len = self.messages.len();
        let Some(first) = self.messages.front() else {
            return 0;
        };
        let guess = after
            .0
            .saturating_add(1)
            .saturating_sub(first.cursor.0)
            .min(len as u64) as usize;
        let below = |i: usize| self.messages.get(i).is_none_or(|m| m.cursor > after);
        let at_or_above = |i: usize| i == 0 || self.messages[i - 1].cursor <= after;
        if at_or_above(guess) && below(guess) {
            guess
        } else {
            self.messages.partition_point(|m| m.cursor <= after)
        }
    }

    fn find(&self, cursor: Cursor) -> Option<&Arc<StoredMessage>> {
        let i = self.index_after(Cursor(cursor.0.saturating_sub(1)));
        self.messages.get(i).filter(|m| m.cursor == cursor)
    }

    fn member_deadline(&self, agent: &AgentId, inactivity_ms: Option<Millis>) -> Millis {
        match (inactivity_ms, self.rec.member(agent)) {
            (Some(limit), Some(m)) if self.rec.creator.as_ref() != Some(agent) => {
                m.last_seen_at.saturating_add(limit)
            }
            _ => Millis::MAX,
        }
    }
}

type Shared = Arc<Mutex<Entry>>;

/// The embedded store. Cheap to share behind an `Arc`.
pub struct EmbeddedStore {
    /// Read-locked by every request (a lookup), write-locked only to add or drop a session.
    sessions: RwLock<HashMap<SessionId, Shared>>,
    codes: Mutex<HashMap<PairCode, CodeRecord>>,
    dirty: Mutex<HashSet<SessionId>>,
    journal: Option<Journal>,
    deadlines: Deadlines,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (every critical section
/// leaves the data consistent before anything that could panic).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EmbeddedStore {
    /// A store that keeps nothing on disk (tests, benchmarks).
    pub fn in_memory(deadlines: Deadlines) -> Self {
        Self {
            sessions: RwLock::new(HashMap::new()),
            codes: Mutex::new(HashMap::new()),
            dirty: Mutex::new(HashSet::new()),
            journal: None,
            deadlines,
        }
    }

    /// Opens the store in `dir`, reloading sessions and codes that have not expired.
    pub fn open(dir: &Path, deadlines: Deadlines, now: Millis) -> StoreResult<Self> {
        let (journal, loaded) = Journal::open(dir)?;
        let mut sessions = HashMap::new();
        let mut stale = Vec::new();
        for mut rec in loaded.sessions {
            if rec.expires_at <= now {
                stale.push(Op::DeleteSession(rec.id.as_str().to_owned()));
                continue;
            }
            // Bodies did not survive: resume above everything that may have been handed out.
            let high = rec.last_cursor.max(rec.cursor_ceiling);
            rec.last_cursor = high;
            rec.cursor_ceiling = high;
            rec.lost_through = rec.lost_through.max(high);
            sessions.insert(rec.id.clone(), Arc::new(Mutex::new(Entry::new(rec, high))));
        }
        let mut codes = HashMap::new();
        for code in loaded.codes {
            if code.forget_at <= now {
                stale.push(Op::DeleteCode(code.code.as_str().to_owned()));
            } else {
                codes.insert(code.code.clone(), code);
            }
        }
        if !stale.is_empty() {
            journal.write_later(stale)?;
        }
        Ok(Self {
            sessions: RwLock::new(sessions),
            codes: Mutex::new(codes),
            dirty: Mutex::new(HashSet::new()),
            journal: Some(journal),
            deadlines,
        })
    }

    /// The session if it exists and has not expired; an expired one is dropped on the spot.
    fn live(&self, id: &SessionId, now: Millis) -> Option<Shared> {
        let shared = read(&self.sessions).get(id)?.clone();
        if lock(&shared).rec.expires_at > now {
            return Some(shared);
        }
        self.drop_if_expired(id, &shared, now);
        None
    }

    /// Removes `shared` (the session `id`) if it is still the one in the map and has expired.
    fn drop_if_expired(&self, id: &SessionId, shared: &Shared, now: Millis) {
        let mut map = write(&self.sessions);
        let current = map.get(id).filter(|current| Arc::ptr_eq(current, shared));
        if current.is_some_and(|current| lock(current).rec.expires_at <= now) {
            map.remove(id);
            self.forget_session(id);
        }
    }

    fn forget_session(&self, id: &SessionId) {
        if let Some(j) = &self.journal {
            let _ = j.write_later(vec![Op::DeleteSession(id.as_str().to_owned())]);
        }
    }

    /// Queues a locked session for the next batched flush (sliding expiry, `lastSeenAt`). The
    /// shared set is touched once per flush period, not on every send and poll.
    fn mark_dirty(&self, e: &mut Entry) {
        if self.journal.is_some() && !e.dirty {
            e.dirty = true;
            lock(&self.dirty).insert(e.rec.id.clone());
        }
    }

    /// Queues a durable write of `rec` (call with the session locked).
    fn persist(&self, rec: &SessionRecord) -> StoreResult<Option<Durable>> {
        match &self.journal {
            Some(j) => Ok(Some(j.write(vec![Op::put_session(rec)?])?)),
            None => Ok(None),
        }
    }

    /// Adds `agent` to a locked session: the shared step of join and claim.
    fn join_locked(
        &self,
        e: &mut Entry,
        agent: &AgentId,
        key: SessionKey,
        now: Millis,
    ) -> StoreResult<Result<Option<Durable>, JoinOutcome>> {
        if e.prune(now, self.deadlines.inactivity_ms) {
            self.mark_dirty(e);
        }
        if e.rec.member(agent).is_some() {
            return Ok(Err(JoinOutcome::AgentIdTaken));
        }
        if e.rec.members.len() as u64 >= e.rec.max_agents {
            return Ok(Err(JoinOutcome::SessionFull));
        }
        e.rec.members.push(MemberRecord {
            agent_id: agent.clone(),
            key,
            joined_at: now,
            last_seen_at: now,
        });
        Ok(Ok(self.persist(&e.rec)?))
    }

    fn code_state_locked(&self, code: &CodeRecord, now: Millis) -> CodeState {
        if code.forget_at <= now {
            CodeState::Unknown
        } else if code.claimed_at.is_some() {
            CodeState::Claimed
        } else if code.expires_at <= now || self.live(&code.session_id, now).is_none() {
            CodeState::Expired
        } else {
            CodeState::Pending
        }
    }

    /// Reserves the next block of cursors in the background once half of the current one is used,
    /// so appends rarely wait for the disk.
    fn reserve_ahead(&self, shared: &Shared, e: &mut Entry, next: u64) -> StoreResult<()> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        if e.reserving || next + RESERVE_BLOCK / 2 < e.durable_ceiling {
            return Ok(());
        }
        e.reserving = true;
        e.rec.cursor_ceiling = e.rec.cursor_ceiling.max(e.durable_ceiling + RESERVE_BLOCK);
        let target = e.rec.cursor_ceiling;
        let pending = journal.write(vec![Op::put_session(&e.rec)?])?;
        let shared = shared.clone();
        tokio::spawn(async move {
            let ok = pending.done().await.is_ok();
            let mut e = lock(&shared);
            e.reserving = false;
            if ok {
                e.durable_ceiling = e.durable_ceiling.max(target);
            }
        });
        Ok(())
    }

    async fn settle(pending: Option<Durable>) -> StoreResult<()> {
        match pending {
            Some(d) => d.done().await,
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn create_session(&self, mut rec: SessionRecord, max_sessions: u64) -> StoreResult<bool> {
        let now = rec.created_at;
        let has_journal = self.journal.is_some();
        rec.cursor_ceiling = if has_journal { RESERVE_BLOCK } else { 0 };
        let pending = {
            let mut map = write(&self.sessions);
            if map.len() as u64 >= max_sessions {
                let expired: Vec<SessionId> = map
                    .iter()
                    .filter(|(_, s)| lock(s).rec.expires_at <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in expired {
                    map.remove(&id);
                    self.forget_session(&id);
                }
                if map.len() as u64 >= max_sessions {
                    return Ok(false);
                }
            }
            let pending = self.persist(&rec)?;
            let ceiling = if has_journal { RESERVE_BLOCK } else { u64::MAX };
            map.insert(
                rec.id.clone(),
                Arc::new(Mutex::new(Entry::new(rec, ceiling))),
            );
            pending
        };
        Self::settle(pending).await?;
        Ok(true)
    }

    async fn session(&self, id: &SessionId, now: Millis) -> StoreResult<Option<SessionRecord>> {
        let Some(shared) = self.live(id, now) else {
            return Ok(None);
        };
        let mut e = lock(&shared);
        if e.prune(now, self.deadlines.inactivity_ms) {
            self.mark_dirty(&mut e);
        }
        Ok(Some(e.rec.clone()))
    }

    async fn join(
        &self,
        id: &SessionId,
        agent: &AgentId,
        key: SessionKey,
        now: Millis,
    ) -> StoreResult<JoinOutcome> {
        let Some(shared) = self.live(id, now) else {
            return Ok(JoinOutcome::SessionNotFound);
        };
        let (pending, record) = {
            let mut e = lock(&shared);
            match self.join_locked(&mut e, agent, key, now)? {
                Ok(pending) => (pending, e.rec.clone()),
                Err(outcome) => return Ok(outcome),
            }
        };
        Self::settle(pending).await?;
        Ok(JoinOutcome::Joined { record })
    }

    async fn leave(
        &self,
        id: &SessionId,
        agent: &AgentId,
        key: &str,
        now: Millis,
    ) -> StoreResult<LeaveOutcome> {
        let Some(shared) = self.live(id, now) else {
            return Ok(LeaveOutcome::SessionNotFound);
        };
        let pending = {
            let mut e = lock(&shared);
            e.prune(now, self.deadlines.inactivity_ms);
            match e.rec.member(agent) {
                None => return Ok(LeaveOutcome::AgentNotFound),
                Some(m) if !secret_eq(key, m.key.as_str()) => return Ok(LeaveOutcome::InvalidKey),
                Some(_) => {}
            }
            let before = e.rec.members.len();
            e.rec.members.retain(|m| &m.agent_id != agent);
            if e.rec.members.len() == before {
                return Ok(LeaveOutcome::AgentNotFound);
            }
            e.wake.send_modify(|_| {});
            self.persist(&e.rec)?
        };
        Self::settle(pending).await?;
        Ok(LeaveOutcome::Removed)
    }

    async fn renew(
        &self,
        id: &SessionId,
        ttl_secs: Option<u64>,
        now: Millis,
    ) -> StoreResult<Option<SessionRecord>> {
        let Some(shared) = self.live(id, now) else {
            return Ok(None);
        };
        let (pending, record) = {
            let mut e = lock(&shared);
            e.prune(now, self.deadlines.inactivity_ms);
            if let Some(ttl) = ttl_secs {
                e.rec.ttl_secs = ttl;
            }
            e.touch(now);
            (self.persist(&e.rec)?, e.rec.clone())
        };
        Self::settle(pending).await?;
        Ok(Some(record))
    }

    async fn append(
        &self,
        id: &SessionId,
        msg: NewMessage,
        limits: AppendLimits,
        now: Millis,
    ) -> StoreResult<AppendOutcome> {
        loop {
            let Some(shared) = self.live(id, now) else {
                return Ok(AppendOutcome::SessionNotFound);
            };
            let reservation = {
                let mut e = lock(&shared);
                if e.prune(now, self.deadlines.inactivity_ms) {
                    self.mark_dirty(&mut e);
                }
                let Some(member) = e.rec.member(&msg.agent_id) else {
                    return Ok(AppendOutcome::NotMember);
                };
                let verified = match &msg.key {
                    Some(k) if secret_eq(k, member.key.as_str()) => true,
                    Some(_) => return Ok(AppendOutcome::InvalidKey),
                    None if limits.require_key => return Ok(AppendOutcome::MissingKey),
                    None => false,
                };
                e.drop_expired_messages(now);
                if let Some((key, digest)) = &msg.idempotency {
                    let slot = (msg.agent_id.clone(), key.clone());
                    if let Some((seen, cursor)) = e.idempotency.get(&slot) {
                        if seen != digest {
                            return Ok(AppendOutcome::IdempotencyKeyReused);
                        }
                        if let Some(original) = e.find(*cursor) {
                            return Ok(AppendOutcome::Repeated(original.clone()));
                        }
                    }
                }
                if e.is_full(limits.max_messages, now) {
                    return Ok(AppendOutcome::QuotaExceeded);
                }
                let next = e.rec.last_cursor + 1;
                if next > e.durable_ceiling {
                    // Reserve a block on disk before handing out a cursor above the last one.
                    if e.rec.cursor_ceiling < next {
                        e.rec.cursor_ceiling = e.rec.last_cursor + RESERVE_BLOCK;
                    }
                    Some((e.rec.cursor_ceiling, self.persist(&e.rec)?))
                } else {
                    e.rec.last_cursor = next;
                    e.touch(now);
                    let expires_at = e.rec.expires_at;
                    if let Some(m) = e
                        .rec
                        .members
                        .iter_mut()
                        .find(|m| m.agent_id == msg.agent_id)
                    {
                        m.last_seen_at = now;
                    }
                    let stored = Arc::new(StoredMessage {
                        id: msg.id,
                        agent_id: msg.agent_id,
                        text: msg.text,
                        json: msg.json,
                        cursor: Cursor(next),
                        verified,
                        sent_at: now,
                        expires_at,
                        idempotency_key: msg.idempotency.as_ref().map(|(k, _)| k.clone()),
                    });
                    if let Some((key, digest)) = msg.idempotency {
                        e.idempotency
                            .insert((stored.agent_id.clone(), key), (digest, Cursor(next)));
                    }
                    e.push_message(stored.clone());
                    // Wake parked polls; with none, only the value changes (a notification
                    // takes a lock per slot of the channel's waiter list).
                    let listening = e.wake.receiver_count() > 0;
                    e.wake.send_if_modified(|last| {
                        *last = next;
                        listening
                    });
                    self.mark_dirty(&mut e);
                    self.reserve_ahead(&shared, &mut e, next)?;
                    return Ok(AppendOutcome::Stored(stored));
                }
            };
            if let Some((target, pending)) = reservation {
                Self::settle(pending).await?;
                let mut e = lock(&shared);
                e.durable_ceiling = e.durable_ceiling.max(target);
            }
        }
    }

    async fn read(
        &self,
        id: &SessionId,
        reader: &AgentId,
        after: Option<Cursor>,
        limit: usize,
        now: Millis,
    ) -> StoreResult<ReadOutcome> {
        let Some(shared) = self.live(id, now) else {
            return Ok(ReadOutcome::SessionNotFound);
        };
        let mut e = lock(&shared);
        e.prune(now, self.deadlines.inactivity_ms);
        let Some(m) = e.rec.members.iter_mut().find(|m| &m.agent_id == reader) else {
            return Ok(ReadOutcome::NotMember);
        };
        m.last_seen_at = now;
        e.touch(now);
        self.mark_dirty(&mut e);
        e.drop_expired_messages(now);
        let lost = e.rec.lost_through;
        let mut truncated = lost > 0 && after.is_none_or(|a| a.0 < lost);
        let start = match after {
            Some(a) => e.index_after(a),
            None => 0,
        };
        let mut messages = Vec::with_capacity(limit.min(e.messages.len() - start));
        for m in e.messages.range(start..) {
            if messages.len() >= limit {
                break;
            }
            if m.expires_at <= now {
                truncated = true;
            } else {
                messages.push(m.clone());
            }
        }
        let release_at = e
            .rec
            .expires_at
            .min(e.member_deadline(reader, self.deadlines.inactivity_ms));
        Ok(ReadOutcome::Page(Page {
            record: e.rec.clone(),
            messages,
            truncated,
            release_at,
        }))
    }

    fn subscribe(&self, id: &SessionId) -> Option<Wakeup> {
        let map = read(&self.sessions);
        let shared = map.get(id)?;
        Some(lock(shared).wake.subscribe())
    }

    async fn create_code(&self, record: CodeRecord) -> StoreResult<bool> {
        let pending = {
            let mut codes = lock(&self.codes);
            if codes.get(&record.code).is_some_and(|known| {
                self.code_state_locked(known, record.created_at) != CodeState::Unknown
            }) {
                return Ok(false);
            }
            let pending = match &self.journal {
                Some(j) => Some(j.write(vec![Op::put_code(&record)?])?),
                None => None,
            };
            codes.insert(record.code.clone(), record);
            pending
        };
        Self::settle(pending).await?;
        Ok(true)
    }

    async fn claim_code(
        &self,
        code: &PairCode,
        agent: &AgentId,
        key: SessionKey,
        now: Millis,
    ) -> StoreResult<ClaimOutcome> {
        let (pending, record) = {
            let mut codes = lock(&self.codes);
            // Unknown and expired codes answer after the same work (one lookup, one state check,
            // nothing copied): a guesser cannot time the difference (SPEC §2 "Pairing guesses").
            let state = codes
                .get(code)
                .map_or(CodeState::Unknown, |rec| self.code_state_locked(rec, now));
            match state {
                CodeState::Unknown => {
                    codes.remove(code);
                    return Ok(ClaimOutcome::Unknown);
                }
                CodeState::Claimed | CodeState::Expired => return Ok(ClaimOutcome::ExpiredOrUsed),
                CodeState::Pending => {}
            }
            let Some(rec) = codes.get(code).cloned() else {
                return Ok(ClaimOutcome::Unknown);
            };
            let Some(shared) = self.live(&rec.session_id, now) else {
                return Ok(ClaimOutcome::ExpiredOrUsed);
            };
            let mut e = lock(&shared);
            let session_write = match self.join_locked(&mut e, agent, key, now)? {
                Ok(pending) => pending,
                Err(refused) => return Ok(ClaimOutcome::Refused(refused)),
            };
            let claimed = CodeRecord {
                claimed_at: Some(now),
                forget_at: now.saturating_add(self.deadlines.code_memory_ms),
                ..rec
            };
            let code_write = match &self.journal {
                Some(j) => Some(j.write(vec![Op::put_code(&claimed)?])?),
                None => None,
            };
            codes.insert(code.clone(), claimed);
            // The code write was queued after the session write: its ack covers both.
            drop(session_write);
            (code_write, e.rec.clone())
        };
        Self::settle(pending).await?;
        Ok(ClaimOutcome::Claimed { record })
    }

    async fn code_state(
        &self,
        code: &PairCode,
        now: Millis,
    ) -> StoreResult<(CodeState, Option<Millis>)> {
        let codes = lock(&self.codes);
        Ok(match codes.get(code) {
            Some(rec) => match self.code_state_locked(rec, now) {
                CodeState::Pending => (CodeState::Pending, Some(rec.expires_at)),
                other => (other, None),
            },
            None => (CodeState::Unknown, None),
        })
    }

    async fn stats(&self, now: Millis) -> StoreResult<StoreStats> {
        let map = read(&self.sessions);
        let mut stats = StoreStats::default();
        for shared in map.values() {
            let e = lock(shared);
            if e.rec.expires_at > now {
                stats.sessions += 1;
                stats.agents += e.rec.members.len() as u64;
                stats.messages += e.held_messages(now);
            }
        }
        Ok(stats)
    }

    async fn sweep(&self, now: Millis) -> StoreResult<()> {
        let mut stale_codes = Vec::new();
        {
            let mut codes = lock(&self.codes);
            codes.retain(|code, rec| {
                let keep = rec.forget_at > now;
                if !keep {
                    stale_codes.push(Op::DeleteCode(code.as_str().to_owned()));
                }
                keep
            });
        }
        // Requests go on during the sweep: the map is only read while sessions are tidied, and
        // write-locked once to drop the expired ones.
        let mut gone = Vec::new();
        for (id, shared) in read(&self.sessions).iter() {
            let mut e = lock(shared);
            if e.rec.expires_at <= now {
                gone.push((id.clone(), shared.clone()));
            } else {
                if e.prune(now, self.deadlines.inactivity_ms) {
                    self.mark_dirty(&mut e);
                }
                e.drop_expired_messages(now);
            }
        }
        for (id, shared) in gone {
            self.drop_if_expired(&id, &shared, now);
        }
        if let (Some(j), false) = (&self.journal, stale_codes.is_empty()) {
            j.write_later(stale_codes)?;
        }
        Ok(())
    }

    async fn flush(&self) -> StoreResult<()> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let ids: Vec<SessionId> = lock(&self.dirty).drain().collect();
        let mut ops = Vec::with_capacity(ids.len());
        for id in ids {
            let shared = read(&self.sessions).get(&id).cloned();
            if let Some(shared) = shared {
                let mut e = lock(&shared);
                e.dirty = false;
                ops.push(Op::put_session(&e.rec)?);
                if ops.len() >= 1024 {
                    journal.write_later(std::mem::take(&mut ops))?;
                }
            }
        }
        journal.write(ops)?.done().await
    }

    async fn close(&self) -> StoreResult<()> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let map = read(&self.sessions).clone();
        let mut ops = Vec::with_capacity(map.len());
        for shared in map.values() {
            let e = lock(shared);
            // Exact high-water mark: nothing above it was handed out.
            let mut rec = e.rec.clone();
            rec.cursor_ceiling = rec.last_cursor;
            ops.push(Op::put_session(&rec)?);
        }
        journal.write(ops)?.done().await?;
        journal.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_795_600_800_000;
    const DEADLINES: Deadlines = Deadlines {
        inactivity_ms: None,
        code_memory_ms: 600_000,
    };

    fn agent(s: &str) -> AgentId {
        AgentId::parse(s).unwrap()
    }

    fn record(id: &SessionId) -> SessionRecord {
        SessionRecord {
            id: id.clone(),
            ttl_secs: 3600,
            max_agents: 5,
            created_at: T0,
            expires_at: T0 + 3_600_000,
            creator: Some(agent("a")),
            greeting: None,
            members: vec![MemberRecord {
                agent_id: agent("a"),
                key: SessionKey::from_stored("k".repeat(64)),
                joined_at: T0,
                last_seen_at: T0,
            }],
            last_cursor: 0,
            cursor_ceiling: 0,
            lost_through: 0,
        }
    }

    fn message(text: &str) -> NewMessage {
        NewMessage {
            id: format!("msg_{text}"),
            agent_id: agent("a"),
            key: Some("k".repeat(64)),
            text: Some(text.into()),
            json: None,
            idempotency: None,
        }
    }

    const LIMITS: AppendLimits = AppendLimits {
        max_messages: 10_000,
        require_key: false,
    };

    async fn append(store: &EmbeddedStore, id: &SessionId, text: &str) -> u64 {
        match store
            .append(id, message(text), LIMITS, T0 + 1)
            .await
            .unwrap()
        {
            AppendOutcome::Stored(m) => m.cursor.0,
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn read_all(store: &EmbeddedStore, id: &SessionId, after: Option<u64>) -> Page {
        match store
            .read(id, &agent("a"), after.map(Cursor), 1000, T0 + 2)
            .await
            .unwrap()
        {
            ReadOutcome::Page(p) => p,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn clean_restart_resumes_at_the_exact_cursor_and_reports_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let id = SessionId::from_random([1; 24]);
        {
            let store = EmbeddedStore::open(dir.path(), DEADLINES, T0).unwrap();
            assert!(store.create_session(record(&id), 10).await.unwrap());
            for t in ["one", "two", "three"] {
                append(&store, &id, t).await;
            }
            store.close().await.unwrap();
        }
        let store = EmbeddedStore::open(dir.path(), DEADLINES, T0).unwrap();
        assert_eq!(append(&store, &id, "four").await, 4);
        assert!(read_all(&store, &id, Some(1)).await.truncated);
        assert!(read_all(&store, &id, None).await.truncated);
        let after_mark = read_all(&store, &id, Some(3)).await;
        assert!(!after_mark.truncated);
        assert_eq!(after_mark.messages.len(), 1);
    }

    #[tokio::test]
    async fn crash_restart_never_reuses_a_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let id = SessionId::from_random([2; 24]);
        let mut last = 0;
        {
            let store = EmbeddedStore::open(dir.path(), DEADLINES, T0).unwrap();
            store.create_session(record(&id), 10).await.unwrap();
            // Cross a reservation boundary so background reservations happen too.
            for i in 0..(RESERVE_BLOCK + 10) {
                last = append(&store, &id, &i.to_string()).await;
            }
            // No close(): the process "crashes" (the journal thread drains what was queued).
        }
        let store = EmbeddedStore::open(dir.path(), DEADLINES, T0).unwrap();
        let next = append(&store, &id, "after crash").await;
        assert!(next > last, "cursor {next} must be above {last}");
        assert!(read_all(&store, &id, Some(last)).await.truncated);
    }

    #[tokio::test]
    async fn members_keys_and_pending_codes_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let id = SessionId::from_random([3; 24]);
        let code = PairCode::from_random(42);
        {
            let store = EmbeddedStore::open(dir.path(), DEADLINES, T0).unwrap();
            store.create_session(record(&id), 10).await.unwrap();
            let key = SessionKey::from_stored("b".repeat(64));
            assert!(matches!(
                store.join(&id, &agent("b"), key, T0).await.unwrap(),
                JoinOutcome::Joined { .. }
            ));
            store
                .create_code(CodeRecord::fresh(code.clone(), id.clone(), T0, 600_000))
                .await
                .unwrap();
        }
        let store = EmbeddedStore::open(dir.path(), DEADLINES, T0 + 1).unwrap();
        let rec = store.session(&id, T0 + 1).await.unwrap().unwrap();
        assert_eq!(rec.agent_ids(), ["a", "b"]);
        assert_eq!(
            rec.member(&agent("b")).unwrap().key.as_str(),
            "b".repeat(64)
        );
        assert_eq!(
            store.code_state(&code, T0 + 1).await.unwrap(),
            (CodeState::Pending, Some(T0 + 600_000))
        );
    }

    #[tokio::test]
    async fn held_messages_are_counted_exactly_even_after_a_shorter_ttl() {
        let store = EmbeddedStore::in_memory(DEADLINES);
        let id = SessionId::from_random([5; 24]);
        store.create_session(record(&id), 10).await.unwrap();
        let limits = |max| AppendLimits {
            max_messages: max,
            require_key: false,
        };
        let send = |at: Millis, max: u64| {
            let store = &store;
            let id = &id;
            async move {
                match store
                    .append(id, message("m"), limits(max), at)
                    .await
                    .unwrap()
                {
                    AppendOutcome::Stored(_) => true,
                    AppendOutcome::QuotaExceeded => false,
                    other => panic!("unexpected {other:?}"),
                }
            }
        };
        let held = |at| {
            let store = &store;
            async move { store.stats(at).await.unwrap().messages }
        };
        // In order: two messages expiring an hour later, one a second later.
        assert!(send(T0 + 1, 10).await);
        assert!(send(T0 + 2, 10).await);
        assert_eq!(held(T0 + 3).await, 2);
        assert!(!send(T0 + 3, 2).await, "the quota counts both");
        // A renew shortens the TTL: the next message expires before the earlier ones.
        store.renew(&id, Some(1), T0 + 4).await.unwrap();
        assert!(send(T0 + 5, 10).await);
        assert_eq!(held(T0 + 6).await, 3);
        // The session lives on (a longer TTL again); the short-lived message expires first.
        store.renew(&id, Some(3600), T0 + 500).await.unwrap();
        assert_eq!(held(T0 + 2_000).await, 2, "the short-lived one has expired");
        assert!(!send(T0 + 2_000, 2).await);
        assert!(
            send(T0 + 2_000, 3).await,
            "an expired message frees its place"
        );
    }

    #[test]
    fn the_index_after_a_cursor_is_found_with_or_without_consecutive_cursors() {
        let msg = |c: u64| {
            Arc::new(StoredMessage {
                id: format!("msg_{c}"),
                agent_id: agent("a"),
                text: Some("t".into()),
                json: None,
                cursor: Cursor(c),
                verified: true,
                sent_at: T0,
                expires_at: T0 + 1,
                idempotency_key: None,
            })
        };
        let mut e = Entry::new(record(&SessionId::from_random([7; 24])), 0);
        assert_eq!(e.index_after(Cursor(5)), 0);
        for held in [vec![3, 4, 5, 6, 7], vec![3, 5, 9, 10, 20]] {
            e.messages = held.iter().map(|&c| msg(c)).collect();
            for after in 0..25 {
                let expected = held.iter().filter(|&&c| c <= after).count();
                assert_eq!(
                    e.index_after(Cursor(after)),
                    expected,
                    "{held:?} after {after}"
                );
            }
            for c in 0..25 {
                assert_eq!(
                    e.find(Cursor(c)).map(|m| m.cursor.0),
                    held.contains(&c).then_some(c)
                );
            }
        }
    }

    #[tokio::test]
    async fn sliding_expiry_reaches_the_disk_at_every_flush() {
        let dir = tempfile::tempdir().unwrap();
        let id = SessionId::from_random([6; 24]);
        {
            let store = EmbeddedStore::open(dir.path(), DEADLINES, T0).unwrap();
            store.create_session(record(&id), 10).await.unwrap();
            read_all(&store, &id, None).await; // slides the expiry at T0 + 2
            store.flush().await.unwrap();
            // Dirty again after a flush: the next flush writes it again.
            store
                .append(&id, message("later"), LIMITS, T0 + 50)
                .await
                .unwrap();
            store.flush().await.unwrap();
            // No close(): what is on disk is what the flushes wrote.
        }
        let store = EmbeddedStore::open(dir.path(), DEADLINES, T0 + 60).unwrap();
        let rec = store.session(&id, T0 + 60).await.unwrap().unwrap();
        assert_eq!(rec.expires_at, T0 + 50 + 3_600_000);
    }

    #[cfg(unix)]
    #[test]
    fn data_dir_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let _store = EmbeddedStore::open(&dir, DEADLINES, T0).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(super::super::persist::DB_FILE)), 0o600);
    }

    #[tokio::test]
    async fn expired_sessions_are_not_reloaded_and_are_swept_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let id = SessionId::from_random([4; 24]);
        {
            let store = EmbeddedStore::open(dir.path(), DEADLINES, T0).unwrap();
            store.create_session(record(&id), 10).await.unwrap();
            store.close().await.unwrap();
        }
        let late = T0 + 3_600_000;
        {
            let store = EmbeddedStore::open(dir.path(), DEADLINES, late).unwrap();
            assert!(store.session(&id, late).await.unwrap().is_none());
            store.close().await.unwrap();
        }
        // Even when reopened "in the past", the record is gone from disk.
        let store = EmbeddedStore::open(dir.path(), DEADLINES, T0).unwrap();
        assert!(store.session(&id, T0).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_running_sweep_deletes_expired_sessions_and_codes_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let id = SessionId::from_random([5; 24]);
        let code = PairCode::from_random(7);
        let late = T0 + 3_600_000;
        {
            let store = EmbeddedStore::open(dir.path(), DEADLINES, T0).unwrap();
            store.create_session(record(&id), 10).await.unwrap();
            store
                .create_code(CodeRecord::fresh(code.clone(), id.clone(), T0, 600_000))
                .await
                .unwrap();
            store.sweep(late).await.unwrap();
            store.flush().await.unwrap();
            // Dropped without close(): only what the sweep journaled is on disk.
        }
        // Reopened "in the past", where both would still be alive if they were on disk.
        let store = EmbeddedStore::open(dir.path(), DEADLINES, T0).unwrap();
        assert!(store.session(&id, T0).await.unwrap().is_none());
        assert_eq!(
            store.code_state(&code, T0).await.unwrap(),
            (CodeState::Unknown, None)
        );
    }

    #[tokio::test]
    async fn a_code_that_is_already_known_is_never_overwritten() {
        let store = EmbeddedStore::in_memory(DEADLINES);
        let first = SessionId::from_random([6; 24]);
        let second = SessionId::from_random([7; 24]);
        store.create_session(record(&first), 10).await.unwrap();
        store.create_session(record(&second), 10).await.unwrap();
        let code = PairCode::from_random(99);
        let code_for = |session_id: &SessionId, at: Millis| {
            CodeRecord::fresh(code.clone(), session_id.clone(), at, 600_000)
        };
        assert!(store.create_code(code_for(&first, T0)).await.unwrap());
        // Pending, then expired but remembered: a collision is refused either way.
        assert!(!store.create_code(code_for(&second, T0 + 1)).await.unwrap());
        assert!(
            !store
                .create_code(code_for(&second, T0 + 700_000))
                .await
                .unwrap()
        );
        assert_eq!(
            store.code_state(&code, T0 + 2).await.unwrap(),
            (CodeState::Pending, Some(T0 + 600_000))
        );
        // Once forgotten, the code may be drawn again.
        assert!(
            store
                .create_code(code_for(&second, T0 + 1_200_000))
                .await
                .unwrap()
        );
    }
}
