//! `leave <SID>` and its decision table (inventory §1.5.4): when local state is cleaned up and when
//! it is preserved for a retry. The table is a pure function ([`decide`], [`decide_cross_check`])
//! so every branch is unit-tested without a server.
//!
//! Difference from `nexus.sh`: cleanup removes **every** alias of the session, not just one.

use serde_json::{Map, Value, json};

use super::Ctx;
use crate::client::{Reply, Request, TransportError};
use crate::output::{CmdResult, Failure, Outcome, Printed};
use crate::state::SessionFile;

/// What to do with local state, and the stderr line that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Cleanup(String),
    Preserve(String),
    /// `invalid_session_key`: ask the public status endpoint whether the agent is still a member.
    CrossCheck,
}

/// The first step of the table, from the DELETE's outcome: `None` status means no HTTP reply.
pub fn decide(status: Option<u16>, body: Option<&Map<String, Value>>) -> Decision {
    let code = body.and_then(|b| b.get("error")).and_then(Value::as_str);
    let ok = body.and_then(|b| b.get("ok")) == Some(&Value::Bool(true));
    match (status, code) {
        (Some(s), _) if (200..300).contains(&s) && ok => {
            Decision::Cleanup("✅ Left session. Local data cleaned up.".into())
        }
        (_, Some(c @ ("session_not_found" | "agent_not_found"))) => {
            Decision::Cleanup(format!("⚠️  {c} on server — local data cleaned up."))
        }
        (_, Some("invalid_session_key")) => Decision::CrossCheck,
        (_, Some("forbidden")) => Decision::Preserve(
            "⚠️  Creator cannot leave the session — local state preserved.".into(),
        ),
        _ => {
            let what = match (status, code) {
                (None, _) => "transport error",
                (_, Some(c)) => c,
                (Some(s), None) if (200..300).contains(&s) && body.is_some() => {
                    "reply without ok:true"
                }
                (Some(_), None) => "non_json_response",
            };
            Decision::Preserve(format!(
                "⚠️  Server leave failed ({what}) — local state preserved for retry."
            ))
        }
    }
}

/// The cross-check after `invalid_session_key`: decided on the HTTP status of
/// `GET /v1/sessions/<SID>` (`None` = no reply, shown as `000`), then on membership in `agents`.
pub fn decide_cross_check(
    status: Option<u16>,
    body: Option<&Map<String, Value>>,
    agent: &str,
) -> Decision {
    match status {
        Some(404) => {
            Decision::Cleanup("⚠️  Session expired on server — local data cleaned up.".into())
        }
        Some(200) => {
            let listed = body
                .and_then(|b| b.get("agents"))
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(agent)));
            if listed {
                Decision::Preserve(
                    "⚠️  Invalid session key but agent is still a member — local state preserved for retry."
                        .into(),
                )
            } else {
                Decision::Cleanup(
                    "⚠️  Agent no longer a member of session — local data cleaned up.".into(),
                )
            }
        }
        other => Decision::Preserve(format!(
            "⚠️  Cannot verify session state (HTTP {}) — local state preserved for retry.",
            other.map_or("000".to_owned(), |s| format!("{s:03}"))
        )),
    }
}

fn parts(r: &Result<Reply, TransportError>) -> (Option<u16>, Option<&Map<String, Value>>) {
    match r {
        Ok(reply) => (Some(reply.status), reply.json.as_ref()),
        Err(_) => (None, None),
    }
}

/// `nexus leave <SID> [--agent-id ID]`
pub async fn leave(ctx: &Ctx, input: &str) -> CmdResult {
    let sid = ctx.sid(input)?;
    let server = ctx.route(&sid);
    let agent = ctx.session_agent(&sid)?;
    let Some(key) = ctx.home.read(&sid, SessionFile::Key) else {
        return Err(Failure::msg("no session key found"));
    };
    let req = Request::delete(format!(
        "{}/v1/sessions/{sid}/agents/{agent}",
        server.base()
    ))
    .header("X-Agent-Id", agent.as_str())
    .header("X-Session-Key", key);
    let result = ctx.http.call(req).await;
    let printed = match &result {
        Ok(Reply {
            json: Some(_), raw, ..
        }) => Printed::Raw(raw.clone()),
        Ok(_) => Printed::Raw(Failure::non_json().stdout),
        Err(e) => Printed::Raw(Failure::transport(e.0.clone()).stdout),
    };
    let (status, body) = parts(&result);
    let mut decision = decide(status, body);
    if decision == Decision::CrossCheck {
        let check = ctx
            .http
            .call(Request::get(format!("{}/v1/sessions/{sid}", server.base())))
            .await;
        let (s, b) = parts(&check);
        decision = decide_cross_check(s, b, &agent);
    }
    match decision {
        Decision::Cleanup(line) => {
            ctx.home.forget_session(&sid)?;
            ctx.ui.note(line);
            Ok(Outcome { printed, exit: 0 })
        }
        Decision::Preserve(line) => {
            ctx.ui.note(line);
            // Every failure prints an `error` on stdout (SPEC §3), even when the server's reply
            // was a 2xx without `ok: true` (which nexus.sh printed as is).
            let printed = match &result {
                Ok(Reply {
                    json: Some(body), ..
                }) if !body.contains_key("error") => Printed::Raw(
                    Failure::from_value(&json!({
                        "error": "leave_not_confirmed",
                        "message": "the server did not confirm the leave with \"ok\": true; local state preserved",
                        "response": body,
                    }))
                    .stdout,
                ),
                _ => printed,
            };
            Ok(Outcome { printed, exit: 1 })
        }
        // decide_cross_check never asks for another cross-check.
        Decision::CrossCheck => Ok(Outcome { printed, exit: 1 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!(),
        }
    }

    fn is_cleanup(d: &Decision) -> bool {
        matches!(d, Decision::Cleanup(_))
    }

    #[test]
    fn success_requires_ok_true() {
        let ok = obj(json!({"ok": true, "status": "removed"}));
        assert_eq!(
            decide(Some(200), Some(&ok)),
            Decision::Cleanup("✅ Left session. Local data cleaned up.".into())
        );
        let removed_only = obj(json!({"status": "removed"}));
        assert!(matches!(
            decide(Some(200), Some(&removed_only)),
            Decision::Preserve(_)
        ));
    }

    #[test]
    fn gone_on_server_cleans_up_whatever_the_status() {
        for code in ["session_not_found", "agent_not_found"] {
            let b = obj(json!({"error": code}));
            let d = decide(Some(404), Some(&b));
            assert_eq!(
                d,
                Decision::Cleanup(format!("⚠️  {code} on server — local data cleaned up."))
            );
            assert!(is_cleanup(&decide(Some(500), Some(&b))));
        }
    }

    #[test]
    fn creator_and_other_failures_preserve() {
        let f = obj(json!({"error": "forbidden"}));
        assert_eq!(
            decide(Some(403), Some(&f)),
            Decision::Preserve(
                "⚠️  Creator cannot leave the session — local state preserved.".into()
            )
        );
        let cases: [(Option<u16>, Option<Value>, &str); 5] = [
            (
                Some(429),
                Some(json!({"error": "rate_limit_exceeded"})),
                "rate_limit_exceeded",
            ),
            (
                Some(401),
                Some(json!({"error": "missing_session_key"})),
                "missing_session_key",
            ),
            (Some(502), None, "non_json_response"),
            (None, None, "transport error"),
            (
                Some(500),
                Some(json!({"error": "internal_error"})),
                "internal_error",
            ),
        ];
        for (status, body, what) in cases {
            let body = body.map(obj);
            assert_eq!(
                decide(status, body.as_ref()),
                Decision::Preserve(format!(
                    "⚠️  Server leave failed ({what}) — local state preserved for retry."
                ))
            );
        }
    }

    #[test]
    fn invalid_key_cross_checks_membership() {
        let b = obj(json!({"error": "invalid_session_key"}));
        assert_eq!(decide(Some(401), Some(&b)), Decision::CrossCheck);
        assert!(is_cleanup(&decide_cross_check(Some(404), None, "a")));
        assert_eq!(
            decide_cross_check(None, None, "a"),
            Decision::Preserve(
                "⚠️  Cannot verify session state (HTTP 000) — local state preserved for retry."
                    .into()
            )
        );
        assert!(
            matches!(decide_cross_check(Some(503), None, "a"), Decision::Preserve(s) if s.contains("HTTP 503"))
        );
        let listed = obj(json!({"agents": ["a", "b"]}));
        assert!(
            matches!(decide_cross_check(Some(200), Some(&listed), "a"), Decision::Preserve(s) if s.contains("still a member"))
        );
        assert!(is_cleanup(&decide_cross_check(
            Some(200),
            Some(&listed),
            "c"
        )));
    }
}
