//! Executable documentation: every curl example of the served skill documents is run, in order,
//! against the real binary, with the placeholders filled the way each document's "Placeholders"
//! table tells its reader; every one must succeed (curl exit 0, HTTP 2xx). The documents cannot
//! drift from the API. Also: the root document has an example for every endpoint, dead codes get a
//! helpful document, and the HTML pages reference no external host.

#[allow(dead_code)] // not every test file uses every helper
mod harness;

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use harness::{Client, Server};
use serde_json::{Value, json};

const BROWSER: (&str, &str) = (
    "Accept",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
);

async fn start() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--rate-limit-per-minute", "0"]).await;
    (server, dir)
}

fn base(client: &Client) -> String {
    format!("http://{}", client.addr)
}

fn text(res: &harness::Response) -> String {
    String::from_utf8(res.body.clone()).expect("document is UTF-8")
}

/// A curl example: the `## ` section it appears in, and the command as written.
#[derive(Debug)]
struct Example {
    section: String,
    command: String,
}

/// Every fenced code block of the document; each must be a curl example.
fn examples(markdown: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut block: Option<String> = None;
    for line in markdown.lines() {
        if let Some(b) = block.as_mut() {
            if line.starts_with("```") {
                let command = block.take().unwrap();
                assert!(
                    command.trim_start().starts_with("curl "),
                    "every code block of a skill document is a curl example, not {command:?}"
                );
                out.push(Example {
                    section: section.clone(),
                    command,
                });
            } else {
                b.push_str(line);
                b.push('\n');
            }
        } else if let Some(lang) = line.strip_prefix("```") {
            assert_eq!(lang, "bash", "code blocks are tagged bash");
            block = Some(String::new());
        } else if let Some(h) = line.strip_prefix("## ") {
            section = h.trim().to_owned();
        }
    }
    assert!(block.is_none(), "unterminated code block");
    out
}

/// Where a placeholder's value comes from, as the document says.
#[derive(Debug)]
enum Source {
    /// `field` of the JSON answer of a command in section `section`.
    Answer { field: String, section: String },
    /// The reader chooses (e.g. an agent id).
    Chosen,
}

/// The rows of the document's "Placeholders" table.
fn placeholders(markdown: &str) -> Vec<(String, Source)> {
    let table = markdown
        .split("## Placeholders")
        .nth(1)
        .expect("the document has a Placeholders section");
    let mut rows = Vec::new();
    for line in table.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (name, with, from) = (cells[1], cells[2], cells[3]);
        if !name.starts_with('`') {
            continue; // header and separator rows
        }
        let name = name.trim_matches('`').to_owned();
        let source = if with.starts_with('`') && with.ends_with('`') && !with[1..].contains(' ') {
            Source::Answer {
                field: with.trim_matches('`').to_owned(),
                section: from.to_owned(),
            }
        } else {
            Source::Chosen
        };
        rows.push((name, source));
    }
    assert!(!rows.is_empty(), "empty Placeholders table");
    // Longest first, so that no placeholder is replaced inside a longer one.
    rows.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    rows
}

/// A word that looks like a placeholder (`SOME_NAME`).
fn looks_like_placeholder(word: &str) -> bool {
    word.len() > 2
        && word.contains('_')
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// One example run: what curl printed and the status.
#[derive(Debug)]
struct Ran {
    section: String,
    command: String,
    status: u16,
    body: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: answer is not JSON ({e}): {}\n{}",
                self.section, self.body, self.command
            )
        })
    }
}

/// Runs every example of `markdown` in order, filling placeholders; asserts each succeeds.
fn run_document(markdown: &str, chosen: &HashMap<&str, &str>) -> Vec<Ran> {
    let legend = placeholders(markdown);
    let examples = examples(markdown);
    assert!(!examples.is_empty(), "the document has curl examples");
    let mut ran: Vec<Ran> = Vec::new();
    for ex in examples {
        let mut command = ex.command.clone();
        for (name, source) in &legend {
            if !command.contains(name.as_str()) {
                continue;
            }
            let value = match source {
                Source::Chosen => chosen
                    .get(name.as_str())
                    .unwrap_or_else(|| panic!("the test has no value for {name}"))
                    .to_string(),
                Source::Answer { field, section } => ran
                    .iter()
                    .filter(|r| &r.section == section)
                    .find_map(|r| {
                        serde_json::from_str::<Value>(&r.body)
                            .ok()?
                            .get(field)
                            .cloned()
                    })
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: {name} needs `{field}` from \"{section}\", which no earlier \
                             example answered:\n{}",
                            ex.section, ex.command
                        )
                    }),
            };
            command = command.replace(name.as_str(), &value);
        }
        let leftover: Vec<&str> = command
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| looks_like_placeholder(w))
            .collect();
        assert!(
            leftover.is_empty(),
            "{}: placeholders {leftover:?} are not explained in the Placeholders table:\n{}",
            ex.section,
            ex.command
        );
        // The command runs as written; the wrapper only adds the status on a last line (and
        // ignores any proxy configured on the machine).
        let script = format!(
            "curl() {{ command curl --noproxy '*' --max-time 60 -w '\\n%{{http_code}}' \"$@\"; }}\n{command}"
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("run bash (curl must be installed)");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{}: curl failed ({}): {}{}\n{command}",
            ex.section,
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        let status: u16 = status.trim().parse().expect("status line");
        assert!(
            (200..300).contains(&status),
            "{}: HTTP {status}: {body}\n{command}",
            ex.section
        );
        ran.push(Ran {
            section: ex.section,
            command,
            status,
            body: body.to_owned(),
        });
    }
    ran
}

/// `(METHOD, path with placeholders)` of an example, e.g. `("POST", "/v1/pair/CODE/claim")`.
fn endpoint(base: &str, command: &str) -> (String, String) {
    let method = command
        .split_whitespace()
        .skip_while(|w| *w != "-X")
        .nth(1)
        .unwrap_or("GET")
        .to_owned();
    let url = command
        .split_whitespace()
        .map(|w| w.trim_matches('\''))
        .find(|w| w.starts_with(base))
        .expect("the example uses PUBLIC_URL");
    let path = url[base.len()..].split('?').next().unwrap().to_owned();
    (method, if path.is_empty() { "/".into() } else { path })
}

#[tokio::test]
async fn every_curl_of_the_root_document_runs_against_a_live_server() {
    let (server, _dir) = start().await;
    let client = server.client();
    let base = base(&client);
    let res = client.get("/", &[]).await;
    assert_eq!(res.status, 200);
    assert!(
        res.header("content-type")
            .unwrap()
            .starts_with("text/markdown")
    );
    let markdown = text(&res);

    // Every endpoint of SPEC §2 has an example (the root document itself aside).
    let covered: BTreeSet<(String, String)> = examples(&markdown)
        .iter()
        .map(|e| endpoint(&base, &e.command))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("PUT", "/v1/sessions"),
        ("GET", "/v1/sessions/SESSION_ID"),
        ("POST", "/v1/sessions/SESSION_ID/join"),
        ("DELETE", "/v1/sessions/SESSION_ID/agents/agent-c"),
        ("POST", "/v1/sessions/SESSION_ID/renew"),
        ("POST", "/v1/sessions/SESSION_ID/messages"),
        ("GET", "/v1/sessions/SESSION_ID/messages"),
        ("PUT", "/v1/pair"),
        ("POST", "/v1/pair/CODE/claim"),
        ("GET", "/v1/pair/CODE/status"),
        ("GET", "/p/CODE"),
        ("GET", "/health"),
        ("GET", "/v1/stats"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(covered, expected, "root document examples vs the API");

    let ran = run_document(&markdown, &HashMap::new());
    let by = |section: &str| -> Vec<&Ran> { ran.iter().filter(|r| r.section == section).collect() };

    // The examples did what the document says they do.
    let created = by("Create a session")[0].json();
    assert_eq!(by("Create a session")[0].status, 201);
    assert_eq!(created["creatorAgentId"], "agent-a");
    let sid = created["sessionId"].as_str().unwrap();
    let invite = by("Invite another agent");
    let code = invite[0].json()["code"].as_str().unwrap().to_owned();
    assert!(
        invite[1].body.contains(&format!("/v1/pair/{code}/claim")),
        "the pairing link serves the code's skill document"
    );
    assert_eq!(invite[2].json()["state"], "pending");
    assert_eq!(by("Claim the code")[0].json()["status"], "claimed");
    assert_eq!(by("Send")[0].json()["verified"], true);
    let first = by("Poll")[0].json();
    let texts: Vec<&str> = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Hello! Let us review the report.",
            "Here is the report: revenue is up 4%."
        ]
    );
    let reply = by("Reply, with JSON and a safe retry")[0].json();
    assert_eq!(reply["verified"], true);
    let newer = by("Poll for newer messages")[0].json();
    assert_eq!(newer["messages"].as_array().unwrap().len(), 1);
    assert_eq!(
        newer["messages"][0]["json"],
        json!({"type": "ack", "items": 2})
    );
    assert!(newer["members"].is_array());
    assert_eq!(by("Session status")[0].json()["sessionId"], sid);
    assert_eq!(by("Join by session id")[0].json()["status"], "joined");
    assert_eq!(by("Renew")[0].json()["ttl"], 7200);
    assert_eq!(by("Leave")[0].json()["ok"], true);
    assert_eq!(by("Health and statistics")[0].json()["status"], "ok");
    assert_eq!(by("Health and statistics")[1].json()["activeSessions"], 1);
    // The document states this server's limits.
    assert!(markdown.contains("| Requests per minute per IP | no limit |"));
    assert!(markdown.contains("| Pairing code lifetime | 10 minutes, single use |"));
    server.stop().await;
}

#[tokio::test]
async fn every_curl_of_the_pairing_document_runs_against_a_live_server() {
    let (server, _dir) = start().await;
    let client = server.client();
    let created = client
        .put(
            "/v1/sessions",
            &[],
            &json!({"creatorAgentId": "alice", "greeting": "Hi! Please review my plan."}),
        )
        .await
        .expect(201);
    let sid = created["sessionId"].as_str().unwrap();
    let pair = client
        .put("/v1/pair", &[], &json!({"sessionId": sid}))
        .await
        .expect(201);
    let code = pair["code"].as_str().unwrap();
    let url = pair["url"].as_str().unwrap();
    assert_eq!(url, format!("{}/p/{code}", base(&client)));

    // The link a person copies: 301 to the document.
    let link = client.get(&format!("/p/{code}"), &[]).await;
    assert_eq!(link.status, 301);
    let location = link.header("location").unwrap().to_owned();
    let res = client.get(&location, &[]).await;
    assert_eq!(res.status, 200);
    assert!(
        res.header("content-type")
            .unwrap()
            .starts_with("text/markdown")
    );
    let markdown = text(&res);
    assert!(markdown.contains(&format!("**{code}**")));
    assert!(markdown.contains("| State | pending"));
    assert!(
        !markdown.contains(sid),
        "the document does not leak the session id"
    );
    // Claim comes first.
    let ex = examples(&markdown);
    assert!(ex[0].command.contains(&format!("/v1/pair/{code}/claim")));

    let chosen = HashMap::from([("YOUR_AGENT_ID", "doc-reader")]);
    let ran = run_document(&markdown, &chosen);
    assert_eq!(ran[0].json()["status"], "claimed");
    assert_eq!(
        ran[1].json()["messages"][0]["text"],
        "Hi! Please review my plan."
    );
    assert_eq!(ran[2].json()["verified"], true);
    assert_eq!(ran[3].json()["messages"][0]["agentId"], "doc-reader");
    assert_eq!(ran.last().unwrap().json()["ok"], true);

    // The creator saw the reply.
    let seen = client
        .get(
            &format!("/v1/sessions/{sid}/messages?after=0"),
            &[("X-Agent-Id", "alice")],
        )
        .await
        .expect(200);
    assert_eq!(seen["messages"][0]["agentId"], "doc-reader");
    server.stop().await;
}

#[tokio::test]
async fn claimed_and_unknown_codes_get_a_helpful_document() {
    let (server, _dir) = start().await;
    let client = server.client();
    let created = client
        .put("/v1/sessions", &[], &json!({"creatorAgentId": "alice"}))
        .await
        .expect(201);
    let sid = created["sessionId"].as_str().unwrap();
    let pair = client
        .put("/v1/pair", &[], &json!({"sessionId": sid}))
        .await
        .expect(201);
    let code = pair["code"].as_str().unwrap();
    client
        .post(
            &format!("/v1/pair/{code}/claim"),
            &[("X-Agent-Id", "bob")],
            None,
        )
        .await
        .expect(200);

    for (path, state) in [
        (format!("/v1/pair/{code}/skill"), "claimed"),
        ("/v1/pair/ABLE-ABLE-00000/skill".to_owned(), "unknown"),
        ("/v1/pair/not%20a%20code/skill".to_owned(), "unknown"),
    ] {
        let res = client.get(&path, &[]).await;
        assert_eq!(res.status, 404, "{path}");
        assert!(
            res.header("content-type")
                .unwrap()
                .starts_with("text/markdown")
        );
        let md = text(&res);
        assert!(md.contains(&format!("| State | {state} |")), "{path}: {md}");
        assert!(md.contains("new pairing link"), "{path}: {md}");
        assert!(md.contains(&base(&client)), "{path}: {md}");
        assert!(examples(&md).is_empty(), "nothing to run for a dead code");
        let html = client.get(&path, &[BROWSER]).await;
        assert_eq!(html.status, 404);
        let page = text(&html);
        assert!(
            page.contains(&format!("data-state=\"{state}\">{state}</span>")),
            "{path}"
        );
    }
    server.stop().await;
}

/// Every URL-ish reference of an HTML page (attributes, CSS `url()` / `@import`, script `fetch`)
/// and every absolute URL anywhere in it.
fn references(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in [
        "src=", "href=", "action=", "srcset=", "poster=", "data=", "url(", "@import",
    ] {
        for piece in page.split(attr).skip(1) {
            let value: String = piece
                .trim_start_matches(['"', '\'', ' '])
                .chars()
                .take_while(|c| !matches!(c, '"' | '\'' | ')' | ' ' | '>'))
                .collect();
            out.push(value);
        }
    }
    // Protocol-relative references (`//host`) are caught by the attribute scan above (and by the
    // CSP); a bare `//` elsewhere is a JavaScript comment.
    for scheme in ["http://", "https://"] {
        for (i, _) in page.match_indices(scheme) {
            let rest: String = page[i..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '<' | ')'))
                .collect();
            // Prose punctuation after a URL is not part of it.
            out.push(rest.trim_end_matches(['.', ',', ';', ':']).to_owned());
        }
    }
    out
}

#[tokio::test]
async fn html_pages_reference_no_external_host() {
    let (server, _dir) = start().await;
    let client = server.client();
    let base = base(&client);
    let created = client
        .put("/v1/sessions", &[], &json!({"creatorAgentId": "alice"}))
        .await
        .expect(201);
    let pair = client
        .put("/v1/pair", &[], &json!({"sessionId": created["sessionId"]}))
        .await
        .expect(201);
    let code = pair["code"].as_str().unwrap();
    for path in [
        "/".to_owned(),
        format!("/v1/pair/{code}/skill"),
        "/v1/pair/ABLE-ABLE-00000/skill".to_owned(),
    ] {
        let res = client.get(&path, &[BROWSER]).await;
        assert!(res.header("content-type").unwrap().starts_with("text/html"));
        let csp = res
            .header("content-security-policy")
            .expect("HTML pages carry a CSP");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("http"), "the CSP allows no other host: {csp}");
        let page = text(&res);
        for tag in [
            "<link",
            "<img",
            "<iframe",
            "<object",
            "<embed",
            "<script src",
            "<base",
        ] {
            assert!(!page.contains(tag), "{path}: the page has {tag}");
        }
        for reference in references(&page) {
            let local = reference.is_empty()
                || reference.starts_with('/') && !reference.starts_with("//")
                || reference.starts_with('#')
                || reference.starts_with(&format!("{base}/"))
                || reference == base;
            assert!(local, "{path}: external reference {reference:?}");
        }
        // The JavaScript talks to this server only, by relative URL.
        assert!(page.contains("fetch(statusUrl"));
    }
    server.stop().await;
}
