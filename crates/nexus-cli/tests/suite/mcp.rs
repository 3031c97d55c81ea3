//! `nexus mcp` tested with an MCP client this project did not write (issue 8): the official
//! Python SDK (`mcp` on PyPI) runs the scripts in `tests/mcp/` against a real `nexus-server`.
//!
//! The SDK is installed by the tests themselves, once, into a virtual environment under the
//! cargo target folder (`target/mcp-venv`, from `tests/mcp/requirements.txt`; `.ci/run` installs
//! it up front). The installation is guarded by a lock file, so concurrent test threads and
//! processes install it once. Without python3 or PyPI the tests fail with a clear message: they
//! never skip. Each script gets a bounded time; the Python process (and with it the `nexus mcp`
//! processes it spawned, whose stdin then closes) is killed if it overruns or the test panics.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::harness::{Server, dead_url};

/// The longest a script may run.
const SCRIPT_LIMIT: Duration = Duration::from_secs(300);

/// `tests/mcp/`.
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("mcp")
}

/// The cargo target folder: this test binary lives in `<target>/<profile>/deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    exe.ancestors()
        .nth(3)
        .expect("target dir above <profile>/deps")
        .to_path_buf()
}

/// The venv's python, with the MCP SDK importable; installed on first use.
fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(prepare_venv) {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn sdk_importable(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .args(["-c", "import mcp.client.stdio"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn prepare_venv() -> Result<PathBuf, String> {
    let target = target_dir();
    let venv = target.join("mcp-venv");
    let python = venv.join("bin").join("python");
    std::fs::create_dir_all(&target).map_err(|e| format!("cannot create {target:?}: {e}"))?;
    // One installer at a time across test processes (the OS releases the lock if one dies).
    let lock = File::create(target.join("mcp-venv.lock"))
        .map_err(|e| format!("cannot create the venv lock: {e}"))?;
    lock.lock()
        .map_err(|e| format!("cannot lock the venv lock: {e}"))?;
    if sdk_importable(&python) {
        return Ok(python);
    }
    eprintln!("mcp tests: installing the Python MCP SDK into {venv:?}");
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .map_err(|e| {
            format!(
                "the MCP tests need python3 (with the venv module) to run the official Python MCP SDK, and it cannot be started: {e}"
            )
        })?;
    if !made.status.success() {
        return Err(format!(
            "`python3 -m venv {venv:?}` failed (on Debian: apt-get install python3-venv):\n{}",
            String::from_utf8_lossy(&made.stderr)
        ));
    }
    let installed = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(scripts().join("requirements.txt"))
        .output()
        .map_err(|e| format!("cannot run the venv's pip: {e}"))?;
    if !installed.status.success() {
        return Err(format!(
            "installing the Python MCP SDK from PyPI failed (the MCP tests need it; is PyPI reachable?):\n{}{}",
            String::from_utf8_lossy(&installed.stdout),
            String::from_utf8_lossy(&installed.stderr)
        ));
    }
    if !sdk_importable(&python) {
        return Err(format!(
            "the Python MCP SDK was installed into {venv:?} but `import mcp.client.stdio` fails"
        ));
    }
    Ok(python)
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `tests/mcp/<script>` against `server`; panics with its output unless it exits 0.
fn run_script(script: &str, server: &Server) {
    let python = python();
    let out = tempfile::tempdir().expect("tempdir");
    let stdout = out.path().join("stdout");
    let stderr = out.path().join("stderr");
    let child = Command::new(&python)
        .arg(scripts().join(script))
        .current_dir(scripts())
        .env("NEXUS_BIN", env!("CARGO_BIN_EXE_nexus"))
        .env("NEXUS_TEST_URL", &server.url)
        .env("NEXUS_DEAD_URL", dead_url())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).expect("stdout file"))
        .stderr(File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn the Python test script");
    let mut child = Killed(child);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for the script") {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_LIMIT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(child);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let report = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        read(&stdout),
        read(&stderr)
    );
    match status {
        Some(s) if s.success() => {
            assert!(
                read(&stdout).contains("PASS"),
                "{script} exited 0 without PASS\n{report}"
            );
        }
        Some(s) => panic!("{script} failed ({s})\n{report}"),
        None => panic!("{script} did not finish within {SCRIPT_LIMIT:?}\n{report}"),
    }
}

#[test]
fn a_whole_conversation_between_two_mcp_agents() {
    let server = Server::start();
    run_script("conversation.py", &server);
}

#[test]
fn subscribers_are_told_when_messages_arrive() {
    let server = Server::start();
    run_script("subscription.py", &server);
}

#[test]
fn errors_are_tool_errors_with_hints_and_never_crash_the_server() {
    let server = Server::start();
    run_script("errors.py", &server);
}
