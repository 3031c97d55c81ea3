//! The everyday flow of two agents: create with a creator, pair, claim, poll, send, renew,
//! aliases, ls and poll-all.

use super::harness::{Agent, Server, create_with_creator, pair_in};
use serde_json::Value;

fn texts(v: &Value) -> Vec<String> {
    v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn create_pair_claim_poll_send_renew() {
    let server = Server::start();
    let alice = Agent::new(&server.url);
    let bob = Agent::new(&server.url);

    let created = alice
        .run(&[
            "create",
            "--creator-agent-id",
            "alice",
            "--greeting",
            "Welcome!",
        ])
        .ok();
    let sid = created["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(created["creatorAgentId"], "alice");
    assert_eq!(
        alice.read(&format!("sessions/{sid}/agent")).unwrap(),
        "alice\n"
    );
    assert!(alice.read(&format!("sessions/{sid}/key")).is_some());

    let pair = alice.run(&["pair", &sid]).ok();
    let code = pair["code"].as_str().unwrap().to_owned();
    assert_eq!(alice.run(&["pair-status", &code]).ok()["state"], "pending");
    // A bare code, lower case.
    let claim = bob
        .run(&["claim", &code.to_lowercase(), "--agent-id", "bob"])
        .ok();
    assert_eq!(claim["sessionId"], sid.as_str());
    assert_eq!(
        bob.run(&["claim", &code, "--agent-id", "carol"]).err(),
        "code_expired_or_used"
    );
    assert_eq!(alice.run(&["pair-status", &code]).ok()["state"], "claimed");

    // First poll: the greeting (cursor 0) and the cursor is saved.
    let first = bob.run(&["poll", &sid]).ok();
    assert_eq!(texts(&first), ["Welcome!"]);
    assert_eq!(first["messages"][0]["agentId"], "system");
    assert_eq!(bob.read(&format!("sessions/{sid}/cursor")).unwrap(), "0\n");

    // Text, flag-looking text after --, stdin with newlines, hybrid json.
    alice.run(&["send", &sid, "hello", "bob"]).ok();
    alice.run(&["send", &sid, "--", "--url", "not-a-flag"]).ok();
    alice
        .run_stdin(&["send", &sid], Some(b"line 1\nline 2\n\n"))
        .ok();
    alice
        .run_stdin(&["send", &sid, "-"], Some("é ✓\n".as_bytes()))
        .ok();
    let sent = alice
        .run(&[
            "send",
            &sid,
            "Q3",
            "--json",
            r#"{"quarter":"Q3","n":[1,2]}"#,
        ])
        .ok();
    assert_eq!(sent["verified"], true);
    alice.run(&["send", &sid, "--json", "false"]).ok();

    let second = bob.run(&["poll", &sid]).ok();
    assert_eq!(
        texts(&second),
        [
            "hello bob",
            "--url not-a-flag",
            "line 1\nline 2\n\n",
            "é ✓\n",
            "Q3",
            ""
        ]
    );
    let msgs = second["messages"].as_array().unwrap();
    assert_eq!(msgs[4]["json"]["n"][1], 2);
    assert_eq!(msgs[5]["json"], false);
    let last = msgs[5]["cursor"].as_str().unwrap().to_owned();
    assert_eq!(second["nextCursor"], last.as_str());
    assert_eq!(
        bob.read(&format!("sessions/{sid}/cursor")).unwrap(),
        format!("{last}\n")
    );

    // Nothing new; replay with --after 0 returns everything and does not move the cursor.
    assert_eq!(texts(&bob.run(&["poll", &sid]).ok()).len(), 0);
    let replay = bob.run(&["poll", &sid, "--after", "0"]).ok();
    assert_eq!(texts(&replay).len(), 7);
    let partial = bob.run(&["poll", &sid, "--after", "2"]).ok();
    assert_eq!(texts(&partial)[0], "line 1\nline 2\n\n");
    assert_eq!(
        bob.read(&format!("sessions/{sid}/cursor")).unwrap(),
        format!("{last}\n")
    );

    // Members and long-poll.
    let with_members = bob.run(&["poll", &sid, "--members", "--wait", "1"]).ok();
    let members: Vec<&str> = with_members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["agentId"].as_str().unwrap())
        .collect();
    assert!(members.contains(&"alice") && members.contains(&"bob"));

    let renewed = bob.run(&["renew", &sid, "--ttl", "900"]).ok();
    assert_eq!(renewed["ttl"], 900);
    assert!(bob.run(&["renew", &sid]).stderr.contains("Session renewed"));
    assert_eq!(
        alice.run(&["status", &sid]).ok()["agents"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn join_by_id_and_agent_taken() {
    let server = Server::start();
    let alice = Agent::new(&server.url);
    let bob = Agent::new(&server.url);
    let sid = alice.run(&["create", "--ttl", "60"]).ok()["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !alice.path("sessions").exists(),
        "no creator, no local state"
    );
    let joined = bob.run(&["join", &sid, "--agent-id", "bob"]).ok();
    assert_eq!(joined["status"], "joined");
    assert_eq!(
        bob.run(&["join", &sid, "--agent-id", "bob"]).err(),
        "agent_id_taken"
    );
    assert_eq!(bob.run(&["join", &sid]).err(), "missing --agent-id");
}

#[test]
fn aliases_ls_and_poll_all() {
    let server = Server::start();
    let alice = Agent::new(&server.url);
    let bob = Agent::new(&server.url);
    let s1 = create_with_creator(&alice, "alice", Some("one"));
    let s2 = create_with_creator(&alice, "alice", None);
    pair_in(&alice, &s1, &bob, "bob");

    let set = alice.run(&["alias", &s1, "review"]).ok();
    assert_eq!(set["alias"], "review");
    alice.run(&["alias", "review", "r2"]).ok();
    assert_eq!(alice.run(&["status", "r2"]).ok()["sessionId"], s1.as_str());
    assert_eq!(
        alice.run(&["alias", &"f".repeat(48), "x"]).err(),
        "session not found locally — join or claim first"
    );
    alice.run(&["send", "review", "via alias"]).ok();

    let ls = alice.run(&["ls"]).ok();
    let rows = ls["sessions"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r["status"], "active");
        assert_eq!(r["agentId"], "alice");
    }
    let with_alias = rows.iter().find(|r| r["sessionId"] == s1.as_str()).unwrap();
    assert_eq!(with_alias["alias"], "r2", "first alias by name");

    let all = alice.run(&["poll-all", "--members"]).ok();
    let entries = all["sessions"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for e in entries {
        assert!(e["members"].is_array(), "poll-all --members works: {e}");
    }
    let e1 = entries
        .iter()
        .find(|e| e["sessionId"] == s1.as_str())
        .unwrap();
    assert_eq!(e1["messages"].as_array().unwrap().len(), 2);
    // The cursors advanced: a second poll-all is empty.
    let again = alice.run(&["poll-all"]).ok();
    assert!(
        again["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["messages"].as_array().unwrap().is_empty())
    );
    let _ = s2;

    assert_eq!(alice.run(&["unalias", "r2"]).ok()["removed"], "r2");
    assert_eq!(alice.run(&["unalias", "r2"]).err(), "alias not found: r2");
    assert_eq!(bob.run(&["unalias", "x"]).err(), "no aliases configured");
    assert_eq!(
        Agent::new(&server.url).run(&["ls"]).ok(),
        serde_json::json!({"sessions": []})
    );
}
