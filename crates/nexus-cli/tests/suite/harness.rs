//! The harness: start `nexus-server` on a free loopback port with its own data folder, run
//! `nexus` as an agent with its own `NEXUS_HOME`, and a scripted HTTP server for replies the real
//! relay never gives. Every process started here is killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::thread;

use serde_json::Value;

/// The `nexus-server` binary: next to this test's target folder, built on demand.
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let bin = dir.join(format!("nexus-server{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "nexus-server"])
            .status()
            .expect("cargo build -p nexus-server");
        assert!(status.success(), "building nexus-server failed");
    }
    bin
}

/// A running relay.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    port: u16,
    data: tempfile::TempDir,
    extra: Vec<String>,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra flags (e.g. `--agent-inactivity-seconds 1`).
    pub fn start_with(extra: &[&str]) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, url, port) = spawn(data.path(), 0, &extra);
        Self {
            child: Some(child),
            url,
            port,
            data,
            extra,
        }
    }

    /// Stops the server (SIGKILL: no graceful flush beyond what it acknowledged) and starts it
    /// again on the same port with the same data folder.
    pub fn restart(&mut self) {
        self.stop();
        let (child, url, _) = spawn(self.data.path(), self.port, &self.extra);
        assert_eq!(url, self.url);
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(data: &Path, port: u16, extra: &[String]) -> (Child, String, u16) {
    let mut last_err = String::new();
    for _ in 0..50 {
        let mut child = Command::new(server_binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--data-dir")
            .arg(data)
            .args(["--rate-limit-per-minute", "0", "--log", "warn"])
            .args(extra)
            .env_remove("PUBLIC_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nexus-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && let Some(url) = v["listening"].as_str()
        {
            let port = url
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
            return (child, url.to_owned(), port);
        }
        let _ = child.kill();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = child.wait();
        last_err = err;
        // The port may still be held for a moment after a restart.
        thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("nexus-server did not start: {last_err}");
}

/// What one `nexus` run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as exactly one JSON value.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON value ({e}): {:?}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts success and returns the JSON.
    pub fn ok(&self) -> Value {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self.json()
    }

    /// Asserts exit 1 with a JSON error on stdout and returns the error code.
    pub fn err(&self) -> String {
        assert_eq!(self.code, 1, "expected failure: {self:?}");
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {self:?}"))
            .to_owned()
    }
}

/// One agent: a `nexus` with its own home folder.
pub struct Agent {
    pub home: tempfile::TempDir,
    pub url: String,
}

impl Agent {
    pub fn new(server_url: &str) -> Self {
        Self {
            home: tempfile::tempdir().expect("tempdir"),
            url: server_url.to_owned(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nexus"));
        c.args(args)
            .env("NEXUS_HOME", self.home.path())
            .env("NEXUS_URL", &self.url)
            .env("NEXUS_HTTP_TIMEOUT", "5")
            .env("NEXUS_STATUS_TIMEOUT", "2");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_stdin(args, None)
    }

    pub fn run_stdin(&self, args: &[&str], input: Option<&[u8]>) -> Run {
        let mut child = self
            .command(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nexus");
        if let Some(bytes) = input {
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(bytes).expect("write stdin");
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().expect("nexus output");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.home.path().join(rel)
    }

    pub fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.path(rel)).ok()
    }
}

/// Creates a session with `creator` as creator; returns its id.
pub fn create_with_creator(agent: &Agent, creator: &str, greeting: Option<&str>) -> String {
    let mut args = vec!["create", "--creator-agent-id", creator, "--ttl", "600"];
    if let Some(g) = greeting {
        args.extend(["--greeting", g]);
    }
    let v = agent.run(&args).ok();
    v["sessionId"].as_str().expect("sessionId").to_owned()
}

/// Pairs `host`'s session with `guest` through a pairing link.
pub fn pair_in(host: &Agent, sid: &str, guest: &Agent, guest_id: &str) {
    let pair = host.run(&["pair", sid]).ok();
    let url = pair["url"].as_str().expect("url");
    let claimed = guest.run(&["claim", url, "--agent-id", guest_id]).ok();
    assert_eq!(claimed["sessionId"], sid);
}

/// A scripted HTTP/1.1 server: `respond(method, path, body) -> (status, content_type, body)`.
pub struct Scripted {
    pub url: String,
}

type Handler = dyn Fn(&str, &str, &str) -> (u16, &'static str, String) + Send + Sync;

impl Scripted {
    pub fn start(
        handler: impl Fn(&str, &str, &str) -> (u16, &'static str, String) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let handler: Arc<Handler> = Arc::new(handler);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let handler = Arc::clone(&handler);
                thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
                    }
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                            break;
                        }
                        let lower = h.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    let _ = reader.read_exact(&mut body);
                    let mut parts = request_line.split_whitespace();
                    let method = parts.next().unwrap_or("");
                    let path = parts.next().unwrap_or("");
                    let (status, ctype, text) =
                        handler(method, path, &String::from_utf8_lossy(&body));
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = stream.write_all(resp.as_bytes());
                });
            }
        });
        Self { url }
    }
}

/// A loopback URL where nothing listens.
pub fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    drop(l);
    url
}
