//! Secret redaction (SPEC §2 "Safety middleware"): `text` and every string value inside `json` (at
//! any depth; object keys are left alone) are scanned before storage, and each match is replaced
//! with `[REDACTED:<type>]`. The patterns are compiled once into one multi-pattern regex
//! (`regex-automata`'s meta engine: lazy DFA, linear time, no backtracking) whose matches say
//! which pattern matched, so a match costs no second regex pass. For assignments (`password=…`)
//! and URLs with credentials only the secret part is replaced, so the reader still sees what was
//! there; that part is found from the shape of the match (after the `:`/`=` separator, or
//! between the user's `:` and the `@`).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex_automata::meta::Regex;
use serde_json::Value;

/// Where the secret is inside a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Secret {
    /// The whole match.
    Whole,
    /// An assignment `name["']? : ["']?value`: the value after the first `:` or `=` (the name
    /// part holds neither), past spaces and one quote, to the end of the match.
    AfterSeparator,
    /// `scheme://user:password@`: between the first `:` after `://` (the user holds none) and
    /// the final `@`.
    UrlPassword,
}

/// (type, pattern, where the secret is). Order matters where patterns overlap: at a given start
/// the first pattern wins. `\b` is made ASCII-only when compiled (secrets are ASCII), which keeps
/// the regex on its fast DFA even on non-ASCII text.
const PATTERNS: &[(&str, &str, Secret)] = &[
    (
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        Secret::Whole,
    ),
    (
        "aws_access_key",
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        Secret::Whole,
    ),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        Secret::Whole,
    ),
    (
        "gitlab_token",
        r"\bgl(?:pat|dt|ptt|rt)-[A-Za-z0-9_\-]{20,}",
        Secret::Whole,
    ),
    (
        "anthropic_key",
        r"\bsk-ant-[A-Za-z0-9_\-]{20,}",
        Secret::Whole,
    ),
    (
        "openai_key",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
        Secret::Whole,
    ),
    (
        "stripe_key",
        r"\b(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}|whsec_[0-9A-Za-z]{24,})\b",
        Secret::Whole,
    ),
    (
        "slack_webhook",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+",
        Secret::Whole,
    ),
    (
        "slack_token",
        r"\b(?:xox[abposre]-[A-Za-z0-9\-]{10,}|xapp-\d-[A-Za-z0-9\-]{10,})",
        Secret::Whole,
    ),
    ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}", Secret::Whole),
    ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b", Secret::Whole),
    (
        "pypi_token",
        r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}",
        Secret::Whole,
    ),
    ("huggingface_token", r"\bhf_[A-Za-z]{34}\b", Secret::Whole),
    (
        "sendgrid_key",
        r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b",
        Secret::Whole,
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
        Secret::Whole,
    ),
    (
        "bearer_token",
        r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{16,}=*",
        Secret::Whole,
    ),
    (
        "aws_secret_key",
        r#"(?i)\baws_?secret_?(?:access_?)?key\b["']?\s*[:=]\s*["']?[A-Za-z0-9/+=]{40}"#,
        Secret::AfterSeparator,
    ),
    (
        "secret_assignment",
        r#"(?i)[A-Za-z_]*(?:password|passwd|pwd|secret|api_?key|apikey|access_?token|auth_?token|private_?key)\b["']?\s*[:=]\s*["']?[^\s"'`,;()\[\]{}<>]{4,}"#,
        Secret::AfterSeparator,
    ),
    (
        "url_credentials",
        r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@]*:[^\s/@]+@",
        Secret::UrlPassword,
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

/// The patterns as one multi-pattern regex: leftmost-first, so at a given start the first
/// pattern in [`PATTERNS`] wins, exactly as an alternation of them would; each match carries the
/// index of its pattern.
fn compiled() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let ascii: Vec<String> = PATTERNS
            .iter()
            .map(|(_, p, _)| p.replace(r"\b", r"(?-u:\b)"))
            .collect();
        // The patterns are constants checked by the tests below; an invalid one is a bug caught
        // there, never input-dependent.
        Regex::builder()
            // A larger lazy-DFA cache than the default: the patterns have many states, and a
            // cache that keeps filling up makes the regex fall back to a slower engine.
            .configure(Regex::config().hybrid_cache_capacity(32 << 20))
            .build_many(&ascii)
            .expect("redaction patterns compile")
    })
}

/// The byte range of the secret inside `m` (a match of a pattern whose secret is `how`).
fn secret_span(m: &str, how: Secret) -> (usize, usize) {
    match how {
        Secret::Whole => (0, m.len()),
        Secret::AfterSeparator => {
            let Some(sep) = m.find([':', '=']) else {
                return (0, m.len());
            };
            let rest = &m[sep + 1..];
            let value = rest.trim_start_matches(char::is_whitespace);
            let value = value.strip_prefix(['"', '\'']).unwrap_or(value);
            (m.len() - value.len(), m.len())
        }
        Secret::UrlPassword => {
            let user = m.find("://").map_or(0, |i| i + 3);
            match m[user..].find(':') {
                Some(colon) if m.ends_with('@') => (user + colon + 1, m.len() - 1),
                _ => (0, m.len()),
            }
        }
    }
}

/// Whether a match is most likely not a secret: code that reads a secret from somewhere
/// (`password = get_password(…)`, `api_key = os.environ[…]`), a type annotation
/// (`password: String`), or a bearer "token" without a single digit (prose).
fn looks_harmless(name: &str, value: &str, rest: &str) -> bool {
    match name {
        "secret_assignment" => {
            let next = rest.chars().next();
            matches!(next, Some('(' | '[' | '<' | '{'))
                || NOT_SECRET_VALUES
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(value))
                || value.starts_with(['$', '%'])
                || value.starts_with("process.env")
                || value.starts_with("os.environ")
                || value.starts_with("/run/secrets/")
        }
        "bearer_token" | "openai_key" => !value.bytes().any(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// Shortest match of a pattern without `:`, `=` or whitespace (`xoxb-` and 10 characters: a
/// Slack token); every other pattern is longer or needs one of those characters.
const SHORTEST_BARE_SECRET: usize = 15;

/// Whether an assignment's value can hold a secret of its own (so it is worth a scan): values
/// hold no whitespace, so only a long enough one, or one with a `:` or `=`, can.
fn may_hold_a_secret(value: &str) -> bool {
    value.len() >= SHORTEST_BARE_SECRET || value.contains([':', '='])
}

/// Redacts one string; adds the types found to `found`. `None` when nothing matched.
fn redact_str(s: &str, found: &mut BTreeSet<&'static str>) -> Option<String> {
    let mut out = String::new();
    let mut copied = 0;
    for m in compiled().find_iter(s) {
        let Some(&(name, _, how)) = PATTERNS.get(m.pattern().as_usize()) else {
            continue;
        };
        let (from, to) = secret_span(&s[m.range()], how);
        let (start, end) = (m.start() + from, m.start() + to);
        if looks_harmless(name, &s[start..end], &s[end..]) {
            continue;
        }
        if out.is_empty() {
            out.reserve(s.len() + 32);
        }
        out.push_str(&s[copied..start]);
        // Keep the non-secret part of assignments and URLs; a value that is itself a known kind
        // of secret (`OPENAI_API_KEY=sk-…`) is reported as that kind.
        let value = &s[start..end];
        let inner = match how {
            Secret::Whole => None,
            _ if !may_hold_a_secret(value) => None,
            _ => redact_str(value, found),
        };
        match inner {
            Some(redacted) => out.push_str(&redacted),
            None => {
                found.insert(name);
                out.push_str("[REDACTED:");
                out.push_str(name);
                out.push(']');
            }
        }
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
    use proptest::prelude::*;
    use regex::{Regex as Alternation, RegexBuilder, RegexSet};
    use serde_json::json;

    /// The previous implementation, kept as a reference: one alternation finds matches, a
    /// `RegexSet` over each pattern anchored on the matched text classifies them, and a capture
    /// group around the secret part finds it.
    struct Reference {
        find: Alternation,
        which: RegexSet,
        values: Vec<Option<Alternation>>,
    }

    fn reference() -> &'static Reference {
        static REF: OnceLock<Reference> = OnceLock::new();
        REF.get_or_init(|| {
            let ascii = |p: &str| p.replace(r"\b", r"(?-u:\b)");
            let with_group = |p: &str, how: Secret| -> Option<String> {
                match how {
                    Secret::Whole => None,
                    Secret::AfterSeparator => {
                        let at = p.rfind(r#"["']?"#)? + r#"["']?"#.len();
                        Some(format!("{}(?P<v>{})", &p[..at], &p[at..]))
                    }
                    Secret::UrlPassword => {
                        let at = p.rfind(r"[^\s/@]+@")?;
                        Some(format!(r"{}(?P<v>[^\s/@]+)@", &p[..at]))
                    }
                }
            };
            let alternation: Vec<String> = PATTERNS
                .iter()
                .map(|(_, p, _)| format!("(?:{})", ascii(p)))
                .collect();
            let whole: Vec<String> = PATTERNS
                .iter()
                .map(|(_, p, _)| format!("^(?:{})$", ascii(p)))
                .collect();
            Reference {
                find: RegexBuilder::new(&alternation.join("|"))
                    .dfa_size_limit(32 << 20)
                    .build()
                    .unwrap(),
                which: RegexSet::new(&whole).unwrap(),
                values: PATTERNS
                    .iter()
                    .map(|(_, p, how)| {
                        with_group(p, *how)
                            .map(|g| Alternation::new(&format!("^(?:{g})$")).unwrap())
                    })
                    .collect(),
            }
        })
    }

    fn reference_str(s: &str, found: &mut BTreeSet<&'static str>) -> Option<String> {
        let re = reference();
        let mut out = String::new();
        let mut copied = 0;
        for m in re.find.find_iter(s) {
            let Some(index) = re.which.matches(m.as_str()).into_iter().next() else {
                continue;
            };
            let name = PATTERNS[index].0;
            let value = re.values[index].as_ref().and_then(|each| {
                let v = each.captures(m.as_str())?.name("v")?;
                Some((m.start() + v.start(), m.start() + v.end()))
            });
            let (start, end) = value.unwrap_or((m.start(), m.end()));
            if looks_harmless(name, &s[start..end], &s[end..]) {
                continue;
            }
            let replacement = match value {
                Some(_) => reference_str(&s[start..end], found),
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

    /// This implementation and the reference agree on `s`: same output, same types.
    fn agrees(s: &str) -> Result<(), String> {
        let (mut ours, mut theirs) = (BTreeSet::new(), BTreeSet::new());
        let a = redact_str(s, &mut ours);
        let b = reference_str(s, &mut theirs);
        if a == b && ours == theirs {
            Ok(())
        } else {
            Err(format!(
                "{s:?}: {a:?} {ours:?} vs reference {b:?} {theirs:?}"
            ))
        }
    }

    #[test]
    fn no_secret_hides_in_a_short_bare_value() {
        // The shortest match of every pattern that needs no `:`, `=` or whitespace: each is found,
        // one character less is not, and none is shorter than SHORTEST_BARE_SECRET.
        let n = |c: &str, k: usize| c.repeat(k);
        let shortest = [
            ("aws_access_key", format!("AKIA{}", n("A", 16))),
            ("github_token", format!("github_pat_{}", n("a", 22))),
            ("gitlab_token", format!("gldt-{}", n("a", 20))),
            ("anthropic_key", format!("sk-ant-{}", n("1", 20))),
            ("openai_key", format!("sk-{}", n("1", 20))),
            ("stripe_key", format!("sk_live_{}", n("a", 16))),
            ("slack_token", format!("xoxb-{}", n("0", 10))),
            ("google_api_key", format!("AIza{}", n("a", 35))),
            ("npm_token", format!("npm_{}", n("a", 36))),
            ("pypi_token", format!("pypi-AgEIcHlwaS5vcmc{}", n("a", 50))),
            ("huggingface_token", format!("hf_{}", n("a", 34))),
            ("sendgrid_key", format!("SG.{}.{}", n("a", 22), n("a", 43))),
            (
                "jwt",
                format!("eyJ{}.eyJ{}.{}", n("a", 8), n("a", 8), n("a", 8)),
            ),
        ];
        for (kind, secret) in &shortest {
            assert_eq!(one(secret).1, [*kind], "{secret}");
            assert!(
                !one(&secret[..secret.len() - 1])
                    .1
                    .contains(&kind.to_string())
            );
            assert!(secret.len() >= SHORTEST_BARE_SECRET, "{kind}: {secret}");
            assert_eq!(
                one(&format!("password={secret}")).0,
                format!("password=[REDACTED:{kind}]")
            );
        }
        // The others need a separator or whitespace, which values do not hold (or which makes
        // them worth a scan).
        let bare: Vec<&str> = shortest.iter().map(|(k, _)| *k).collect();
        for (name, _, _) in PATTERNS {
            if !bare.contains(name) {
                assert!(
                    [
                        "private_key",
                        "slack_webhook",
                        "bearer_token",
                        "aws_secret_key",
                        "secret_assignment",
                        "url_credentials"
                    ]
                    .contains(name),
                    "{name}: add its shortest match above"
                );
            }
        }
    }

    #[test]
    fn the_corpus_is_redacted_as_by_the_reference() {
        let corpus: Value =
            serde_json::from_str(include_str!("../../tests/data/redaction-corpus.json")).unwrap();
        let mut strings = Vec::new();
        fn collect(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) => out.push(s.clone()),
                Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
                Value::Object(o) => o.values().for_each(|v| collect(v, out)),
                _ => {}
            }
        }
        collect(&corpus, &mut strings);
        assert!(strings.len() > 120);
        for s in strings {
            agrees(&s).unwrap();
        }
    }

    /// Pieces of secrets and near-secrets, glued at random.
    const PIECES: &[&str] = &[
        "password",
        "PASSWORD",
        "api_key",
        "secret",
        "pwd",
        "aws_secret_access_key",
        "=",
        ":",
        " ",
        "\"",
        "'",
        "hunter2hunter2",
        "get_password()",
        "$HOME",
        "AKIAIOSFODNN7EXAMPLE",
        "sk-proj-abcdefghijklmnopqrstuvwxyz0123",
        "sk-ant-api03-abcdefghijklmnopqrstuv",
        "https://",
        "bob",
        "@",
        "example.com",
        "/x",
        "Bearer ",
        "abcdef0123456789abcdef",
        "eyJhbGciOiJIUzI1NiJ9",
        ".",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "xoxb-",
        "123456789012",
        "ghp_",
        "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "é",
        "\n",
        "(",
        "{",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----END RSA PRIVATE KEY-----",
        "MIIB",
        "null",
    ];

    proptest! {
        #[test]
        fn random_text_is_redacted_as_by_the_reference(
            picks in proptest::collection::vec(0..PIECES.len(), 0..24)
        ) {
            let s: String = picks.iter().map(|&i| PIECES[i]).collect();
            prop_assert!(agrees(&s).is_ok(), "{}", agrees(&s).unwrap_err());
        }
    }

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
