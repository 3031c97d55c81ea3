//! Connections to Redis: a small pool of multiplexed, self-reconnecting connections
//! (`redis::aio::ConnectionManager`, round-robin; each pipelines any number of concurrent
//! requests), script calls by SHA-1 with a reload on `NOSCRIPT` (after a Redis restart or
//! `SCRIPT FLUSH`), and the one mapping of Redis errors to [`StoreError`]: connection trouble (and
//! a full Redis, `OOM`) is `Unavailable` (503 `store_unavailable`), anything else `Database`.
//! Error texts carry Redis's category and code, never a command's arguments (which may hold
//! secrets) or the URL (which may hold a password).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, Script, ServerErrorKind, Value};

use crate::store::{StoreError, StoreResult};

/// How long one request may wait for Redis before the store answers `Unavailable`.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// Maps a Redis failure; see the module documentation.
pub fn store_error(e: &RedisError) -> StoreError {
    let unavailable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        )
        // `maxmemory` reached with `noeviction`: writes resume when memory is freed.
        || e.code() == Some("OOM");
    let mut what = format!("{} ({})", e.category(), e.code().unwrap_or("-"));
    if let Some(detail) = e.detail() {
        what.push_str(": ");
        what.extend(detail.chars().take(200));
    }
    if unavailable {
        StoreError::Unavailable(what)
    } else {
        StoreError::Database(what)
    }
}

/// `EVALSHA <sha> <numkeys> <keys…>`; the caller appends the arguments.
pub fn evalsha(script: &Script, keys: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
    cmd
}

/// The pool.
pub struct Conn {
    client: redis::Client,
    managers: Vec<ConnectionManager>,
    next: AtomicUsize,
}

impl Conn {
    /// Opens `size` connections to `url` (at least one), failing if Redis cannot be reached.
    pub async fn connect(url: &str, size: usize) -> StoreResult<Self> {
        let client = redis::Client::open(url).map_err(|e| {
            StoreError::Database(format!(
                "REDIS_URL is not a usable Redis URL ({})",
                e.category()
            ))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_number_of_retries(3)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2))
            .set_pipeline_buffer_size(1024);
        let mut managers = Vec::with_capacity(size.max(1));
        for _ in 0..size.max(1) {
            let manager = ConnectionManager::new_with_config(client.clone(), config.clone())
                .await
                .map_err(|e| store_error(&e))?;
            managers.push(manager);
        }
        Ok(Self {
            client,
            managers,
            next: AtomicUsize::new(0),
        })
    }

    /// The client, for the subscriber's own connection.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    fn pick(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.managers.len();
        self.managers[i].clone()
    }

    /// One command.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> StoreResult<T> {
        cmd.query_async(&mut self.pick())
            .await
            .map_err(|e| store_error(&e))
    }

    /// A pipeline: one round trip, not atomic.
    pub async fn pipeline(&self, pipe: &Pipeline) -> StoreResult<Vec<Value>> {
        pipe.query_async(&mut self.pick())
            .await
            .map_err(|e| store_error(&e))
    }

    /// A script call built with [`evalsha`]: one round trip (two more, once, if Redis lost its
    /// script cache).
    pub async fn eval(&self, script: &Script, cmd: &Cmd) -> StoreResult<Value> {
        let mut con = self.pick();
        match cmd.query_async(&mut con).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                script
                    .load_async(&mut con)
                    .await
                    .map_err(|e| store_error(&e))?;
                cmd.query_async(&mut con).await.map_err(|e| store_error(&e))
            }
            other => other.map_err(|e| store_error(&e)),
        }
    }

    /// Many calls of one script, pipelined in one round trip.
    pub async fn eval_many(&self, script: &Script, cmds: &[Cmd]) -> StoreResult<Vec<Value>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for cmd in cmds {
            pipe.add_command(cmd.clone());
        }
        let mut con = self.pick();
        match pipe.query_async(&mut con).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                script
                    .load_async(&mut con)
                    .await
                    .map_err(|e| store_error(&e))?;
                pipe.query_async(&mut con)
                    .await
                    .map_err(|e| store_error(&e))
            }
            other => other.map_err(|e| store_error(&e)),
        }
    }
}
