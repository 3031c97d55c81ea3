//! Every flag and command of `nexus`, defined once with clap derive (SPEC §3): parsing, `--help`
//! (each command with an example) and shell completions come from these definitions.
//!
//! The nine global flags of `nexus.sh` (`--url`, `--agent-id`, `--ttl`, `--after`, `--greeting`,
//! `--interval`, `--max-agents`, `--creator-agent-id`, `--members`) and `--quiet` are `global`, so
//! they are accepted before or after the command, as the bash client's single pass accepted them.
//! Unlike the bash client, message text is never taken for a flag: after `--` everything is text,
//! and [`with_send_text`] makes `send` words that start with `-` but are not one of its flags
//! (`- item`, `-5`, `--not-a-flag`) text too, as `nexus.sh` took them.

use std::collections::HashMap;
use std::ffi::OsString;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// Rewrites a `send` command line so that clap sees every word that is not one of `send`'s flags
/// (or a global flag) as message text: known flags (and their values) stay in front, the session
/// id and text words go behind `--`. Other commands pass through unchanged.
pub fn with_send_text(args: Vec<OsString>) -> Vec<OsString> {
    let root = Cli::command();
    let Some(send) = root.find_subcommand("send") else {
        return args;
    };
    // Flag spelling → whether it takes a value.
    let mut flags: HashMap<String, bool> = HashMap::new();
    for arg in root.get_arguments().chain(send.get_arguments()) {
        let takes_value = arg.get_action().takes_values();
        if let Some(long) = arg.get_long() {
            flags.insert(format!("--{long}"), takes_value);
        }
        if let Some(short) = arg.get_short() {
            flags.insert(format!("-{short}"), takes_value);
        }
    }
    flags.insert("--help".into(), false);
    flags.insert("-h".into(), false);
    let known = |t: &str| -> Option<bool> {
        match t.split_once('=') {
            Some((name, _)) if name.starts_with("--") => flags.get(name).map(|_| false),
            _ => flags.get(t).copied(),
        }
    };
    let mut iter = args.into_iter();
    let mut out: Vec<OsString> = iter.next().into_iter().collect();
    // Up to and including the command word.
    loop {
        let Some(token) = iter.next() else {
            return out;
        };
        let text = token.to_str().map(str::to_owned);
        out.push(token);
        match text.as_deref() {
            Some(t) if t.starts_with('-') && t != "-" => {
                if known(t) == Some(true)
                    && let Some(value) = iter.next()
                {
                    out.push(value);
                }
            }
            Some("send") => break,
            _ => return out.into_iter().chain(iter).collect(),
        }
    }
    let mut words = Vec::new();
    while let Some(token) = iter.next() {
        match token.to_str() {
            Some("--") => {
                words.extend(iter.by_ref());
                break;
            }
            Some(t) if t.starts_with('-') && t != "-" && known(t).is_some() => {
                let takes_value = known(t) == Some(true);
                out.push(token);
                if takes_value && let Some(value) = iter.next() {
                    out.push(value);
                }
            }
            _ => words.push(token),
        }
    }
    if !words.is_empty() {
        out.push("--".into());
        out.extend(words);
    }
    out
}

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "nexus",
    version,
    about = "Messaging between AI agents over a NexusMessaging relay. JSON on stdout, human notes on stderr.",
    after_help = "Examples:\n  nexus create --creator-agent-id alice --greeting 'Hi!'\n  nexus pair <SID>\n  nexus claim WORD-WORD-XXXXX --agent-id bob\n  nexus send <SID> 'hello'\n  nexus poll <SID> --wait 30",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags accepted anywhere on the command line.
#[derive(Debug, Clone, Default, Args)]
pub struct Global {
    /// Server URL (overrides NEXUS_URL, config and session bindings).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "Global options"
    )]
    pub url: Option<String>,
    /// Agent id (join, claim; overrides the saved one elsewhere; creator on create).
    #[arg(
        long,
        global = true,
        value_name = "ID",
        help_heading = "Global options"
    )]
    pub agent_id: Option<String>,
    /// Session TTL in seconds (create, renew); run time in seconds (poll-daemon).
    #[arg(long, global = true, value_name = "N", help_heading = "Global options")]
    pub ttl: Option<u64>,
    /// Poll after this cursor (exclusive); `0` replays everything. The saved cursor is not moved.
    #[arg(
        long,
        global = true,
        value_name = "CURSOR",
        help_heading = "Global options"
    )]
    pub after: Option<String>,
    /// Greeting message of a new session (create).
    #[arg(
        long,
        global = true,
        value_name = "TEXT",
        help_heading = "Global options"
    )]
    pub greeting: Option<String>,
    /// Seconds between polls (poll-daemon: 30, heartbeat: 60).
    #[arg(long, global = true, value_name = "N", help_heading = "Global options")]
    pub interval: Option<u64>,
    /// Maximum agents in a new session (create).
    #[arg(long, global = true, value_name = "N", help_heading = "Global options")]
    pub max_agents: Option<u64>,
    /// Creator agent id of a new session (create): joined at once, key saved.
    #[arg(
        long,
        global = true,
        value_name = "ID",
        help_heading = "Global options"
    )]
    pub creator_agent_id: Option<String>,
    /// Include member presence (poll, poll-all).
    #[arg(long, global = true, help_heading = "Global options")]
    pub members: bool,
    /// Print nothing on stderr.
    #[arg(long, short = 'q', global = true, help_heading = "Global options")]
    pub quiet: bool,
}

/// Shells for `completions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a session. With a creator id, the creator is joined and its key saved.
    #[command(
        after_help = "Example:\n  nexus create --ttl 7200 --creator-agent-id alice --greeting 'Welcome!'"
    )]
    Create,
    /// Show a session's status (public).
    #[command(after_help = "Example:\n  nexus status 3f2a…  (or an alias: nexus status review)")]
    Status { sid: String },
    /// Join a session; saves agent id, key and server.
    #[command(after_help = "Example:\n  nexus join <SID> --agent-id bob")]
    Join { sid: String },
    /// Leave a session and clean local state when the server confirms it.
    #[command(after_help = "Example:\n  nexus leave <SID>")]
    Leave { sid: String },
    /// Create a pairing code and link for a session.
    #[command(after_help = "Example:\n  nexus pair <SID>")]
    Pair { sid: String },
    /// Claim a pairing code (or a pairing URL): joins the session and saves its state.
    #[command(
        after_help = "Examples:\n  nexus claim PEARL-FOCAL-S5SJV --agent-id bob\n  nexus claim https://messaging.md/p/PEARL-FOCAL-S5SJV --agent-id bob"
    )]
    Claim { code: String },
    /// Show a pairing code's state: pending, claimed or expired.
    #[command(after_help = "Example:\n  nexus pair-status PEARL-FOCAL-S5SJV")]
    PairStatus { code: String },
    /// Send a message: TEXT words, `-` or piped stdin for text, `--json` for structured data.
    #[command(
        after_help = "Examples:\n  nexus send <SID> 'Got it, here are my notes'\n  nexus send <SID> -- '--this is text, not a flag'\n  printf 'line 1\\nline 2' | nexus send <SID>\n  nexus send <SID> 'Q3 report' --json '{\"quarter\":\"Q3\"}' --strict"
    )]
    Send {
        sid: String,
        /// Message text (words are joined with single spaces); `-` reads stdin. Words that start
        /// with `-` but are not flags of `send` are text; after `--` every word is text.
        text: Vec<String>,
        /// A JSON payload (any JSON value but null).
        #[arg(long, value_name = "PAYLOAD", allow_hyphen_values = true)]
        json: Option<String>,
        /// Fail instead of falling back to text when the server lacks JSON messages.
        #[arg(long)]
        strict: bool,
    },
    /// Poll messages; without --after, uses and advances the saved cursor.
    #[command(
        after_help = "Examples:\n  nexus poll <SID>\n  nexus poll <SID> --wait 30 --members\n  nexus poll <SID> --after 0   (replay; the saved cursor is not moved)"
    )]
    Poll {
        sid: String,
        /// Long-poll: hold the request up to S seconds (0-60) until a message arrives.
        #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(0..=60))]
        wait: Option<u64>,
    },
    /// Extend a session's expiry.
    #[command(after_help = "Example:\n  nexus renew <SID> --ttl 7200")]
    Renew { sid: String },
    /// Name a local session.
    #[command(after_help = "Example:\n  nexus alias <SID> review")]
    Alias { sid: String, name: String },
    /// Remove an alias (the session stays).
    #[command(after_help = "Example:\n  nexus unalias review")]
    Unalias { name: String },
    /// List local sessions with their live status.
    #[command(after_help = "Example:\n  nexus ls --active")]
    Ls {
        /// Keep only active and unreachable sessions.
        #[arg(long)]
        active: bool,
        /// JSON only (no table on stderr even on a terminal).
        #[arg(long)]
        json: bool,
    },
    /// Poll every local session (advancing each saved cursor).
    #[command(name = "poll-all", after_help = "Example:\n  nexus poll-all --members")]
    PollAll {
        /// Leave out sessions the server no longer knows or refuses.
        #[arg(long)]
        active: bool,
        /// Accepted for symmetry with ls; output is always JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show or change the configured server: set-url URL | show | unset.
    #[command(
        after_help = "Examples:\n  nexus config set-url https://relay.example.com\n  nexus config show\n  nexus config unset"
    )]
    Config {
        /// set-url, show (default) or unset.
        action: Option<String>,
        /// The URL for set-url.
        value: Option<String>,
    },
    /// Bind a session to the effective server after checking it exists there.
    #[command(after_help = "Example:\n  nexus bind <SID> --url https://relay.example.com")]
    Bind { sid: String },
    /// Check servers, bindings, memberships and key file permissions.
    #[command(after_help = "Example:\n  nexus doctor")]
    Doctor,
    /// Poll one session in the foreground, one JSON line per message on stdout.
    #[command(
        name = "poll-daemon",
        after_help = "Example:\n  nexus poll-daemon <SID> --interval 30 --ttl 3600 --yes >> messages.ndjson"
    )]
    PollDaemon {
        sid: String,
        /// Do not ask for confirmation (never asked when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Poll one session forever (no run time limit), one JSON line per message on stdout.
    #[command(after_help = "Example:\n  nexus heartbeat <SID> --interval 60")]
    Heartbeat { sid: String },
    /// List the running poll-daemon/heartbeat processes (JSON).
    #[command(name = "poll-status", after_help = "Example:\n  nexus poll-status")]
    PollStatus,
    /// Serve the relay as MCP tools and resources on stdin/stdout, for MCP clients (Claude Code,
    /// Claude Desktop, Cursor…). Uses the same local state as the other commands.
    #[command(
        after_help = "The agent id comes from --agent-id, NEXUS_AGENT_ID or \"agentId\" in config.json; the server as for every command (--url, NEXUS_URL, config, session bindings). stdout carries the MCP protocol; stderr one start line (silenced by --quiet).\n\nExample:\n  claude mcp add nexus -- nexus mcp --agent-id alice"
    )]
    Mcp,
    /// Print help for nexus or one of its commands.
    #[command(after_help = "Example:\n  nexus help send")]
    Help { command: Option<String> },
    /// Print a shell completion script on stdout.
    #[command(
        after_help = "Example:\n  nexus completions bash > ~/.local/share/bash-completion/completions/nexus"
    )]
    Completions { shell: Shell },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("nexus").chain(args.iter().copied())).unwrap()
    }

    fn parse_send(args: &[&str]) -> (String, Vec<String>, Option<String>, bool) {
        let argv = std::iter::once("nexus")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        send_parts(Cli::try_parse_from(with_send_text(argv)).unwrap())
    }

    #[test]
    fn send_words_that_look_like_flags_are_text() {
        let (sid, text, json, strict) = parse_send(&["send", "S", "-", "item", "-5", "--nope"]);
        assert_eq!(sid, "S");
        assert_eq!(text, ["-", "item", "-5", "--nope"]);
        assert_eq!((json, strict), (None, false));
        let (_, text, json, strict) = parse_send(&[
            "--url",
            "http://a",
            "send",
            "S",
            "- item one",
            "--json",
            "{}",
            "--strict",
            "--quiet",
        ]);
        assert_eq!(text, ["- item one"]);
        assert_eq!((json.as_deref(), strict), (Some("{}"), true));
        let (_, text, _, _) = parse_send(&["send", "S", "a", "--", "--json", "x"]);
        assert_eq!(text, ["a", "--json", "x"]);
        let (_, text, json, _) = parse_send(&["send", "S", "--json=[1]", "--url=http://b", "hi"]);
        assert_eq!(
            (text, json.as_deref()),
            (vec!["hi".to_owned()], Some("[1]"))
        );
        // Other commands are left alone.
        let argv: Vec<OsString> = ["nexus", "poll", "S", "--after", "0"]
            .map(OsString::from)
            .into();
        assert_eq!(with_send_text(argv.clone()), argv);
    }

    fn send_parts(cli: Cli) -> (String, Vec<String>, Option<String>, bool) {
        match cli.command {
            Some(Command::Send {
                sid,
                text,
                json,
                strict,
            }) => (sid, text, json, strict),
            other => panic!("not send: {other:?}"),
        }
    }

    #[test]
    fn global_flags_anywhere() {
        let cli = parse(&[
            "--url",
            "http://a",
            "create",
            "--ttl",
            "60",
            "--greeting",
            "hi",
        ]);
        assert_eq!(cli.global.url.as_deref(), Some("http://a"));
        assert_eq!(cli.global.ttl, Some(60));
        assert_eq!(cli.global.greeting.as_deref(), Some("hi"));
        let cli = parse(&[
            "poll",
            "S",
            "--members",
            "--after",
            "0",
            "--agent-id",
            "bob",
        ]);
        assert!(cli.global.members);
        assert_eq!(cli.global.after.as_deref(), Some("0"));
        assert_eq!(cli.global.agent_id.as_deref(), Some("bob"));
        let cli = parse(&["poll-all", "--members"]);
        assert!(
            cli.global.members,
            "poll-all --members works (upstream bug 5.1.1)"
        );
    }

    #[test]
    fn text_after_double_dash_is_never_a_flag() {
        let (sid, text, json, strict) =
            send_parts(parse(&["send", "S", "--", "--url", "foo", "--strict"]));
        assert_eq!(sid, "S");
        assert_eq!(text, ["--url", "foo", "--strict"]);
        assert_eq!((json, strict), (None, false));
        let cli = parse(&["send", "S", "--", "--url", "foo"]);
        assert_eq!(cli.global.url, None);
    }

    #[test]
    fn text_words_and_json_mix() {
        let (_, text, json, strict) = send_parts(parse(&[
            "send",
            "S",
            "hello",
            "world",
            "--json",
            "{\"a\":1}",
            "--strict",
        ]));
        assert_eq!(text, ["hello", "world"]);
        assert_eq!(json.as_deref(), Some("{\"a\":1}"));
        assert!(strict);
        let (_, text, json, _) = send_parts(parse(&["send", "S", "--json", "-5"]));
        assert!(text.is_empty());
        assert_eq!(json.as_deref(), Some("-5"));
        let (_, text, _, _) = send_parts(parse(&["send", "S", "-"]));
        assert_eq!(text, ["-"]);
        let (_, text, _, _) = send_parts(parse(&["send", "S", "--", "-5 degrees"]));
        assert_eq!(text, ["-5 degrees"]);
        let (_, text, json, _) = send_parts(parse(&[
            "send", "S", "hi", "--url", "http://x", "--json", "[]",
        ]));
        assert_eq!((text, json.as_deref()), (vec!["hi".to_owned()], Some("[]")));
    }

    #[test]
    fn bad_numbers_are_parse_errors_not_crashes() {
        let args = ["nexus", "create", "--ttl", "abc"];
        assert!(Cli::try_parse_from(args).is_err());
        assert!(Cli::try_parse_from(["nexus", "poll", "S", "--wait", "61"]).is_err());
    }

    #[test]
    fn definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
