//! Test harness for the real `nexus-server` binary: start it on a free loopback port, talk to it
//! with a tiny HTTP/1.1 client (one connection per request, `Connection: close`), stop it with
//! SIGTERM. A [`Server`] kills its process when dropped, so a failing test never leaks one.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_nexus-server");

/// Every environment variable the server reads (SPEC §2 "Configuration"): removed from the child's
/// environment so the developer's shell cannot change what a test sees.
pub const CONFIG_ENV: &[&str] = &[
    "HOST",
    "PORT",
    "PUBLIC_URL",
    "DATA_DIR",
    "MAX_TTL_SECONDS",
    "MAX_AGENTS",
    "AGENT_INACTIVITY_SECONDS",
    "PAIR_CODE_TTL_SECONDS",
    "RATE_LIMIT_PER_MINUTE",
    "TRUSTED_PROXIES",
    "CLAIM_FAILURES_PER_MINUTE",
    "CLAIM_FAILURES_GLOBAL_PER_MINUTE",
    "REQUIRE_SESSION_KEY",
    "MAX_BODY_BYTES",
    "MAX_MESSAGES_PER_SESSION",
    "MAX_SESSIONS",
    "MAX_CONNECTIONS",
    "MAX_WAITERS",
    "HEADER_READ_TIMEOUT_SECONDS",
    "LOG",
    "TLS_CERT",
    "TLS_KEY",
    "REDIS_URL",
];

/// Longest any single request may take before the test fails (the longest long-poll is 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

/// A running `nexus-server`. Dropping it kills the process.
pub struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<u8>>>,
    drains: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts the binary on `127.0.0.1`, port 0, with `data_dir` and the `extra` flags, and waits
    /// for its `{"listening": ...}` line.
    pub async fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(BIN);
        for var in CONFIG_ENV {
            cmd.env_remove(var);
        }
        cmd.args(["--host", "127.0.0.1", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn nexus-server");
        let pid = child.id().expect("child pid");

        // Drain stderr continuously: a full pipe would block the server's logging.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err_pipe = child.stderr.take().expect("stderr pipe");
        let sink = stderr.clone();
        let err_drain = tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            loop {
                match err_pipe.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        });

        let mut out = BufReader::new(child.stdout.take().expect("stdout pipe"));
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(30), out.read_line(&mut line)).await;
        let ready = match read {
            Ok(Ok(n)) if n > 0 => line.clone(),
            other => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                let _ = err_drain.await;
                panic!(
                    "nexus-server did not print its address ({other:?}); stderr:\n{}",
                    String::from_utf8_lossy(&stderr.lock().unwrap())
                );
            }
        };
        let out_drain = tokio::spawn(async move {
            let mut rest = Vec::new();
            let _ = out.read_to_end(&mut rest).await;
        });

        let v: Value = serde_json::from_str(ready.trim())
            .unwrap_or_else(|e| panic!("ready line {ready:?} is not JSON: {e}"));
        let url = v["listening"]
            .as_str()
            .unwrap_or_else(|| panic!("ready line {ready:?} has no \"listening\""));
        let hostport = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("listening URL {url:?} is not http://"));
        let addr: SocketAddr = hostport
            .parse()
            .unwrap_or_else(|e| panic!("listening address {hostport:?}: {e}"));
        assert!(
            addr.ip().is_loopback(),
            "server must listen on loopback, got {addr}"
        );
        assert_ne!(addr.port(), 0);

        Server {
            child,
            pid,
            addr,
            stderr,
            drains: vec![err_drain, out_drain],
        }
    }

    pub fn client(&self) -> Client {
        Client { addr: self.addr }
    }

    /// Sends SIGTERM (without libc: through `kill(1)`).
    pub fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed: {status}", self.pid);
    }

    /// Waits for the process to exit, at most `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => {
                let status = status.expect("wait for nexus-server");
                for d in self.drains.drain(..) {
                    let _ = tokio::time::timeout(Duration::from_secs(5), d).await;
                }
                status
            }
            Err(_) => {
                let _ = self.child.start_kill();
                panic!(
                    "nexus-server did not exit within {limit:?}; stderr:\n{}",
                    self.stderr_text()
                );
            }
        }
    }

    /// SIGTERM, then wait (at most 10 s) and return the exit status.
    pub async fn stop(mut self) -> (ExitStatus, String) {
        self.sigterm();
        let status = self.wait_exit(Duration::from_secs(10)).await;
        (status, self.stderr_text())
    }

    /// SIGKILL (no chance to flush anything), and wait for the process to be gone.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }

    /// Everything the server wrote on stderr so far.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // No-op if it already exited; otherwise SIGKILL (kill_on_drop also covers this).
        let _ = self.child.start_kill();
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (panics with the raw body otherwise).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }
}

/// A minimal HTTP/1.1 client for one server; every request opens its own connection.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    pub addr: SocketAddr,
}

impl Client {
    /// `method path` with `headers` and an optional JSON body; reads the response to EOF.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Response {
        let fut = raw_request(self.addr, method, path, headers, body);
        match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Ok(Ok(r)) => {
                // SPEC §2: every response carries X-Request-Id.
                assert!(
                    r.header("x-request-id").is_some_and(|v| !v.is_empty()),
                    "{method} {path}: response {} without X-Request-Id",
                    r.status
                );
                r
            }
            Ok(Err(e)) => panic!("{method} {path}: {e}"),
            Err(_) => panic!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}"),
        }
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers, None).await
    }

    pub async fn put(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Response {
        self.request("PUT", path, headers, Some(body)).await
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Response {
        self.request("POST", path, headers, body).await
    }

    pub async fn delete(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("DELETE", path, headers, None).await
    }
}

async fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> std::io::Result<Response> {
    let body = body.map(|b| b.to_string().into_bytes());
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match &body {
        Some(b) => head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        )),
        None if method != "GET" => head.push_str("Content-Length: 0\r\n"),
        None => {}
    }
    head.push_str("\r\n");

    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut request = head.into_bytes();
    request.extend_from_slice(body.as_deref().unwrap_or_default());
    stream.write_all(&request).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse_response(&raw).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header terminator in {:?}", String::from_utf8_lossy(raw)))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|e| format!("header not UTF-8: {e}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let rest = &raw[split + 4..];
    let body = if find("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = find("content-length") {
        let len: usize = len
            .parse()
            .map_err(|e| format!("bad content-length: {e}"))?;
        if rest.len() < len {
            return Err(format!(
                "body has {} bytes, content-length {len}",
                rest.len()
            ));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line not terminated")?;
        let size_line = std::str::from_utf8(&data[..eol]).map_err(|e| e.to_string())?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|e| format!("bad chunk size {size_hex:?}: {e}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out); // trailers, if any, are ignored
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
