//! Who `nexus mcp` speaks as (issue 8): the agent id, from `--agent-id`, else `NEXUS_AGENT_ID`,
//! else `agentId` in `config.json`, first non-empty one wins.
//!
//! The flag and the environment are fixed when the server starts; `config.json` is read again on
//! every call, so editing it takes effect without a restart. The id is checked against the
//! protocol's pattern (SPEC §1 "Agent") before it is used as a header or a path segment. A session
//! that already has a saved agent (`sessions/<SID>/agent`) keeps speaking as that agent, because
//! its saved key belongs to it; this identity is for creating, joining and claiming.

use super::errors::ToolError;
use crate::state::Home;

/// Where the agent id came from (named in error hints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentSource {
    Flag,
    Env,
    Config,
}

impl AgentSource {
    pub fn label(self) -> &'static str {
        match self {
            Self::Flag => "--agent-id",
            Self::Env => "NEXUS_AGENT_ID",
            Self::Config => "agentId in config.json",
        }
    }
}

/// The fixed inputs of the agent id.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub flag: Option<String>,
    pub env: Option<String>,
}

impl Identity {
    /// The raw configured id and its source, by precedence (not yet validated).
    pub fn configured(&self, config: Option<String>) -> Option<(String, AgentSource)> {
        let nonempty = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        nonempty(&self.flag)
            .map(|a| (a, AgentSource::Flag))
            .or_else(|| nonempty(&self.env).map(|a| (a, AgentSource::Env)))
            .or_else(|| nonempty(&config).map(|a| (a, AgentSource::Config)))
    }

    /// The validated agent id, or the tool error that says how to configure one.
    pub fn agent(&self, home: &Home) -> Result<String, ToolError> {
        let Some((raw, source)) = self.configured(home.config_agent_id()) else {
            return Err(ToolError::missing_agent_id(home));
        };
        nexus_proto::AgentId::parse(&raw)
            .map(|id| id.as_str().to_owned())
            .map_err(|e| ToolError::invalid_agent_id(source, &e.to_string()))
    }

    /// A one-line description for the start-up line on stderr.
    pub fn describe(&self, home: &Home) -> String {
        match self.configured(home.config_agent_id()) {
            Some((id, source)) => format!("agent {id} ({})", source.label()),
            None => "no agent id (set --agent-id, NEXUS_AGENT_ID or agentId in config.json)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(flag: Option<&str>, env: Option<&str>) -> Identity {
        Identity {
            flag: flag.map(str::to_owned),
            env: env.map(str::to_owned),
        }
    }

    #[test]
    fn precedence_flag_env_config() {
        let cfg = || Some("from-config".to_owned());
        assert_eq!(
            ident(Some("f"), Some("e")).configured(cfg()),
            Some(("f".into(), AgentSource::Flag))
        );
        assert_eq!(
            ident(None, Some("e")).configured(cfg()),
            Some(("e".into(), AgentSource::Env))
        );
        assert_eq!(
            ident(Some("  "), Some("")).configured(cfg()),
            Some(("from-config".into(), AgentSource::Config)),
            "empty values do not count"
        );
        assert_eq!(ident(None, None).configured(None), None);
    }

    #[test]
    fn missing_and_invalid_ids_are_tool_errors() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_path_buf());
        let missing = ident(None, None).agent(&home).unwrap_err();
        assert_eq!(missing.code, "missing_agent_id");
        assert!(missing.hint.contains("NEXUS_AGENT_ID"));
        let bad = ident(Some("a/b"), None).agent(&home).unwrap_err();
        assert_eq!(bad.code, "invalid_agent_id");
        assert!(bad.hint.contains("--agent-id"));
        assert_eq!(ident(Some("bot.1"), None).agent(&home).unwrap(), "bot.1");
    }
}
