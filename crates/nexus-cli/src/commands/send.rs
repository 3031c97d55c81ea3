//! `send <SID> [TEXT…] [--json PAYLOAD] [--strict]` (inventory §1.5.8, §1.6).
//!
//! Text comes from the TEXT words (joined by single spaces), or from stdin, bytes exact, when TEXT
//! is `-` or when there is neither TEXT nor `--json` and stdin is not a terminal. `--json` is sent
//! natively when the server's `/health` lists `json` in `capabilities.messageFormat` (cached 5
//! minutes per server), as a hybrid message when text is present too; otherwise it falls back to
//! a JSON string inside `text` with a warning, or fails under `--strict`. The session key is sent
//! when one is saved, which makes the message `verified`.

use std::io::{IsTerminal, Read};

use serde_json::{Map, Value, json};

use super::Ctx;
use crate::client::{Reply, Request, checked};
use crate::output::{CmdResult, Failure, Outcome};
use crate::server::Server;
use crate::state::{SessionFile, Sid};

/// Where the text of a message comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextSource {
    Words(String),
    Stdin,
    None,
}

/// Decides the text source from the words, the presence of `--json` and whether stdin is a
/// terminal.
pub fn text_source(words: &[String], has_json: bool, stdin_is_tty: bool) -> TextSource {
    match words {
        [only] if only == "-" => TextSource::Stdin,
        [] if !has_json && !stdin_is_tty => TextSource::Stdin,
        [] => TextSource::None,
        _ => TextSource::Words(words.join(" ")),
    }
}

/// The body of a send, given the text, the parsed payload and whether the server takes JSON.
/// `None` when `--strict` forbids the fallback; the flag says whether the fallback was used.
pub fn build_body(
    text: &str,
    payload: Option<&Value>,
    json_supported: bool,
    strict: bool,
) -> Option<(Value, bool)> {
    let mut body = Map::new();
    let mut fell_back = false;
    match payload {
        None => {
            body.insert("text".into(), json!(text));
        }
        Some(p) if json_supported => {
            body.insert("json".into(), p.clone());
            if !text.is_empty() {
                body.insert("text".into(), json!(text));
            }
        }
        Some(_) if strict => return None,
        Some(p) => {
            fell_back = true;
            let s = if text.is_empty() {
                p.to_string()
            } else {
                format!("{text} {p}")
            };
            body.insert("text".into(), json!(s));
        }
    }
    Some((Value::Object(body), fell_back))
}

/// `nexus send`
pub async fn send(
    ctx: &Ctx,
    input: &str,
    words: Vec<String>,
    json_arg: Option<String>,
    strict: bool,
) -> CmdResult {
    let sid = ctx.sid(input)?;
    let server = ctx.route(&sid);
    if json_arg.as_deref() == Some("") {
        return Err(Failure::msg("--json requires a value (JSON payload)"));
    }
    let text = match text_source(&words, json_arg.is_some(), std::io::stdin().is_terminal()) {
        TextSource::Words(t) => t,
        TextSource::None => String::new(),
        TextSource::Stdin => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| Failure::coded("stdin_error", e.to_string()))?;
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    let payload = match json_arg.as_deref() {
        None => None,
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(Value::Null) | Err(_) => return Err(Failure::msg("invalid JSON in --json payload")),
            Ok(v) => Some(v),
        },
    };
    if text.is_empty() && payload.is_none() {
        return Err(Failure::msg(
            "at least one of text or --json must be provided",
        ));
    }
    let agent = ctx.session_agent(&sid)?;
    let sent = deliver(ctx, &sid, &server, &agent, &text, payload.as_ref(), strict).await?;
    let redacted = sent.redacted();
    if !redacted.is_empty() {
        ctx.ui.line(format!(
            "⚠️  The server redacted secrets from this message: {}",
            redacted.join(", ")
        ));
    }
    Ok(Outcome::raw(sent.reply.raw))
}

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The server's 2xx JSON reply (`{id, cursor, sentAt, expiresAt, verified, redacted?}`).
    pub reply: Reply,
    /// The JSON payload went into `text` because the server lacks JSON messages.
    pub fell_back: bool,
}

impl Sent {
    /// The secret types the server redacted from the message (`redacted` in the reply).
    pub fn redacted(&self) -> Vec<String> {
        self.reply
            .get("redacted")
            .and_then(Value::as_array)
            .map(|types| {
                types
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Sends one message whose text and payload are already known (the part of `send` shared with
/// `nexus mcp`): checks JSON support when there is a payload, builds the body, sends the saved
/// session key (so the message is `verified`) and adopts the binding on success. Never reads
/// stdin; its only human lines are the JSON fallback warning and the `--strict` refusal.
pub async fn deliver(
    ctx: &Ctx,
    sid: &Sid,
    server: &Server,
    agent: &str,
    text: &str,
    payload: Option<&Value>,
    strict: bool,
) -> Result<Sent, Failure> {
    let json_supported = match payload {
        None => false,
        Some(_) => ctx
            .capabilities(server)
            .await
            .and_then(|c| c.get("messageFormat").cloned())
            .and_then(|f| f.as_array().cloned())
            .is_some_and(|f| f.iter().any(|x| x == "json")),
    };
    let (body, fell_back) = build_body(text, payload, json_supported, strict).ok_or_else(|| {
        ctx.ui.line(
            "✖  Server does not support json messages. Use without --strict to fall back to text, or omit --json.",
        );
        Failure::coded(
            "json_not_supported",
            "the server does not support json messages (--strict)",
        )
    })?;
    if fell_back {
        ctx.ui.line(
            "⚠️  Server does not support native json messages; payload serialized into text field.",
        );
    }
    let mut req = Request::post(format!("{}/v1/sessions/{sid}/messages", server.base()))
        .header("X-Agent-Id", agent)
        .json(body);
    if let Some(key) = ctx.home.read(sid, SessionFile::Key) {
        req = req.header("X-Session-Key", key);
    }
    let reply = checked(ctx.http.call(req).await, &ctx.ui)?;
    ctx.adopt(sid, server);
    Ok(Sent { reply, fell_back })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn where_text_comes_from() {
        assert_eq!(text_source(&w(&["-"]), false, true), TextSource::Stdin);
        assert_eq!(text_source(&w(&[]), false, false), TextSource::Stdin);
        assert_eq!(text_source(&w(&[]), false, true), TextSource::None);
        assert_eq!(
            text_source(&w(&[]), true, false),
            TextSource::None,
            "--json alone never reads stdin"
        );
        assert_eq!(
            text_source(&w(&["a", "-", "b"]), false, false),
            TextSource::Words("a - b".into())
        );
    }

    #[test]
    fn bodies() {
        let p = json!({"type": "report", "n": [1, 2]});
        assert_eq!(
            build_body("hi\n", None, false, false).unwrap(),
            (json!({"text": "hi\n"}), false)
        );
        assert_eq!(
            build_body("", Some(&p), true, true).unwrap().0,
            json!({"json": p})
        );
        assert_eq!(
            build_body("Q3", Some(&p), true, false).unwrap().0,
            json!({"json": p, "text": "Q3"})
        );
        assert!(build_body("Q3", Some(&p), false, true).is_none());
        let (b, fell) = build_body("Q3", Some(&p), false, false).unwrap();
        assert!(fell);
        assert_eq!(b, json!({"text": "Q3 {\"n\":[1,2],\"type\":\"report\"}"}));
        assert_eq!(
            build_body("", Some(&json!("s")), false, false).unwrap().0,
            json!({"text": "\"s\""})
        );
    }
}
