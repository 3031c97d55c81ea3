//! The key layout of the Redis backend. Every key of one session shares the hash tag `{T}`, where
//! `T` is the first 128 bits of SHA-256(session id) in hex, so one script can touch all of them
//! (and Redis Cluster keeps them in one slot). Secrets never appear in key or channel names —
//! Redis shows key names in `SLOWLOG`, `MONITOR`, `--bigkeys` and keyspace notifications: session
//! ids and pairing codes appear only as digests, session keys only as SHA-256 digests inside the
//! session hash.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{T}:s` | hash | the session: ttl, maxAgents, createdAt, expiresAt, creator, greeting, cursor counter, lost-through mark, members (`m:<agentId>` → seq, joinedAt, lastSeenAt, SHA-256 of the key) |
//! | `P:{T}:m` | sorted set | messages, score = cursor |
//! | `P:{T}:e` | sorted set | the same cursors (with the idempotency field, if any), score = the message's expiresAt |
//! | `P:{T}:i` | hash | idempotency: `<agentId>\n<Idempotency-Key>` → body digest and cursor; an entry is removed with its message |
//! | `P:{T}:k:<C>` | hash | a pairing code of this session (`C` = digest of the code): expiresAt, claimedAt, forgetAt |
//! | `P:code:<C>` | string | the code's session id (immutable; lets a claim find `{T}`) |
//! | `P:sessions` | sorted set | every session's tag, score = expiresAt when last checked (`MAX_SESSIONS`, `/v1/stats`) |
//! | `P:rl:<window>:<ip>`, `P:cf:<window>:<ip>`, `P:cf:<window>:all` | string | rate-limit and failed-claim counters |
//! | channel `P:wake:<T>` | pub/sub | the cursor after a send, `-` after a membership change; subscribed only by nodes with a poll waiting on the session |

use nexus_proto::ids::to_hex;
use nexus_proto::time::Millis;
use nexus_proto::{PairCode, SessionId};
use sha2::{Digest, Sha256};

/// A session's tag: 32 hex chars of SHA-256(session id).
pub fn session_tag(id: &SessionId) -> String {
    digest_prefix(id.as_str())
}

/// A code's digest in key names: 32 hex chars of SHA-256(code) (the code's canonical form).
pub fn code_digest(code: &PairCode) -> String {
    digest_prefix(code.as_str())
}

/// SHA-256 of a secret, 64 hex chars: what Redis stores and compares for session keys.
pub fn secret_digest(secret: &str) -> String {
    to_hex(&Sha256::digest(secret.as_bytes()))
}

fn digest_prefix(s: &str) -> String {
    to_hex(&Sha256::digest(s.as_bytes())[..16])
}

/// Key names under one prefix (`nexus` unless configured), so several relays can share a Redis.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

/// The keys of one session.
#[derive(Clone, Debug)]
pub struct SessionKeys {
    pub tag: String,
    pub hash: String,
    pub messages: String,
    pub expiries: String,
    pub idempotency: String,
}

impl SessionKeys {
    /// Hash, messages, expiries, idempotency: the keys most scripts take, in that order.
    pub fn all(&self) -> [&str; 4] {
        [
            &self.hash,
            &self.messages,
            &self.expiries,
            &self.idempotency,
        ]
    }
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub fn session(&self, id: &SessionId) -> SessionKeys {
        self.session_by_tag(&session_tag(id))
    }

    pub fn session_by_tag(&self, tag: &str) -> SessionKeys {
        let base = format!("{}:{{{tag}}}", self.prefix);
        SessionKeys {
            tag: tag.to_owned(),
            hash: format!("{base}:s"),
            messages: format!("{base}:m"),
            expiries: format!("{base}:e"),
            idempotency: format!("{base}:i"),
        }
    }

    /// The record of `code` under its session's tag.
    pub fn code_record(&self, session: &SessionKeys, code: &PairCode) -> String {
        format!(
            "{}:{{{}}}:k:{}",
            self.prefix,
            session.tag,
            code_digest(code)
        )
    }

    /// The pointer from `code` to its session id.
    pub fn code_pointer(&self, code: &PairCode) -> String {
        format!("{}:code:{}", self.prefix, code_digest(code))
    }

    pub fn sessions_index(&self) -> String {
        format!("{}:sessions", self.prefix)
    }

    /// Wake-up channels: this + a session's tag.
    pub fn wake_channel_prefix(&self) -> String {
        format!("{}:wake:", self.prefix)
    }

    /// A fixed-window counter: `kind` is `rl` (requests) or `cf` (failed claims), `who` an IP
    /// address or `all`.
    pub fn window(&self, kind: &str, window_start: Millis, who: &str) -> String {
        format!("{}:{kind}:{window_start}:{who}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_keys_share_one_hash_tag_without_the_session_id() {
        let id = SessionId::from_random([7; 24]);
        let keys = Keys::new("nexus");
        let s = keys.session(&id);
        let code = PairCode::from_random(99);
        let record = keys.code_record(&s, &code);
        for k in s.all().into_iter().chain([record.as_str()]) {
            assert!(k.starts_with(&format!("nexus:{{{}}}:", s.tag)), "{k}");
            assert!(!k.contains(id.as_str()), "{k}");
            assert!(!k.contains(code.as_str()), "{k}");
        }
        assert_eq!(s.tag.len(), 32);
        assert!(!keys.code_pointer(&code).contains(code.as_str()));
        // Deterministic: every node derives the same names.
        assert_eq!(keys.session(&id).hash, s.hash);
    }

    #[test]
    fn secret_digests_are_sha256_hex() {
        assert_eq!(
            secret_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
