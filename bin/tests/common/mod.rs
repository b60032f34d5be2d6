//! What the end-to-end tests share: running `mt10`, scratch directories, the tiny toy settings.
// Each test file uses its own part of these.
#![allow(dead_code)]
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

pub fn copy_dir(from: &Path, to: &Path) {
    assert!(Command::new("cp").arg("-r").arg(from).arg(to).status().unwrap().success());
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
