//! A real `redis-server` for tests (Debian package `redis-server`): started on a free loopback
//! port (Redis has no port 0: a free port is picked and the start retried on a collision) with its
//! own temporary directory, killed when dropped. Without the binary, tests FAIL with a message
//! saying what to install — they never skip silently.
//!
//! Used by the router suite (its Redis variant), the multi-node and nginx tests; each target uses
//! a different part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary, overridable for unusual installs.
fn binary() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned())
}

/// A running `redis-server`; killed (SIGKILL) on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    aof: bool,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A server without persistence (`--save '' --appendonly no`).
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// A server writing every change to its AOF before answering (`--appendonly yes
    /// --appendfsync always`), so a restart loses nothing acknowledged.
    pub fn start_with_aof() -> Self {
        Self::launch(true)
    }

    fn launch(aof: bool) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory for redis-server");
        for _ in 0..20 {
            let port = free_port();
            if let Some(child) = spawn(port, aof, dir.path()) {
                return Self {
                    child: Some(child),
                    port,
                    aof,
                    dir,
                };
            }
        }
        panic!("redis-server could not start on a free port after 20 attempts");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL: no shutdown save), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (the AOF, if any, is replayed).
    pub fn start_again(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = spawn(self.port, self.aof, self.dir.path()) {
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server could not start again on port {}", self.port);
    }

    /// One command over a plain socket (tests' own checks: `INFO`, `DBSIZE`, …): the reply's text.
    pub fn command(&self, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis-server");
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).expect("write to redis-server");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        read_reply(&mut s)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts redis-server on `port`; `None` when it exits (the port was taken meanwhile).
fn spawn(port: u16, aof: bool, dir: &Path) -> Option<Child> {
    let mut cmd = Command::new(binary());
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ])
    .args([
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--loglevel",
        "warning",
    ])
    .arg("--dir")
    .arg(dir)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if aof {
        cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
    } else {
        cmd.args(["--appendonly", "no"]);
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "redis-server is not installed: these tests need Debian's redis-server package \
             (apt-get install redis-server; .ci/run installs it). Set REDIS_SERVER_BIN to use \
             another binary."
        ),
        Err(e) => panic!("cannot run redis-server: {e}"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        // Answering is not enough: another test's server may hold the port (picked free, then
        // taken by both), and ours is about to exit. Ours is the one whose pid answers.
        if ping(port) {
            if server_pid(port) == Some(child.id()) {
                return Some(child);
            }
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// True once the server answers PING (and has finished loading its AOF).
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_millis(500))).ok();
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    read_reply(&mut s).starts_with("PONG")
}

/// The `process_id` the server on `port` reports (`INFO server`).
fn server_pid(port: u16) -> Option<u32> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok();
    s.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n").ok()?;
    read_reply(&mut s)
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

/// Reads one RESP reply as text: arrays as their items joined with CRLF, errors as their text.
fn read_reply(s: &mut TcpStream) -> String {
    let mut reader = BufReader::new(s);
    read_value(&mut reader).unwrap_or_default()
}

fn read_value(r: &mut BufReader<&mut TcpStream>) -> Option<String> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at_checked(1)?;
    match kind {
        "+" | "-" | ":" => Some(rest.to_owned()),
        "$" => {
            let len: i64 = rest.parse().ok()?;
            if len < 0 {
                return Some(String::new());
            }
            let mut buf = vec![0u8; len as usize + 2];
            r.read_exact(&mut buf).ok()?;
            buf.truncate(len as usize);
            Some(String::from_utf8_lossy(&buf).into_owned())
        }
        "*" => {
            let n: i64 = rest.parse().ok()?;
            let items: Vec<String> = (0..n.max(0)).filter_map(|_| read_value(r)).collect();
            Some(items.join("\r\n"))
        }
        _ => None,
    }
}
