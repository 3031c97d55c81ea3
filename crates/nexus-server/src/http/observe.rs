//! Request ids and access logs. Every response carries `X-Request-Id`; every request logs one line
//! with method, route template (so session ids, agent ids in paths and pairing codes never appear:
//! `/v1/sessions/{id}/messages`), status and latency. Query strings, headers and bodies are never
//! logged (SPEC §2 "Logs"). Panics in handlers become `internal_error` answers. With a metrics
//! registry, every answer is also counted and timed there ([`HttpMetrics::observe`]).
//!
//! A hand-written tower layer rather than `axum::middleware::from_fn`: its future is a concrete
//! type, so a request costs no boxed future and no clone of the service behind it.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::response::Response;
use futures_util::FutureExt;
use futures_util::future::{CatchUnwind, OptionFuture};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use super::error::internal_error_response;
use super::metrics::HttpMetrics;
use crate::logging::ACCESS_TARGET;
use crate::secrets::{RequestId, new_request_id};

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The response header naming the request.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being handled, inside a handler.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.as_str().to_owned()).ok()
}

/// Adds [`Observe`] around a service. `ObserveLayer::default()` counts nothing;
/// [`ObserveLayer::counting`] also counts every answer in the `/metrics` registry.
#[derive(Clone, Default)]
pub struct ObserveLayer {
    metrics: Option<Arc<HttpMetrics>>,
}

impl ObserveLayer {
    /// Counts and times every answer in `metrics`.
    pub fn counting(metrics: Arc<HttpMetrics>) -> Self {
        Self {
            metrics: Some(metrics),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Gives each request an id (task-local, and `X-Request-Id` on the response), turns a panic into
/// `internal_error`, and logs (and counts) the access line when the response is ready.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Option<Arc<HttpMetrics>>,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let id = new_request_id();
        let method = req.method().clone();
        // A shared string: cloning it does not copy the template.
        let route = req.extensions().get::<MatchedPath>().cloned();
        // A panic while starting the request is answered like one while handling it.
        let started_inner =
            std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))).ok();
        let inner = AssertUnwindSafe(OptionFuture::from(started_inner)).catch_unwind();
        ObserveFuture {
            inner: REQUEST_ID.scope(id, inner),
            seen: Seen {
                started,
                id,
                method,
                route,
                metrics: self.metrics.clone(),
            },
        }
    }
}

/// What the access line needs, taken before the request is handed on.
struct Seen {
    started: Instant,
    id: RequestId,
    method: Method,
    route: Option<MatchedPath>,
    metrics: Option<Arc<HttpMetrics>>,
}

impl Seen {
    fn route(&self) -> &str {
        self.route
            .as_ref()
            .map_or("<unmatched>", MatchedPath::as_str)
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Observe`].
    pub struct ObserveFuture<F> {
        #[pin]
        inner: TaskLocalFuture<RequestId, CatchUnwind<AssertUnwindSafe<OptionFuture<F>>>>,
        seen: Seen,
    }
}

impl<F> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let seen = &*this.seen;
        let mut response = match ready!(this.inner.poll(cx)) {
            Ok(Some(Ok(response))) => response,
            Ok(Some(Err(never))) => match never {},
            Ok(None) | Err(_) => {
                tracing::error!(request_id = %seen.id, route = %seen.route(), "handler panicked");
                REQUEST_ID.sync_scope(seen.id, internal_error_response)
            }
        };
        if let Ok(v) = HeaderValue::from_str(seen.id.as_str()) {
            response.headers_mut().insert(&X_REQUEST_ID, v);
        }
        let elapsed = seen.started.elapsed();
        if let Some(metrics) = &seen.metrics {
            metrics.observe(seen.route.as_ref(), &seen.method, &response, elapsed);
        }
        tracing::info!(
            target: ACCESS_TARGET,
            request_id = %seen.id,
            method = %seen.method,
            route = %seen.route(),
            status = response.status().as_u16(),
            latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        );
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn answer(
        svc: impl Service<Request, Response = Response, Error = Infallible>,
    ) -> (u16, String, String) {
        let req = Request::builder().uri("/x").body(Body::empty()).unwrap();
        let res = ObserveLayer::default()
            .layer(svc)
            .oneshot(req)
            .await
            .unwrap();
        let id = res.headers()[&X_REQUEST_ID].to_str().unwrap().to_owned();
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, id, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn every_response_carries_a_request_id() {
        let ok = tower::service_fn(|_req: Request| async {
            let id = current_request_id().unwrap();
            Ok::<_, Infallible>(Response::new(axum::body::Body::from(id)))
        });
        let (status, id, body) = answer(ok).await;
        assert_eq!(status, 200);
        assert_eq!(id.len(), 16);
        assert_eq!(body, id, "the handler sees the same id");
    }

    #[tokio::test]
    async fn panics_become_internal_errors_quoting_the_request_id() {
        let panics_later = tower::service_fn(|_req: Request| async {
            if true {
                panic!("handler bug");
            }
            Ok::<_, Infallible>(Response::new(Body::empty()))
        });
        let (status, id, body) = answer(panics_later).await;
        assert_eq!(status, 500);
        assert!(
            body.contains("internal_error") && body.contains(&id),
            "{body}"
        );

        #[derive(Clone)]
        struct PanicsAtCall;
        impl Service<Request> for PanicsAtCall {
            type Response = Response;
            type Error = Infallible;
            type Future = std::future::Ready<Result<Response, Infallible>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request) -> Self::Future {
                panic!("bug before the future");
            }
        }
        let (status, id, body) = answer(PanicsAtCall).await;
        assert_eq!(status, 500);
        assert!(body.contains(&id), "{body}");
    }
}
