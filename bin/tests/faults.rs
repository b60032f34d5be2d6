//! Faults a run must survive without losing work or reading half of a file: SIGTERM (Slurm's
//! preemption, `scancel`, container runtimes), a full disk, a damaged checkpoint, on tiny toy
//! trainings (no Python).
mod common;

use common::{copy_dir, mt10, read_json, read_stderr_until, run, scratch, signal, TINY};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `mt10 train` into `out` with the tiny toy settings, its progress lines on stderr.
fn train_args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", "--out", out.to_str().unwrap()];
    args.extend(TINY.iter().filter(|a| **a != "--quiet"));
    args.extend(extra);
    args
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn initial_updates_done(seed_dir: &Path) -> u64 {
    let checkpoints = seed_dir.join("checkpoints/step-100/trainer.json");
    read_json(&checkpoints)["initial_updates_done"].as_u64().unwrap()
}

#[test]
fn sigterm_checkpoints_the_running_seeds_exits_143_and_resume_finishes_the_run() {
    let out = scratch("sigterm");
    // Far more initial updates than the test waits for: the signal comes during them.
    let args = train_args(&out, &["--seeds", "3", "--steps", "200", "--set", "run.initial_updates=1000000"]);
    let mut parent = mt10(&args).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = read_stderr_until(&mut parent, vec![["seed 1 ", "initial updates"], ["seed 2 ", "initial updates"]]);
    signal(&parent, "-TERM");
    assert_eq!(parent.wait().unwrap().code(), Some(143), "SIGTERM exits with 143");
    let stderr = stderr.join().unwrap();
    assert!(stderr.contains("mt10: SIGTERM: stopping") && stderr.contains("interrupted; checkpoints written"), "{stderr}");
    for seed in [1, 2] {
        let dir = out.join(format!("seed-{seed}"));
        // The signal can come before the first initial update: none done is a valid stop too.
        let done = initial_updates_done(&dir);
        assert!(done < 1_000_000, "seed {seed} checkpointed within its initial updates");
        assert!(!dir.join("summary.json").exists());
    }
    assert!(!out.join("seed-3").exists(), "seed 3 was started after the stop");

    // One seed trains in the mt10 process itself: SIGTERM checkpoints it as well.
    let mut single = mt10(&["train", "--resume", out.to_str().unwrap(), "--only-seed", "3"]).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = read_stderr_until(&mut single, vec![["seed 3 ", "initial updates"]]);
    signal(&single, "-TERM");
    assert_eq!(single.wait().unwrap().code(), Some(143), "{}", stderr.join().unwrap());
    assert!(initial_updates_done(&out.join("seed-3")) < 1_000_000);

    // Resumed with a few more initial updates than the most any seed did, every seed finishes.
    let most = [1, 2, 3].map(|s| initial_updates_done(&out.join(format!("seed-{s}")))).into_iter().max().unwrap();
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    std::fs::write(out.join("config.toml"), config.replace("initial_updates = 1000000", &format!("initial_updates = {}", most + 20))).unwrap();
    let resumed = run(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    for seed in [1, 2, 3] {
        assert_eq!(read_json(&out.join(format!("seed-{seed}/summary.json")))["steps"], 200);
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// A tmpfs of `megabytes`, mounted for the life of the value and unmounted (and removed) after.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// `None` where mounting is not permitted (not root, or a container without the capability).
    fn mount(dir: PathBuf, megabytes: u32) -> Option<Self> {
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"]).arg(&dir).output();
        match mounted {
            Ok(out) if out.status.success() => Some(Self { dir }),
            Ok(out) => {
                eprintln!("SKIPPED the full-disk test: cannot mount a tmpfs: {}", stderr_of(&out).trim());
                let _ = std::fs::remove_dir(&dir);
                None
            }
            Err(error) => {
                eprintln!("SKIPPED the full-disk test: cannot run mount: {error}");
                let _ = std::fs::remove_dir(&dir);
                None
            }
        }
    }

    /// Fills what is left of the disk with a file; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("ballast");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 << 10];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&block[..1]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_full_disk_stops_the_run_with_one_line_naming_the_file_and_resume_works_once_space_is_freed() {
    let Some(disk) = SmallDisk::mount(scratch("small-disk"), 16) else { return };
    // The first run writes only checkpoints after its start, so it is a checkpoint that meets
    // the full disk; the second evaluates and logs often and checkpoints only at the end, so
    // it is a metrics or weights row or a TensorBoard event (whichever needs a new page of
    // the tmpfs first; unit tests in logbook.rs and event_file.rs take each on its own).
    let cases: [(&str, &[&str], [&str; 3]); 2] = [
        ("checkpoints", &[".step-200.partial/"], ["run.checkpoint_every=100", "run.eval_every=1500", "run.log_every=1500"]),
        ("logs", &["metrics.csv", "weights.csv", "events.out.tfevents."], ["run.checkpoint_every=1500", "run.eval_every=50", "run.log_every=50"]),
    ];
    for (what, files, sets) in cases {
        let out = disk.dir.join(what);
        let mut args = train_args(&out, &["--steps", "1500", "--quiet"]);
        args.extend(sets.iter().flat_map(|s| ["--set", s]));
        let training = mt10(&args).stderr(Stdio::piped()).spawn().unwrap();
        let seed_dir = out.join("seed-1");
        match what {
            "checkpoints" => wait_for("the first checkpoint", || seed_dir.join("checkpoints/step-100").exists()),
            _ => wait_for("two evaluations", || std::fs::read_to_string(seed_dir.join("metrics.csv")).is_ok_and(|t| t.lines().count() >= 3)),
        }
        let ballast = disk.fill();
        let stopped = training.wait_with_output().unwrap();
        let stderr = stderr_of(&stopped);
        assert_eq!(stopped.status.code(), Some(1), "{what}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
        assert!(stderr.contains(seed_dir.to_str().unwrap()) && files.iter().any(|f| stderr.contains(f)) && stderr.contains("No space left on device"), "{what}: {stderr}");
        let checkpoints: Vec<String> = std::fs::read_dir(seed_dir.join("checkpoints")).map_or(Vec::new(), |d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect());
        assert!(checkpoints.iter().all(|c| c.starts_with("step-") && !c.ends_with(".damaged")), "{what}: nothing partial left: {checkpoints:?}");
        if what == "checkpoints" {
            assert_eq!(checkpoints, ["step-100"], "the previous checkpoint is kept");
        }

        std::fs::remove_file(ballast).unwrap();
        let resumed = run(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
        let stderr = stderr_of(&resumed);
        assert!(resumed.status.success() && stderr.is_empty(), "{what}: {stderr}");
        assert_eq!(read_json(&seed_dir.join("summary.json"))["steps"], 1500, "{what}");
        let metrics = std::fs::read_to_string(seed_dir.join("metrics.csv")).unwrap();
        let steps: Vec<u64> = metrics.lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
        assert!(steps.windows(2).all(|w| w[0] < w[1]) && steps.last() == Some(&1500), "{what}: whole rows, none repeated: {metrics}");
        std::fs::remove_dir_all(&out).unwrap();
    }
}

/// A finished 300-step run checkpointed at steps 200 and 300, made unfinished again: resuming
/// it from step 200 trains the last 100 steps, from step 300 none.
fn unfinished_run(out: &Path) -> PathBuf {
    let trained = run(&train_args(out, &["--steps", "300", "--quiet", "--set", "run.checkpoint_every=100"]));
    assert!(trained.status.success(), "{}", stderr_of(&trained));
    let seed_dir = out.join("seed-1");
    std::fs::remove_file(seed_dir.join("summary.json")).unwrap();
    seed_dir
}

#[test]
fn a_damaged_checkpoint_is_found_by_its_checksums_and_resuming_falls_back_to_the_previous_one() {
    let pristine = scratch("damaged-pristine");
    unfinished_run(&pristine);
    let updates_from_200 = {
        let copy = scratch("damaged-reference");
        copy_dir(&pristine, &copy);
        std::fs::remove_dir_all(copy.join("seed-1/checkpoints/step-300")).unwrap();
        assert!(run(&["train", "--resume", copy.to_str().unwrap(), "--quiet"]).status.success());
        let updates = read_json(&copy.join("seed-1/summary.json"))["updates"].clone();
        std::fs::remove_dir_all(&copy).unwrap();
        updates
    };
    let damages: [(&str, Damage); 5] = [
        ("agent/tensors.ot", |p| truncate(p, 100)),
        ("agent/replay.bin", |p| alter_one_byte(p)),
        ("agent/state.json", |p| std::fs::remove_file(p).unwrap()),
        ("trainer.json", |p| std::fs::write(p, "{\"step\": 300}").unwrap()),
        ("manifest.json", |p| truncate(p, 10)),
    ];
    for (file, damage) in damages {
        let out = scratch("damaged");
        copy_dir(&pristine, &out);
        let newest = out.join("seed-1/checkpoints/step-300");
        damage(&newest.join(file));

        let resumed = run(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
        let stderr = stderr_of(&resumed);
        assert!(resumed.status.success(), "{file}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{file}: one line: {stderr}");
        assert!(stderr.contains(&format!("{}/{file} is damaged", newest.display())) && stderr.contains("resuming from") && stderr.contains("step-200"), "{file}: {stderr}");
        let summary = read_json(&out.join("seed-1/summary.json"));
        assert_eq!((&summary["steps"], &summary["updates"]), (&300.into(), &updates_from_200), "{file}: trained the last 100 steps again, from step 200");
        assert!(out.join("seed-1/checkpoints/step-300.damaged").is_dir(), "{file}: the damaged checkpoint is set aside");
        std::fs::remove_dir_all(&out).unwrap();
    }

    // With every checkpoint damaged there is nothing to resume from: refused, nothing renamed.
    let out = scratch("all-damaged");
    copy_dir(&pristine, &out);
    for step in [200, 300] {
        truncate(&out.join(format!("seed-1/checkpoints/step-{step}/agent/tensors.ot")), 100);
    }
    let refused = run(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("step-300/agent/tensors.ot is damaged") && stderr.contains("no intact checkpoint"), "{stderr}");
    assert!(out.join("seed-1/checkpoints/step-300").is_dir() && !out.join("seed-1/summary.json").exists());
    std::fs::remove_dir_all(&out).unwrap();

    // Checkpoints from before manifests were written resume with a warning.
    let out = scratch("no-manifest");
    copy_dir(&pristine, &out);
    for step in [200, 300] {
        std::fs::remove_file(out.join(format!("seed-1/checkpoints/step-{step}/manifest.json"))).unwrap();
    }
    let resumed = run(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    let stderr = stderr_of(&resumed);
    assert!(resumed.status.success() && stderr.contains("step-300 has no manifest.json") && stderr.lines().count() == 1, "{stderr}");
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&pristine).unwrap();
}

#[test]
fn eval_of_a_missing_or_damaged_checkpoint_names_the_file_and_exits_2() {
    let out = scratch("eval-damaged");
    let seed_dir = unfinished_run(&out);
    let newest = seed_dir.join("checkpoints/step-300");
    let eval = |path: &Path| run(&["eval", "--checkpoint", path.to_str().unwrap(), "--episodes", "1"]);
    assert!(eval(&newest).status.success());

    let missing = seed_dir.join("checkpoints/step-999");
    truncate(&newest.join("agent/tensors.ot"), 100);
    for (path, named) in [(&newest, newest.join("agent/tensors.ot")), (&seed_dir, newest.join("agent/tensors.ot")), (&missing, missing.clone())] {
        let result = eval(path);
        let stderr = stderr_of(&result);
        assert_eq!(result.status.code(), Some(2), "{}: {stderr}", path.display());
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("mt10: ") && stderr.contains(named.to_str().unwrap()), "{stderr}");
    }
    std::fs::remove_file(newest.join("agent/tensors.ot")).unwrap();
    let result = eval(&newest);
    assert_eq!(result.status.code(), Some(2));
    assert!(stderr_of(&result).contains("agent/tensors.ot is damaged: missing"), "{}", stderr_of(&result));
    std::fs::remove_dir_all(&out).unwrap();
}

/// Damages one file of a checkpoint.
type Damage = fn(&Path);

fn truncate(path: &Path, bytes: u64) {
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(bytes).unwrap();
}

fn alter_one_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}
