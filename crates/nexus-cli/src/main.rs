//! The `nexus` binary: parses the command line, runs the command on a single-threaded tokio
//! runtime, prints its one JSON value on stdout and exits 0 or 1 (SPEC §3).
//!
//! Help goes to stderr (stdout is JSON only, as with `nexus.sh help`); `--version` prints a JSON
//! object; `completions` is the one command whose stdout is a shell script, and `mcp` the one
//! whose stdout is the MCP protocol (JSON-RPC lines).

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use nexus_cli::cli::{Cli, Command, Shell};
use nexus_cli::output::{Failure, emit};
use serde_json::json;

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(nexus_cli::cli::with_send_text(
        std::env::args_os().collect(),
    )) {
        Ok(cli) => cli,
        Err(e) => return parse_error(e),
    };
    match &cli.command {
        None => {
            let _ = Cli::command().write_long_help(&mut std::io::stderr());
            return ExitCode::SUCCESS;
        }
        Some(Command::Help { command }) => return help(command.as_deref()),
        Some(Command::Completions { shell }) => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut Cli::command(), "nexus", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Some(Command::Mcp) => return mcp(cli),
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            emit_failure(&Failure::coded("internal_error", format!("runtime: {e}")));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(nexus_cli::commands::run(cli)) {
        Ok(outcome) => {
            emit(&outcome.printed);
            ExitCode::from(outcome.exit)
        }
        Err(failure) => {
            emit_failure(&failure);
            ExitCode::FAILURE
        }
    }
}

/// `nexus mcp`: stdout belongs to the MCP protocol, so nothing else is printed there; problems
/// go to stderr. The runtime is shut down without waiting for a stdin read that may still be
/// parked on tokio's blocking pool (it would otherwise keep the process alive).
fn mcp(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nexus mcp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(nexus_cli::mcp::serve(cli.global));
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(code)
}

fn emit_failure(f: &Failure) {
    let _ = nexus_cli::output::stdout_line(&f.stdout);
}

/// `nexus help [COMMAND]`: the long help of nexus or of one command, on stderr.
fn help(command: Option<&str>) -> ExitCode {
    let mut cmd = Cli::command();
    let target = match command {
        None => Some(cmd),
        Some(name) => cmd.find_subcommand_mut(name).map(|c| c.clone()),
    };
    match target {
        Some(mut c) => {
            let _ = c.write_long_help(&mut std::io::stderr());
            ExitCode::SUCCESS
        }
        None => {
            emit_failure(&Failure::msg(format!(
                "unknown command: {}",
                command.unwrap_or_default()
            )));
            ExitCode::FAILURE
        }
    }
}

/// A command line clap refused (or `--help` / `--version`).
fn parse_error(e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{}", e.render());
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayVersion => {
            emit(&nexus_cli::output::Printed::Compact(
                json!({ "name": "nexus", "version": env!("CARGO_PKG_VERSION") }),
            ));
            ExitCode::SUCCESS
        }
        ErrorKind::InvalidSubcommand => {
            let name = match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            eprint!("{}", e.render());
            emit_failure(&Failure::msg(format!("unknown command: {name}")));
            ExitCode::FAILURE
        }
        _ => {
            let text = e.render().to_string();
            eprint!("{text}");
            // The error and its context lines, without the usage and "For more information" tail.
            let message = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let message = message
                .strip_prefix("error: ")
                .unwrap_or(&message)
                .to_owned();
            emit_failure(&Failure::coded("invalid_arguments", message));
            ExitCode::FAILURE
        }
    }
}
