//! Secret redaction (SPEC §2 "Safety middleware"): `text` and every string value inside `json` (at
//! any depth; object keys are left alone) are scanned before storage, and each match is replaced
//! with `[REDACTED:<type>]`. One compiled alternation of named patterns (the `regex` crate: linear
//! time, no backtracking) is applied in a single pass per string. For assignments
//! (`password=…`) and URLs with credentials only the secret part is replaced, so the reader still
//! sees what was there.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex::{Captures, Regex};
use serde_json::Value;

/// (type, pattern). Order matters where patterns overlap: the first alternative wins.
const PATTERNS: &[(&str, &str)] = &[
    (
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
    ),
    ("aws_access_key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
    ),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
    (
        "openai_key",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
    ),
    (
        "stripe_key",
        r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}\b",
    ),
    (
        "slack_webhook",
        r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]+",
    ),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}"),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
    ),
    ("bearer_token", r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{16,}=*"),
    (
        "aws_secret_key",
        r#"(?i)\baws_?secret_?(?:access_?)?key\b["']?\s*[:=]\s*["']?(?P<aws_secret_value>[A-Za-z0-9/+=]{40})"#,
    ),
    (
        "secret_assignment",
        r#"(?i)\b(?:password|passwd|pwd|secret|client_?secret|api_?key|apikey|access_?token|auth_?token|private_?key)\b["']?\s*[:=]\s*["']?(?P<secret_assignment_value>[^\s"',;]{4,})"#,
    ),
    (
        "url_credentials",
        r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@]+:(?P<url_credentials_value>[^\s/@]+)@",
    ),
];

fn regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let alternation: Vec<String> = PATTERNS
            .iter()
            .map(|(name, pattern)| format!("(?P<{name}>{pattern})"))
            .collect();
        // The patterns are constants checked by the tests below; an invalid one is a bug caught
        // there, never input-dependent.
        Regex::new(&alternation.join("|")).expect("redaction patterns compile")
    })
}

/// Redacts one string; adds the types found to `found`. `None` when nothing matched.
fn redact_str(s: &str, found: &mut BTreeSet<&'static str>) -> Option<String> {
    let re = regex();
    if !re.is_match(s) {
        return None;
    }
    let out = re.replace_all(s, |caps: &Captures<'_>| {
        let whole = caps.get(0).map_or("", |m| m.as_str());
        for (name, _) in PATTERNS {
            let Some(m) = caps.name(name) else { continue };
            found.insert(name);
            let marker = format!("[REDACTED:{name}]");
            // Keep the non-secret part of assignments and URLs.
            return match caps.name(&format!("{name}_value")) {
                Some(value) => {
                    let start = value.start() - m.start();
                    let end = value.end() - m.start();
                    format!("{}{marker}{}", &whole[..start], &whole[end..])
                }
                None => marker,
            };
        }
        whole.to_owned()
    });
    Some(out.into_owned())
}

fn redact_value(v: &mut Value, found: &mut BTreeSet<&'static str>) {
    match v {
        Value::String(s) => {
            if let Some(r) = redact_str(s, found) {
                *s = r;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact_value(i, found)),
        Value::Object(map) => map.values_mut().for_each(|i| redact_value(i, found)),
        _ => {}
    }
}

/// Redacts a message's text and json in place; returns the sorted types found.
pub fn redact(text: &mut Option<String>, json: &mut Option<Value>) -> Vec<String> {
    let mut found = BTreeSet::new();
    if let Some(t) = text
        && let Some(r) = redact_str(t, &mut found)
    {
        *t = r;
    }
    if let Some(j) = json {
        redact_value(j, &mut found);
    }
    found.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(s: &str) -> (String, Vec<String>) {
        let mut text = Some(s.to_owned());
        let types = redact(&mut text, &mut None);
        (text.unwrap_or_default(), types)
    }

    #[test]
    fn every_type_is_caught() {
        let cases = [
            ("key AKIAIOSFODNN7EXAMPLE here", "aws_access_key"),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_key",
            ),
            (
                "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
                "github_token",
            ),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                "github_token",
            ),
            (
                "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345",
                "anthropic_key",
            ),
            (
                "OPENAI=sk-proj-abcdefghijklmnopqrstuvwxyz0123",
                "openai_key",
            ),
            ("sk_live_abcdefghijklmnop1234", "stripe_key"),
            ("xoxb-123456789012-abcdefghijkl", "slack_token"),
            (
                "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
                "slack_webhook",
            ),
            ("AIzaSyA-abcdefghijklmnopqrstuvwxyz012345", "google_api_key"),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "jwt",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----",
                "private_key",
            ),
            (
                "Authorization: Bearer abcdef0123456789abcdef",
                "bearer_token",
            ),
            ("password=hunter2hunter2", "secret_assignment"),
            ("api_key: 'zz9plural-alpha'", "secret_assignment"),
            (
                "postgres://admin:s3cr3t@db.example.com/app",
                "url_credentials",
            ),
        ];
        for (input, kind) in cases {
            let (out, types) = one(input);
            assert_eq!(types, [kind], "{input:?} → {out:?}");
            assert!(out.contains(&format!("[REDACTED:{kind}]")), "{out}");
        }
    }

    #[test]
    fn assignments_and_urls_keep_their_context() {
        assert_eq!(
            one("password=hunter2hunter2").0,
            "password=[REDACTED:secret_assignment]"
        );
        assert_eq!(
            one("see https://bob:pa55word@example.com/x").0,
            "see https://bob:[REDACTED:url_credentials]@example.com/x"
        );
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for s in [
            "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it",
            "uuid 123e4567-e89b-12d3-a456-426614174000",
            "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "The password policy changed yesterday.",
            "https://example.com/path?q=1",
            "let sk = compute(); // sk-short",
        ] {
            assert_eq!(one(s), (s.to_owned(), vec![]), "{s}");
        }
    }

    #[test]
    fn json_strings_are_redacted_at_any_depth_but_keys_are_not() {
        let mut json = Some(json!({
            "AKIAIOSFODNN7EXAMPLE": 1,
            "a": [{"b": "x AKIAIOSFODNN7EXAMPLE"}, 5, null],
        }));
        let types = redact(&mut None, &mut json);
        assert_eq!(types, ["aws_access_key"]);
        let json = json.unwrap();
        assert_eq!(json["a"][0]["b"], "x [REDACTED:aws_access_key]");
        assert!(json.get("AKIAIOSFODNN7EXAMPLE").is_some());
    }
}
