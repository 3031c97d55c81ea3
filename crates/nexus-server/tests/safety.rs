//! Router tests for SPEC §2 "Safety middleware" as far as the relay issue goes: the per-IP rate
//! limit with `Retry-After` (and `/health` exempt), the client IP behind trusted proxies, and the
//! failed-claim budget.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use nexus_server::clock::Clock;
use nexus_server::config::{Config, TrustedProxies};
use nexus_server::domain::Relay;
use nexus_server::store::embedded::EmbeddedStore;
use serde_json::Value;
use tower::ServiceExt;

fn app(tweak: impl FnOnce(&mut Config)) -> axum::Router {
    let mut config = Config::defaults();
    tweak(&mut config);
    let store = Arc::new(EmbeddedStore::in_memory(Relay::deadlines(&config)));
    let relay = Relay::new(
        config,
        Clock::starting_at(1_795_600_800_000),
        store,
        "http://relay.test".into(),
    );
    nexus_server::http::router(Arc::new(relay))
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, Option<String>, Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        retry,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn get(path: &str, forwarded_for: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(xff) = forwarded_for {
        b = b.header("x-forwarded-for", xff);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn rate_limit_answers_429_with_retry_after_and_spares_health() {
    let app = app(|c| c.rate_limit_per_minute = 2);
    for _ in 0..2 {
        assert_eq!(call(&app, get("/v1/stats", None)).await.0, StatusCode::OK);
    }
    let (status, retry, body) = call(&app, get("/v1/stats", None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "rate_limit_exceeded");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(call(&app, get("/health", None)).await.0, StatusCode::OK);
    // The window ends: requests are accepted again.
    tokio::time::advance(std::time::Duration::from_secs(retry)).await;
    assert_eq!(call(&app, get("/v1/stats", None)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    // Router tests have no socket: the peer is 127.0.0.1, which is not trusted here.
    let app = app(|c| c.rate_limit_per_minute = 1);
    assert_eq!(
        call(&app, get("/v1/stats", Some("1.1.1.1"))).await.0,
        StatusCode::OK
    );
    let (status, _, _) = call(&app, get("/v1/stats", Some("2.2.2.2"))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let app = app(|c| {
        c.rate_limit_per_minute = 1;
        c.trusted_proxies = TrustedProxies::parse("127.0.0.0/8").unwrap();
    });
    assert_eq!(
        call(&app, get("/v1/stats", Some("1.1.1.1"))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, get("/v1/stats", Some("2.2.2.2"))).await.0,
        StatusCode::OK
    );
    let (status, _, _) = call(&app, get("/v1/stats", Some("9.9.9.9, 1.1.1.1"))).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "right-most untrusted hop is 1.1.1.1"
    );
}

fn claim(code: &str, agent: &str) -> Request<Body> {
    Request::post(format!("/v1/pair/{code}/claim"))
        .header("x-agent-id", agent)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn failed_claims_spend_the_budget_then_even_good_codes_get_429() {
    let app = app(|c| {
        c.rate_limit_per_minute = 0;
        c.claim_failures_per_minute = 2;
    });
    let created = call(
        &app,
        Request::put("/v1/sessions").body(Body::from("{}")).unwrap(),
    )
    .await
    .2;
    let sid = created["sessionId"].as_str().unwrap();
    let pair = call(
        &app,
        Request::put("/v1/pair")
            .body(Body::from(format!(r#"{{"sessionId":"{sid}"}}"#)))
            .unwrap(),
    )
    .await
    .2;
    let code = pair["code"].as_str().unwrap();
    // 400s do not count.
    let (status, _, _) = call(
        &app,
        Request::post("/v1/pair/NOPE-NOPE-00000/claim")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for bad in ["ABANDON-ABILITY-00000", "not-a-code"] {
        let (status, _, body) = call(&app, claim(bad, "b")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "code_not_found");
    }
    let (status, retry, body) = call(&app, claim(code, "b")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "rate_limit_exceeded");
    assert!(retry.is_some());
}

#[tokio::test]
async fn the_global_claim_budget_holds_across_addresses() {
    let app = app(|c| {
        c.rate_limit_per_minute = 0;
        c.claim_failures_global_per_minute = 1;
        c.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
    });
    let first = Request::post("/v1/pair/ABANDON-ABILITY-00000/claim")
        .header("x-agent-id", "b")
        .header("x-forwarded-for", "1.1.1.1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, first).await.0, StatusCode::NOT_FOUND);
    let second = Request::post("/v1/pair/ABANDON-ABILITY-00000/claim")
        .header("x-agent-id", "b")
        .header("x-forwarded-for", "2.2.2.2")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, second).await.0, StatusCode::TOO_MANY_REQUESTS);
}
