//! Smoke test: every scenario of the benchmark runs end to end with tiny sizes against the real
//! `nexus-server` and `nexus` binaries. No timing assertions: timing belongs to the benchmark.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the relay and the CLI in the profile and target dir of this test's bench binary, so the
/// bench finds them next to itself.
fn build_siblings(bench: &Path) -> PathBuf {
    let profile_dir = bench.parent().expect("profile dir").to_path_buf();
    let target_dir = profile_dir.parent().expect("target dir");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-q",
        "-p",
        "nexus-server",
        "-p",
        "nexus-cli",
        "--manifest-path",
    ])
    .arg(&manifest)
    .arg("--target-dir")
    .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build");
    assert!(
        status.success(),
        "cargo build of nexus-server and nexus-cli failed"
    );
    profile_dir
}

#[test]
fn smoke_run_covers_every_scenario() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_nexus-bench"));
    let dir = build_siblings(&bench);
    let out = Command::new(&bench)
        .arg("--smoke")
        .arg("--server-bin")
        .arg(dir.join("nexus-server"))
        .arg("--cli-bin")
        .arg(dir.join("nexus"))
        .output()
        .expect("run nexus-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "nexus-bench --smoke failed:\n{stderr}\n{stdout}"
    );
    for row in [
        "| verified send |",
        "| poll after cursor |",
        "pairing flows/s",
        "`nexus send` / `curl`",
        "`nexus poll` / `curl`",
        "RSS per stored 1 KiB message",
        "RSS per idle session",
        "long-poll wake",
        "RSS per parked waiter",
        "restart: reload",
    ] {
        assert!(stdout.contains(row), "no {row:?} in the table:\n{stdout}");
    }
}
