//! Every failure is JSON on stdout with exit 1: server errors passed through, transport failures,
//! non-JSON replies of any status, local validation; and `--strict` against a text-only server.

use super::harness::{Agent, Scripted, Server, dead_url};
use serde_json::json;

#[test]
fn server_and_local_errors_are_json_on_stdout() {
    let server = Server::start();
    let a = Agent::new(&server.url);
    let unknown = "0".repeat(48);
    assert_eq!(a.run(&["status", &unknown]).err(), "session_not_found");
    assert_eq!(
        a.run(&["claim", "ABANDON-ABILITY-ABCDE", "--agent-id", "x"])
            .err(),
        "code_not_found"
    );
    assert_eq!(a.run(&["status", "../etc"]).err(), "invalid_session_id");
    assert_eq!(
        a.run(&["join", &unknown, "--agent-id", "a b"]).err(),
        "invalid_agent_id"
    );
    assert_eq!(a.run(&["frobnicate"]).err(), "unknown command: frobnicate");
    assert_eq!(
        a.run(&["create", "--max-agents", "many"]).err(),
        "invalid_arguments"
    );
    assert_eq!(
        a.run(&["send", &unknown, "x"]).err(),
        "missing --agent-id and no persisted agent-id found"
    );
    assert_eq!(
        a.run(&["send", &unknown, "--json", "{nope", "--agent-id", "a"])
            .err(),
        "invalid JSON in --json payload"
    );
    assert_eq!(
        a.run(&["config", "set-url", "ftp://x"]).err(),
        "invalid URL — must be http(s)://host"
    );
    assert_eq!(
        a.run(&["config", "frob"]).err(),
        "unknown config subcommand: frob (use set-url|show|unset)"
    );
    assert!(
        !a.path("sessions").exists(),
        "failures leave no ghost folders"
    );

    let dead = Agent::new(&dead_url());
    assert_eq!(dead.run(&["status", &unknown]).err(), "transport_error");
    assert_eq!(dead.run(&["create"]).err(), "transport_error");

    let help = a.run(&["help"]);
    assert_eq!((help.code, help.stdout.as_str()), (0, ""));
    assert!(help.stderr.contains("poll-daemon"));
    assert_eq!(a.run(&["--version"]).ok()["name"], "nexus");
    let quiet = a.run(&["status", &unknown, "--quiet"]);
    assert_eq!(quiet.stderr, "");
}

#[test]
fn non_json_replies_and_text_only_servers() {
    let sid = "ab".repeat(24);
    let proxy = Scripted::start(|_, path, _| {
        if path.contains("/v1/sessions/") && path.ends_with("/renew") {
            (200, "text/html", "<html>ok?</html>".into())
        } else {
            (502, "text/html", "<html>Bad gateway</html>".into())
        }
    });
    let a = Agent::new(&proxy.url);
    let r = a.run(&["status", &sid]);
    assert_eq!(r.err(), "non_json_response");
    assert!(r.stderr.contains("Bad gateway"));
    assert_eq!(
        a.run(&["renew", &sid, "--agent-id", "x"]).err(),
        "non_json_response",
        "a non-JSON 2xx is a failure too"
    );

    // A relay that only speaks text.
    let text_only = Scripted::start(|method, path, body| {
        match (method, path) {
        ("GET", "/health") => (
            200,
            "application/json",
            json!({"status": "ok", "capabilities": {"messageFormat": ["text"], "longPoll": false}})
                .to_string(),
        ),
        ("POST", p) if p.ends_with("/messages") => (
            201,
            "application/json",
            json!({"id": "m1", "cursor": "1", "echo": serde_json::from_str::<serde_json::Value>(body).unwrap()}).to_string(),
        ),
        _ => (404, "application/json", json!({"error": "session_not_found"}).to_string()),
    }
    });
    let a = Agent::new(&text_only.url);
    let r = a.run(&[
        "send",
        &sid,
        "--json",
        r#"{"k":1}"#,
        "--strict",
        "--agent-id",
        "x",
    ]);
    assert_eq!(r.err(), "json_not_supported");
    assert!(r.stderr.contains("does not support json"));
    let r = a.run(&[
        "send",
        &sid,
        "note",
        "--json",
        r#"{"k":1}"#,
        "--agent-id",
        "x",
    ]);
    assert_eq!(r.ok()["echo"], json!({"text": "note {\"k\":1}"}));
    assert!(r.stderr.contains("payload serialized into text field"));
    // The capability answer is cached per server.
    let caps = a.read("server-caps.json").unwrap();
    assert!(caps.contains(&text_only.url.to_lowercase()));
}

#[test]
fn a_reply_over_the_size_cap_is_a_transport_error_not_read_into_memory() {
    let sid = "ab".repeat(24);
    // 64 MiB + 1 byte of JSON string: more than any relay sends (MAX_REPLY_BYTES).
    let huge = format!("\"{}\"", "x".repeat((64 << 20) - 1));
    let server = Scripted::start(move |_, _, _| (200, "application/json", huge.clone()));
    let r = Agent::new(&server.url).run(&["status", &sid]);
    assert_eq!(r.err(), "transport_error");
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("larger than 64 MiB")),
        "{r:?}"
    );
    // Just under the cap is read (and, not being an object, is a non_json_response).
    let fits = format!("\"{}\"", "x".repeat((64 << 20) - 2));
    let server = Scripted::start(move |_, _, _| (200, "application/json", fits.clone()));
    assert_eq!(
        Agent::new(&server.url).run(&["status", &sid]).err(),
        "non_json_response"
    );
}
