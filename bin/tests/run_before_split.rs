//! A run directory written before `bin/` was split into crates resumes after it:
//! `tests/data/run-before-split` was written by that binary (the toy preset shrunk, 200 steps,
//! checkpoints every 100, evaluations every 50) and cut back to a seed checkpointed at step 100
//! and not finished (no step-200 checkpoint, no summary), as a run killed there leaves it.
mod common;
use common::*;
use std::path::Path;

#[test]
fn a_run_directory_from_before_the_crate_split_resumes_and_finishes() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/run-before-split");
    let out = scratch("before-split");
    copy_dir(&fixture, &out);
    let dir = out.to_str().unwrap();
    let table = ok(&["train", "--resume", dir, "--quiet"]);
    assert!(table.contains("| 3 | 200 |"), "{table}");
    let summary = read_json(&out.join("seed-3/summary.json"));
    assert_eq!(summary["steps"], 200);
    // 10 initial updates at step 50, then one a step: what the binary before the split counted.
    assert_eq!(summary["updates"], 159);
    assert_eq!(summary["refill_steps"], 0, "the checkpoint's replay buffer was loaded");
    let lines = |path: &Path| std::fs::read_to_string(path).unwrap().lines().map(String::from).collect::<Vec<_>>();
    // The evaluations up to the checkpoint are kept as written; those after it are taken again.
    let (old, new) = (lines(&fixture.join("seed-3/metrics.csv")), lines(&out.join("seed-3/metrics.csv")));
    assert_eq!(new[..4], old[..4]);
    let steps: Vec<&str> = new[1..].iter().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(steps, ["0", "50", "100", "150", "200"]);
    let (old, new) = (lines(&fixture.join("seed-3/weights.csv")), lines(&out.join("seed-3/weights.csv")));
    assert_eq!(new[..4], old[..4]);
    assert_eq!(new.len(), 10, "{new:?}");
    assert!(out.join("seed-3/checkpoints/step-200/manifest.json").is_file());
    let evaluated = ok(&["eval", dir, "--episodes", "1"]);
    assert!(evaluated.contains("at step 200, seed 3"), "{evaluated}");
    let report = out.join("report");
    ok(&["report", dir, "--out", report.to_str().unwrap()]);
    assert!(report.join("report.md").is_file());
    std::fs::remove_dir_all(&out).unwrap();
}
