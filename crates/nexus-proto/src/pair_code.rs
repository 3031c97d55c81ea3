//! Pairing codes (SPEC §1 "Pairing code"): `WORD-WORD-XXXXX`, two uppercase words from a list of
//! 2048 distinct words plus 5 characters of Crockford base32: 11 + 11 + 25 = 47 bits.
//!
//! The word list is the BIP-39 English list (2048 words of 3 to 8 letters whose first four letters
//! are unique; MIT-licensed via python-mnemonic), chosen because it was designed to be read aloud
//! and typed without confusion. Generation takes random bits from the caller, so a code is never
//! derived from anything but the CSPRNG. Lookup is ASCII case-insensitive; in the suffix the
//! Crockford look-alikes `O`→`0` and `I`/`L`→`1` are accepted too, since people copy codes by hand.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

const WORDS_TXT: &str = include_str!("words.txt");

/// Crockford base32 alphabet (no I, L, O, U).
pub const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters in the random suffix.
pub const SUFFIX_LEN: usize = 5;

/// Random bits in one code.
pub const CODE_BITS: u32 = 11 + 11 + 5 * SUFFIX_LEN as u32;

/// The word list, uppercase, in its file order (sorted).
pub fn words() -> &'static [&'static str] {
    static WORDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| WORDS_TXT.lines().filter(|l| !l.is_empty()).collect())
}

/// A canonical (uppercase) pairing code.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PairCode(String);

crate::ids::secret_eq_impls!(PairCode);

impl PairCode {
    /// Builds a code from 47 random bits (higher bits are ignored). Every code is equally likely
    /// when the bits are uniform, because the list length and the alphabet are powers of two.
    pub fn from_random(bits: u64) -> Self {
        let words = words();
        let w1 = words[(bits & 0x7ff) as usize];
        let w2 = words[((bits >> 11) & 0x7ff) as usize];
        let mut code = String::with_capacity(w1.len() + w2.len() + 2 + SUFFIX_LEN);
        code.push_str(w1);
        code.push('-');
        code.push_str(w2);
        code.push('-');
        for i in 0..SUFFIX_LEN {
            code.push(CROCKFORD[((bits >> (22 + 5 * i)) & 0x1f) as usize] as char);
        }
        Self(code)
    }

    /// Parses a code typed or pasted by someone: case-insensitive, surrounding whitespace ignored,
    /// Crockford look-alikes accepted in the suffix. `None` when it cannot be a code.
    pub fn parse(input: &str) -> Option<Self> {
        let upper = input.trim().to_ascii_uppercase();
        let mut parts = upper.split('-');
        let (w1, w2, suffix) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let words = words();
        if words.binary_search(&w1).is_err() || words.binary_search(&w2).is_err() {
            return None;
        }
        if suffix.len() != SUFFIX_LEN {
            return None;
        }
        let mut canonical = String::with_capacity(upper.len());
        canonical.push_str(w1);
        canonical.push('-');
        canonical.push_str(w2);
        canonical.push('-');
        for b in suffix.bytes() {
            let b = match b {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                other => other,
            };
            if !CROCKFORD.contains(&b) {
                return None;
            }
            canonical.push(b as char);
        }
        Some(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Codes are secrets until claimed: `Debug` does not print them.
impl fmt::Debug for PairCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairCode(..)")
    }
}

impl fmt::Display for PairCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn word_list_is_2048_sorted_distinct_uppercase_words() {
        let w = words();
        assert_eq!(w.len(), 2048);
        assert!(w.windows(2).all(|p| p[0] < p[1]), "sorted and distinct");
        assert!(w.iter().all(|x| x.bytes().all(|b| b.is_ascii_uppercase())));
        const { assert!(CODE_BITS >= 45) };
    }

    #[test]
    fn parse_is_case_insensitive_and_canonicalises_lookalikes() {
        let code = PairCode::parse("piano-orbit-s5sjv").unwrap();
        assert_eq!(code.as_str(), "PIANO-ORBIT-S5SJV");
        assert_eq!(PairCode::parse(" Piano-Orbit-S5SJV\n").unwrap(), code);
        assert_eq!(
            PairCode::parse("PIANO-ORBIT-OIL00").unwrap().as_str(),
            "PIANO-ORBIT-01100"
        );
        for bad in [
            "",
            "PIANO-ORBIT",
            "PIANO-ORBIT-S5SJ",
            "PIANO-ORBIT-S5SJVV",
            "PIANO-ORBIT-S5SJU",
            "PIANOS-ORBIT-S5SJV",
            "PIANO-ORBIT-S5SJV-X",
            "PEARL_FOCAL_S5SJV",
        ] {
            assert!(PairCode::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn ten_thousand_generated_codes_are_distinct() {
        // Deterministic, well-mixed bits (splitmix64) stand in for the CSPRNG here.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let codes: HashSet<String> = (0..10_000)
            .map(|_| PairCode::from_random(next()).as_str().to_owned())
            .collect();
        assert_eq!(codes.len(), 10_000);
    }

    proptest! {
        #[test]
        fn generated_codes_have_the_format_and_parse_back(bits in any::<u64>()) {
            let code = PairCode::from_random(bits);
            let s = code.as_str();
            let parts: Vec<&str> = s.split('-').collect();
            prop_assert_eq!(parts.len(), 3);
            prop_assert!(words().contains(&parts[0]) && words().contains(&parts[1]));
            prop_assert_eq!(parts[2].len(), SUFFIX_LEN);
            prop_assert!(parts[2].bytes().all(|b| CROCKFORD.contains(&b)));
            prop_assert_eq!(PairCode::parse(s), Some(code.clone()));
            prop_assert_eq!(PairCode::parse(&s.to_lowercase()), Some(code.clone()));
        }

        #[test]
        fn distinct_bits_give_distinct_codes(a in 0u64..(1 << CODE_BITS), b in 0u64..(1 << CODE_BITS)) {
            prop_assume!(a != b);
            prop_assert_ne!(PairCode::from_random(a), PairCode::from_random(b));
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            if let Some(c) = PairCode::parse(&s) {
                prop_assert_eq!(PairCode::parse(c.as_str()), Some(c.clone()));
            }
        }
    }
}
