//! The Redis (or Valkey) backend: every session, message, pairing code and limit counter lives in
//! Redis, so any number of relay nodes sharing one Redis answer any request with the semantics of
//! a single node. Selected with `REDIS_URL`; the embedded store stays the default.
//!
//! - [`keys`]: the key layout (one hash tag per session; no secret in any key name).
//! - [`scripts`] + `lua/`: one Lua script per protocol step, each one atomic round trip; a send
//!   (membership, key, idempotency, quota, cursor, append, sliding expiry, wake-up) is ONE
//!   `EVALSHA`.
//! - [`conn`]: the pool of multiplexed, reconnecting connections and the Redis → [`StoreError`]
//!   mapping.
//! - [`wakeups`]: one subscriber connection per node fanning wake-ups out to local long-polls.
//! - [`codec`]: records and messages to and from the scripts' replies.
//! - [`limits`]: rate-limit and claim-failure windows in Redis ([`RedisCounters`]), so the
//!   limits hold across nodes.
//!
//! SPEC rules enforced here, as in the embedded store: deadlines (session expiry, message expiry,
//! agent inactivity, code lifetimes) are checked on every access against the `now` the caller
//! passes (`PEXPIRE` only reclaims memory); cursors come from a per-session counter in Redis, so
//! they increase across nodes and node restarts, and across Redis restarts as far as Redis keeps
//! acknowledged writes (AOF, `docs/DEPLOYMENT.md`); a claim is single-use even when two nodes race
//! for one code (one script); session keys are compared as SHA-256 digests inside Redis.

pub mod codec;
pub mod conn;
pub mod keys;
pub mod limits;
pub mod scripts;
pub mod wakeups;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::{Cmd, Value};
use async_trait::async_trait;
use nexus_proto::ids::to_hex;
use nexus_proto::time::Millis;
use nexus_proto::{AgentId, Cursor, PairCode, SessionId, SessionKey};
use tokio_util::sync::CancellationToken;

pub use limits::RedisCounters;

use self::codec::{int, status, text};
use self::conn::{Conn, evalsha};
use self::keys::{Keys, secret_digest};
use self::scripts::Scripts;
use self::wakeups::{Wake, Wakeups};
use super::*;

/// Sessions checked per round trip by the sweep, the capacity check and the census.
const BATCH: usize = 500;

/// How to reach Redis and how to lay out keys. `Debug` hides the URL (it may hold a password).
#[derive(Clone)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://` is not built in: use a TLS proxy).
    pub url: String,
    /// Prefix of every key and of the wake-up channel, so several relays can share a Redis.
    pub prefix: String,
    /// Added to every `PEXPIRE`: keys outlive their logical deadline by this much, so nodes whose
    /// clocks differ a little agree on what exists; deadlines themselves are checked exactly.
    pub grace: Duration,
    /// `/v1/stats` and `/metrics` walk every session; their answer is reused this long.
    pub stats_cache: Duration,
    /// Multiplexed connections in the pool.
    pub connections: usize,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &"..")
            .field("prefix", &self.prefix)
            .field("grace", &self.grace)
            .field("stats_cache", &self.stats_cache)
            .field("connections", &self.connections)
            .finish()
    }
}

impl RedisOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "nexus".into(),
            grace: Duration::from_secs(60),
            stats_cache: Duration::from_secs(5),
            connections: 4,
        }
    }
}

/// The store. Create it with [`RedisStore::connect`] inside a tokio runtime; the subscriber task
/// runs on that runtime until [`Store::close`].
pub struct RedisStore {
    conn: Arc<Conn>,
    keys: Keys,
    /// `keys.wake_channel_prefix()`, computed once: every session script gets it.
    channel: String,
    scripts: Arc<Scripts>,
    wakeups: Arc<Wakeups>,
    deadlines: Deadlines,
    options: RedisOptions,
    /// The last census and when it was taken.
    census: tokio::sync::Mutex<Option<(std::time::Instant, StoreStats)>>,
    stop: CancellationToken,
    subscriber: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The arguments every session script starts with (see `lua/prelude.lua`).
fn prelude(
    cmd: &mut Cmd,
    now: Millis,
    deadlines: &Deadlines,
    grace: &Duration,
    channel: &str,
    tag: &str,
) {
    cmd.arg(now)
        .arg(deadlines.inactivity_ms.unwrap_or(0))
        .arg(grace.as_millis() as u64)
        .arg(channel)
        .arg(tag);
}

impl RedisStore {
    /// Connects (failing when Redis cannot be reached) and subscribes to wake-ups.
    pub async fn connect(options: RedisOptions, deadlines: Deadlines) -> StoreResult<Self> {
        let conn = Arc::new(Conn::connect(&options.url, options.connections).await?);
        let keys = Keys::new(&options.prefix);
        let (wakeups, subscriptions) = Wakeups::new(keys.wake_channel_prefix());
        let stop = CancellationToken::new();
        let subscriber = wakeups::spawn_subscriber(
            conn.client().clone(),
            wakeups.clone(),
            subscriptions,
            stop.clone(),
        )
        .await;
        Ok(Self {
            conn,
            channel: keys.wake_channel_prefix(),
            keys,
            scripts: Arc::new(Scripts::new()),
            wakeups,
            deadlines,
            options,
            census: tokio::sync::Mutex::new(None),
            stop,
            subscriber: Mutex::new(Some(subscriber)),
        })
    }

    /// Rate-limit and claim-failure counters on the same Redis and prefix.
    pub fn counters(&self) -> RedisCounters {
        RedisCounters::new(
            self.conn.clone(),
            self.keys.clone(),
            self.scripts.clone(),
            self.options.grace,
        )
    }

    /// A session script call: `EVALSHA` with the session's keys and the common arguments.
    fn call(&self, script: &::redis::Script, keys: &[&str], tag: &str, now: Millis) -> Cmd {
        let mut cmd = evalsha(script, keys);
        prelude(
            &mut cmd,
            now,
            &self.deadlines,
            &self.options.grace,
            &self.channel,
            tag,
        );
        cmd
    }

    async fn eval(&self, script: &::redis::Script, cmd: &Cmd) -> StoreResult<Value> {
        self.conn.eval(script, cmd).await
    }

    /// The session id a pairing code points to, if the pointer still exists.
    async fn code_session(&self, code: &PairCode) -> StoreResult<Option<SessionId>> {
        let mut cmd = ::redis::cmd("GET");
        cmd.arg(self.keys.code_pointer(code));
        let sid: Option<String> = self.conn.query(&cmd).await?;
        Ok(sid.as_deref().and_then(SessionId::parse))
    }

    /// Checks index entries whose recorded expiry has passed: drops (and deletes) sessions that
    /// are gone, re-scores those whose expiry slid. `limit` bounds the work (`None`: all).
    async fn refresh_index(&self, now: Millis, mut limit: Option<usize>) -> StoreResult<()> {
        let index = self.keys.sessions_index();
        loop {
            let mut range = ::redis::cmd("ZRANGEBYSCORE");
            range
                .arg(&index)
                .arg("-inf")
                .arg(now)
                .arg("LIMIT")
                .arg(0)
                .arg(BATCH);
            let tags: Vec<String> = self.conn.query(&range).await?;
            if tags.is_empty() {
                return Ok(());
            }
            let cmds: Vec<Cmd> = tags
                .iter()
                .map(|tag| {
                    let sk = self.keys.session_by_tag(tag);
                    self.call(&self.scripts.sweep, &sk.all(), tag, now)
                })
                .collect();
            let results = self.conn.eval_many(&self.scripts.sweep, &cmds).await?;
            let mut fix = ::redis::pipe();
            for (tag, result) in tags.iter().zip(&results) {
                match int(result) {
                    Some(x) if x > 0 => fix.cmd("ZADD").arg(&index).arg("XX").arg(x).arg(tag),
                    _ => fix.cmd("ZREM").arg(&index).arg(tag),
                };
            }
            self.conn.pipeline(&fix).await?;
            if tags.len() < BATCH {
                return Ok(());
            }
            if let Some(left) = &mut limit {
                *left = left.saturating_sub(tags.len());
                if *left == 0 {
                    return Ok(());
                }
            }
        }
    }

    /// Walks the index and counts live sessions, their members and unexpired messages.
    async fn census(&self, now: Millis) -> StoreResult<StoreStats> {
        let index = self.keys.sessions_index();
        let mut stats = StoreStats::default();
        let mut start = 0usize;
        loop {
            let mut range = ::redis::cmd("ZRANGE");
            range.arg(&index).arg(start).arg(start + BATCH - 1);
            let tags: Vec<String> = self.conn.query(&range).await?;
            let cmds: Vec<Cmd> = tags
                .iter()
                .map(|tag| {
                    let sk = self.keys.session_by_tag(tag);
                    self.call(
                        &self.scripts.census,
                        &[sk.hash.as_str(), sk.expiries.as_str()],
                        tag,
                        now,
                    )
                })
                .collect();
            for result in self.conn.eval_many(&self.scripts.census, &cmds).await? {
                if let Value::Array(counts) = result
                    && let [members, messages] = counts.as_slice()
                {
                    stats.sessions += 1;
                    stats.agents += int(members).unwrap_or(0).max(0) as u64;
                    stats.messages += int(messages).unwrap_or(0).max(0) as u64;
                }
            }
            if tags.len() < BATCH {
                return Ok(stats);
            }
            start += BATCH;
        }
    }

    fn joined(id: &SessionId, rest: &[Value]) -> StoreResult<SessionRecord> {
        let fields = rest
            .first()
            .ok_or_else(|| StoreError::Corrupt("redis: join reply".into()))?;
        codec::record(id, fields)
    }
}

fn unexpected(what: &str, got: &str) -> StoreError {
    StoreError::Corrupt(format!("redis: unexpected {what} reply {got:?}"))
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> StoreResult<()> {
        let _: String = self.conn.query(&::redis::cmd("PING")).await?;
        Ok(())
    }

    async fn create_session(&self, rec: SessionRecord, max_sessions: u64) -> StoreResult<bool> {
        let now = rec.created_at;
        let sk = self.keys.session(&rec.id);
        let mut reserve = evalsha(&self.scripts.index_add, &[&self.keys.sessions_index()]);
        reserve.arg(max_sessions).arg(&sk.tag).arg(rec.expires_at);
        if int(&self.eval(&self.scripts.index_add, &reserve).await?) != Some(1) {
            // Full, perhaps of sessions that expired or slid: correct the index, try once more.
            self.refresh_index(now, None).await?;
            if int(&self.eval(&self.scripts.index_add, &reserve).await?) != Some(1) {
                return Ok(false);
            }
        }
        let creator = rec.members.first();
        let mut cmd = self.call(&self.scripts.create, &[&sk.hash], &sk.tag, now);
        cmd.arg(rec.ttl_secs)
            .arg(rec.max_agents)
            .arg(rec.created_at)
            .arg(rec.expires_at)
            .arg(creator.map(|m| m.agent_id.as_str()).unwrap_or(""))
            .arg(rec.greeting.as_deref().unwrap_or(""))
            .arg(
                creator
                    .map(|m| secret_digest(m.key.as_str()))
                    .unwrap_or_default(),
            );
        self.eval(&self.scripts.create, &cmd).await?;
        Ok(true)
    }

    async fn session(&self, id: &SessionId, now: Millis) -> StoreResult<Option<SessionRecord>> {
        let sk = self.keys.session(id);
        let cmd = self.call(&self.scripts.session, &[&sk.hash], &sk.tag, now);
        match self.eval(&self.scripts.session, &cmd).await? {
            Value::Nil => Ok(None),
            fields => Ok(Some(codec::record(id, &fields)?)),
        }
    }

    async fn join(
        &self,
        id: &SessionId,
        agent: &AgentId,
        key: SessionKey,
        now: Millis,
    ) -> StoreResult<JoinOutcome> {
        let sk = self.keys.session(id);
        let mut cmd = self.call(&self.scripts.join, &[&sk.hash], &sk.tag, now);
        cmd.arg(agent.as_str()).arg(secret_digest(key.as_str()));
        let reply = self.eval(&self.scripts.join, &cmd).await?;
        match status(&reply)? {
            ("joined", rest) => Ok(JoinOutcome::Joined {
                record: Self::joined(id, rest)?,
            }),
            ("gone", _) => Ok(JoinOutcome::SessionNotFound),
            ("taken", _) => Ok(JoinOutcome::AgentIdTaken),
            ("full", _) => Ok(JoinOutcome::SessionFull),
            (other, _) => Err(unexpected("join", other)),
        }
    }

    async fn leave(
        &self,
        id: &SessionId,
        agent: &AgentId,
        key: &str,
        now: Millis,
    ) -> StoreResult<LeaveOutcome> {
        let sk = self.keys.session(id);
        let mut cmd = self.call(&self.scripts.leave, &[&sk.hash], &sk.tag, now);
        cmd.arg(agent.as_str()).arg(secret_digest(key));
        let reply = self.eval(&self.scripts.leave, &cmd).await?;
        match status(&reply)? {
            ("removed", _) => {
                // The script published the change for other nodes; this node's waiters now.
                self.wakeups.wake(&sk.tag, Wake::Members);
                Ok(LeaveOutcome::Removed)
            }
            ("gone", _) => Ok(LeaveOutcome::SessionNotFound),
            ("not_member", _) => Ok(LeaveOutcome::AgentNotFound),
            ("bad_key", _) => Ok(LeaveOutcome::InvalidKey),
            (other, _) => Err(unexpected("leave", other)),
        }
    }

    async fn renew(
        &self,
        id: &SessionId,
        ttl_secs: Option<u64>,
        now: Millis,
    ) -> StoreResult<Option<SessionRecord>> {
        let sk = self.keys.session(id);
        let mut cmd = self.call(&self.scripts.renew, &sk.all(), &sk.tag, now);
        cmd.arg(ttl_secs.map(|t| t.to_string()).unwrap_or_default());
        match self.eval(&self.scripts.renew, &cmd).await? {
            Value::Nil => Ok(None),
            fields => Ok(Some(codec::record(id, &fields)?)),
        }
    }

    async fn append(
        &self,
        id: &SessionId,
        msg: NewMessage,
        limits: AppendLimits,
        now: Millis,
    ) -> StoreResult<AppendOutcome> {
        let sk = self.keys.session(id);
        let mut cmd = self.call(&self.scripts.append, &sk.all(), &sk.tag, now);
        let (idem_field, idem_digest) = match &msg.idempotency {
            Some((key, digest)) => (format!("{}\n{key}", msg.agent_id.as_str()), to_hex(digest)),
            None => (String::new(), String::new()),
        };
        cmd.arg(msg.agent_id.as_str())
            .arg(msg.key.as_deref().map(secret_digest).unwrap_or_default())
            .arg(if limits.require_key { "1" } else { "0" })
            .arg(limits.max_messages)
            .arg(idem_field)
            .arg(idem_digest)
            .arg(codec::payload(&msg, now)?);
        let reply = self.eval(&self.scripts.append, &cmd).await?;
        match status(&reply)? {
            ("stored", [cursor, verified, expires]) => {
                let cursor = int(cursor).ok_or_else(|| unexpected("append cursor", ""))? as u64;
                let expires_at =
                    int(expires).ok_or_else(|| unexpected("append expiry", ""))? as Millis;
                self.wakeups.wake(&sk.tag, Wake::Cursor(cursor));
                Ok(AppendOutcome::Stored(Arc::new(StoredMessage {
                    idempotency_key: msg.idempotency.map(|(k, _)| k),
                    id: msg.id,
                    agent_id: msg.agent_id,
                    text: msg.text,
                    json: msg.json,
                    cursor: Cursor(cursor),
                    verified: text(verified) == Some("1"),
                    sent_at: now,
                    expires_at,
                })))
            }
            ("repeated", [entry]) => Ok(AppendOutcome::Repeated(codec::message(entry)?)),
            ("gone", _) => Ok(AppendOutcome::SessionNotFound),
            ("not_member", _) => Ok(AppendOutcome::NotMember),
            ("bad_key", _) => Ok(AppendOutcome::InvalidKey),
            ("missing_key", _) => Ok(AppendOutcome::MissingKey),
            ("reused", _) => Ok(AppendOutcome::IdempotencyKeyReused),
            ("quota", _) => Ok(AppendOutcome::QuotaExceeded),
            (other, _) => Err(unexpected("append", other)),
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
        let sk = self.keys.session(id);
        let mut cmd = self.call(&self.scripts.read, &sk.all(), &sk.tag, now);
        cmd.arg(reader.as_str())
            .arg(after.map(|c| c.0.to_string()).unwrap_or_default())
            .arg(limit);
        let reply = self.eval(&self.scripts.read, &cmd).await?;
        match status(&reply)? {
            ("page", [fields, entries, truncated]) => {
                // A member reads an existing session: a poll may park on it, so other nodes' sends
                // must reach this node from now on.
                self.wakeups.activate(&sk.tag);
                let record = codec::record(id, fields)?;
                let messages = match entries {
                    Value::Array(items) => items
                        .iter()
                        .map(codec::message)
                        .collect::<StoreResult<Vec<_>>>()?,
                    _ => Vec::new(),
                };
                let deadline = match (self.deadlines.inactivity_ms, record.member(reader)) {
                    (Some(limit), Some(m)) if record.creator.as_ref() != Some(reader) => {
                        m.last_seen_at.saturating_add(limit)
                    }
                    _ => Millis::MAX,
                };
                Ok(ReadOutcome::Page(Page {
                    release_at: record.expires_at.min(deadline),
                    truncated: text(truncated) == Some("1"),
                    record,
                    messages,
                }))
            }
            ("gone", _) => Ok(ReadOutcome::SessionNotFound),
            ("not_member", _) => Ok(ReadOutcome::NotMember),
            (other, _) => Err(unexpected("read", other)),
        }
    }

    fn subscribe(&self, id: &SessionId) -> Option<Wakeup> {
        Some(self.wakeups.subscribe(&keys::session_tag(id)))
    }

    async fn create_code(&self, record: CodeRecord) -> StoreResult<bool> {
        let sk = self.keys.session(&record.session_id);
        let ttl = |deadline: Millis| {
            deadline.saturating_sub(record.created_at) + self.options.grace.as_millis() as u64
        };
        // The pointer first, only if the code is new (`NX`): a collision with a known code
        // writes nothing, and the caller draws another code.
        let mut set = ::redis::cmd("SET");
        set.arg(self.keys.code_pointer(&record.code))
            .arg(record.session_id.as_str())
            .arg("PX")
            .arg(ttl(record.forget_at))
            .arg("NX");
        let created: Option<String> = self.conn.query(&set).await?;
        if created.is_none() {
            return Ok(false);
        }
        let mut pipe = ::redis::pipe();
        let rec_key = self.keys.code_record(&sk, &record.code);
        pipe.cmd("HSET")
            .arg(&rec_key)
            .arg("ex")
            .arg(record.expires_at)
            .arg("fg")
            .arg(record.forget_at)
            .arg("ca")
            .arg(record.created_at)
            .ignore();
        pipe.cmd("PEXPIRE")
            .arg(&rec_key)
            .arg(ttl(record.forget_at))
            .ignore();
        self.conn.pipeline(&pipe).await?;
        Ok(true)
    }

    async fn claim_code(
        &self,
        code: &PairCode,
        agent: &AgentId,
        key: SessionKey,
        now: Millis,
    ) -> StoreResult<ClaimOutcome> {
        let Some(id) = self.code_session(code).await? else {
            return Ok(ClaimOutcome::Unknown);
        };
        let sk = self.keys.session(&id);
        let rec_key = self.keys.code_record(&sk, code);
        let mut cmd = self.call(&self.scripts.claim, &[&sk.hash, &rec_key], &sk.tag, now);
        cmd.arg(agent.as_str())
            .arg(secret_digest(key.as_str()))
            .arg(self.deadlines.code_memory_ms);
        let reply = self.eval(&self.scripts.claim, &cmd).await?;
        match status(&reply)? {
            ("claimed", rest) => Ok(ClaimOutcome::Claimed {
                record: Self::joined(&id, rest)?,
            }),
            ("unknown", _) => Ok(ClaimOutcome::Unknown),
            ("used", _) => Ok(ClaimOutcome::ExpiredOrUsed),
            ("taken", _) => Ok(ClaimOutcome::Refused(JoinOutcome::AgentIdTaken)),
            ("full", _) => Ok(ClaimOutcome::Refused(JoinOutcome::SessionFull)),
            (other, _) => Err(unexpected("claim", other)),
        }
    }

    async fn code_state(
        &self,
        code: &PairCode,
        now: Millis,
    ) -> StoreResult<(CodeState, Option<Millis>)> {
        let Some(id) = self.code_session(code).await? else {
            return Ok((CodeState::Unknown, None));
        };
        let sk = self.keys.session(&id);
        let rec_key = self.keys.code_record(&sk, code);
        let cmd = self.call(
            &self.scripts.code_state,
            &[&sk.hash, &rec_key],
            &sk.tag,
            now,
        );
        let reply = self.eval(&self.scripts.code_state, &cmd).await?;
        Ok(match status(&reply)? {
            ("pending", [expires]) => (CodeState::Pending, int(expires).map(|e| e as Millis)),
            ("claimed", _) => (CodeState::Claimed, None),
            ("expired", _) => (CodeState::Expired, None),
            ("unknown", _) => (CodeState::Unknown, None),
            (other, _) => return Err(unexpected("code state", other)),
        })
    }

    async fn stats(&self, now: Millis) -> StoreResult<StoreStats> {
        // One census at a time; callers within `stats_cache` share its answer.
        let mut cached = self.census.lock().await;
        if let Some((at, stats)) = *cached
            && at.elapsed() < self.options.stats_cache
        {
            return Ok(stats);
        }
        let stats = self.census(now).await?;
        *cached = Some((std::time::Instant::now(), stats));
        Ok(stats)
    }

    async fn sweep(&self, now: Millis) -> StoreResult<()> {
        self.wakeups.prune();
        self.refresh_index(now, None).await
    }

    async fn flush(&self) -> StoreResult<()> {
        // Every change is in Redis when its script returns; persistence is Redis's (AOF).
        Ok(())
    }

    async fn close(&self) -> StoreResult<()> {
        self.stop.cancel();
        let subscriber = self
            .subscriber
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = subscriber {
            let _ = task.await;
        }
        Ok(())
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_never_show_the_url() {
        let o = RedisOptions::new("redis://:hunter2@10.0.0.5:6379/0");
        let shown = format!("{o:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("prefix: \"nexus\""), "{shown}");
    }
}
