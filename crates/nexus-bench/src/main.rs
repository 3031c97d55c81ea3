//! `nexus-bench`: throughput, latency and memory of the nexus relay on loopback, side by side with
//! a bare axum baseline (issue 6; docs/BENCHMARKS.md).
//!
//! ```text
//! cargo build --release -p nexus-server -p nexus-cli -p nexus-bench
//! target/release/nexus-bench            # full run (a few minutes)
//! target/release/nexus-bench --quick    # under a minute
//! ```
//!
//! It starts the real `nexus-server` (found next to this binary) and the baseline (this binary,
//! `baseline-server`) as child processes on port 0, drives them with its own closed-loop hyper
//! load generator (many keep-alive HTTP/1.1 connections, no sleeps in the hot loop), alternates
//! the targets round by round (A B A B …) and prints medians and ratios as markdown tables.

mod baseline;
mod load;
mod procs;
mod redis_scale;
mod scenarios;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The text of every benchmark send (and of every baseline poll message).
pub const SEND_TEXT: &str =
    "benchmark message: the quick brown fox jumps over the lazy dog 0123456789";

#[derive(Parser, Debug)]
#[command(
    name = "nexus-bench",
    about = "Benchmarks of the nexus relay against a bare axum baseline"
)]
pub struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Short run (under a minute): fewer rounds, shorter windows, smaller populations.
    #[arg(long)]
    quick: bool,
    /// Tiny sizes, for the test suite: checks that every scenario runs, measures nothing useful.
    #[arg(long, conflicts_with = "quick")]
    smoke: bool,
    /// The relay binary [default: nexus-server next to this executable].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The CLI binary [default: nexus next to this executable].
    #[arg(long)]
    cli_bin: Option<PathBuf>,
    /// Run the baseline as `<PROGRAM> baseline-server --port 0` (e.g. a valgrind wrapper script)
    /// instead of this executable.
    #[arg(long, hide = true)]
    baseline_bin: Option<PathBuf>,
    /// Rounds of A B alternation per throughput scenario (overrides the mode's default).
    #[arg(long)]
    rounds: Option<usize>,
    /// Measured window of one throughput run, in milliseconds (overrides the mode's default).
    #[arg(long)]
    window_ms: Option<u64>,
    /// Only these scenarios (comma-separated: send,poll,pair,longpoll,memory,restart,cli; or
    /// `redis` alone: the Redis backend, embedded vs one and two Redis-backed nodes).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Server log filter for the throughput scenarios (the relay's default is `info`: one access
    /// line per request on stderr, which the bench discards).
    #[arg(long, default_value = "info")]
    server_log: String,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the baseline server (used by the bench itself).
    #[command(hide = true)]
    BaselineServer {
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.cmd {
        Some(Cmd::BaselineServer { port }) => rt.block_on(baseline::serve(port)),
        None if args.only.iter().any(|o| o == "redis") => rt.block_on(redis_scale::run(args)),
        None => rt.block_on(scenarios::run(args)),
    }
}
