//! `poll-daemon`: every message sent while it runs appears on its stdout exactly once and in
//! order, across a server restart; the saved cursor matches the last delivered message;
//! `poll-status` lists only live daemons and removes the lock file a SIGKILLed daemon left.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::harness::{Agent, Scripted, Server, create_with_creator, pair_in};

fn next_line(rx: &mpsc::Receiver<Value>, within: Duration) -> Value {
    rx.recv_timeout(within).expect("daemon line in time")
}

/// The next message line; `gap` lines (the server may say it cannot vouch for cursors below its
/// restart high-water mark) are counted, not returned.
fn next_message(rx: &mpsc::Receiver<Value>, within: Duration, gaps: &mut u32) -> Value {
    loop {
        let line = next_line(rx, within);
        if line["type"] == "gap" {
            *gaps += 1;
            continue;
        }
        assert_eq!(line["type"], "message", "{line}");
        return line;
    }
}

#[test]
fn daemon_delivers_everything_once_across_a_restart() {
    let mut server = Server::start();
    let alice = Agent::new(&server.url);
    let bob = Agent::new(&server.url);
    let sid = create_with_creator(&alice, "alice", Some("greeting"));
    pair_in(&alice, &sid, &bob, "bob");

    let mut daemon = bob
        .command(&[
            "poll-daemon",
            &sid,
            "--interval",
            "1",
            "--ttl",
            "120",
            "--yes",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = daemon_lines(&mut daemon);

    let greeting = next_line(&rx, Duration::from_secs(10));
    assert_eq!(greeting["type"], "message");
    assert_eq!(greeting["message"]["text"], "greeting");

    // poll-status sees the live daemon.
    let status = bob.run(&["poll-status"]).ok();
    let daemons = status["daemons"].as_array().unwrap();
    assert_eq!(daemons.len(), 1);
    assert_eq!(daemons[0]["pid"], daemon.id());
    // A second daemon for the same session is refused.
    assert_eq!(
        bob.run(&["poll-daemon", &sid, "--yes", "--ttl", "5"]).err(),
        "daemon_already_running"
    );

    let mut sent = Vec::new();
    for i in 0..3 {
        let t = format!("before restart {i}");
        alice.run(&["send", &sid, &t]).ok();
        sent.push(t);
    }
    let mut got = Vec::new();
    let mut gaps = 0;
    for _ in 0..3 {
        got.push(next_message(&rx, Duration::from_secs(10), &mut gaps));
    }
    server.restart();
    for i in 0..3 {
        let t = format!("after restart {i}");
        // The sender retries until the restarted server answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = alice.run(&["send", &sid, &t]);
            if r.code == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "send after restart: {r:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        sent.push(t);
    }
    for _ in 0..3 {
        got.push(next_message(&rx, Duration::from_secs(30), &mut gaps));
    }
    assert!(gaps <= 1, "at most one gap notice, after the restart");
    // Nothing else arrives (no duplicates).
    if let Ok(extra) = rx.recv_timeout(Duration::from_secs(2)) {
        panic!("unexpected line {extra}; got so far {got:?}");
    }

    let texts: Vec<&str> = got
        .iter()
        .map(|l| l["message"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, sent.iter().map(String::as_str).collect::<Vec<_>>());
    let cursors: Vec<u64> = got
        .iter()
        .map(|l| l["message"]["cursor"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    let last = cursors.last().unwrap().to_string();
    assert_eq!(
        bob.read(&format!("sessions/{sid}/cursor")).unwrap().trim(),
        last
    );

    // SIGTERM: a final line, exit 0, lock released.
    let _ = std::process::Command::new("kill")
        .arg(daemon.id().to_string())
        .status();
    let end = next_line(&rx, Duration::from_secs(10));
    assert_eq!(end["type"], "stopped");
    assert_eq!(end["reason"], "signal");
    assert!(daemon.wait().unwrap().success());
    assert_eq!(
        bob.run(&["poll-status"]).ok()["daemons"],
        serde_json::json!([])
    );
}

/// The JSON lines of a daemon's stdout, read on a thread.
fn daemon_lines(daemon: &mut std::process::Child) -> mpsc::Receiver<Value> {
    let stdout = daemon.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line).expect("every line is JSON");
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    rx
}

/// A daemon killed with SIGKILL cannot remove its lock file; the OS releases its lock, so
/// `poll-status` lists no daemon and removes the stale file (docs/CLI.md, `poll-status`).
#[test]
fn poll_status_removes_the_lock_file_of_a_killed_daemon() {
    use std::os::unix::process::ExitStatusExt;
    const SIGKILL: i32 = 9;

    let server = Server::start();
    let alice = Agent::new(&server.url);
    let bob = Agent::new(&server.url);
    let sid = create_with_creator(&alice, "alice", Some("greeting"));
    pair_in(&alice, &sid, &bob, "bob");
    let daemon_args = ["poll-daemon", sid.as_str(), "--interval", "1", "--yes"];
    let spawn = || {
        bob.command(&daemon_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };

    let mut daemon = spawn();
    let rx = daemon_lines(&mut daemon);
    // The first delivered line means the daemon holds its lock.
    let first = next_line(&rx, Duration::from_secs(10));
    assert_eq!(first["message"]["text"], "greeting", "{first}");
    let lock_rel = format!("daemons/{sid}.lock");
    let lock = bob.path(&lock_rel);
    let recorded: Value = serde_json::from_str(&bob.read(&lock_rel).unwrap())
        .expect("the lock file records its daemon");
    assert_eq!(recorded["pid"], daemon.id());
    let live = bob.run(&["poll-status"]).ok();
    assert_eq!(live["daemons"].as_array().unwrap().len(), 1, "{live}");

    // SIGKILL: no final line, no cleanup.
    daemon.kill().unwrap();
    let status = daemon.wait().unwrap();
    assert_eq!(status.signal(), Some(SIGKILL), "{status:?}");
    assert!(lock.exists(), "a killed daemon leaves its lock file behind");

    let run = bob.run(&["poll-status"]);
    assert_eq!(run.ok(), json!({"daemons": []}), "{run:?}");
    assert!(
        run.stderr.contains("No active polling processes found."),
        "{run:?}"
    );
    assert!(!lock.exists(), "poll-status removes the stale lock file");

    // A new daemon for the session starts, and poll-status lists it.
    let mut again = spawn();
    let rx = daemon_lines(&mut again);
    alice.run(&["send", &sid, "after the kill"]).ok();
    let mut gaps = 0;
    while next_message(&rx, Duration::from_secs(10), &mut gaps)["message"]["text"]
        != "after the kill"
    {}
    let listed = bob.run(&["poll-status"]).ok();
    assert_eq!(listed["daemons"][0]["pid"], again.id(), "{listed}");
    let _ = again.kill();
    let _ = again.wait();
}

#[test]
fn daemon_stops_on_session_not_found() {
    let server = Server::start();
    let bob = Agent::new(&server.url);
    let ghost = "ef".repeat(24);
    let r = bob.run(&[
        "poll-daemon",
        &ghost,
        "--agent-id",
        "bob",
        "--interval",
        "1",
    ]);
    assert_eq!(r.code, 1);
    let last: Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "stopped");
    assert_eq!(last["reason"], "session_not_found");
    assert!(!bob.path(&format!("sessions/{ghost}")).exists());
}

#[test]
fn daemon_rejoins_after_removal_for_inactivity() {
    let server = Server::start_with(&["--agent-inactivity-seconds", "1"]);
    let alice = Agent::new(&server.url);
    let bob = Agent::new(&server.url);
    let sid = create_with_creator(&alice, "alice", None);
    pair_in(&alice, &sid, &bob, "bob");
    let key_before = bob.read(&format!("sessions/{sid}/key")).unwrap();
    // Bob goes quiet until the relay (a real process, with a 1 s inactivity limit) has removed
    // him: watched through the public status, not guessed with a fixed sleep.
    let deadline = Instant::now() + Duration::from_secs(20);
    while alice.run(&["status", &sid]).ok()["agents"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "bob")
    {
        assert!(Instant::now() < deadline, "bob was never removed");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(bob.run(&["poll", &sid]).err(), "agent_not_in_session");
    alice.run(&["send", &sid, "while you were away"]).ok();

    let mut daemon = bob
        .command(&["heartbeat", &sid, "--interval", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = daemon.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["message"]["text"], "while you were away");
    let _ = daemon.kill();
    let _ = daemon.wait();
    let key_after = bob.read(&format!("sessions/{sid}/key")).unwrap();
    assert_ne!(key_before, key_after, "the rejoin saved the new key");
}

/// Against a relay that advertises long-poll and keeps saying `truncated` for the same cursor
/// (messages lost in a crash, none sent since): the daemon asks with `wait=`, renews before the
/// session's (short) expiry, and reports the gap once, not once per poll.
#[test]
fn daemon_long_polls_renews_and_reports_one_gap_per_cursor() {
    let sid = "cd".repeat(24);
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&seen);
    let relay = Scripted::start(move |method, path, _| {
        log.lock().unwrap().push(format!("{method} {path}"));
        let soon = nexus_proto::time::format_rfc3339(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
                + 1_000,
        );
        let ok = |v: Value| (200, "application/json", v.to_string());
        match method {
            "GET" if path == "/health" => ok(json!({"status": "ok", "capabilities":
                {"messageFormat": ["text", "json"], "longPoll": true, "maxWaitSeconds": 60}})),
            "POST" if path.ends_with("/join") => ok(json!({"status": "joined", "sessionId": "x",
                "agentsOnline": 2, "sessionKey": "k".repeat(64), "expiresAt": soon})),
            "POST" if path.ends_with("/renew") => ok(json!({"sessionId": "x", "state": "active",
                "ttl": 1, "expiresAt": soon, "agents": ["bob"]})),
            "GET" if path.contains("/messages") => {
                let after = path
                    .split(['?', '&'])
                    .find_map(|kv| kv.strip_prefix("after="))
                    .unwrap_or("0")
                    .to_owned();
                ok(json!({"messages": [], "nextCursor": after, "truncated": true}))
            }
            _ => (
                404,
                "application/json",
                json!({"error": "not_found"}).to_string(),
            ),
        }
    });
    let bob = Agent::new(&relay.url);
    bob.run(&["join", &sid, "--agent-id", "bob"]).ok();
    std::fs::write(bob.path(&format!("sessions/{sid}/cursor")), "7").unwrap();

    let r = bob.run(&[
        "poll-daemon",
        &sid,
        "--interval",
        "1",
        "--ttl",
        "4",
        "--yes",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let gaps: Vec<&Value> = lines.iter().filter(|l| l["type"] == "gap").collect();
    assert_eq!(gaps.len(), 1, "{lines:?}");
    assert_eq!(gaps[0]["after"], "7");
    assert_eq!(lines.last().unwrap()["reason"], "ttl_elapsed");

    let seen = seen.lock().unwrap();
    let polls: Vec<&String> = seen
        .iter()
        .filter(|r| r.starts_with("GET") && r.contains("/messages"))
        .collect();
    assert!(polls.len() >= 3, "{seen:?}");
    // Every poll asks the server to hold it (long-poll, advertised by /health).
    assert!(polls.iter().all(|p| p.contains("wait=1")), "{polls:?}");
    let renews = seen.iter().filter(|r| r.ends_with("/renew")).count();
    assert!(renews >= 2, "renewed before each near expiry: {seen:?}");
}
