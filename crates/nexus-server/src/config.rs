//! Every setting of SPEC §2 "Configuration", each an environment variable and a kebab-case flag
//! (the flag wins), with the SPEC's defaults, plus `REDIS_URL` (issue 7: the Redis backend).
//! `nexus-server --help` lists them all.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use clap::builder::BoolishValueParser;
use ipnet::IpNet;

/// The NexusMessaging relay. Every option can also be set by the environment variable shown.
#[derive(Parser, Clone, Debug)]
#[command(name = "nexus-server", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free port; the address is printed on stdout).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// Public base URL used in pairing links and skill documents [default: http://HOST:PORT].
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Folder for session metadata (created if missing). Messages never touch disk.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Longest session TTL a client may ask for, in seconds.
    #[arg(long, env = "MAX_TTL_SECONDS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_ttl_seconds: u64,

    /// Most agents a session may hold.
    #[arg(long, env = "MAX_AGENTS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_agents: u64,

    /// Remove non-creator agents silent for this many seconds (0 = never).
    #[arg(long, env = "AGENT_INACTIVITY_SECONDS", default_value_t = 0)]
    pub agent_inactivity_seconds: u64,

    /// Lifetime of a pairing code, in seconds.
    #[arg(long, env = "PAIR_CODE_TTL_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub pair_code_ttl_seconds: u64,

    /// Requests per client IP per 60 s window (0 = no limit).
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE", default_value_t = 100)]
    pub rate_limit_per_minute: u64,

    /// Comma-separated CIDRs (or addresses) of reverse proxies whose X-Forwarded-For is believed.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,

    /// Failed pairing claims allowed per client IP per minute.
    #[arg(long, env = "CLAIM_FAILURES_PER_MINUTE", default_value_t = 10)]
    pub claim_failures_per_minute: u64,

    /// Failed pairing claims allowed server-wide per minute.
    #[arg(long, env = "CLAIM_FAILURES_GLOBAL_PER_MINUTE", default_value_t = 1000)]
    pub claim_failures_global_per_minute: u64,

    /// Refuse sends without X-Session-Key (1) instead of marking them unverified (0).
    #[arg(long, env = "REQUIRE_SESSION_KEY", default_value = "0", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, hide_possible_values = true)]
    pub require_session_key: bool,

    /// Largest request body in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 65_536)]
    pub max_body_bytes: usize,

    /// Most unexpired messages one session may hold.
    #[arg(long, env = "MAX_MESSAGES_PER_SESSION", default_value_t = 10_000)]
    pub max_messages_per_session: u64,

    /// Most active sessions on this server.
    #[arg(long, env = "MAX_SESSIONS", default_value_t = 100_000)]
    pub max_sessions: u64,

    /// Most open client connections; past it, new connections are closed at once.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,

    /// Most long-polls parked at once; past it, polls that would wait answer 503 `server_busy`.
    #[arg(long, env = "MAX_WAITERS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_waiters: u64,

    /// Seconds a client has to send a request's headers (and an idle connection is kept open);
    /// slower connections are closed (slowloris).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_seconds: u64,

    /// Keep everything in this Redis (or Valkey) instead of DATA_DIR, so several relay nodes can
    /// serve one set of sessions: redis://[user:password@]host:port[/db]. Unset: the embedded
    /// store.
    #[arg(long, env = "REDIS_URL", value_parser = RedisUrl::parse)]
    pub redis_url: Option<RedisUrl>,

    /// Log filter (tracing env-filter syntax: error, warn, info, debug, trace).
    #[arg(long, env = "LOG", default_value = "info")]
    pub log: String,

    /// PEM certificate chain; with --tls-key, serve HTTPS.
    #[arg(long, env = "TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key; with --tls-cert, serve HTTPS.
    #[arg(long, env = "TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// `REDIS_URL`. Its `Debug` form hides it: it may carry a password.
#[derive(Clone, PartialEq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Takes any value: checking happens at start-up ([`RedisUrl::check`]), because clap's own
    /// error for a rejected value would print it, password included.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(Self(s.trim().to_owned()))
    }

    /// Accepts `redis://…` and `unix://…` (a socket path); the error never repeats the value.
    pub fn check(&self) -> Result<(), String> {
        if ["redis://", "unix://", "redis+unix://"]
            .iter()
            .any(|scheme| self.0.starts_with(scheme))
        {
            Ok(())
        } else {
            Err("REDIS_URL must start with redis:// (or unix:// for a socket)".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(..)")
    }
}

/// The networks of `TRUSTED_PROXIES`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8, 192.168.1.7,::1`: CIDRs or single addresses, comma-separated.
    pub fn parse(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{p:?} is not a CIDR (10.0.0.0/8) or an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl Config {
    /// Defaults, as if started with no flags and no environment (for tests and embedding).
    pub fn defaults() -> Self {
        Self::parse_from_defaults()
    }

    fn parse_from_defaults() -> Self {
        Config {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 3000,
            public_url: None,
            data_dir: PathBuf::from("./data"),
            max_ttl_seconds: 86_400,
            max_agents: 50,
            agent_inactivity_seconds: 0,
            pair_code_ttl_seconds: 600,
            rate_limit_per_minute: 100,
            trusted_proxies: TrustedProxies::default(),
            claim_failures_per_minute: 10,
            claim_failures_global_per_minute: 1000,
            require_session_key: false,
            max_body_bytes: 65_536,
            max_messages_per_session: 10_000,
            max_sessions: 100_000,
            max_connections: 10_000,
            max_waiters: 5_000,
            header_read_timeout_seconds: 10,
            redis_url: None,
            log: "info".to_owned(),
            tls_cert: None,
            tls_key: None,
        }
    }

    /// The public base URL without a trailing slash; `port` is the port actually bound.
    pub fn public_base(&self, port: u16) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                match self.host {
                    IpAddr::V6(h) => format!("{scheme}://[{h}]:{port}"),
                    IpAddr::V4(h) => format!("{scheme}://{h}:{port}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_match_the_hand_written_defaults() {
        Config::command().debug_assert();
        let parsed = Config::try_parse_from(["nexus-server"]).unwrap();
        let defaults = Config::defaults();
        // Environment variables of the test process could change `parsed`; compare what CI controls.
        assert_eq!(parsed.max_agents, defaults.max_agents);
        assert_eq!(parsed.pair_code_ttl_seconds, defaults.pair_code_ttl_seconds);
        assert_eq!(parsed.max_body_bytes, defaults.max_body_bytes);
        assert_eq!(parsed.max_connections, defaults.max_connections);
        assert_eq!(parsed.max_waiters, defaults.max_waiters);
        assert_eq!(
            parsed.header_read_timeout_seconds,
            defaults.header_read_timeout_seconds
        );
    }

    #[test]
    fn flags_override_and_booleans_accept_0_and_1() {
        let c =
            Config::try_parse_from(["nexus-server", "--port", "0", "--require-session-key", "1"])
                .unwrap();
        assert_eq!(c.port, 0);
        assert!(c.require_session_key);
        assert!(Config::try_parse_from(["nexus-server", "--max-agents", "0"]).is_err());
        assert!(Config::try_parse_from(["nexus-server", "--tls-cert", "c.pem"]).is_err());
        assert_eq!(c.public_base(4000), "http://127.0.0.1:4000");
        let t = Config::try_parse_from(["nexus-server", "--trusted-proxies", "10.0.0.0/8, ::1"])
            .unwrap();
        assert!(t.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        assert!(t.trusted_proxies.contains("::1".parse().unwrap()));
        assert!(!t.trusted_proxies.contains("11.0.0.1".parse().unwrap()));
        assert!(Config::try_parse_from(["nexus-server", "--trusted-proxies", "nope"]).is_err());
    }

    #[test]
    fn redis_url_is_checked_and_never_shown() {
        let c = Config::try_parse_from([
            "nexus-server",
            "--redis-url",
            "redis://:hunter2@127.0.0.1:6379/0",
        ])
        .unwrap();
        let url = c.redis_url.as_ref().unwrap();
        assert_eq!(url.as_str(), "redis://:hunter2@127.0.0.1:6379/0");
        assert!(url.check().is_ok());
        assert!(!format!("{c:?}").contains("hunter2"));
        let bad = RedisUrl::parse("http://:hunter2@x").unwrap();
        let err = bad.check().unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(Config::defaults().redis_url.is_none());
    }
}
