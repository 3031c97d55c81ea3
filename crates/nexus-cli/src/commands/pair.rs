//! `pair`, `claim` and `pair-status` (inventory §1.5.5-1.5.7): pairing codes.
//!
//! `claim` and `pair-status` accept a bare code (`WORD-WORD-XXXXX`, any case) or the pairing link
//! the human was handed (`https://host/p/CODE`); with a link and no `--url`, the request goes to
//! the server the link names (source label `pairing URL`), since that is the only server where
//! the code exists.

use serde_json::json;

use super::{Ctx, pairing_server};
use crate::client::{Request, checked};
use crate::output::{CmdResult, Failure, Outcome};
use crate::server::{Server, Source};
use crate::state::Sid;

/// A pairing argument split into the code and, for a link, the server it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeArg {
    pub code: String,
    pub server: Option<String>,
}

/// Parses a bare code or a pairing link. The code must be path-safe (`[A-Za-z0-9-]`, at most 64
/// characters); a code in the relay's own format is canonicalised (uppercase).
pub fn parse_code_arg(input: &str) -> Result<CodeArg, Failure> {
    let input = input.trim();
    let (code, server) = if input.contains("://") {
        let (base, rest) = if let Some(i) = input.rfind("/p/") {
            (&input[..i], &input[i + 3..])
        } else if let Some(i) = input.rfind("/v1/pair/") {
            (&input[..i], &input[i + 9..])
        } else {
            return Err(Failure::coded(
                "invalid_code",
                format!("not a pairing link (expected …/p/CODE): {input}"),
            ));
        };
        let code = rest.split(['/', '?', '#']).next().unwrap_or("");
        (code, Some(base.to_owned()))
    } else {
        (input, None)
    };
    let safe = (1..=64).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !safe {
        return Err(Failure::coded(
            "invalid_code",
            format!("not a pairing code: {code:?}"),
        ));
    }
    let code = nexus_proto::PairCode::parse(code)
        .map(|c| c.as_str().to_owned())
        .unwrap_or_else(|| code.to_owned());
    Ok(CodeArg { code, server })
}

/// The server for a code: `--url` wins, then the link's server, then the effective one.
fn code_server(ctx: &Ctx, arg: &CodeArg) -> Server {
    match &arg.server {
        Some(s) if ctx.resolver.effective().source != Source::Flag => {
            let server = pairing_server(s);
            ctx.ui.line(server.provenance());
            server
        }
        _ => ctx.effective(),
    }
}

/// `nexus pair <SID>`
pub async fn pair(ctx: &Ctx, input: &str) -> CmdResult {
    let sid = ctx.sid(input)?;
    let server = ctx.route(&sid);
    let req = Request::put(format!("{}/v1/pair", server.base()))
        .json(json!({ "sessionId": sid.as_str() }));
    let reply = checked(ctx.http.call(req).await, &ctx.ui)?;
    ctx.adopt(&sid, &server);
    if let (Some(code), Some(url)) = (reply.str_field("code"), reply.str_field("url")) {
        let expires = reply.str_field("expiresAt").unwrap_or("soon");
        ctx.ui.note(format!(
            "🔗 Pairing code: {code} (single use, expires {expires})"
        ));
        ctx.ui.line(format!(
            "Hand this link to your human for the other agent: {url}"
        ));
        ctx.ui.line(format!(
            "The other agent runs: nexus claim {code} --agent-id <ITS_ID>"
        ));
    }
    Ok(Outcome::raw(reply.raw))
}

/// `nexus claim <CODE|LINK> --agent-id ID`
pub async fn claim(ctx: &Ctx, input: &str) -> CmdResult {
    let arg = parse_code_arg(input)?;
    let agent = ctx.required_agent()?;
    let server = code_server(ctx, &arg);
    let req = Request::post(format!("{}/v1/pair/{}/claim", server.base(), arg.code))
        .header("X-Agent-Id", agent.as_str());
    let reply = checked(ctx.http.call(req).await, &ctx.ui)?;
    if let Some(sid) = reply.str_field("sessionId").and_then(Sid::parse) {
        ctx.save_acquired(&sid, &server, &agent, reply.str_field("sessionKey"))?;
        ctx.ui.note("✅ Claimed! Next step: poll messages");
        ctx.ui.line(format!("nexus poll {sid}"));
    }
    Ok(Outcome::raw(reply.raw))
}

/// `nexus pair-status <CODE|LINK>`
pub async fn pair_status(ctx: &Ctx, input: &str) -> CmdResult {
    let arg = parse_code_arg(input)?;
    let server = code_server(ctx, &arg);
    let req = Request::get(format!("{}/v1/pair/{}/status", server.base(), arg.code));
    let reply = checked(ctx.http.call(req).await, &ctx.ui)?;
    Ok(Outcome::raw(reply.raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_links() {
        let a = parse_code_arg("abandon-ability-s5sjv").unwrap();
        assert_eq!(
            a,
            CodeArg {
                code: "ABANDON-ABILITY-S5SJV".into(),
                server: None
            }
        );
        let a = parse_code_arg("http://127.0.0.1:3000/p/PEARL-FOCAL-S5SJV").unwrap();
        assert_eq!(a.code, "PEARL-FOCAL-S5SJV");
        assert_eq!(a.server.as_deref(), Some("http://127.0.0.1:3000"));
        let a = parse_code_arg("https://relay.example/base/p/ABC-DEF-123?x=1").unwrap();
        assert_eq!(
            (a.code.as_str(), a.server.as_deref()),
            ("ABC-DEF-123", Some("https://relay.example/base"))
        );
        let a = parse_code_arg("https://h/v1/pair/ABC-DEF-12345/skill").unwrap();
        assert_eq!(a.code, "ABC-DEF-12345");
        for bad in [
            "",
            "../x",
            "a/b",
            "https://h/nothing",
            "https://h/p/",
            "a b",
        ] {
            assert!(parse_code_arg(bad).is_err(), "{bad:?}");
        }
    }
}
