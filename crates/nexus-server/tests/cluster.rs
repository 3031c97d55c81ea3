//! Scale-out on the real binary (issue 7): several `nexus-server` nodes on one real
//! `redis-server`, and a real nginx round-robin in front of them.
//!
//! - Two nodes share sessions, pairing codes, messages and long-polls: create on A, pair on B,
//!   claim on A, send on B, poll on A; a long-poll parked on A wakes within 100 ms of a send on B;
//!   with A killed mid-flow, B serves everything.
//! - Redis restarted with AOF (`appendfsync always`): sessions, members and cursors survive; while
//!   it is down, `/health` answers 503 and requests 503 `store_unavailable`.
//! - nginx (127.0.0.1, in `TRUSTED_PROXIES`) round-robin over two nodes carries a whole two-agent
//!   conversation; the client IP comes from `X-Forwarded-For`, and the per-IP rate limit holds
//!   across both nodes (one forwarded IP exhausted while another is still served).
//! - A node whose Redis cannot be reached refuses to start, without printing `REDIS_URL`.

#[allow(dead_code)] // not every test file uses every helper
mod harness;
mod nginx;
mod redis_server;

use std::time::{Duration, Instant};

use harness::{Client, Response, Server};
use nginx::Nginx;
use redis_server::RedisServer;
use serde_json::{Value, json};

/// A node on `redis`, with `extra` flags.
async fn node(redis: &RedisServer, dir: &tempfile::TempDir, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut args = vec!["--redis-url", url.as_str(), "--log", "warn"];
    args.extend_from_slice(extra);
    Server::start(dir.path(), &args).await
}

fn sid_key(created: &Value) -> (String, String) {
    (
        created["sessionId"].as_str().unwrap().to_owned(),
        created["sessionKey"].as_str().unwrap().to_owned(),
    )
}

async fn send(c: &Client, sid: &str, agent: &str, key: &str, text: &str) -> Value {
    c.post(
        &format!("/v1/sessions/{sid}/messages"),
        &[("X-Agent-Id", agent), ("X-Session-Key", key)],
        Some(&json!({ "text": text })),
    )
    .await
    .expect(201)
}

async fn poll(c: &Client, sid: &str, agent: &str, query: &str) -> Response {
    c.get(
        &format!("/v1/sessions/{sid}/messages?{query}"),
        &[("X-Agent-Id", agent)],
    )
    .await
}

fn texts(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits until `node`'s `/metrics` shows `n` parked long-polls.
async fn until_parked(node: &Client, n: u32) {
    let want = format!("nexus_longpoll_waiters {n}");
    for _ in 0..500 {
        let metrics = node.get("/metrics", &[]).await;
        if String::from_utf8_lossy(&metrics.body)
            .lines()
            .any(|l| l == want)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no parked long-poll showed up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_redis_serve_one_set_of_sessions() {
    let redis = RedisServer::start();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(&redis, &da, &["--rate-limit-per-minute", "0"]).await;
    let b = node(&redis, &db, &["--rate-limit-per-minute", "0"]).await;
    let (ca, cb) = (a.client(), b.client());
    for c in [&ca, &cb] {
        let health = c.get("/health", &[]).await.expect(200);
        assert_eq!(
            health["store"],
            json!({"backend": "redis", "reachable": true})
        );
    }

    // Create on A, pair on B, claim on A.
    let created = ca
        .put(
            "/v1/sessions",
            &[],
            &json!({"creatorAgentId": "alice", "greeting": "welcome"}),
        )
        .await
        .expect(201);
    let (sid, alice) = sid_key(&created);
    let pair = cb
        .put("/v1/pair", &[], &json!({ "sessionId": sid }))
        .await
        .expect(201);
    let code = pair["code"].as_str().unwrap().to_owned();
    assert_eq!(
        ca.get(&format!("/v1/pair/{code}/status"), &[])
            .await
            .expect(200)["state"],
        "pending"
    );
    let claimed = ca
        .post(
            &format!("/v1/pair/{code}/claim"),
            &[("X-Agent-Id", "bob")],
            None,
        )
        .await
        .expect(200);
    let bob = claimed["sessionKey"].as_str().unwrap().to_owned();
    // Single use, whichever node is asked.
    cb.post(
        &format!("/v1/pair/{code}/claim"),
        &[("X-Agent-Id", "carol")],
        None,
    )
    .await
    .expect(404);
    assert_eq!(
        cb.get(&format!("/v1/pair/{code}/status"), &[])
            .await
            .expect(200)["state"],
        "claimed"
    );

    // Send on B, poll on A.
    let first = send(&cb, &sid, "alice", &alice, "one").await;
    assert_eq!(first["cursor"], "1");
    let page = poll(&ca, &sid, "bob", "").await.expect(200);
    assert_eq!(texts(&page), ["welcome", "one"]);
    assert_eq!(page["nextCursor"], "1");

    // A long-poll parked on A wakes within 100 ms of a send on B.
    let parked = {
        let (ca, sid) = (ca, sid.clone());
        tokio::spawn(async move {
            let page = poll(&ca, &sid, "bob", "after=1&wait=30").await;
            (page, Instant::now())
        })
    };
    until_parked(&ca, 1).await;
    let sent_at = Instant::now();
    let second = send(&cb, &sid, "alice", &alice, "two").await;
    let (page, answered_at) = parked.await.unwrap();
    let page = page.expect(200);
    assert_eq!(texts(&page), ["two"]);
    assert_eq!(page["nextCursor"], second["cursor"]);
    let woke_in = answered_at.duration_since(sent_at);
    eprintln!("a poll parked on A answered {woke_in:?} after the send on B was issued");
    assert!(
        woke_in < Duration::from_millis(100),
        "the poll on A answered {woke_in:?} after the send on B"
    );

    // Node A dies mid-flow (a poll parked on it is cut off); B serves everything.
    let cut = {
        let (ca, sid) = (ca, sid.clone());
        tokio::spawn(async move {
            harness_request_survives(&ca, &sid).await;
        })
    };
    until_parked(&ca, 1).await;
    drop(a); // SIGKILL
    cut.await.unwrap();
    let status = cb
        .get(&format!("/v1/sessions/{sid}"), &[])
        .await
        .expect(200);
    assert_eq!(status["agents"], json!(["alice", "bob"]));
    let reply = send(&cb, &sid, "bob", &bob, "three").await;
    assert_eq!(reply["cursor"], "3");
    let page = poll(&cb, &sid, "alice", "after=1").await.expect(200);
    assert_eq!(texts(&page), ["two", "three"]);
    cb.post(
        &format!("/v1/sessions/{sid}/renew"),
        &[("X-Agent-Id", "alice")],
        Some(&json!({"ttl": 600})),
    )
    .await
    .expect(200);
    let code = cb
        .put("/v1/pair", &[], &json!({ "sessionId": sid }))
        .await
        .expect(201)["code"]
        .as_str()
        .unwrap()
        .to_owned();
    cb.post(
        &format!("/v1/pair/{code}/claim"),
        &[("X-Agent-Id", "carol")],
        None,
    )
    .await
    .expect(200);
    cb.delete(
        &format!("/v1/sessions/{sid}/agents/bob"),
        &[("X-Agent-Id", "bob"), ("X-Session-Key", &bob)],
    )
    .await
    .expect(200);
    let status = cb
        .get(&format!("/v1/sessions/{sid}"), &[])
        .await
        .expect(200);
    assert_eq!(status["agents"], json!(["alice", "carol"]));
    let stats = cb.get("/v1/stats", &[]).await.expect(200);
    assert_eq!(stats["activeSessions"], 1);
    assert_eq!(stats["totalMessages"], 3);

    // B stops gracefully on the Redis backend too, and logged no secret.
    let (status, stderr) = b.stop().await;
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    for secret in [&sid, &alice, &bob, &code] {
        assert!(
            !stderr.contains(secret.as_str()),
            "a secret in the log:\n{stderr}"
        );
    }
}

/// A long-poll on a node that is killed while it waits: the connection fails (no answer), and
/// nothing hangs.
async fn harness_request_survives(c: &Client, sid: &str) {
    let path = format!("/v1/sessions/{sid}/messages?after=2&wait=30");
    let attempt = tokio::net::TcpStream::connect(c.addr).await;
    let Ok(mut stream) = attempt else {
        return;
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Agent-Id: bob\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection to the killed node must end");
    assert!(
        buf.is_empty() || !String::from_utf8_lossy(&buf).contains("\"messages\":[{"),
        "a killed node answered with messages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_cursors_survive_a_redis_restart_with_aof() {
    let mut redis = RedisServer::start_with_aof();
    let dir = tempfile::tempdir().unwrap();
    let node = node(&redis, &dir, &["--rate-limit-per-minute", "0"]).await;
    let c = node.client();
    let created = c
        .put("/v1/sessions", &[], &json!({"creatorAgentId": "alice"}))
        .await
        .expect(201);
    let (sid, alice) = sid_key(&created);
    let bob = c
        .post(
            &format!("/v1/sessions/{sid}/join"),
            &[("X-Agent-Id", "bob")],
            None,
        )
        .await
        .expect(200)["sessionKey"]
        .as_str()
        .unwrap()
        .to_owned();
    for t in ["one", "two", "three"] {
        send(&c, &sid, "alice", &alice, t).await;
    }
    let code = c
        .put("/v1/pair", &[], &json!({ "sessionId": sid }))
        .await
        .expect(201)["code"]
        .as_str()
        .unwrap()
        .to_owned();

    // Redis crashes: the node says so, and refuses work with 503 instead of failing obscurely.
    redis.kill();
    let health = c.get("/health", &[]).await;
    assert_eq!(health.status, 503);
    let health = health.json();
    assert_eq!(health["status"], "unavailable");
    assert_eq!(
        health["store"],
        json!({"backend": "redis", "reachable": false})
    );
    let refused = c
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            &[("X-Agent-Id", "alice"), ("X-Session-Key", &alice)],
            Some(&json!({"text": "lost?"})),
        )
        .await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json()["error"], "store_unavailable");
    assert_eq!(refused.header("retry-after"), Some("1"));

    // Redis comes back from its AOF; the node reconnects by itself.
    redis.start_again();
    let mut healthy = false;
    for _ in 0..200 {
        if c.get("/health", &[]).await.status == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy, "the node never saw Redis again");
    let status = c.get(&format!("/v1/sessions/{sid}"), &[]).await.expect(200);
    assert_eq!(status["agents"], json!(["alice", "bob"]));
    // Cursors continue where they were: nothing reused, nothing lost.
    let page = poll(&c, &sid, "bob", "after=1").await.expect(200);
    assert_eq!(texts(&page), ["two", "three"]);
    assert_eq!(page["truncated"], false);
    let next = send(&c, &sid, "bob", &bob, "four").await;
    assert_eq!(next["cursor"], "4");
    // Keys and codes too.
    c.post(
        &format!("/v1/pair/{code}/claim"),
        &[("X-Agent-Id", "carol")],
        None,
    )
    .await
    .expect(200);
    c.delete(
        &format!("/v1/sessions/{sid}/agents/bob"),
        &[("X-Agent-Id", "bob"), ("X-Session-Key", &bob)],
    )
    .await
    .expect(200);
    // The outage was logged, without a secret.
    let (status, stderr) = node.stop().await;
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert!(stderr.contains("store unavailable"), "{stderr}");
    for secret in [&sid, &alice, &bob, &code] {
        assert!(
            !stderr.contains(secret.as_str()),
            "a secret in the log:\n{stderr}"
        );
    }
}

/// An agent behind the load balancer: its forwarded client IP, id and key.
#[derive(Clone)]
struct Agent {
    ip: &'static str,
    id: &'static str,
    key: String,
}

impl Agent {
    /// `X-Forwarded-For` (nginx appends its peer, 127.0.0.1, itself), `X-Agent-Id`, and the key
    /// once known.
    fn headers(&self) -> Vec<(&str, &str)> {
        let mut h = vec![("X-Forwarded-For", self.ip), ("X-Agent-Id", self.id)];
        if !self.key.is_empty() {
            h.push(("X-Session-Key", self.key.as_str()));
        }
        h
    }

    async fn send(&self, c: &Client, sid: &str, text: &str) -> Value {
        c.post(
            &format!("/v1/sessions/{sid}/messages"),
            &self.headers(),
            Some(&json!({ "text": text })),
        )
        .await
        .expect(201)
    }

    async fn poll(&self, c: &Client, sid: &str, query: &str) -> Value {
        c.get(
            &format!("/v1/sessions/{sid}/messages?{query}"),
            &self.headers(),
        )
        .await
        .expect(200)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_round_robin_over_two_nodes_carries_a_conversation_and_forwarded_ips() {
    const LIMIT: u32 = 20;
    let redis = RedisServer::start();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let flags = [
        "--trusted-proxies",
        "127.0.0.1",
        "--rate-limit-per-minute",
        "20",
    ];
    let a = node(&redis, &da, &flags).await;
    let b = node(&redis, &db, &flags).await;
    let lb = Nginx::start(&[a.client().addr, b.client().addr]);
    let c = Client { addr: lb.addr };
    let mut alice = Agent {
        ip: "203.0.113.1",
        id: "alice",
        key: String::new(),
    };
    let mut bob = Agent {
        ip: "203.0.113.2",
        id: "bob",
        key: String::new(),
    };

    // Alice creates and pairs; Bob claims; they talk, Bob long-polling.
    let created = c
        .put(
            "/v1/sessions",
            &alice.headers(),
            &json!({"greeting": "hi bob"}),
        )
        .await
        .expect(201);
    let (sid, key) = sid_key(&created);
    alice.key = key;
    let code = c
        .put("/v1/pair", &alice.headers(), &json!({ "sessionId": sid }))
        .await
        .expect(201)["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let claimed = c
        .post(&format!("/v1/pair/{code}/claim"), &bob.headers(), None)
        .await
        .expect(200);
    bob.key = claimed["sessionKey"].as_str().unwrap().to_owned();
    assert_eq!(texts(&bob.poll(&c, &sid, "").await), ["hi bob"]);
    let mut bob_cursor = "0".to_owned();
    let mut alice_cursor = "0".to_owned();
    for round in 0..3 {
        // Bob waits (on whichever node nginx picks) while Alice speaks (perhaps on the other).
        let waiting = {
            let (bob, sid, after) = (bob.clone(), sid.clone(), bob_cursor.clone());
            tokio::spawn(async move { bob.poll(&c, &sid, &format!("after={after}&wait=20")).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let question = format!("question {round}");
        alice.send(&c, &sid, &question).await;
        let page = waiting.await.unwrap();
        assert_eq!(texts(&page), [question]);
        let answer = format!("answer {round}");
        bob.send(&c, &sid, &answer).await;
        let page = alice.poll(&c, &sid, &format!("after={alice_cursor}")).await;
        let got = texts(&page);
        assert_eq!(got.last(), Some(&answer), "{got:?}");
        alice_cursor = page["nextCursor"].as_str().unwrap().to_owned();
        bob_cursor = alice_cursor.clone();
    }
    assert_eq!(bob_cursor, "6");
    c.delete(&format!("/v1/sessions/{sid}/agents/bob"), &bob.headers())
        .await
        .expect(200);
    let status = c
        .get(&format!("/v1/sessions/{sid}"), &alice.headers())
        .await
        .expect(200);
    assert_eq!(status["agents"], json!(["alice"]));

    // The per-IP limit counts the forwarded client, across both nodes: one client spends its
    // LIMIT requests (spread round-robin over A and B), the next is refused, another client is not.
    let spender = [("X-Forwarded-For", "198.51.100.7")];
    for i in 0..LIMIT {
        let res = c.get("/v1/stats", &spender).await;
        assert_eq!(res.status, 200, "request {i} of {LIMIT}");
    }
    let refused = c.get("/v1/stats", &spender).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["error"], "rate_limit_exceeded");
    assert!(refused.header("retry-after").is_some());
    c.get("/v1/stats", &[("X-Forwarded-For", "198.51.100.8")])
        .await
        .expect(200);
    // Both nodes served part of it (nginx round-robin): each counted /v1/stats requests.
    for node in [&a, &b] {
        let metrics = node.client().get("/metrics", &[]).await;
        let text = String::from_utf8_lossy(&metrics.body).into_owned();
        let served = text.lines().any(|l| {
            l.starts_with(
                r#"nexus_http_requests_total{method="GET",route="/v1/stats",status="200"}"#,
            )
        });
        assert!(served, "a node served no /v1/stats:\n{text}");
    }
}

#[tokio::test]
async fn a_node_whose_redis_is_unreachable_refuses_to_start_without_leaking_the_url() {
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(harness::BIN);
    for var in harness::CONFIG_ENV {
        cmd.env_remove(var);
    }
    let out = cmd
        .args(["--port", "0", "--data-dir"])
        .arg(dir.path())
        .args(["--redis-url", &format!("redis://:hunter2@127.0.0.1:{port}")])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("gives up within a minute")
        .expect("run nexus-server");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "it never listened");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach Redis"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
    // Nor does a malformed URL echo itself.
    let mut cmd = tokio::process::Command::new(harness::BIN);
    for var in harness::CONFIG_ENV {
        cmd.env_remove(var);
    }
    let out = cmd
        .args(["--port", "0", "--data-dir"])
        .arg(dir.path())
        .args(["--redis-url", "http://:hunter2@example.org"])
        .output()
        .await
        .expect("run nexus-server");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("REDIS_URL must start with redis://"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}
