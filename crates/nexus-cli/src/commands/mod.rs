//! The commands, one module per group, and the context they share.
//!
//! A command is thin: resolve the session (alias → validated id), choose the server (routing and
//! provenance), make its requests through [`crate::client`], update [`crate::state`], and return an
//! [`Outcome`] or a [`Failure`]. Human notes go through [`Ui`]; stdout is printed once by `main`.

pub mod alias;
pub mod config;
pub mod daemon;
pub mod leave;
pub mod pair;
pub mod poll;
pub mod send;
pub mod session;

use serde_json::Value;

use crate::cli::{Cli, Command, Global};
use crate::client::{CAPS_TIMEOUT, Http, Request};
use crate::output::{CmdResult, Failure, Ui, short};
use crate::server::{Resolver, Server, Source};
use crate::state::{Home, SessionFile, Sid};

/// What every command gets.
pub struct Ctx {
    pub global: Global,
    pub ui: Ui,
    pub home: Home,
    pub http: Http,
    pub resolver: Resolver,
}

impl Ctx {
    pub fn new(global: Global) -> Result<Self, Failure> {
        let ui = Ui {
            quiet: global.quiet,
        };
        let home = Home::locate()?;
        home.tighten_permissions();
        let resolver = Resolver {
            flag: global.url.clone(),
            env: std::env::var("NEXUS_URL").ok(),
            config: home.config_server_url(),
        };
        Ok(Self {
            global,
            ui,
            home,
            http: Http::from_env()?,
            resolver,
        })
    }

    /// The effective server, announced on stderr (divergence warning, then provenance).
    pub fn effective(&self) -> Server {
        let server = self.resolver.effective();
        if let Some(w) = self.resolver.divergence_warning() {
            self.ui.line(w);
        }
        self.ui.line(server.provenance());
        server
    }

    /// The server of a session command: its binding unless `--url`, announced on stderr.
    pub fn route(&self, sid: &Sid) -> Server {
        let binding = self.home.read(sid, SessionFile::Server);
        let (server, note) = self.resolver.route(sid.as_str(), binding.as_deref());
        if let Some(w) = self.resolver.divergence_warning() {
            self.ui.line(w);
        }
        if let Some(n) = note {
            self.ui.line(n);
        }
        self.ui.line(server.provenance());
        server
    }

    /// Trust on first use: after a successful session command, binds a local session that has
    /// no binding yet to the server that answered.
    pub fn adopt(&self, sid: &Sid, server: &Server) {
        if self.home.session_exists(sid)
            && self.home.read(sid, SessionFile::Server).is_none()
            && self
                .home
                .write(sid, SessionFile::Server, &server.url)
                .is_ok()
        {
            self.ui.line(format!(
                "ℹ️  adopted binding: {}… → {} (first successful use)",
                short(sid.as_str()),
                server.url
            ));
        }
    }

    /// Resolves a session argument (alias or id).
    pub fn sid(&self, input: &str) -> Result<Sid, Failure> {
        self.home.resolve(input)
    }

    /// `--agent-id`, required (join, claim).
    pub fn required_agent(&self) -> Result<String, Failure> {
        match self.global.agent_id.as_deref() {
            Some(a) if !a.is_empty() => validate_agent(a),
            _ => Err(Failure::msg("missing --agent-id")),
        }
    }

    /// `--agent-id`, else the saved one (send, poll, renew, leave, daemons). Never creates the
    /// session folder.
    pub fn session_agent(&self, sid: &Sid) -> Result<String, Failure> {
        match self.global.agent_id.as_deref().filter(|a| !a.is_empty()) {
            Some(a) => validate_agent(a),
            None => match self.home.read(sid, SessionFile::Agent) {
                Some(a) => validate_agent(&a),
                None => Err(Failure::msg(
                    "missing --agent-id and no persisted agent-id found",
                )),
            },
        }
    }

    /// Saves the state of an acquired session: folder, server binding, agent, key.
    pub fn save_acquired(
        &self,
        sid: &Sid,
        server: &Server,
        agent: &str,
        key: Option<&str>,
    ) -> Result<(), Failure> {
        if let Some(old) = self.home.read(sid, SessionFile::Server)
            && old != server.url
        {
            self.ui.line(format!(
                "⚠️  session {}… was bound to {old} — now bound to {}",
                short(sid.as_str()),
                server.url
            ));
        }
        self.home.create_session_dir(sid)?;
        self.home.write(sid, SessionFile::Server, &server.url)?;
        self.home.write(sid, SessionFile::Agent, agent)?;
        if let Some(k) = key.filter(|k| !k.is_empty()) {
            self.home.write(sid, SessionFile::Key, k)?;
        }
        Ok(())
    }

    /// The formats a server accepts for messages, from `/health` `capabilities.messageFormat`
    /// (cached 5 minutes per server). A failed probe or a missing list means text only and is
    /// not cached.
    pub async fn capabilities(&self, server: &Server) -> Option<Value> {
        if let Some(c) = self.home.cached_caps(&server.url) {
            return Some(c);
        }
        let reply = self
            .http
            .call(Request::get(format!("{}/health", server.base())).timeout(CAPS_TIMEOUT))
            .await
            .ok()?;
        let caps = reply.get("capabilities")?.clone();
        let formats_known = caps
            .get("messageFormat")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if formats_known {
            let _ = self.home.store_caps(&server.url, &caps);
        }
        Some(caps)
    }
}

/// Checks an agent id locally (it becomes a header and a path segment).
pub fn validate_agent(a: &str) -> Result<String, Failure> {
    nexus_proto::AgentId::parse(a)
        .map(|id| id.as_str().to_owned())
        .map_err(|e| Failure::coded("invalid_agent_id", e.to_string()))
}

/// Runs the parsed command line. `help`, `completions` and `mcp` are handled by `main`.
pub async fn run(cli: Cli) -> CmdResult {
    let Some(command) = cli.command else {
        return Ok(crate::output::Outcome::nothing());
    };
    let ctx = Ctx::new(cli.global)?;
    match command {
        Command::Create => session::create(&ctx).await,
        Command::Status { sid } => session::status(&ctx, &sid).await,
        Command::Join { sid } => session::join(&ctx, &sid).await,
        Command::Renew { sid } => session::renew(&ctx, &sid).await,
        Command::Leave { sid } => leave::leave(&ctx, &sid).await,
        Command::Pair { sid } => pair::pair(&ctx, &sid).await,
        Command::Claim { code } => pair::claim(&ctx, &code).await,
        Command::PairStatus { code } => pair::pair_status(&ctx, &code).await,
        Command::Send {
            sid,
            text,
            json,
            strict,
        } => send::send(&ctx, &sid, text, json, strict).await,
        Command::Poll { sid, wait } => poll::poll(&ctx, &sid, wait).await,
        Command::PollAll { active, .. } => poll::poll_all(&ctx, active).await,
        Command::Alias { sid, name } => alias::alias(&ctx, &sid, &name),
        Command::Unalias { name } => alias::unalias(&ctx, &name),
        Command::Ls { active, json } => alias::ls(&ctx, active, json).await,
        Command::Config { action, value } => config::config(&ctx, action, value),
        Command::Bind { sid } => config::bind(&ctx, &sid).await,
        Command::Doctor => config::doctor(&ctx).await,
        Command::PollDaemon { sid, yes } => daemon::poll_daemon(&ctx, &sid, yes).await,
        Command::Heartbeat { sid } => daemon::heartbeat(&ctx, &sid).await,
        Command::PollStatus => daemon::poll_status(&ctx),
        // `help`, `completions` and `mcp` are handled by `main`.
        Command::Help { .. } | Command::Completions { .. } | Command::Mcp => {
            Ok(crate::output::Outcome::nothing())
        }
    }
}

/// `Source::PairingUrl` servers are built here so `pair.rs` stays small.
pub fn pairing_server(url: &str) -> Server {
    Server {
        url: crate::server::normalize(url),
        source: Source::PairingUrl,
    }
}

/// Runs futures concurrently on the current task and returns their outputs in order (a small
/// `join_all`, for probing or polling many sessions at once).
pub async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
