//! Every branch of the `leave` decision table (inventory §1.5.4): those a real server produces
//! against the real server, the others against a scripted one.

use super::harness::{Agent, Scripted, Server, create_with_creator, dead_url, pair_in};

fn plant(agent: &Agent, sid: &str, id: &str, key: &str, server: &str) {
    let dir = agent.path(&format!("sessions/{sid}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("agent"), format!("{id}\n")).unwrap();
    std::fs::write(dir.join("key"), format!("{key}\n")).unwrap();
    std::fs::write(dir.join("server"), format!("{server}\n")).unwrap();
}

#[test]
fn leave_decision_table() {
    let server = Server::start();
    let alice = Agent::new(&server.url);
    let bob = Agent::new(&server.url);
    let sid = create_with_creator(&alice, "alice", None);
    pair_in(&alice, &sid, &bob, "bob");
    bob.run(&["alias", &sid, "a1"]).ok();
    bob.run(&["alias", &sid, "a2"]).ok();

    // The creator cannot leave: preserved, exit 1.
    let r = alice.run(&["leave", &sid]);
    assert_eq!(r.err(), "forbidden");
    assert!(r.stderr.contains("Creator cannot leave"));
    assert!(alice.path(&format!("sessions/{sid}")).exists());

    // Wrong key while still a member: cross-check says member, preserved.
    let key_path = bob.path(&format!("sessions/{sid}/key"));
    let good_key = std::fs::read_to_string(&key_path).unwrap();
    std::fs::write(&key_path, format!("{}\n", "0".repeat(64))).unwrap();
    let r = bob.run(&["leave", "a1"]);
    assert_eq!(r.err(), "invalid_session_key");
    assert!(r.stderr.contains("still a member"), "{}", r.stderr);
    assert!(bob.path(&format!("sessions/{sid}")).exists());
    std::fs::write(&key_path, good_key).unwrap();

    // Success: folder and every alias removed.
    let r = bob.run(&["leave", "a1"]);
    assert_eq!(r.ok()["ok"], true);
    assert!(r.stderr.contains("Left session"));
    assert!(!bob.path(&format!("sessions/{sid}")).exists());
    assert_eq!(bob.read("aliases.json").unwrap().trim(), "{}");

    // agent_not_found: stale local state of an agent that already left.
    plant(&bob, &sid, "bob", &"1".repeat(64), &server.url);
    let r = bob.run(&["leave", &sid]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["error"], "agent_not_found");
    assert!(!bob.path(&format!("sessions/{sid}")).exists());

    // session_not_found: a session the server never had.
    let ghost = "ab".repeat(24);
    plant(&bob, &ghost, "bob", &"1".repeat(64), &server.url);
    let r = bob.run(&["leave", &ghost]);
    assert_eq!(r.code, 0);
    assert_eq!(r.json()["error"], "session_not_found");
    assert!(!bob.path(&format!("sessions/{ghost}")).exists());

    // Transport failure: preserved for retry.
    plant(&bob, &ghost, "bob", &"1".repeat(64), &dead_url());
    let r = bob.run(&["leave", &ghost]);
    assert_eq!(r.err(), "transport_error");
    assert!(r.stderr.contains("transport error"));
    assert!(bob.path(&format!("sessions/{ghost}")).exists());

    // Missing key or agent: local errors, nothing created.
    std::fs::remove_file(bob.path(&format!("sessions/{ghost}/key"))).unwrap();
    assert_eq!(bob.run(&["leave", &ghost]).err(), "no session key found");
    let other = "cd".repeat(24);
    assert_eq!(
        bob.run(&["leave", &other]).err(),
        "missing --agent-id and no persisted agent-id found"
    );
    assert!(
        !bob.path(&format!("sessions/{other}")).exists(),
        "no ghost folder"
    );
}

/// Branches only a server other than ours produces: each scripted reply to the DELETE (and to the
/// cross-check GET) with the expected exit code, stdout `error`, stderr line and cleanup.
#[test]
fn leave_decision_table_against_scripted_servers() {
    let sid = "ef".repeat(24);
    type Reply = (u16, &'static str, String);
    let invalid_key: Reply = (
        401,
        "application/json",
        r#"{"error":"invalid_session_key","message":"x"}"#.into(),
    );
    let cases: Vec<(&str, Reply, Reply, u8, &str, &str, bool)> = vec![
        // (what, DELETE reply, GET reply, exit, stdout error, stderr excerpt, cleaned up)
        (
            "invalid key, session gone",
            invalid_key.clone(),
            (
                404,
                "application/json",
                r#"{"error":"session_not_found"}"#.into(),
            ),
            0,
            "invalid_session_key",
            "Session expired on server",
            true,
        ),
        (
            "invalid key, status unreachable",
            invalid_key.clone(),
            (502, "text/html", "<html>bad gateway</html>".into()),
            1,
            "invalid_session_key",
            "Cannot verify session state (HTTP 502)",
            false,
        ),
        (
            "invalid key, agent no longer listed",
            invalid_key.clone(),
            (
                200,
                "application/json",
                r#"{"agents":["someone-else"]}"#.into(),
            ),
            0,
            "invalid_session_key",
            "Agent no longer a member",
            true,
        ),
        (
            "2xx without ok:true",
            (200, "application/json", r#"{"status":"removed"}"#.into()),
            (500, "text/plain", String::new()),
            1,
            "leave_not_confirmed",
            "reply without ok:true",
            false,
        ),
        (
            "rate limited",
            (
                429,
                "application/json",
                r#"{"error":"rate_limit_exceeded","message":"slow"}"#.into(),
            ),
            (500, "text/plain", String::new()),
            1,
            "rate_limit_exceeded",
            "Server leave failed (rate_limit_exceeded)",
            false,
        ),
        (
            "missing key on the server's side",
            (
                401,
                "application/json",
                r#"{"error":"missing_session_key","message":"x"}"#.into(),
            ),
            (500, "text/plain", String::new()),
            1,
            "missing_session_key",
            "Server leave failed (missing_session_key)",
            false,
        ),
        (
            "proxy error page",
            (503, "text/html", "<html>down</html>".into()),
            (500, "text/plain", String::new()),
            1,
            "non_json_response",
            "Server leave failed (non_json_response)",
            false,
        ),
    ];
    for (what, delete, get, exit, error, line, cleaned) in cases {
        let server = Scripted::start(move |method, _, _| {
            if method == "DELETE" {
                delete.clone()
            } else {
                get.clone()
            }
        });
        let bob = Agent::new(&server.url);
        plant(&bob, &sid, "bob", &"1".repeat(64), &server.url);
        let r = bob.run(&["leave", &sid]);
        assert_eq!(r.code, i32::from(exit), "{what}: {r:?}");
        assert_eq!(r.json()["error"], error, "{what}: {r:?}");
        assert!(r.stderr.contains(line), "{what}: {}", r.stderr);
        assert_eq!(
            !bob.path(&format!("sessions/{sid}")).exists(),
            cleaned,
            "{what}"
        );
    }
}
