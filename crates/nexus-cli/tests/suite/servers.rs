//! Server selection across two relays: `config`, bindings (`bind`, routing, `--url` override),
//! and `doctor`.

use super::harness::{Agent, Server, create_with_creator};

#[test]
fn config_bind_and_doctor_across_two_servers() {
    let one = Server::start();
    let two = Server::start();
    let mut agent = Agent::new(&one.url);
    // No NEXUS_URL for this agent: config decides.
    agent.url = String::new();
    let cmd = |args: &[&str]| {
        let mut c = agent.command(args);
        c.env_remove("NEXUS_URL");
        let out = c.output().unwrap();
        super::harness::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };

    let shown = cmd(&["config", "show"]).ok();
    assert_eq!(shown["source"], "default");
    assert_eq!(shown["serverUrl"], "https://messaging.md");
    let set = cmd(&[
        "config",
        "set-url",
        &format!("{}/", one.url.to_uppercase().replace("HTTP://", "http://")),
    ])
    .ok();
    assert_eq!(set["serverUrl"], one.url.as_str());
    assert_eq!(cmd(&["config", "show"]).ok()["source"], "config");

    // A session on server two, created with --url: bound to two.
    let on_two = cmd(&["create", "--url", &two.url, "--creator-agent-id", "me"]).ok();
    let sid2 = on_two["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(
        agent
            .read(&format!("sessions/{sid2}/server"))
            .unwrap()
            .trim(),
        two.url
    );
    // Routed by its binding although config says server one.
    let st = cmd(&["status", &sid2]);
    assert_eq!(st.ok()["sessionId"], sid2.as_str());
    assert!(st.stderr.contains("session binding"));
    // --url overrides the binding (and says so).
    let st = cmd(&["status", &sid2, "--url", &one.url]);
    assert_eq!(st.err(), "session_not_found");
    assert!(st.stderr.contains("--url overrides the binding"));

    // A session on server one that we only know by id: bind checks and records it.
    let host = Agent::new(&one.url);
    let sid1 = create_with_creator(&host, "host", None);
    let bad = cmd(&["bind", &sid2]);
    assert!(bad.err().contains("session not found on"));
    let bound = cmd(&["bind", &sid1]).ok();
    assert_eq!(bound["server"], one.url.as_str());
    assert!(
        agent.read(&format!("sessions/{sid1}/agent")).is_none(),
        "bind writes only the server"
    );

    // Doctor: both servers reachable; sid1 has no agent so membership fails; divergence noted.
    let doc = cmd(&["doctor"]);
    assert_eq!(doc.code, 1);
    let report = doc.json();
    assert_eq!(report["divergence"], true);
    assert_eq!(report["health"].as_array().unwrap().len(), 2);
    assert!(
        report["health"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["reachable"] == true)
    );
    let s2 = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sessionId"] == sid2.as_str())
        .unwrap();
    assert_eq!(s2["memberOfSession"], true);
    assert_eq!(s2["keyFile"], "ok");
    std::fs::remove_dir_all(agent.path(&format!("sessions/{sid1}"))).unwrap();
    let doc = cmd(&["doctor"]);
    assert_eq!(doc.ok()["ok"], true);
    assert!(doc.stderr.contains("all checks passed"));

    // ls probes each session on its own server.
    let ls = cmd(&["ls", "--json"]).ok();
    assert_eq!(ls["sessions"][0]["status"], "active");
    assert_eq!(ls["sessions"][0]["server"], two.url.as_str());

    assert_eq!(cmd(&["config", "unset"]).ok()["ok"], true);
    assert_eq!(cmd(&["config", "show"]).ok()["source"], "default");
    assert!(agent.read("config.json").unwrap().contains("updatedAt"));
}

#[test]
fn set_url_keeps_the_agent_id_nexus_mcp_reads() {
    let agent = Agent::new(&super::harness::dead_url());
    std::fs::write(agent.path("config.json"), "{\"agentId\": \"bob\"}\n").unwrap();
    let set = agent
        .run(&["config", "set-url", "http://relay.example:8080"])
        .ok();
    assert_eq!(set["serverUrl"], "http://relay.example:8080");
    let cfg: serde_json::Value = serde_json::from_str(&agent.read("config.json").unwrap()).unwrap();
    assert_eq!(cfg["agentId"], "bob");
    assert_eq!(cfg["serverUrl"], "http://relay.example:8080");
    assert!(cfg["updatedAt"].is_string());
}
