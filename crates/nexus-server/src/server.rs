//! Running the relay: open the store (Redis when `REDIS_URL` is set, with the rate-limit and
//! claim-failure counters there too; otherwise the embedded store in `DATA_DIR`), bind, print the bound address as one
//! JSON line on stdout (`{"listening":"http://127.0.0.1:PORT"}`, so callers can use port 0), serve,
//! over HTTPS when `TLS_CERT` and `TLS_KEY` are set (rustls),
//! with a header-read timeout and a cap on open connections against hostile clients,
//! and on Ctrl-C or SIGTERM shut down gracefully: stop accepting, release parked long-polls with an
//! empty answer, finish in-flight requests, flush metadata, exit 0 (SPEC §2 "Configuration").

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use std::time::Duration;

use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::Config;
use crate::connections::CappedAcceptor;
use crate::domain::limits::LimitCounters;
use crate::domain::{Relay, expiry};
use crate::http;
use crate::store::Store;
use crate::store::embedded::EmbeddedStore;
use crate::store::redis::{RedisOptions, RedisStore};

/// Runs the server until a shutdown signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(
            RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| {
                    format!(
                        "cannot load TLS certificate {} / key {}",
                        cert.display(),
                        key.display()
                    )
                })?,
        ),
        (None, None) => None,
        _ => bail!("TLS needs both TLS_CERT and TLS_KEY"),
    };
    let clock = Clock::system();
    let deadlines = Relay::deadlines(&config);
    // The store: Redis when REDIS_URL is set (nodes sharing it share sessions and limits),
    // otherwise the embedded store in DATA_DIR.
    let (store, counters): (Arc<dyn Store>, Option<Arc<dyn LimitCounters>>) =
        match &config.redis_url {
            Some(url) => {
                url.check().map_err(anyhow::Error::msg)?;
                let redis = RedisStore::connect(RedisOptions::new(url.as_str()), deadlines)
                    .await
                    .context("cannot reach Redis (REDIS_URL)")?;
                let counters = Arc::new(redis.counters());
                (Arc::new(redis), Some(counters))
            }
            None => {
                let embedded = EmbeddedStore::open(&config.data_dir, deadlines, clock.now_ms())
                    .with_context(|| {
                        format!("cannot open the store in {}", config.data_dir.display())
                    })?;
                (Arc::new(embedded), None)
            }
        };
    let listener = TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    let public_url = config.public_base(addr.port());
    let mut relay = Relay::new(config, clock, store, public_url);
    if let Some(counters) = counters {
        relay = relay.with_counters(counters);
    }
    let relay = Arc::new(relay);

    let scheme = if tls.is_some() { "https" } else { "http" };
    let scheme_addr = format!("{scheme}://{addr}");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::json!({ "listening": scheme_addr }))?;
        out.flush()?;
    }
    tracing::info!(
        address = %scheme_addr,
        public_url = %relay.public_url,
        store = relay.store.backend(),
        "nexus-server listening"
    );

    let upkeep = tokio::spawn(expiry::run(relay.clone()));
    let app = http::router(relay.clone()).into_make_service_with_connect_info::<SocketAddr>();

    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    let shutdown = relay.shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        // Parked long-polls answer at once; then no new connection is accepted and the server
        // returns when every in-flight request has been answered.
        shutdown.cancel();
        stopper.graceful_shutdown(None);
    });

    // Hostile clients: headers (and the first request, and the next request on an idle
    // keep-alive connection) must arrive within HEADER_READ_TIMEOUT_SECONDS, and at most
    // MAX_CONNECTIONS connections are open at once.
    let header_timeout = Duration::from_secs(relay.config.header_read_timeout_seconds);
    let capped = CappedAcceptor::new(DefaultAcceptor::new(), relay.config.max_connections);
    let mut server = axum_server::from_tcp(listener.into_std()?)?
        .handle(handle)
        .first_request_timeout(header_timeout)
        .accept_error_handler(|_, e| tracing::debug!(error = %e, "connection refused"));
    if tls.is_none() {
        // Plain HTTP is HTTP/1.1 (the protocol's clients, curl and the CLI, speak nothing else):
        // no sniffing for an HTTP/2 preface, whose 24-byte first read makes hyper grow every
        // connection's read buffer from 8 to 16 KiB. Over TLS, ALPN still offers HTTP/2.
        server = server.http1_only();
    }
    server
        .http_builder()
        .http1()
        .header_read_timeout(header_timeout);
    match tls {
        None => server.acceptor(capped).serve(app).await?,
        Some(tls) => {
            server
                .acceptor(RustlsAcceptor::new(tls).acceptor(capped))
                .serve(app)
                .await?
        }
    }
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
