//! Cursors (SPEC §1 "Cursors"): decimal strings of a non-negative integer, strictly increasing per
//! session. The greeting has cursor `0`; `after=C` is exclusive.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A message cursor. On the wire it is always a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Cursor(pub u64);

/// Why a string is not a cursor.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("cursor must not be empty")]
    Empty,
    #[error("cursor must be a decimal string of a non-negative integer")]
    NotDecimal,
    #[error("cursor is too large")]
    Overflow,
}

impl Cursor {
    pub const ZERO: Cursor = Cursor(0);

    /// Parses a cursor: one or more ASCII digits (no sign, no spaces), at most `u64::MAX`.
    pub fn parse(s: &str) -> Result<Self, CursorError> {
        if s.is_empty() {
            return Err(CursorError::Empty);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CursorError::NotDecimal);
        }
        s.parse::<u64>()
            .map(Cursor)
            .map_err(|_| CursorError::Overflow)
    }
}

impl FromStr for Cursor {
    type Err = CursorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cursor::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_non_decimal() {
        assert_eq!(Cursor::parse(""), Err(CursorError::Empty));
        for bad in ["-1", "+1", " 1", "1 ", "0x10", "1.0", "1e3", "abc", "١"] {
            assert_eq!(Cursor::parse(bad), Err(CursorError::NotDecimal), "{bad:?}");
        }
        assert_eq!(
            Cursor::parse("18446744073709551616"),
            Err(CursorError::Overflow)
        );
        assert_eq!(Cursor::parse("007"), Ok(Cursor(7)));
    }

    #[test]
    fn serializes_as_a_string() {
        assert_eq!(serde_json::to_string(&Cursor(42)).unwrap(), "\"42\"");
        assert!(serde_json::from_str::<Cursor>("42").is_err());
    }

    proptest! {
        #[test]
        fn round_trips(n in any::<u64>()) {
            let c = Cursor(n);
            prop_assert_eq!(Cursor::parse(&c.to_string()), Ok(c));
        }

        #[test]
        fn order_matches_numeric_order(a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(Cursor(a).cmp(&Cursor(b)), a.cmp(&b));
        }

        #[test]
        fn parse_never_panics_and_accepts_only_digits(s in any::<String>()) {
            if let Ok(c) = Cursor::parse(&s) {
                prop_assert!(s.bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(s.parse::<u64>().unwrap(), c.0);
            }
        }
    }
}
