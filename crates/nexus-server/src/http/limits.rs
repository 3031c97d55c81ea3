//! The client IP and the per-IP rate limit (SPEC §2 "Safety middleware"), applied before any
//! other work. The client IP is the TCP peer, unless the peer is a trusted proxy
//! (`TRUSTED_PROXIES`): then it is the right-most `X-Forwarded-For` hop that is not a trusted
//! proxy. A spoofed header from an untrusted peer changes nothing. `/health` is exempt. The
//! counters are the relay's [`crate::domain::limits::LimitCounters`] (in Redis when
//! nodes share one), so the limit holds across nodes.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::AppState;
use crate::config::TrustedProxies;
use crate::domain::rate_limited;
use crate::store::StoreResult;

/// The client's address, as decided here, for handlers that count per client (claims). As an
/// extractor it reuses the address the rate limit resolved (kept in the request when the limit
/// is on) or resolves it.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, relay: &AppState) -> Result<Self, Infallible> {
        Ok(match parts.extensions.get::<ClientIp>() {
            Some(ip) => *ip,
            None => ClientIp(request_client_ip(
                &parts.headers,
                &parts.extensions,
                &relay.config.trusted_proxies,
            )),
        })
    }
}

/// The client address of a request: its TCP peer (from `ConnectInfo`; "localhost" without a
/// socket, as in router tests) and its `X-Forwarded-For` hops, through [`client_ip`].
fn request_client_ip(
    headers: &HeaderMap,
    extensions: &Extensions,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip());
    // Borrowed unless a value is not UTF-8 (then its bad bytes become U+FFFD: an unreadable
    // hop). Nothing is allocated for a request without the header.
    let forwarded: Vec<Cow<'_, str>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .collect();
    client_ip(peer, forwarded.iter().flat_map(|v| v.split(',')), trusted)
}

/// Resolves the client address from the peer and its `X-Forwarded-For` hops (left to right).
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded.rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted.contains(ip) {
                    break;
                }
            }
            // A hop we cannot read: the nearest readable one is all we know.
            Err(_) => break,
        }
    }
    client
}

/// Paths never rate-limited: cheap, and what load balancers poll. (`/metrics` is limited like
/// any other path: a scraper every few seconds is far below any sensible limit.)
const EXEMPT: &[&str] = &["/health"];

/// Adds [`RateLimit`] around a service.
#[derive(Clone)]
pub struct RateLimitLayer {
    relay: AppState,
}

impl RateLimitLayer {
    pub fn new(relay: AppState) -> Self {
        Self { relay }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            relay: self.relay.clone(),
        }
    }
}

/// Resolves the client IP (kept in the request as [`ClientIp`]) and counts the request against
/// `RATE_LIMIT_PER_MINUTE` before the service behind it sees it (with the limit off, or on an
/// exempt path, it does neither: the claim handler's [`ClientIp`] resolves the address itself); past the limit, answers 429
/// `rate_limit_exceeded` with `Retry-After`. A hand-written tower service (like
/// [`super::observe::Observe`]) rather than `axum::middleware::from_fn`: with the limit off or
/// for exempt paths a request costs no boxed future here, and a parked long-poll keeps none.
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    relay: AppState,
}

type Check = Pin<Box<dyn Future<Output = StoreResult<Result<(), u64>>> + Send>>;

impl<S> Service<Request> for RateLimit<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RateLimitFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let limit = self.relay.config.rate_limit_per_minute;
        if limit == 0 || EXEMPT.contains(&req.uri().path()) {
            return RateLimitFuture::Inner {
                future: self.inner.call(req),
            };
        }
        let ip = request_client_ip(
            req.headers(),
            req.extensions(),
            &self.relay.config.trusted_proxies,
        );
        req.extensions_mut().insert(ClientIp(ip));
        let relay = self.relay.clone();
        let check: Check = Box::pin(async move {
            relay
                .counters
                .hit_request(ip, limit, relay.clock.now_ms())
                .await
        });
        // The service made ready by `poll_ready` is the one that will be called.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        RateLimitFuture::Checking {
            check,
            next: Some((ready, req)),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RateLimit`].
    #[project = RateLimitProj]
    pub enum RateLimitFuture<S: Service<Request>> {
        Checking { check: Check, next: Option<(S, Request)> },
        Inner { #[pin] future: S::Future },
    }
}

impl<S> Future for RateLimitFuture<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                RateLimitProj::Inner { future } => return future.poll(cx),
                RateLimitProj::Checking { check, next } => {
                    match ready!(check.as_mut().poll(cx)) {
                        Ok(Ok(())) => {}
                        Ok(Err(secs)) => {
                            return Poll::Ready(Ok(rate_limited(
                                secs,
                                "too many requests from this address",
                            )
                            .into_response()));
                        }
                        // The counters are unreachable (Redis down): fail open. Whatever needs
                        // the store fails on its own with 503; documents and `/health` keep being
                        // served.
                        Err(e) => {
                            tracing::warn!(error = %e, "rate-limit counters unavailable; request let through")
                        }
                    }
                    let Some((mut service, req)) = next.take() else {
                        // Polled again after it answered: nothing is left to run.
                        return Poll::Pending;
                    };
                    let future = service.call(req);
                    self.set(RateLimitFuture::Inner { future });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use async_trait::async_trait;
    use axum::body::Body;
    use tower::ServiceExt;

    use crate::clock::Clock;
    use crate::config::Config;
    use crate::domain::Relay;
    use crate::domain::limits::LimitCounters;
    use crate::store::StoreError;
    use crate::store::embedded::EmbeddedStore;
    use nexus_proto::time::Millis;

    /// Counters whose store is down.
    struct Unreachable;

    #[async_trait]
    impl LimitCounters for Unreachable {
        async fn hit_request(&self, _: IpAddr, _: u64, _: Millis) -> StoreResult<Result<(), u64>> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn check_claims(
            &self,
            _: IpAddr,
            _: u64,
            _: u64,
            _: Millis,
        ) -> StoreResult<Result<(), u64>> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn record_claim_failure(&self, _: IpAddr, _: Millis) -> StoreResult<()> {
            Err(StoreError::Unavailable("down".into()))
        }
    }

    #[tokio::test]
    async fn unreachable_counters_let_requests_through() {
        let mut config = Config::defaults();
        config.rate_limit_per_minute = 1;
        let store = Arc::new(EmbeddedStore::in_memory(Relay::deadlines(&config)));
        let relay = Relay::new(config, Clock::starting_at(0), store, "http://x".into())
            .with_counters(Arc::new(Unreachable));
        let app = crate::http::router(Arc::new(relay));
        // Over the limit of 1 twice: the counters cannot say so, so nothing is refused.
        for _ in 0..3 {
            let req = Request::builder()
                .uri("/v1/stats")
                .body(Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), 200);
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let got = client_ip(ip("203.0.113.9"), ["1.2.3.4"].into_iter(), &trusted);
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn trusted_proxies_yield_the_rightmost_untrusted_hop() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let hops = ["6.6.6.6", "198.51.100.7", "10.0.0.2"];
        assert_eq!(
            client_ip(ip("10.0.0.1"), hops.into_iter(), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), [].into_iter(), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), ["junk", "10.0.0.3"].into_iter(), &trusted),
            ip("10.0.0.3")
        );
    }
}
