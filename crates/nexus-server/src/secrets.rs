//! Secrets and random ids: session ids, session keys and pairing codes come from the OS CSPRNG
//! (`getrandom`), and secrets are compared in constant time (`subtle`). SPEC §1, §2 "Safety".

use nexus_proto::ids::{SESSION_ID_BYTES, SESSION_KEY_BYTES, to_hex};
use nexus_proto::{PairCode, SessionId, SessionKey};

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

/// A message id, `msg_` + 128 random bits (not a secret, but unguessable all the same).
pub fn new_message_id() -> Result<String, RandomError> {
    Ok(format!("msg_{}", to_hex(&random::<16>()?)))
}

/// A request id for `X-Request-Id` (64 random bits).
pub fn new_request_id() -> String {
    random::<8>()
        .map(|b| to_hex(&b))
        .unwrap_or_else(|_| "0000000000000000".to_owned())
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
}
