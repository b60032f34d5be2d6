//! What the end-to-end tests share: running `mt10`, scratch directories, the tiny toy settings.
// Each test file uses its own part of these.
#![allow(dead_code)]
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn mt10(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mt10"));
    command.args(args);
    command
}

pub fn run(args: &[&str]) -> Output {
    mt10(args).output().expect("mt10 runs")
}

pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mt10-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The toy preset shrunk to seconds: small networks, short warm-up, frequent evaluations.
pub const TINY: [&str; 16] = [
    "--preset",
    "toy",
    "--quiet",
    "--set",
    "agent.hidden=[16,16]",
    "--batch-size",
    "64",
    "--set",
    "run.random_steps=100",
    "--set",
    "run.initial_updates=20",
    "--set",
    "run.eval_episodes=1",
    "--set",
    "run.log_every=50",
    "--jobs=2",
];

pub fn train_tiny(out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["train", "--out", out.to_str().unwrap()];
    args.extend(TINY);
    args.extend(extra);
    ok(&args)
}

pub fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill").args([name, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Reads `child`'s stderr until each of `wanted` has matched a line (a line matches when it
/// holds all of the pattern's parts), then hands the rest to a thread that drains it (so the
/// child never blocks on a full pipe) and returns all of it.
pub fn read_stderr_until(child: &mut std::process::Child, mut wanted: Vec<[&str; 2]>) -> std::thread::JoinHandle<String> {
    use std::io::{BufRead, BufReader};
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !wanted.is_empty() {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "stderr ended before {wanted:?}: {seen}");
        wanted.retain(|parts| !parts.iter().all(|part| line.contains(part)));
        seen.push_str(&line);
    }
    std::thread::spawn(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
        seen + &rest
    })
}

/// Whether `test` must be skipped for want of what `missing` names (a system package this machine
/// lacks); if so it says so in one `SKIPPED` line, written past the test harness's capture so
/// that it shows (and `scripts/test` counts it).
pub fn skipped(test: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else { return false };
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    true
}

/// Why MuJoCo cannot render here, if it cannot.
pub fn renderer_missing() -> Option<String> {
    envs::metaworld::missing_renderer_package().map(|package| format!("cannot render MuJoCo frames: Debian's {package} is not installed"))
}

/// Why a one-node Slurm cluster cannot start here ([`LocalSlurm`]), if it cannot.
pub fn slurm_missing() -> Option<String> {
    let on_path = |name: &str| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]).any(|dir| dir.join(name).is_file())
    };
    if !["sbatch", "squeue", "slurmctld", "slurmd"].iter().all(|name| on_path(name)) {
        return Some("Slurm is not installed (Debian's slurm-wlm and munge)".into());
    }
    if !["munged", "mungekey"].iter().all(|name| on_path(name)) {
        return Some("munge is not installed (Debian's munge)".into());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("a one-node Slurm cluster (scripts/slurm-local) needs root".into());
    }
    None
}

/// A one-node Slurm cluster (scripts/slurm-local) for the length of a test.
pub struct LocalSlurm {
    dir: PathBuf,
    pub conf: String,
}

impl LocalSlurm {
    const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/slurm-local");

    pub fn start(dir: PathBuf) -> Self {
        let out = Command::new(Self::SCRIPT).arg("start").arg(&dir).output().unwrap();
        let cluster = Self { dir, conf: String::from_utf8_lossy(&out.stdout).trim().to_string() };
        assert!(out.status.success(), "the local Slurm cluster did not start: {}", String::from_utf8_lossy(&out.stderr));
        cluster
    }

    pub fn queue_is_empty(&self) -> bool {
        Command::new("squeue").arg("--noheader").env("SLURM_CONF", &self.conf).output().unwrap().stdout.is_empty()
    }
}

impl Drop for LocalSlurm {
    fn drop(&mut self) {
        let _ = Command::new(Self::SCRIPT).arg("stop").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
