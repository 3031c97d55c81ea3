//! Secret redaction (SPEC §2 "Safety middleware"): `text` and every string value inside `json` (at
//! any depth; object keys are left alone) are scanned before storage, and each match is replaced
//! with `[REDACTED:<type>]`. One compiled alternation of patterns (the `regex` crate: linear
//! time, no backtracking) is applied in a single pass per string; each match is then classified
//! on its own text (a `RegexSet`), so the cost per match stays small. For assignments
//! (`password=…`) and URLs with credentials only the secret part is replaced, so the reader still
//! sees what was there.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex::{Regex, RegexBuilder, RegexSet};
use serde_json::Value;

/// (type, pattern). Order matters where patterns overlap: the first alternative wins. `\b` is
/// made ASCII-only when compiled (secrets are ASCII), which keeps the regex on its fast DFA even on
/// non-ASCII text.
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
    ("gitlab_token", r"\bgl(?:pat|dt|ptt|rt)-[A-Za-z0-9_\-]{20,}"),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
    (
        "openai_key",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
    ),
    (
        "stripe_key",
        r"\b(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}|whsec_[0-9A-Za-z]{24,})\b",
    ),
    (
        "slack_webhook",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+",
    ),
    (
        "slack_token",
        r"\b(?:xox[abposre]-[A-Za-z0-9\-]{10,}|xapp-\d-[A-Za-z0-9\-]{10,})",
    ),
    ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("pypi_token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}"),
    ("huggingface_token", r"\bhf_[A-Za-z]{34}\b"),
    (
        "sendgrid_key",
        r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b",
    ),
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
        r#"(?i)[A-Za-z_]*(?:password|passwd|pwd|secret|api_?key|apikey|access_?token|auth_?token|private_?key)\b["']?\s*[:=]\s*["']?(?P<secret_assignment_value>[^\s"'`,;()\[\]{}<>]{4,})"#,
    ),
    (
        "url_credentials",
        r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@]*:(?P<url_credentials_value>[^\s/@]+)@",
    ),
];

/// Every type of redaction, as listed in a send response's `redacted`.
pub const TYPES: [&str; 19] = [
    "private_key",
    "aws_access_key",
    "github_token",
    "gitlab_token",
    "anthropic_key",
    "openai_key",
    "stripe_key",
    "slack_webhook",
    "slack_token",
    "google_api_key",
    "npm_token",
    "pypi_token",
    "huggingface_token",
    "sendgrid_key",
    "jwt",
    "bearer_token",
    "aws_secret_key",
    "secret_assignment",
    "url_credentials",
];

/// Values of `password = …`-like assignments that name a type or a placeholder, not a secret.
const NOT_SECRET_VALUES: &[&str] = &[
    "string",
    "str",
    "bool",
    "boolean",
    "none",
    "null",
    "nil",
    "undefined",
    "true",
    "false",
    "required",
    "optional",
    "secretstring",
    "secret",
    "password",
    "redacted",
    "changeme?",
];

/// The compiled patterns: one alternation finds matches (lazy DFA only, linear time); then, on
/// the matched text alone, a set tells which pattern it was and that pattern's own small regex
/// finds the secret part of an assignment or URL.
struct Compiled {
    find: Regex,
    which: RegexSet,
    /// For patterns with a secret part (`<type>_value`): their own regex and the group's name.
    values: Vec<Option<(Regex, String)>>,
}

fn compiled() -> &'static Compiled {
    static RE: OnceLock<Compiled> = OnceLock::new();
    RE.get_or_init(|| {
        let ascii = |p: &str| p.replace(r"\b", r"(?-u:\b)");
        let alternation: Vec<String> = PATTERNS
            .iter()
            .map(|(_, p)| format!("(?:{})", ascii(p)))
            .collect();
        let whole: Vec<String> = PATTERNS
            .iter()
            .map(|(_, p)| format!("^(?:{})$", ascii(p)))
            .collect();
        // The patterns are constants checked by the tests below; an invalid one is a bug caught
        // there, never input-dependent.
        Compiled {
            // A larger lazy-DFA cache than the default: the alternation has many states, and a
            // cache that keeps filling up makes the regex fall back to a slower engine.
            find: RegexBuilder::new(&alternation.join("|"))
                .dfa_size_limit(32 << 20)
                .build()
                .expect("redaction patterns compile"),
            which: RegexSet::new(&whole).expect("redaction patterns compile"),
            values: PATTERNS
                .iter()
                .zip(&whole)
                .map(|((name, _), p)| {
                    let group = format!("{name}_value");
                    p.contains(&format!("<{group}>"))
                        .then(|| (Regex::new(p).expect("redaction patterns compile"), group))
                })
                .collect(),
        }
    })
}

/// Whether a match is most likely not a secret: code that reads a secret from somewhere
/// (`password = get_password(…)`, `api_key = os.environ[…]`), a type annotation
/// (`password: String`), or a bearer "token" without a single digit (prose).
fn looks_harmless(name: &str, value: &str, rest: &str) -> bool {
    match name {
        "secret_assignment" => {
            let next = rest.chars().next();
            matches!(next, Some('(' | '[' | '<' | '{'))
                || NOT_SECRET_VALUES.contains(&value.to_ascii_lowercase().as_str())
                || value.starts_with(['$', '%'])
                || value.starts_with("process.env")
                || value.starts_with("os.environ")
                || value.starts_with("/run/secrets/")
        }
        "bearer_token" | "openai_key" => !value.bytes().any(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// Redacts one string; adds the types found to `found`. `None` when nothing matched.
fn redact_str(s: &str, found: &mut BTreeSet<&'static str>) -> Option<String> {
    let re = compiled();
    let mut out = String::new();
    let mut copied = 0;
    for m in re.find.find_iter(s) {
        let Some(index) = re.which.matches(m.as_str()).into_iter().next() else {
            continue;
        };
        let name = PATTERNS[index].0;
        let value = re.values[index].as_ref().and_then(|(each, group)| {
            let caps = each.captures(m.as_str())?;
            let v = caps.name(group)?;
            Some((m.start() + v.start(), m.start() + v.end()))
        });
        let (start, end) = value.unwrap_or((m.start(), m.end()));
        if looks_harmless(name, &s[start..end], &s[end..]) {
            continue;
        }
        // Keep the non-secret part of assignments and URLs; a value that is itself a known kind
        // of secret (`OPENAI_API_KEY=sk-…`) is reported as that kind.
        let replacement = match value {
            Some(_) => redact_str(&s[start..end], found),
            None => None,
        }
        .unwrap_or_else(|| {
            found.insert(name);
            format!("[REDACTED:{name}]")
        });
        out.push_str(&s[copied..start]);
        out.push_str(&replacement);
        copied = end;
    }
    if copied == 0 && out.is_empty() {
        return None;
    }
    out.push_str(&s[copied..]);
    Some(out)
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
