//! `nexus-server`: parse the configuration (flags over environment), set up logging to stderr
//! (buffered off the request path, see `nexus_server::logging`), run the relay. Exit 0 after a
//! graceful shutdown, 1 on a start-up failure.

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
    // Dropped when main returns: every buffered line is written before the process exits.
    let logs = nexus_server::logging::init(filter, std::io::stderr().is_terminal());
    let result = nexus_server::server::run(config).await;
    drop(logs);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nexus-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
