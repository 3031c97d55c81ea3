//! Hostile clients against the real binary (issue 4, item 7): slowloris, idle connections, the
//! cap on open connections (`MAX_CONNECTIONS`) and on parked long-polls (`MAX_WAITERS`, 503
//! `server_busy`), oversized headers, invalid UTF-8 in headers, paths and bodies, deeply nested
//! JSON and ids with path tricks. Each is answered with a JSON error of the SPEC shape or the
//! connection is closed; never a 5xx, and the server keeps serving afterwards.

#[allow(dead_code)]
mod harness;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use harness::{Client, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the server did with a raw request.
#[derive(Debug)]
enum Outcome {
    /// The connection was closed (or reset) without a response.
    Closed,
    /// A response: status, head, body.
    Answered {
        status: u16,
        head: String,
        body: Vec<u8>,
    },
}

/// Writes `request` as is and reads until the server closes the connection (at most 15 s).
async fn raw(addr: SocketAddr, request: &[u8]) -> Outcome {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may close before reading everything: a failed write is a close.
    if stream.write_all(request).await.is_err() {
        return Outcome::Closed;
    }
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server neither answered nor closed");
    parse(&got)
}

fn parse(raw: &[u8]) -> Outcome {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Outcome::Closed;
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Outcome::Answered { status, head, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap().trim(), 16)
            .expect("chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

/// A request with `Connection: close`, an optional body and extra raw header lines.
fn request(method: &str, path: &[u8], headers: &[&[u8]], body: Option<&[u8]>) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(method.as_bytes());
    r.push(b' ');
    r.extend_from_slice(path);
    r.extend_from_slice(b" HTTP/1.1\r\nHost: relay.test\r\nConnection: close\r\n");
    for h in headers {
        r.extend_from_slice(h);
        r.extend_from_slice(b"\r\n");
    }
    if let Some(b) = body {
        r.extend_from_slice(
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            )
            .as_bytes(),
        );
    } else if method != "GET" {
        r.extend_from_slice(b"Content-Length: 0\r\n");
    }
    r.extend_from_slice(b"\r\n");
    if let Some(b) = body {
        r.extend_from_slice(b);
    }
    r
}

/// The SPEC error shape: `{"error": string, "message": string, "details"?: [{field, problem}]}`.
fn assert_error_shape(body: &[u8], what: &str) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: error body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    });
    let obj = v.as_object().unwrap_or_else(|| panic!("{what}: {v}"));
    assert!(obj["error"].is_string(), "{what}: {v}");
    assert!(obj["message"].is_string(), "{what}: {v}");
    for key in obj.keys() {
        assert!(
            ["error", "message", "details"].contains(&key.as_str()),
            "{what}: unexpected field {key} in {v}"
        );
    }
    if let Some(details) = obj.get("details") {
        for d in details.as_array().unwrap_or_else(|| panic!("{what}: {v}")) {
            assert!(
                d["field"].is_string() && d["problem"].is_string(),
                "{what}: {v}"
            );
        }
    }
    v
}

/// Closed, or a 4xx whose body (when it comes from the relay, i.e. has `X-Request-Id`) is a JSON
/// error. Returns the error code when there is one.
fn refused_cleanly(outcome: &Outcome, what: &str) -> Option<String> {
    match outcome {
        Outcome::Closed => None,
        Outcome::Answered { status, head, body } => {
            assert!(
                (400..500).contains(status),
                "{what}: status {status}, body {:?}",
                String::from_utf8_lossy(body)
            );
            let from_relay = head.to_ascii_lowercase().contains("x-request-id:");
            if from_relay || !body.is_empty() {
                let v = assert_error_shape(body, what);
                return v["error"].as_str().map(str::to_owned);
            }
            None
        }
    }
}

fn expect_code(outcome: &Outcome, status: u16, code: &str, what: &str) {
    match outcome {
        Outcome::Answered {
            status: got, body, ..
        } => {
            let v = assert_error_shape(body, what);
            assert_eq!(
                (*got, v["error"].as_str().unwrap()),
                (status, code),
                "{what}: {v}"
            );
        }
        Outcome::Closed => panic!("{what}: closed, expected {status} {code}"),
    }
}

async fn healthy(c: &Client) {
    assert_eq!(c.get("/health", &[]).await.status, 200);
}

async fn create_session(c: &Client, creator: &str) -> (String, String) {
    let v = c
        .put("/v1/sessions", &[], &json!({ "creatorAgentId": creator }))
        .await
        .expect(201);
    (
        v["sessionId"].as_str().unwrap().to_owned(),
        v["sessionKey"].as_str().unwrap().to_owned(),
    )
}

/// Reads from `stream` until it is closed; how long that took (panics past `limit`).
async fn closed_within(stream: &mut (impl AsyncRead + Unpin), limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {} // a 408 or similar before the close is fine
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the connection was not closed within {limit:?}"
    );
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_idle_connections_are_closed_after_the_header_timeout() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &["--header-read-timeout-seconds", "1"]).await;
    let c = server.client();

    // Headers trickled one byte every 100 ms never complete: closed after about 1 s.
    let (mut slow_read, mut slow_write) = TcpStream::connect(c.addr).await.unwrap().into_split();
    let trickle = tokio::spawn(async move {
        for b in
            b"GET /health HTTP/1.1\r\nHost: relay.test\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        {
            if slow_write.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    // A connection that sends nothing at all, and one idle after a complete keep-alive request.
    let mut silent = TcpStream::connect(c.addr).await.unwrap();
    let mut idle = TcpStream::connect(c.addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: relay.test\r\n\r\n")
        .await
        .unwrap();

    let took = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(4), "{took:?}");
    closed_within(&mut idle, Duration::from_secs(5)).await;
    let took = closed_within(&mut slow_read, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(4), "{took:?}");
    trickle.abort();

    healthy(&c).await;
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_connections_are_closed_and_slots_come_back() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &["--max-connections", "3"]).await;
    let c = server.client();

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(c.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let over = raw(c.addr, &request("GET", b"/health", &[], None)).await;
    assert!(matches!(over, Outcome::Closed), "{over:?}");

    // Free one slot: requests are served again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match raw(c.addr, &request("GET", b"/health", &[], None)).await {
            Outcome::Answered { status, .. } => {
                assert_eq!(status, 200);
                break;
            }
            Outcome::Closed if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Outcome::Closed => panic!("no slot came back after a connection closed"),
        }
    }
    drop(held);
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_polls_past_max_waiters_answer_503_server_busy() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &["--max-waiters", "2"]).await;
    let c = server.client();
    let (sid, key) = create_session(&c, "alice").await;
    let path = format!("/v1/sessions/{sid}/messages?after=0&wait=30");

    let parked: Vec<_> = (0..2)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move { c.get(&path, &[("X-Agent-Id", "alice")]).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(parked.iter().all(|p| !p.is_finished()), "both polls park");

    let busy = c.get(&path, &[("X-Agent-Id", "alice")]).await;
    let v = busy.expect(503);
    assert_eq!(v["error"], "server_busy", "{v}");
    assert_error_shape(&busy.body, "server_busy");
    assert_eq!(busy.header("retry-after"), Some("1"));
    // Polls that do not wait are not limited.
    c.get(
        &format!("/v1/sessions/{sid}/messages?after=0"),
        &[("X-Agent-Id", "alice")],
    )
    .await
    .expect(200);

    // A message releases the parked polls and their slots.
    c.post(
        &format!("/v1/sessions/{sid}/messages"),
        &[("X-Agent-Id", "alice"), ("X-Session-Key", &key)],
        Some(&json!({"text": "wake up"})),
    )
    .await
    .expect(201);
    for p in parked {
        let page = p.await.unwrap().expect(200);
        assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    }
    let again = c
        .get(
            &format!("/v1/sessions/{sid}/messages?after=1&wait=1"),
            &[("X-Agent-Id", "alice")],
        )
        .await
        .expect(200);
    assert!(again["messages"].as_array().unwrap().is_empty());
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_invalid_utf8_headers_paths_and_bodies_are_refused_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &["--rate-limit-per-minute", "0"]).await;
    let c = server.client();
    let (sid, _) = create_session(&c, "alice").await;
    let messages = format!("/v1/sessions/{sid}/messages");

    // One huge header, and very many headers.
    let huge = format!("X-Agent-Id: {}", "a".repeat(1 << 20));
    let out = raw(
        c.addr,
        &request("GET", b"/v1/stats", &[huge.as_bytes()], None),
    )
    .await;
    refused_cleanly(&out, "1 MiB header");
    let many: Vec<String> = (0..500).map(|i| format!("X-Filler-{i}: x")).collect();
    let many: Vec<&[u8]> = many.iter().map(|h| h.as_bytes()).collect();
    let out = raw(c.addr, &request("GET", b"/v1/stats", &many, None)).await;
    refused_cleanly(&out, "500 headers");
    // A long but acceptable header reaches the relay, which refuses the agent id.
    let long = format!("X-Agent-Id: {}", "a".repeat(20_000));
    let out = raw(
        c.addr,
        &request(
            "POST",
            messages.as_bytes(),
            &[long.as_bytes()],
            Some(b"{\"text\":\"x\"}"),
        ),
    )
    .await;
    expect_code(&out, 400, "invalid_agent_id", "20 kB agent id");

    // Invalid UTF-8 in a header value, in a body, in a percent-encoded path and raw in the path.
    let out = raw(
        c.addr,
        &request(
            "POST",
            messages.as_bytes(),
            &[b"X-Agent-Id: al\xc3\x28ice"],
            Some(b"{\"text\":\"x\"}"),
        ),
    )
    .await;
    expect_code(&out, 400, "invalid_agent_id", "non-UTF-8 header");
    let out = raw(
        c.addr,
        &request(
            "POST",
            messages.as_bytes(),
            &[b"X-Agent-Id: alice"],
            Some(b"{\"text\":\"\xff\xfe\"}"),
        ),
    )
    .await;
    expect_code(&out, 400, "invalid_body", "non-UTF-8 body");
    let out = raw(c.addr, &request("GET", b"/v1/sessions/%ff%fe", &[], None)).await;
    refused_cleanly(&out, "percent-encoded invalid UTF-8 in the path");
    let out = raw(c.addr, &request("GET", b"/v1/sessions/\xff\xfe", &[], None)).await;
    refused_cleanly(&out, "raw invalid UTF-8 in the path");
    let out = raw(c.addr, &request("GET", b"/v1/sessions/a\x00b", &[], None)).await;
    refused_cleanly(&out, "raw NUL in the path");
    let out = raw(
        c.addr,
        &request("GET", b"/health", &[b"X-Agent-Id: a\x00b"], None),
    )
    .await;
    refused_cleanly(&out, "raw NUL in a header");

    healthy(&c).await;
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_a_clean_400_and_moderate_nesting_is_stored() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &["--rate-limit-per-minute", "0"]).await;
    let c = server.client();
    let (sid, key) = create_session(&c, "alice").await;
    let messages = format!("/v1/sessions/{sid}/messages");
    let agent = b"X-Agent-Id: alice".as_slice();
    let key_header = format!("X-Session-Key: {key}");

    for depth in [129, 1_000, 10_000] {
        let body = format!("{{\"json\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        let out = raw(
            c.addr,
            &request("POST", messages.as_bytes(), &[agent], Some(body.as_bytes())),
        )
        .await;
        expect_code(
            &out,
            400,
            "invalid_body",
            &format!("json nested {depth} deep"),
        );
        let body = format!("{}{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        let out = raw(
            c.addr,
            &request("PUT", b"/v1/sessions", &[], Some(body.as_bytes())),
        )
        .await;
        expect_code(
            &out,
            400,
            "invalid_body",
            &format!("create body nested {depth} deep"),
        );
    }
    // Nesting under serde_json's limit is a valid message, stored and polled back intact.
    let depth = 100;
    let nested = format!(
        "{}\"AKIAIOSFODNN7EXAMPLE\"{}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let body = format!("{{\"json\":{nested}}}");
    let out = raw(
        c.addr,
        &request(
            "POST",
            messages.as_bytes(),
            &[agent, key_header.as_bytes()],
            Some(body.as_bytes()),
        ),
    )
    .await;
    let Outcome::Answered {
        status: 201, body, ..
    } = out
    else {
        panic!("{out:?}")
    };
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sent["redacted"], json!(["aws_access_key"]));
    let page = c
        .get(&format!("{messages}?after=0"), &[("X-Agent-Id", "alice")])
        .await
        .expect(200);
    let mut v = &page["messages"][0]["json"];
    for _ in 0..depth {
        v = &v[0];
    }
    assert_eq!(v, "[REDACTED:aws_access_key]");

    healthy(&c).await;
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));
}

/// (method, raw path, raw header lines).
type TrickCase = (&'static str, Vec<u8>, &'static [&'static [u8]]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_path_tricks_are_json_errors_and_never_escape() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &["--rate-limit-per-minute", "0"]).await;
    let c = server.client();
    let (sid, key) = create_session(&c, "alice").await;
    let sid_b = sid.as_bytes();
    let cat = |parts: &[&[u8]]| parts.concat();

    let cases: Vec<TrickCase> = vec![
        ("GET", b"/v1/sessions/..".to_vec(), &[]),
        ("GET", b"/v1/sessions/%2e%2e".to_vec(), &[]),
        ("GET", b"/v1/sessions/..%2f..%2fetc%2fpasswd".to_vec(), &[]),
        ("GET", b"/v1/sessions/%2F".to_vec(), &[]),
        ("GET", b"/v1/sessions/%00".to_vec(), &[]),
        ("GET", cat(&[b"/v1/sessions/", sid_b, b"%00"]), &[]),
        ("GET", cat(&[b"/v1/sessions/", sid_b, b"%2f..%2f"]), &[]),
        ("GET", b"/v1/sessions/../../etc/passwd".to_vec(), &[]),
        (
            "GET",
            b"/v1/sessions/%2e%2e/messages".to_vec(),
            &[b"X-Agent-Id: alice"],
        ),
        (
            "POST",
            b"/v1/sessions/%2e%2e/join".to_vec(),
            &[b"X-Agent-Id: mallory"],
        ),
        (
            "POST",
            cat(&[b"/v1/sessions/", sid_b, b"/join"]),
            &[b"X-Agent-Id: .."],
        ),
        (
            "POST",
            cat(&[b"/v1/sessions/", sid_b, b"/join"]),
            &[b"X-Agent-Id: ../x"],
        ),
        (
            "POST",
            cat(&[b"/v1/sessions/", sid_b, b"/join"]),
            &[b"X-Agent-Id: a%2fb"],
        ),
        (
            "DELETE",
            cat(&[b"/v1/sessions/", sid_b, b"/agents/.."]),
            &[b"X-Agent-Id: .."],
        ),
        (
            "DELETE",
            cat(&[b"/v1/sessions/", sid_b, b"/agents/%2e%2e"]),
            &[b"X-Agent-Id: .."],
        ),
        (
            "DELETE",
            cat(&[b"/v1/sessions/", sid_b, b"/agents/alice%2f..%2falice"]),
            &[b"X-Agent-Id: alice"],
        ),
        (
            "DELETE",
            cat(&[b"/v1/sessions/", sid_b, b"/agents/%00"]),
            &[b"X-Agent-Id: alice"],
        ),
        (
            "POST",
            b"/v1/pair/..%2f..%2fetc/claim".to_vec(),
            &[b"X-Agent-Id: bob"],
        ),
        (
            "POST",
            b"/v1/pair/%00/claim".to_vec(),
            &[b"X-Agent-Id: bob"],
        ),
        ("GET", b"/v1/pair/%2e%2e/status".to_vec(), &[]),
        ("GET", b"/v1/pair/..%2f/skill".to_vec(), &[]),
    ];
    for (method, path, headers) in &cases {
        let what = format!("{method} {}", String::from_utf8_lossy(path));
        let out = raw(c.addr, &request(method, path, headers, None)).await;
        let Outcome::Answered { status, body, .. } = &out else {
            panic!("{what}: closed")
        };
        assert!((400..500).contains(status), "{what}: {status}");
        if !what.contains("/skill") {
            assert_error_shape(body, &what);
        }
    }
    // The pairing link copies only code characters into Location.
    let out = raw(c.addr, &request("GET", b"/p/..%2f..%2f%00evil", &[], None)).await;
    let Outcome::Answered { status, head, .. } = &out else {
        panic!("closed")
    };
    assert!(*status == 301 || (400..500).contains(status), "{status}");
    if let Some(loc) = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("location:"))
    {
        assert!(!loc.contains("..") && !loc.contains('%'), "{loc}");
    }

    // The session is untouched: alice is still its only member.
    let status = c.get(&format!("/v1/sessions/{sid}"), &[]).await.expect(200);
    assert_eq!(status["agents"], json!(["alice"]));
    c.post(
        &format!("/v1/sessions/{sid}/messages"),
        &[("X-Agent-Id", "alice"), ("X-Session-Key", &key)],
        Some(&json!({"text": "still here"})),
    )
    .await
    .expect(201);
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));
}
