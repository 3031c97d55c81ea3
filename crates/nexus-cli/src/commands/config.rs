//! `config`, `bind` and `doctor` (inventory §1.5.16-1.5.18): the configured server, explicit
//! session bindings, and a diagnosis of servers, bindings, memberships and key permissions.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::{Ctx, join_all};
use crate::client::Request;
use crate::output::{CmdResult, Failure, Outcome, short};
use crate::server::{is_http_url, normalize, request_base};
use crate::state::SessionFile;

/// `nexus config [set-url URL | show | unset]`
pub fn config(ctx: &Ctx, action: Option<String>, value: Option<String>) -> CmdResult {
    match action.as_deref().unwrap_or("show") {
        "show" => {
            let eff = ctx.resolver.effective();
            Ok(Outcome::pretty(json!({
                "serverUrl": eff.url,
                "source": eff.source.label(),
                "configPath": ctx.home.config_path().to_string_lossy(),
            })))
        }
        "set-url" => {
            let url = value.unwrap_or_default();
            if !is_http_url(&url) {
                return Err(Failure::msg("invalid URL — must be http(s)://host"));
            }
            let url = normalize(&url);
            // Other keys (`agentId`, read by `nexus mcp`) are kept; nexus.sh overwrote the file.
            let mut cfg = ctx.home.config();
            cfg.insert("serverUrl".into(), json!(url));
            cfg.insert(
                "updatedAt".into(),
                json!(humantime::format_rfc3339_seconds(SystemTime::now()).to_string()),
            );
            ctx.home.save_config(cfg)?;
            ctx.ui.line(format!("✅ Server configured: {url}"));
            Ok(Outcome::pretty(json!({ "ok": true, "serverUrl": url })))
        }
        "unset" => {
            let mut cfg = ctx.home.config();
            cfg.remove("serverUrl");
            ctx.home.save_config(cfg)?;
            ctx.ui.line("✅ Server config unset");
            Ok(Outcome::compact(json!({ "ok": true })))
        }
        other => Err(Failure::msg(format!(
            "unknown config subcommand: {other} (use set-url|show|unset)"
        ))),
    }
}

/// `nexus bind <SID>`: checks the session exists on the effective server, then binds it there.
pub async fn bind(ctx: &Ctx, input: &str) -> CmdResult {
    let sid = ctx.sid(input)?;
    let server = ctx.effective();
    let reply = ctx
        .http
        .call(Request::get(format!("{}/v1/sessions/{sid}", server.base())))
        .await;
    let code = reply.as_ref().map_or(0, |r| r.status);
    if code != 200 {
        return Err(Failure::from_value(&json!({
            "error": format!("session not found on {} (HTTP {code:03})", server.url),
            "sessionId": sid.as_str(),
        })));
    }
    ctx.home.create_session_dir(&sid)?;
    ctx.home.write(&sid, SessionFile::Server, &server.url)?;
    ctx.ui.line(format!(
        "✅ Bound {}… → {}",
        short(sid.as_str()),
        server.url
    ));
    Ok(Outcome::pretty(json!({
        "ok": true,
        "sessionId": sid.as_str(),
        "server": server.url,
    })))
}

/// The state of a key file: `absent`, `ok` (mode 600 or 400) or `insecure`.
pub fn key_file_state(path: &std::path::Path) -> &'static str {
    let Ok(meta) = std::fs::metadata(path) else {
        return "absent";
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match meta.permissions().mode() & 0o777 {
            0o600 | 0o400 => "ok",
            _ => "insecure",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        "ok"
    }
}

/// `nexus doctor`
pub async fn doctor(ctx: &Ctx) -> CmdResult {
    let eff = ctx.effective();
    let sids = ctx.home.sessions();
    let bound: Vec<Option<String>> = sids
        .iter()
        .map(|s| ctx.home.read(s, SessionFile::Server).map(|b| normalize(&b)))
        .collect();
    let mut servers = vec![eff.url.clone()];
    for b in bound.iter().flatten() {
        if !servers.contains(b) {
            servers.push(b.clone());
        }
    }
    let health = join_all(
        servers
            .iter()
            .map(|s| async move {
                let r = ctx
                    .http
                    .call(Request::get(format!("{}/health", request_base(s))))
                    .await
                    .ok()
                    .filter(|r| r.json.is_some());
                json!({
                    "server": s,
                    "reachable": r.is_some(),
                    "version": r.as_ref().and_then(|r| r.str_field("version")).unwrap_or("unknown"),
                    "uptime": r.as_ref().and_then(|r| r.get("uptime")).and_then(Value::as_u64),
                })
            })
            .collect(),
    )
    .await;
    let probes = join_all(
        sids.iter()
            .zip(&bound)
            .map(|(sid, b)| {
                let probed = b.clone().unwrap_or_else(|| eff.url.clone());
                async move {
                    let req = Request::get(format!("{}/v1/sessions/{sid}", request_base(&probed)))
                        .timeout(ctx.http.status_timeout);
                    (probed, ctx.http.call(req).await.ok())
                }
            })
            .collect(),
    )
    .await;
    let mut ok = health.iter().all(|h| h["reachable"] == true);
    let mut sessions = Vec::new();
    for ((sid, b), (probed, reply)) in sids.iter().zip(&bound).zip(probes) {
        let code = reply.as_ref().map_or(0, |r| r.status);
        let member = if code == 200 {
            let agent = ctx.home.read(sid, SessionFile::Agent).unwrap_or_default();
            Some(
                reply
                    .as_ref()
                    .and_then(|r| r.get("agents"))
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(agent.as_str()))),
            )
        } else {
            None
        };
        let key = key_file_state(&ctx.home.file_path(sid, SessionFile::Key));
        ok &= member == Some(true) && key != "insecure";
        sessions.push(json!({
            "sessionId": sid.as_str(),
            "bound": b,
            "probed": probed,
            "httpCode": code,
            "memberOfSession": member,
            "keyFile": key,
        }));
    }
    let divergence = bound.iter().flatten().any(|b| *b != eff.url);
    if divergence {
        ctx.ui.line(format!(
            "ℹ️  note: some sessions are bound to a server other than {} (the binding routes them there correctly)",
            eff.url
        ));
    }
    if ok {
        ctx.ui.line("✅ doctor: all checks passed");
    } else {
        ctx.ui.line("⚠️  doctor: problems found (see JSON report)");
    }
    let report = json!({
        "effectiveServer": eff.url,
        "source": eff.source.label(),
        "divergence": divergence,
        "ok": ok,
        "health": health,
        "sessions": sessions,
    });
    Ok(Outcome::pretty(report).with_exit(if ok { 0 } else { 1 }))
}
