//! Property test (issue 4): arbitrary bytes, arbitrary JSON and arbitrary header values thrown at
//! every endpoint through the whole router (`tower::ServiceExt::oneshot`). Whatever comes in:
//! no panic, no 5xx, every response carries `X-Request-Id`, and every error body has the SPEC
//! shape `{"error","message"[,"details"]}`.
//!
//! Each case runs against a fresh relay holding a real session (creator `alice`, member `bob`,
//! a pending pairing code), so well-formed ids reach the deep paths too. Time is paused: a
//! long-poll `wait` costs nothing. `PROPTEST_CASES` raises the number of cases.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::BodyExt;
use nexus_server::clock::Clock;
use nexus_server::config::Config;
use nexus_server::domain::Relay;
use nexus_server::store::embedded::EmbeddedStore;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The routes of SPEC §2 (and `/openapi.json`), with `{sid}`, `{agent}`, `{code}` placeholders.
const ENDPOINTS: &[(&str, &str)] = &[
    ("PUT", "/v1/sessions"),
    ("GET", "/v1/sessions/{sid}"),
    ("POST", "/v1/sessions/{sid}/join"),
    ("DELETE", "/v1/sessions/{sid}/agents/{agent}"),
    ("POST", "/v1/sessions/{sid}/renew"),
    ("POST", "/v1/sessions/{sid}/messages"),
    ("GET", "/v1/sessions/{sid}/messages"),
    ("PUT", "/v1/pair"),
    ("POST", "/v1/pair/{code}/claim"),
    ("GET", "/v1/pair/{code}/status"),
    ("GET", "/v1/pair/{code}/skill"),
    ("GET", "/p/{code}"),
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/v1/stats"),
    ("GET", "/openapi.json"),
    ("GET", "/{sid}/nowhere"),
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// What a path placeholder is replaced with.
#[derive(Clone, Debug)]
enum Segment {
    /// The real value (session id, `bob`, the pending code).
    Real,
    /// Well-formed but unknown.
    Unknown,
    /// Arbitrary text, percent-encoded.
    Text(String),
    /// A path trick, as is.
    Trick(&'static str),
}

/// A header value: a real one (agent id, key) or arbitrary bytes.
#[derive(Clone, Debug)]
enum HeaderPick {
    Real,
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug)]
enum BodyPick {
    None,
    Bytes(Vec<u8>),
    Json(Value),
}

#[derive(Clone, Debug)]
struct Case {
    endpoint: usize,
    method: Option<&'static str>,
    segment: Segment,
    query: Vec<(String, String)>,
    agent: Option<HeaderPick>,
    key: Option<HeaderPick>,
    idempotency: Option<Vec<u8>>,
    extra: Vec<(&'static str, Vec<u8>)>,
    body: BodyPick,
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        Just(json!("AKIAIOSFODNN7EXAMPLE password=hunter2")),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with the fields the endpoints read, each set to an arbitrary or plausible value.
fn arb_request_object() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("ttl"),
        Just("maxAgents"),
        Just("creatorAgentId"),
        Just("greeting"),
        Just("text"),
        Just("json"),
        Just("sessionId"),
    ];
    let value = prop_oneof![
        arb_json(),
        (0u64..100_000).prop_map(Value::from),
        "[a-z]{1,10}".prop_map(Value::String),
    ];
    prop::collection::vec((field, value), 0..5).prop_map(|fields| {
        Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    })
}

fn arb_header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        "[ -~]{0,140}".prop_map(String::into_bytes),
        Just(b"..".to_vec()),
        Just("é".repeat(70).into_bytes()),
    ]
}

fn arb_case() -> impl Strategy<Value = Case> {
    let segment = prop_oneof![
        3 => Just(Segment::Real),
        1 => Just(Segment::Unknown),
        2 => ".{0,60}".prop_map(Segment::Text),
        1 => prop::sample::select(vec!["..", "%2e%2e", "%2f", "a%2fb", "%00", "..%2f..", "%ff", "%"])
            .prop_map(Segment::Trick),
    ];
    let query_key = prop_oneof![
        Just("after".to_owned()),
        Just("wait".to_owned()),
        Just("limit".to_owned()),
        Just("members".to_owned()),
        ".{0,8}",
    ];
    let query_value = prop_oneof![
        (0u64..100).prop_map(|n| n.to_string()),
        Just("true".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999999".to_owned()),
        ".{0,20}",
    ];
    let header_pick = prop_oneof![
        2 => Just(HeaderPick::Real),
        1 => arb_header_bytes().prop_map(HeaderPick::Bytes),
    ];
    let extra_name = prop::sample::select(vec![
        "content-type",
        "accept",
        "x-forwarded-for",
        "content-encoding",
        "transfer-encoding",
        "expect",
        "x-request-id",
    ]);
    let body = prop_oneof![
        1 => Just(BodyPick::None),
        2 => prop::collection::vec(any::<u8>(), 0..300).prop_map(BodyPick::Bytes),
        2 => arb_json().prop_map(BodyPick::Json),
        3 => arb_request_object().prop_map(BodyPick::Json),
    ];
    (
        0..ENDPOINTS.len(),
        prop::option::weighted(0.15, prop::sample::select(METHODS)),
        segment,
        prop::collection::vec((query_key, query_value), 0..4),
        prop::option::weighted(0.8, header_pick.clone()),
        prop::option::weighted(0.5, header_pick),
        prop::option::weighted(0.3, arb_header_bytes()),
        prop::collection::vec((extra_name, arb_header_bytes()), 0..3),
        body,
    )
        .prop_map(
            |(endpoint, method, segment, query, agent, key, idempotency, extra, body)| Case {
                endpoint,
                method,
                segment,
                query,
                agent,
                key,
                idempotency,
                extra,
                body,
            },
        )
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A fresh relay with a session (creator alice with her key, member bob) and a pending code.
struct World {
    router: axum::Router,
    sid: String,
    alice_key: String,
    code: String,
}

async fn call(router: &axum::Router, req: Request<Body>) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let res = router.clone().oneshot(req).await.expect("infallible");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, headers, body.to_vec())
}

async fn world() -> World {
    let mut config = Config::defaults();
    config.rate_limit_per_minute = 0;
    let store = Arc::new(EmbeddedStore::in_memory(Relay::deadlines(&config)));
    let relay = Relay::new(
        config,
        Clock::starting_at(1_795_600_800_000),
        store,
        "http://relay.test".into(),
    );
    let router = nexus_server::http::router(Arc::new(relay));
    let put = |uri: &str, body: Value| {
        Request::put(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (_, _, created) = call(
        &router,
        put("/v1/sessions", json!({"creatorAgentId": "alice"})),
    )
    .await;
    let created: Value = serde_json::from_slice(&created).unwrap();
    let sid = created["sessionId"].as_str().unwrap().to_owned();
    let alice_key = created["sessionKey"].as_str().unwrap().to_owned();
    let join = Request::post(format!("/v1/sessions/{sid}/join"))
        .header("x-agent-id", "bob")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&router, join).await.0, 200);
    let (_, _, paired) = call(&router, put("/v1/pair", json!({ "sessionId": sid }))).await;
    let paired: Value = serde_json::from_slice(&paired).unwrap();
    let code = paired["code"].as_str().unwrap().to_owned();
    World {
        router,
        sid,
        alice_key,
        code,
    }
}

fn build(case: &Case, w: &World) -> (String, Request<Body>) {
    let (default_method, template) = ENDPOINTS[case.endpoint];
    let method = case.method.unwrap_or(default_method);
    let fill = |real: &str, unknown: &str| match &case.segment {
        Segment::Real => real.to_owned(),
        Segment::Unknown => unknown.to_owned(),
        Segment::Text(t) => encode(t),
        Segment::Trick(t) => (*t).to_owned(),
    };
    let mut path = template
        .replace("{sid}", &fill(&w.sid, &"ab".repeat(24)))
        .replace("{agent}", &fill("bob", "carol"))
        .replace("{code}", &fill(&w.code, "ABANDON-ABILITY-00000"));
    if !case.query.is_empty() {
        let q: Vec<String> = case
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        path = format!("{path}?{}", q.join("&"));
    }
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(&path);
    let mut add = |name: &str, value: &[u8]| {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            builder = std::mem::take(&mut builder)
                .header(HeaderName::from_bytes(name.as_bytes()).unwrap(), v);
        }
    };
    match &case.agent {
        Some(HeaderPick::Real) => add("x-agent-id", b"alice"),
        Some(HeaderPick::Bytes(b)) => add("x-agent-id", b),
        None => {}
    }
    match &case.key {
        Some(HeaderPick::Real) => add("x-session-key", w.alice_key.as_bytes()),
        Some(HeaderPick::Bytes(b)) => add("x-session-key", b),
        None => {}
    }
    if let Some(k) = &case.idempotency {
        add("idempotency-key", k);
    }
    for (name, value) in &case.extra {
        add(name, value);
    }
    let body = match &case.body {
        BodyPick::None => Body::empty(),
        BodyPick::Bytes(b) => Body::from(b.clone()),
        BodyPick::Json(v) => Body::from(v.to_string()),
    };
    (format!("{method} {path}"), builder.body(body).unwrap())
}

fn check(
    what: &str,
    status: u16,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(), TestCaseError> {
    prop_assert!(
        status < 500,
        "{what} → {status}: {}",
        String::from_utf8_lossy(body)
    );
    prop_assert!(
        headers.get("x-request-id").is_some_and(|v| !v.is_empty()),
        "{what} → {status} without X-Request-Id"
    );
    if status < 400 || what.starts_with("HEAD ") {
        return Ok(());
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/json") {
        // Only the skill documents answer their 404s as documents.
        prop_assert!(
            what.contains("/skill") && content_type.starts_with("text/"),
            "{what} → {status} is not JSON ({content_type})"
        );
        return Ok(());
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("{what} → {status}: not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| TestCaseError::fail(format!("{what} → {v}")))?;
    prop_assert!(
        obj.get("error").is_some_and(Value::is_string),
        "{what} → {v}"
    );
    prop_assert!(
        obj.get("message").is_some_and(Value::is_string),
        "{what} → {v}"
    );
    for key in obj.keys() {
        prop_assert!(
            ["error", "message", "details"].contains(&key.as_str()),
            "{what} → {v}"
        );
    }
    if let Some(details) = obj.get("details") {
        let list = details
            .as_array()
            .ok_or_else(|| TestCaseError::fail(format!("{what} → {v}")))?;
        for d in list {
            prop_assert!(
                d["field"].is_string() && d["problem"].is_string(),
                "{what} → {v}"
            );
        }
    }
    Ok(())
}

#[test]
fn arbitrary_requests_never_panic_never_5xx_and_errors_have_the_spec_shape() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let config = RunnerConfig {
        cases: RunnerConfig::default().cases.max(512),
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let mut runner = TestRunner::new(config);
    runner
        .run(&arb_case(), |case| {
            rt.block_on(async {
                let w = world().await;
                let (what, req) = build(&case, &w);
                let (status, headers, body) = call(&w.router, req).await;
                check(&what, status, &headers, &body)
            })
        })
        .unwrap();
}
