//! The HTTP client (SPEC §3 "Timeouts" and "Conventions"): one reqwest client, bounded time per
//! request, no redirects, no retries.
//!
//! Every request is limited to `NEXUS_HTTP_TIMEOUT` seconds (default 10) plus the long-poll wait
//! it asks for; status probes (`ls`, `doctor`) use `NEXUS_STATUS_TIMEOUT` (default 3). A reply is a
//! success only when it is 2xx **and** a JSON object; anything else becomes a [`Failure`]: a JSON
//! error body is passed through verbatim, any other body (a proxy's HTML page, an empty body, a
//! non-JSON 2xx) becomes `{"error":"non_json_response"}` with the first 500 bytes on stderr, and no
//! reply at all becomes `{"error":"transport_error","message":...}`. A reply body is read up to
//! [`MAX_REPLY_BYTES`]; a larger one (no relay sends one: a poll page holds at most `limit`
//! messages of at most `MAX_BODY_BYTES` each) is a `transport_error` and is not read further, so a
//! misbehaving server cannot make the CLI hold an unbounded reply in memory.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::output::{Failure, Ui};

/// Default of `NEXUS_HTTP_TIMEOUT`.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `NEXUS_STATUS_TIMEOUT`.
pub const DEFAULT_STATUS_TIMEOUT: Duration = Duration::from_secs(3);
/// Limit of the `/health` capability probe before `send --json`.
pub const CAPS_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest reply body the CLI reads (64 MiB).
pub const MAX_REPLY_BYTES: usize = 64 << 20;

/// Reads a timeout in seconds (decimals allowed, as curl's `--max-time`) from the environment.
pub fn env_timeout(name: &str, default: Duration) -> Duration {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(default)
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    method: reqwest::Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    timeout: Option<Duration>,
}

impl Request {
    fn new(method: reqwest::Method, url: String) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            query: Vec::new(),
            body: None,
            timeout: None,
        }
    }
    pub fn get(url: String) -> Self {
        Self::new(reqwest::Method::GET, url)
    }
    pub fn post(url: String) -> Self {
        Self::new(reqwest::Method::POST, url)
    }
    pub fn put(url: String) -> Self {
        Self::new(reqwest::Method::PUT, url)
    }
    pub fn delete(url: String) -> Self {
        Self::new(reqwest::Method::DELETE, url)
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }
    /// A JSON body (and `Content-Type: application/json`).
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    /// Overrides the client's default time limit for this request.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
}

/// An HTTP reply of any status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The body as text (lossy UTF-8).
    pub raw: String,
    /// The body, when it is a JSON object.
    pub json: Option<Map<String, Value>>,
    /// `Retry-After` in seconds, when present.
    pub retry_after: Option<u64>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `error` code of a JSON error body.
    pub fn error_code(&self) -> Option<&str> {
        self.json.as_ref()?.get("error")?.as_str()
    }

    /// A field of the JSON body.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.json.as_ref()?.get(key)
    }

    /// A string field of the JSON body, when non-empty.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str().filter(|s| !s.is_empty())
    }

    /// The failure this reply stands for, when it is not a 2xx JSON object.
    pub fn failure(&self, ui: &Ui) -> Option<Failure> {
        match (&self.json, self.is_success()) {
            (Some(_), true) => None,
            (Some(_), false) => Some(Failure {
                retry_after: self.retry_after,
                ..Failure::passthrough(&self.raw)
            }),
            (None, _) => {
                if !self.raw.trim().is_empty() {
                    let head: String = self.raw.chars().take(500).collect();
                    ui.line(format!(
                        "→ non-JSON response (possible proxy/LB error): HTTP {}",
                        self.status
                    ));
                    ui.line(head);
                }
                Some(Failure {
                    retry_after: self.retry_after,
                    ..Failure::non_json()
                })
            }
        }
    }
}

/// No HTTP reply at all: refused, timed out, DNS, TLS, bad URL.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportError(pub String);

impl From<TransportError> for Failure {
    fn from(e: TransportError) -> Self {
        Failure::transport(e.0)
    }
}

/// Turns a call's result into the success reply or the failure to print.
pub fn checked(result: Result<Reply, TransportError>, ui: &Ui) -> Result<Reply, Failure> {
    let reply = result?;
    match reply.failure(ui) {
        Some(f) => Err(f),
        None => Ok(reply),
    }
}

/// The shared HTTP client.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    /// `NEXUS_HTTP_TIMEOUT`.
    pub timeout: Duration,
    /// `NEXUS_STATUS_TIMEOUT`.
    pub status_timeout: Duration,
}

impl Http {
    pub fn from_env() -> Result<Self, Failure> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("nexus/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::coded("internal_error", format!("HTTP client: {e}")))?;
        Ok(Self {
            client,
            timeout: env_timeout("NEXUS_HTTP_TIMEOUT", DEFAULT_HTTP_TIMEOUT),
            status_timeout: env_timeout("NEXUS_STATUS_TIMEOUT", DEFAULT_STATUS_TIMEOUT),
        })
    }

    /// Sends a request and reads the whole reply.
    pub async fn call(&self, req: Request) -> Result<Reply, TransportError> {
        let mut b = self
            .client
            .request(req.method, &req.url)
            .timeout(req.timeout.unwrap_or(self.timeout));
        for (k, v) in &req.headers {
            b = b.header(*k, v);
        }
        if !req.query.is_empty() {
            b = b.query(&req.query);
        }
        if let Some(body) = &req.body {
            b = b
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let resp = b.send().await.map_err(describe)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let too_large = || {
            TransportError(format!(
                "reply larger than {} MiB; not read",
                MAX_REPLY_BYTES >> 20
            ))
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_REPLY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut resp = resp;
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(describe)? {
            if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let json = match serde_json::from_str::<Value>(&raw) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        };
        Ok(Reply {
            status,
            raw,
            json,
            retry_after,
        })
    }
}

/// A reqwest error with its causes, e.g. "error sending request: connection refused".
fn describe(e: reqwest::Error) -> TransportError {
    let mut msg = if e.is_timeout() {
        "request timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    TransportError(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, raw: &str) -> Reply {
        Reply {
            status,
            raw: raw.to_owned(),
            json: match serde_json::from_str(raw) {
                Ok(Value::Object(m)) => Some(m),
                _ => None,
            },
            retry_after: None,
        }
    }

    #[test]
    fn classification_of_replies() {
        let ui = Ui { quiet: true };
        assert!(reply(200, r#"{"ok":true}"#).failure(&ui).is_none());
        assert_eq!(
            reply(404, r#"{"error":"session_not_found","message":"x"}"#)
                .failure(&ui)
                .unwrap()
                .stdout,
            r#"{"error":"session_not_found","message":"x"}"#
        );
        for (status, body) in [
            (502, "<html>"),
            (200, "<html>"),
            (200, ""),
            (200, "null"),
            (301, ""),
        ] {
            assert_eq!(
                reply(status, body).failure(&ui),
                Some(Failure::non_json()),
                "{status} {body}"
            );
        }
        assert_eq!(
            checked(Err(TransportError("refused".into())), &ui).unwrap_err(),
            Failure::transport("refused")
        );
    }

    #[test]
    fn timeouts_from_env_fall_back_on_garbage() {
        assert_eq!(
            env_timeout("NEXUS_TEST_UNSET_TIMEOUT", Duration::from_secs(3)),
            Duration::from_secs(3)
        );
    }
}
