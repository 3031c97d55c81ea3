//! What the other areas do not cover: timeouts (`NEXUS_HTTP_TIMEOUT`, `NEXUS_STATUS_TIMEOUT`), every
//! `ls` status end to end, trust-on-first-use ("adopted binding"), the provenance line and the
//! stderr hints after `pair`, `claim` and `poll`, shell completions, and an example in every
//! command's `--help`.

use std::time::{Duration, Instant};

use super::harness::{Agent, Scripted, Server, create_with_creator, dead_url};

/// A relay that accepts the connection and never answers (well, after a minute).
fn silent() -> Scripted {
    Scripted::start(|_, _, _| {
        std::thread::sleep(Duration::from_secs(60));
        (200, "application/json", "{}".into())
    })
}

#[test]
fn http_timeout_bounds_every_request() {
    let relay = silent();
    let a = Agent::new(&relay.url);
    let started = Instant::now();
    let r = a
        .command(&["status", &"ab".repeat(24)])
        .env("NEXUS_HTTP_TIMEOUT", "1")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let out: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(out["error"], "transport_error", "{out}");
    // The reply would take a minute, the default limit is 10 s: the 1 s limit was applied.
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
}

#[test]
fn ls_reports_every_status_on_each_sessions_own_server() {
    let live = Server::start();
    let broken = Scripted::start(|_, _, _| {
        (
            500,
            "application/json",
            r#"{"error":"internal_error","message":"boom"}"#.into(),
        )
    });
    let slow = silent();
    let a = Agent::new(&live.url);
    let active = create_with_creator(&a, "me", None);
    let bind = |sid: &str, server: &str| {
        let dir = a.path(&format!("sessions/{sid}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("server"), server).unwrap();
        std::fs::write(dir.join("agent"), "me").unwrap();
    };
    let gone = "01".repeat(24);
    let dead = "02".repeat(24);
    let failing = "03".repeat(24);
    let hanging = "04".repeat(24);
    bind(&gone, &live.url);
    bind(&dead, &dead_url());
    bind(&failing, &broken.url);
    bind(&hanging, &slow.url);

    let started = Instant::now();
    let out = a
        .command(&["ls"])
        .env("NEXUS_STATUS_TIMEOUT", "1")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status_of = |sid: &str| {
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["sessionId"] == sid)
            .map(|s| s["status"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{sid} missing from {v}"))
    };
    assert_eq!(status_of(&active), "active");
    assert_eq!(status_of(&gone), "not_found");
    assert_eq!(status_of(&dead), "unreachable");
    assert_eq!(status_of(&failing), "error");
    assert_eq!(
        status_of(&hanging),
        "unreachable",
        "no reply within the status timeout"
    );
    assert!(
        elapsed < Duration::from_secs(8),
        "probes are bounded: {elapsed:?}"
    );

    // --active keeps the live and the unreachable ones (a network blip must not hide a session).
    let kept = a.run(&["ls", "--active"]).ok();
    let mut kept: Vec<&str> = kept["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, ["active", "unreachable", "unreachable"]);
}

#[test]
fn first_successful_use_adopts_the_binding_and_says_so() {
    let server = Server::start();
    let host = Agent::new(&server.url);
    let sid = create_with_creator(&host, "host", None);
    let a = Agent::new(&server.url);
    a.run(&["join", &sid, "--agent-id", "guest"]).ok();
    // An older client (or a hand-made folder) left the session without a binding.
    std::fs::remove_file(a.path(&format!("sessions/{sid}/server"))).unwrap();

    let first = a.run(&["poll", &sid]);
    first.ok();
    assert!(first.stderr.contains("adopted binding"), "{}", first.stderr);
    assert!(
        first.stderr.contains("→ server: 127.0.0.1"),
        "provenance line: {}",
        first.stderr
    );
    assert_eq!(
        a.read(&format!("sessions/{sid}/server")).unwrap().trim(),
        server.url
    );
    let second = a.run(&["poll", &sid]);
    second.ok();
    assert!(!second.stderr.contains("adopted binding"));
    assert!(
        second.stderr.contains("session binding"),
        "{}",
        second.stderr
    );
}

#[test]
fn pair_claim_and_poll_leave_a_hint_on_stderr_and_quiet_silences_it() {
    let server = Server::start();
    let host = Agent::new(&server.url);
    let guest = Agent::new(&server.url);
    let sid = create_with_creator(&host, "host", Some("hello"));

    let pair = host.run(&["pair", &sid]);
    let url = pair.ok()["url"].as_str().unwrap().to_owned();
    assert!(
        pair.stderr.contains(&url),
        "the link is shown: {}",
        pair.stderr
    );
    let claim = guest.run(&["claim", &url, "--agent-id", "guest"]);
    claim.ok();
    assert!(
        claim.stderr.contains(&format!("nexus poll {sid}")),
        "what to do next: {}",
        claim.stderr
    );
    let poll = guest.run(&["poll", &sid]);
    assert_eq!(poll.ok()["messages"][0]["text"], "hello");
    assert!(
        poll.stderr.contains(&format!("nexus send {sid}")),
        "{}",
        poll.stderr
    );
    let quiet = guest.run(&["poll", &sid, "--after", "0", "--quiet"]);
    quiet.ok();
    assert_eq!(quiet.stderr, "", "--quiet silences stderr");
}

#[test]
fn completions_for_every_shell() {
    let a = Agent::new(&dead_url());
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef nexus"),
        ("fish", "complete -c nexus"),
    ] {
        let out = a.command(&["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {script:.200}");
        for command in ["poll-daemon", "pair-status", "send"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
    }
}

#[test]
fn every_command_help_has_an_example() {
    let a = Agent::new(&dead_url());
    // Help is human text: on stderr, like every human line (stdout is JSON only).
    let top = a.command(&["--help"]).output().unwrap();
    let top = String::from_utf8(top.stderr).unwrap();
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(commands.len() >= 20, "{commands:?}");
    for command in &commands {
        let out = a.command(&[command, "--help"]).output().unwrap();
        let help = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(0), "{command} --help");
        assert!(
            help.contains("Example") && help.contains(&format!("nexus {command}")),
            "{command} --help has no example:\n{help}"
        );
    }
}
