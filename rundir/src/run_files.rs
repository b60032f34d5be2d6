//! The files of a run directory, written by `mt10 train` and read by `mt10 report`,
//! `mt10 eval` and `mt10 bench freq`:
//!
//! ```text
//! DIR/config.toml                  the fully resolved config
//! DIR/seed-<s>/events.out.tfevents.*   TensorBoard scalars
//! DIR/seed-<s>/metrics.csv         one row per evaluation
//! DIR/seed-<s>/weights.csv         combiner weights per component, every log interval
//! DIR/seed-<s>/checkpoints/step-<n>/
//! DIR/seed-<s>/videos/step-<n>/<task>-1.gif   with `run.video_every`: the filmed evaluations
//! DIR/seed-<s>/summary.json        written when the seed finishes
//! DIR/seed-<s>/stderr.log          the seed's stderr, when it ran as a child process
//! DIR/slurm/                       with `--slurm`: the job script, one log per array task
//! ```
use crate::config::RunConfig;
use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.toml";
pub const METRICS: &str = "metrics.csv";
pub const WEIGHTS: &str = "weights.csv";
/// Per log interval and component with a Gram: `conflicts,cos_mean,cos_min` and the cosine of
/// each task pair `a|b` (`a` before `b`), in the shape of `weights.csv`.
pub const CONFLICTS: &str = "conflicts.csv";
pub const SUMMARY: &str = "summary.json";
pub const CHECKPOINTS: &str = "checkpoints";
pub const VIDEOS: &str = "videos";

pub fn seed_dir(run_dir: &Path, seed: u64) -> PathBuf {
    run_dir.join(format!("seed-{seed}"))
}

pub fn read_config(run_dir: &Path) -> anyhow::Result<RunConfig> {
    let path = run_dir.join(CONFIG);
    if !path.is_file() {
        bail!("{} is missing: {} is not a run directory", path.display(), run_dir.display());
    }
    RunConfig::from_file(&path)
}

/// Writes `contents` to `path` so that readers (and a killed process) see the old file or the
/// new one, never a part: a temporary file in the same directory, flushed, then renamed.
pub fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    if let Err(error) = file.write_all(contents).and_then(|()| file.sync_all()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(error).with_context(|| format!("cannot write {}", path.display()));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// One evaluation: per-task success rates and mean returns over the evaluation episodes.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRow {
    pub step: u64,
    /// Training wall time of the seed when the evaluation ended (resumed runs add up).
    pub wall_time_s: f64,
    pub success: Vec<f64>,
    pub returns: Vec<f64>,
}

impl MetricsRow {
    /// The mean success over tasks: the number the papers report (its best over evaluations).
    pub fn mean_success(&self) -> f64 {
        self.success.iter().sum::<f64>() / self.success.len() as f64
    }
}

pub fn metrics_header(tasks: &[String]) -> String {
    let success = tasks.iter().map(|t| format!(",success:{t}"));
    let returns = tasks.iter().map(|t| format!(",return:{t}"));
    format!("step,wall_time_s,mean_success{}{}\n", success.collect::<String>(), returns.collect::<String>())
}

pub fn metrics_line(row: &MetricsRow) -> String {
    let values: String = row.success.iter().chain(&row.returns).map(|v| format!(",{v}")).collect();
    format!("{},{:.3},{}{values}\n", row.step, row.wall_time_s, row.mean_success())
}

/// The task names (from the header) and rows of a `metrics.csv`. Anything but what
/// [`metrics_header`] and [`metrics_line`] write is an error naming the file and line: a
/// truncated or garbled row, a success rate outside [0, 1], steps that do not increase.
pub fn read_metrics(path: &Path) -> anyhow::Result<(Vec<String>, Vec<MetricsRow>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    let header = lines.next().ok_or_else(|| anyhow!("{} is empty", path.display()))?;
    let tasks: Vec<String> = header.split(',').filter_map(|h| h.strip_prefix("success:")).map(String::from).collect();
    if tasks.is_empty() || header != metrics_header(&tasks).trim_end() {
        bail!("{} line 1: not the header of a metrics.csv", path.display());
    }
    let k = tasks.len();
    let mut rows: Vec<MetricsRow> = Vec::new();
    for (i, line) in lines.enumerate() {
        let damaged = |what: &str| anyhow!("{} line {}: {what}", path.display(), i + 2);
        let fields = line.split(',').map(str::parse::<f64>).collect::<Result<Vec<_>, _>>().map_err(|_| damaged("not a row of numbers"))?;
        if fields.len() != 3 + 2 * k {
            bail!(damaged(&format!("{} values where {} were expected", fields.len(), 3 + 2 * k)));
        }
        let step = fields[0];
        if step < 0.0 || step.fract() != 0.0 || rows.last().is_some_and(|last| step as u64 <= last.step) {
            bail!(damaged(&format!("step {step} does not follow the previous row's")));
        }
        let success = fields[3..3 + k].to_vec();
        if success.iter().any(|s| !(0.0..=1.0).contains(s)) {
            bail!(damaged("a success rate outside [0, 1]"));
        }
        rows.push(MetricsRow { step: step as u64, wall_time_s: fields[1], success, returns: fields[3 + k..].to_vec() });
    }
    Ok((tasks, rows))
}

/// The combiner weights of one component, averaged over a log interval.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsRow {
    pub step: u64,
    pub component: String,
    pub weights: Vec<f64>,
}

/// The header of `weights.csv` (`columns` the tasks) or of `conflicts.csv` ([`conflict_columns`]).
pub fn weights_header(columns: &[String]) -> String {
    format!("step,component,{}\n", columns.join(","))
}

/// The columns of `conflicts.csv` after `step,component`.
pub fn conflict_columns(tasks: &[String]) -> Vec<String> {
    let pairs = (0..tasks.len()).flat_map(|i| (i + 1..tasks.len()).map(move |j| (i, j)));
    ["conflicts", "cos_mean", "cos_min"].map(String::from).into_iter().chain(pairs.map(|(i, j)| format!("{}|{}", tasks[i], tasks[j]))).collect()
}

pub fn weights_line(row: &WeightsRow) -> String {
    let values: String = row.weights.iter().map(|w| format!(",{w}")).collect();
    format!("{},{}{values}\n", row.step, row.component)
}

/// The rows of a `weights.csv` (or `conflicts.csv`), each with one value per column of its
/// header; anything else is an error naming the file and line.
pub fn read_weights(path: &Path) -> anyhow::Result<Vec<WeightsRow>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    let tasks = match lines.next().and_then(|header| header.strip_prefix("step,component,")) {
        Some(tasks) => tasks.split(',').count(),
        None => bail!("{} line 1: not the header of a weights.csv", path.display()),
    };
    lines
        .enumerate()
        .map(|(i, line)| {
            let mut fields = line.split(',');
            let malformed = || anyhow!("{} line {}: malformed", path.display(), i + 2);
            let step = fields.next().and_then(|s| s.parse().ok()).ok_or_else(malformed)?;
            let component = fields.next().filter(|c| !c.is_empty()).ok_or_else(malformed)?.to_string();
            let weights: Vec<f64> = fields.map(str::parse).collect::<Result<_, _>>().map_err(|_| malformed())?;
            if weights.len() != tasks {
                return Err(malformed());
            }
            Ok(WeightsRow { step, component, weights })
        })
        .collect()
}

/// `summary.json`: what a finished seed reached and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub seed: u64,
    pub method: String,
    pub steps: u64,
    /// The best mean success over the evaluations (the papers' number) and where it was reached.
    pub best_success: f64,
    pub best_step: u64,
    pub final_success: f64,
    pub wall_time_s: f64,
    pub steps_per_s: f64,
    pub updates: u64,
    /// Mean wall time of one update (critic, actor, temperature).
    pub update_ms: f64,
    /// Share of the training wall time spent in the combiners' solves.
    pub solver_time_share: f64,
    pub skipped_updates: u64,
    /// Weight solves per component (critic, actor, alpha) that fell back (diverged, degenerate
    /// or not converged) and applied the last good weights instead.
    #[serde(default)]
    pub fallbacks: BTreeMap<String, u64>,
    /// Vector steps taken after resuming to refill the replay buffer (not in `steps`); 0 unless
    /// the checkpoints were written without it (`run.checkpoint_replay = false`).
    pub refill_steps: u64,
    /// What the last session trained on: `cuda:0 (NVIDIA H200)`, `cpu`, or `cpu (auto: why)`.
    #[serde(default)]
    pub device: String,
    /// Parameters of the `actor` and the `critic` (both Q-networks), over all tasks.
    #[serde(default)]
    pub parameters: BTreeMap<String, u64>,
}

pub fn read_summary(seed_dir: &Path) -> anyhow::Result<Option<Summary>> {
    let path = seed_dir.join(SUMMARY);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?))
}
