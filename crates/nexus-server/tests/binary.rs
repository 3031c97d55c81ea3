//! End-to-end tests of the real `nexus-server` binary (SPEC §1–§2): restarts on the same
//! `DATA_DIR`, concurrent senders, long-poll, graceful shutdown, `--help`, and log hygiene.
//! Every server listens on 127.0.0.1 with port 0 and is killed when its guard drops.

mod harness;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use harness::{Client, Response, Server};
use serde_json::{Value, json};

/// Serializes the load test and the one timing assertion, so a busy machine running the load test
/// cannot slow down the long-poll wake-up being measured.
static TIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// Protocol helpers
// ---------------------------------------------------------------------------------------------

/// A cursor string (SPEC: decimal string of a non-negative integer) as a number.
fn cursor(v: &Value) -> u64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("cursor {v} is not a string"));
    s.parse()
        .unwrap_or_else(|e| panic!("cursor {s:?} is not a decimal integer: {e}"))
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing or not a string in {v}"))
}

/// `PUT /v1/sessions` with a creator (and optional greeting): (sessionId, creator's sessionKey).
async fn create_session(c: &Client, creator: &str, greeting: Option<&str>) -> (String, String) {
    let mut body = json!({ "creatorAgentId": creator });
    if let Some(g) = greeting {
        body["greeting"] = json!(g);
    }
    let v = c.put("/v1/sessions", &[], &body).await.expect(201);
    (
        str_of(&v, "sessionId").to_owned(),
        str_of(&v, "sessionKey").to_owned(),
    )
}

/// `PUT /v1/pair`: the code.
async fn pair(c: &Client, sid: &str) -> String {
    let v = c
        .put("/v1/pair", &[], &json!({ "sessionId": sid }))
        .await
        .expect(201);
    str_of(&v, "code").to_owned()
}

/// `POST /v1/pair/:code/claim`: the claimer's sessionKey.
async fn claim(c: &Client, code: &str, agent: &str, sid: &str) -> String {
    let v = c
        .post(
            &format!("/v1/pair/{code}/claim"),
            &[("X-Agent-Id", agent)],
            None,
        )
        .await
        .expect(200);
    assert_eq!(v["status"], "claimed");
    assert_eq!(v["sessionId"], sid);
    str_of(&v, "sessionKey").to_owned()
}

/// `POST /v1/sessions/:id/join`: the joiner's sessionKey.
async fn join(c: &Client, sid: &str, agent: &str) -> String {
    let v = c
        .post(
            &format!("/v1/sessions/{sid}/join"),
            &[("X-Agent-Id", agent)],
            None,
        )
        .await
        .expect(200);
    assert_eq!(v["status"], "joined");
    str_of(&v, "sessionKey").to_owned()
}

/// `POST /v1/sessions/:id/messages` with a text body.
async fn send(c: &Client, sid: &str, agent: &str, key: Option<&str>, text: &str) -> Response {
    let mut headers = vec![("X-Agent-Id", agent)];
    if let Some(k) = key {
        headers.push(("X-Session-Key", k));
    }
    c.post(
        &format!("/v1/sessions/{sid}/messages"),
        &headers,
        Some(&json!({ "text": text })),
    )
    .await
}

/// A verified send that must succeed: its cursor.
async fn send_ok(c: &Client, sid: &str, agent: &str, key: &str, text: &str) -> u64 {
    let v = send(c, sid, agent, Some(key), text).await.expect(201);
    assert_eq!(v["verified"], true, "send with a valid key: {v}");
    cursor(&v["cursor"])
}

/// `GET /v1/sessions/:id/messages?<query>` as `agent`.
async fn poll(c: &Client, sid: &str, agent: &str, query: &str) -> Response {
    c.get(
        &format!("/v1/sessions/{sid}/messages?{query}"),
        &[("X-Agent-Id", agent)],
    )
    .await
}

fn truncated(page: &Value) -> bool {
    match &page["truncated"] {
        Value::Bool(b) => *b,
        Value::Null => false,
        other => panic!("truncated is not a boolean: {other}"),
    }
}

fn messages(page: &Value) -> &Vec<Value> {
    page["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("messages is not a list: {page}"))
}

// ---------------------------------------------------------------------------------------------
// 1. Restart
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_members_keys_codes_and_cursors() {
    let data = tempfile::tempdir().unwrap();

    // --- First life ---------------------------------------------------------------------------
    let server = Server::start(data.path(), &[]).await;
    let c = server.client();
    let (sid, key_a) = create_session(&c, "alice", Some("welcome aboard")).await;
    let code_b = pair(&c, &sid).await;
    let key_b = claim(&c, &code_b, "bob", &sid).await;
    assert_ne!(key_a, key_b);
    // A code created before the restart and claimed only after it.
    let later_code = pair(&c, &sid).await;

    let mut old = Vec::new();
    old.push(send_ok(&c, &sid, "alice", &key_a, "first").await);
    old.push(send_ok(&c, &sid, "bob", &key_b, "second").await);
    old.push(send_ok(&c, &sid, "alice", &key_a, "third").await);
    assert!(
        old.windows(2).all(|w| w[0] < w[1]),
        "cursors increase: {old:?}"
    );
    let old_high = *old.iter().max().unwrap();
    assert!(old_high >= 2, "three messages after the greeting: {old:?}");

    let (status, stderr) = server.stop().await;
    assert!(
        status.success() && status.code() == Some(0),
        "SIGTERM must exit 0, got {status}; stderr:\n{stderr}"
    );

    // --- Second life on the same DATA_DIR ------------------------------------------------------
    let server = Server::start(data.path(), &[]).await;
    let c = server.client();

    let st = c.get(&format!("/v1/sessions/{sid}"), &[]).await.expect(200);
    let agents: HashSet<&str> = st["agents"]
        .as_array()
        .expect("agents is a list")
        .iter()
        .map(|a| a.as_str().expect("agents are strings"))
        .collect();
    assert_eq!(agents, HashSet::from(["alice", "bob"]), "status: {st}");
    assert_eq!(st["creatorAgentId"], "alice");
    let members = st["members"].as_array().expect("members is a list");
    assert_eq!(members.len(), 2, "status: {st}");
    for m in members {
        let creator = m["agentId"] == "alice";
        assert_eq!(m["creator"], creator, "member {m}");
    }

    // Old keys are still the keys: a wrong one is refused, the right one verifies.
    let wrong = send(&c, &sid, "bob", Some(&key_a), "not bob's key").await;
    assert_eq!(wrong.expect(403)["error"], "invalid_session_key");
    let new_b = send_ok(&c, &sid, "bob", &key_b, "bob after restart").await;
    assert!(
        new_b > old_high,
        "cursor after restart {new_b} must exceed every old cursor {old:?}"
    );
    let new_a = send_ok(&c, &sid, "alice", &key_a, "alice after restart").await;
    assert!(new_a > new_b);

    // Below the old high-water mark the gap is said; at it, it is not.
    let below = poll(&c, &sid, "alice", "after=1").await.expect(200);
    assert!(
        truncated(&below),
        "after=1 is below the restart mark: {below}"
    );
    let from_start = poll(&c, &sid, "alice", "").await.expect(200);
    assert!(
        truncated(&from_start),
        "a poll without after asks from the beginning: {from_start}"
    );
    let greeting = &messages(&from_start)[0];
    assert_eq!(
        greeting["agentId"], "system",
        "greeting survives: {from_start}"
    );
    assert_eq!(greeting["cursor"], "0");
    assert_eq!(greeting["text"], "welcome aboard");

    let at_mark = poll(&c, &sid, "alice", &format!("after={old_high}"))
        .await
        .expect(200);
    assert!(
        !truncated(&at_mark),
        "after = old last cursor loses nothing: {at_mark}"
    );
    let got: Vec<(u64, &str)> = messages(&at_mark)
        .iter()
        .map(|m| (cursor(&m["cursor"]), str_of(m, "text")))
        .collect();
    assert_eq!(
        got,
        vec![(new_b, "bob after restart"), (new_a, "alice after restart")]
    );
    assert_eq!(cursor(&at_mark["nextCursor"]), new_a);

    // The pending code from before the restart is still claimable; the used one stays used.
    let st = c
        .get(&format!("/v1/pair/{later_code}/status"), &[])
        .await
        .expect(200);
    assert_eq!(st["state"], "pending");
    let st = c
        .get(&format!("/v1/pair/{code_b}/status"), &[])
        .await
        .expect(200);
    assert_eq!(st["state"], "claimed");
    let key_c = claim(&c, &later_code, "carol", &sid).await;
    send_ok(&c, &sid, "carol", &key_c, "carol joined after restart").await;

    // Leave with the pre-restart key works.
    let left = c
        .delete(
            &format!("/v1/sessions/{sid}/agents/bob"),
            &[("X-Agent-Id", "bob"), ("X-Session-Key", &key_b)],
        )
        .await
        .expect(200);
    assert_eq!(left["ok"], true, "{left}");
    let st = c.get(&format!("/v1/sessions/{sid}"), &[]).await.expect(200);
    let agents: HashSet<&str> = st["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(agents, HashSet::from(["alice", "carol"]));

    let (status, stderr) = server.stop().await;
    assert_eq!(status.code(), Some(0), "second SIGTERM; stderr:\n{stderr}");
}

/// Acknowledged changes are durable before their response (SPEC §1 "Persistence"): a SIGKILL
/// right after them (no graceful flush) loses none. Also: a `DATA_DIR` the relay creates is 0700
/// and every file in it 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_right_after_acknowledged_writes_loses_none_of_them() {
    use std::os::unix::fs::PermissionsExt;

    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("created-by-the-relay");
    let server = Server::start(&data, &[]).await;
    let c = server.client();
    let (sid, key_a) = create_session(&c, "alice", None).await;
    let code_b = pair(&c, &sid).await;
    let key_b = claim(&c, &code_b, "bob", &sid).await;
    let pending = pair(&c, &sid).await;
    let before = send_ok(&c, &sid, "bob", &key_b, "said before the kill").await;
    server.kill().await;

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "DATA_DIR");
    let mut files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files += 1;
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(files > 0, "the relay wrote its journal in DATA_DIR");

    let server = Server::start(&data, &[]).await;
    let c = server.client();
    let st = c.get(&format!("/v1/sessions/{sid}"), &[]).await.expect(200);
    let agents: HashSet<&str> = st["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(agents, HashSet::from(["alice", "bob"]), "status: {st}");
    let st = c
        .get(&format!("/v1/pair/{code_b}/status"), &[])
        .await
        .expect(200);
    assert_eq!(st["state"], "claimed");
    let st = c
        .get(&format!("/v1/pair/{pending}/status"), &[])
        .await
        .expect(200);
    assert_eq!(st["state"], "pending");
    // Both keys still verify; a cursor is never handed out twice (message bodies are not
    // persisted, by design, but their cursors' reservation is).
    let after = send_ok(&c, &sid, "alice", &key_a, "said after the restart").await;
    assert!(
        after > before,
        "cursor {after} after a kill follows {before}"
    );
    send_ok(&c, &sid, "bob", &key_b, "bob's key survived").await;
    let (status, stderr) = server.stop().await;
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
}

// ---------------------------------------------------------------------------------------------
// 2. Concurrency
// ---------------------------------------------------------------------------------------------

const AGENTS: usize = 5;
const PER_AGENT: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_get_unique_gap_free_cursors_in_send_order() {
    let _serial = TIMING.lock().await;
    let data = tempfile::tempdir().unwrap();
    // 500+ requests from one IP: the per-IP limit is not what this test is about.
    let server = Server::start(data.path(), &["--rate-limit-per-minute", "0"]).await;
    let c = server.client();
    let (sid, _) = create_session(&c, "host", None).await;

    let mut keys = Vec::new();
    for i in 0..AGENTS {
        let agent = format!("agent-{i}");
        let key = join(&c, &sid, &agent).await;
        keys.push((agent, key));
    }

    let mut tasks = Vec::new();
    for (agent, key) in keys {
        let sid = sid.clone();
        tasks.push(tokio::spawn(async move {
            let mut cursors = Vec::with_capacity(PER_AGENT);
            for seq in 0..PER_AGENT {
                let text = format!("{agent} #{seq}");
                cursors.push(send_ok(&c, &sid, &agent, &key, &text).await);
            }
            (agent, cursors)
        }));
    }
    let mut receipts: HashMap<String, Vec<u64>> = HashMap::new();
    for t in tasks {
        let (agent, cursors) = t.await.expect("sender task");
        receipts.insert(agent, cursors);
    }

    let page = poll(&c, &sid, "host", "limit=1000").await.expect(200);
    let all = messages(&page);
    assert_eq!(all.len(), AGENTS * PER_AGENT, "every message is held");
    assert!(!truncated(&page), "nothing was lost: {}", page["truncated"]);

    let cursors: Vec<u64> = all.iter().map(|m| cursor(&m["cursor"])).collect();
    let unique: HashSet<u64> = cursors.iter().copied().collect();
    assert_eq!(unique.len(), cursors.len(), "cursors are unique");
    for w in cursors.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "cursors are consecutive in poll order: {w:?}"
        );
    }
    assert_eq!(cursor(&page["nextCursor"]), *cursors.last().unwrap());

    // Each sender's messages appear in the order it sent them, at the cursors it was given.
    let mut seen: HashMap<String, Vec<(usize, u64)>> = HashMap::new();
    for m in all {
        let agent = str_of(m, "agentId").to_owned();
        let text = str_of(m, "text");
        let (prefix, seq) = text
            .split_once(" #")
            .unwrap_or_else(|| panic!("unexpected text {text:?}"));
        assert_eq!(prefix, agent, "text names its sender");
        assert_eq!(m["verified"], true);
        seen.entry(agent)
            .or_default()
            .push((seq.parse().unwrap(), cursor(&m["cursor"])));
    }
    assert_eq!(seen.len(), AGENTS);
    for (agent, got) in &seen {
        let seqs: Vec<usize> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            seqs,
            (0..PER_AGENT).collect::<Vec<_>>(),
            "{agent}'s messages in send order"
        );
        let polled: Vec<u64> = got.iter().map(|(_, c)| *c).collect();
        assert_eq!(
            &polled, &receipts[agent],
            "{agent}: polled cursors match the send receipts"
        );
    }

    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// 3. Long-poll
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_poll_returns_promptly_on_send_and_empty_after_wait() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]).await;
    let c = server.client();
    let (sid, key_a) = create_session(&c, "alice", None).await;
    let key_b = join(&c, &sid, "bob").await;
    let current = send_ok(&c, &sid, "alice", &key_a, "before the wait").await;

    // wait=1 with nothing new: an empty list after about a second.
    let started = Instant::now();
    let empty = poll(&c, &sid, "bob", &format!("after={current}&wait=1"))
        .await
        .expect(200);
    let elapsed = started.elapsed();
    assert!(messages(&empty).is_empty(), "{empty}");
    assert_eq!(cursor(&empty["nextCursor"]), current);
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "wait=1 answered after {elapsed:?}"
    );

    // The SPEC-required bound: a parked poll answers within 100 ms of a send.
    let _serial = TIMING.lock().await;
    let sid2 = sid.clone();
    let parked = tokio::spawn(async move {
        let r = poll(&c, &sid2, "bob", &format!("after={current}&wait=10")).await;
        (r, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !parked.is_finished(),
        "the poll must be parked, nothing is new"
    );

    let sent = send_ok(&c, &sid, "alice", &key_a, "wake up").await;
    let sent_at = Instant::now();
    let (r, answered_at) = parked.await.expect("poll task");
    let lag = answered_at.saturating_duration_since(sent_at);
    let page = r.expect(200);
    let got = messages(&page);
    assert_eq!(got.len(), 1, "{page}");
    assert_eq!(got[0]["text"], "wake up");
    assert_eq!(cursor(&got[0]["cursor"]), sent);
    assert!(
        lag < Duration::from_millis(100),
        "parked poll answered {lag:?} after the send's response"
    );

    // bob's key still verifies after all that (he polled, he did not leave).
    send_ok(&c, &sid, "bob", &key_b, "thanks").await;
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// 4. Graceful shutdown
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_a_parked_poll_and_exits_zero() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path(), &[]).await;
    let c = server.client();
    let (sid, key_a) = create_session(&c, "alice", None).await;
    let current = send_ok(&c, &sid, "alice", &key_a, "hello").await;

    let parked =
        tokio::spawn(
            async move { poll(&c, &sid, "alice", &format!("after={current}&wait=30")).await },
        );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!parked.is_finished(), "the poll must be parked");

    let started = Instant::now();
    server.sigterm();
    let r = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .expect("the parked poll must be answered within 5 s of SIGTERM")
        .expect("poll task");
    let page = r.expect(200);
    assert!(messages(&page).is_empty(), "{page}");
    assert_eq!(cursor(&page["nextCursor"]), current);
    assert!(started.elapsed() < Duration::from_secs(5));

    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM; stderr:\n{}",
        server.stderr_text()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. --help
// ---------------------------------------------------------------------------------------------

#[test]
fn help_lists_every_configuration_flag_and_env_var() {
    let mut cmd = std::process::Command::new(harness::BIN);
    for var in harness::CONFIG_ENV {
        cmd.env_remove(var);
    }
    let out = cmd.arg("--help").output().expect("run --help");
    assert!(out.status.success(), "--help exits 0: {}", out.status);
    let help = String::from_utf8_lossy(&out.stdout);
    let expected = [
        ("host", "HOST"),
        ("port", "PORT"),
        ("public-url", "PUBLIC_URL"),
        ("data-dir", "DATA_DIR"),
        ("max-ttl-seconds", "MAX_TTL_SECONDS"),
        ("max-agents", "MAX_AGENTS"),
        ("agent-inactivity-seconds", "AGENT_INACTIVITY_SECONDS"),
        ("pair-code-ttl-seconds", "PAIR_CODE_TTL_SECONDS"),
        ("rate-limit-per-minute", "RATE_LIMIT_PER_MINUTE"),
        ("trusted-proxies", "TRUSTED_PROXIES"),
        ("claim-failures-per-minute", "CLAIM_FAILURES_PER_MINUTE"),
        (
            "claim-failures-global-per-minute",
            "CLAIM_FAILURES_GLOBAL_PER_MINUTE",
        ),
        ("require-session-key", "REQUIRE_SESSION_KEY"),
        ("max-body-bytes", "MAX_BODY_BYTES"),
        ("max-messages-per-session", "MAX_MESSAGES_PER_SESSION"),
        ("max-sessions", "MAX_SESSIONS"),
        ("max-connections", "MAX_CONNECTIONS"),
        ("max-waiters", "MAX_WAITERS"),
        ("header-read-timeout-seconds", "HEADER_READ_TIMEOUT_SECONDS"),
        ("log", "LOG"),
        ("tls-cert", "TLS_CERT"),
        ("tls-key", "TLS_KEY"),
        ("redis-url", "REDIS_URL"),
    ];
    assert_eq!(expected.len(), harness::CONFIG_ENV.len());
    // Each setting's default, as SPEC §2 "Configuration" and the README state them.
    let defaults = [
        ("HOST", "127.0.0.1"),
        ("PORT", "3000"),
        ("PUBLIC_URL", "http://HOST:PORT"),
        ("DATA_DIR", "./data"),
        ("MAX_TTL_SECONDS", "86400"),
        ("MAX_AGENTS", "50"),
        ("AGENT_INACTIVITY_SECONDS", "0"),
        ("PAIR_CODE_TTL_SECONDS", "600"),
        ("RATE_LIMIT_PER_MINUTE", "100"),
        ("TRUSTED_PROXIES", "\"\""),
        ("CLAIM_FAILURES_PER_MINUTE", "10"),
        ("CLAIM_FAILURES_GLOBAL_PER_MINUTE", "1000"),
        ("REQUIRE_SESSION_KEY", "0"),
        ("MAX_BODY_BYTES", "65536"),
        ("MAX_MESSAGES_PER_SESSION", "10000"),
        ("MAX_SESSIONS", "100000"),
        ("MAX_CONNECTIONS", "10000"),
        ("MAX_WAITERS", "5000"),
        ("HEADER_READ_TIMEOUT_SECONDS", "10"),
        ("LOG", "info"),
    ];
    for (env, default) in defaults {
        let entry = help
            .split("\n      --")
            .find(|e| e.contains(&format!("[env: {env}=")))
            .unwrap_or_else(|| panic!("no entry for {env}:\n{help}"));
        assert!(
            entry.contains(&format!("[default: {default}]")),
            "{env} should show [default: {default}]:\n{entry}"
        );
    }
    let words: HashSet<&str> = help
        .split(|ch: char| ch.is_whitespace() || ch == ',' || ch == '[' || ch == ']')
        .collect();
    for (flag, env) in expected {
        let long = format!("--{flag}");
        assert!(
            words.contains(long.as_str()),
            "--help lacks {long}:\n{help}"
        );
        assert!(
            help.contains(&format!("[env: {env}=")),
            "--help lacks the env var {env}:\n{help}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Log hygiene
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_hold_no_secrets_but_name_route_templates() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &["--log", "debug"]).await;
    let c = server.client();

    let greeting = "greeting-text-q7wz";
    let (sid, key_a) = create_session(&c, "alice", Some(greeting)).await;
    let code = pair(&c, &sid).await;
    c.get(&format!("/v1/pair/{code}/status"), &[])
        .await
        .expect(200);
    let skill = c.get(&format!("/v1/pair/{code}/skill"), &[]).await;
    assert_eq!(skill.status, 200);
    let link = c.get(&format!("/p/{code}"), &[]).await;
    assert_eq!(link.status, 301);
    let key_b = claim(&c, &code, "bob", &sid).await;
    let used = c
        .post(
            &format!("/v1/pair/{code}/claim"),
            &[("X-Agent-Id", "carol")],
            None,
        )
        .await;
    assert_eq!(used.expect(404)["error"], "code_expired_or_used");

    let text_a = "message-body-text-k3vx";
    let text_b = "message-body-text-m8pd";
    let json_secret = "json-string-value-h2rt";
    send_ok(&c, &sid, "alice", &key_a, text_a).await;
    send_ok(&c, &sid, "bob", &key_b, text_b).await;
    let j = c
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            &[("X-Agent-Id", "bob"), ("X-Session-Key", &key_b)],
            Some(&json!({ "json": { "note": json_secret } })),
        )
        .await;
    assert_eq!(j.status, 201);
    // Failures are logged too: a wrong key, a non-member, an unknown route under the session.
    let bad_text = "refused-body-text-p4nc";
    assert_eq!(
        send(&c, &sid, "bob", Some(&key_a), bad_text).await.status,
        403
    );
    assert_eq!(send(&c, &sid, "mallory", None, bad_text).await.status, 403);
    assert_eq!(
        c.get(&format!("/v1/sessions/{sid}/nowhere"), &[])
            .await
            .status,
        404
    );
    poll(&c, &sid, "bob", "after=0&members=true")
        .await
        .expect(200);
    c.get(&format!("/v1/sessions/{sid}"), &[]).await.expect(200);
    c.post(
        &format!("/v1/sessions/{sid}/renew"),
        &[("X-Agent-Id", "alice")],
        Some(&json!({})),
    )
    .await
    .expect(200);
    c.delete(
        &format!("/v1/sessions/{sid}/agents/bob"),
        &[("X-Agent-Id", "bob"), ("X-Session-Key", &key_b)],
    )
    .await
    .expect(200);

    let (status, log) = server.stop().await;
    assert_eq!(status.code(), Some(0));
    assert!(!log.is_empty(), "debug logging produced nothing");

    let lower = log.to_ascii_lowercase();
    let secrets = [
        ("session id", sid.as_str()),
        ("alice's session key", key_a.as_str()),
        ("bob's session key", key_b.as_str()),
        ("pairing code", code.as_str()),
        ("greeting", greeting),
        ("message text", text_a),
        ("message text", text_b),
        ("refused message text", bad_text),
        ("json message content", json_secret),
    ];
    for (what, secret) in secrets {
        assert!(
            !lower.contains(&secret.to_ascii_lowercase()),
            "the log contains the {what} {secret:?}:\n{log}"
        );
    }
    for template in [
        "/v1/sessions/{id}/messages",
        "/v1/sessions/{id}",
        "/v1/pair/{code}/claim",
    ] {
        assert!(
            log.contains(template),
            "the log lacks the route template {template}:\n{log}"
        );
    }
}
