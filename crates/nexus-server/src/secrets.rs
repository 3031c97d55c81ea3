//! Secrets and random ids: session ids, session keys and pairing codes come from the OS CSPRNG
//! (`getrandom`), and secrets are compared in constant time (`constant_time_eq`). SPEC §1, §2 "Safety".
//!
//! Message ids and request ids are not secrets but must not repeat or be predictable: they come
//! from a per-thread ChaCha12 generator (`rand`'s `StdRng`) seeded from the OS and reseeded every
//! 64 KiB of output, so the request path makes no `getrandom(2)` call per id.

use std::cell::RefCell;

use nexus_proto::ids::{SESSION_ID_BYTES, SESSION_KEY_BYTES};
use nexus_proto::{PairCode, SessionId, SessionKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The OS random source failed: the relay cannot make secrets and must refuse the request.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

fn random<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(buf)
}

pub fn new_session_id() -> Result<SessionId, RandomError> {
    Ok(SessionId::from_random(random::<SESSION_ID_BYTES>()?))
}

pub fn new_session_key() -> Result<SessionKey, RandomError> {
    Ok(SessionKey::from_random(random::<SESSION_KEY_BYTES>()?))
}

pub fn new_pair_code() -> Result<PairCode, RandomError> {
    Ok(PairCode::from_random(u64::from_le_bytes(random::<8>()?)))
}

/// Output of one id generator between two seeds from the OS.
const RESEED_AFTER_BYTES: usize = 64 * 1024;

/// A thread's id generator and how much it has produced since it was seeded.
struct IdRng {
    rng: StdRng,
    produced: usize,
}

thread_local! {
    static ID_RNG: RefCell<Option<IdRng>> = const { RefCell::new(None) };
}

/// `N` bytes for an id, from this thread's generator (seeded from the OS on first use and every
/// [`RESEED_AFTER_BYTES`]).
fn id_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    ID_RNG.with(|cell| {
        let mut slot = cell.borrow_mut();
        let ids = match slot.as_mut() {
            Some(g) if g.produced < RESEED_AFTER_BYTES => g,
            _ => slot.insert(IdRng {
                rng: StdRng::from_seed(random::<32>()?),
                produced: 0,
            }),
        };
        let mut buf = [0u8; N];
        ids.rng.fill_bytes(&mut buf);
        ids.produced += N;
        Ok(buf)
    })
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes` into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
}

/// A message id, `msg_` + 128 random bits (not a secret, but unguessable all the same).
pub fn new_message_id() -> Result<String, RandomError> {
    let mut text = *b"msg_00000000000000000000000000000000";
    hex_into(&id_bytes::<16>()?, &mut text[4..]);
    // Only ASCII was written.
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// A request id for `X-Request-Id`: 64 random bits as 16 hex characters, kept on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; 16]);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("0000000000000000")
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request id (all zeros in the unlikely case the OS cannot seed the generator).
pub fn new_request_id() -> RequestId {
    let mut text = *b"0000000000000000";
    if let Ok(bytes) = id_bytes::<8>() {
        hex_into(&bytes, &mut text);
    }
    RequestId(text)
}

/// Constant-time equality of two secrets (length may leak; all keys have one length).
pub use nexus_proto::ids::secret_eq;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed_and_distinct() {
        let a = new_session_id().unwrap();
        let b = new_session_id().unwrap();
        assert_ne!(a, b);
        assert!(SessionId::parse(a.as_str()).is_some());
        assert_eq!(new_session_key().unwrap().as_str().len(), 64);
        assert!(PairCode::parse(new_pair_code().unwrap().as_str()).is_some());
        let m = new_message_id().unwrap();
        assert!(m.starts_with("msg_") && m.len() == 36);
        assert!(
            m[4..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(m, new_message_id().unwrap());
        let r = new_request_id();
        assert_eq!(r.as_str().len(), 16);
        assert!(r.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(r, new_request_id());
        assert!(secret_eq("abc", "abc"));
        assert!(!secret_eq("abc", "abd"));
        assert!(!secret_eq("abc", "abcd"));
    }

    #[test]
    fn ten_thousand_codes_from_the_os_are_distinct_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let code = new_pair_code().unwrap();
            assert_eq!(PairCode::parse(code.as_str()).as_ref(), Some(&code));
            assert!(seen.insert(code), "a repeated code");
        }
    }

    #[test]
    fn id_generators_reseed_and_never_repeat() {
        let mut seen = std::collections::HashSet::new();
        // Several reseeds' worth of ids.
        for _ in 0..(3 * RESEED_AFTER_BYTES / 16) {
            assert!(seen.insert(new_message_id().unwrap()));
        }
    }
}
