//! Child processes: the real `nexus-server` and the baseline (this binary, `baseline-server`), each
//! started through `sh -c 'ulimit -n <hard>; exec …'` on port 0, the address read from the
//! `{"listening": "..."}` line on stdout. Also RLIMIT_NOFILE for this process and VmRSS readings.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: plain libc calls on a stack struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
}

/// A started server; killed on drop unless stopped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub url: String,
    /// Time from spawn to the `listening` line.
    pub started_in: Duration,
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Server {
    /// Starts `bin args…` with the raised fd limit and waits for its `listening` line.
    pub fn start(bin: &Path, args: &[String]) -> Result<Self> {
        let mut cmd = format!(
            "ulimit -n $(ulimit -Hn); exec {}",
            shell_quote(&bin.to_string_lossy())
        );
        for a in args {
            cmd.push(' ');
            cmd.push_str(&shell_quote(a));
        }
        let t0 = Instant::now();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            // Newer relays cap connections and parked polls (MAX_CONNECTIONS, MAX_WAITERS); the
            // bench parks 10,000 waiters plus idle connections. Environment, not flags, so older
            // builds without those settings start too.
            .env("MAX_CONNECTIONS", "1000000")
            .env("MAX_WAITERS", "1000000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let started_in = t0.elapsed();
        let v: serde_json::Value = serde_json::from_str(line.trim()).map_err(|e| {
            let _ = child.kill();
            anyhow!(
                "{} did not print its address ({e}): {line:?}",
                bin.display()
            )
        })?;
        let url = v["listening"]
            .as_str()
            .ok_or_else(|| anyhow!("no listening url in {line:?}"))?
            .trim_end_matches('/')
            .to_owned();
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .parse()
            .with_context(|| format!("address in {url}"))?;
        Ok(Self {
            child,
            addr,
            url,
            started_in,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB (VmRSS).
    pub fn rss_kib(&self) -> Result<u64> {
        rss_kib(self.pid())
    }

    /// SIGTERM, then wait for exit (graceful shutdown flushes the journal).
    pub fn stop(mut self) -> Result<Duration> {
        let t0 = Instant::now();
        // SAFETY: signalling our own child by pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("server exited with {status}");
                }
                return Ok(t0.elapsed());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("server did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS for pid {pid}"))
}

/// CPU time (user + system, all threads) the process has used so far, in seconds.
pub fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("malformed /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| anyhow!("no CPU times in /proc/{pid}/stat"))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(11)? + ticks(12)?) / hz)
}

/// The binaries: given explicitly, else next to this executable (same target dir and profile).
pub fn sibling(explicit: Option<PathBuf>, name: &str) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    let me = std::env::current_exe()?;
    let dir = me
        .parent()
        .ok_or_else(|| anyhow!("no parent dir of {}", me.display()))?;
    let p = dir.join(name);
    if !p.exists() {
        bail!(
            "{} not found; build it first: cargo build --release -p nexus-server -p nexus-cli -p nexus-bench",
            p.display()
        );
    }
    Ok(p)
}
