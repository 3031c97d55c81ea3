//! Timestamps on the wire: RFC 3339 UTC with millisecond precision (`2026-11-25T10:00:00.000Z`).
//! Internally both ends count milliseconds since the Unix epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// Formats `ms` as RFC 3339 UTC with milliseconds.
pub fn format_rfc3339(ms: Millis) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Parses an RFC 3339 timestamp (as the server writes them) back to milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let t: SystemTime = humantime::parse_rfc3339_weak(s).ok()?;
    t.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
