//! The scenarios of issue 6 and the tables they print.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::Value;

use crate::load::{self, Conn, LoadResult, MakeReq, percentile, request};
use crate::procs::{self, Server};
use crate::{Args, SEND_TEXT};

/// Sizes of one run.
#[derive(Clone, Debug)]
struct Sizes {
    rounds: usize,
    warmup: Duration,
    window: Duration,
    conns: Vec<usize>,
    send_sessions: usize,
    poll_sessions: usize,
    poll_prefill: usize,
    poll_limit: usize,
    waiters: Vec<usize>,
    wake_samples: usize,
    idle_sessions: usize,
    stored_messages: usize,
    pair_conns: usize,
    cli_reps: usize,
}

impl Sizes {
    fn full() -> Self {
        Self {
            rounds: 5,
            warmup: Duration::from_millis(500),
            window: Duration::from_secs(2),
            conns: vec![64, 1024],
            send_sessions: 1000,
            poll_sessions: 100,
            poll_prefill: 60,
            poll_limit: 10,
            waiters: vec![1000, 10_000],
            wake_samples: 400,
            idle_sessions: 100_000,
            stored_messages: 100_000,
            pair_conns: 64,
            cli_reps: 20,
        }
    }
    fn quick() -> Self {
        Self {
            rounds: 2,
            warmup: Duration::from_millis(200),
            send_sessions: 200,
            wake_samples: 150,
            window: Duration::from_millis(700),
            waiters: vec![1000, 2000],
            idle_sessions: 5_000,
            stored_messages: 10_000,
            cli_reps: 5,
            ..Self::full()
        }
    }
    fn smoke() -> Self {
        Self {
            rounds: 1,
            warmup: Duration::from_millis(50),
            window: Duration::from_millis(150),
            conns: vec![4, 16],
            send_sessions: 8,
            poll_sessions: 4,
            poll_prefill: 12,
            poll_limit: 5,
            waiters: vec![10, 20],
            wake_samples: 5,
            idle_sessions: 100,
            stored_messages: 100,
            pair_conns: 4,
            cli_reps: 1,
        }
    }
}

/// One session as the bench uses it: its id, the creator's agent id and key.
#[derive(Clone, Debug)]
pub(crate) struct Sess {
    pub(crate) id: String,
    pub(crate) agent: String,
    pub(crate) key: String,
}

fn json(b: &[u8]) -> Result<Value> {
    serde_json::from_slice(b).with_context(|| format!("bad JSON: {}", String::from_utf8_lossy(b)))
}

/// Creates `n` sessions, each with its own creator (so each has a key), `conns` at a time.
pub(crate) async fn create_sessions(addr: SocketAddr, n: usize, prefix: &str) -> Result<Vec<Sess>> {
    let prefix = prefix.to_owned();
    let p2 = prefix.clone();
    let bodies = load::batch(
        addr,
        64,
        n,
        StatusCode::CREATED,
        Arc::new(move |i| {
            let body = format!(r#"{{"creatorAgentId":"{p2}-{i}","ttl":86400}}"#);
            request("PUT", "/v1/sessions", &[], Bytes::from(body))
        }),
    )
    .await?;
    bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let v = json(b)?;
            Ok(Sess {
                id: v["sessionId"]
                    .as_str()
                    .ok_or_else(|| anyhow!("no sessionId"))?
                    .to_owned(),
                agent: format!("{prefix}-{i}"),
                key: v["sessionKey"]
                    .as_str()
                    .ok_or_else(|| anyhow!("no sessionKey"))?
                    .to_owned(),
            })
        })
        .collect()
}

fn send_req(s: &Sess, body: Bytes) -> load::Req {
    request(
        "POST",
        &format!("/v1/sessions/{}/messages", s.id),
        &[("x-agent-id", &s.agent), ("x-session-key", &s.key)],
        body,
    )
}

fn send_body() -> Bytes {
    Bytes::from(serde_json::json!({ "text": SEND_TEXT }).to_string())
}

/// Median of finite values.
fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Per-round figures of one target in one throughput scenario.
#[derive(Default)]
struct Series {
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    p999: Vec<f64>,
    cpu_us: Vec<f64>,
    errors: u64,
}

impl Series {
    fn push(&mut self, mut r: LoadResult) {
        self.rps.push(r.rps());
        self.cpu_us.push(r.cpu_us_per_request());
        self.p50.push(r.pct(0.50) / 1000.0);
        self.p99.push(r.pct(0.99) / 1000.0);
        self.p999.push(r.pct(0.999) / 1000.0);
        self.errors += r.errors;
    }
    fn lat(&self) -> String {
        format!(
            "{:.2} / {:.2} / {:.2}",
            median(&self.p50),
            median(&self.p99),
            median(&self.p999)
        )
    }
}

struct Throughput {
    name: String,
    conns: usize,
    nexus: Series,
    base: Series,
    ratios: Vec<f64>,
}

/// Everything the run measured, printed at the end.
#[derive(Default)]
struct Report {
    throughput: Vec<Throughput>,
    /// (figure, value, target, verdict)
    figures: Vec<(String, String, String, String)>,
}

impl Report {
    fn figure(&mut self, name: &str, value: String, target: &str, met: Option<bool>) {
        let verdict = match met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        eprintln!("  {name}: {value}");
        self.figures
            .push((name.into(), value, target.into(), verdict.into()));
    }

    fn print(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| scenario | conns | nexus req/s | baseline req/s | nexus / baseline | nexus p50 / p99 / p99.9 ms | baseline p50 / p99 / p99.9 ms | server CPU µs/req nexus / baseline | errors |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for t in &self.throughput {
            let (cpu_a, cpu_b) = (median(&t.nexus.cpu_us), median(&t.base.cpu_us));
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.2} (rounds {}) | {} | {} | {:.1} / {:.1} = {:.2} | {} |",
                t.name,
                t.conns,
                median(&t.nexus.rps),
                median(&t.base.rps),
                median(&t.ratios),
                t.ratios
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                t.nexus.lat(),
                t.base.lat(),
                cpu_a,
                cpu_b,
                cpu_a / cpu_b,
                t.nexus.errors + t.base.errors,
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "| figure | value | target | |");
        let _ = writeln!(out, "|---|---:|---|---|");
        for (n, v, t, m) in &self.figures {
            let _ = writeln!(out, "| {n} | {v} | {t} | {m} |");
        }
        out
    }
}

struct Ctx {
    args: Args,
    sizes: Sizes,
    server_bin: PathBuf,
    cli_bin: PathBuf,
    bench_bin: PathBuf,
    tmp: tempfile::TempDir,
    report: Report,
}

impl Ctx {
    fn wants(&self, s: &str) -> bool {
        self.args.only.is_empty() || self.args.only.iter().any(|o| o == s)
    }

    fn start_nexus(&self, name: &str, extra: &[&str]) -> Result<Server> {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let mut a: Vec<String> = [
            "--port",
            "0",
            "--rate-limit-per-minute",
            "0",
            "--data-dir",
            &dir.to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        Server::start(&self.server_bin, &a)
    }

    fn start_baseline(&self) -> Result<Server> {
        Server::start(
            &self.bench_bin,
            &["baseline-server".into(), "--port".into(), "0".into()],
        )
    }
}

pub async fn run(args: Args) -> Result<()> {
    let sizes = if args.smoke {
        Sizes::smoke()
    } else if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let mut sizes = sizes;
    if let Some(r) = args.rounds {
        sizes.rounds = r.max(1);
    }
    if let Some(w) = args.window_ms {
        sizes.window = Duration::from_millis(w);
    }
    let nofile = procs::raise_nofile();
    let need = sizes.waiters.iter().max().copied().unwrap_or(0) + 1100;
    if nofile < need as u64 {
        eprintln!(
            "warning: RLIMIT_NOFILE is {nofile}; {need} needed for the long-poll scenario: parked waiters are capped"
        );
    }
    let server_bin = procs::sibling(args.server_bin.clone(), "nexus-server")?;
    let cli_bin = procs::sibling(args.cli_bin.clone(), "nexus")?;
    let bench_bin = match &args.baseline_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?,
    };
    let mut ctx = Ctx {
        args,
        sizes,
        server_bin,
        cli_bin,
        bench_bin,
        tmp: tempfile::Builder::new().prefix("nexus-bench").tempdir()?,
        report: Report::default(),
    };
    let started = Instant::now();
    eprintln!(
        "nexus-bench: server {}, rounds {}, window {:?}, fd limit {nofile}",
        ctx.server_bin.display(),
        ctx.sizes.rounds,
        ctx.sizes.window
    );

    let mut result = Ok(());
    if ctx.wants("send") || ctx.wants("poll") || ctx.wants("pair") || ctx.wants("cli") {
        result = throughput(&mut ctx).await;
    }
    if result.is_ok() && ctx.wants("memory") {
        result = stored_messages(&mut ctx).await;
    }
    if result.is_ok() && (ctx.wants("memory") || ctx.wants("longpoll") || ctx.wants("restart")) {
        result = sessions_waiters_restart(&mut ctx).await;
    }
    // Whatever was measured is printed below, even when a later scenario failed.

    let table = ctx.report.print();
    println!("\n{table}");
    eprintln!(
        "nexus-bench: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    result
}

/// Sends, polls, pairing and the CLI against one relay (fresh, with a data dir) and the baseline.
async fn throughput(ctx: &mut Ctx) -> Result<()> {
    let s = ctx.sizes.clone();
    let log = ctx.args.server_log.clone();
    let nexus = ctx.start_nexus(
        "throughput",
        &["--max-messages-per-session", "100000000", "--log", &log],
    )?;
    let base = ctx.start_baseline()?;
    eprintln!(
        "relay {} (pid {}), baseline {} (pid {})",
        nexus.url,
        nexus.pid(),
        base.url,
        base.pid()
    );

    let sessions = Arc::new(create_sessions(nexus.addr, s.send_sessions, "sender").await?);
    let body = send_body();

    if ctx.wants("send") {
        for &c in &s.conns {
            let (ss, b) = (sessions.clone(), body.clone());
            let make: MakeReq = Arc::new(move |conn, seq| {
                let i = (conn + seq as usize * 7919) % ss.len();
                send_req(&ss[i], b.clone())
            });
            let t = alternate(
                ctx,
                "verified send",
                c,
                &nexus,
                &base,
                StatusCode::CREATED,
                make,
            )
            .await?;
            ctx.report.throughput.push(t);
        }
    }

    if ctx.wants("poll") {
        // Fill a few sessions, remember the cursors, poll pages of `poll_limit` after a cursor.
        let ps: Vec<Sess> = sessions.iter().take(s.poll_sessions).cloned().collect();
        let (ps2, b) = (ps.clone(), body.clone());
        let n = ps.len() * s.poll_prefill;
        let replies = load::batch(
            nexus.addr,
            ps.len().min(64),
            n,
            StatusCode::CREATED,
            Arc::new(move |i| send_req(&ps2[i % ps2.len()], b.clone())),
        )
        .await?;
        let mut cursors: Vec<Vec<String>> = vec![Vec::new(); ps.len()];
        for (i, r) in replies.iter().enumerate() {
            let v = json(r)?;
            cursors[i % ps.len()].push(v["cursor"].as_str().unwrap_or("0").to_owned());
        }
        let uris: Arc<Vec<Vec<(String, String)>>> = Arc::new(
            ps.iter()
                .zip(&cursors)
                .map(|(p, cs)| {
                    let mut cs = cs.clone();
                    cs.sort_by_key(|c| c.parse::<u64>().unwrap_or(0));
                    cs[..cs.len().saturating_sub(s.poll_limit).max(1)]
                        .iter()
                        .map(|c| {
                            (
                                format!(
                                    "/v1/sessions/{}/messages?after={c}&limit={}",
                                    p.id, s.poll_limit
                                ),
                                p.agent.clone(),
                            )
                        })
                        .collect()
                })
                .collect(),
        );
        // The relay pages hold this many messages; the baseline answers the same number.
        for &c in &s.conns {
            let u = uris.clone();
            let make: MakeReq = Arc::new(move |conn, seq| {
                let sess = &u[(conn + seq as usize) % u.len()];
                let (uri, agent) = &sess[(seq as usize * 7 + conn) % sess.len()];
                request("GET", uri, &[("x-agent-id", agent)], Bytes::new())
            });
            let t = alternate(
                ctx,
                "poll after cursor",
                c,
                &nexus,
                &base,
                StatusCode::OK,
                make,
            )
            .await?;
            ctx.report.throughput.push(t);
        }
    }

    if ctx.wants("pair") {
        pairing(ctx, &nexus).await?;
    }
    if ctx.wants("cli") {
        cli(ctx, &nexus).await?;
    }
    let rss = nexus.rss_kib()?;
    ctx.report.figure(
        "relay RSS after the throughput scenarios",
        format!("{:.1} MiB", rss as f64 / 1024.0),
        "",
        None,
    );
    nexus.stop()?;
    base.stop()?;
    Ok(())
}

/// Runs the same load against the relay (A) and the baseline (B), A B A B …
async fn alternate(
    ctx: &Ctx,
    name: &str,
    conns: usize,
    nexus: &Server,
    base: &Server,
    expect: StatusCode,
    make: MakeReq,
) -> Result<Throughput> {
    let s = &ctx.sizes;
    let mut t = Throughput {
        name: name.into(),
        conns,
        nexus: Series::default(),
        base: Series::default(),
        ratios: Vec::new(),
    };
    for round in 0..s.rounds {
        let a = load::closed_loop(
            nexus.addr,
            nexus.pid(),
            conns,
            s.warmup,
            s.window,
            expect,
            make.clone(),
        )
        .await?;
        let b = load::closed_loop(
            base.addr,
            base.pid(),
            conns,
            s.warmup,
            s.window,
            expect,
            make.clone(),
        )
        .await?;
        let ratio = a.rps() / b.rps();
        eprintln!(
            "{name} x{conns} round {}: nexus {:.0}/s ({} errors, {:.1} µs CPU/req), baseline {:.0}/s ({:.1} µs CPU/req), ratio {ratio:.2}",
            round + 1,
            a.rps(),
            a.errors,
            a.cpu_us_per_request(),
            b.rps(),
            b.cpu_us_per_request(),
        );
        if a.ok == 0 {
            bail!("{name}: no successful request against the relay");
        }
        t.ratios.push(ratio);
        t.nexus.push(a);
        t.base.push(b);
    }
    Ok(t)
}

/// Pairing flows per second: create session, create code, claim, each flow on one connection.
async fn pairing(ctx: &mut Ctx, nexus: &Server) -> Result<()> {
    let s = ctx.sizes.clone();
    let mut rates = Vec::new();
    let mut errors = 0u64;
    for _ in 0..s.rounds {
        let pool = load::open_many(nexus.addr, s.pair_conns).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let (from, until) = (start + s.warmup, start + s.warmup + s.window);
        let mut tasks = Vec::new();
        for (i, mut conn) in pool.into_iter().enumerate() {
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let (mut flows, mut errs) = (0u64, 0u64);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    match pair_flow(&mut conn, i, n).await {
                        Ok(()) => {
                            let t = Instant::now();
                            if t >= from && t <= until {
                                flows += 1;
                            }
                            if t > until {
                                break;
                            }
                        }
                        Err(_) => {
                            errs += 1;
                            break;
                        }
                    }
                }
                (flows, errs)
            }));
        }
        tokio::time::sleep_until(until.into()).await;
        stop.store(true, Ordering::Relaxed);
        let mut flows = 0;
        for t in tasks {
            let (f, e) = t.await?;
            flows += f;
            errors += e;
        }
        let rate = flows as f64 / s.window.as_secs_f64();
        eprintln!("pairing x{}: {rate:.0} flows/s", s.pair_conns);
        rates.push(rate);
    }
    ctx.report.figure(
        &format!(
            "pairing flows/s (create + code + claim, {} conns)",
            s.pair_conns
        ),
        format!("{:.0} (errors {errors})", median(&rates)),
        "",
        None,
    );
    Ok(())
}

async fn pair_flow(conn: &mut Conn, i: usize, n: u64) -> Result<()> {
    let body = format!(r#"{{"creatorAgentId":"pc{i}x{n}"}}"#);
    let (st, b) = conn
        .call(request("PUT", "/v1/sessions", &[], Bytes::from(body)))
        .await?;
    if st != StatusCode::CREATED {
        bail!("create: {st}");
    }
    let sid = json(&b)?["sessionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let body = format!(r#"{{"sessionId":"{sid}"}}"#);
    let (st, b) = conn
        .call(request("PUT", "/v1/pair", &[], Bytes::from(body)))
        .await?;
    if st != StatusCode::CREATED {
        bail!("pair: {st}");
    }
    let code = json(&b)?["code"].as_str().unwrap_or_default().to_owned();
    let (st, _) = conn
        .call(request(
            "POST",
            &format!("/v1/pair/{code}/claim"),
            &[("x-agent-id", "claimer")],
            Bytes::new(),
        ))
        .await?;
    if st != StatusCode::OK {
        bail!("claim: {st}");
    }
    Ok(())
}

fn wall(cmd: &mut Command) -> Result<Duration> {
    let t0 = Instant::now();
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    let d = t0.elapsed();
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(d)
}

/// `nexus send` / `nexus poll` wall time next to `curl` doing the same request.
async fn cli(ctx: &mut Ctx, nexus: &Server) -> Result<()> {
    let reps = ctx.sizes.cli_reps;
    let home = ctx.tmp.path().join("nexus-home");
    std::fs::create_dir_all(&home)?;
    let nexus_cmd = |args: &[&str]| {
        let mut c = Command::new(&ctx.cli_bin);
        c.args(args)
            .env("NEXUS_HOME", &home)
            .env("NEXUS_URL", &nexus.url);
        c
    };
    let out = nexus_cmd(&["create", "--creator-agent-id", "clibench", "--quiet"]).output()?;
    if !out.status.success() {
        bail!(
            "nexus create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let sid = json(&out.stdout)?["sessionId"]
        .as_str()
        .ok_or_else(|| anyhow!("nexus create printed no sessionId"))?
        .to_owned();
    let curl_sess = create_sessions(nexus.addr, 1, "curlbench").await?.remove(0);
    let send_url = format!("{}/v1/sessions/{}/messages", nexus.url, curl_sess.id);
    let poll_url = format!("{send_url}?after=0");
    let (mut ns, mut cs, mut np, mut cp) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // One extra round first, dropped below: it pages in the binaries and libraries of both clients.
    for _ in 0..=reps {
        ns.push(ms(wall(&mut nexus_cmd(&[
            "send",
            &sid,
            "hello from the cli",
            "--quiet",
        ]))?));
        cs.push(ms(wall(Command::new("curl").args([
            "-sS",
            "-f",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            &send_url,
            "-H",
            &format!("X-Agent-Id: {}", curl_sess.agent),
            "-H",
            &format!("X-Session-Key: {}", curl_sess.key),
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"text":"hello from the cli"}"#,
        ]))?));
        np.push(ms(wall(&mut nexus_cmd(&[
            "poll", &sid, "--after", "0", "--quiet",
        ]))?));
        cp.push(ms(wall(Command::new("curl").args([
            "-sS",
            "-f",
            "-o",
            "/dev/null",
            &poll_url,
            "-H",
            &format!("X-Agent-Id: {}", curl_sess.agent),
        ]))?));
    }
    let (ns, cs, np, cp) = (
        median(&ns[1..]),
        median(&cs[1..]),
        median(&np[1..]),
        median(&cp[1..]),
    );
    ctx.report.figure(
        "`nexus send` / `curl` wall time (median)",
        format!("{ns:.1} ms / {cs:.1} ms = {:.2}", ns / cs),
        "<= 2",
        Some(ns / cs <= 2.0),
    );
    ctx.report.figure(
        "`nexus poll` / `curl` wall time (median)",
        format!("{np:.1} ms / {cp:.1} ms = {:.2}", np / cp),
        "<= 2",
        Some(np / cp <= 2.0),
    );
    Ok(())
}

/// RSS per stored 1 KiB message.
async fn stored_messages(ctx: &mut Ctx) -> Result<()> {
    let s = ctx.sizes.clone();
    let nexus = ctx.start_nexus(
        "messages",
        &["--max-messages-per-session", "100000000", "--log", "warn"],
    )?;
    let sessions = Arc::new(create_sessions(nexus.addr, 100.min(s.stored_messages), "m").await?);
    let text: String = "x".repeat(1024);
    let body = Bytes::from(serde_json::json!({ "text": text }).to_string());
    // Warm the allocator and the connections with a small batch first.
    let (ss, b) = (sessions.clone(), body.clone());
    let mk: Arc<dyn Fn(usize) -> load::Req + Send + Sync> =
        Arc::new(move |i| send_req(&ss[i % ss.len()], b.clone()));
    load::batch(
        nexus.addr,
        64,
        1000.min(s.stored_messages),
        StatusCode::CREATED,
        mk.clone(),
    )
    .await?;
    settle().await;
    let before = nexus.rss_kib()?;
    load::batch(nexus.addr, 64, s.stored_messages, StatusCode::CREATED, mk).await?;
    settle().await;
    let after = nexus.rss_kib()?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / s.stored_messages as f64;
    ctx.report.figure(
        &format!(
            "RSS per stored 1 KiB message ({} messages)",
            s.stored_messages
        ),
        format!("{per:.0} B ({:.0} B over the 1024 B text)", per - 1024.0),
        "",
        None,
    );
    nexus.stop()?;
    Ok(())
}

/// Lets the server finish background work (journal flushes) before an RSS reading.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

/// Idle sessions (RSS per session), parked waiters (wake latency, RSS per waiter), restart.
async fn sessions_waiters_restart(ctx: &mut Ctx) -> Result<()> {
    let s = ctx.sizes.clone();
    let max = (s.idle_sessions + 1000).to_string();
    let extra = ["--max-sessions", max.as_str(), "--log", "warn"];
    let nexus = ctx.start_nexus("big", &extra)?;
    let health = |addr| async move {
        let mut c = Conn::open(addr).await?;
        let (st, _) = c.call(request("GET", "/health", &[], Bytes::new())).await?;
        anyhow::ensure!(st == StatusCode::OK, "health: {st}");
        Ok::<_, anyhow::Error>(())
    };
    health(nexus.addr).await?;
    create_sessions(nexus.addr, 100, "warm").await?;
    settle().await;
    let rss0 = nexus.rss_kib()?;
    let t0 = Instant::now();
    let sessions = create_sessions(nexus.addr, s.idle_sessions, "idle").await?;
    let create_secs = t0.elapsed().as_secs_f64();
    settle().await;
    let rss1 = nexus.rss_kib()?;
    let per_session = (rss1.saturating_sub(rss0)) as f64 * 1024.0 / s.idle_sessions as f64;
    ctx.report.figure(
        &format!(
            "session creates/s (setup of {} sessions, 64 conns)",
            s.idle_sessions
        ),
        format!("{:.0}", s.idle_sessions as f64 / create_secs),
        "",
        None,
    );
    ctx.report.figure(
        &format!("RSS per idle session ({} sessions)", s.idle_sessions),
        format!("{per_session:.0} B"),
        "< 2 KiB",
        Some(per_session < 2048.0),
    );

    if ctx.wants("longpoll") || ctx.wants("memory") {
        longpoll(ctx, &nexus, &sessions, rss1).await?;
    }

    if ctx.wants("restart") {
        let stop = nexus.stop()?;
        let t0 = Instant::now();
        let again = ctx.start_nexus("big", &extra)?;
        let listening = again.started_in;
        loop {
            if health(again.addr).await.is_ok() {
                break;
            }
            if t0.elapsed() > Duration::from_secs(120) {
                bail!("no /health answer 120 s after restart");
            }
        }
        let ready = t0.elapsed();
        let ok = ready < Duration::from_secs(1);
        ctx.report.figure(
            &format!("restart: reload {} sessions and answer /health", s.idle_sessions + 100),
            format!(
                "{:.0} ms (listening after {:.0} ms; graceful stop took {:.0} ms; RSS after reload {:.1} MiB)",
                ready.as_secs_f64() * 1000.0,
                listening.as_secs_f64() * 1000.0,
                stop.as_secs_f64() * 1000.0,
                again.rss_kib()? as f64 / 1024.0
            ),
            "< 1 s",
            Some(ok),
        );
        // Check that the sessions really came back.
        let mut c = Conn::open(again.addr).await?;
        let (_, b) = c
            .call(request("GET", "/v1/stats", &[], Bytes::new()))
            .await?;
        let active = json(&b)?["activeSessions"].as_u64().unwrap_or(0);
        if active < s.idle_sessions as u64 {
            bail!("after restart only {active} sessions are active");
        }
        again.stop()?;
    } else {
        nexus.stop()?;
    }
    Ok(())
}

/// Parks waiters (one per session, `wait=60`), then measures, one send at a time, the time from
/// the send's response to the parked poller's response. Each woken waiter parks again at once.
async fn longpoll(ctx: &mut Ctx, nexus: &Server, sessions: &[Sess], rss_before: u64) -> Result<()> {
    let s = ctx.sizes.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let mut tasks = Vec::new();
    let mut parked = 0usize;
    let body = send_body();
    let mut rss_at = HashMap::new();
    for &w in &s.waiters {
        let w = w.min(sessions.len());
        // Park waiters parked..w.
        let conns = load::open_many(nexus.addr, w - parked).await?;
        for (k, mut conn) in conns.into_iter().enumerate() {
            let j = parked + k;
            let sess = sessions[j].clone();
            let tx = tx.clone();
            let addr = nexus.addr;
            tasks.push(tokio::spawn(async move {
                let mut after = "0".to_owned();
                let mut reconnects = 0;
                loop {
                    let uri = format!("/v1/sessions/{}/messages?after={after}&wait=60", sess.id);
                    let (st, b) = match conn
                        .call(request(
                            "GET",
                            &uri,
                            &[("x-agent-id", &sess.agent)],
                            Bytes::new(),
                        ))
                        .await
                    {
                        Ok(answer) => answer,
                        // Opening thousands of connections takes a while: the first ones may
                        // have sat idle past HEADER_READ_TIMEOUT_SECONDS and been closed by the
                        // relay before their first request. Reconnect (setup, not the hot loop).
                        Err(e) if reconnects < 3 => {
                            reconnects += 1;
                            match Conn::open(addr).await {
                                Ok(c) => conn = c,
                                Err(_) => {
                                    eprintln!("waiter {j}: {e:#}; reconnect failed");
                                    return;
                                }
                            }
                            continue;
                        }
                        Err(e) => {
                            eprintln!("waiter {j}: {e:#}");
                            return;
                        }
                    };
                    let t = Instant::now();
                    if st != StatusCode::OK {
                        eprintln!("waiter {j}: {st} {}", String::from_utf8_lossy(&b));
                        return;
                    }
                    if let Ok(v) = serde_json::from_slice::<Value>(&b)
                        && let Some(c) = v["nextCursor"].as_str()
                    {
                        after = c.to_owned();
                    }
                    if tx.send((j, t)).is_err() {
                        return;
                    }
                }
            }));
        }
        parked = w;
        // Setup, not the hot loop: give the server time to read and park every request.
        tokio::time::sleep(Duration::from_millis(1000 + w as u64 / 10)).await;
        rss_at.insert(w, nexus.rss_kib()?);
        // A fresh connection for the sends of each phase: parking thousands of waiters can take
        // longer than the relay keeps an idle keep-alive connection (HEADER_READ_TIMEOUT_SECONDS).
        let mut sender = Conn::open(nexus.addr).await?;

        let mut lat = Vec::with_capacity(s.wake_samples);
        let mut whole = Vec::with_capacity(s.wake_samples);
        let mut early = 0;
        for k in 0..s.wake_samples {
            let j = (k * 7919) % w;
            let t0 = Instant::now();
            let (st, _) = sender.call(send_req(&sessions[j], body.clone())).await?;
            let t_resp = Instant::now();
            if st != StatusCode::CREATED {
                bail!("long-poll send: {st}");
            }
            let woke = loop {
                let (got, t) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                    .await
                    .map_err(|_| anyhow!("waiter {j} was not woken within 10 s"))?
                    .ok_or_else(|| anyhow!("waiters gone"))?;
                if got == j {
                    break t;
                }
            };
            whole.push(woke.saturating_duration_since(t0).as_micros() as u32);
            if woke < t_resp {
                early += 1;
            }
            lat.push(woke.saturating_duration_since(t_resp).as_micros() as u32);
        }
        let p50 = percentile(&mut lat, 0.5) / 1000.0;
        let p99 = percentile(&mut lat, 0.99) / 1000.0;
        let w50 = percentile(&mut whole, 0.5) / 1000.0;
        let w99 = percentile(&mut whole, 0.99) / 1000.0;
        ctx.report.figure(
            &format!("long-poll delivery, send request → poll response, {w} parked waiters"),
            format!("p50 {w50:.3} ms, p99 {w99:.3} ms"),
            "",
            None,
        );
        let target = if w == 1000 { "p99 < 1 ms" } else { "" };
        ctx.report.figure(
            &format!("long-poll wake, send response → poll response, {w} parked waiters"),
            format!(
                "p50 {p50:.3} ms, p99 {p99:.3} ms ({} samples; {early} polls answered before the send)",
                lat.len()
            ),
            target,
            (w == 1000).then_some(p99 < 1.0),
        );
    }
    let last = *s.waiters.last().unwrap_or(&0);
    let last = last.min(sessions.len());
    if let Some(rss) = rss_at.get(&last) {
        let per = rss.saturating_sub(rss_before) as f64 * 1024.0 / last as f64;
        ctx.report.figure(
            &format!("RSS per parked waiter ({last} waiters, connection included)"),
            format!("{per:.0} B"),
            "< 8 KiB",
            Some(per < 8192.0),
        );
    }
    // For comparison: an idle keep-alive connection that has answered one request.
    // (a quarter as many: the waiters still hold their descriptors)
    let n = (last / 4).max(1);
    let rss0 = nexus.rss_kib()?;
    let mut idle = load::open_many(nexus.addr, n).await?;
    for c in &mut idle {
        c.call(request("GET", "/health", &[], Bytes::new())).await?;
    }
    settle().await;
    let per = nexus.rss_kib()?.saturating_sub(rss0) as f64 * 1024.0 / n as f64;
    ctx.report.figure(
        &format!("RSS per idle keep-alive connection ({n}, after one /health)"),
        format!("{per:.0} B"),
        "",
        None,
    );
    drop(idle);
    for t in tasks {
        t.abort();
    }
    Ok(())
}
