//! The load generator: raw hyper HTTP/1.1 keep-alive connections, one tokio task per connection,
//! each sending its next request as soon as the previous response body is read (closed loop, no
//! sleeps). Latencies are recorded per request in microseconds, only inside the measured window.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::procs;

pub type Req = Request<Full<Bytes>>;
/// Builds request number `seq` of connection `conn`.
pub type MakeReq = Arc<dyn Fn(usize, u64) -> Req + Send + Sync>;

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    tx: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { tx })
    }

    /// Sends one request and reads the whole response.
    pub async fn call(&mut self, req: Req) -> Result<(StatusCode, Bytes)> {
        self.tx.ready().await?;
        let resp = self.tx.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// Opens `n` connections, a few at a time (a listen backlog is finite).
pub async fn open_many(addr: SocketAddr, n: usize) -> Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    let mut pending = Vec::new();
    for i in 0..n {
        pending.push(tokio::spawn(Conn::open(addr)));
        if pending.len() == 256 || i + 1 == n {
            for p in pending.drain(..) {
                conns.push(p.await??);
            }
        }
    }
    Ok(conns)
}

pub fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: Bytes) -> Req {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    if !body.is_empty() {
        b = b.header("content-type", "application/json");
    }
    b.body(Full::new(body)).expect("valid request")
}

/// Result of one closed-loop run.
#[derive(Debug, Default, Clone)]
pub struct LoadResult {
    pub ok: u64,
    pub errors: u64,
    pub secs: f64,
    /// Latencies in µs of the requests completed in the window.
    pub lat_us: Vec<u32>,
    /// Responses received over the whole run (warm-up and window).
    pub served: u64,
    /// CPU time the server used over the whole run (after the connections were open), s.
    pub server_cpu_secs: f64,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.secs
    }
    /// Server CPU time per response in µs: what one request costs the server, whatever else
    /// runs on the machine (unlike throughput, which shares the cores with the load generator
    /// and with other processes).
    pub fn cpu_us_per_request(&self) -> f64 {
        self.server_cpu_secs * 1e6 / self.served as f64
    }
    pub fn pct(&mut self, q: f64) -> f64 {
        percentile(&mut self.lat_us, q)
    }
}

/// The `q` quantile (0..=1) of `v` in the same unit; sorts `v`.
pub fn percentile<T: Copy + Ord + Into<f64>>(v: &mut [T], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].into()
}

/// Drives `conns` connections as fast as they go for `warmup + window`, counting and timing only
/// the responses that complete within the window. A response whose status is not `expect`
/// counts as an error. The CPU time of process `pid` (the server) is read around the run.
pub async fn closed_loop(
    addr: SocketAddr,
    pid: u32,
    conns: usize,
    warmup: Duration,
    window: Duration,
    expect: StatusCode,
    make: MakeReq,
) -> Result<LoadResult> {
    let pool = open_many(addr, conns).await?;
    let cpu0 = procs::cpu_secs(pid)?;
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let (from, until) = (start + warmup, start + warmup + window);
    let mut tasks = Vec::with_capacity(conns);
    for (i, mut conn) in pool.into_iter().enumerate() {
        let make = make.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = LoadResult::default();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let req = make(i, seq);
                seq += 1;
                let t0 = Instant::now();
                let res = conn.call(req).await;
                let t1 = Instant::now();
                if res.is_ok() {
                    r.served += 1;
                }
                if t1 < from || t1 > until {
                    if t1 > until {
                        break;
                    }
                    continue;
                }
                match res {
                    Ok((s, _)) if s == expect => {
                        r.ok += 1;
                        r.lat_us
                            .push((t1 - t0).as_micros().min(u32::MAX as u128) as u32);
                    }
                    Ok(_) => r.errors += 1,
                    Err(_) => {
                        r.errors += 1;
                        break; // the connection is gone
                    }
                }
            }
            r
        }));
    }
    tokio::time::sleep_until((until).into()).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = LoadResult {
        secs: window.as_secs_f64(),
        ..Default::default()
    };
    for t in tasks {
        let r = t.await?;
        total.ok += r.ok;
        total.errors += r.errors;
        total.served += r.served;
        total.lat_us.extend(r.lat_us);
    }
    total.server_cpu_secs = procs::cpu_secs(pid)? - cpu0;
    Ok(total)
}

/// Sends `n` requests over `conns` connections (setup work: creating sessions, filling them) and
/// returns every response in request order. Fails on a status other than `expect`.
pub async fn batch(
    addr: SocketAddr,
    conns: usize,
    n: usize,
    expect: StatusCode,
    make: Arc<dyn Fn(usize) -> Req + Send + Sync>,
) -> Result<Vec<Bytes>> {
    let pool = open_many(addr, conns.min(n.max(1))).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for mut conn in pool {
        let (next, make) = (next.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(out);
                }
                let (status, body) = conn.call(make(i)).await?;
                if status != expect {
                    bail!(
                        "setup request {i}: expected {expect}, got {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                out.push((i, body));
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort_unstable_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, b)| b).collect())
}
