//! Request ids and access logs. Every response carries `X-Request-Id`; every request logs one line
//! with method, route template (so session ids, agent ids in paths and pairing codes never appear:
//! `/v1/sessions/{id}/messages`), status and latency. Query strings, headers and bodies are never
//! logged (SPEC §2 "Logs"). Panics in handlers become `internal_error` answers.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::FutureExt;

use super::error::internal_error_response;
use crate::logging::ACCESS_TARGET;
use crate::secrets::{RequestId, new_request_id};

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The id of the request being handled, inside a handler.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.as_str().to_owned()).ok()
}

pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = new_request_id();
    let method = req.method().clone();
    // A shared string: cloning it does not copy the template.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("<unmatched>", MatchedPath::as_str);
    let run = std::panic::AssertUnwindSafe(next.run(req)).catch_unwind();
    let mut response = match REQUEST_ID.scope(id, run).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(request_id = %id, route = %route, "handler panicked");
            REQUEST_ID.sync_scope(id, internal_error_response)
        }
    };
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert("x-request-id", v);
    }
    tracing::info!(
        target: ACCESS_TARGET,
        request_id = %id,
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
    );
    response
}
