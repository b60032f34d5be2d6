//! `mt10 train`, `eval` and `report` end to end on the toy suite (no Python in the
//! trainings), with tiny settings so that each training takes seconds.
mod common;

use common::{mt10, ok, read_json, read_stderr_until, run, scratch, signal, skipped, slurm_missing, train_tiny, LocalSlurm, TINY};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn bad_input_exits_2_with_one_line_and_creates_nothing() {
    let out = scratch("rejected");
    let cases: [(&[&str], &str); 11] = [
        (&["--method", "nope"], "unknown method 'nope'"),
        (&["--method", "fairgrad", "--alpha", "-1"], "alpha"),
        (&["--method", "ls", "--alpha", "2"], "does not take alpha"),
        (&["--tasks", "reach,fly"], "unknown task \"fly\""),
        (&["--set", "agent.hiden=[8]"], "unknown field `hiden`"),
        (&["--set", "run.steps"], "expected key=value"),
        (&["--preset", "toy", "--seed-list", "1,1"], "seed 1 is listed twice"),
        (&["--preset", "toy", "--batch-size", "2"], "batch_size 2"),
        (&["--preset", "toy", "--set", "run.updates_per_step=0"], "run.updates_per_step must be at least 1"),
        (&["--preset", "toy", "--set", "run.log_conflicts_every=150"], "run.log_conflicts_every (150) must be a multiple of run.log_every (100)"),
        (&["--preset", "toy", "--set", "run.log_plasticity=1"], "--set run.log_plasticity: invalid type: integer `1`, expected a boolean"),
    ];
    for (args, message) in cases {
        let mut full = vec!["train", "--out", out.to_str().unwrap()];
        full.extend(args);
        let result = run(&full);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line, got {stderr}");
        assert!(stderr.starts_with("mt10: ") && stderr.contains(message), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?} created {}", out.display());
    }
    let not_a_run = scratch("not-a-run");
    std::fs::create_dir_all(&not_a_run).unwrap();
    let result = run(&["train", "--resume", not_a_run.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("is not a run directory"));
    let conflicting = run(&["train", "--resume", not_a_run.to_str().unwrap(), "--steps", "5"]);
    assert_eq!(conflicting.status.code(), Some(2));
    std::fs::remove_dir_all(&not_a_run).unwrap();
}

#[test]
fn the_resolved_config_applies_preset_then_flags_then_set() {
    let text = ok(&["train", "--preset", "toy", "--method", "fairgrad", "--alpha", "3", "--steps", "123", "--set", "run.steps=77", "--set", "agent.hidden=[8,8]", "--seed-list", "4,2", "--print-config"]);
    let config: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(config["run"]["steps"].as_integer(), Some(77), "--set comes after --steps");
    assert_eq!(config["run"]["seeds"].as_array().unwrap().iter().map(|s| s.as_integer().unwrap()).collect::<Vec<_>>(), [4, 2]);
    assert_eq!(config["agent"]["hidden"].as_array().unwrap().len(), 2);
    assert_eq!(config["agent"]["combine"]["combiner"]["method"].as_str(), Some("fairgrad"));
    assert_eq!(config["agent"]["combine"]["combiner"]["alpha"].as_float(), Some(3.0));
    assert_eq!(config["env"]["kind"].as_str(), Some("toy"));

    // The default preset is the papers' protocol.
    let mtrl: toml::Table = toml::from_str(&ok(&["train", "--method", "nash", "--update-weights-every", "50", "--print-config"])).unwrap();
    assert_eq!(mtrl["run"]["steps"].as_integer(), Some(2_000_000));
    assert_eq!(mtrl["run"]["random_steps"].as_integer(), Some(1500));
    assert_eq!(mtrl["run"]["eval_every"].as_integer(), Some(10_000));
    assert_eq!(mtrl["env"]["max_episode_steps"].as_integer(), Some(150));
    assert_eq!(mtrl["env"]["num_goals"].as_integer(), Some(1));
    assert_eq!(mtrl["agent"]["batch_size"].as_integer(), Some(1280));
    assert_eq!(mtrl["agent"]["replay_capacity"].as_integer(), Some(1_000_000));
    assert_eq!(mtrl["agent"]["combine"]["update_weights_every"].as_integer(), Some(50));
    assert_eq!(mtrl["agent"]["combine"]["ls_reduction"].as_str(), Some("batch_mean"), "mtrl's MT-SAC loss");
    assert_eq!(mtrl["agent"]["combine"]["famo_solver"].as_str(), Some("mt10"), "FAMO's MT10 code");
}

/// `(step, value)` of every scalar tag, as TensorBoard's own reader sees the event files; a
/// value that JSON cannot hold (the infinite condition number of a rank-deficient Gram) as text.
fn tensorboard_scalars(dir: &Path) -> serde_json::Value {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = "import json, math, sys\n\
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n\
acc = EventAccumulator(sys.argv[1]); acc.Reload()\n\
value = lambda x: x if math.isfinite(x) else str(x)\n\
print(json.dumps({t: [[e.step, value(e.value)] for e in acc.Scalars(t)] for t in acc.Tags()['scalars']}))";
    let out = Command::new(python).args(["-c", script, dir.to_str().unwrap()]).output().expect("the venv's python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Tags of the image summaries, as TensorBoard's own reader sees them, with the first image's
/// width and height.
fn tensorboard_images(dir: &Path) -> serde_json::Value {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = "import json, sys\n\
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n\
acc = EventAccumulator(sys.argv[1]); acc.Reload()\n\
print(json.dumps({t: [len(acc.Images(t)), acc.Images(t)[0].width, acc.Images(t)[0].height] for t in acc.Tags()['images']}))";
    let out = Command::new(python).args(["-c", script, dir.to_str().unwrap()]).output().expect("the venv's python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every log interval of a gradient method: the cosines as scalars and a heat map, each task's
/// gradient norm, and the direction's norm against the mean task norm.
#[test]
fn conflict_diagnostics_reach_tensorboard() {
    let out = scratch("conflicts");
    train_tiny(&out, &["--seeds", "1", "--steps", "200", "--method", "upgrad", "--set", "run.eval_every=200", "--set", "run.checkpoint_every=200"]);
    let dir = out.join("seed-1");
    let scalars = tensorboard_scalars(&dir);
    for tag in ["gram/critic/cos_mean", "gram/actor/cos_min", "gram/critic/norm/reach-1", "gram/critic/direction_norm_ratio", "gram/critic/conflicts"] {
        let points = scalars.get(tag).unwrap_or_else(|| panic!("no {tag} in {:?}", scalars.as_object().unwrap().keys()));
        assert!(points.as_array().unwrap().iter().all(|p| p[1].as_f64().unwrap().is_finite()), "{tag}: {points}");
    }
    let cos_min = scalars["gram/critic/cos_min"][0][1].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&cos_min), "{cos_min}");
    let images = tensorboard_images(&dir);
    let heat_map = images.get("gram/critic/cosine").unwrap_or_else(|| panic!("no heat map in {images}"));
    let k = scalars.as_object().unwrap().keys().filter(|t| t.starts_with("gram/critic/norm/")).count() as u64;
    assert_eq!((heat_map[1].as_u64(), heat_map[2].as_u64()), (Some(16 * k), Some(16 * k)), "{images}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// `ls` computes no per-task gradients: with `run.log_conflicts_every` it does every N steps, and
/// logs the same diagnostics there (only there: the random steps end at 100, the log is every 50).
#[test]
fn ls_logs_its_conflicts_every_n_steps_when_asked() {
    let out = scratch("ls-conflicts");
    let args = ["--seeds", "1", "--steps", "300", "--method", "ls", "--set", "run.eval_every=300", "--set", "run.checkpoint_every=300"];
    train_tiny(&out, &[&args[..], &["--set", "run.log_conflicts_every=100"]].concat());
    let dir = out.join("seed-1");
    let scalars = tensorboard_scalars(&dir);
    for tag in ["gram/critic/cos_mean", "gram/actor/cos_min", "gram/critic/conflicts", "gram/critic/norm/reach-1", "gram/critic/direction_norm_ratio"] {
        let points = scalars.get(tag).unwrap_or_else(|| panic!("no {tag} in {:?}", scalars.as_object().unwrap().keys()));
        let steps: Vec<u64> = points.as_array().unwrap().iter().map(|p| p[0].as_u64().unwrap()).collect();
        assert_eq!(steps, [200, 300], "{tag}");
        assert!(points.as_array().unwrap().iter().all(|p| p[1].as_f64().unwrap().is_finite()), "{tag}: {points}");
    }
    assert!(tensorboard_images(&dir).get("gram/critic/cosine").is_some());
    let csv = std::fs::read_to_string(dir.join("conflicts.csv")).unwrap();
    let critic_steps: Vec<&str> = csv.lines().filter(|l| l.split(',').nth(1) == Some("critic")).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(critic_steps, ["200", "300"], "{csv}");
    std::fs::remove_dir_all(&out).unwrap();

    let plain = scratch("ls-no-conflicts");
    train_tiny(&plain, &args);
    let scalars = tensorboard_scalars(&plain.join("seed-1"));
    let keys = scalars.as_object().unwrap().keys();
    assert!(keys.clone().all(|t| !t.starts_with("gram/") && !t.starts_with("plasticity/")), "{keys:?}");
    std::fs::remove_dir_all(&plain).unwrap();
}

/// `run.log_plasticity` logs each network's dormant units and srank with the training scalars,
/// every `run.log_every` (50) once updates run (the random steps end at 100).
#[test]
fn plasticity_diagnostics_reach_tensorboard_every_log_when_asked() {
    let out = scratch("plasticity");
    train_tiny(&out, &["--seeds", "1", "--steps", "300", "--set", "run.eval_every=300", "--set", "run.checkpoint_every=300", "--set", "run.log_plasticity=true"]);
    let scalars = tensorboard_scalars(&out.join("seed-1"));
    for network in ["actor", "critic1", "critic2"] {
        for (metric, range) in [("dormant_percent", 0.0..=100.0), ("srank", 1.0..=16.0)] {
            let tag = format!("plasticity/{network}/{metric}");
            let points = scalars.get(&tag).unwrap_or_else(|| panic!("no {tag} in {:?}", scalars.as_object().unwrap().keys()));
            let points: Vec<(u64, f64)> = points.as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap())).collect();
            assert_eq!(points.iter().map(|p| p.0).collect::<Vec<_>>(), [150, 200, 250, 300], "{tag}");
            assert!(points.iter().all(|p| range.contains(&p.1)), "{tag}: {points:?}");
        }
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn two_seeds_train_in_parallel_with_tensorboard_metrics_summaries_and_evaluable_checkpoints() {
    let out = scratch("two-seeds");
    let table = train_tiny(&out, &["--seeds", "2", "--steps", "300", "--set", "run.eval_every=100", "--set", "run.checkpoint_every=200"]);
    assert!(table.contains("| 1 | 300 |") && table.contains("| 2 | 300 |"), "{table}");
    assert!(out.join("config.toml").is_file());
    for seed in [1, 2] {
        let dir = out.join(format!("seed-{seed}"));
        let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["steps"], 300);
        assert_eq!(summary["updates"], 20 + 199, "initial updates, then one per step after the random ones");
        // 6-dim observations, 2-dim actions, 16x16: the actor's 7*16 + 17*16 + 17*4, each Q-network's 9*16 + 17*16 + 17.
        assert_eq!((&summary["parameters"]["actor"], &summary["parameters"]["critic"]), (&452.into(), &(2 * 433).into()));
        let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        let steps: Vec<&str> = metrics.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(steps, ["0", "100", "200", "300"]);
        assert!(metrics.starts_with("step,wall_time_s,mean_success,success:reach-0-loud,"), "{metrics}");
        let best = metrics.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().parse::<f64>().unwrap()).fold(0.0, f64::max);
        assert_eq!(summary["best_success"].as_f64(), Some(best));

        let scalars = tensorboard_scalars(&dir);
        for tag in ["parameters/actor", "parameters/critic", "eval/success", "eval/success/reach-1", "train/success", "train/episode_reward/reach-2", "loss/critic", "loss/actor", "loss/alpha", "alpha", "weights/critic/reach-0-loud", "time/update_ms", "time/solver_us", "perf/steps_per_s"] {
            assert!(scalars.get(tag).is_some(), "seed {seed}: no {tag} in {:?}", scalars.as_object().unwrap().keys());
        }
        let eval: Vec<(u64, f64)> = scalars["eval/success"].as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap())).collect();
        assert_eq!(eval.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 100, 200, 300]);
        let csv_values: Vec<f64> = metrics.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().parse().unwrap()).collect();
        for ((_, tb), csv) in eval.iter().zip(&csv_values) {
            assert!((tb - csv).abs() < 1e-6, "TensorBoard {tb} vs metrics.csv {csv}");
        }
        assert!(dir.join("checkpoints/step-300/agent").is_dir() && dir.join("checkpoints/step-200").is_dir());
    }

    let eval = ok(&["eval", "--checkpoint", out.join("seed-2").to_str().unwrap(), "--episodes", "2"]);
    assert!(eval.contains("at step 300, seed 2, 2 episode(s) per task") && eval.contains("| reach-3 |"), "{eval}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// The text summaries of a tag, as TensorBoard's own reader sees the event files.
fn tensorboard_texts(dir: &Path, tag: &str) -> Vec<String> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = "import json, sys\n\
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n\
acc = EventAccumulator(sys.argv[1], size_guidance={'tensors': 0}); acc.Reload()\n\
print(json.dumps([e.tensor_proto.string_val[0].decode() for e in acc.Tensors(sys.argv[2])]))";
    let out = Command::new(python).args(["-c", script, dir.to_str().unwrap(), tag]).output().expect("the venv's python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The ETA field of a progress line.
fn eta_of(line: &str) -> &str {
    line.split("ETA").nth(1).unwrap().trim_start().split("  ").next().unwrap()
}

#[test]
fn progress_lines_state_the_device_mark_early_etas_and_give_the_whole_runs() {
    let out = scratch("progress");
    let mut args = vec!["train", "--out", out.to_str().unwrap(), "--seeds", "3", "--steps", "300", "--set", "run.eval_every=100"];
    args.extend(TINY.iter().filter(|arg| **arg != "--quiet"));
    let result = run(&args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let first = stderr.lines().next().unwrap();
    assert!(first.starts_with("mt10: training 3 seed(s) of ") && first.contains(" (2 at a time) in ") && first.ends_with(", device: cpu"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|line| line.starts_with("seed ")).collect();
    for seed in 1..=3 {
        let seed_lines: Vec<&&str> = lines.iter().filter(|line| line.starts_with(&format!("seed {seed} "))).collect();
        let random = seed_lines.first().unwrap_or_else(|| panic!("no line of seed {seed}: {stderr}"));
        assert!(random.contains("random actions") && eta_of(random) == "-", "no time left before an update is timed: {random}");
        assert!(seed_lines.last().unwrap().contains(" done  run ETA "), "{stderr}");
    }
    for line in &lines {
        assert!(line.contains("  run ETA ") && line.ends_with("(3 seeds, 2 at a time)"), "every line gives the whole run's: {line}");
        let (eta, run_eta) = (eta_of(line), line.split("run ETA ").nth(1).unwrap());
        // Seconds of updates never make a measured pace (that takes 30 s of them): any time left
        // here is an estimate, and says so.
        for eta in [eta, run_eta.split(" (").next().unwrap()] {
            assert!(eta == "-" || (eta.starts_with('~') && line.contains("(est.)")), "{line}");
        }
    }
    assert!(lines.iter().any(|line| line.contains("running") && eta_of(line).starts_with('~')), "an estimate once updates are timed: {stderr}");
    for seed in 1..=3 {
        let dir = out.join(format!("seed-{seed}"));
        assert_eq!(read_json(&dir.join("summary.json"))["device"], "cpu");
        assert_eq!(tensorboard_texts(&dir, "run/device"), ["cpu"]);
    }
    std::fs::remove_dir_all(&out).unwrap();

    if std::path::Path::new("/dev/nvidia0").exists() {
        return;
    }
    // `auto` where an NVIDIA driver seems to be (nvidia-smi on the PATH) but libtorch sees no GPU.
    let fake = scratch("fake-driver");
    std::fs::create_dir_all(&fake).unwrap();
    let smi = fake.join("nvidia-smi");
    std::fs::write(&smi, "#!/bin/sh\nexit 9\n").unwrap();
    std::fs::set_permissions(&smi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(std::iter::once(fake.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap()))).unwrap();
    let mut args = vec!["train", "--out", out.to_str().unwrap(), "--steps", "150", "--device", "auto"];
    args.extend(TINY);
    let result = mt10(&args).env("PATH", path).output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|line| line.contains("warning")).collect();
    assert_eq!(warnings, ["mt10: warning: --device auto: nvidia-smi is here but libtorch sees no GPU (CUDA_VISIBLE_DEVICES? a driver too old for libtorch's CUDA?); training on the CPU"], "{stderr}");
    let device = read_json(&out.join("seed-1/summary.json"))["device"].clone();
    assert_eq!(device, "cpu (auto: libtorch sees no GPU although an NVIDIA driver is here)");
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&fake).unwrap();
}

#[test]
fn updates_per_step_is_the_replay_ratio_after_the_initial_updates() {
    let out = scratch("replay-ratio");
    train_tiny(&out, &["--seeds", "1", "--steps", "150", "--set", "run.updates_per_step=2"]);
    let summary = read_json(&out.join("seed-1/summary.json"));
    assert_eq!(summary["updates"], 20 + 2 * 49, "20 initial updates at step 100, then 2 per step from 101 to 149");
    std::fs::remove_dir_all(&out).unwrap();
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `mt10 args` and kills it (SIGKILL, no checkpoint of its own) once `checkpoint` exists.
fn kill_once_written(args: &[&str], checkpoint: &Path) {
    let mut killed = mt10(args).spawn().unwrap();
    wait_for(checkpoint);
    signal(&killed, "-KILL");
    killed.wait().unwrap();
}

#[test]
fn a_killed_then_interrupted_run_resumes_to_the_same_step_count() {
    let out = scratch("resume");
    let mut args = vec!["train", "--out", out.to_str().unwrap(), "--steps", "1500"];
    args.extend(TINY);
    args.extend(["--set", "run.eval_every=100", "--set", "run.checkpoint_every=100"]);
    let seed_dir = out.join("seed-1");

    kill_once_written(&args, &seed_dir.join("checkpoints/step-200"));

    let resume = ["train", "--resume", out.to_str().unwrap(), "--quiet"];
    let mut interrupted = mt10(&resume).spawn().unwrap();
    let metrics = seed_dir.join("metrics.csv");
    let rows = || std::fs::read_to_string(&metrics).map_or(0, |text| text.lines().count());
    let start = Instant::now();
    // Wait until the resumed run has evaluated past where it was killed.
    while rows() < 6 {
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&interrupted, "-INT");
    assert_eq!(interrupted.wait().unwrap().code(), Some(130), "Ctrl-C exits with 130");
    assert!(!seed_dir.join("summary.json").exists(), "interrupted before the end");

    let table = ok(&resume);
    assert!(table.contains("| 1 | 1500 |"), "{table}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(seed_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["steps"], 1500);
    assert_eq!(summary["refill_steps"], 0, "the checkpoints hold the replay buffer: no refill");
    let text = std::fs::read_to_string(&metrics).unwrap();
    let steps: Vec<u64> = text.lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!(steps, (0..=15).map(|i| i * 100).collect::<Vec<_>>(), "one row per evaluation, none repeated");
    let checkpoints = std::fs::read_dir(seed_dir.join("checkpoints")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect::<Vec<_>>();
    assert!(checkpoints.contains(&"step-1500".to_string()) && checkpoints.iter().all(|c| c.starts_with("step-")), "{checkpoints:?}");
    assert!(seed_dir.join("checkpoints/step-1500/agent/replay.bin").is_file());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_run_checkpointed_without_its_replay_buffer_refills_it_on_resume() {
    let out = scratch("resume-refill");
    let mut args = vec!["train", "--out", out.to_str().unwrap(), "--steps", "400"];
    args.extend(TINY);
    args.extend(["--set", "run.checkpoint_every=100", "--set", "run.checkpoint_replay=false"]);
    let seed_dir = out.join("seed-1");
    kill_once_written(&args, &seed_dir.join("checkpoints/step-200"));

    let table = ok(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(table.contains("| 1 | 400 |"), "{table}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(seed_dir.join("summary.json")).unwrap()).unwrap();
    assert!(summary["refill_steps"].as_u64().unwrap() >= 100, "{summary}");
    assert!(!seed_dir.join("checkpoints/step-400/agent/replay.bin").exists());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn report_groups_two_runs_by_method_into_tables_and_plots() {
    let (ls, fairgrad, report) = (scratch("report-ls"), scratch("report-fairgrad"), scratch("report-out"));
    // Episodes of 40 steps: mtrl would evaluate every 200 steps (multiples of both 100 and 40).
    let common = ["--steps", "200", "--seeds", "2", "--set", "run.eval_every=100", "--set", "env.max_episode_steps=40"];
    train_tiny(&ls, &common);
    train_tiny(&fairgrad, &[&common[..], &["--method", "fairgrad", "--alpha", "2"]].concat());
    let table = ok(&["report", ls.to_str().unwrap(), fairgrad.to_str().unwrap(), "--out", report.to_str().unwrap()]);
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ls |") || l.starts_with("| fairgrad alpha=2.0 |")).collect();
    assert_eq!(rows.len(), 4, "every evaluation and mtrl's cadence: {table}");
    assert!(rows.iter().all(|r| r.contains("| 2 | 200 |")), "two seeds each, 200 steps: {table}");
    assert_eq!(rows.iter().filter(|r| r.contains("| 200 | every 200 |")).count(), 2, "the mtrl cadence: {table}");
    assert!(table.contains("Per-task success of `fairgrad alpha=2.0`"), "{table}");
    assert_eq!(std::fs::read_to_string(report.join("report.md")).unwrap(), table);
    let csv = std::fs::read_to_string(report.join("report.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("method,seeds,steps,best_success_mean,best_success_sem,best_success_iqm,"), "{csv}");
    assert!(csv.lines().next().unwrap().contains(",second_half_success_mean,second_half_success_sem,success:reach-0-loud"), "{csv}");
    assert!(csv.lines().next().unwrap().contains(",second_half_success:reach-0-loud"), "{csv}");
    assert!(table.contains("| second half |"), "{table}");
    for png in ["success.png", "weights-ls.png", "weights-fairgrad_alpha_2.0.png", "conflicts-fairgrad_alpha_2.0.png"] {
        let bytes = std::fs::read(report.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{png}");
    }
    assert!(!report.join("conflicts-ls.png").exists(), "ls computes no Gram");
    let cosines = table.split("Cosine of the task gradients of `fairgrad alpha=2.0`'s critic").nth(1).unwrap_or_else(|| panic!("no cosine table: {table}"));
    let first_row = cosines.lines().find(|l| l.starts_with("| reach-0-loud |")).unwrap();
    let values: Vec<f64> = first_row.split('|').filter_map(|c| c.trim().parse().ok()).collect();
    assert!(!values.is_empty() && values.iter().all(|c| (-1.0..=1.0).contains(c)), "{first_row}");
    for dir in [ls, fairgrad, report] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn ctrl_c_during_the_initial_updates_checkpoints_the_running_seeds_and_starts_no_other() {
    let out = scratch("ctrl-c");
    let mut args = vec!["train", "--out", out.to_str().unwrap(), "--seeds", "10", "--steps", "300"];
    args.extend(TINY.iter().filter(|a| **a != "--quiet"));
    // Far more initial updates than the test will wait for.
    args.extend(["--set", "run.initial_updates=1000000"]);
    let mut parent = mt10(&args).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let stderr = read_stderr_until(&mut parent, vec![["seed 1 ", "initial updates"], ["seed 2 ", "initial updates"]]);
    signal(&parent, "-INT");
    assert_eq!(parent.wait().unwrap().code(), Some(130), "Ctrl-C exits with 130");
    let stderr = stderr.join().unwrap();
    assert!(stderr.contains("interrupted; checkpoints written"), "{stderr}");
    for seed in [1, 2] {
        let dir = out.join(format!("seed-{seed}"));
        let trainer = read_json(&dir.join("checkpoints/step-100/trainer.json"));
        let done = trainer["initial_updates_done"].as_u64().unwrap();
        assert!(done > 0 && done < 1_000_000, "seed {seed} stopped within its initial updates: {trainer}");
        assert!(!dir.join("summary.json").exists());
    }
    for seed in 3..=10 {
        assert!(!out.join(format!("seed-{seed}")).exists(), "seed {seed} was started after the stop");
    }

    // A resumed seed does only the initial updates it had not done (here 50 more).
    let done = read_json(&out.join("seed-1/checkpoints/step-100/trainer.json"))["initial_updates_done"].as_u64().unwrap();
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    let config = config.replace("initial_updates = 1000000", &format!("initial_updates = {}", done + 50));
    std::fs::write(out.join("config.toml"), config).unwrap();
    ok(&["train", "--resume", out.to_str().unwrap(), "--only-seed", "1", "--quiet"]);
    let summary = read_json(&out.join("seed-1/summary.json"));
    assert_eq!(summary["updates"].as_u64(), Some(done + 50 + 199), "{summary}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// A run directory with its config and no seed trained yet (`--slurm` without `--submit` only
/// writes the job script).
fn untrained_run(out: &Path, extra: &[&str]) {
    let mut args = vec!["train", "--out", out.to_str().unwrap(), "--slurm"];
    args.extend(TINY);
    args.extend(extra);
    ok(&args);
}

#[test]
fn a_crashed_seed_is_reported_with_its_last_error_line_while_the_others_finish() {
    let out = scratch("crash");
    untrained_run(&out, &["--seeds", "3", "--steps", "200"]);
    let stranger = run(&["train", "--resume", out.to_str().unwrap(), "--only-seed", "7"]);
    assert_eq!(stranger.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&stranger.stderr).contains("seed 7 is not a seed of"));
    let broken = out.join("seed-2/checkpoints/step-100");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("trainer.json"), "not json").unwrap();

    let result = run(&["train", "--resume", out.to_str().unwrap(), "--jobs", "2", "--quiet"]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    let report = stderr.lines().find(|l| l.starts_with("mt10: seed 2 failed: exit status 1: ")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(report.contains("trainer.json") && report.contains("seed-2/stderr.log"), "{report}");
    assert!(stderr.trim_end().ends_with(&format!("resume them with `mt10 train --resume {}`", out.display())), "{stderr}");
    let table = String::from_utf8_lossy(&result.stdout);
    assert!(table.contains("| 1 | 200 |") && table.contains("| 3 | 200 |") && !table.contains("| 2 |"), "{table}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn slurm_opts_are_checked_before_anything_is_created() {
    let out = scratch("slurm-bad");
    let result = run(&["train", "--preset", "toy", "--out", out.to_str().unwrap(), "--slurm", "--slurm-opts", "gpu"]);
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("`gpu` is not an sbatch option"));
    assert!(!out.exists());
}

#[test]
fn slurm_job_arrays_train_into_the_run_directory_and_checkpoint_when_signalled() {
    if skipped("slurm_job_arrays_train_into_the_run_directory_and_checkpoint_when_signalled", slurm_missing()) {
        return;
    }
    let cluster = LocalSlurm::start(scratch("slurm-cluster"));
    let out = scratch("slurm-run");
    let mut args = vec!["train", "--out", out.to_str().unwrap(), "--seeds", "2", "--steps", "200", "--slurm", "--submit", "--slurm-opts", "--cpus-per-task=1 --time 10"];
    args.extend(TINY);
    let submitted = mt10(&args).env("SLURM_CONF", &cluster.conf).output().unwrap();
    let stderr = String::from_utf8_lossy(&submitted.stderr);
    assert!(submitted.status.success(), "{stderr}");
    assert!(stderr.contains("submitted job array"), "{stderr}");
    let script = std::fs::read_to_string(out.join("slurm/array.sh")).unwrap();
    assert!(script.contains("#SBATCH --array=1,2\n") && script.contains("#SBATCH --time 10\n"), "{script}");
    let start = Instant::now();
    for seed in [1, 2] {
        let summary = out.join(format!("seed-{seed}/summary.json"));
        while !summary.exists() {
            let log = std::fs::read_to_string(out.join(format!("slurm/seed-{seed}.log"))).unwrap_or_default();
            assert!(start.elapsed() < Duration::from_secs(300), "seed {seed} did not finish under Slurm; its log: {log}");
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(read_json(&summary)["steps"], 200);
    }
    let table = ok(&["report", out.to_str().unwrap(), "--out", out.join("report").to_str().unwrap()]);
    assert!(table.contains("| ls | 2 | 200 |"), "{table}");
    let resumed = ok(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(resumed.contains("| 1 | 200 |") && resumed.contains("| 2 | 200 |"), "nothing left to train: {resumed}");
    let resubmitted = mt10(&["train", "--resume", out.to_str().unwrap(), "--slurm", "--submit"]).env("SLURM_CONF", &cluster.conf).output().unwrap();
    assert_eq!(resubmitted.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&resubmitted.stderr).contains("nothing to submit"));

    // The SIGTERM Slurm sends before a task's time limit (`--signal`) checkpoints the seed.
    let long = scratch("slurm-long");
    let mut args = vec!["train", "--out", long.to_str().unwrap(), "--seeds", "1", "--steps", "300", "--slurm", "--submit", "--slurm-opts", "--cpus-per-task=1"];
    args.extend(TINY);
    args.extend(["--set", "run.initial_updates=1000000"]);
    let submitted = mt10(&args).env("SLURM_CONF", &cluster.conf).output().unwrap();
    let stderr = String::from_utf8_lossy(&submitted.stderr);
    let job = stderr.split("submitted job array ").nth(1).and_then(|rest| rest.split(' ').next()).unwrap_or_else(|| panic!("{stderr}"));
    wait_for(&long.join("seed-1/metrics.csv"));
    let signalled = Command::new("scancel").args(["--signal=TERM", "--batch", job]).env("SLURM_CONF", &cluster.conf).status().unwrap();
    assert!(signalled.success());
    let log = long.join("slurm/seed-1.log");
    let start = Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("interrupted; checkpoints written") {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint after the signal: {}", std::fs::read_to_string(&log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(std::fs::read_dir(long.join("seed-1/checkpoints")).unwrap().count() > 0);
    // Stopping the cluster while a job step still winds down would leave that step behind.
    while !cluster.queue_is_empty() {
        assert!(start.elapsed() < Duration::from_secs(180), "the job never left the queue");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::remove_dir_all(&long).unwrap();
    drop(cluster);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bench_env_with_seeds_reports_the_total_and_one_seed_rates() {
    let json: serde_json::Value = serde_json::from_str(&ok(&["bench", "env", "--seeds", "2", "--seconds", "1", "--json"])).unwrap();
    assert_eq!(json["seeds"], 2, "{json}");
    for rate in ["total_steps_per_s", "single_steps_per_s"] {
        assert!(json[rate].as_f64().is_some_and(|r| r.is_finite() && r > 0.0), "{json}");
    }
}
