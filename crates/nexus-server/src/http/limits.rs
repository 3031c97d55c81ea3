//! The client IP and the per-IP rate limit (SPEC §2 "Safety middleware"), applied before any
//! other work. The client IP is the TCP peer, unless the peer is a trusted proxy
//! (`TRUSTED_PROXIES`): then it is the right-most `X-Forwarded-For` hop that is not a trusted
//! proxy. A spoofed header from an untrusted peer changes nothing. `/health` is exempt. The
//! counters are the relay's [`crate::domain::limits::LimitCounters`] (in Redis when
//! nodes share one), so the limit holds across nodes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::config::TrustedProxies;
use crate::domain::rate_limited;

/// The client's address, as decided here, for handlers that count per client (claims).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

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

pub async fn rate_limit(State(relay): State<AppState>, mut req: Request, next: Next) -> Response {
    // Without a socket (router tests), requests come from "localhost".
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let forwarded: Vec<String> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let ip = client_ip(
        peer,
        forwarded.iter().flat_map(|v| v.split(',')),
        &relay.config.trusted_proxies,
    );
    req.extensions_mut().insert(ClientIp(ip));
    let limit = relay.config.rate_limit_per_minute;
    if limit > 0 && !EXEMPT.contains(&req.uri().path()) {
        match relay
            .counters
            .hit_request(ip, limit, relay.clock.now_ms())
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(secs)) => {
                return rate_limited(secs, "too many requests from this address").into_response();
            }
            // The counters are unreachable (Redis down): fail open. Whatever needs the store
            // fails on its own with 503; documents and `/health` keep being served.
            Err(e) => {
                tracing::warn!(error = %e, "rate-limit counters unavailable; request let through")
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

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
