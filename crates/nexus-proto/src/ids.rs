//! Session ids (192 bits, 48 lowercase hex chars) and session keys (256 bits, 64 hex chars), SPEC §1.
//!
//! Both are made from random bytes supplied by the caller (the server draws them from the OS CSPRNG).
//! Parsing is strict: anything else is not a session id, which the server answers as
//! `session_not_found` without looking it up.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Random bytes in a session id.
pub const SESSION_ID_BYTES: usize = 24;
/// Random bytes in a session key.
pub const SESSION_KEY_BYTES: usize = 32;

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Constant-time equality of two secrets' text (SPEC §2 "Key and id comparisons are
/// constant-time"). Only the length may leak, and every id, key or code of one kind has one length.
/// `constant_time_eq` compares word by word behind an optimisation barrier; `subtle`'s byte slices
/// paid one `black_box` per byte, 1.1 % of the relay's CPU under send load (perf, docs/BENCHMARKS.md).
pub fn secret_eq(a: &str, b: &str) -> bool {
    constant_time_eq::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// `PartialEq` (constant time, [`secret_eq`]), `Eq` and `Hash` for a newtype around a secret
/// `String`, so that no comparison of ids, keys or codes anywhere (map lookups included) stops at
/// the first differing byte.
macro_rules! secret_eq_impls {
    ($t:ty) => {
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                $crate::ids::secret_eq(&self.0, &other.0)
            }
        }
        impl Eq for $t {}
        impl std::hash::Hash for $t {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.0.hash(state);
            }
        }
    };
}
pub(crate) use secret_eq_impls;

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// A session id: 48 lowercase hex characters.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

secret_eq_impls!(SessionId);

/// Ordering (for sorted listings) is by text; equality is the constant-time one.
impl PartialOrd for SessionId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SessionId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

impl SessionId {
    pub fn from_random(bytes: [u8; SESSION_ID_BYTES]) -> Self {
        Self(to_hex(&bytes))
    }

    /// Accepts exactly 48 lowercase hex characters.
    pub fn parse(s: &str) -> Option<Self> {
        is_lower_hex(s, SESSION_ID_BYTES * 2).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session key: 64 lowercase hex characters. `Debug` never prints the secret.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionKey(String);

secret_eq_impls!(SessionKey);

impl SessionKey {
    pub fn from_random(bytes: [u8; SESSION_KEY_BYTES]) -> Self {
        Self(to_hex(&bytes))
    }

    /// Wraps a stored key (for example one read back from disk) without checking its shape.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let id = SessionId::from_random([0xab; SESSION_ID_BYTES]);
        assert_eq!(id.as_str().len(), 48);
        assert_eq!(SessionId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(SessionId::parse(&id.as_str().to_uppercase()), None);
        assert_eq!(SessionId::parse(&id.as_str()[1..]), None);
        assert_eq!(SessionId::parse("../../etc/passwd"), None);
        let key = SessionKey::from_random([7; SESSION_KEY_BYTES]);
        assert_eq!(key.as_str().len(), 64);
        assert_eq!(format!("{key:?}"), "SessionKey(..)");
    }

    #[test]
    fn equality_is_by_value_and_hashes_agree() {
        use std::collections::HashSet;
        let a = SessionId::from_random([1; SESSION_ID_BYTES]);
        let b = SessionId::parse(a.as_str()).unwrap();
        let c = SessionId::from_random([2; SESSION_ID_BYTES]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a < c, "ordering is by text");
        let set: HashSet<SessionId> = [a.clone(), b, c].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert!(set.contains(&a));
        let k1 = SessionKey::from_random([3; SESSION_KEY_BYTES]);
        let k2 = SessionKey::from_random([4; SESSION_KEY_BYTES]);
        assert_eq!(k1, k1.clone());
        assert_ne!(k1, k2);
        assert!(secret_eq("abc", "abc"));
        assert!(!secret_eq("abc", "abd"));
        assert!(!secret_eq("abc", "abcd"));
    }
}
