//! A bug in a handler (a panic) is answered, not a dropped connection: 500 `internal_error` in the
//! SPEC error shape, with a message quoting the `X-Request-Id` the response carries, and the
//! service keeps answering. The request-id/access-log middleware is the one the relay's router uses.

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use http_body_util::BodyExt;
use nexus_server::http::observe::ObserveLayer;
use serde_json::Value;
use tower::ServiceExt;

async fn call(app: &Router, uri: &str) -> (u16, Option<String>, Value) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        id,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_error_quoting_the_request_id() {
    let app = Router::new()
        .route(
            "/boom",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("a bug");
                }
                "unreachable"
            }),
        )
        .route("/fine", get(|| async { "ok" }))
        .layer(ObserveLayer::default());

    let (status, id, body) = call(&app, "/boom").await;
    assert_eq!(status, 500);
    let id = id.expect("X-Request-Id on the error");
    assert_eq!(body["error"], "internal_error");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(&id), "{message} quotes {id}");
    assert!(
        !message.contains("a bug"),
        "the panic text is logged, never answered"
    );

    let (status, other, _) = call(&app, "/fine").await;
    assert_eq!(status, 200, "the service still answers");
    assert_ne!(other.unwrap(), id, "every request has its own id");
}
