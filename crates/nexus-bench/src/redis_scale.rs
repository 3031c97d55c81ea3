//! `--only redis` (issue 7): send throughput of the relay on its embedded store, on one
//! Redis-backed node and on two Redis-backed nodes sharing one Redis, and the Redis round trips a
//! send costs. It starts its own `redis-server` (Debian package; `--appendonly yes
//! --appendfsync everysec`, the setting docs/DEPLOYMENT.md recommends) on a free loopback port,
//! and the relays as child processes, and alternates the three targets round by round.
//!
//! Round trips per send are counted by Redis itself: `INFO commandstats` before and after a batch
//! of sends (client commands: `EVALSHA` and anything else a node sent; commands run inside the
//! scripts are listed separately). CPU per send (`/proc/<pid>/task/*/schedstat` of the relay
//! nodes and redis-server over each run) is the figure that holds on a busy machine: on a
//! CPU-bound box, throughput is inversely proportional to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use hyper::StatusCode;

use crate::load::{self, LoadResult, MakeReq, request};
use crate::procs::{self, Server};
use crate::scenarios::{Sess, create_sessions};
use crate::{Args, SEND_TEXT};

/// A `redis-server` child on a free loopback port; killed on drop.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts redis-server; on CPU `cpu` alone (through `taskset`) when given.
    fn start(fsync: &str, cpu: Option<usize>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("nexus-bench-redis")
            .tempdir()?;
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut cmd = match cpu {
                Some(c) => {
                    let mut cmd = Command::new("taskset");
                    cmd.args(["-c", &c.to_string(), "redis-server"]);
                    cmd
                }
                None => Command::new("redis-server"),
            };
            let mut child = cmd
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "yes", "--appendfsync", fsync])
                .args(["--loglevel", "warning"])
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context(
                    "run redis-server (Debian package redis-server; taskset from util-linux)",
                )?;
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

/// CPU time (ns) a process has used so far, all threads (`/proc/<pid>/task/*/schedstat`).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Closed-loop sends spread over `nodes` (address and pid; connections split evenly), summed.
async fn run_sends(
    nodes: &[(SocketAddr, u32)],
    conns: usize,
    warmup: Duration,
    window: Duration,
    make: &MakeReq,
) -> Result<(f64, u64, f64)> {
    let per = (conns / nodes.len()).max(1);
    let runs = nodes.iter().map(|(addr, pid)| {
        load::closed_loop(
            *addr,
            *pid,
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

/// Where the processes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// Everything shares every CPU (the relays, Redis and the load generator compete).
    Shared,
    /// The load generator and the relay(s) on CPU 0, Redis alone on CPU 1: a node whose Redis
    /// runs elsewhere, against an embedded node with the same CPU.
    RedisApart,
}

impl Placement {
    fn label(self) -> &'static str {
        match self {
            Placement::Shared => "all processes share both CPUs",
            Placement::RedisApart => "relay(s) + load generator on CPU 0, Redis alone on CPU 1",
        }
    }
}

/// Pins every thread of this process (and so the children it starts next) to `cpus`.
fn pin_self(cpus: &[usize]) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the libc calls only read it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in cpus {
            libc::CPU_SET(*c, &mut set);
        }
        for task in std::fs::read_dir("/proc/self/task")? {
            let tid: libc::pid_t = task?.file_name().to_string_lossy().parse()?;
            if libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                bail!("sched_setaffinity: {}", std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

struct Sizes {
    rounds: usize,
    warmup: Duration,
    window: Duration,
    conns: usize,
    sessions: usize,
    rt_sends: usize,
}

/// Per target: sends/s, p99 ms and CPU µs per send of each round, and errors.
#[derive(Default, Clone)]
struct Series {
    rps: Vec<f64>,
    p99: Vec<f64>,
    cpu_us: Vec<f64>,
    errors: u64,
}

const TARGETS: [&str; 3] = ["embedded, 1 node", "redis, 1 node", "redis, 2 nodes"];

/// The three targets under one placement; with `round_trips`, also counts Redis commands per send.
async fn measure(
    args: &Args,
    sizes: &Sizes,
    placement: Placement,
    round_trips: bool,
    out: &mut String,
) -> Result<Vec<Series>> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let redis_cpu = match placement {
        Placement::RedisApart if cpus >= 2 => {
            pin_self(&[0])?;
            Some(1)
        }
        Placement::RedisApart => bail!("placing Redis apart needs two CPUs"),
        Placement::Shared => {
            pin_self(&(0..cpus).collect::<Vec<_>>())?;
            None
        }
    };
    let bin = procs::sibling(args.server_bin.clone(), "nexus-server")?;
    let tmp = tempfile::Builder::new().prefix("nexus-bench").tempdir()?;
    let redis = Redis::start("everysec", redis_cpu)?;
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
        "{}: embedded {}, redis nodes {} {}, redis {url}; {} rounds of {:?}, {} connections",
        placement.label(),
        embedded.url,
        node_a.url,
        node_b.url,
        sizes.rounds,
        sizes.window,
        sizes.conns
    );

    let embedded_sessions =
        Arc::new(create_sessions(embedded.addr, sizes.sessions, "bench").await?);
    let redis_sessions = Arc::new(create_sessions(node_a.addr, sizes.sessions, "bench").await?);
    let targets: [(Vec<(SocketAddr, u32)>, MakeReq); 3] = [
        (
            vec![(embedded.addr, embedded.pid())],
            sender(embedded_sessions),
        ),
        (
            vec![(node_a.addr, node_a.pid())],
            sender(redis_sessions.clone()),
        ),
        (
            vec![(node_a.addr, node_a.pid()), (node_b.addr, node_b.pid())],
            sender(redis_sessions.clone()),
        ),
    ];
    // The processes whose CPU a target's sends cost (the load generator, this process, is the
    // same for every target and left out).
    let pids: [Vec<u32>; 3] = [
        vec![embedded.pid()],
        vec![node_a.pid(), redis.child.id()],
        vec![node_a.pid(), node_b.pid(), redis.child.id()],
    ];
    let mut series = vec![Series::default(); TARGETS.len()];
    for round in 0..sizes.rounds {
        for (i, (nodes, make)) in targets.iter().enumerate() {
            let cpu_before: Vec<u64> = pids[i].iter().map(|p| cpu_ns(*p)).collect();
            let started = Instant::now();
            let (r, e, p) = run_sends(nodes, sizes.conns, sizes.warmup, sizes.window, make).await?;
            let elapsed = started.elapsed().as_secs_f64();
            // Sends over the whole run (warm-up and connection set-up included) ≈ rate × time.
            let sends = (r * elapsed).max(1.0);
            let each: Vec<f64> = pids[i]
                .iter()
                .zip(&cpu_before)
                .map(|(p, before)| cpu_ns(*p).saturating_sub(*before) as f64 / 1000.0 / sends)
                .collect();
            let per_send: f64 = each.iter().sum();
            let split: Vec<String> = each.iter().map(|us| format!("{us:.0}")).collect();
            eprintln!(
                "round {}: {}: {r:.0} sends/s, p99 {p:.2} ms, {per_send:.0} µs CPU per send ({} µs: relay node(s), then Redis), {e} errors",
                round + 1,
                TARGETS[i],
                split.join(" + ")
            );
            series[i].rps.push(r);
            series[i].p99.push(p);
            series[i].cpu_us.push(per_send);
            series[i].errors += e;
        }
    }

    if round_trips {
        // Round trips: Redis counts the commands it receives.
        let before = redis.command_calls()?;
        let batch_started = Instant::now();
        load::batch(
            node_a.addr,
            16,
            sizes.rt_sends,
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
        let n = sizes.rt_sends as f64;
        let scripted: Vec<String> = after
            .iter()
            .filter(|(n, _)| !["evalsha", "eval", "info", "script|load"].contains(&n.as_str()))
            .filter(|(n, _)| delta(n) > 0)
            .map(|(name, _)| format!("{name} ×{:.1}", delta(name) as f64 / n))
            .collect();
        let client_cmds = delta("evalsha") + delta("eval") + delta("script|load");
        let per_send = client_cmds as f64 / n;
        out.push_str(&format!(
            "| Redis round trips per send (client commands / sends; {} sends in {batch_secs:.2} s) | {per_send:.2} ({} EVALSHA) | 1 | {} |\n",
            sizes.rt_sends,
            delta("evalsha"),
            if (per_send - 1.0).abs() < 0.01 { "met" } else { "MISSED" },
        ));
        eprintln!(
            "commands run inside the script, per send (not round trips): {}",
            scripted.join(", ")
        );
    }

    for s in [embedded, node_a, node_b] {
        s.stop()?;
    }
    Ok(series)
}

pub async fn run(args: Args) -> Result<()> {
    let (rounds, warmup, window, conns, sessions, rt_sends) = if args.smoke {
        (1, 50, 150, 8, 8, 50)
    } else if args.quick {
        (2, 200, 1000, 64, 200, 1000)
    } else {
        (5, 500, 2000, 64, 1000, 5000)
    };
    let sizes = Sizes {
        rounds: args.rounds.unwrap_or(rounds).max(1),
        warmup: Duration::from_millis(warmup),
        window: Duration::from_millis(args.window_ms.unwrap_or(window)),
        conns,
        sessions,
        rt_sends,
    };
    procs::raise_nofile();
    let mut figures = String::new();
    let mut tables = String::new();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let placements: &[Placement] = if cpus >= 2 {
        &[Placement::Shared, Placement::RedisApart]
    } else {
        &[Placement::Shared]
    };
    for (k, placement) in placements.iter().enumerate() {
        let series = measure(&args, &sizes, *placement, k == 0, &mut figures).await?;
        tables.push_str(&format!(
            "\n{}:\n\n| target | sends/s (median) | rounds | vs embedded | p99 ms | CPU µs per send (relay + Redis) | errors |\n|---|---:|---|---:|---:|---:|---:|\n",
            placement.label()
        ));
        let base = median(series[0].rps.clone());
        for (name, s) in TARGETS.iter().zip(&series) {
            let m = median(s.rps.clone());
            let rounds: Vec<String> = s.rps.iter().map(|r| format!("{r:.0}")).collect();
            tables.push_str(&format!(
                "| {name} | {m:.0} | {} | {:.2} | {:.2} | {:.0} | {} |\n",
                rounds.join(" "),
                m / base,
                median(s.p99.clone()),
                median(s.cpu_us.clone()),
                s.errors,
            ));
        }
        let one_node = median(series[1].rps.clone()) / base;
        figures.push_str(&format!(
            "| one Redis-backed node / embedded node, sends/s ({}) | {one_node:.2} | ≥ 0.5 | {} |\n",
            placement.label(),
            if one_node >= 0.5 { "met" } else { "MISSED" },
        ));
    }
    pin_self(&(0..cpus).collect::<Vec<_>>())?;
    println!("{tables}\n| figure | value | target | |\n|---|---:|---|---|\n{figures}");
    Ok(())
}
