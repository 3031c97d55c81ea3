//! Helpers for the router tests: the app over a fresh store with a paused clock, requests
//! through `oneshot`, and assertions on responses. Every response is checked for `X-Request-Id`.
//!
//! Every test runs against BOTH backends: a test is a plain `async fn name()` and
//! [`backend_tests!`] turns each listed name into `name::embedded` and `name::redis`, two tokio
//! tests with paused time that run the same body with [`App::new`] building the app over the
//! embedded store or over Redis (a fresh `redis-server` per app, see `redis_server`). A test left
//! out of the list is dead code, which the lints refuse. How Redis I/O coexists with tokio's
//! paused clock is explained in `realtime.rs`.

mod realtime;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, header};
use http_body_util::BodyExt;
use nexus_server::clock::Clock;
use nexus_server::config::Config;
use nexus_server::domain::Relay;
use nexus_server::domain::limits::LimitCounters;
use nexus_server::store::Store;
use nexus_server::store::embedded::EmbeddedStore;
use nexus_server::store::redis::{RedisOptions, RedisStore};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::redis_server::RedisServer;
use realtime::RealTime;

/// The storage backend a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Redis,
}

tokio::task_local! {
    static BACKEND: Backend;
}

/// Runs a test body with [`App::new`] building apps over `backend`.
pub async fn on(backend: Backend, test: impl Future<Output = ()>) {
    BACKEND.scope(backend, test).await;
}

/// The backend of the running test (embedded outside [`on`]).
pub fn backend() -> Backend {
    BACKEND.try_with(|b| *b).unwrap_or(Backend::Embedded)
}

/// One embedded and one Redis tokio test (paused time) per listed `async fn`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(start_paused = true)]
            async fn embedded() {
                crate::support::on(crate::support::Backend::Embedded, super::$name()).await;
            }

            #[tokio::test(start_paused = true)]
            async fn redis() {
                crate::support::on(crate::support::Backend::Redis, super::$name()).await;
            }
        }
    )*};
}
pub(crate) use backend_tests;

/// What a Redis-backed app owns: the server, and the real-time runtime its client runs on.
struct RedisBackend {
    runtime: Option<tokio::runtime::Runtime>,
    _server: RedisServer,
}

impl RedisBackend {
    fn start(config: &Config) -> (Self, Arc<dyn Store>, Arc<dyn LimitCounters>) {
        let server = RedisServer::start();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the real-time runtime");
        let options = RedisOptions {
            prefix: "test".into(),
            // Paused test time runs far ahead of Redis's clock (tests advance by minutes): keys
            // must outlive their logical deadlines by more than any test lasts in real time.
            grace: Duration::from_secs(3600),
            // Stats right after a change must show it.
            stats_cache: Duration::ZERO,
            connections: 1,
            ..RedisOptions::new(server.url())
        };
        let deadlines = Relay::deadlines(config);
        let handle = runtime.handle().clone();
        // Connecting needs the real-time runtime; the test's own runtime is this thread's.
        let store =
            std::thread::spawn(move || handle.block_on(RedisStore::connect(options, deadlines)))
                .join()
                .expect("connect thread")
                .expect("connect to the test's redis-server");
        let counters: Arc<dyn LimitCounters> = Arc::new(store.counters());
        let rt = runtime.handle().clone();
        let store: Arc<dyn Store> = Arc::new(store);
        (
            Self {
                runtime: Some(runtime),
                _server: server,
            },
            Arc::new(RealTime::new(store, rt.clone())),
            Arc::new(RealTime::new(counters, rt)),
        )
    }
}

impl Drop for RedisBackend {
    fn drop(&mut self) {
        // Inside the test's runtime a blocking shutdown is not allowed.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The relay's wall clock at the start of every test.
pub const T0: u64 = 1_795_600_800_000;
pub const T0_STR: &str = "2026-11-25T10:00:00.000Z";
pub const PUBLIC_URL: &str = "http://relay.test";

/// The whole router over a fresh store of the test's backend.
#[derive(Clone)]
pub struct App {
    pub relay: Arc<Relay>,
    router: Router,
    /// Kept alive as long as any clone of the app (Redis variant only).
    _redis: Option<Arc<RedisBackend>>,
}

/// A response, read to the end.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
}

impl App {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// An app whose configuration is tweaked first.
    pub fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::defaults();
        tweak(&mut config);
        let clock = Clock::starting_at(T0);
        let (relay, redis) = match backend() {
            Backend::Embedded => {
                let store = Arc::new(EmbeddedStore::in_memory(Relay::deadlines(&config)));
                (Relay::new(config, clock, store, PUBLIC_URL.into()), None)
            }
            Backend::Redis => {
                let (guard, store, counters) = RedisBackend::start(&config);
                let relay =
                    Relay::new(config, clock, store, PUBLIC_URL.into()).with_counters(counters);
                (relay, Some(Arc::new(guard)))
            }
        };
        let relay = Arc::new(relay);
        let router = nexus_server::http::router(relay.clone());
        Self {
            relay,
            router,
            _redis: redis,
        }
    }

    /// The relay's current wall-clock milliseconds.
    pub fn now(&self) -> u64 {
        self.relay.clock.now_ms()
    }

    /// Sends one request; a body is sent as `application/json`.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut builder = Request::builder().method(method.clone()).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = match body {
            Some(bytes) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(bytes)),
            None => builder.body(Body::empty()),
        }
        .expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let id = headers
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{method} {uri} → {status} has no X-Request-Id"));
        assert!(!id.is_empty(), "{method} {uri}: empty X-Request-Id");
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, uri: &str, headers: &[(&str, &str)]) -> Resp {
        self.call(Method::GET, uri, headers, None).await
    }

    pub async fn json(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> Resp {
        self.call(method, uri, headers, Some(body.to_string().into_bytes()))
            .await
    }

    /// `PUT /v1/sessions`, expecting 201; the response body.
    pub async fn create(&self, body: Value) -> Value {
        let res = self.json(Method::PUT, "/v1/sessions", &[], body).await;
        res.ok(201).clone()
    }

    /// A session whose creator is `creator`: (session id, creator's key).
    pub async fn session_with_creator(&self, creator: &str) -> (String, String) {
        let body = self.create(json!({ "creatorAgentId": creator })).await;
        (
            body["sessionId"].as_str().unwrap().to_owned(),
            body["sessionKey"].as_str().unwrap().to_owned(),
        )
    }

    /// Joins `agent`, expecting 200; its session key.
    pub async fn join(&self, sid: &str, agent: &str) -> String {
        let res = self
            .call(
                Method::POST,
                &format!("/v1/sessions/{sid}/join"),
                &[("X-Agent-Id", agent)],
                None,
            )
            .await;
        res.ok(200)["sessionKey"].as_str().unwrap().to_owned()
    }

    pub async fn status(&self, sid: &str) -> Resp {
        self.get(&format!("/v1/sessions/{sid}"), &[]).await
    }

    /// The session's `expiresAt` per status, in milliseconds.
    pub async fn expires_at(&self, sid: &str) -> u64 {
        let res = self.status(sid).await;
        ts(&res.ok(200)["expiresAt"])
    }

    pub async fn send(&self, sid: &str, agent: &str, key: Option<&str>, body: Value) -> Resp {
        let mut headers = vec![("X-Agent-Id", agent)];
        if let Some(k) = key {
            headers.push(("X-Session-Key", k));
        }
        self.send_with(sid, &headers, body).await
    }

    pub async fn send_with(&self, sid: &str, headers: &[(&str, &str)], body: Value) -> Resp {
        self.json(
            Method::POST,
            &format!("/v1/sessions/{sid}/messages"),
            headers,
            body,
        )
        .await
    }

    /// `GET /v1/sessions/:id/messages?<query>` as `agent`.
    pub async fn poll(&self, sid: &str, agent: &str, query: &str) -> Resp {
        let uri = if query.is_empty() {
            format!("/v1/sessions/{sid}/messages")
        } else {
            format!("/v1/sessions/{sid}/messages?{query}")
        };
        self.get(&uri, &[("X-Agent-Id", agent)]).await
    }

    /// `POST …/renew`; `None` sends no body at all.
    pub async fn renew(&self, sid: &str, agent: &str, body: Option<Value>) -> Resp {
        let path = format!("/v1/sessions/{sid}/renew");
        let headers = [("X-Agent-Id", agent)];
        match body {
            Some(b) => self.json(Method::POST, &path, &headers, b).await,
            None => self.call(Method::POST, &path, &headers, None).await,
        }
    }

    /// `DELETE /v1/sessions/:sid/agents/:agent` with the given headers.
    pub async fn leave(
        &self,
        sid: &str,
        agent: &str,
        header_agent: Option<&str>,
        key: Option<&str>,
    ) -> Resp {
        let mut headers = Vec::new();
        if let Some(a) = header_agent {
            headers.push(("X-Agent-Id", a));
        }
        if let Some(k) = key {
            headers.push(("X-Session-Key", k));
        }
        self.call(
            Method::DELETE,
            &format!("/v1/sessions/{sid}/agents/{agent}"),
            &headers,
            None,
        )
        .await
    }

    /// `PUT /v1/pair`, expecting 201; the code.
    pub async fn pair(&self, sid: &str) -> String {
        let res = self
            .json(Method::PUT, "/v1/pair", &[], json!({ "sessionId": sid }))
            .await;
        res.ok(201)["code"].as_str().unwrap().to_owned()
    }

    pub async fn claim(&self, code: &str, agent: &str) -> Resp {
        self.call(
            Method::POST,
            &format!("/v1/pair/{code}/claim"),
            &[("X-Agent-Id", agent)],
            None,
        )
        .await
    }

    /// The code's `state` per `GET /v1/pair/:code/status`, expecting 200.
    pub async fn code_state(&self, code: &str) -> String {
        let res = self.get(&format!("/v1/pair/{code}/status"), &[]).await;
        res.ok(200)["state"].as_str().unwrap().to_owned()
    }
}

impl Resp {
    /// Asserts the status; the JSON body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        assert!(self.is_json(), "not JSON: {:?}", self.content_type());
        &self.json
    }

    /// Asserts an error answer: status, `error` code, a `message`, JSON content type.
    #[track_caller]
    pub fn err(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(code)),
            "unexpected answer: {}",
            self.text
        );
        self.assert_error_shape();
        &self.json
    }

    /// `{"error": string, "message": string, "details"?: [{field, problem}]}` as JSON.
    #[track_caller]
    pub fn assert_error_shape(&self) {
        assert!(self.is_json(), "errors are JSON: {:?}", self.content_type());
        assert!(self.json["error"].is_string(), "{}", self.text);
        assert!(
            self.json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        if let Some(details) = self.json.get("details") {
            for d in details.as_array().expect("details is a list") {
                assert!(d["field"].is_string() && d["problem"].is_string(), "{d}");
            }
        }
    }

    /// Asserts 400 `invalid_request` whose `details` name exactly these fields.
    #[track_caller]
    pub fn invalid_fields(&self, fields: &[&str]) {
        self.err(400, "invalid_request");
        let named: Vec<&str> = self.json["details"]
            .as_array()
            .unwrap_or_else(|| panic!("details missing: {}", self.text))
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        let mut named_sorted = named.clone();
        named_sorted.sort_unstable();
        let mut want = fields.to_vec();
        want.sort_unstable();
        assert_eq!(named_sorted, want, "details: {}", self.text);
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    pub fn content_type(&self) -> String {
        self.header("content-type").unwrap_or_default()
    }

    pub fn is_json(&self) -> bool {
        self.content_type().starts_with("application/json")
    }

    pub fn request_id(&self) -> String {
        self.header("x-request-id").unwrap()
    }
}

/// An RFC 3339 timestamp in milliseconds (panics when it is not one, or not UTC).
#[track_caller]
pub fn ts(v: &Value) -> u64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is a string: {v}"));
    assert!(s.ends_with('Z'), "UTC: {s}");
    nexus_proto::time::parse_rfc3339(s).unwrap_or_else(|| panic!("RFC 3339: {s}"))
}

/// A cursor string as a number (panics when it is not a decimal string).
#[track_caller]
pub fn cursor(v: &Value) -> u64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("cursor is a string: {v}"));
    assert!(
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
        "{s}"
    );
    s.parse().unwrap()
}

/// Moves tokio's paused clock, and with it the relay's.
pub async fn advance_ms(ms: u64) {
    tokio::time::advance(Duration::from_millis(ms)).await;
}

pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `WORD-WORD-XXXXX`: two uppercase words and 5 Crockford base32 characters.
pub fn is_pair_code(code: &str) -> bool {
    let parts: Vec<&str> = code.split('-').collect();
    parts.len() == 3
        && parts[..2]
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_uppercase()))
        && parts[2].len() == 5
        && parts[2]
            .bytes()
            .all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b))
}
