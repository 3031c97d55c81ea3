//! The files under the home folder: the layout and permissions of SPEC §3 "Local state".

use std::os::unix::fs::PermissionsExt;

use super::harness::{Agent, Server, create_with_creator, pair_in};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn home_layout_and_permissions() {
    let server = Server::start();
    let alice = Agent::new(&server.url);
    let bob = Agent::new(&server.url);
    let sid = create_with_creator(&alice, "alice", Some("hi"));
    pair_in(&alice, &sid, &bob, "bob");
    bob.run(&["poll", &sid]).ok();
    bob.run(&["alias", &sid, "chat"]).ok();
    bob.run(&["config", "set-url", &server.url]).ok();
    bob.run(&["send", &sid, "--json", "{}"]).ok();

    let home = bob.home.path();
    let mut found: Vec<String> = Vec::new();
    for entry in walk(home) {
        let rel = entry
            .strip_prefix(home)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let m = mode(&entry);
        if entry.is_dir() {
            assert_eq!(m, 0o700, "{rel}");
        } else {
            assert_eq!(m, 0o600, "{rel}");
        }
        found.push(rel);
    }
    found.sort();
    let s = |f: &str| format!("sessions/{sid}/{f}");
    let mut expected = vec![
        "aliases.json".to_owned(),
        "config.json".to_owned(),
        "server-caps.json".to_owned(),
        "sessions".to_owned(),
        format!("sessions/{sid}"),
        s("agent"),
        s("cursor"),
        s("key"),
        s("server"),
    ];
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(bob.read(&s("agent")).unwrap(), "bob\n");
    assert_eq!(bob.read(&s("cursor")).unwrap(), "0\n");
    assert_eq!(bob.read(&s("server")).unwrap(), format!("{}\n", server.url));
    assert_eq!(bob.read(&s("key")).unwrap().trim().len(), 64);
    let aliases: serde_json::Value =
        serde_json::from_str(&bob.read("aliases.json").unwrap()).unwrap();
    assert_eq!(aliases["chat"], sid.as_str());

    // Files another tool left readable are tightened on the next run.
    std::fs::set_permissions(bob.path(&s("key")), std::fs::Permissions::from_mode(0o644)).unwrap();
    bob.run(&["config", "show"]).ok();
    assert_eq!(mode(&bob.path(&s("key"))), 0o600);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
