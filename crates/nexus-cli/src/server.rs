//! Which server a command talks to (SPEC §3 "Server URL", inventory §1.3).
//!
//! Precedence: `--url` > `NEXUS_URL` > `config.json` `serverUrl` > `https://messaging.md`.
//! A session bound to a server (`sessions/<SID>/server`) is routed there by the session commands;
//! only `--url` overrides a binding (the environment does not: a 48-hex session id lives on exactly
//! one server, so following the binding can only turn a miss into a hit). URLs are normalised
//! before they are stored or compared: one trailing `/` stripped, scheme and authority lowercased,
//! path kept, default ports not folded.

/// The built-in server.
pub const DEFAULT_URL: &str = "https://messaging.md";

/// Where the server URL came from; the label is printed in the provenance line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    Config,
    Default,
    Binding,
    PairingUrl,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Self::Flag => "--url",
            Self::Env => "env NEXUS_URL",
            Self::Config => "config",
            Self::Default => "default",
            Self::Binding => "session binding",
            Self::PairingUrl => "pairing URL",
        }
    }
}

/// A chosen server: normalised URL and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub url: String,
    pub source: Source,
}

impl Server {
    /// `→ server: <host[:port]> (<source>)`.
    pub fn provenance(&self) -> String {
        format!("→ server: {} ({})", host_of(&self.url), self.source.label())
    }

    /// The base URL for requests: a scheme-less URL gets `http://`, as curl would assume.
    pub fn base(&self) -> String {
        request_base(&self.url)
    }
}

/// Normalises a server URL for storage and comparison.
pub fn normalize(url: &str) -> String {
    let url = url.trim();
    let url = url.strip_suffix('/').unwrap_or(url);
    match url.find("://") {
        Some(i) => {
            let scheme = url[..i].to_ascii_lowercase();
            let rest = &url[i + 3..];
            let (auth, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            format!("{scheme}://{}{path}", auth.to_ascii_lowercase())
        }
        None => {
            let (auth, path) = url.split_at(url.find('/').unwrap_or(url.len()));
            format!("{}{path}", auth.to_ascii_lowercase())
        }
    }
}

/// The URL with its scheme and path removed: `host[:port]`.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// `http(s)://` followed by a host: what `config set-url` accepts.
pub fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or("");
        !host.is_empty() && !host.contains(char::is_whitespace)
    })
}

/// The base for requests: adds `http://` to a scheme-less URL.
pub fn request_base(url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

/// The ambient inputs of server selection.
#[derive(Clone, Debug, Default)]
pub struct Resolver {
    pub flag: Option<String>,
    pub env: Option<String>,
    pub config: Option<String>,
}

impl Resolver {
    /// The effective server, by precedence.
    pub fn effective(&self) -> Server {
        fn nonempty(s: &Option<String>) -> Option<&str> {
            s.as_deref().filter(|s| !s.trim().is_empty())
        }
        let (url, source) = if let Some(u) = nonempty(&self.flag) {
            (u, Source::Flag)
        } else if let Some(u) = nonempty(&self.env) {
            (u, Source::Env)
        } else if let Some(u) = nonempty(&self.config) {
            (u, Source::Config)
        } else {
            (DEFAULT_URL, Source::Default)
        };
        Server {
            url: normalize(url),
            source,
        }
    }

    /// The warning printed when `--url` or the environment differs from the configured server.
    pub fn divergence_warning(&self) -> Option<String> {
        let eff = self.effective();
        let cfg = self.config.as_deref().filter(|s| !s.is_empty())?;
        let cfg = normalize(cfg);
        (matches!(eff.source, Source::Flag | Source::Env) && eff.url != cfg).then(|| {
            format!(
                "⚠️  server override: using {} ({}) — configured server is {cfg}",
                eff.url,
                eff.source.label()
            )
        })
    }

    /// Routes a session command given the session's binding: returns the server and the warning
    /// or note to print, if any.
    pub fn route(&self, sid: &str, binding: Option<&str>) -> (Server, Option<String>) {
        let eff = self.effective();
        let Some(bound) = binding.map(normalize).filter(|b| !b.is_empty()) else {
            return (eff, None);
        };
        let differs = bound != eff.url;
        let short = crate::output::short(sid);
        if eff.source == Source::Flag {
            let warn = differs.then(|| {
                format!(
                    "⚠️  session {short}… is bound to {bound} — using {} (--url overrides the binding)",
                    eff.url
                )
            });
            return (eff, warn);
        }
        let note = differs.then(|| {
            if eff.source == Source::Default {
                format!(
                    "ℹ️  using session's bound server {bound} (ambient would have used {} via default)",
                    eff.url
                )
            } else {
                format!(
                    "⚠️  session {short}… is bound to {bound} — overriding {} ({})",
                    eff.url,
                    eff.source.label()
                )
            }
        });
        (
            Server {
                url: bound,
                source: Source::Binding,
            },
            note,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_matches_the_bash_client() {
        assert_eq!(normalize("HTTPS://Example.COM/"), "https://example.com");
        assert_eq!(
            normalize("http://A.b:8080/Path/X/"),
            "http://a.b:8080/Path/X"
        );
        assert_eq!(normalize("Messaging.MD/Api"), "messaging.md/Api");
        assert_eq!(normalize("https://h:443"), "https://h:443");
        assert_eq!(normalize("https://h//"), "https://h/");
        assert_eq!(host_of("https://h.io:81/x/y"), "h.io:81");
        assert_eq!(host_of("h.io/x"), "h.io");
        assert_eq!(request_base("h.io"), "http://h.io");
    }

    #[test]
    fn set_url_validation() {
        assert!(is_http_url("http://localhost:3000"));
        assert!(is_http_url("HTTPS://x.y/z"));
        for bad in ["ftp://x", "http://", "x.y", "https:///path", "http://a b"] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }

    #[test]
    fn precedence_and_divergence() {
        let mut r = Resolver::default();
        assert_eq!(r.effective().url, DEFAULT_URL);
        assert_eq!(r.effective().source, Source::Default);
        r.config = Some("http://cfg/".into());
        assert_eq!(r.effective().url, "http://cfg");
        assert_eq!(r.divergence_warning(), None);
        r.env = Some("http://ENV".into());
        assert_eq!(
            r.effective(),
            Server {
                url: "http://env".into(),
                source: Source::Env
            }
        );
        assert!(
            r.divergence_warning()
                .unwrap()
                .contains("configured server is http://cfg")
        );
        r.flag = Some("http://flag".into());
        assert_eq!(r.effective().source, Source::Flag);
        assert_eq!(r.effective().provenance(), "→ server: flag (--url)");
    }

    #[test]
    fn routing_follows_the_binding_unless_url_flag() {
        let sid = "0123456789abcdef";
        let r = Resolver {
            env: Some("http://env".into()),
            ..Default::default()
        };
        let (s, warn) = r.route(sid, Some("http://bound/"));
        assert_eq!(
            s,
            Server {
                url: "http://bound".into(),
                source: Source::Binding
            }
        );
        assert!(
            warn.unwrap()
                .contains("overriding http://env (env NEXUS_URL)")
        );
        let (s, warn) = r.route(sid, Some("http://ENV"));
        assert_eq!(s.source, Source::Binding);
        assert_eq!(warn, None);
        let r = Resolver::default();
        let (_, note) = r.route(sid, Some("http://bound"));
        assert!(
            note.unwrap()
                .starts_with("ℹ️  using session's bound server")
        );
        let r = Resolver {
            flag: Some("http://flag".into()),
            ..Default::default()
        };
        let (s, warn) = r.route(sid, Some("http://bound"));
        assert_eq!(s.url, "http://flag");
        assert!(
            warn.unwrap()
                .contains("0123456789ab… is bound to http://bound")
        );
        let (s, warn) = r.route(sid, None);
        assert_eq!((s.source, warn), (Source::Flag, None));
    }
}
