//! `/metrics`: the relay's counters in Prometheus text format (exposition format 0.0.4), and the
//! counting of every request (done by the observe layer, [`HttpMetrics::observe`]). The hot path is a few relaxed atomic increments into
//! fixed tables (route × method × status, a latency histogram per route, error codes, claim
//! outcomes): no lock, no allocation, no map lookup — which is why the text format is written
//! here rather than with a metrics crate (`prometheus-client`'s families and histograms take a
//! lock per observation). Gauges (sessions, messages, parked long-polls, store reachability) are
//! read when scraped.
//!
//! Labels are route templates (`/v1/sessions/{id}/messages`), methods, statuses, error codes,
//! claim outcomes and store operations: never a session id, key, pairing code, agent id, IP or
//! message content (SPEC §2 "Logs" applies to metrics too).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `nexus_http_requests_total` | counter | `method`, `route`, `status` |
//! | `nexus_http_request_duration_seconds` | histogram | `route` (long-polls included) |
//! | `nexus_http_errors_total` | counter | `code` (`rate_limit_exceeded` and `session_quota_exceeded` are the 429s) |
//! | `nexus_claims_total` | counter | `outcome`: `claimed`, `code_not_found`, `code_expired_or_used`, `agent_id_taken`, `session_full`, `rate_limited`, `invalid`, `error` |
//! | `nexus_sessions_active`, `nexus_agents`, `nexus_messages_stored` | gauge | — |
//! | `nexus_longpoll_waiters` | gauge | — (parked long-polls on this node) |
//! | `nexus_store_up` | gauge | `backend` |
//! | `nexus_store_operation_duration_seconds` | histogram | `op` (one Redis round trip for most ops) |
//! | `nexus_store_errors_total` | counter | `op` |
//! | `nexus_uptime_seconds`, `nexus_build_info` | gauge | `version`, `backend` |

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Extension;
use axum::extract::{MatchedPath, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use nexus_proto::{ErrorBody, ErrorCode};

use super::AppState;
use crate::histogram::{Histogram, REQUEST_BOUNDS_US, Snapshot};
use crate::store::metered::Op;

/// The label of requests that matched no route.
const UNMATCHED_LABEL: &str = "<unmatched>";
const CLAIM_ROUTE: &str = "/v1/pair/{code}/claim";

const METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "other"];
const STATUSES: &[u16] = &[
    200, 201, 301, 304, 400, 401, 403, 404, 405, 409, 413, 429, 500, 503,
];
/// Slot of statuses not listed, rendered `status="other"`.
const OTHER_STATUS: usize = STATUSES.len();

const OUTCOMES: &[&str] = &[
    "claimed",
    "code_not_found",
    "code_expired_or_used",
    "agent_id_taken",
    "session_full",
    "rate_limited",
    "invalid",
    "error",
];

fn counters(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// Every HTTP-side counter of one relay.
pub struct HttpMetrics {
    /// The router's route templates (as [`super::router`] declares them), then
    /// [`UNMATCHED_LABEL`]: a route's index into the tables below.
    routes: Vec<&'static str>,
    /// route × method × status.
    requests: Box<[AtomicU64]>,
    latency: Vec<Histogram>,
    errors: Box<[AtomicU64]>,
    claims: Box<[AtomicU64]>,
}

impl HttpMetrics {
    /// Counters for the router's route templates (anything else counts as `<unmatched>`).
    pub fn new(templates: impl IntoIterator<Item = &'static str>) -> Self {
        let mut routes: Vec<&'static str> = templates.into_iter().collect();
        routes.push(UNMATCHED_LABEL);
        Self {
            requests: counters(routes.len() * METHODS.len() * (STATUSES.len() + 1)),
            latency: routes
                .iter()
                .map(|_| Histogram::new(REQUEST_BOUNDS_US))
                .collect(),
            errors: counters(ErrorCode::ALL.len()),
            claims: counters(OUTCOMES.len()),
            routes,
        }
    }

    /// The index of `<unmatched>`.
    fn unmatched(&self) -> usize {
        self.routes.len() - 1
    }
}

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::PUT => 1,
        Method::POST => 2,
        Method::DELETE => 3,
        _ => 4,
    }
}

fn status_index(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|s| *s == status)
        .unwrap_or(OTHER_STATUS)
}

fn claim_outcome(status: u16, code: Option<ErrorCode>) -> &'static str {
    match (status, code) {
        (200, _) => "claimed",
        (_, Some(ErrorCode::CodeNotFound)) => "code_not_found",
        (_, Some(ErrorCode::CodeExpiredOrUsed)) => "code_expired_or_used",
        (_, Some(ErrorCode::AgentIdTaken)) => "agent_id_taken",
        (_, Some(ErrorCode::SessionFull)) => "session_full",
        (429, _) => "rate_limited",
        (400..=499, _) => "invalid",
        _ => "error",
    }
}

impl HttpMetrics {
    fn record(&self, route: usize, method: &Method, status: u16, code: Option<ErrorCode>) {
        let i = (route * METHODS.len() + method_index(method)) * (STATUSES.len() + 1)
            + status_index(status);
        self.requests[i].fetch_add(1, Ordering::Relaxed);
        if let Some(code) = code
            && let Some(c) = ErrorCode::ALL.iter().position(|c| *c == code)
        {
            self.errors[c].fetch_add(1, Ordering::Relaxed);
        }
        if self.routes[route] == CLAIM_ROUTE && *method == Method::POST {
            let outcome = claim_outcome(status, code);
            if let Some(o) = OUTCOMES.iter().position(|x| *x == outcome) {
                self.claims[o].fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl HttpMetrics {
    /// Counts one answered request by route template, method and status, and times it. Called by
    /// [`super::observe::Observe`] once the response is ready (rate-limited and panicked requests
    /// included), so counting costs no middleware of its own.
    pub fn observe(
        &self,
        route: Option<&MatchedPath>,
        method: &Method,
        response: &Response,
        elapsed: Duration,
    ) {
        let route = route
            .and_then(|p| self.routes.iter().position(|r| *r == p.as_str()))
            .unwrap_or_else(|| self.unmatched());
        let code = response.extensions().get::<ErrorCode>().copied();
        self.record(route, method, response.status().as_u16(), code);
        self.latency[route].observe(elapsed);
    }
}

/// Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    responses(
        (status = 200, description = "Counters, gauges and histograms in Prometheus text format 0.0.4",
            content((String = "text/plain"))),
        (status = 429, description = "`rate_limit_exceeded` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn metrics(
    State(relay): State<AppState>,
    Extension(metrics): Extension<Arc<HttpMetrics>>,
) -> Response {
    let text = render(&relay, &metrics).await;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Escapes a label value (`\`, `"`, newline).
fn label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, labels: &str, s: &Snapshot) {
    for (le, count) in &s.buckets {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", s.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", s.sum_seconds);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", s.count);
}

async fn render(relay: &AppState, m: &HttpMetrics) -> String {
    let mut out = String::with_capacity(16 * 1024);

    head(
        &mut out,
        "nexus_http_requests_total",
        "counter",
        "HTTP requests by method, route template and status.",
    );
    for (r, route) in m.routes.iter().enumerate() {
        for (mi, method) in METHODS.iter().enumerate() {
            for s in 0..=STATUSES.len() {
                let i = (r * METHODS.len() + mi) * (STATUSES.len() + 1) + s;
                let n = m.requests[i].load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let status = STATUSES
                    .get(s)
                    .map(u16::to_string)
                    .unwrap_or_else(|| "other".into());
                let _ = writeln!(
                    out,
                    "nexus_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    label(route)
                );
            }
        }
    }

    head(
        &mut out,
        "nexus_http_request_duration_seconds",
        "histogram",
        "Time from request to response by route template (long-polls include their wait).",
    );
    for (r, route) in m.routes.iter().enumerate() {
        let s = m.latency[r].snapshot();
        if s.count > 0 {
            histogram(
                &mut out,
                "nexus_http_request_duration_seconds",
                &format!("route=\"{}\"", label(route)),
                &s,
            );
        }
    }

    head(
        &mut out,
        "nexus_http_errors_total",
        "counter",
        "Error answers by code (rate_limit_exceeded and session_quota_exceeded are the 429s).",
    );
    for (i, code) in ErrorCode::ALL.iter().enumerate() {
        let _ = writeln!(
            out,
            "nexus_http_errors_total{{code=\"{}\"}} {}",
            code.as_str(),
            m.errors[i].load(Ordering::Relaxed)
        );
    }

    head(
        &mut out,
        "nexus_claims_total",
        "counter",
        "Pairing-code claims by outcome.",
    );
    for (i, outcome) in OUTCOMES.iter().enumerate() {
        let _ = writeln!(
            out,
            "nexus_claims_total{{outcome=\"{outcome}\"}} {}",
            m.claims[i].load(Ordering::Relaxed)
        );
    }

    let backend = relay.store.backend();
    let reachable = relay.store.ping().await.is_ok();
    head(
        &mut out,
        "nexus_store_up",
        "gauge",
        "1 when the store answers, 0 when it cannot be reached.",
    );
    let _ = writeln!(
        out,
        "nexus_store_up{{backend=\"{backend}\"}} {}",
        u8::from(reachable)
    );

    // Shared state (all nodes, for Redis): omitted when the store cannot be read.
    if let Ok(stats) = relay.stats().await {
        for (name, help, value) in [
            (
                "nexus_sessions_active",
                "Sessions that have not expired.",
                stats.active_sessions,
            ),
            (
                "nexus_agents",
                "Members of active sessions.",
                stats.total_agents,
            ),
            (
                "nexus_messages_stored",
                "Unexpired messages held.",
                stats.total_messages,
            ),
        ] {
            head(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {value}");
        }
    }

    head(
        &mut out,
        "nexus_longpoll_waiters",
        "gauge",
        "Long-polls parked on this node.",
    );
    let max = usize::try_from(relay.config.max_waiters).unwrap_or(usize::MAX);
    let parked = max
        .min(tokio::sync::Semaphore::MAX_PERMITS)
        .saturating_sub(relay.waiters.available());
    let _ = writeln!(out, "nexus_longpoll_waiters {parked}");

    head(
        &mut out,
        "nexus_store_operation_duration_seconds",
        "histogram",
        "Time of each store operation (for Redis: one round trip for most operations).",
    );
    for op in Op::ALL {
        let s = relay.store_timings.latency(op).snapshot();
        if s.count > 0 {
            histogram(
                &mut out,
                "nexus_store_operation_duration_seconds",
                &format!("op=\"{}\"", op.name()),
                &s,
            );
        }
    }
    head(
        &mut out,
        "nexus_store_errors_total",
        "counter",
        "Failed store operations (Redis unreachable, …).",
    );
    for op in Op::ALL {
        let _ = writeln!(
            out,
            "nexus_store_errors_total{{op=\"{}\"}} {}",
            op.name(),
            relay.store_timings.errors(op)
        );
    }

    head(
        &mut out,
        "nexus_uptime_seconds",
        "gauge",
        "Seconds since this node started.",
    );
    let _ = writeln!(out, "nexus_uptime_seconds {}", relay.uptime());
    head(
        &mut out,
        "nexus_build_info",
        "gauge",
        "Version and storage backend of this node.",
    );
    let _ = writeln!(
        out,
        "nexus_build_info{{version=\"{}\",backend=\"{backend}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_land_in_their_route_method_and_status() {
        let m = HttpMetrics::new(["/health", CLAIM_ROUTE]);
        let claim = m.routes.iter().position(|r| *r == CLAIM_ROUTE).unwrap();
        m.record(claim, &Method::POST, 404, Some(ErrorCode::CodeNotFound));
        m.record(claim, &Method::POST, 200, None);
        m.record(m.unmatched(), &Method::PATCH, 418, None);
        let load = |i: usize| m.claims[i].load(Ordering::Relaxed);
        assert_eq!((load(0), load(1), load(2)), (1, 1, 0));
        let other = (m.unmatched() * METHODS.len() + 4) * (STATUSES.len() + 1) + OTHER_STATUS;
        assert_eq!(m.requests[other].load(Ordering::Relaxed), 1);
        let not_found = ErrorCode::ALL
            .iter()
            .position(|c| *c == ErrorCode::CodeNotFound)
            .unwrap();
        assert_eq!(m.errors[not_found].load(Ordering::Relaxed), 1);
    }

    #[test]
    fn claim_outcomes() {
        assert_eq!(
            claim_outcome(429, Some(ErrorCode::RateLimitExceeded)),
            "rate_limited"
        );
        assert_eq!(
            claim_outcome(409, Some(ErrorCode::SessionFull)),
            "session_full"
        );
        assert_eq!(
            claim_outcome(400, Some(ErrorCode::MissingAgentId)),
            "invalid"
        );
        assert_eq!(
            claim_outcome(503, Some(ErrorCode::StoreUnavailable)),
            "error"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
