//! `--only redis` (issue 7): send throughput of the relay on its embedded store, on one
//! Redis-backed node and on two Redis-backed nodes sharing one Redis, and the Redis round trips a
//! send costs. It starts its own `redis-server` (Debian package; `--appendonly yes
//! --appendfsync everysec`, the setting docs/DEPLOYMENT.md recommends) on a free loopback port,
//! and the relays as child processes, and alternates the three targets round by round.
//!
//! Round trips per send are counted by Redis itself: `INFO commandstats` before and after a batch
//! of sends (client commands: `EVALSHA` and anything else a node sent; commands run inside the
//! scripts are listed separately).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::Value;

use crate::load::{self, LoadResult, MakeReq, request};
use crate::procs::{self, Server};
use crate::{Args, SEND_TEXT};

/// A `redis-server` child on a free loopback port; killed on drop.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start(fsync: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("nexus-bench-redis")
            .tempdir()?;
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "yes", "--appendfsync", fsync])
                .args(["--loglevel", "warning"])
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("run redis-server (Debian package redis-server)")?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait()?.is_some() {
                    break; // port taken meanwhile: another one
                }
                if command(port, &["PING"]).is_ok_and(|r| r.starts_with("+PONG")) {
                    return Ok(Self {
                        child,
                        port,
                        _dir: dir,
                    });
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        bail!("redis-server did not start")
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `calls` per command from `INFO commandstats`.
    fn command_calls(&self) -> Result<Vec<(String, u64)>> {
        let info = command(self.port, &["INFO", "commandstats"])?;
        Ok(info
            .lines()
            .filter_map(|l| {
                let (name, stats) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats.split(',').next()?.strip_prefix("calls=")?;
                Some((name.to_owned(), calls.parse().ok()?))
            })
            .collect())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One command over a plain socket; the raw reply (the whole of a bulk reply).
fn command(port: u16, args: &[&str]) -> Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes())?;
    let mut r = BufReader::new(s);
    let mut first = String::new();
    r.read_line(&mut first)?;
    if let Some(len) = first.strip_prefix('$') {
        let len: usize = len.trim().parse().unwrap_or(0);
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        return Ok(String::from_utf8_lossy(&body).into_owned());
    }
    Ok(first)
}

/// A session and its creator.
#[derive(Clone)]
struct Sess {
    id: String,
    agent: String,
    key: String,
}

async fn sessions(addr: SocketAddr, n: usize) -> Result<Vec<Sess>> {
    let bodies = load::batch(
        addr,
        32,
        n,
        StatusCode::CREATED,
        Arc::new(|i| {
            let body = format!(r#"{{"creatorAgentId":"bench-{i}","ttl":86400}}"#);
            request("PUT", "/v1/sessions", &[], Bytes::from(body))
        }),
    )
    .await?;
    bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let v: Value = serde_json::from_slice(b)?;
            let field = |f: &str| {
                v[f].as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow!("no {f} in {v}"))
            };
            Ok(Sess {
                id: field("sessionId")?,
                agent: format!("bench-{i}"),
                key: field("sessionKey")?,
            })
        })
        .collect()
}

fn sender(sessions: Arc<Vec<Sess>>) -> MakeReq {
    let body = Bytes::from(serde_json::json!({ "text": SEND_TEXT }).to_string());
    Arc::new(move |conn, seq| {
        let s = &sessions[(conn + seq as usize * 7919) % sessions.len()];
        request(
            "POST",
            &format!("/v1/sessions/{}/messages", s.id),
            &[("x-agent-id", &s.agent), ("x-session-key", &s.key)],
            body.clone(),
        )
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Closed-loop sends spread over `nodes` (connections split evenly), summed.
async fn run_sends(
    nodes: &[SocketAddr],
    conns: usize,
    warmup: Duration,
    window: Duration,
    make: &MakeReq,
) -> Result<(f64, u64, f64)> {
    let per = (conns / nodes.len()).max(1);
    let runs = nodes.iter().map(|addr| {
        load::closed_loop(
            *addr,
            per,
            warmup,
            window,
            StatusCode::CREATED,
            make.clone(),
        )
    });
    let results: Vec<LoadResult> = futures_join(runs).await?;
    let rps = results.iter().map(LoadResult::rps).sum();
    let errors = results.iter().map(|r| r.errors).sum();
    let mut lat: Vec<u32> = results.into_iter().flat_map(|r| r.lat_us).collect();
    let p99 = load::percentile(&mut lat, 0.99) / 1000.0;
    Ok((rps, errors, p99))
}

/// Runs every future as its own task; all their results, or the first error.
async fn futures_join<F, T>(futs: impl Iterator<Item = F>) -> Result<Vec<T>>
where
    F: std::future::Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await??);
    }
    Ok(out)
}

pub async fn run(args: Args) -> Result<()> {
    let (rounds, warmup, window, conns, n_sessions, rt_sends) = if args.smoke {
        (1, 50, 150, 8, 8, 50)
    } else if args.quick {
        (2, 200, 1000, 64, 200, 1000)
    } else {
        (5, 500, 2000, 64, 1000, 5000)
    };
    let rounds = args.rounds.unwrap_or(rounds).max(1);
    let window = Duration::from_millis(args.window_ms.unwrap_or(window));
    let warmup = Duration::from_millis(warmup);
    procs::raise_nofile();
    let bin = procs::sibling(args.server_bin.clone(), "nexus-server")?;
    let tmp = tempfile::Builder::new().prefix("nexus-bench").tempdir()?;
    let redis = Redis::start("everysec")?;
    let start = |name: &str, redis_url: Option<&str>| -> Result<Server> {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let mut a: Vec<String> = [
            "--port",
            "0",
            "--rate-limit-per-minute",
            "0",
            "--max-messages-per-session",
            "100000000",
            "--log",
            &args.server_log,
            "--data-dir",
            &dir.to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(url) = redis_url {
            a.extend(["--redis-url".to_owned(), url.to_owned()]);
        }
        Server::start(&bin, &a)
    };
    let embedded = start("embedded", None)?;
    let url = redis.url();
    let node_a = start("redis-a", Some(&url))?;
    let node_b = start("redis-b", Some(&url))?;
    eprintln!(
        "redis-backend bench: embedded {}, redis nodes {} {}, redis {url}; {rounds} rounds of {window:?}, {conns} connections",
        embedded.url, node_a.url, node_b.url
    );

    let embedded_sessions = Arc::new(sessions(embedded.addr, n_sessions).await?);
    let redis_sessions = Arc::new(sessions(node_a.addr, n_sessions).await?);
    let targets: [(&str, Vec<SocketAddr>, MakeReq); 3] = [
        (
            "embedded, 1 node",
            vec![embedded.addr],
            sender(embedded_sessions),
        ),
        (
            "redis, 1 node",
            vec![node_a.addr],
            sender(redis_sessions.clone()),
        ),
        (
            "redis, 2 nodes",
            vec![node_a.addr, node_b.addr],
            sender(redis_sessions.clone()),
        ),
    ];
    let mut rps: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut p99: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut errors = vec![0u64; targets.len()];
    for round in 0..rounds {
        for (i, (name, nodes, make)) in targets.iter().enumerate() {
            let (r, e, p) = run_sends(nodes, conns, warmup, window, make).await?;
            eprintln!(
                "round {}: {name}: {r:.0} sends/s, p99 {p:.2} ms, {e} errors",
                round + 1
            );
            rps[i].push(r);
            p99[i].push(p);
            errors[i] += e;
        }
    }

    // Round trips: Redis counts the commands it receives.
    let before = redis.command_calls()?;
    let batch_started = Instant::now();
    load::batch(
        node_a.addr,
        16,
        rt_sends,
        StatusCode::CREATED,
        Arc::new({
            let make = sender(redis_sessions);
            move |i| make(i % 16, (i / 16) as u64)
        }),
    )
    .await?;
    let batch_secs = batch_started.elapsed().as_secs_f64();
    let after = redis.command_calls()?;
    let delta = |name: &str| {
        let get = |v: &[(String, u64)]| v.iter().find(|(n, _)| n == name).map_or(0, |c| c.1);
        get(&after).saturating_sub(get(&before))
    };
    // Everything else Redis counted during the batch ran inside the scripts.
    let scripted: Vec<String> = after
        .iter()
        .filter(|(n, _)| !["evalsha", "eval", "info", "script|load"].contains(&n.as_str()))
        .filter(|(n, _)| delta(n) > 0)
        .map(|(n, _)| format!("{n} ×{:.1}", delta(n) as f64 / rt_sends as f64))
        .collect();
    let client_cmds = delta("evalsha") + delta("eval") + delta("script|load");
    let per_send = client_cmds as f64 / rt_sends as f64;

    let mut out = String::new();
    out.push_str(
        "| target | sends/s (median) | rounds | p99 ms (median) | errors | vs embedded |\n",
    );
    out.push_str("|---|---:|---|---:|---:|---:|\n");
    let base = median(rps[0].clone());
    for (i, (name, _, _)) in targets.iter().enumerate() {
        let m = median(rps[i].clone());
        out.push_str(&format!(
            "| {name} | {m:.0} | {} | {:.2} | {} | {:.2} |\n",
            rps[i]
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(" "),
            median(p99[i].clone()),
            errors[i],
            m / base
        ));
    }
    let one_node = median(rps[1].clone()) / base;
    out.push_str(&format!(
        "\n| figure | value | target | |\n|---|---:|---|---|\n\
         | Redis round trips per send (client commands / sends, {rt_sends} sends in {batch_secs:.2} s) | {per_send:.2} ({} EVALSHA) | 1 | {} |\n\
         | one Redis node / embedded node | {one_node:.2} | ≥ 0.5 | {} |\n",
        delta("evalsha"),
        if (per_send - 1.0).abs() < 0.01 { "met" } else { "MISSED" },
        if one_node >= 0.5 { "met" } else { "MISSED" },
    ));
    out.push_str(&format!(
        "\ncommands run inside the script, per send (not round trips): {}\n",
        scripted.join(", ")
    ));
    println!("\n{out}");

    for s in [embedded, node_a, node_b] {
        s.stop()?;
    }
    Ok(())
}
