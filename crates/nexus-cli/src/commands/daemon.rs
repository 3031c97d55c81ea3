//! `poll-daemon`, `heartbeat` and `poll-status` (SPEC §3 "Daemons fix the upstream bugs").
//!
//! A daemon polls one session in the foreground and delivers, never just counts:
//! - every message is one JSON line on stdout: `{"type":"message","sessionId":…,"message":{…}}`;
//!   a gap the server reports (`truncated`) is a `{"type":"gap",…}` line; the last line is
//!   `{"type":"stopped","reason":…}` (`ttl_elapsed`, `signal`, `session_not_found`, `cancelled`);
//! - the cursor is saved (atomically) after each batch has been written and flushed, so a restart
//!   neither loses nor repeats messages; a closed stdout stops the daemon before saving;
//! - it long-polls (`wait`) when `/health` advertises `capabilities.longPoll`, else sleeps
//!   `--interval` between polls;
//! - it renews the session before it expires (threshold max(3×interval, 120 s), at most half the
//!   TTL), and retries a failed renewal after 4 intervals;
//! - on errors it backs off exponentially (1 s doubling, capped at 60 s, with jitter, at least
//!   `Retry-After`); on `agent_not_in_session` (removed for inactivity) it rejoins with its agent
//!   id; on `session_not_found` it prints the final line and exits 1;
//! - `poll-daemon` asks for confirmation only when stdin is a terminal and `--yes` is absent;
//! - it holds an exclusive lock on `daemons/<SID>.lock` (which records its PID), so a second
//!   daemon for the same session is refused and `poll-status` lists only live daemons.

use std::fs;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::Ctx;
use super::poll::{After, PollSpec, next_cursor, poll_once};
use crate::client::{Request, checked};
use crate::output::{CmdResult, Failure, Outcome, Ui, stdout_line};
use crate::server::Server;
use crate::state::{Home, SessionFile, Sid, create_private_dir};

/// Longest pause between attempts after errors.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// Which daemon is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    PollDaemon,
    Heartbeat,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Self::PollDaemon => "poll-daemon",
            Self::Heartbeat => "heartbeat",
        }
    }
}

/// The pause after `errors` consecutive failures (≥ 1): 1 s doubling up to [`BACKOFF_CAP`],
/// scaled by `jitter` in [0.5, 1.0], and never shorter than the server's `Retry-After`.
pub fn backoff(errors: u32, jitter: f64, retry_after: Option<u64>) -> Duration {
    let exp = 2u64.saturating_pow(errors.saturating_sub(1).min(16));
    let base = Duration::from_secs(exp).min(BACKOFF_CAP);
    let d = base.mul_f64(jitter.clamp(0.5, 1.0));
    d.max(Duration::from_secs(retry_after.unwrap_or(0)))
}

/// A jitter factor in [0.5, 1.0).
pub fn jitter() -> f64 {
    let r = getrandom::u32().unwrap_or(u32::MAX / 2);
    0.5 + f64::from(r) / f64::from(u32::MAX) / 2.0
}

/// Whether to renew now: unknown expiry, or within `threshold` of it.
pub fn needs_renew(now_ms: u64, expires_at_ms: Option<u64>, threshold: Duration) -> bool {
    match expires_at_ms {
        None => true,
        Some(exp) => now_ms.saturating_add(threshold.as_millis() as u64) >= exp,
    }
}

/// The renewal threshold: max(3×interval, 120 s), but at most half the session TTL.
pub fn renew_threshold(interval: Duration, ttl: Option<u64>) -> Duration {
    let t = (interval * 3).max(Duration::from_secs(120));
    match ttl {
        Some(ttl) => t.min(Duration::from_secs(ttl / 2)),
        None => t,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn stamp() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The exclusive lock a running daemon holds; the file is removed when the daemon ends.
pub struct DaemonLock {
    _file: fs::File,
    path: PathBuf,
}

impl DaemonLock {
    fn path(home: &Home, sid: &Sid) -> PathBuf {
        home.daemons_dir().join(format!("{sid}.lock"))
    }

    /// Takes the lock of `sid` and records `info` in it, or fails when a daemon already runs.
    pub fn acquire(home: &Home, sid: &Sid, info: &Value) -> Result<Self, Failure> {
        create_private_dir(&home.daemons_dir())
            .map_err(|e| Failure::io("cannot create daemons folder", &e))?;
        let path = Self::path(home, sid);
        let mut opts = fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(&path)
            .map_err(|e| Failure::io("cannot open daemon lock", &e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder: Value = fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Value::Null);
                return Err(Failure::from_value(&json!({
                    "error": "daemon_already_running",
                    "message": format!("a daemon already polls session {sid}"),
                    "daemon": holder,
                })));
            }
            Err(fs::TryLockError::Error(e)) => return Err(Failure::io("cannot lock", &e)),
        }
        // The lock is ours: record who holds it (the file is rewritten in place, lock kept).
        file.set_len(0)
            .and_then(|()| {
                use std::io::Write;
                (&file).write_all(format!("{info}\n").as_bytes())
            })
            .map_err(|e| Failure::io("cannot write daemon lock", &e))?;
        Ok(Self { _file: file, path })
    }
}

impl Drop for DaemonLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Resolves when Ctrl-C or SIGTERM arrives (never, if signals cannot be installed).
/// Ctrl-C or SIGTERM. The handlers are installed when this is called (not when first awaited), so
/// a signal that arrives while the daemon is still starting up is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        async fn recv(s: Option<Signal>) {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            tokio::select! {
                () = recv(term) => {}
                () = recv(int) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The final line after Ctrl-C or SIGTERM.
fn stopped_by_signal(ui: Ui, mode: Mode, sid: &Sid) -> CmdResult {
    ui.note(match mode {
        Mode::PollDaemon => "Polling daemon stopped.",
        Mode::Heartbeat => "Heartbeat stopped.",
    });
    stopped(sid, "signal", None, 0)
}

/// Writes one NDJSON line; `false` when stdout is gone.
fn emit(v: &Value) -> bool {
    stdout_line(&v.to_string()).is_ok()
}

fn stopped(sid: &Sid, reason: &str, extra: Option<Value>, exit: u8) -> CmdResult {
    let mut line = json!({ "type": "stopped", "sessionId": sid.as_str(), "reason": reason });
    if let Some(e) = extra {
        line["error"] = e;
    }
    emit(&line);
    Ok(Outcome::nothing().with_exit(exit))
}

/// `nexus poll-daemon <SID> [--interval N] [--ttl N] [--yes]`
pub async fn poll_daemon(ctx: &Ctx, input: &str, yes: bool) -> CmdResult {
    let sid = ctx.sid(input)?;
    let server = ctx.route(&sid);
    let agent = ctx.session_agent(&sid)?;
    let interval = ctx.global.interval.unwrap_or(30).max(1);
    let ttl = ctx.global.ttl.unwrap_or(3600);
    if !yes && std::io::stdin().is_terminal() {
        eprintln!("Should I poll for messages every {interval}s for the next {ttl}s? (y/n)");
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y") {
            ctx.ui.line("Polling daemon cancelled.");
            return stopped(&sid, "cancelled", None, 0);
        }
    }
    ctx.ui.line("Starting polling daemon...");
    ctx.ui.line(format!("Session: {sid}"));
    ctx.ui.line(format!("Interval: {interval}s"));
    ctx.ui.line(format!("TTL: {ttl}s"));
    ctx.ui.line("Press Ctrl+C to stop");
    run(
        ctx,
        &sid,
        &server,
        &agent,
        Mode::PollDaemon,
        interval,
        Some(ttl),
    )
    .await
}

/// `nexus heartbeat <SID> [--interval N]`
pub async fn heartbeat(ctx: &Ctx, input: &str) -> CmdResult {
    let sid = ctx.sid(input)?;
    let server = ctx.route(&sid);
    let agent = ctx.session_agent(&sid)?;
    let interval = ctx.global.interval.unwrap_or(60).max(1);
    ctx.ui.line("Starting heartbeat polling...");
    ctx.ui.line(format!("Session: {sid}"));
    ctx.ui.line(format!("Interval: {interval}s"));
    ctx.ui.line("Press Ctrl+C to stop");
    run(ctx, &sid, &server, &agent, Mode::Heartbeat, interval, None).await
}

/// The shared loop.
async fn run(
    ctx: &Ctx,
    sid: &Sid,
    server: &Server,
    agent: &str,
    mode: Mode,
    interval: u64,
    run_for: Option<u64>,
) -> CmdResult {
    let info = json!({
        "pid": std::process::id(),
        "sessionId": sid.as_str(),
        "mode": mode.label(),
        "agentId": agent,
        "server": server.url,
        "interval": interval,
        "startedAt": stamp(),
    });
    let _lock = DaemonLock::acquire(&ctx.home, sid, &info)?;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let ui = ctx.ui;
    let quiet = Ui { quiet: true };
    let interval_d = Duration::from_secs(interval);
    let caps = tokio::select! {
        caps = ctx.capabilities(server) => caps,
        () = &mut stop => return stopped_by_signal(ui, mode, sid),
    };
    let long_poll = caps
        .as_ref()
        .and_then(|c| c.get("longPoll"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let max_wait = caps
        .as_ref()
        .and_then(|c| c.get("maxWaitSeconds"))
        .and_then(Value::as_u64)
        .filter(|w| *w > 0)
        .unwrap_or(60)
        .min(60);
    let wait = long_poll.then(|| interval.min(max_wait));
    let started = Instant::now();

    let mut cursor: Option<String> = match ctx.global.after.as_deref() {
        Some("0") => None,
        Some(c) => Some(c.to_owned()),
        None => ctx.home.read(sid, SessionFile::Cursor),
    };
    let mut errors: u32 = 0;
    // The cursor a gap was last reported after: a server that lost messages keeps saying
    // `truncated` for the same cursor until a newer message arrives, but one gap is one line.
    let mut gap_reported_after: Option<Option<String>> = None;
    let mut expires_at: Option<u64> = None;
    let mut session_ttl: Option<u64> = None;
    let mut next_renew_try = Instant::now();

    loop {
        if let Some(limit) = run_for
            && started.elapsed() >= Duration::from_secs(limit)
        {
            ui.line(format!("{} - TTL expired, stopping poll daemon", stamp()));
            return stopped(sid, "ttl_elapsed", None, 0);
        }

        // Renew before expiry.
        if Instant::now() >= next_renew_try
            && needs_renew(
                now_ms(),
                expires_at,
                renew_threshold(interval_d, session_ttl),
            )
        {
            let req = Request::post(format!("{}/v1/sessions/{sid}/renew", server.base()))
                .header("X-Agent-Id", agent)
                .json(json!({}));
            let renewed = tokio::select! {
                r = ctx.http.call(req) => r,
                () = &mut stop => return stopped_by_signal(ui, mode, sid),
            };
            match checked(renewed, &quiet) {
                Ok(r) => {
                    expires_at = r
                        .str_field("expiresAt")
                        .and_then(nexus_proto::time::parse_rfc3339);
                    session_ttl = r.get("ttl").and_then(Value::as_u64);
                    if expires_at.is_none() {
                        next_renew_try = Instant::now() + interval_d * 4;
                    }
                }
                Err(f) if f.code().as_deref() == Some("session_not_found") => {
                    ui.line(format!("{} - session not found, stopping", stamp()));
                    return stopped(
                        sid,
                        "session_not_found",
                        serde_json::from_str(&f.stdout).ok(),
                        1,
                    );
                }
                Err(f) => {
                    ui.line(format!(
                        "{} - renewal failed ({}), will retry later",
                        stamp(),
                        f.code().unwrap_or_default()
                    ));
                    next_renew_try = Instant::now() + interval_d * 4;
                }
            }
        }

        if mode == Mode::Heartbeat {
            ui.line(format!("{} - Polling...", stamp()));
        }
        let spec = PollSpec {
            after: match &cursor {
                Some(c) => After::Explicit(c.clone()),
                None => After::Replay,
            },
            members: false,
            wait,
        };
        let asked = Instant::now();
        let result = tokio::select! {
            r = poll_once(ctx, &quiet, sid, server, agent, &spec) => r,
            () = &mut stop => return stopped_by_signal(ui, mode, sid),
        };
        let pause = match result {
            Ok(reply) => {
                errors = 0;
                if reply.get("truncated") == Some(&Value::Bool(true))
                    && gap_reported_after.as_ref() != Some(&cursor)
                {
                    if !emit(&json!({"type": "gap", "sessionId": sid.as_str(), "after": cursor})) {
                        return Ok(Outcome::nothing());
                    }
                    gap_reported_after = Some(cursor.clone());
                }
                let msgs = reply
                    .get("messages")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for m in &msgs {
                    let line = json!({"type": "message", "sessionId": sid.as_str(), "message": m});
                    if !emit(&line) {
                        // Nobody reads us any more: stop before saving the cursor.
                        return Ok(Outcome::nothing());
                    }
                }
                if let Some(next) = next_cursor(&reply) {
                    if ctx.home.session_exists(sid) {
                        ctx.home.write(sid, SessionFile::Cursor, &next)?;
                    }
                    cursor = Some(next);
                }
                if !msgs.is_empty() {
                    ui.line(format!("{} - Poll: {} new message(s)", stamp(), msgs.len()));
                    Duration::ZERO
                } else {
                    // A long-poll already waited; a server that ignores `wait` answers at once.
                    interval_d.saturating_sub(asked.elapsed())
                }
            }
            Err(f) => match f.code().as_deref() {
                Some("session_not_found") => {
                    ui.line(format!("{} - session not found, stopping", stamp()));
                    return stopped(
                        sid,
                        "session_not_found",
                        serde_json::from_str(&f.stdout).ok(),
                        1,
                    );
                }
                Some("agent_not_in_session") => {
                    let req = Request::post(format!("{}/v1/sessions/{sid}/join", server.base()))
                        .header("X-Agent-Id", agent);
                    match checked(ctx.http.call(req).await, &quiet) {
                        Ok(r) => {
                            ui.line(format!("{} - rejoined the session as {agent}", stamp()));
                            if let Some(k) = r.str_field("sessionKey")
                                && ctx.home.session_exists(sid)
                            {
                                ctx.home.write(sid, SessionFile::Key, k)?;
                            }
                            errors = 0;
                            Duration::ZERO
                        }
                        Err(j) if j.code().as_deref() == Some("session_not_found") => {
                            return stopped(
                                sid,
                                "session_not_found",
                                serde_json::from_str(&j.stdout).ok(),
                                1,
                            );
                        }
                        Err(j) => {
                            errors += 1;
                            let d = backoff(errors, jitter(), j.retry_after);
                            ui.line(format!(
                                "{} - rejoin failed ({}), retrying in {}s",
                                stamp(),
                                j.code().unwrap_or_default(),
                                d.as_secs()
                            ));
                            d
                        }
                    }
                }
                _ => {
                    errors += 1;
                    let code = f.code();
                    let code = code.as_deref();
                    let d = backoff(errors, jitter(), f.retry_after);
                    ui.line(format!(
                        "{} - poll failed ({}), retrying in {:.1}s",
                        stamp(),
                        code.unwrap_or("unknown"),
                        d.as_secs_f64()
                    ));
                    d
                }
            },
        };
        if !pause.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = &mut stop => return stopped_by_signal(ui, mode, sid),
            }
        }
    }
}

/// `nexus poll-status`: the live daemons, from their lock files (stale files are removed).
pub fn poll_status(ctx: &Ctx) -> CmdResult {
    let mut daemons = Vec::new();
    if let Ok(entries) = fs::read_dir(ctx.home.daemons_dir()) {
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "lock"))
            .collect();
        paths.sort();
        for path in paths {
            let Ok(file) = fs::File::open(&path) else {
                continue;
            };
            match file.try_lock_shared() {
                Ok(()) => {
                    // Nobody holds it: the daemon died without cleaning up.
                    let _ = fs::remove_file(&path);
                }
                Err(fs::TryLockError::WouldBlock) => {
                    let mut info: Value = fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| serde_json::from_str(&t).ok())
                        .unwrap_or_else(|| json!({}));
                    if let Some(sid) = info
                        .get("sessionId")
                        .and_then(Value::as_str)
                        .and_then(Sid::parse)
                    {
                        info["alias"] = json!(ctx.home.alias_of(&sid));
                        info["cursor"] = json!(ctx.home.read(&sid, SessionFile::Cursor));
                        let modified = fs::metadata(ctx.home.file_path(&sid, SessionFile::Cursor))
                            .and_then(|m| m.modified())
                            .ok()
                            .map(|t| humantime::format_rfc3339_seconds(t).to_string());
                        info["cursorSavedAt"] = json!(modified);
                    }
                    daemons.push(info);
                }
                Err(fs::TryLockError::Error(_)) => {}
            }
        }
    }
    ctx.ui.line("Active polling processes:");
    if daemons.is_empty() {
        ctx.ui.line("No active polling processes found.");
    }
    for d in &daemons {
        ctx.ui.line(format!(
            "  pid {} — {} {} (cursor {})",
            d["pid"],
            d["mode"].as_str().unwrap_or("?"),
            d["sessionId"].as_str().unwrap_or("?"),
            d["cursor"].as_str().unwrap_or("none")
        ));
    }
    Ok(Outcome::compact(json!({ "daemons": daemons })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_respects_retry_after() {
        assert_eq!(backoff(1, 1.0, None), Duration::from_secs(1));
        assert_eq!(backoff(2, 1.0, None), Duration::from_secs(2));
        assert_eq!(backoff(4, 1.0, None), Duration::from_secs(8));
        assert_eq!(backoff(30, 1.0, None), BACKOFF_CAP);
        assert_eq!(backoff(3, 0.5, None), Duration::from_secs(2));
        assert_eq!(backoff(1, 1.0, Some(30)), Duration::from_secs(30));
        let j = jitter();
        assert!((0.5..=1.0).contains(&j));
    }

    #[test]
    fn renewal_timing() {
        let t = renew_threshold(Duration::from_secs(30), Some(3660));
        assert_eq!(t, Duration::from_secs(120));
        assert_eq!(
            renew_threshold(Duration::from_secs(60), None),
            Duration::from_secs(180)
        );
        assert_eq!(
            renew_threshold(Duration::from_secs(30), Some(60)),
            Duration::from_secs(30)
        );
        assert!(needs_renew(0, None, t));
        assert!(!needs_renew(1_000, Some(1_000_000), t));
        assert!(needs_renew(1_000_000 - 100_000, Some(1_000_000), t));
    }

    #[test]
    fn lock_is_exclusive_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_path_buf());
        let sid = Sid::parse("abc").unwrap();
        let lock = DaemonLock::acquire(&home, &sid, &json!({"pid": 1})).unwrap();
        let second = DaemonLock::acquire(&home, &sid, &json!({"pid": 2}));
        assert_eq!(
            second.err().and_then(|f| f.code()).as_deref(),
            Some("daemon_already_running")
        );
        drop(lock);
        assert!(!DaemonLock::path(&home, &sid).exists());
        assert!(DaemonLock::acquire(&home, &sid, &json!({"pid": 3})).is_ok());
    }
}
