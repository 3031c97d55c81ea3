//! `alias`, `unalias` and `ls` (inventory §1.5.11-1.5.12): naming local sessions and listing them
//! with their live status.
//!
//! `ls` probes each session on its own bound server (or the effective one when unbound) with
//! `NEXUS_STATUS_TIMEOUT` and classifies only by HTTP status: 200 `active`, 404 `not_found`, no
//! reply `unreachable`, anything else `error`. `--active` keeps `active` and `unreachable`: a
//! network blip must not hide live sessions.

use std::io::IsTerminal;

use serde_json::{Value, json};

use super::{Ctx, join_all};
use crate::client::Request;
use crate::output::{CmdResult, Failure, Outcome, short};
use crate::state::SessionFile;

/// The `ls` status of a probe: `None` status means no reply.
pub fn probe_status(status: Option<u16>) -> &'static str {
    match status {
        Some(200) => "active",
        Some(404) => "not_found",
        None => "unreachable",
        Some(_) => "error",
    }
}

/// `nexus alias <SID|ALIAS> <NAME>`
pub fn alias(ctx: &Ctx, input: &str, name: &str) -> CmdResult {
    let sid = ctx.sid(input)?;
    if !ctx.home.session_exists(&sid) {
        return Err(Failure::msg(
            "session not found locally — join or claim first",
        ));
    }
    if name.is_empty() {
        return Err(Failure::coded(
            "invalid_alias",
            "an alias name must not be empty",
        ));
    }
    let mut aliases = ctx.home.aliases();
    aliases.insert(name.to_owned(), sid.as_str().to_owned());
    ctx.home.save_aliases(&aliases)?;
    ctx.ui
        .line(format!("✅ Alias set: {name} → {}...", short(sid.as_str())));
    Ok(Outcome::compact(
        json!({ "ok": true, "alias": name, "sessionId": sid.as_str() }),
    ))
}

/// `nexus unalias <NAME>`
pub fn unalias(ctx: &Ctx, name: &str) -> CmdResult {
    if !ctx.home.aliases_file_exists() {
        return Err(Failure::msg("no aliases configured"));
    }
    let mut aliases = ctx.home.aliases();
    if aliases.remove(name).is_none() {
        return Err(Failure::msg(format!("alias not found: {name}")));
    }
    ctx.home.save_aliases(&aliases)?;
    ctx.ui.line(format!("✅ Alias removed: {name}"));
    Ok(Outcome::compact(json!({ "ok": true, "removed": name })))
}

/// `nexus ls [--active] [--json]`
pub async fn ls(ctx: &Ctx, active: bool, json_only: bool) -> CmdResult {
    if !ctx.home.has_sessions_dir() {
        return Ok(Outcome::compact(json!({ "sessions": [] })));
    }
    let effective = ctx.effective();
    let sids = ctx.home.sessions();
    let probes: Vec<String> = sids
        .iter()
        .map(|sid| {
            ctx.home
                .read(sid, SessionFile::Server)
                .map(|b| crate::server::normalize(&b))
                .unwrap_or_else(|| effective.url.clone())
        })
        .collect();
    let statuses = join_all(
        sids.iter()
            .zip(&probes)
            .map(|(sid, server)| async move {
                let req = Request::get(format!(
                    "{}/v1/sessions/{sid}",
                    crate::server::request_base(server)
                ))
                .timeout(ctx.http.status_timeout);
                ctx.http.call(req).await.ok().map(|r| r.status)
            })
            .collect(),
    )
    .await;
    let mut rows = Vec::new();
    for ((sid, server), status) in sids.iter().zip(probes).zip(statuses) {
        let status = probe_status(status);
        if active && !matches!(status, "active" | "unreachable") {
            continue;
        }
        rows.push(json!({
            "sessionId": sid.as_str(),
            "alias": ctx.home.alias_of(sid),
            "agentId": ctx.home.read(sid, SessionFile::Agent).unwrap_or_default(),
            "status": status,
            "server": server,
            "cursor": ctx.home.read(sid, SessionFile::Cursor),
        }));
    }
    if std::io::stdout().is_terminal() && !json_only {
        print_table(ctx, &rows);
    }
    Ok(Outcome::compact(json!({ "sessions": rows })))
}

fn print_table(ctx: &Ctx, rows: &[Value]) {
    if rows.is_empty() {
        ctx.ui.line("No sessions found.");
        return;
    }
    let s = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    ctx.ui.line(format!(
        "{:<16} {:<16} {:<20} {}",
        "ALIAS", "SESSION", "AGENT-ID", "STATUS"
    ));
    for r in rows {
        let alias = r.get("alias").and_then(Value::as_str).unwrap_or("—");
        ctx.ui.line(format!(
            "{:<16} {:<16} {:<20} {}",
            alias,
            format!("{}...", short(&s(r, "sessionId"))),
            s(r, "agentId"),
            s(r, "status")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_statuses() {
        assert_eq!(probe_status(Some(200)), "active");
        assert_eq!(probe_status(Some(404)), "not_found");
        assert_eq!(probe_status(None), "unreachable");
        assert_eq!(probe_status(Some(429)), "error");
        assert_eq!(probe_status(Some(503)), "error");
    }
}
