//! What one `nexus mcp` process shares between its tools, resources and watchers, and how a call
//! becomes a CLI [`Ctx`] (issue 8: "reuses the CLI's client, server selection and local state").
//!
//! Every call gets a fresh `Ctx` over the same home folder and HTTP client, with `config.json`
//! read again, so a server or agent id configured with `nexus config` while the MCP server runs is
//! used at once — exactly as a `nexus` command started at that moment would. Server selection is
//! the CLI's (SPEC §3 "Server URL": `--url` > `NEXUS_URL` > config > default; session bindings
//! route session commands). A session's agent is the one saved with it (its key belongs to that
//! agent), else this server's configured identity. Polls that move the saved cursor are
//! serialised per session so two concurrent calls can neither skip nor repeat messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cli::Global;
use crate::client::Http;
use crate::commands::{Ctx, validate_agent};
use crate::output::{Failure, Ui};
use crate::server::{Resolver, Server};
use crate::state::{Home, SessionFile, Sid};

use super::errors::ToolError;
use super::identity::Identity;

/// The process-wide state.
pub struct Shared {
    pub home: Home,
    pub http: Http,
    pub identity: Identity,
    /// `--url`, fixed at start.
    url_flag: Option<String>,
    /// `NEXUS_URL`, fixed at start.
    url_env: Option<String>,
    /// One async lock per session for polls that move the saved cursor.
    cursor_locks: Mutex<HashMap<Sid, Arc<tokio::sync::Mutex<()>>>>,
    /// Fired when the set of local sessions changes (create, join, claim, leave), for
    /// `notifications/resources/list_changed`.
    pub list_changed: tokio::sync::broadcast::Sender<()>,
}

/// A session argument resolved: id, the server to ask and the agent to ask as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRef {
    pub sid: Sid,
    pub server: Server,
    pub agent: String,
}

impl Shared {
    /// From the global flags of `nexus mcp` and the environment.
    pub fn new(global: &Global) -> Result<Self, Failure> {
        let home = Home::locate()?;
        home.tighten_permissions();
        Ok(Self {
            home,
            http: Http::from_env()?,
            identity: Identity {
                flag: global.agent_id.clone(),
                env: std::env::var("NEXUS_AGENT_ID").ok(),
            },
            url_flag: global.url.clone(),
            url_env: std::env::var("NEXUS_URL").ok(),
            cursor_locks: Mutex::new(HashMap::new()),
            list_changed: tokio::sync::broadcast::channel(16).0,
        })
    }

    /// Server selection as the CLI does it, with `config.json` read now.
    pub fn resolver(&self) -> Resolver {
        Resolver {
            flag: self.url_flag.clone(),
            env: self.url_env.clone(),
            config: self.home.config_server_url(),
        }
    }

    /// A quiet CLI context for one call; the caller sets the command's flags on `global`.
    pub fn ctx(&self) -> Ctx {
        Ctx {
            global: Global {
                url: self.url_flag.clone(),
                quiet: true,
                ..Global::default()
            },
            ui: Ui { quiet: true },
            home: self.home.clone(),
            http: self.http.clone(),
            resolver: self.resolver(),
        }
    }

    /// This server's own agent id (create, join, claim).
    pub fn agent(&self) -> Result<String, ToolError> {
        self.identity.agent(&self.home)
    }

    /// Resolves a session argument (id or alias) to its id, server and agent, and returns a
    /// context whose `--agent-id` is that agent.
    pub fn session(&self, input: &str) -> Result<(Ctx, SessionRef), ToolError> {
        let sid = self
            .home
            .resolve(input)
            .map_err(|f| ToolError::from_failure(&f))?;
        let agent = match self.home.read(&sid, SessionFile::Agent) {
            Some(saved) => validate_agent(&saved).map_err(|f| ToolError::from_failure(&f))?,
            None => self.agent()?,
        };
        let mut ctx = self.ctx();
        let binding = self.home.read(&sid, SessionFile::Server);
        let (server, _) = ctx.resolver.route(sid.as_str(), binding.as_deref());
        ctx.global.agent_id = Some(agent.clone());
        Ok((ctx, SessionRef { sid, server, agent }))
    }

    /// Every session key saved locally (for scrubbing results).
    pub fn known_keys(&self) -> Vec<String> {
        self.home
            .sessions()
            .iter()
            .filter_map(|sid| self.home.read(sid, SessionFile::Key))
            .collect()
    }

    /// Holds the cursor of `sid` until the guard is dropped.
    pub async fn cursor_guard(&self, sid: &Sid) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .cursor_locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(locks.entry(sid.clone()).or_default())
        };
        lock.lock_owned().await
    }

    /// Tells resource listeners that the set of local sessions changed.
    pub fn sessions_changed(&self) {
        // No receiver is fine: nobody listens.
        let _ = self.list_changed.send(());
    }
}

#[cfg(test)]
impl Shared {
    /// A state over `home` with fixed inputs, for unit tests.
    pub fn for_tests(home: Home, agent: Option<&str>, url: Option<&str>) -> Self {
        Self {
            home,
            http: Http::from_env().expect("http client"),
            identity: Identity {
                flag: agent.map(str::to_owned),
                env: None,
            },
            url_flag: url.map(str::to_owned),
            url_env: None,
            cursor_locks: Mutex::new(HashMap::new()),
            list_changed: tokio::sync::broadcast::channel(16).0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(agent: Option<&str>) -> (tempfile::TempDir, Shared) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("messaging"));
        (dir, Shared::for_tests(home, agent, None))
    }

    #[test]
    fn a_saved_agent_wins_over_the_configured_identity() {
        let (_t, s) = shared(Some("me"));
        let sid = Sid::parse("abc").unwrap();
        s.home.create_session_dir(&sid).unwrap();
        s.home.write(&sid, SessionFile::Agent, "old-me").unwrap();
        s.home
            .write(&sid, SessionFile::Server, "http://bound:1")
            .unwrap();
        let (ctx, r) = s.session("abc").unwrap();
        assert_eq!(r.agent, "old-me");
        assert_eq!(ctx.global.agent_id.as_deref(), Some("old-me"));
        assert_eq!(r.server.url, "http://bound:1", "the binding routes");
        let (_, r) = s.session("def").unwrap();
        assert_eq!(r.agent, "me", "unknown locally: the configured identity");
    }

    #[test]
    fn resolution_errors_are_tool_errors() {
        let (_t, s) = shared(None);
        let code = |input: &str| s.session(input).err().map(|e| e.code);
        assert_eq!(code("a/b").as_deref(), Some("invalid_session_id"));
        assert_eq!(code("abc").as_deref(), Some("missing_agent_id"));
    }

    #[test]
    fn known_keys_come_from_the_session_files() {
        let (_t, s) = shared(None);
        for (sid, key) in [("s1", "k1"), ("s2", "k2")] {
            let sid = Sid::parse(sid).unwrap();
            s.home.create_session_dir(&sid).unwrap();
            s.home.write(&sid, SessionFile::Key, key).unwrap();
        }
        assert_eq!(s.known_keys(), ["k1", "k2"]);
    }
}
