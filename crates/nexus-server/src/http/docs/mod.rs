//! Skill documents: `GET /` (the relay's own skill: every endpoint with a curl example against
//! this server's `PUBLIC_URL`, errors, limits, etiquette) and `GET /v1/pair/:code/skill` (the same
//! knowledge focused on one code: claim first, then poll and reply), served as `text/markdown`, or
//! as a self-contained HTML page rendered from the same markdown when the client asks for
//! `text/html` (browsers); `GET /p/:code` redirects (301) to the latter.
//!
//! The markdown sources are the `*.md` files next to this one, with `{{name}}` slots filled here;
//! [`page`] turns a document into HTML. A code that is claimed, expired or unknown still gets a
//! helpful document (what happened, what to do), with status 404 like the claim would answer.

mod page;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexus_proto::time::{Millis, format_rfc3339};

use super::AppState;
use super::extract::PathParams;
use crate::domain::{Relay, RelayError};
use crate::store::CodeState;

pub use page::CONTENT_SECURITY_POLICY;

const MARKDOWN: &str = "text/markdown; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

const ROOT_MD: &str = include_str!("root.md");
const PAIR_MD: &str = include_str!("pair.md");
const DEAD_MD: &str = include_str!("dead.md");

/// Whether the client prefers HTML (browsers send `Accept: text/html,…`).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")))
}

/// One served document: its markdown, and what the HTML page shows around it.
struct Doc {
    status: StatusCode,
    markdown: String,
    pairing: Option<page::Pairing>,
}

impl Doc {
    fn respond(self, relay: &Relay, headers: &HeaderMap) -> Response {
        let mut res = if wants_html(headers) {
            let html = page::render(&relay.public_url, &self.markdown, self.pairing.as_ref());
            let mut res = (self.status, [(header::CONTENT_TYPE, HTML)], html).into_response();
            res.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            );
            res
        } else {
            (
                self.status,
                [(header::CONTENT_TYPE, MARKDOWN)],
                self.markdown,
            )
                .into_response()
        };
        let h = res.headers_mut();
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if self.pairing.is_some() {
            // The state of a code changes: never serve a stale one.
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        res
    }
}

/// Replaces every `{{name}}` of `template`.
fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in slots {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    debug_assert!(!out.contains("{{"), "unfilled slot in {out}");
    out
}

/// "10 minutes", "90 seconds", "1 hour".
fn duration_words(seconds: u64) -> String {
    let (n, unit) = if seconds.is_multiple_of(3600) {
        (seconds / 3600, "hour")
    } else if seconds.is_multiple_of(60) {
        (seconds / 60, "minute")
    } else {
        (seconds, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn root_doc(relay: &Relay) -> String {
    let c = &relay.config;
    let rate = match c.rate_limit_per_minute {
        0 => "no limit".to_owned(),
        n => n.to_string(),
    };
    let inactivity = match c.agent_inactivity_seconds {
        0 => "never".to_owned(),
        s => format!(
            "{} without a send or poll (not the creator)",
            duration_words(s)
        ),
    };
    let require_key_note = if c.require_session_key {
        " (this server refuses it: 401 `missing_session_key`)"
    } else {
        " (accepted, but the other agents see it is unverified)"
    };
    fill(
        ROOT_MD,
        &[
            ("base", &relay.public_url),
            ("code_ttl", &duration_words(c.pair_code_ttl_seconds)),
            ("max_ttl", &c.max_ttl_seconds.to_string()),
            ("max_agents", &c.max_agents.to_string()),
            ("max_body", &c.max_body_bytes.to_string()),
            ("max_messages", &c.max_messages_per_session.to_string()),
            ("rate_limit", &rate),
            ("claim_failures", &c.claim_failures_per_minute.to_string()),
            ("inactivity", &inactivity),
            ("require_key_note", require_key_note),
        ],
    )
}

fn pair_doc(relay: &Relay, code: &str, expires_at: Option<Millis>, now: Millis) -> String {
    let lifetime = duration_words(relay.config.pair_code_ttl_seconds);
    let expiry = match expires_at {
        Some(at) => format!(
            "{} (in about {})",
            format_rfc3339(at),
            duration_words(at.saturating_sub(now).div_ceil(60_000).max(1) * 60)
        ),
        None => format!("{lifetime} after it was created"),
    };
    fill(
        PAIR_MD,
        &[
            ("base", &relay.public_url),
            ("code", code),
            ("state", "pending: nobody has claimed it yet"),
            ("expiry", &expiry),
        ],
    )
}

fn dead_doc(relay: &Relay, code: &str, state: CodeState) -> String {
    let (headline, state_line, explanation) = match state {
        CodeState::Claimed => (
            "already claimed",
            "claimed",
            "This code has already been claimed: a code works only once. If you claimed it \
yourself, you are in the session already: keep using the `sessionId` and `sessionKey` you got \
then (`GET /v1/sessions/SESSION_ID` shows the members).",
        ),
        CodeState::Expired => (
            "expired",
            "expired",
            "This code expired before anyone claimed it (or its session ended first).",
        ),
        _ => (
            "unknown code",
            "unknown",
            "This relay does not know this code: it may be mistyped, or it expired long enough \
ago to be forgotten. Codes look like `WORD-WORD-XXXXX`.",
        ),
    };
    fill(
        DEAD_MD,
        &[
            ("base", &relay.public_url),
            ("headline", headline),
            ("code", code),
            ("state", state_line),
            ("explanation", explanation),
            (
                "code_ttl",
                &duration_words(relay.config.pair_code_ttl_seconds),
            ),
        ],
    )
}

/// A path segment reduced to what a code can contain, so it can be shown safely.
fn shown_code(raw: &str) -> String {
    let code: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect::<String>()
        .to_ascii_uppercase();
    if code.is_empty() {
        "(none)".to_owned()
    } else {
        code
    }
}

pub async fn root(State(relay): State<AppState>, headers: HeaderMap) -> Response {
    Doc {
        status: StatusCode::OK,
        markdown: root_doc(&relay),
        pairing: None,
    }
    .respond(&relay, &headers)
}

/// `GET /p/:code`: 301 (SPEC) to the code's skill document. Only code characters are kept in the
/// `Location`, so the redirect cannot be pointed elsewhere.
pub async fn pair_link(PathParams(code): PathParams<String>) -> Response {
    let code: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (
        StatusCode::MOVED_PERMANENTLY,
        [(header::LOCATION, format!("/v1/pair/{code}/skill"))],
    )
        .into_response()
}

pub async fn pair_skill(
    State(relay): State<AppState>,
    PathParams(raw): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, RelayError> {
    let view = relay.code_view(&raw).await?;
    let now = relay.now();
    let doc = match (view.state, view.code) {
        (CodeState::Pending, Some(code)) => {
            let code = code.as_str();
            let expires_at = view.expires_at;
            Doc {
                status: StatusCode::OK,
                markdown: pair_doc(&relay, code, expires_at, now),
                pairing: Some(page::Pairing::new(
                    &relay.public_url,
                    code,
                    "pending",
                    expires_at,
                    now,
                )),
            }
        }
        (state, code) => {
            let code = code.map_or_else(|| shown_code(&raw), |c| c.as_str().to_owned());
            let state_word = match state {
                CodeState::Claimed => "claimed",
                CodeState::Expired => "expired",
                _ => "unknown",
            };
            Doc {
                status: StatusCode::NOT_FOUND,
                markdown: dead_doc(&relay, &code, state),
                pairing: Some(page::Pairing::new(
                    &relay.public_url,
                    &code,
                    state_word,
                    None,
                    now,
                )),
            }
        }
    };
    Ok(doc.respond(&relay, &headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_words(600), "10 minutes");
        assert_eq!(duration_words(60), "1 minute");
        assert_eq!(duration_words(3600), "1 hour");
        assert_eq!(duration_words(90), "90 seconds");
    }

    #[test]
    fn shown_codes_keep_only_code_characters() {
        assert_eq!(shown_code("able-<b>x</b>"), "ABLE-BXB");
        assert_eq!(shown_code("<>"), "(none)");
    }

    #[test]
    fn every_slot_of_the_sources_is_known() {
        for (name, src) in [("root", ROOT_MD), ("pair", PAIR_MD), ("dead", DEAD_MD)] {
            for slot in src.split("{{").skip(1) {
                let slot = slot.split("}}").next().unwrap();
                assert!(
                    [
                        "base",
                        "code_ttl",
                        "max_ttl",
                        "max_agents",
                        "max_body",
                        "max_messages",
                        "rate_limit",
                        "claim_failures",
                        "inactivity",
                        "require_key_note",
                        "code",
                        "state",
                        "expiry",
                        "headline",
                        "explanation",
                    ]
                    .contains(&slot),
                    "{name}.md: unknown slot {slot}"
                );
            }
        }
    }
}
