//! Router-level tests of the relay against SPEC §1–§2: every endpoint's success shape, every error
//! code the relay produces, leave's order of checks, poll and long-poll semantics, sliding TTLs,
//! inactivity, pairing-code states and the skill documents.
//!
//! Each test builds the whole router and drives it with `tower::ServiceExt::oneshot`, once over
//! the embedded store and once over Redis (a real `redis-server` per app): every test below is
//! listed in `backend_tests!` at the end, which makes `<test>::embedded` and `<test>::redis`.
//! Time is tokio's paused clock (`start_paused = true`), which the relay's `Clock` follows:
//! `tokio::time::advance` moves every TTL and deadline, and nothing waits in real time (see
//! `support/realtime.rs` for how Redis I/O keeps that true).

mod redis_server;
mod support;

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};
use support::*;

// ---------------------------------------------------------------------------------------------
// Success shapes, endpoint by endpoint

async fn create_with_empty_body_uses_defaults_and_has_no_creator() {
    let app = App::new();
    // No body and no Content-Type at all: "an empty body is treated as {}".
    let res = app.call(Method::PUT, "/v1/sessions", &[], None).await;
    let body = res.ok(201);
    let sid = body["sessionId"].as_str().expect("sessionId is a string");
    assert!(
        is_lower_hex(sid, 48),
        "sessionId is 48 lowercase hex: {sid}"
    );
    assert_eq!(body["state"], "active");
    assert_eq!(body["ttl"], 3660);
    assert_eq!(body["maxAgents"], 50);
    assert_eq!(ts(&body["createdAt"]), T0);
    assert_eq!(body["createdAt"], T0_STR);
    assert_eq!(ts(&body["expiresAt"]), T0 + 3660 * 1000);
    assert!(body.get("creatorAgentId").is_none(), "{body}");
    assert!(body.get("sessionKey").is_none(), "{body}");
    assert!(body.get("greeting").is_none(), "{body}");
    // Nobody joined.
    let status = app.status(sid).await;
    assert_eq!(status.ok(200)["agents"], json!([]));
}

async fn create_with_creator_agent_id_joins_the_creator_with_a_key() {
    let app = App::new();
    let res = app
        .json(
            Method::PUT,
            "/v1/sessions",
            &[],
            json!({"ttl": 120, "maxAgents": 3, "creatorAgentId": "alice", "greeting": "Hello!", "unknownField": [1, 2]}),
        )
        .await;
    let body = res.ok(201);
    assert_eq!(body["ttl"], 120);
    assert_eq!(body["maxAgents"], 3);
    assert_eq!(body["creatorAgentId"], "alice");
    assert_eq!(body["greeting"], "Hello!");
    assert_eq!(ts(&body["expiresAt"]), T0 + 120_000);
    let key = body["sessionKey"].as_str().expect("sessionKey is a string");
    assert!(is_hex(key, 64), "sessionKey is 64 hex chars: {key}");
    let sid = body["sessionId"].as_str().unwrap();
    let status = app.status(sid).await;
    let status = status.ok(200);
    assert_eq!(status["agents"], json!(["alice"]));
    assert_eq!(status["creatorAgentId"], "alice");
    // The key works: a send with it is verified.
    let sent = app
        .send(sid, "alice", Some(key), json!({"text": "hi"}))
        .await;
    assert_eq!(sent.ok(201)["verified"], true);
}

async fn create_with_only_the_x_agent_id_header_makes_it_the_creator() {
    let app = App::new();
    let res = app
        .json(
            Method::PUT,
            "/v1/sessions",
            &[("X-Agent-Id", "bob")],
            json!({}),
        )
        .await;
    let body = res.ok(201);
    assert_eq!(body["creatorAgentId"], "bob");
    assert!(is_hex(body["sessionKey"].as_str().unwrap(), 64));
    let sid = body["sessionId"].as_str().unwrap();
    assert_eq!(app.status(sid).await.ok(200)["agents"], json!(["bob"]));
}

async fn create_with_the_same_creator_in_header_and_body_is_accepted() {
    let app = App::new();
    let res = app
        .json(
            Method::PUT,
            "/v1/sessions",
            &[("X-Agent-Id", "alice")],
            json!({"creatorAgentId": "alice"}),
        )
        .await;
    let body = res.ok(201);
    assert_eq!(body["creatorAgentId"], "alice");
    assert!(body["sessionKey"].is_string());
}

async fn status_lists_agents_as_strings_and_member_details() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    advance_ms(5_000).await;
    app.join(&sid, "bob").await;
    let res = app.status(&sid).await;
    let body = res.ok(200);
    assert_eq!(body["sessionId"], sid.as_str());
    assert_eq!(body["state"], "active");
    assert_eq!(body["ttl"], 3660);
    assert_eq!(body["maxAgents"], 50);
    assert_eq!(body["agents"], json!(["alice", "bob"]));
    assert_eq!(body["creatorAgentId"], "alice");
    assert_eq!(ts(&body["createdAt"]), T0);
    assert_eq!(ts(&body["expiresAt"]), T0 + 3660 * 1000);
    let members = body["members"].as_array().expect("members is a list");
    assert_eq!(members.len(), 2);
    assert_eq!(members[0]["agentId"], "alice");
    assert_eq!(members[0]["creator"], true);
    assert_eq!(ts(&members[0]["joinedAt"]), T0);
    assert_eq!(ts(&members[0]["lastSeenAt"]), T0);
    assert_eq!(members[1]["agentId"], "bob");
    assert_eq!(members[1]["creator"], false);
    assert_eq!(ts(&members[1]["joinedAt"]), T0 + 5_000);
    assert_eq!(ts(&members[1]["lastSeenAt"]), T0 + 5_000);
    // No key is ever shown in a status.
    assert!(!res.text.contains("sessionKey"), "{}", res.text);
}

async fn status_of_a_session_without_creator_has_null_creator() {
    let app = App::new();
    let sid = app.create(json!({})).await["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app.status(&sid).await;
    let body = body.ok(200);
    assert!(body["creatorAgentId"].is_null(), "{body}");
    assert_eq!(body["members"], json!([]));
}

async fn join_answers_joined_with_an_integer_agents_online() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let res = app
        .call(
            Method::POST,
            &format!("/v1/sessions/{sid}/join"),
            &[("X-Agent-Id", "bob")],
            None,
        )
        .await;
    let body = res.ok(200);
    assert_eq!(body["status"], "joined");
    assert_eq!(body["sessionId"], sid.as_str());
    assert_eq!(body["agentsOnline"], json!(2));
    assert!(body["agentsOnline"].is_u64());
    assert!(is_hex(body["sessionKey"].as_str().unwrap(), 64));
    assert!(ts(&body["expiresAt"]) >= T0 + 3660 * 1000);
    let again = app
        .call(
            Method::POST,
            &format!("/v1/sessions/{sid}/join"),
            &[("X-Agent-Id", "carol")],
            None,
        )
        .await;
    assert_eq!(again.ok(200)["agentsOnline"], 3);
}

async fn session_keys_are_unique_per_agent() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    let bob = app.join(&sid, "bob").await;
    let carol = app.join(&sid, "carol").await;
    assert_ne!(alice, bob);
    assert_ne!(bob, carol);
    assert_ne!(alice, carol);
}

async fn leave_answers_ok_true_and_removes_the_member() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let bob = app.join(&sid, "bob").await;
    let res = app.leave(&sid, "bob", Some("bob"), Some(&bob)).await;
    let body = res.ok(200);
    assert_eq!(body["ok"], true);
    assert_eq!(body["status"], "removed");
    assert_eq!(body["sessionId"], sid.as_str());
    assert_eq!(body["agentId"], "bob");
    assert!(body["message"].is_string());
    assert_eq!(app.status(&sid).await.ok(200)["agents"], json!(["alice"]));
    // bob is no longer a member: polls are refused, and the id can be joined again.
    app.poll(&sid, "bob", "")
        .await
        .err(403, "agent_not_in_session");
    let again = app.join(&sid, "bob").await;
    assert_ne!(again, bob, "a rejoin gets a fresh key");
}

async fn renew_answers_session_fields() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    app.join(&sid, "bob").await;
    advance_ms(10_000).await;
    let res = app.renew(&sid, "bob", Some(json!({}))).await;
    let body = res.ok(200);
    assert_eq!(body["sessionId"], sid.as_str());
    assert_eq!(body["state"], "active");
    assert_eq!(body["ttl"], 3660);
    assert_eq!(ts(&body["expiresAt"]), T0 + 10_000 + 3660 * 1000);
    assert_eq!(body["agents"], json!(["alice", "bob"]));
}

async fn send_answers_201_with_a_receipt() {
    let app = App::new();
    let (sid, key) = app.session_with_creator("alice").await;
    advance_ms(1_500).await;
    let res = app
        .send(
            &sid,
            "alice",
            Some(&key),
            json!({"text": "hi", "json": {"a": 1}}),
        )
        .await;
    let body = res.ok(201);
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("msg_") && id.len() > 4, "{id}");
    let cursor = body["cursor"].as_str().expect("cursor is a string");
    assert!(
        !cursor.is_empty() && cursor.bytes().all(|b| b.is_ascii_digit()),
        "{cursor}"
    );
    assert_ne!(cursor, "0", "cursor 0 belongs to the greeting");
    assert_eq!(ts(&body["sentAt"]), T0 + 1_500);
    assert_eq!(ts(&body["expiresAt"]), T0 + 1_500 + 3660 * 1000);
    assert_eq!(body["verified"], true);
    assert!(body.get("redacted").is_none(), "nothing to redact: {body}");
}

async fn send_without_a_key_is_accepted_unverified() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let res = app.send(&sid, "alice", None, json!({"text": "hi"})).await;
    assert_eq!(res.ok(201)["verified"], false);
    let poll = app.poll(&sid, "alice", "").await;
    assert_eq!(poll.ok(200)["messages"][0]["verified"], false);
}

async fn send_accepts_json_only_and_any_non_null_json_value() {
    let app = App::new();
    let (sid, key) = app.session_with_creator("alice").await;
    for value in [json!({"k": [1, "x"]}), json!(false), json!(0), json!("s")] {
        let res = app
            .send(&sid, "alice", Some(&key), json!({ "json": value }))
            .await;
        res.ok(201);
    }
    let poll = app.poll(&sid, "alice", "").await;
    let messages = poll.ok(200)["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0]["json"], json!({"k": [1, "x"]}));
    assert!(messages[0].get("text").is_none());
    assert_eq!(messages[1]["json"], json!(false));
    assert_eq!(messages[2]["json"], json!(0));
    assert_eq!(messages[3]["json"], json!("s"));
}

async fn send_redacts_secrets_and_lists_the_types() {
    // SPEC §2 "Secret redaction": matches are replaced with `[REDACTED:<type>]` and the send
    // response lists the types redacted.
    let app = App::new();
    let (sid, key) = app.session_with_creator("alice").await;
    let aws = "AKIAIOSFODNN7EXAMPLE";
    let res = app
        .send(
            &sid,
            "alice",
            Some(&key),
            json!({"text": format!("my key is {aws} ok"), "json": {"nested": [format!("id {aws}")]}}),
        )
        .await;
    let body = res.ok(201);
    let types = body["redacted"]
        .as_array()
        .unwrap_or_else(|| panic!("redacted must list the types: {body}"));
    assert!(!types.is_empty());
    let poll = app.poll(&sid, "alice", "").await;
    let text = poll.text.clone();
    assert!(!text.contains(aws), "the secret was stored: {text}");
    assert!(text.contains("[REDACTED:"), "{text}");
}

async fn poll_answers_messages_in_cursor_order_with_every_field() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    let bob = app.join(&sid, "bob").await;
    let first = app
        .send(&sid, "alice", Some(&alice), json!({"text": "one"}))
        .await;
    let first = first.ok(201).clone();
    advance_ms(1_000).await;
    app.send(
        &sid,
        "bob",
        Some(&bob),
        json!({"text": "two", "json": {"n": 2}}),
    )
    .await
    .ok(201);
    let res = app.poll(&sid, "bob", "").await;
    let body = res.ok(200);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    let m = &messages[0];
    assert_eq!(m["id"], first["id"]);
    assert_eq!(m["agentId"], "alice");
    assert_eq!(m["text"], "one");
    assert_eq!(m["cursor"], first["cursor"]);
    assert_eq!(m["verified"], true);
    assert_eq!(m["sentAt"], first["sentAt"]);
    assert_eq!(m["expiresAt"], first["expiresAt"]);
    assert_eq!(messages[1]["agentId"], "bob");
    assert_eq!(messages[1]["json"], json!({"n": 2}));
    assert!(cursor(&messages[0]["cursor"]) < cursor(&messages[1]["cursor"]));
    assert_eq!(body["nextCursor"], messages[1]["cursor"]);
    assert!(body["nextCursor"].is_string());
    assert!(body.get("members").is_none(), "members only on request");
    assert_ne!(body["truncated"], true);
}

async fn pair_create_answers_code_url_and_expiry() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let res = app
        .json(Method::PUT, "/v1/pair", &[], json!({"sessionId": sid}))
        .await;
    let body = res.ok(201);
    let code = body["code"].as_str().unwrap();
    assert!(is_pair_code(code), "WORD-WORD-XXXXX: {code}");
    assert_eq!(body["url"], format!("http://relay.test/p/{code}"));
    assert_eq!(ts(&body["expiresAt"]), T0 + 600_000);
    assert!(
        !code.contains(&sid[..8]),
        "never derived from the session id"
    );
    let status = app.get(&format!("/v1/pair/{code}/status"), &[]).await;
    assert_eq!(status.ok(200), &json!({"state": "pending"}));
}

async fn claim_joins_the_agent_and_answers_claimed() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    let res = app.claim(&code, "bob").await;
    let body = res.ok(200);
    assert_eq!(body["sessionId"], sid.as_str());
    assert_eq!(body["status"], "claimed");
    let key = body["sessionKey"].as_str().unwrap().to_owned();
    assert!(is_hex(&key, 64));
    assert!(ts(&body["expiresAt"]) >= T0 + 3660 * 1000);
    assert_eq!(
        app.status(&sid).await.ok(200)["agents"],
        json!(["alice", "bob"])
    );
    let sent = app
        .send(&sid, "bob", Some(&key), json!({"text": "hi"}))
        .await;
    assert_eq!(sent.ok(201)["verified"], true);
    let status = app.get(&format!("/v1/pair/{code}/status"), &[]).await;
    assert_eq!(status.ok(200), &json!({"state": "claimed"}));
}

async fn health_reports_status_version_uptime_and_capabilities() {
    let app = App::new();
    advance_ms(7_000).await;
    let res = app.get("/health", &[]).await;
    let body = res.ok(200);
    assert_eq!(body["status"], "ok");
    assert!(!body["version"].as_str().unwrap().is_empty());
    assert_eq!(body["uptime"], 7);
    let caps = &body["capabilities"];
    assert_eq!(caps["messageFormat"], json!(["text", "json"]));
    assert_eq!(caps["longPoll"], true);
    let backend = match backend() {
        Backend::Embedded => "embedded",
        Backend::Redis => "redis",
    };
    assert_eq!(
        body["store"],
        json!({"backend": backend, "reachable": true})
    );
}

async fn metrics_count_requests_claims_errors_and_store_round_trips() {
    let app = App::with(|c| c.max_messages_per_session = 1);
    let (sid, alice) = app.session_with_creator("alice").await;
    app.send(&sid, "alice", Some(&alice), json!({"text": "1"}))
        .await
        .ok(201);
    app.send(&sid, "alice", Some(&alice), json!({"text": "2"}))
        .await
        .err(429, "session_quota_exceeded");
    let code = app.pair(&sid).await;
    app.claim("ABLE-ABLE-00000", "bob")
        .await
        .err(404, "code_not_found");
    app.claim(&code, "bob").await.ok(200);
    app.claim(&code, "carol")
        .await
        .err(404, "code_expired_or_used");
    let res = app.get("/metrics", &[]).await;
    assert_eq!(res.status, 200);
    assert!(
        res.content_type().starts_with("text/plain; version=0.0.4"),
        "{}",
        res.content_type()
    );
    let text = &res.text;
    for line in [
        r#"nexus_http_requests_total{method="PUT",route="/v1/sessions",status="201"} 1"#,
        r#"nexus_http_requests_total{method="POST",route="/v1/sessions/{id}/messages",status="201"} 1"#,
        r#"nexus_http_requests_total{method="POST",route="/v1/sessions/{id}/messages",status="429"} 1"#,
        r#"nexus_http_errors_total{code="session_quota_exceeded"} 1"#,
        r#"nexus_claims_total{outcome="claimed"} 1"#,
        r#"nexus_claims_total{outcome="code_not_found"} 1"#,
        r#"nexus_claims_total{outcome="code_expired_or_used"} 1"#,
        r#"nexus_http_request_duration_seconds_count{route="/v1/pair/{code}/claim"} 3"#,
        r#"nexus_store_operation_duration_seconds_count{op="append"} 2"#,
        r#"nexus_store_errors_total{op="append"} 0"#,
        "nexus_sessions_active 1",
        "nexus_agents 2",
        "nexus_messages_stored 1",
        "nexus_longpoll_waiters 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    let backend = match backend() {
        Backend::Embedded => "embedded",
        Backend::Redis => "redis",
    };
    assert!(text.contains(&format!("nexus_store_up{{backend=\"{backend}\"}} 1")));
    // Every sample line is `name{labels} value` or `name value`, with a number.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = l.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{l}");
    }
    // No secret in any label.
    for secret in [&sid, &alice, &code] {
        assert!(!text.contains(secret.as_str()));
    }
    // A parked long-poll shows.
    let poller = {
        let (app, sid) = (app.clone(), sid.clone());
        tokio::spawn(async move { app.poll(&sid, "bob", "after=1&wait=30").await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let parked = app.get("/metrics", &[]).await;
    assert!(
        parked.text.lines().any(|l| l == "nexus_longpoll_waiters 1"),
        "{}",
        parked.text
    );
    poller.abort();
}

async fn stats_count_sessions_agents_and_messages() {
    let app = App::new();
    let empty = app.get("/v1/stats", &[]).await;
    assert_eq!(
        empty.ok(200),
        &json!({"activeSessions": 0, "totalAgents": 0, "totalMessages": 0, "uptime": 0})
    );
    let (a, alice) = app.session_with_creator("alice").await;
    app.join(&a, "bob").await;
    app.create(json!({})).await;
    app.send(&a, "alice", Some(&alice), json!({"text": "1"}))
        .await
        .ok(201);
    app.send(&a, "alice", Some(&alice), json!({"text": "2"}))
        .await
        .ok(201);
    advance_ms(3_000).await;
    let res = app.get("/v1/stats", &[]).await;
    assert_eq!(
        res.ok(200),
        &json!({"activeSessions": 2, "totalAgents": 2, "totalMessages": 2, "uptime": 3})
    );
}

// ---------------------------------------------------------------------------------------------
// Request ids and the JSON fallbacks

async fn every_response_carries_a_distinct_x_request_id() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let responses = [
        app.get("/health", &[]).await,
        app.status(&sid).await,
        app.get("/v1/sessions/unknown", &[]).await,
        app.call(Method::PUT, "/v1/sessions", &[], Some(b"{".to_vec()))
            .await,
        app.get("/no/such/route", &[]).await,
        app.call(Method::PATCH, "/v1/sessions", &[], None).await,
        app.get("/", &[]).await,
        app.get("/p/ABLE-ABLE-00000", &[]).await,
    ];
    let mut ids = std::collections::HashSet::new();
    for res in &responses {
        // `call` already asserts presence; here: every id is distinct.
        assert!(
            ids.insert(res.request_id()),
            "duplicate id {}",
            res.request_id()
        );
    }
}

async fn unknown_route_is_a_404_json_error() {
    let app = App::new();
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::GET, "/v1/sessions/abc/nothing"),
        (Method::POST, "/v2/sessions"),
    ] {
        let res = app.call(method, path, &[], None).await;
        assert_eq!(res.status, 404, "{path}");
        res.assert_error_shape();
        assert!(res.is_json(), "{path}: {:?}", res.content_type());
    }
}

async fn wrong_method_is_a_405_json_error() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    for (method, path) in [
        (Method::PATCH, "/v1/sessions".to_owned()),
        (Method::DELETE, format!("/v1/sessions/{sid}")),
        (Method::PUT, "/health".to_owned()),
        (Method::GET, "/v1/pair/ABLE-ABLE-00000/claim".to_owned()),
    ] {
        let res = app.call(method, &path, &[], None).await;
        assert_eq!(res.status, 405, "{path}: {}", res.text);
        res.assert_error_shape();
        assert!(res.is_json(), "{path}: {:?}", res.content_type());
    }
}

// ---------------------------------------------------------------------------------------------
// invalid_body and invalid_request

async fn malformed_json_is_invalid_body_on_every_body_endpoint() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    for (method, path) in [
        (Method::PUT, "/v1/sessions".to_owned()),
        (Method::POST, format!("/v1/sessions/{sid}/messages")),
        (Method::POST, format!("/v1/sessions/{sid}/renew")),
        (Method::PUT, "/v1/pair".to_owned()),
    ] {
        for bad in [&b"{"[..], b"{\"text\": }", b"not json", b"\xff\xfe"] {
            let res = app
                .call(
                    method.clone(),
                    &path,
                    &[("X-Agent-Id", "alice")],
                    Some(bad.to_vec()),
                )
                .await;
            res.err(400, "invalid_body");
        }
    }
}

async fn create_ttl_zero_is_invalid_request_naming_ttl() {
    let app = App::new();
    let res = app
        .json(Method::PUT, "/v1/sessions", &[], json!({"ttl": 0}))
        .await;
    res.invalid_fields(&["ttl"]);
}

async fn create_ttl_above_max_ttl_seconds_is_invalid_request() {
    let app = App::new();
    app.json(Method::PUT, "/v1/sessions", &[], json!({"ttl": 86_401}))
        .await
        .invalid_fields(&["ttl"]);
    app.json(Method::PUT, "/v1/sessions", &[], json!({"ttl": 86_400}))
        .await
        .ok(201);
    // The configured MAX_TTL_SECONDS is the bound, not the default.
    let small = App::with(|c| c.max_ttl_seconds = 100);
    small
        .json(Method::PUT, "/v1/sessions", &[], json!({"ttl": 101}))
        .await
        .invalid_fields(&["ttl"]);
    small
        .json(Method::PUT, "/v1/sessions", &[], json!({"ttl": 100}))
        .await
        .ok(201);
}

async fn create_max_agents_out_of_range_is_invalid_request() {
    let app = App::new();
    for bad in [json!(51), json!(0), json!(-3)] {
        app.json(
            Method::PUT,
            "/v1/sessions",
            &[],
            json!({ "maxAgents": bad }),
        )
        .await
        .invalid_fields(&["maxAgents"]);
    }
    let ok = app
        .json(Method::PUT, "/v1/sessions", &[], json!({"maxAgents": 50}))
        .await;
    assert_eq!(ok.ok(201)["maxAgents"], 50);
}

async fn create_greeting_over_4096_chars_is_invalid_request() {
    let app = App::new();
    app.json(
        Method::PUT,
        "/v1/sessions",
        &[],
        json!({"greeting": "x".repeat(4097)}),
    )
    .await
    .invalid_fields(&["greeting"]);
    // The limit counts characters, not bytes.
    let ok = app
        .json(
            Method::PUT,
            "/v1/sessions",
            &[],
            json!({"greeting": "é".repeat(4096)}),
        )
        .await;
    assert_eq!(
        ok.ok(201)["greeting"].as_str().unwrap().chars().count(),
        4096
    );
}

async fn create_fields_of_the_wrong_type_are_invalid_request() {
    let app = App::new();
    for (body, field) in [
        (json!({"ttl": "60"}), "ttl"),
        (json!({"ttl": 1.5}), "ttl"),
        (json!({"ttl": true}), "ttl"),
        (json!({"maxAgents": "5"}), "maxAgents"),
        (json!({"greeting": 5}), "greeting"),
        (json!({"greeting": ["a"]}), "greeting"),
        (json!({"creatorAgentId": 5}), "creatorAgentId"),
    ] {
        app.json(Method::PUT, "/v1/sessions", &[], body)
            .await
            .invalid_fields(&[field]);
    }
    // Several bad fields are all named.
    app.json(
        Method::PUT,
        "/v1/sessions",
        &[],
        json!({"ttl": 0, "maxAgents": 51}),
    )
    .await
    .invalid_fields(&["ttl", "maxAgents"]);
    // A body that is JSON but not an object.
    let res = app
        .json(Method::PUT, "/v1/sessions", &[], json!([1, 2]))
        .await;
    res.err(400, "invalid_request");
    assert!(res.json["details"].is_array(), "{}", res.text);
}

async fn send_bodies_without_text_or_json_are_invalid_request() {
    let app = App::new();
    let (sid, key) = app.session_with_creator("alice").await;
    for body in [
        json!({}),
        json!({"text": ""}),
        json!({"text": 5}),
        json!({"json": null}),
        json!({"text": null, "json": null}),
    ] {
        let res = app.send(&sid, "alice", Some(&key), body.clone()).await;
        res.err(400, "invalid_request");
        assert!(
            !res.json["details"].as_array().unwrap().is_empty(),
            "{body}: {}",
            res.text
        );
    }
    app.send(&sid, "alice", Some(&key), json!({"text": 5}))
        .await
        .invalid_fields(&["text"]);
    // Nothing was stored.
    assert_eq!(
        app.poll(&sid, "alice", "").await.ok(200)["messages"],
        json!([])
    );
}

async fn poll_after_minus_one_is_invalid_request() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    app.poll(&sid, "alice", "after=-1")
        .await
        .invalid_fields(&["after"]);
    app.poll(&sid, "alice", "after=abc")
        .await
        .invalid_fields(&["after"]);
}

async fn poll_wait_61_is_invalid_request() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    app.poll(&sid, "alice", "wait=61")
        .await
        .invalid_fields(&["wait"]);
    app.poll(&sid, "alice", "wait=-1")
        .await
        .invalid_fields(&["wait"]);
}

async fn poll_limit_out_of_range_is_invalid_request() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    app.poll(&sid, "alice", "limit=0")
        .await
        .invalid_fields(&["limit"]);
    app.poll(&sid, "alice", "limit=1001")
        .await
        .invalid_fields(&["limit"]);
    app.poll(&sid, "alice", "limit=1000").await.ok(200);
}

async fn renew_ttl_out_of_range_is_invalid_request() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    for bad in [json!(0), json!(86_401), json!("10")] {
        app.renew(&sid, "alice", Some(json!({ "ttl": bad })))
            .await
            .invalid_fields(&["ttl"]);
    }
    // The refused renew did not change the ttl.
    assert_eq!(app.status(&sid).await.ok(200)["ttl"], 3660);
}

async fn pair_without_session_id_is_invalid_request() {
    let app = App::new();
    app.json(Method::PUT, "/v1/pair", &[], json!({}))
        .await
        .invalid_fields(&["sessionId"]);
    app.json(Method::PUT, "/v1/pair", &[], json!({"sessionId": 7}))
        .await
        .invalid_fields(&["sessionId"]);
}

async fn a_malformed_idempotency_key_is_invalid_request() {
    let app = App::new();
    let (sid, key) = app.session_with_creator("alice").await;
    let long = "k".repeat(129);
    let res = app
        .send_with(
            &sid,
            &[
                ("X-Agent-Id", "alice"),
                ("X-Session-Key", &key),
                ("Idempotency-Key", &long),
            ],
            json!({"text": "hi"}),
        )
        .await;
    res.invalid_fields(&["Idempotency-Key"]);
}

// ---------------------------------------------------------------------------------------------
// Agent ids

async fn a_missing_x_agent_id_is_missing_agent_id() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    let cases = [
        (Method::POST, format!("/v1/sessions/{sid}/join"), None),
        (
            Method::POST,
            format!("/v1/sessions/{sid}/messages"),
            Some(json!({"text": "hi"})),
        ),
        (Method::GET, format!("/v1/sessions/{sid}/messages"), None),
        (
            Method::POST,
            format!("/v1/sessions/{sid}/renew"),
            Some(json!({})),
        ),
        (Method::POST, format!("/v1/pair/{code}/claim"), None),
        (
            Method::DELETE,
            format!("/v1/sessions/{sid}/agents/bob"),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let res = match body {
            Some(b) => app.json(method, &path, &[], b).await,
            None => app.call(method, &path, &[], None).await,
        };
        res.err(400, "missing_agent_id");
    }
    // The refused claim did not consume the code.
    let status = app.get(&format!("/v1/pair/{code}/status"), &[]).await;
    assert_eq!(status.ok(200)["state"], "pending");
}

async fn a_malformed_x_agent_id_header_is_invalid_agent_id() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let long = "a".repeat(129);
    for bad in ["bad id", "a/b", ".", "..", "é", long.as_str(), "a:b"] {
        let res = app
            .call(
                Method::POST,
                &format!("/v1/sessions/{sid}/join"),
                &[("X-Agent-Id", bad)],
                None,
            )
            .await;
        res.err(400, "invalid_agent_id");
    }
    // On create too, and on poll.
    app.json(
        Method::PUT,
        "/v1/sessions",
        &[("X-Agent-Id", "bad id")],
        json!({}),
    )
    .await
    .err(400, "invalid_agent_id");
    app.poll(&sid, "a/b", "").await.err(400, "invalid_agent_id");
    // The longest valid id is fine.
    app.join(&sid, &"a".repeat(128)).await;
    assert_eq!(app.status(&sid).await.ok(200)["agents"][1], "a".repeat(128));
}

async fn a_malformed_creator_agent_id_is_invalid_agent_id() {
    let app = App::new();
    for bad in ["bad id", "", "..", "x/y"] {
        let res = app
            .json(
                Method::PUT,
                "/v1/sessions",
                &[],
                json!({ "creatorAgentId": bad }),
            )
            .await;
        res.err(400, "invalid_agent_id");
    }
    assert_eq!(app.get("/v1/stats", &[]).await.ok(200)["activeSessions"], 0);
}

async fn system_is_reserved_in_header_and_creator_agent_id() {
    let app = App::new();
    app.json(
        Method::PUT,
        "/v1/sessions",
        &[],
        json!({"creatorAgentId": "system"}),
    )
    .await
    .err(400, "invalid_agent_id");
    app.json(
        Method::PUT,
        "/v1/sessions",
        &[("X-Agent-Id", "system")],
        json!({}),
    )
    .await
    .err(400, "invalid_agent_id");
    let (sid, _) = app.session_with_creator("alice").await;
    let res = app
        .call(
            Method::POST,
            &format!("/v1/sessions/{sid}/join"),
            &[("X-Agent-Id", "system")],
            None,
        )
        .await;
    res.err(400, "invalid_agent_id");
    let code = app.pair(&sid).await;
    app.claim(&code, "system")
        .await
        .err(400, "invalid_agent_id");
}

async fn differing_creator_and_header_is_creator_identity_conflict() {
    let app = App::new();
    let res = app
        .json(
            Method::PUT,
            "/v1/sessions",
            &[("X-Agent-Id", "bob")],
            json!({"creatorAgentId": "alice"}),
        )
        .await;
    res.err(400, "creator_identity_conflict");
    assert_eq!(app.get("/v1/stats", &[]).await.ok(200)["activeSessions"], 0);
}

// ---------------------------------------------------------------------------------------------
// Keys and membership

async fn leave_without_a_key_is_401_missing_session_key() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    app.join(&sid, "bob").await;
    app.leave(&sid, "bob", Some("bob"), None)
        .await
        .err(401, "missing_session_key");
    assert_eq!(
        app.status(&sid).await.ok(200)["agents"],
        json!(["alice", "bob"])
    );
}

async fn leave_with_a_wrong_key_is_401_invalid_session_key() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    app.join(&sid, "bob").await;
    let carol = app.join(&sid, "carol").await;
    for wrong in [&"0".repeat(64), &alice, &carol, &"x".to_owned()] {
        app.leave(&sid, "bob", Some("bob"), Some(wrong))
            .await
            .err(401, "invalid_session_key");
    }
    assert_eq!(
        app.status(&sid).await.ok(200)["agents"],
        json!(["alice", "bob", "carol"])
    );
}

async fn send_with_a_wrong_key_is_403_invalid_session_key() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    app.join(&sid, "bob").await;
    for wrong in ["0".repeat(64), alice.clone(), "short".into()] {
        app.send(&sid, "bob", Some(&wrong), json!({"text": "hi"}))
            .await
            .err(403, "invalid_session_key");
    }
    assert_eq!(
        app.poll(&sid, "alice", "").await.ok(200)["messages"],
        json!([])
    );
}

async fn send_by_a_non_member_is_forbidden() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    app.send(&sid, "mallory", None, json!({"text": "hi"}))
        .await
        .err(403, "forbidden");
    app.send(&sid, "mallory", Some(&alice), json!({"text": "hi"}))
        .await
        .err(403, "forbidden");
    assert_eq!(
        app.poll(&sid, "alice", "").await.ok(200)["messages"],
        json!([])
    );
}

async fn renew_by_a_non_member_is_forbidden() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    advance_ms(10_000).await;
    app.renew(&sid, "mallory", Some(json!({"ttl": 9000})))
        .await
        .err(403, "forbidden");
    let status = app.status(&sid).await;
    let status = status.ok(200);
    assert_eq!(status["ttl"], 3660);
    assert_eq!(ts(&status["expiresAt"]), T0 + 3660 * 1000);
}

async fn the_creator_cannot_leave() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    app.leave(&sid, "alice", Some("alice"), Some(&alice))
        .await
        .err(403, "forbidden");
    assert_eq!(app.status(&sid).await.ok(200)["agents"], json!(["alice"]));
}

async fn leaving_for_another_agent_is_forbidden() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    let bob = app.join(&sid, "bob").await;
    // alice (with her own key) tries to remove bob; bob's key under alice's name does not help.
    app.leave(&sid, "bob", Some("alice"), Some(&alice))
        .await
        .err(403, "forbidden");
    app.leave(&sid, "bob", Some("alice"), Some(&bob))
        .await
        .err(403, "forbidden");
    assert_eq!(
        app.status(&sid).await.ok(200)["agents"],
        json!(["alice", "bob"])
    );
}

async fn poll_by_a_non_member_is_agent_not_in_session() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    app.send(&sid, "alice", Some(&alice), json!({"text": "secret"}))
        .await
        .ok(201);
    let res = app.poll(&sid, "mallory", "").await;
    res.err(403, "agent_not_in_session");
    assert!(!res.text.contains("secret"));
}

async fn leave_for_a_non_member_is_agent_not_found() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    app.leave(&sid, "ghost", Some("ghost"), Some(&"0".repeat(64)))
        .await
        .err(404, "agent_not_found");
    // Leaving twice: the second time the agent is gone.
    let bob = app.join(&sid, "bob").await;
    app.leave(&sid, "bob", Some("bob"), Some(&bob))
        .await
        .ok(200);
    app.leave(&sid, "bob", Some("bob"), Some(&bob))
        .await
        .err(404, "agent_not_found");
}

// ---------------------------------------------------------------------------------------------
// Leave: the order of checks (SPEC §1), each step shadowing every later one

async fn leave_checks_run_in_spec_order() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    let bob = app.join(&sid, "bob").await;
    let unknown = "0".repeat(48);

    // 1. Session exists — even with every later check failing too.
    app.leave(&unknown, "bob", None, None)
        .await
        .err(404, "session_not_found");
    app.leave("not-a-session", "bob", Some("alice"), None)
        .await
        .err(404, "session_not_found");
    // 2a. X-Agent-Id present — before membership and key.
    app.leave(&sid, "ghost", None, None)
        .await
        .err(400, "missing_agent_id");
    // 2b. X-Agent-Id equal to :agentId — before membership (ghost is no member) and key.
    app.leave(&sid, "ghost", Some("bob"), None)
        .await
        .err(403, "forbidden");
    app.leave(&sid, "bob", Some("ghost"), Some(&bob))
        .await
        .err(403, "forbidden");
    // 3. Member — before the creator check and the key.
    app.leave(&sid, "ghost", Some("ghost"), None)
        .await
        .err(404, "agent_not_found");
    // 4. Not the creator — before the key checks.
    app.leave(&sid, "alice", Some("alice"), None)
        .await
        .err(403, "forbidden");
    app.leave(&sid, "alice", Some("alice"), Some("wrong"))
        .await
        .err(403, "forbidden");
    // 5. Key present.
    app.leave(&sid, "bob", Some("bob"), None)
        .await
        .err(401, "missing_session_key");
    // 6. Key valid.
    app.leave(&sid, "bob", Some("bob"), Some(&alice))
        .await
        .err(401, "invalid_session_key");
    // All pass.
    app.leave(&sid, "bob", Some("bob"), Some(&bob))
        .await
        .ok(200);
}

// ---------------------------------------------------------------------------------------------
// session_not_found, agent_id_taken, session_full

async fn an_unknown_session_is_session_not_found_everywhere() {
    let app = App::new();
    app.session_with_creator("alice").await; // another session exists
    let unknown = "a".repeat(48);
    expect_session_not_found_everywhere(&app, &unknown).await;
}

async fn a_malformed_session_id_is_session_not_found() {
    let app = App::new();
    for bad in ["xyz", &"A".repeat(48), &"a".repeat(47), &"a".repeat(49)] {
        expect_session_not_found_everywhere(&app, bad).await;
    }
}

async fn an_expired_session_is_session_not_found() {
    let app = App::new();
    let created = app
        .json(
            Method::PUT,
            "/v1/sessions",
            &[],
            json!({"ttl": 5, "creatorAgentId": "alice"}),
        )
        .await;
    let sid = created.ok(201)["sessionId"].as_str().unwrap().to_owned();
    advance_ms(5_000).await;
    expect_session_not_found_everywhere(&app, &sid).await;
    assert_eq!(app.get("/v1/stats", &[]).await.ok(200)["activeSessions"], 0);
}

async fn expect_session_not_found_everywhere(app: &App, sid: &str) {
    let agent = [("X-Agent-Id", "alice")];
    let zeros = "0".repeat(64);
    let checks = [
        app.status(sid).await,
        app.call(
            Method::POST,
            &format!("/v1/sessions/{sid}/join"),
            &agent,
            None,
        )
        .await,
        app.send(sid, "alice", None, json!({"text": "hi"})).await,
        app.poll(sid, "alice", "").await,
        app.renew(sid, "alice", Some(json!({}))).await,
        app.leave(sid, "alice", Some("alice"), Some(&zeros)).await,
        app.json(Method::PUT, "/v1/pair", &[], json!({ "sessionId": sid }))
            .await,
    ];
    for res in checks {
        res.err(404, "session_not_found");
    }
}

async fn joining_with_a_taken_id_is_agent_id_taken() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let bob = app.join(&sid, "bob").await;
    for taken in ["bob", "alice"] {
        app.call(
            Method::POST,
            &format!("/v1/sessions/{sid}/join"),
            &[("X-Agent-Id", taken)],
            None,
        )
        .await
        .err(409, "agent_id_taken");
    }
    // bob's original key still works: the refused join changed nothing.
    app.send(&sid, "bob", Some(&bob), json!({"text": "still me"}))
        .await
        .ok(201);
}

async fn claiming_with_a_taken_id_is_agent_id_taken_and_the_code_stays_pending() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    app.claim(&code, "alice").await.err(409, "agent_id_taken");
    assert_eq!(app.code_state(&code).await, "pending");
    app.claim(&code, "bob").await.ok(200);
}

async fn joining_a_full_session_is_session_full() {
    let app = App::new();
    let created = app
        .json(
            Method::PUT,
            "/v1/sessions",
            &[],
            json!({"maxAgents": 2, "creatorAgentId": "alice"}),
        )
        .await;
    let sid = created.ok(201)["sessionId"].as_str().unwrap().to_owned();
    let bob = app.join(&sid, "bob").await;
    app.call(
        Method::POST,
        &format!("/v1/sessions/{sid}/join"),
        &[("X-Agent-Id", "carol")],
        None,
    )
    .await
    .err(409, "session_full");
    // Leaving frees the slot.
    app.leave(&sid, "bob", Some("bob"), Some(&bob))
        .await
        .ok(200);
    app.join(&sid, "carol").await;
}

async fn a_claim_refused_for_session_full_leaves_the_code_pending() {
    let app = App::new();
    let created = app
        .json(
            Method::PUT,
            "/v1/sessions",
            &[],
            json!({"maxAgents": 2, "creatorAgentId": "alice"}),
        )
        .await;
    let sid = created.ok(201)["sessionId"].as_str().unwrap().to_owned();
    let carol = app.join(&sid, "carol").await;
    let code = app.pair(&sid).await;
    app.claim(&code, "bob").await.err(409, "session_full");
    assert_eq!(app.code_state(&code).await, "pending");
    assert_eq!(
        app.status(&sid).await.ok(200)["agents"],
        json!(["alice", "carol"])
    );
    app.leave(&sid, "carol", Some("carol"), Some(&carol))
        .await
        .ok(200);
    app.claim(&code, "bob").await.ok(200);
    assert_eq!(app.code_state(&code).await, "claimed");
}

async fn server_max_agents_caps_the_default() {
    let app = App::with(|c| c.max_agents = 2);
    let created = app.create(json!({"creatorAgentId": "alice"})).await;
    assert_eq!(created["maxAgents"], 2);
    app.json(Method::PUT, "/v1/sessions", &[], json!({"maxAgents": 3}))
        .await
        .invalid_fields(&["maxAgents"]);
}

// ---------------------------------------------------------------------------------------------
// Pairing codes

async fn an_unknown_code_is_code_not_found() {
    let app = App::new();
    for code in ["ABLE-ABLE-00000", "NOT-A-CODE", "xyz", "ABLE-ABLE-0000"] {
        app.claim(code, "bob").await.err(404, "code_not_found");
        app.get(&format!("/v1/pair/{code}/status"), &[])
            .await
            .err(404, "code_not_found");
    }
}

async fn a_claimed_code_is_code_expired_or_used() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    app.claim(&code, "bob").await.ok(200);
    app.claim(&code, "carol")
        .await
        .err(404, "code_expired_or_used");
    // Not even the same agent can use it twice.
    app.claim(&code, "bob")
        .await
        .err(404, "code_expired_or_used");
    assert_eq!(
        app.status(&sid).await.ok(200)["agents"],
        json!(["alice", "bob"])
    );
}

async fn a_code_expires_after_pair_code_ttl() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    advance_ms(600_000 - 1).await;
    assert_eq!(app.code_state(&code).await, "pending");
    advance_ms(1).await;
    assert_eq!(app.code_state(&code).await, "expired");
    app.claim(&code, "bob")
        .await
        .err(404, "code_expired_or_used");
    assert_eq!(app.status(&sid).await.ok(200)["agents"], json!(["alice"]));
}

async fn pair_code_ttl_follows_the_configuration() {
    let app = App::with(|c| c.pair_code_ttl_seconds = 30);
    let (sid, _) = app.session_with_creator("alice").await;
    let res = app
        .json(Method::PUT, "/v1/pair", &[], json!({"sessionId": sid}))
        .await;
    let body = res.ok(201);
    assert_eq!(ts(&body["expiresAt"]), T0 + 30_000);
    let code = body["code"].as_str().unwrap().to_owned();
    advance_ms(30_000).await;
    assert_eq!(app.code_state(&code).await, "expired");
}

async fn an_expired_code_is_forgotten_after_another_ttl() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    // Keep the session alive meanwhile (its default ttl is 3660 s, longer than 2 × 600 s).
    advance_ms(1_200_000 - 1).await;
    app.send(&sid, "alice", Some(&alice), json!({"text": "still here"}))
        .await
        .ok(201);
    assert_eq!(app.code_state(&code).await, "expired");
    app.claim(&code, "bob")
        .await
        .err(404, "code_expired_or_used");
    advance_ms(1).await;
    app.get(&format!("/v1/pair/{code}/status"), &[])
        .await
        .err(404, "code_not_found");
    app.claim(&code, "bob").await.err(404, "code_not_found");
}

async fn a_claimed_code_is_forgotten_one_ttl_after_the_claim() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    advance_ms(100_000).await;
    app.claim(&code, "bob").await.ok(200);
    advance_ms(600_000 - 1).await;
    assert_eq!(app.code_state(&code).await, "claimed");
    app.claim(&code, "carol")
        .await
        .err(404, "code_expired_or_used");
    advance_ms(1).await;
    app.get(&format!("/v1/pair/{code}/status"), &[])
        .await
        .err(404, "code_not_found");
    app.claim(&code, "carol").await.err(404, "code_not_found");
}

async fn claim_and_status_are_case_insensitive() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    let lower = code.to_ascii_lowercase();
    assert_ne!(lower, code);
    assert_eq!(app.code_state(&lower).await, "pending");
    let res = app.claim(&lower, "bob").await;
    assert_eq!(res.ok(200)["sessionId"], sid.as_str());
    assert_eq!(app.code_state(&code).await, "claimed");
    // Mixed case of a used code is still the same code.
    let mixed: String = code
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_lowercase()
            } else {
                c
            }
        })
        .collect();
    app.claim(&mixed, "carol")
        .await
        .err(404, "code_expired_or_used");
}

async fn codes_are_distinct_per_request() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let a = app.pair(&sid).await;
    let b = app.pair(&sid).await;
    assert_ne!(a, b);
    app.claim(&a, "bob").await.ok(200);
    assert_eq!(app.code_state(&b).await, "pending");
    app.claim(&b, "carol").await.ok(200);
}

// ---------------------------------------------------------------------------------------------
// Idempotency, payload size, quotas, capacity, REQUIRE_SESSION_KEY

async fn an_idempotent_repeat_returns_the_original_and_stores_nothing() {
    let app = App::new();
    let (sid, key) = app.session_with_creator("alice").await;
    let headers = [
        ("X-Agent-Id", "alice"),
        ("X-Session-Key", key.as_str()),
        ("Idempotency-Key", "op-1"),
    ];
    let first = app.send_with(&sid, &headers, json!({"text": "once"})).await;
    let first = first.ok(201).clone();
    advance_ms(2_000).await;
    let repeat = app.send_with(&sid, &headers, json!({"text": "once"})).await;
    let repeat = repeat.ok(200);
    assert_eq!(repeat["id"], first["id"]);
    assert_eq!(repeat["cursor"], first["cursor"]);
    assert_eq!(repeat["sentAt"], first["sentAt"]);
    let poll = app.poll(&sid, "alice", "").await;
    assert_eq!(poll.ok(200)["messages"].as_array().unwrap().len(), 1);
    assert_eq!(app.get("/v1/stats", &[]).await.ok(200)["totalMessages"], 1);
    // The next new message gets the next cursor: the repeat used none.
    let next = app
        .send(&sid, "alice", Some(&key), json!({"text": "two"}))
        .await;
    assert_eq!(
        cursor(&next.ok(201)["cursor"]),
        cursor(&first["cursor"]) + 1
    );
}

async fn an_idempotency_key_with_a_different_body_is_idempotency_key_reused() {
    let app = App::new();
    let (sid, key) = app.session_with_creator("alice").await;
    let headers = [
        ("X-Agent-Id", "alice"),
        ("X-Session-Key", key.as_str()),
        ("Idempotency-Key", "op-1"),
    ];
    app.send_with(&sid, &headers, json!({"text": "once"}))
        .await
        .ok(201);
    app.send_with(&sid, &headers, json!({"text": "other"}))
        .await
        .err(409, "idempotency_key_reused");
    app.send_with(&sid, &headers, json!({"text": "once", "json": 1}))
        .await
        .err(409, "idempotency_key_reused");
    let poll = app.poll(&sid, "alice", "").await;
    assert_eq!(poll.ok(200)["messages"].as_array().unwrap().len(), 1);
}

async fn idempotency_keys_are_scoped_to_the_agent() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    let bob = app.join(&sid, "bob").await;
    let a = app
        .send_with(
            &sid,
            &[
                ("X-Agent-Id", "alice"),
                ("X-Session-Key", &alice),
                ("Idempotency-Key", "k"),
            ],
            json!({"text": "same"}),
        )
        .await;
    let b = app
        .send_with(
            &sid,
            &[
                ("X-Agent-Id", "bob"),
                ("X-Session-Key", &bob),
                ("Idempotency-Key", "k"),
            ],
            json!({"text": "same"}),
        )
        .await;
    assert_ne!(a.ok(201)["id"], b.ok(201)["id"]);
}

async fn a_body_over_max_body_bytes_is_payload_too_large() {
    let app = App::new(); // MAX_BODY_BYTES defaults to 65536
    let (sid, key) = app.session_with_creator("alice").await;
    let wrap = br#"{"text":""}"#.len();
    let exact = format!(r#"{{"text":"{}"}}"#, "x".repeat(65_536 - wrap));
    assert_eq!(exact.len(), 65_536);
    let over = format!(r#"{{"text":"{}"}}"#, "x".repeat(65_537 - wrap));
    let headers = [("X-Agent-Id", "alice"), ("X-Session-Key", key.as_str())];
    let path = format!("/v1/sessions/{sid}/messages");
    app.call(Method::POST, &path, &headers, Some(over.into_bytes()))
        .await
        .err(413, "payload_too_large");
    app.call(Method::POST, &path, &headers, Some(exact.into_bytes()))
        .await
        .ok(201);
    // Other body endpoints too, with a configured limit.
    let small = App::with(|c| c.max_body_bytes = 100);
    let big = json!({"greeting": "g".repeat(200)});
    small
        .json(Method::PUT, "/v1/sessions", &[], big)
        .await
        .err(413, "payload_too_large");
}

async fn a_full_session_quota_is_session_quota_exceeded_and_stores_nothing() {
    let app = App::with(|c| c.max_messages_per_session = 2);
    let (sid, key) = app.session_with_creator("alice").await;
    let keyed = [
        ("X-Agent-Id", "alice"),
        ("X-Session-Key", key.as_str()),
        ("Idempotency-Key", "second"),
    ];
    app.send(&sid, "alice", Some(&key), json!({"text": "1"}))
        .await
        .ok(201);
    let second = app.send_with(&sid, &keyed, json!({"text": "2"})).await;
    let second = second.ok(201).clone();
    app.send(&sid, "alice", Some(&key), json!({"text": "3"}))
        .await
        .err(429, "session_quota_exceeded");
    let poll = app.poll(&sid, "alice", "").await;
    let texts: Vec<&Value> = poll.ok(200)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["text"])
        .collect();
    assert_eq!(texts, [&json!("1"), &json!("2")]);
    // A repeat of an acknowledged send is not new work: it still answers the original.
    let repeat = app.send_with(&sid, &keyed, json!({"text": "2"})).await;
    assert_eq!(repeat.ok(200)["id"], second["id"]);
    // Other sessions are not affected.
    let (other, other_key) = app.session_with_creator("bob").await;
    app.send(&other, "bob", Some(&other_key), json!({"text": "1"}))
        .await
        .ok(201);
}

/// The texts of a poll page.
fn page_texts(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn a_message_expires_on_its_own_and_polls_that_asked_for_it_say_truncated() {
    // ARCHITECTURE "Message lifetime": a message is held until its own expiresAt (the session's
    // expiry when it was sent); asking for it afterwards is a gap, said with `truncated`; the quota
    // counts unexpired messages and an Idempotency-Key is forgotten with its message.
    let app = App::with(|c| c.max_messages_per_session = 2);
    let created = app
        .create(json!({"ttl": 10, "creatorAgentId": "alice"}))
        .await;
    let sid = created["sessionId"].as_str().unwrap().to_owned();
    let key = created["sessionKey"].as_str().unwrap().to_owned();
    let keyed = [
        ("X-Agent-Id", "alice"),
        ("X-Session-Key", key.as_str()),
        ("Idempotency-Key", "k1"),
    ];
    let first = app.send_with(&sid, &keyed, json!({"text": "one"})).await;
    assert_eq!(ts(&first.ok(201)["expiresAt"]), T0 + 10_000);
    advance_ms(5_000).await;
    app.send(&sid, "alice", Some(&key), json!({"text": "two"}))
        .await
        .ok(201);
    // Full: two unexpired messages.
    app.send(&sid, "alice", Some(&key), json!({"text": "three"}))
        .await
        .err(429, "session_quota_exceeded");
    advance_ms(5_000).await; // "one" expired at T0 + 10 s; the session lives on (slid to 15 s)
    let all = app.poll(&sid, "alice", "").await;
    let all = all.ok(200);
    assert_eq!(page_texts(all), ["two"]);
    assert_eq!(all["truncated"], true);
    let asked = app.poll(&sid, "alice", "after=0").await;
    assert_eq!(asked.ok(200)["truncated"], true);
    let past = app.poll(&sid, "alice", "after=1").await;
    let past = past.ok(200);
    assert_eq!(page_texts(past), ["two"]);
    assert_eq!(past["truncated"], false);
    let stats = app.get("/v1/stats", &[]).await;
    assert_eq!(stats.ok(200)["totalMessages"], 1);
    // The quota has room again, and k1 was forgotten with "one": a new body is a new message.
    let again = app.send_with(&sid, &keyed, json!({"text": "uno"})).await;
    assert_eq!(again.ok(201)["cursor"], "3");
    app.send(&sid, "alice", Some(&key), json!({"text": "four"}))
        .await
        .err(429, "session_quota_exceeded");
}

async fn messages_expire_in_their_own_order_after_a_shorter_renew() {
    // A renew with a shorter ttl makes later messages expire before earlier ones: each goes at
    // its own expiresAt, and a poll asking for a gone one says so.
    let app = App::new();
    let created = app
        .create(json!({"ttl": 100, "creatorAgentId": "alice"}))
        .await;
    let sid = created["sessionId"].as_str().unwrap().to_owned();
    let key = created["sessionKey"].as_str().unwrap().to_owned();
    app.send(&sid, "alice", Some(&key), json!({"text": "long"}))
        .await
        .ok(201); // expires T0 + 100 s
    app.renew(&sid, "alice", Some(json!({"ttl": 10})))
        .await
        .ok(200);
    let short = app
        .send(&sid, "alice", Some(&key), json!({"text": "short"}))
        .await;
    assert_eq!(ts(&short.ok(201)["expiresAt"]), T0 + 10_000);
    advance_ms(8_000).await;
    app.renew(&sid, "alice", None).await.ok(200); // the session lives to T0 + 18 s
    advance_ms(4_000).await; // "short" expired at T0 + 10 s, "long" is held to T0 + 100 s
    let page = app.poll(&sid, "alice", "").await;
    let page = page.ok(200);
    assert_eq!(page_texts(page), ["long"]);
    assert_eq!(page["truncated"], true);
    let after_long = app.poll(&sid, "alice", "after=1").await;
    let after_long = after_long.ok(200);
    assert_eq!(page_texts(after_long), Vec::<String>::new());
    assert_eq!(after_long["truncated"], true, "message 2 is gone");
    let stats = app.get("/v1/stats", &[]).await;
    assert_eq!(stats.ok(200)["totalMessages"], 1);
}

async fn max_sessions_reached_is_server_at_capacity() {
    let app = App::with(|c| c.max_sessions = 2);
    app.json(Method::PUT, "/v1/sessions", &[], json!({"ttl": 10}))
        .await
        .ok(201);
    app.create(json!({})).await;
    app.json(Method::PUT, "/v1/sessions", &[], json!({}))
        .await
        .err(503, "server_at_capacity");
    assert_eq!(app.get("/v1/stats", &[]).await.ok(200)["activeSessions"], 2);
    // Expired sessions do not count.
    advance_ms(10_000).await;
    app.create(json!({})).await;
}

async fn require_session_key_refuses_unverified_sends_with_401() {
    let app = App::with(|c| c.require_session_key = true);
    let (sid, key) = app.session_with_creator("alice").await;
    app.send(&sid, "alice", None, json!({"text": "hi"}))
        .await
        .err(401, "missing_session_key");
    assert_eq!(
        app.poll(&sid, "alice", "").await.ok(200)["messages"],
        json!([])
    );
    let ok = app
        .send(&sid, "alice", Some(&key), json!({"text": "hi"}))
        .await;
    assert_eq!(ok.ok(201)["verified"], true);
    app.send(&sid, "alice", Some(&"0".repeat(64)), json!({"text": "hi"}))
        .await
        .err(403, "invalid_session_key");
}

// ---------------------------------------------------------------------------------------------
// Poll semantics

async fn the_greeting_is_a_system_message_at_cursor_0_only_without_after() {
    let app = App::new();
    let created = app
        .create(json!({"creatorAgentId": "alice", "greeting": "Welcome!"}))
        .await;
    let sid = created["sessionId"].as_str().unwrap().to_owned();
    let key = created["sessionKey"].as_str().unwrap().to_owned();
    let res = app.poll(&sid, "alice", "").await;
    let body = res.ok(200);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["agentId"], "system");
    assert_eq!(messages[0]["cursor"], "0");
    assert_eq!(messages[0]["text"], "Welcome!");
    assert!(messages[0]["id"].is_string());
    assert_eq!(body["nextCursor"], "0");
    // With after=0 the greeting is excluded (after is exclusive).
    let after0 = app.poll(&sid, "alice", "after=0").await;
    assert_eq!(after0.ok(200)["messages"], json!([]));
    assert_eq!(after0.ok(200)["nextCursor"], "0");
    // With messages, the greeting comes first and the rest follow.
    app.send(&sid, "alice", Some(&key), json!({"text": "m1"}))
        .await
        .ok(201);
    let all = app.poll(&sid, "alice", "").await;
    let all = all.ok(200)["messages"].as_array().unwrap().clone();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["cursor"], "0");
    assert_eq!(all[1]["text"], "m1");
    let later = app.poll(&sid, "alice", "after=0").await;
    let later = later.ok(200)["messages"].as_array().unwrap().clone();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0]["text"], "m1");
}

async fn after_is_exclusive() {
    let app = App::new();
    let (sid, key) = app.session_with_creator("alice").await;
    let mut cursors = Vec::new();
    for text in ["a", "b", "c"] {
        let res = app
            .send(&sid, "alice", Some(&key), json!({ "text": text }))
            .await;
        cursors.push(res.ok(201)["cursor"].as_str().unwrap().to_owned());
    }
    let res = app
        .poll(&sid, "alice", &format!("after={}", cursors[0]))
        .await;
    let body = res.ok(200);
    let got: Vec<&Value> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["text"])
        .collect();
    assert_eq!(got, [&json!("b"), &json!("c")]);
    assert_eq!(body["nextCursor"], cursors[2].as_str());
    let last = app
        .poll(&sid, "alice", &format!("after={}", cursors[2]))
        .await;
    assert_eq!(last.ok(200)["messages"], json!([]));
}

async fn cursors_strictly_increase_and_are_never_reused() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    let bob = app.join(&sid, "bob").await;
    let mut last = 0;
    for i in 0..10 {
        let (agent, key) = if i % 2 == 0 {
            ("alice", &alice)
        } else {
            ("bob", &bob)
        };
        let res = app
            .send(&sid, agent, Some(key), json!({ "text": format!("m{i}") }))
            .await;
        let c = cursor(&res.ok(201)["cursor"]);
        assert!(c > last, "{c} after {last}");
        last = c;
    }
}

async fn limit_caps_one_page_and_next_cursor_follows_it() {
    let app = App::new();
    let (sid, key) = app.session_with_creator("alice").await;
    let mut cursors = Vec::new();
    for i in 0..5 {
        let res = app
            .send(
                &sid,
                "alice",
                Some(&key),
                json!({ "text": format!("m{i}") }),
            )
            .await;
        cursors.push(res.ok(201)["cursor"].as_str().unwrap().to_owned());
    }
    let page1 = app.poll(&sid, "alice", "limit=2").await;
    let page1 = page1.ok(200).clone();
    assert_eq!(page1["messages"].as_array().unwrap().len(), 2);
    assert_eq!(page1["messages"][1]["text"], "m1");
    assert_eq!(page1["nextCursor"], cursors[1].as_str());
    let q = format!("limit=2&after={}", page1["nextCursor"].as_str().unwrap());
    let page2 = app.poll(&sid, "alice", &q).await;
    let page2 = page2.ok(200);
    assert_eq!(page2["messages"][0]["text"], "m2");
    assert_eq!(page2["messages"][1]["text"], "m3");
    assert_eq!(page2["nextCursor"], cursors[3].as_str());
}

async fn limit_counts_the_greeting() {
    let app = App::new();
    let created = app
        .create(json!({"creatorAgentId": "alice", "greeting": "hi"}))
        .await;
    let sid = created["sessionId"].as_str().unwrap().to_owned();
    let key = created["sessionKey"].as_str().unwrap().to_owned();
    app.send(&sid, "alice", Some(&key), json!({"text": "m1"}))
        .await
        .ok(201);
    let res = app.poll(&sid, "alice", "limit=1").await;
    let body = res.ok(200);
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    assert_eq!(body["messages"][0]["cursor"], "0");
    assert_eq!(body["nextCursor"], "0");
}

async fn next_cursor_is_after_when_empty_and_0_when_nothing() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let nothing = app.poll(&sid, "alice", "").await;
    let nothing = nothing.ok(200);
    assert_eq!(nothing["messages"], json!([]));
    assert_eq!(nothing["nextCursor"], "0");
    let after = app.poll(&sid, "alice", "after=17").await;
    assert_eq!(after.ok(200)["messages"], json!([]));
    assert_eq!(after.ok(200)["nextCursor"], "17");
}

async fn members_true_adds_presence() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    advance_ms(4_000).await;
    app.join(&sid, "bob").await;
    advance_ms(1_000).await;
    app.send(&sid, "alice", Some(&alice), json!({"text": "x"}))
        .await
        .ok(201);
    let res = app.poll(&sid, "bob", "members=true").await;
    let body = res.ok(200);
    let members = body["members"]
        .as_array()
        .expect("members with members=true");
    assert_eq!(members.len(), 2);
    assert_eq!(members[0]["agentId"], "alice");
    assert_eq!(ts(&members[0]["lastSeenAt"]), T0 + 5_000);
    assert_eq!(members[1]["agentId"], "bob");
    // bob's own poll counts as being seen.
    assert_eq!(ts(&members[1]["lastSeenAt"]), T0 + 5_000);
    let without = app.poll(&sid, "bob", "members=false").await;
    assert!(without.ok(200).get("members").is_none());
}

async fn polled_messages_carry_verified_true_and_false() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    app.join(&sid, "bob").await;
    app.send(&sid, "alice", Some(&alice), json!({"text": "signed"}))
        .await
        .ok(201);
    app.send(&sid, "bob", None, json!({"text": "unsigned"}))
        .await
        .ok(201);
    let res = app.poll(&sid, "alice", "").await;
    let messages = res.ok(200)["messages"].as_array().unwrap().clone();
    assert_eq!(messages[0]["agentId"], "alice");
    assert_eq!(messages[0]["verified"], true);
    assert_eq!(messages[1]["agentId"], "bob");
    assert_eq!(messages[1]["verified"], false);
}

async fn send_and_poll_update_last_seen_at() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    app.join(&sid, "bob").await;
    advance_ms(3_000).await;
    app.send(&sid, "bob", None, json!({"text": "x"}))
        .await
        .ok(201);
    advance_ms(3_000).await;
    app.poll(&sid, "alice", "").await.ok(200);
    let status = app.status(&sid).await;
    let members = status.ok(200)["members"].as_array().unwrap().clone();
    assert_eq!(ts(&members[0]["lastSeenAt"]), T0 + 6_000, "alice polled");
    assert_eq!(ts(&members[1]["lastSeenAt"]), T0 + 3_000, "bob sent");
}

// ---------------------------------------------------------------------------------------------
// Sliding TTL

async fn send_poll_and_renew_each_slide_the_expiry() {
    let app = App::new();
    let created = app
        .create(json!({"ttl": 100, "creatorAgentId": "alice"}))
        .await;
    let sid = created["sessionId"].as_str().unwrap().to_owned();
    let key = created["sessionKey"].as_str().unwrap().to_owned();
    assert_eq!(ts(&created["expiresAt"]), T0 + 100_000);

    advance_ms(50_000).await;
    let sent = app
        .send(&sid, "alice", Some(&key), json!({"text": "x"}))
        .await;
    assert_eq!(ts(&sent.ok(201)["expiresAt"]), T0 + 150_000);
    assert_eq!(app.expires_at(&sid).await, T0 + 150_000);

    advance_ms(50_000).await;
    app.poll(&sid, "alice", "after=0").await.ok(200);
    assert_eq!(app.expires_at(&sid).await, T0 + 200_000);

    advance_ms(50_000).await;
    let renewed = app.renew(&sid, "alice", Some(json!({}))).await;
    assert_eq!(ts(&renewed.ok(200)["expiresAt"]), T0 + 250_000);
    assert_eq!(renewed.ok(200)["ttl"], 100);
    assert_eq!(app.expires_at(&sid).await, T0 + 250_000);
}

async fn status_does_not_slide_the_expiry() {
    let app = App::new();
    let created = app.create(json!({"ttl": 100})).await;
    let sid = created["sessionId"].as_str().unwrap().to_owned();
    advance_ms(99_999).await;
    assert_eq!(app.expires_at(&sid).await, T0 + 100_000);
    advance_ms(1).await;
    app.status(&sid).await.err(404, "session_not_found");
}

async fn a_session_is_gone_after_ttl_of_silence() {
    let app = App::new();
    let created = app
        .create(json!({"ttl": 60, "creatorAgentId": "alice"}))
        .await;
    let sid = created["sessionId"].as_str().unwrap().to_owned();
    let key = created["sessionKey"].as_str().unwrap().to_owned();
    advance_ms(30_000).await;
    app.send(&sid, "alice", Some(&key), json!({"text": "x"}))
        .await
        .ok(201);
    // 60 s after the last activity, minus 1 ms: still there.
    advance_ms(59_999).await;
    app.status(&sid).await.ok(200);
    advance_ms(1).await;
    app.status(&sid).await.err(404, "session_not_found");
    app.poll(&sid, "alice", "")
        .await
        .err(404, "session_not_found");
    app.send(&sid, "alice", Some(&key), json!({"text": "late"}))
        .await
        .err(404, "session_not_found");
}

async fn renew_with_a_ttl_changes_the_ttl_and_slides_from_now() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    advance_ms(20_000).await;
    let res = app.renew(&sid, "alice", Some(json!({"ttl": 200}))).await;
    let body = res.ok(200);
    assert_eq!(body["ttl"], 200);
    assert_eq!(ts(&body["expiresAt"]), T0 + 220_000);
    let status = app.status(&sid).await;
    assert_eq!(status.ok(200)["ttl"], 200);
    // The new ttl governs later slides too.
    advance_ms(199_999).await;
    app.status(&sid).await.ok(200);
    advance_ms(1).await;
    app.status(&sid).await.err(404, "session_not_found");
}

async fn renew_with_an_empty_body_is_like_empty_object() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    advance_ms(5_000).await;
    let res = app.renew(&sid, "alice", None).await;
    assert_eq!(ts(&res.ok(200)["expiresAt"]), T0 + 5_000 + 3_660_000);
}

// ---------------------------------------------------------------------------------------------
// Inactivity

async fn a_silent_member_is_removed_exactly_at_the_inactivity_deadline() {
    let app = App::with(|c| c.agent_inactivity_seconds = 60);
    let created = app
        .create(json!({"creatorAgentId": "alice", "maxAgents": 2}))
        .await;
    let sid = created["sessionId"].as_str().unwrap().to_owned();
    app.join(&sid, "bob").await;
    advance_ms(59_999).await;
    assert_eq!(
        app.status(&sid).await.ok(200)["agents"],
        json!(["alice", "bob"])
    );
    advance_ms(1).await;
    assert_eq!(app.status(&sid).await.ok(200)["agents"], json!(["alice"]));
    app.poll(&sid, "bob", "")
        .await
        .err(403, "agent_not_in_session");
    app.send(&sid, "bob", None, json!({"text": "late"}))
        .await
        .err(403, "forbidden");
    // The slot is free (maxAgents 2).
    let res = app
        .call(
            Method::POST,
            &format!("/v1/sessions/{sid}/join"),
            &[("X-Agent-Id", "carol")],
            None,
        )
        .await;
    assert_eq!(res.ok(200)["agentsOnline"], 2);
}

async fn an_inactive_member_is_never_shown_or_accepted_anywhere() {
    let app = App::with(|c| c.agent_inactivity_seconds = 60);
    let (sid, _) = app.session_with_creator("alice").await;
    let bob = app.join(&sid, "bob").await;
    advance_ms(60_000).await;
    // Poll presence, renew, leave, stats: none sees bob.
    let poll = app.poll(&sid, "alice", "members=true").await;
    let members = poll.ok(200)["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["agentId"], "alice");
    app.renew(&sid, "bob", Some(json!({})))
        .await
        .err(403, "forbidden");
    app.leave(&sid, "bob", Some("bob"), Some(&bob))
        .await
        .err(404, "agent_not_found");
    assert_eq!(app.get("/v1/stats", &[]).await.ok(200)["totalAgents"], 1);
    // The id is free again.
    app.join(&sid, "bob").await;
}

async fn activity_pushes_the_inactivity_deadline() {
    let app = App::with(|c| c.agent_inactivity_seconds = 60);
    let (sid, _) = app.session_with_creator("alice").await;
    app.join(&sid, "bob").await;
    advance_ms(50_000).await;
    app.poll(&sid, "bob", "").await.ok(200);
    advance_ms(50_000).await;
    app.send(&sid, "bob", None, json!({"text": "still here"}))
        .await
        .ok(201);
    advance_ms(59_999).await;
    assert_eq!(
        app.status(&sid).await.ok(200)["agents"],
        json!(["alice", "bob"])
    );
    advance_ms(1).await;
    assert_eq!(app.status(&sid).await.ok(200)["agents"], json!(["alice"]));
}

async fn the_creator_is_never_removed_for_inactivity() {
    let app = App::with(|c| c.agent_inactivity_seconds = 10);
    let (sid, key) = app.session_with_creator("alice").await;
    advance_ms(3_000_000).await; // well past 10 s, within the 3660 s ttl
    let status = app.status(&sid).await;
    assert_eq!(status.ok(200)["agents"], json!(["alice"]));
    app.send(&sid, "alice", Some(&key), json!({"text": "back"}))
        .await
        .ok(201);
}

async fn without_inactivity_setting_silent_members_stay() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    app.join(&sid, "bob").await;
    advance_ms(3_600_000).await;
    assert_eq!(
        app.status(&sid).await.ok(200)["agents"],
        json!(["alice", "bob"])
    );
}

// ---------------------------------------------------------------------------------------------
// Long-poll under paused time

async fn a_parked_long_poll_is_woken_by_a_send() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    app.join(&sid, "bob").await;
    let started = tokio::time::Instant::now();
    let poller = {
        let (app, sid) = (app.clone(), sid.clone());
        tokio::spawn(async move { app.poll(&sid, "bob", "after=0&wait=30").await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!poller.is_finished(), "the poll must be parked");
    let sent = app
        .send(&sid, "alice", Some(&alice), json!({"text": "wake up"}))
        .await;
    let sent = sent.ok(201).clone();
    let res = poller.await.unwrap();
    let body = res.ok(200);
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    assert_eq!(body["messages"][0]["text"], "wake up");
    assert_eq!(body["nextCursor"], sent["cursor"]);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "answered at once"
    );
}

async fn a_long_poll_with_nothing_new_answers_empty_after_the_wait() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    let sent = app
        .send(&sid, "alice", Some(&alice), json!({"text": "old"}))
        .await;
    let c = sent.ok(201)["cursor"].as_str().unwrap().to_owned();
    let started = tokio::time::Instant::now();
    let res = app.poll(&sid, "alice", &format!("after={c}&wait=30")).await;
    let body = res.ok(200);
    assert_eq!(body["messages"], json!([]));
    assert_eq!(body["nextCursor"], c.as_str());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "{waited:?}"
    );
}

async fn a_long_poll_answers_at_once_when_something_is_there() {
    let app = App::new();
    let created = app
        .create(json!({"creatorAgentId": "alice", "greeting": "hi"}))
        .await;
    let sid = created["sessionId"].as_str().unwrap().to_owned();
    let key = created["sessionKey"].as_str().unwrap().to_owned();
    let started = tokio::time::Instant::now();
    // The greeting is there without `after`.
    let greeting = app.poll(&sid, "alice", "wait=60").await;
    assert_eq!(greeting.ok(200)["messages"][0]["agentId"], "system");
    app.send(&sid, "alice", Some(&key), json!({"text": "m"}))
        .await
        .ok(201);
    let newer = app.poll(&sid, "alice", "after=0&wait=60").await;
    assert_eq!(newer.ok(200)["messages"][0]["text"], "m");
    assert_eq!(started.elapsed(), Duration::ZERO);
}

async fn a_parked_long_poll_is_released_when_the_reader_leaves() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let bob = app.join(&sid, "bob").await;
    let started = tokio::time::Instant::now();
    let poller = {
        let (app, sid) = (app.clone(), sid.clone());
        tokio::spawn(async move { app.poll(&sid, "bob", "after=0&wait=60").await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!poller.is_finished());
    app.leave(&sid, "bob", Some("bob"), Some(&bob))
        .await
        .ok(200);
    let res = poller.await.unwrap();
    res.err(403, "agent_not_in_session");
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

async fn a_parked_long_poll_never_outlives_its_reader_inactivity_deadline() {
    // SPEC §1 "Inactivity": no response ever shows or accepts an agent past its deadline. A
    // parked poll must therefore be answered before the reader's deadline (with the messages or
    // an empty list, the reader still a member) or refuse it once removed; it must never be held
    // to the end of a wait that outlasts the deadline and then answer as if bob were a member.
    let app = App::with(|c| c.agent_inactivity_seconds = 10);
    let (sid, _) = app.session_with_creator("alice").await;
    app.join(&sid, "bob").await;
    let started = tokio::time::Instant::now();
    let res = app.poll(&sid, "bob", "after=0&wait=30").await;
    let waited = started.elapsed();
    assert!(waited <= Duration::from_secs(10), "held {waited:?}");
    if res.status == 200 {
        assert_eq!(res.json["messages"], json!([]));
        assert_eq!(res.json["nextCursor"], "0");
        // Answered while bob is still a member, and his wait counted as presence.
        assert!(waited < Duration::from_secs(10), "answered at the deadline");
        let status = app.status(&sid).await;
        let members = status.ok(200)["members"].as_array().unwrap().clone();
        assert_eq!(members[1]["agentId"], "bob");
        assert_eq!(
            ts(&members[1]["lastSeenAt"]),
            T0 + waited.as_millis() as u64
        );
        // From his last poll, a silent bob is removed exactly at the deadline.
        advance_ms(9_999).await;
        assert_eq!(
            app.status(&sid).await.ok(200)["agents"],
            json!(["alice", "bob"])
        );
        advance_ms(1).await;
        assert_eq!(app.status(&sid).await.ok(200)["agents"], json!(["alice"]));
    } else {
        res.err(403, "agent_not_in_session");
        assert_eq!(waited, Duration::from_secs(10));
    }
}

async fn a_parked_long_poll_never_outlives_the_session() {
    // An expired session is gone: a poll parked on it must be answered before the expiry (the
    // session still alive) or refused with 404 at the expiry, never held past it.
    let app = App::new();
    let created = app
        .create(json!({"ttl": 10, "creatorAgentId": "alice"}))
        .await;
    let sid = created["sessionId"].as_str().unwrap().to_owned();
    let started = tokio::time::Instant::now();
    let res = app.poll(&sid, "alice", "after=0&wait=30").await;
    let waited = started.elapsed();
    assert!(waited <= Duration::from_secs(10), "held {waited:?}");
    if res.status == 200 {
        assert_eq!(res.json["messages"], json!([]));
        assert!(waited < Duration::from_secs(10), "answered at the expiry");
        // The poll slid the expiry: the session lives ttl past the answer.
        assert_eq!(
            app.expires_at(&sid).await,
            T0 + waited.as_millis() as u64 + 10_000
        );
    } else {
        res.err(404, "session_not_found");
    }
}

async fn several_parked_polls_are_all_woken() {
    let app = App::new();
    let (sid, alice) = app.session_with_creator("alice").await;
    app.join(&sid, "bob").await;
    app.join(&sid, "carol").await;
    let spawn = |agent: &'static str| {
        let (app, sid) = (app.clone(), sid.clone());
        tokio::spawn(async move { app.poll(&sid, agent, "after=0&wait=30").await })
    };
    let (b, c) = (spawn("bob"), spawn("carol"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.send(&sid, "alice", Some(&alice), json!({"text": "all"}))
        .await
        .ok(201);
    for res in [b.await.unwrap(), c.await.unwrap()] {
        assert_eq!(res.ok(200)["messages"][0]["text"], "all");
    }
}

// ---------------------------------------------------------------------------------------------
// Sweep

async fn sweep_keeps_live_state_and_drops_expired_state() {
    let app = App::new();
    let short = app.create(json!({"ttl": 10, "creatorAgentId": "a"})).await;
    let short_id = short["sessionId"].as_str().unwrap().to_owned();
    let (sid, key) = app.session_with_creator("alice").await;
    app.send(&sid, "alice", Some(&key), json!({"text": "kept"}))
        .await
        .ok(201);
    let code = app.pair(&sid).await;
    advance_ms(10_000).await;
    app.relay.store.sweep(app.now()).await.unwrap();
    app.status(&short_id).await.err(404, "session_not_found");
    let poll = app.poll(&sid, "alice", "").await;
    assert_eq!(poll.ok(200)["messages"][0]["text"], "kept");
    assert_eq!(app.code_state(&code).await, "pending");
    let stats = app.get("/v1/stats", &[]).await;
    assert_eq!(stats.ok(200)["activeSessions"], 1);
    assert_eq!(stats.ok(200)["totalMessages"], 1);
    // A sweep past the code's memory forgets it.
    advance_ms(1_200_000).await;
    app.relay.store.sweep(app.now()).await.unwrap();
    app.get(&format!("/v1/pair/{code}/status"), &[])
        .await
        .err(404, "code_not_found");
}

// ---------------------------------------------------------------------------------------------
// Skill documents and the pairing link

async fn root_is_a_markdown_skill_document_naming_the_public_url() {
    let app = App::new();
    let res = app.get("/", &[]).await;
    assert_eq!(res.status, 200);
    assert!(
        res.content_type().starts_with("text/markdown"),
        "{}",
        res.content_type()
    );
    assert!(
        res.text.contains("http://relay.test/v1/sessions"),
        "{}",
        res.text
    );
    assert!(res.text.contains("curl"));
}

async fn the_pair_skill_is_markdown_with_the_public_url_and_the_code() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    let res = app.get(&format!("/v1/pair/{code}/skill"), &[]).await;
    assert_eq!(res.status, 200);
    assert!(res.content_type().starts_with("text/markdown"));
    assert!(
        res.text
            .contains(&format!("http://relay.test/v1/pair/{code}/claim")),
        "{}",
        res.text
    );
    assert!(res.text.contains("curl"));
    assert!(
        !res.text.contains(&sid),
        "the skill must not leak the session id"
    );
    // Reading the skill does not consume the code.
    assert_eq!(app.code_state(&code).await, "pending");
}

async fn skill_documents_are_html_for_browsers() {
    // SPEC §2: `/v1/pair/:code/skill` is "`text/html` for browsers (`Accept: text/html`)", and
    // `/` is "markdown for agents, HTML for browsers".
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    let browser = [(
        "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    )];
    for path in ["/".to_owned(), format!("/v1/pair/{code}/skill")] {
        let res = app.get(&path, &browser).await;
        assert_eq!(res.status, 200, "{path}");
        assert!(
            res.content_type().starts_with("text/html"),
            "{path}: {}",
            res.content_type()
        );
        assert!(res.text.contains("http://relay.test"), "{path}");
    }
}

async fn the_pairing_link_redirects_301_to_the_skill() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    let res = app.get(&format!("/p/{code}"), &[]).await;
    assert_eq!(res.status, 301);
    assert_eq!(
        res.header("location"),
        Some(format!("/v1/pair/{code}/skill"))
    );
    // The pairing URL from PUT /v1/pair is this path under PUBLIC_URL.
    let followed = app.get(&format!("/v1/pair/{code}/skill"), &[]).await;
    assert_eq!(followed.status, 200);
    assert!(followed.text.contains(&code));
}

async fn an_expired_code_gets_a_404_document_saying_it_expired_and_what_to_do() {
    let app = App::new();
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    advance_ms(600_000).await;
    assert_eq!(app.code_state(&code).await, "expired");
    // The pairing link still leads to the skill document, which now explains the dead code.
    let link = app.get(&format!("/p/{code}"), &[]).await;
    assert_eq!(link.status, 301);
    let skill = format!("/v1/pair/{code}/skill");
    assert_eq!(link.header("location"), Some(skill.clone()));
    let res = app.get(&skill, &[]).await;
    assert_eq!(res.status, 404, "{}", res.text);
    assert!(
        res.content_type().starts_with("text/markdown"),
        "{}",
        res.content_type()
    );
    assert_eq!(res.header("cache-control").as_deref(), Some("no-store"));
    let md = &res.text;
    assert!(
        md.starts_with("# NexusMessaging pairing link: expired"),
        "{md}"
    );
    assert!(
        md.contains(&format!("| Pairing code | **{code}** |")),
        "{md}"
    );
    assert!(md.contains("| State | expired |"), "{md}");
    assert!(
        md.contains("This code expired before anyone claimed it"),
        "{md}"
    );
    // What to do: ask the inviting agent for a new link, which it makes with `nexus pair`.
    assert!(
        md.contains("**What to do**: ask the agent that invited you for a new pairing link."),
        "{md}"
    );
    assert!(md.contains("`nexus pair SESSION_ID`"), "{md}");
    assert!(md.contains("PUT http://relay.test/v1/pair"), "{md}");
    assert!(
        md.contains("A code lasts 10 minutes and works once."),
        "{md}"
    );
    assert!(
        !md.contains(&sid),
        "the document must not leak the session id"
    );
    assert!(!md.contains("/claim"), "nothing to claim: {md}");
    // Browsers get the same as a page.
    let page = app.get(&skill, &[("Accept", "text/html")]).await;
    assert_eq!(page.status, 404);
    assert!(page.content_type().starts_with("text/html"));
    assert!(
        page.text.contains("data-state=\"expired\">expired</span>"),
        "{}",
        page.text
    );
    // Reading it changes nothing: the code is still expired, and claiming it still fails.
    assert_eq!(app.code_state(&code).await, "expired");
    app.claim(&code, "bob")
        .await
        .err(404, "code_expired_or_used");
}

// ---------------------------------------------------------------------------------------------
// Rate limits (SPEC §2 "Safety middleware")

async fn requests_over_the_per_ip_limit_get_429_with_retry_after_before_any_work() {
    let app = App::with(|c| c.rate_limit_per_minute = 3);
    // T0 is the start of a 60 s window.
    for _ in 0..2 {
        app.create(json!({})).await;
    }
    app.get("/v1/stats", &[]).await.ok(200);
    advance_ms(15_000).await;
    let refused = app.json(Method::PUT, "/v1/sessions", &[], json!({})).await;
    refused.err(429, "rate_limit_exceeded");
    assert_eq!(refused.header("retry-after").as_deref(), Some("45"));
    // Refused before any work: malformed or not, nothing is looked at.
    app.call(Method::PUT, "/v1/sessions", &[], Some(b"{".to_vec()))
        .await
        .err(429, "rate_limit_exceeded");
    // /health is exempt.
    app.get("/health", &[]).await.ok(200);
    // The next window starts afresh; the refused create stored nothing.
    advance_ms(45_000).await;
    let stats = app.get("/v1/stats", &[]).await;
    assert_eq!(stats.ok(200)["activeSessions"], 2);
}

async fn rate_limit_zero_turns_the_limit_off() {
    let app = App::with(|c| c.rate_limit_per_minute = 0);
    for _ in 0..250 {
        app.get("/v1/stats", &[]).await.ok(200);
    }
}

async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    // Router tests have no socket: the peer is 127.0.0.1.
    let untrusted = App::with(|c| c.rate_limit_per_minute = 1);
    untrusted
        .get("/v1/stats", &[("X-Forwarded-For", "198.51.100.1")])
        .await
        .ok(200);
    untrusted
        .get("/v1/stats", &[("X-Forwarded-For", "198.51.100.2")])
        .await
        .err(429, "rate_limit_exceeded");

    let proxied = App::with(|c| {
        c.rate_limit_per_minute = 1;
        c.trusted_proxies = nexus_server::config::TrustedProxies::parse("127.0.0.1/32").unwrap();
    });
    proxied
        .get("/v1/stats", &[("X-Forwarded-For", "198.51.100.1")])
        .await
        .ok(200);
    proxied
        .get("/v1/stats", &[("X-Forwarded-For", "198.51.100.2")])
        .await
        .ok(200);
    // The right-most untrusted hop is the client: a spoofed left-most hop changes nothing.
    proxied
        .get(
            "/v1/stats",
            &[("X-Forwarded-For", "203.0.113.7, 198.51.100.1")],
        )
        .await
        .err(429, "rate_limit_exceeded");
}

async fn failed_claims_are_limited_per_ip() {
    let app = App::with(|c| {
        c.rate_limit_per_minute = 0;
        c.claim_failures_per_minute = 2;
        c.trusted_proxies = nexus_server::config::TrustedProxies::parse("127.0.0.1/32").unwrap();
    });
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    let from = |ip: &'static str| [("X-Agent-Id", "bob"), ("X-Forwarded-For", ip)];
    let claim = |code: String, ip: &'static str| {
        let app = app.clone();
        async move {
            app.call(
                Method::POST,
                &format!("/v1/pair/{code}/claim"),
                &from(ip),
                None,
            )
            .await
        }
    };
    // 400s and 409s do not count.
    for _ in 0..3 {
        app.call(
            Method::POST,
            &format!("/v1/pair/{code}/claim"),
            &[("X-Forwarded-For", "198.51.100.1")],
            None,
        )
        .await
        .err(400, "missing_agent_id");
        app.call(
            Method::POST,
            &format!("/v1/pair/{code}/claim"),
            &[("X-Agent-Id", "alice"), ("X-Forwarded-For", "198.51.100.1")],
            None,
        )
        .await
        .err(409, "agent_id_taken");
    }
    // Two 404s spend this IP's budget ...
    claim("ABLE-ABLE-00000".into(), "198.51.100.1")
        .await
        .err(404, "code_not_found");
    claim("ABLE-ABLE-00001".into(), "198.51.100.1")
        .await
        .err(404, "code_not_found");
    // ... so even a good code is refused for the rest of the window, and stays pending.
    let refused = claim(code.clone(), "198.51.100.1").await;
    refused.err(429, "rate_limit_exceeded");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(app.code_state(&code).await, "pending");
    // Another IP is not affected.
    claim(code.clone(), "198.51.100.2").await.ok(200);
    // A new window gives the first IP its budget back.
    advance_ms(60_000).await;
    claim("ABLE-ABLE-00000".into(), "198.51.100.1")
        .await
        .err(404, "code_not_found");
}

/// With the request limit on, the claim budget counts the address the rate limit resolved from
/// `X-Forwarded-For` (with it off, `failed_claims_are_limited_per_ip` covers the claim handler
/// resolving it itself).
async fn failed_claims_count_the_ip_the_rate_limit_resolved() {
    let app = App::with(|c| {
        c.rate_limit_per_minute = 1000;
        c.claim_failures_per_minute = 1;
        c.trusted_proxies = nexus_server::config::TrustedProxies::parse("127.0.0.1/32").unwrap();
    });
    let claim = |ip: &'static str| {
        let app = app.clone();
        async move {
            app.call(
                Method::POST,
                "/v1/pair/ABLE-ABLE-00000/claim",
                &[("X-Agent-Id", "bob"), ("X-Forwarded-For", ip)],
                None,
            )
            .await
        }
    };
    claim("198.51.100.1").await.err(404, "code_not_found");
    claim("198.51.100.1").await.err(429, "rate_limit_exceeded");
    claim("198.51.100.2").await.err(404, "code_not_found");
}

async fn failed_claims_have_a_server_wide_budget() {
    let app = App::with(|c| {
        c.rate_limit_per_minute = 0;
        c.claim_failures_per_minute = 10;
        c.claim_failures_global_per_minute = 2;
        c.trusted_proxies = nexus_server::config::TrustedProxies::parse("127.0.0.1/32").unwrap();
    });
    let (sid, _) = app.session_with_creator("alice").await;
    let code = app.pair(&sid).await;
    for ip in ["198.51.100.1", "198.51.100.2"] {
        app.call(
            Method::POST,
            "/v1/pair/ABLE-ABLE-00000/claim",
            &[("X-Agent-Id", "bob"), ("X-Forwarded-For", ip)],
            None,
        )
        .await
        .err(404, "code_not_found");
    }
    let res = app
        .call(
            Method::POST,
            &format!("/v1/pair/{code}/claim"),
            &[("X-Agent-Id", "bob"), ("X-Forwarded-For", "198.51.100.3")],
            None,
        )
        .await;
    res.err(429, "rate_limit_exceeded");
    assert!(res.header("retry-after").is_some());
    assert_eq!(app.code_state(&code).await, "pending");
}

backend_tests! {
    a_message_expires_on_its_own_and_polls_that_asked_for_it_say_truncated,
    messages_expire_in_their_own_order_after_a_shorter_renew,
    metrics_count_requests_claims_errors_and_store_round_trips,
    create_with_empty_body_uses_defaults_and_has_no_creator,
    create_with_creator_agent_id_joins_the_creator_with_a_key,
    create_with_only_the_x_agent_id_header_makes_it_the_creator,
    create_with_the_same_creator_in_header_and_body_is_accepted,
    status_lists_agents_as_strings_and_member_details,
    status_of_a_session_without_creator_has_null_creator,
    join_answers_joined_with_an_integer_agents_online,
    session_keys_are_unique_per_agent,
    leave_answers_ok_true_and_removes_the_member,
    renew_answers_session_fields,
    send_answers_201_with_a_receipt,
    send_without_a_key_is_accepted_unverified,
    send_accepts_json_only_and_any_non_null_json_value,
    send_redacts_secrets_and_lists_the_types,
    poll_answers_messages_in_cursor_order_with_every_field,
    pair_create_answers_code_url_and_expiry,
    claim_joins_the_agent_and_answers_claimed,
    health_reports_status_version_uptime_and_capabilities,
    stats_count_sessions_agents_and_messages,
    every_response_carries_a_distinct_x_request_id,
    unknown_route_is_a_404_json_error,
    wrong_method_is_a_405_json_error,
    malformed_json_is_invalid_body_on_every_body_endpoint,
    create_ttl_zero_is_invalid_request_naming_ttl,
    create_ttl_above_max_ttl_seconds_is_invalid_request,
    create_max_agents_out_of_range_is_invalid_request,
    create_greeting_over_4096_chars_is_invalid_request,
    create_fields_of_the_wrong_type_are_invalid_request,
    send_bodies_without_text_or_json_are_invalid_request,
    poll_after_minus_one_is_invalid_request,
    poll_wait_61_is_invalid_request,
    poll_limit_out_of_range_is_invalid_request,
    renew_ttl_out_of_range_is_invalid_request,
    pair_without_session_id_is_invalid_request,
    a_malformed_idempotency_key_is_invalid_request,
    a_missing_x_agent_id_is_missing_agent_id,
    a_malformed_x_agent_id_header_is_invalid_agent_id,
    a_malformed_creator_agent_id_is_invalid_agent_id,
    system_is_reserved_in_header_and_creator_agent_id,
    differing_creator_and_header_is_creator_identity_conflict,
    leave_without_a_key_is_401_missing_session_key,
    leave_with_a_wrong_key_is_401_invalid_session_key,
    send_with_a_wrong_key_is_403_invalid_session_key,
    send_by_a_non_member_is_forbidden,
    renew_by_a_non_member_is_forbidden,
    the_creator_cannot_leave,
    leaving_for_another_agent_is_forbidden,
    poll_by_a_non_member_is_agent_not_in_session,
    leave_for_a_non_member_is_agent_not_found,
    leave_checks_run_in_spec_order,
    an_unknown_session_is_session_not_found_everywhere,
    a_malformed_session_id_is_session_not_found,
    an_expired_session_is_session_not_found,
    joining_with_a_taken_id_is_agent_id_taken,
    claiming_with_a_taken_id_is_agent_id_taken_and_the_code_stays_pending,
    joining_a_full_session_is_session_full,
    a_claim_refused_for_session_full_leaves_the_code_pending,
    server_max_agents_caps_the_default,
    an_unknown_code_is_code_not_found,
    a_claimed_code_is_code_expired_or_used,
    a_code_expires_after_pair_code_ttl,
    pair_code_ttl_follows_the_configuration,
    an_expired_code_is_forgotten_after_another_ttl,
    a_claimed_code_is_forgotten_one_ttl_after_the_claim,
    claim_and_status_are_case_insensitive,
    codes_are_distinct_per_request,
    an_idempotent_repeat_returns_the_original_and_stores_nothing,
    an_idempotency_key_with_a_different_body_is_idempotency_key_reused,
    idempotency_keys_are_scoped_to_the_agent,
    a_body_over_max_body_bytes_is_payload_too_large,
    a_full_session_quota_is_session_quota_exceeded_and_stores_nothing,
    max_sessions_reached_is_server_at_capacity,
    require_session_key_refuses_unverified_sends_with_401,
    the_greeting_is_a_system_message_at_cursor_0_only_without_after,
    after_is_exclusive,
    cursors_strictly_increase_and_are_never_reused,
    limit_caps_one_page_and_next_cursor_follows_it,
    limit_counts_the_greeting,
    next_cursor_is_after_when_empty_and_0_when_nothing,
    members_true_adds_presence,
    polled_messages_carry_verified_true_and_false,
    send_and_poll_update_last_seen_at,
    send_poll_and_renew_each_slide_the_expiry,
    status_does_not_slide_the_expiry,
    a_session_is_gone_after_ttl_of_silence,
    renew_with_a_ttl_changes_the_ttl_and_slides_from_now,
    renew_with_an_empty_body_is_like_empty_object,
    a_silent_member_is_removed_exactly_at_the_inactivity_deadline,
    an_inactive_member_is_never_shown_or_accepted_anywhere,
    activity_pushes_the_inactivity_deadline,
    the_creator_is_never_removed_for_inactivity,
    without_inactivity_setting_silent_members_stay,
    a_parked_long_poll_is_woken_by_a_send,
    a_long_poll_with_nothing_new_answers_empty_after_the_wait,
    a_long_poll_answers_at_once_when_something_is_there,
    a_parked_long_poll_is_released_when_the_reader_leaves,
    a_parked_long_poll_never_outlives_its_reader_inactivity_deadline,
    a_parked_long_poll_never_outlives_the_session,
    several_parked_polls_are_all_woken,
    sweep_keeps_live_state_and_drops_expired_state,
    root_is_a_markdown_skill_document_naming_the_public_url,
    the_pair_skill_is_markdown_with_the_public_url_and_the_code,
    skill_documents_are_html_for_browsers,
    the_pairing_link_redirects_301_to_the_skill,
    an_expired_code_gets_a_404_document_saying_it_expired_and_what_to_do,
    requests_over_the_per_ip_limit_get_429_with_retry_after_before_any_work,
    rate_limit_zero_turns_the_limit_off,
    x_forwarded_for_is_believed_only_from_trusted_proxies,
    failed_claims_are_limited_per_ip,
    failed_claims_count_the_ip_the_rate_limit_resolved,
    failed_claims_have_a_server_wide_budget,
}
