//! Local state (SPEC §3 "Local state"): everything `nexus` keeps on disk, in the same layout as
//! `nexus.sh` so both clients can share one home folder.
//!
//! ```text
//! $NEXUS_HOME or ~/.config/messaging/
//!   sessions/<SID>/{agent,key,cursor,server}   one line each, trimmed on read
//!   aliases.json                                {"name": "<SID>", ...}
//!   server-caps.json                            {"servers": {"<url>": {"capabilities", "fetchedAt"}}}
//!   config.json                                 {"serverUrl", "updatedAt", "agentId"?}
//!   daemons/<SID>.lock                          lock/PID file of a running poll-daemon/heartbeat
//! ```
//!
//! Rules enforced here: directories are 0700 and files 0600; every write goes to a temporary file
//! in the same directory and is renamed into place (atomic); session ids and alias targets are
//! validated ([`Sid`]) before they become path components; a session directory is created only by
//! the commands that acquire a session (create, join, claim, bind), never as a side effect of a
//! lookup (no ghost directories).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::output::Failure;

/// How long a `/health` capability answer stays fresh.
pub const CAPS_TTL_SECONDS: u64 = 300;

/// A session id that is safe to use as a path component and a URL segment:
/// 1 to 128 characters of `[A-Za-z0-9_-]`. (A relay speaking the protocol issues 48 lowercase hex
/// characters; the looser check keeps `nexus` usable with other servers while ruling out `/`, `..`
/// and everything else that could escape the sessions folder.)
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sid(String);

impl Sid {
    pub fn parse(s: &str) -> Option<Self> {
        let ok = (1..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The per-session files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionFile {
    Agent,
    Key,
    Cursor,
    Server,
}

impl SessionFile {
    fn name(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Key => "key",
            Self::Cursor => "cursor",
            Self::Server => "server",
        }
    }
}

/// The root of the local state.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `$NEXUS_HOME` if set and non-empty, else `$HOME/.config/messaging`.
    pub fn locate() -> Result<Self, Failure> {
        if let Some(h) = std::env::var_os("NEXUS_HOME").filter(|h| !h.is_empty()) {
            return Ok(Self::at(PathBuf::from(h)));
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Ok(Self::at(PathBuf::from(h).join(".config").join("messaging"))),
            None => Err(Failure::coded(
                "local_state_error",
                "neither NEXUS_HOME nor HOME is set",
            )),
        }
    }

    pub fn at(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }

    fn sessions_dir(&self) -> PathBuf {
        self.root.join("sessions")
    }

    pub fn session_dir(&self, sid: &Sid) -> PathBuf {
        self.sessions_dir().join(sid.as_str())
    }

    pub fn daemons_dir(&self) -> PathBuf {
        self.root.join("daemons")
    }

    /// Best-effort: removes group/other permissions under the home folder, as `nexus.sh` does on
    /// every run ("session keys are credentials"), so files written by other tools are tightened.
    pub fn tighten_permissions(&self) {
        #[cfg(unix)]
        fn walk(p: &Path, depth: usize) {
            use std::os::unix::fs::PermissionsExt;
            let Ok(meta) = fs::symlink_metadata(p) else {
                return;
            };
            if meta.file_type().is_symlink() {
                return;
            }
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                let _ = fs::set_permissions(p, fs::Permissions::from_mode(mode & !0o077));
            }
            if meta.is_dir()
                && depth < 4
                && let Ok(entries) = fs::read_dir(p)
            {
                for e in entries.flatten() {
                    walk(&e.path(), depth + 1);
                }
            }
        }
        #[cfg(unix)]
        walk(&self.root, 0);
    }

    // -- sessions ---------------------------------------------------------------------------

    pub fn session_exists(&self, sid: &Sid) -> bool {
        self.session_dir(sid).is_dir()
    }

    /// Creates `sessions/<SID>/` (and its parents) with mode 0700. Only acquisition commands call
    /// this.
    pub fn create_session_dir(&self, sid: &Sid) -> Result<(), Failure> {
        create_private_dir(&self.session_dir(sid))
            .map_err(|e| Failure::io("cannot create session folder", &e))
    }

    /// Reads a session file, trimmed; `None` when missing, unreadable or empty.
    pub fn read(&self, sid: &Sid, file: SessionFile) -> Option<String> {
        let text = fs::read_to_string(self.session_dir(sid).join(file.name())).ok()?;
        let t = text.trim();
        (!t.is_empty()).then(|| t.to_owned())
    }

    /// Writes a session file (value + newline) atomically. The session folder must exist: this
    /// never creates one (no ghost directories).
    pub fn write(&self, sid: &Sid, file: SessionFile, value: &str) -> Result<(), Failure> {
        let dir = self.session_dir(sid);
        if !dir.is_dir() {
            return Err(Failure::coded(
                "local_state_error",
                format!("session folder for {sid} does not exist"),
            ));
        }
        write_atomic(&dir.join(file.name()), format!("{value}\n").as_bytes())
            .map_err(|e| Failure::io(&format!("cannot write {}", file.name()), &e))
    }

    pub fn file_path(&self, sid: &Sid, file: SessionFile) -> PathBuf {
        self.session_dir(sid).join(file.name())
    }

    /// Removes `sessions/<SID>/` and every alias that points at it.
    pub fn forget_session(&self, sid: &Sid) -> Result<Vec<String>, Failure> {
        let dir = self.session_dir(sid);
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .map_err(|e| Failure::io("cannot remove session folder", &e))?;
        }
        let mut aliases = self.aliases();
        let removed: Vec<String> = aliases
            .iter()
            .filter(|(_, v)| v.as_str() == sid.as_str())
            .map(|(k, _)| k.clone())
            .collect();
        if !removed.is_empty() {
            for k in &removed {
                aliases.remove(k);
            }
            self.save_aliases(&aliases)?;
        }
        Ok(removed)
    }

    /// Every local session, sorted by id. Folders whose name is not a valid id are skipped.
    pub fn sessions(&self) -> Vec<Sid> {
        let Ok(entries) = fs::read_dir(self.sessions_dir()) else {
            return Vec::new();
        };
        let mut out: Vec<Sid> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| Sid::parse(&e.file_name().to_string_lossy()))
            .collect();
        out.sort();
        out
    }

    pub fn has_sessions_dir(&self) -> bool {
        self.sessions_dir().is_dir()
    }

    // -- aliases ----------------------------------------------------------------------------

    /// The alias map; an absent or unreadable file is empty (as in `nexus.sh`). Non-string values
    /// are ignored.
    pub fn aliases(&self) -> BTreeMap<String, String> {
        let Some(Value::Object(map)) = read_json(&self.root.join("aliases.json")) else {
            return BTreeMap::new();
        };
        map.into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
            .collect()
    }

    pub fn aliases_file_exists(&self) -> bool {
        self.root.join("aliases.json").is_file()
    }

    pub fn save_aliases(&self, aliases: &BTreeMap<String, String>) -> Result<(), Failure> {
        let map: Map<String, Value> = aliases
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        self.write_root_json("aliases.json", &Value::Object(map))
    }

    /// The first alias (in name order) pointing at `sid`.
    pub fn alias_of(&self, sid: &Sid) -> Option<String> {
        self.aliases()
            .into_iter()
            .find(|(_, v)| v == sid.as_str())
            .map(|(k, _)| k)
    }

    /// Resolves a session argument: an alias name if `aliases.json` has exactly that key, else the
    /// argument itself; either way the result must be a valid [`Sid`].
    pub fn resolve(&self, input: &str) -> Result<Sid, Failure> {
        let aliases = self.aliases();
        let target = aliases.get(input).map(String::as_str).unwrap_or(input);
        Sid::parse(target).ok_or_else(|| {
            Failure::coded(
                "invalid_session_id",
                format!("not a session id or alias: {target:?}"),
            )
        })
    }

    // -- config -----------------------------------------------------------------------------

    /// `config.json` as an object (missing or unparsable: empty).
    pub fn config(&self) -> Map<String, Value> {
        match read_json(&self.config_path()) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    pub fn config_server_url(&self) -> Option<String> {
        self.config()
            .get("serverUrl")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// `agentId` in `config.json`: the identity `nexus mcp` uses when neither `--agent-id` nor
    /// `NEXUS_AGENT_ID` is given (the other commands do not read it).
    pub fn config_agent_id(&self) -> Option<String> {
        self.config()
            .get("agentId")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    pub fn save_config(&self, config: Map<String, Value>) -> Result<(), Failure> {
        self.write_root_json("config.json", &Value::Object(config))
    }

    // -- capability cache -------------------------------------------------------------------

    /// Fresh cached capabilities of `server` (normalised URL), if any.
    pub fn cached_caps(&self, server: &str) -> Option<Value> {
        let v = read_json(&self.root.join("server-caps.json"))?;
        let entry = v.get("servers")?.get(server)?;
        let fetched = entry.get("fetchedAt")?.as_u64()?;
        let now = unix_now();
        (now >= fetched && now - fetched < CAPS_TTL_SECONDS)
            .then(|| entry.get("capabilities").cloned())
            .flatten()
    }

    /// Stores `capabilities` for `server`, dropping stale entries of other servers.
    pub fn store_caps(&self, server: &str, capabilities: &Value) -> Result<(), Failure> {
        let now = unix_now();
        let mut servers = match read_json(&self.root.join("server-caps.json"))
            .and_then(|v| v.get("servers").cloned())
        {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        servers.retain(|_, e| {
            e.get("fetchedAt")
                .and_then(Value::as_u64)
                .is_some_and(|t| now.saturating_sub(t) < CAPS_TTL_SECONDS)
        });
        servers.insert(
            server.to_owned(),
            json!({ "capabilities": capabilities, "fetchedAt": now }),
        );
        self.write_root_json("server-caps.json", &json!({ "servers": servers }))
    }

    // -- helpers ----------------------------------------------------------------------------

    fn write_root_json(&self, name: &str, v: &Value) -> Result<(), Failure> {
        create_private_dir(&self.root).map_err(|e| Failure::io("cannot create home folder", &e))?;
        let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
        write_atomic(&self.root.join(name), format!("{text}\n").as_bytes())
            .map_err(|e| Failure::io(&format!("cannot write {name}"), &e))
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

/// `mkdir -p` with mode 0700 on every folder it creates (and on the leaf even if it existed).
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(path)
    }
}

/// Writes `bytes` to a 0600 temporary file next to `path`, syncs it and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut rnd = [0u8; 6];
    let _ = getrandom::fill(&mut rnd);
    let suffix: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{name}.{suffix}.tmp"));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("messaging"));
        (dir, home)
    }

    #[test]
    fn sid_validation_rejects_path_tricks() {
        assert!(Sid::parse(&"a".repeat(48)).is_some());
        assert!(Sid::parse("abc-DEF_123").is_some());
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a b",
            "a.b",
            "é",
            &"a".repeat(129),
        ] {
            assert!(Sid::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn files_and_dirs_are_private_and_written_atomically() {
        let (_t, home) = home();
        let sid = Sid::parse("abc").unwrap();
        assert!(
            home.write(&sid, SessionFile::Agent, "me").is_err(),
            "no ghost dir"
        );
        assert!(!home.session_dir(&sid).exists());
        home.create_session_dir(&sid).unwrap();
        home.write(&sid, SessionFile::Agent, "me").unwrap();
        home.write(&sid, SessionFile::Agent, "me2").unwrap();
        assert_eq!(home.read(&sid, SessionFile::Agent).as_deref(), Some("me2"));
        assert_eq!(
            fs::read_to_string(home.file_path(&sid, SessionFile::Agent)).unwrap(),
            "me2\n"
        );
        assert_eq!(home.read(&sid, SessionFile::Key), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(home.root()), 0o700);
            assert_eq!(mode(&home.session_dir(&sid)), 0o700);
            assert_eq!(mode(&home.file_path(&sid, SessionFile::Agent)), 0o600);
        }
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(home.session_dir(&sid))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["agent"]);
    }

    #[test]
    fn reads_are_trimmed_like_the_plugin_writes_them() {
        let (_t, home) = home();
        let sid = Sid::parse("abc").unwrap();
        home.create_session_dir(&sid).unwrap();
        fs::write(home.file_path(&sid, SessionFile::Agent), "bot  \n\n").unwrap();
        assert_eq!(home.read(&sid, SessionFile::Agent).as_deref(), Some("bot"));
    }

    #[test]
    fn alias_resolution_and_forgetting_removes_every_alias() {
        let (_t, home) = home();
        let sid = Sid::parse("s1").unwrap();
        home.create_session_dir(&sid).unwrap();
        let mut a = BTreeMap::new();
        a.insert("one".to_owned(), "s1".to_owned());
        a.insert("two".to_owned(), "s1".to_owned());
        a.insert("other".to_owned(), "s2".to_owned());
        a.insert("evil".to_owned(), "../../etc".to_owned());
        home.save_aliases(&a).unwrap();
        assert_eq!(home.resolve("one").unwrap(), sid);
        assert_eq!(home.resolve("s9").unwrap().as_str(), "s9");
        assert_eq!(
            home.resolve("evil").unwrap_err().code().as_deref(),
            Some("invalid_session_id")
        );
        assert_eq!(home.alias_of(&sid).as_deref(), Some("one"));
        let removed = home.forget_session(&sid).unwrap();
        assert_eq!(removed, ["one", "two"]);
        assert!(!home.session_dir(&sid).exists());
        assert_eq!(home.aliases().len(), 2);
    }

    #[test]
    fn aliases_accept_compact_and_pretty_files() {
        let (_t, home) = home();
        create_private_dir(home.root()).unwrap();
        fs::write(home.root().join("aliases.json"), "{\"a\":\"s1\"}").unwrap();
        assert_eq!(home.aliases().get("a").map(String::as_str), Some("s1"));
        fs::write(
            home.root().join("aliases.json"),
            "{\n  \"a\": \"s1\",\n  \"b\": 5\n}\n",
        )
        .unwrap();
        assert_eq!(home.aliases().len(), 1);
        fs::write(home.root().join("aliases.json"), "garbage").unwrap();
        assert!(home.aliases().is_empty());
    }

    #[test]
    fn config_agent_id_is_read_trimmed_and_optional() {
        let (_t, home) = home();
        assert_eq!(home.config_agent_id(), None);
        let mut cfg = Map::new();
        cfg.insert("agentId".into(), json!(" bob "));
        home.save_config(cfg).unwrap();
        assert_eq!(home.config_agent_id().as_deref(), Some("bob"));
        let mut cfg = Map::new();
        cfg.insert("agentId".into(), json!(7));
        home.save_config(cfg).unwrap();
        assert_eq!(home.config_agent_id(), None);
    }

    #[test]
    fn capability_cache_is_keyed_per_server_and_expires() {
        let (_t, home) = home();
        home.store_caps("http://a", &json!({"messageFormat": ["text", "json"]}))
            .unwrap();
        assert!(home.cached_caps("http://a").is_some());
        assert!(home.cached_caps("http://b").is_none());
        // An old entry is stale.
        let stale =
            json!({"servers": {"http://b": {"capabilities": {}, "fetchedAt": unix_now() - 301}}});
        fs::write(home.root().join("server-caps.json"), stale.to_string()).unwrap();
        assert!(home.cached_caps("http://b").is_none());
        // The bash client's global format is ignored, not misread.
        let bash = json!({"capabilities": {"messageFormat": ["text"]}, "fetchedAt": unix_now()});
        fs::write(home.root().join("server-caps.json"), bash.to_string()).unwrap();
        assert!(home.cached_caps("http://a").is_none());
    }
}
