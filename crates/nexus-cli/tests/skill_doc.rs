//! The agent skill `skills/nexus/SKILL.md` stays true to the CLI: every `nexus …` command line in it
//! (in code blocks, and in inline code in the prose) parses with the real clap definitions, and
//! every usage line of its tables names a real command and real flags.

use std::collections::BTreeSet;

use clap::{CommandFactory, Parser};
use nexus_cli::cli::Cli;

const SKILL: &str = include_str!("../../../skills/nexus/SKILL.md");

/// Splits a shell command line into words (single and double quotes, backslash escapes in double
/// quotes, `\` line continuations), stopping at the end of the line or the first unquoted shell operator (`|`, `>`, `<`, `)`, `;`, `&`, a
/// backtick or a `#` comment), so `nexus send x - < notes.md` is `["nexus", "send", "x", "-"]`.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => words.extend(word.take()), // line continuation
                Some(c) => word.get_or_insert_with(String::new).push(c),
            },
            '\n' => break,
            c if c.is_whitespace() => words.extend(word.take()),
            '|' | '>' | '<' | ')' | ';' | '&' | '`' => break,
            '#' if word.is_none() => break,
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// Every `nexus …` command inside `text`: at the start of a line, after `$(`, `| `, `&& ` or
/// a backtick.
fn commands_in(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("nexus ") {
        let before = text[..i].trim_end_matches(' ');
        let starts = before.is_empty()
            || before.ends_with('\n')
            || before.ends_with("$(")
            || before.ends_with('|')
            || before.ends_with("&&")
            || before.ends_with('`')
            || before.ends_with('(');
        if starts {
            out.push(shell_words(&text[i..]));
        }
    }
    out
}

/// The document split into fenced code blocks and the prose around them.
fn blocks() -> (Vec<String>, String) {
    let mut code = Vec::new();
    let mut prose = String::new();
    let mut current: Option<String> = None;
    for line in SKILL.lines() {
        if line.trim_start().starts_with("```") {
            match current.take() {
                Some(block) => code.push(block),
                None => current = Some(String::new()),
            }
            continue;
        }
        match current.as_mut() {
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    assert!(current.is_none(), "unterminated code block in SKILL.md");
    (code, prose)
}

/// Inline code spans of the prose, with the table rows they are in (`true`) or not.
fn inline_spans(prose: &str) -> Vec<(String, bool)> {
    let mut spans = Vec::new();
    for paragraph in prose.split("\n\n") {
        let mut from = 0;
        while let Some(open) = paragraph[from..].find('`').map(|p| from + p) {
            let Some(close) = paragraph[open + 1..].find('`').map(|p| open + 1 + p) else {
                break;
            };
            let span = paragraph[open + 1..close].replace('\n', " ");
            let line_start = paragraph[..open].rfind('\n').map_or(0, |p| p + 1);
            spans.push((span, paragraph[line_start..].starts_with('|')));
            from = close + 1;
        }
    }
    spans
}

/// Parses like the binary does; `--help` and `--version` count as parsed.
fn parse(words: &[String]) -> Result<(), clap::Error> {
    match Cli::try_parse_from(words) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[test]
fn every_nexus_command_line_of_the_skill_parses() {
    let (code, prose) = blocks();
    let mut lines: Vec<Vec<String>> = code.iter().flat_map(|b| commands_in(b)).collect();
    for (span, in_table) in inline_spans(&prose) {
        if !in_table && span.starts_with("nexus ") {
            lines.push(shell_words(&span));
        }
    }
    assert!(
        lines.len() >= 30,
        "found only {} command lines",
        lines.len()
    );
    let mut commands = BTreeSet::new();
    for words in &lines {
        assert_eq!(words[0], "nexus");
        if let Err(e) = parse(words) {
            panic!("SKILL.md: `{}` does not parse:\n{e}", words.join(" "));
        }
        commands.insert(words[1].clone());
    }
    // The skill shows the whole workflow.
    for needed in [
        "create",
        "pair",
        "pair-status",
        "claim",
        "join",
        "send",
        "poll",
        "renew",
        "leave",
        "alias",
        "unalias",
        "ls",
        "poll-all",
        "poll-daemon",
        "poll-status",
        "config",
        "doctor",
    ] {
        assert!(
            commands.contains(needed),
            "SKILL.md has no example of `nexus {needed}`"
        );
    }
    // `claim` takes a full pairing link as well as a bare code.
    assert!(
        lines
            .iter()
            .any(|w| w[1] == "claim" && w[2].contains("/p/"))
    );
    assert!(
        lines
            .iter()
            .any(|w| w[1] == "poll" && w.contains(&"--wait".to_owned()))
    );
}

#[test]
fn every_usage_line_of_the_skill_names_real_commands_and_flags() {
    let cli = Cli::command();
    let globals: BTreeSet<String> = cli
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    let (_, prose) = blocks();
    let mut checked = 0;
    for (span, in_table) in inline_spans(&prose) {
        if !in_table || !span.starts_with("nexus ") {
            continue;
        }
        let words = shell_words(&span);
        let name = &words[1];
        let sub = cli
            .get_subcommands()
            .find(|s| s.get_name() == name)
            .unwrap_or_else(|| panic!("SKILL.md: `{span}`: no command {name}"));
        let flags: BTreeSet<String> = sub
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_owned))
            .chain(globals.iter().cloned())
            .collect();
        for word in &words[2..] {
            let word = word.trim_matches(|c| c == '[' || c == ']');
            if let Some(flag) = word.strip_prefix("--") {
                assert!(
                    flags.contains(flag),
                    "SKILL.md: `{span}`: {name} has no --{flag}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} usage lines checked");
}

#[test]
fn the_skill_never_tells_an_agent_to_hand_out_a_session_key() {
    let lower = SKILL.to_lowercase();
    for bad in [
        "paste your session key",
        "share your session key",
        "send your session key",
        "--key",
    ] {
        assert!(!lower.contains(bad), "SKILL.md says {bad:?}");
    }
    assert!(lower.contains("never show it to anyone"));
    assert!(lower.contains("always ask your human before"));
    assert!(SKILL.contains("MESSAGING.md"));
}

#[test]
fn the_shell_splitter_stops_at_operators() {
    assert_eq!(
        shell_words("nexus send x - < notes.md"),
        ["nexus", "send", "x", "-"]
    );
    assert_eq!(
        shell_words(r#"nexus send x "a \"b\"" --json '{"k": 1}' | jq"#),
        ["nexus", "send", "x", "a \"b\"", "--json", "{\"k\": 1}"]
    );
    assert_eq!(
        shell_words("nexus poll-daemon s --yes >> out.ndjson"),
        ["nexus", "poll-daemon", "s", "--yes"]
    );
}
