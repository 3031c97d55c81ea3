//! `nexus-server`: parse the configuration (flags over environment), set up logging to stderr,
//! run the relay. Exit 0 after a graceful shutdown, 1 on a start-up failure.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use nexus_server::config::Config;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let filter = match EnvFilter::try_new(&config.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("nexus-server: invalid LOG filter {:?}: {e}", config.log);
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match nexus_server::server::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nexus-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
