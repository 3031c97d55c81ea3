//! Timestamps on the wire: RFC 3339 UTC with millisecond precision (`2026-11-25T10:00:00.000Z`).
//! Internally both ends count milliseconds since the Unix epoch.
//!
//! [`Timestamp`] is what response bodies carry: it formats on the stack (no `String`, no
//! `core::fmt` machinery) when serialized, because a poll page writes two per message.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// Length of `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub const RFC3339_MILLIS_LEN: usize = 24;

/// The last millisecond RFC 3339's four-digit years can write (9999-12-31T23:59:59.999Z); later
/// instants are written as this one rather than failing.
const MAX_MILLIS: Millis = 253_402_300_799_999;

/// A civil date (proleptic Gregorian) from days since 1970-01-01: (year, month 1-12, day 1-31).
/// Howard Hinnant's `civil_from_days`, for non-negative days.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

fn two(buf: &mut [u8], at: usize, v: u64) {
    buf[at] = b'0' + (v / 10 % 10) as u8;
    buf[at + 1] = b'0' + (v % 10) as u8;
}

/// Writes `YYYY-MM-DDTHH:MM:SS` for `secs` since the epoch into `buf[..19]`.
fn write_date_time(buf: &mut [u8], secs: u64) {
    let (year, month, day) = civil_from_days(secs / 86_400);
    let sod = secs % 86_400;
    two(buf, 0, year / 100);
    two(buf, 2, year);
    buf[4] = b'-';
    two(buf, 5, month);
    buf[7] = b'-';
    two(buf, 8, day);
    buf[10] = b'T';
    two(buf, 11, sod / 3600);
    buf[13] = b':';
    two(buf, 14, sod / 60 % 60);
    buf[16] = b':';
    two(buf, 17, sod % 60);
}

/// `ms` as the bytes of `YYYY-MM-DDTHH:MM:SS.mmmZ` (instants past year 9999 are clamped).
pub fn rfc3339_millis(ms: Millis) -> [u8; RFC3339_MILLIS_LEN] {
    let ms = ms.min(MAX_MILLIS);
    let mut prefix = [0u8; 19];
    write_date_time(&mut prefix, ms / 1000);
    with_millis(prefix, ms)
}

/// `YYYY-MM-DDTHH:MM:SS` (the second `ms` falls in) followed by `.mmmZ`.
fn with_millis(prefix: [u8; 19], ms: Millis) -> [u8; RFC3339_MILLIS_LEN] {
    let mut buf = [0u8; RFC3339_MILLIS_LEN];
    buf[..19].copy_from_slice(&prefix);
    buf[19] = b'.';
    let frac = ms % 1000;
    buf[20] = b'0' + (frac / 100) as u8;
    two(&mut buf, 21, frac);
    buf[23] = b'Z';
    buf
}

/// Formats many timestamps that share a few seconds (a page of messages sent together, and
/// their expiries): the date and time of day are computed once per second seen recently.
#[derive(Clone, Debug, Default)]
pub struct Rfc3339Cache {
    /// (seconds since the epoch + 1, `YYYY-MM-DDTHH:MM:SS`); 0 is an empty slot.
    seconds: [(u64, [u8; 19]); 2],
    next: usize,
}

impl Rfc3339Cache {
    /// The same bytes as [`rfc3339_millis`].
    pub fn format(&mut self, ms: Millis) -> [u8; RFC3339_MILLIS_LEN] {
        let ms = ms.min(MAX_MILLIS);
        let key = ms / 1000 + 1;
        let prefix = match self.seconds.iter().find(|(k, _)| *k == key) {
            Some((_, prefix)) => *prefix,
            None => {
                let mut prefix = [0u8; 19];
                write_date_time(&mut prefix, ms / 1000);
                self.seconds[self.next] = (key, prefix);
                self.next = (self.next + 1) % self.seconds.len();
                prefix
            }
        };
        with_millis(prefix, ms)
    }
}

/// `micros` since the epoch as the bytes of `YYYY-MM-DDTHH:MM:SS.uuuuuuZ` (log lines).
pub fn rfc3339_micros(micros: u64) -> [u8; 27] {
    let micros = micros.min(MAX_MILLIS * 1000 + 999);
    let mut buf = [0u8; 27];
    write_date_time(&mut buf, micros / 1_000_000);
    buf[19] = b'.';
    let mut frac = micros % 1_000_000;
    for i in (20..26).rev() {
        buf[i] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    buf[26] = b'Z';
    buf
}

/// Formats `ms` as RFC 3339 UTC with milliseconds.
pub fn format_rfc3339(ms: Millis) -> String {
    Timestamp(ms).to_string()
}

/// Parses an RFC 3339 timestamp (as the server writes them) back to milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let t: SystemTime = humantime::parse_rfc3339_weak(s).ok()?;
    t.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as Millis)
}

/// A point in time on the wire: serialized as RFC 3339 UTC with milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub Millis);

impl From<Millis> for Timestamp {
    fn from(ms: Millis) -> Self {
        Self(ms)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = rfc3339_millis(self.0);
        // Only ASCII digits and separators were written.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let buf = rfc3339_millis(self.0);
        match std::str::from_utf8(&buf) {
            Ok(text) => s.serialize_str(text),
            Err(_) => Err(serde::ser::Error::custom("unformattable timestamp")),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse_rfc3339(&s)
            .map(Timestamp)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn formats_with_millis_and_round_trips() {
        let ms = 1_795_600_800_123;
        let s = format_rfc3339(ms);
        assert_eq!(s, "2026-11-25T10:00:00.123Z");
        assert_eq!(parse_rfc3339(&s), Some(ms));
        assert_eq!(
            parse_rfc3339("2026-11-25T10:00:00Z"),
            Some(1_795_600_800_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn edges_of_the_calendar() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            format_rfc3339(4_107_542_399_999),
            "2100-02-28T23:59:59.999Z"
        );
        assert_eq!(format_rfc3339(MAX_MILLIS), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_rfc3339(Millis::MAX), "9999-12-31T23:59:59.999Z");
        let micros = rfc3339_micros(1_795_600_800_123_456);
        assert_eq!(&micros, b"2026-11-25T10:00:00.123456Z");
    }

    #[test]
    fn timestamps_serialize_as_strings_and_parse_back() {
        let t = Timestamp(1_795_600_800_007);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2026-11-25T10:00:00.007Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("\"soon\"").is_err());
    }

    proptest! {
        #[test]
        fn the_cache_writes_what_the_formatter_writes(
            base in 0u64..MAX_MILLIS,
            steps in proptest::collection::vec(0u64..5_000, 1..40),
        ) {
            let mut cache = Rfc3339Cache::default();
            for (i, step) in steps.iter().enumerate() {
                // Back and forth around a few seconds, as sentAt / expiresAt pairs do.
                let ms = if i % 2 == 0 { base.saturating_add(*step) } else { base.saturating_sub(*step) };
                prop_assert_eq!(cache.format(ms), rfc3339_millis(ms));
            }
            prop_assert_eq!(cache.format(Millis::MAX), rfc3339_millis(Millis::MAX));
        }

        #[test]
        fn agrees_with_humantime(ms in 0u64..MAX_MILLIS) {
            let ours = format_rfc3339(ms);
            let theirs = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms))
                .to_string();
            prop_assert_eq!(ours, theirs);
        }
    }
}
