//! `mt10 sweep` and `mt10 bench freq` end to end on the toy suite (no Python in the trainings),
//! with tiny settings so that each run takes seconds. The Slurm test starts a one-node cluster:
//! run this file as `flock /tmp/mt10-slurm.lock cargo test --release -p mt10 --test sweep`.
mod common;

use common::{mt10, ok, read_json, run, scratch, skipped, slurm_missing, LocalSlurm, TINY};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// `mt10 <command...> --out out TINY extra...`, evaluating every 100 steps.
fn args<'a>(command: &[&'a str], out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = command.to_vec();
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(TINY);
    args.extend(["--set", "run.eval_every=100"]);
    args.extend(extra);
    args
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The cells of a Markdown table row.
fn cells(line: &str) -> Vec<&str> {
    line.trim().trim_matches('|').split('|').map(str::trim).collect()
}

/// The Markdown table that starts with `header_start`: its header cells and its rows by first cell.
fn table<'a>(text: &'a str, header_start: &str) -> (Vec<&'a str>, Vec<Vec<&'a str>>) {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(header_start));
    let header = cells(lines.next().unwrap_or_else(|| panic!("no table starting {header_start:?} in {text}")));
    let rows: Vec<Vec<&str>> = lines.skip(1).take_while(|l| l.starts_with('|')).map(cells).collect();
    for row in &rows {
        assert_eq!(row.len(), header.len(), "every column filled: {row:?} under {header:?}");
        assert!(row.iter().all(|cell| !cell.is_empty()), "{row:?}");
    }
    (header, rows)
}

fn row<'a>(rows: &'a [Vec<&'a str>], name: &str) -> &'a [&'a str] {
    rows.iter().find(|r| r[0] == name).unwrap_or_else(|| panic!("no row {name} in {rows:?}"))
}

#[test]
fn a_sweep_trains_every_row_and_seed_and_writes_the_report() {
    let out = scratch("methods");
    let stdout = ok(&args(&["sweep", "--methods", "ls,moco,fairgrad", "--seeds", "3", "--steps", "200"], &out, &[]));
    for row in ["ls", "moco", "fairgrad"] {
        let config = read(&out.join(row).join("config.toml"));
        assert!(config.contains(&format!("name = \"{row}\"")) && config.contains(&format!("method = \"{row}\"")), "{config}");
        for seed in 1..=3 {
            assert_eq!(read_json(&out.join(format!("{row}/seed-{seed}/summary.json")))["steps"], 200);
        }
    }
    let report = read(&out.join("report/report.md"));
    assert!(stdout.contains(&report), "the report is printed: {stdout}");
    let (header, rows) = table(&report, "| method |");
    assert!(header.len() >= 4 && header[..3] == ["method", "seeds", "steps"], "{header:?}");
    for name in ["ls", "moco", "fairgrad"] {
        assert_eq!(row(&rows, name)[1..3], ["3", "200"], "{report}");
    }
    let csv = read(&out.join("report/report.csv"));
    let columns = csv.lines().next().unwrap().split(',').count();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.lines().all(|l| l.split(',').count() == columns), "{csv}");
    assert!(std::fs::read(out.join("report/success.png")).unwrap().starts_with(b"\x89PNG"));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bench_freq_sweeps_k_and_baselines_into_the_frequency_table() {
    let out = scratch("freq");
    let stdout = ok(&args(&["bench", "freq", "--method", "nash", "--every", "1,10", "--baselines", "ls", "--seeds", "3", "--steps", "200"], &out, &[]));
    let freq = read(&out.join("freq.md"));
    assert!(stdout.contains(&freq), "{stdout}");
    let (header, rows) = table(&freq, "| row |");
    assert_eq!(header, ["row", "k", "seeds", "best success", "best, IQM [95% CI]", "runtime per episode (s)", "vs ls", "ms/update", "solver time", "fallbacks"]);
    assert_eq!(rows.iter().map(|r| r[0]).collect::<Vec<_>>(), ["nash-1", "nash-10", "ls"], "{freq}");
    assert_eq!(row(&rows, "nash-10")[1..3], ["10", "3"]);
    assert_eq!(row(&rows, "ls")[6], "1.00x");
    // Three seeds: the IQM comes with its bootstrap interval.
    assert!(rows.iter().all(|r| r[4].contains('[') && r[4].ends_with(']')), "{freq}");
    assert!(read(&out.join("nash-10/config.toml")).contains("update_weights_every = 10"));

    // Runtime per episode: wall time over episodes (200 steps of 50-step episodes: 4 each).
    let csv = read(&out.join("freq.csv"));
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let ls: Vec<&str> = csv.lines().find(|l| l.starts_with("\"ls\"")).unwrap().split(',').collect();
    let runtimes: Vec<f64> = (1..=3).map(|s| read_json(&out.join(format!("ls/seed-{s}/summary.json")))["wall_time_s"].as_f64().unwrap() / 4.0).collect();
    let expected = runtimes.iter().sum::<f64>() / 3.0;
    assert!((ls[8].parse::<f64>().unwrap() - expected).abs() < 1e-9 * expected.max(1.0), "{csv} vs {runtimes:?}");
    let nash: Vec<&str> = csv.lines().find(|l| l.starts_with("\"nash-1\"")).unwrap().split(',').collect();
    assert!(nash[12].parse::<f64>().unwrap() > 0.0, "nash solves its weights: {csv}");
    assert!(std::fs::read(out.join("freq.png")).unwrap().starts_with(b"\x89PNG"));
    assert!(read(&out.join("report/report.md")).contains("| nash-10 |"));
    std::fs::remove_dir_all(&out).unwrap();
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(180), "{what} never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).and_then(|m| m.modified()).unwrap()
}

#[test]
fn an_interrupted_sweep_resumes_without_redoing_finished_runs() {
    let out = scratch("resume");
    let sweep = args(&["sweep", "--methods", "ls,fairgrad", "--seed-list", "1,2", "--steps", "800"], &out, &["--set", "run.checkpoint_every=100"]);
    let runs: Vec<PathBuf> = ["ls", "fairgrad"].iter().flat_map(|row| [1, 2].map(|s| out.join(format!("{row}/seed-{s}")))).collect();
    let finished = |run: &PathBuf| run.join("summary.json").exists();
    let checkpointed = |run: &PathBuf| run.join("checkpoints/step-100").exists();

    let mut parent = mt10(&sweep).spawn().unwrap();
    // Stop it once a run has finished and a later one has checkpointed.
    wait_until("a finished run and a checkpointed unfinished one", || runs.iter().any(finished) && runs.iter().any(|r| !finished(r) && checkpointed(r)));
    assert!(Command::new("kill").args(["-INT", &parent.id().to_string()]).status().unwrap().success());
    assert_eq!(parent.wait().unwrap().code(), Some(130), "Ctrl-C exits with 130");

    let done: Vec<&PathBuf> = runs.iter().filter(|r| finished(r)).collect();
    let stopped: Vec<&PathBuf> = runs.iter().filter(|r| !finished(r) && checkpointed(r)).collect();
    assert!(!done.is_empty() && !stopped.is_empty() && done.len() < runs.len());
    let before: Vec<(SystemTime, String)> = done.iter().map(|r| (modified(&r.join("summary.json")), read(&r.join("metrics.csv")))).collect();
    let stopped_metrics: Vec<String> = stopped.iter().map(|r| read(&r.join("metrics.csv"))).collect();

    let stdout = ok(&["sweep", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(stdout.contains("| ls | 2 | 800 |") && stdout.contains("| fairgrad | 2 | 800 |"), "{stdout}");
    for (run, (mtime, metrics)) in done.iter().zip(&before) {
        assert_eq!(modified(&run.join("summary.json")), *mtime, "{} was trained again", run.display());
        assert_eq!(read(&run.join("metrics.csv")), *metrics, "{} was trained again", run.display());
    }
    for (run, metrics) in stopped.iter().zip(&stopped_metrics) {
        // Resumed from its checkpoint: the evaluations it had made are kept, none is repeated.
        let resumed = read(&run.join("metrics.csv"));
        assert!(resumed.starts_with(metrics.as_str()), "{}: {metrics} then {resumed}", run.display());
        let steps: Vec<u64> = resumed.lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
        assert_eq!(steps, (0..=8).map(|i| i * 100).collect::<Vec<_>>(), "{}", run.display());
    }
    assert!(runs.iter().all(finished));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_input_exits_2_with_one_line_and_leaves_nothing() {
    let out = scratch("rejected");
    let rows_dir = scratch("rows");
    std::fs::create_dir_all(&rows_dir).unwrap();
    let rows_file = |name: &str, text: &str| {
        let path = rows_dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let typo = rows_file("typo.toml", "[[row]]\nname = \"wide\"\nset = [\"agent.hiden=[8]\"]\n");
    let unknown = rows_file("unknown.toml", "[[row]]\nname = \"x\"\nmethods = \"ls\"\n");
    let missing = rows_dir.join("missing.toml").to_str().unwrap().to_string();
    let cases: [(Vec<&str>, &str); 10] = [
        (vec!["sweep", "--methods", "ls,nope"], "row `nope`: unknown method"),
        (vec!["sweep", "--methods", "ls,ls"], "are the same"),
        (vec!["sweep", "--methods", "ls", "--rows", &typo], "row `wide`: --set agent.hiden"),
        (vec!["sweep", "--rows", &unknown], "unknown field `methods`"),
        (vec!["sweep", "--rows", &missing], "cannot read"),
        (vec!["sweep", "--methods", "ls", "--method", "fairgrad"], "not --method"),
        (vec!["sweep", "--methods", "ls", "--slurm", "--slurm-opts", "gpu"], "`gpu` is not an sbatch option"),
        (vec!["bench", "freq", "--method", "nash", "--every", "1,0"], "row `nash-0`: invalid agent configuration: update_weights_every must be at least 1"),
        (vec!["bench", "freq", "--method", "nash", "--every", "1", "--baselines", "ls,nope"], "unknown method"),
        (vec!["bench", "freq", "--method", "nash", "--every", "1", "--update-weights-every", "5"], "drop --update-weights-every"),
    ];
    for (command, message) in cases {
        let result = run(&args(&command, &out, &[]));
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{command:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{command:?}: one line, got {stderr}");
        assert!(stderr.starts_with("mt10: ") && stderr.contains(message), "{command:?}: {stderr}");
        assert!(!out.exists(), "{command:?} created {}", out.display());
    }
    let not_a_sweep = run(&["sweep", "--resume", rows_dir.to_str().unwrap()]);
    assert_eq!(not_a_sweep.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_a_sweep.stderr).contains("is not a sweep directory"));
    std::fs::remove_dir_all(&rows_dir).unwrap();
}

#[test]
fn a_slurm_sweep_is_one_job_array_whose_index_names_the_row_and_seed() {
    let out = scratch("slurm");
    ok(&args(&["sweep", "--methods", "ls,fairgrad", "--seeds", "2", "--slurm", "--slurm-opts", "--time 10"], &out, &[]));
    let script = read(&out.join("slurm/array.sh"));
    assert!(script.contains("#SBATCH --array=0,1,2,3\n") && script.contains("#SBATCH --time 10\n"), "{script}");
    assert!(script.contains(&format!("#SBATCH --output={}/slurm/task-%a.log\n", out.display())), "{script}");
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_mt10")).unwrap();
    let script = script.replace(&format!("exec '{}'", exe.display()), "exec echo");
    for (index, row, seed) in [(0, "ls", 1), (1, "ls", 2), (2, "fairgrad", 1), (3, "fairgrad", 2)] {
        let task = Command::new("bash").args(["-c", &script]).env("SLURM_ARRAY_TASK_ID", index.to_string()).output().unwrap();
        let line = String::from_utf8_lossy(&task.stdout);
        assert_eq!(line.trim(), format!("train --resume {}/{row} --only-seed {seed} --jobs 1 --quiet", out.display()), "task {index}: {script}");
    }
    assert!(!out.join("ls/seed-1").exists(), "--slurm without --submit trains nothing here");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_sweep_trains_as_one_slurm_job_array_and_resume_writes_its_table() {
    if skipped("a_sweep_trains_as_one_slurm_job_array_and_resume_writes_its_table", slurm_missing()) {
        return;
    }
    let cluster = LocalSlurm::start(scratch("slurm-cluster"));
    let out = scratch("slurm-sweep");
    let submit = args(&["sweep", "--methods", "ls,fairgrad", "--seeds", "1", "--steps", "200", "--slurm", "--submit", "--slurm-opts", "--cpus-per-task=1 --time 10"], &out, &[]);
    let submitted = mt10(&submit).env("SLURM_CONF", &cluster.conf).output().unwrap();
    let stderr = String::from_utf8_lossy(&submitted.stderr);
    assert!(submitted.status.success() && stderr.contains("submitted job array"), "{stderr}");
    for (index, row) in [(0, "ls"), (1, "fairgrad")] {
        let log = out.join(format!("slurm/task-{index}.log"));
        wait_until(&format!("{row} trained under Slurm ({})", log.display()), || out.join(format!("{row}/seed-1/summary.json")).exists());
    }
    let table = ok(&["sweep", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(table.contains("| ls | 1 | 200 |") && table.contains("| fairgrad | 1 | 200 |"), "{table}");
    let resubmitted = mt10(&["sweep", "--resume", out.to_str().unwrap(), "--slurm", "--submit"]).env("SLURM_CONF", &cluster.conf).output().unwrap();
    assert_eq!(resubmitted.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&resubmitted.stderr).contains("nothing to submit"));
    // Stopping the cluster while a job step still winds down would leave that step behind.
    wait_until("the array leaving the queue", || cluster.queue_is_empty());
    drop(cluster);
    std::fs::remove_dir_all(&out).unwrap();
}
