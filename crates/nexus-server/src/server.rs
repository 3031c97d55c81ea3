//! Running the relay: open the embedded store in `DATA_DIR`, bind, print the bound address as one
//! JSON line on stdout (`{"listening":"http://127.0.0.1:PORT"}`, so callers can use port 0), serve,
//! and on Ctrl-C or SIGTERM shut down gracefully: stop accepting, release parked long-polls with an
//! empty answer, finish in-flight requests, flush metadata, exit 0 (SPEC §2 "Configuration").

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{Relay, expiry};
use crate::http;
use crate::store::embedded::EmbeddedStore;

/// Runs the server until a shutdown signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    if config.tls_cert.is_some() {
        bail!(
            "TLS_CERT/TLS_KEY are not supported by this build yet; terminate TLS in a reverse proxy"
        );
    }
    let clock = Clock::system();
    let store = EmbeddedStore::open(&config.data_dir, Relay::deadlines(&config), clock.now_ms())
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let listener = TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    let public_url = config.public_base(addr.port());
    let relay = Arc::new(Relay::new(config, clock, Arc::new(store), public_url));

    let scheme_addr = match addr {
        SocketAddr::V4(a) => format!("http://{a}"),
        SocketAddr::V6(a) => format!("http://{a}"),
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::json!({ "listening": scheme_addr }))?;
        out.flush()?;
    }
    tracing::info!(address = %scheme_addr, public_url = %relay.public_url, "nexus-server listening");

    let upkeep = tokio::spawn(expiry::run(relay.clone()));
    let shutdown = relay.shutdown.clone();
    axum::serve(
        listener,
        http::router(relay.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        shutdown.cancel();
    })
    .await?;
    relay.shutdown.cancel();
    let _ = upkeep.await;
    relay.store.close().await.context("final flush failed")?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
