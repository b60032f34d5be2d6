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
pub const SUMMARY: &str = "summary.json";
pub const CHECKPOINTS: &str = "checkpoints";
pub const VIDEOS: &str = "videos";

pub fn seed_dir(run_dir: &Path, seed: u64) -> PathBuf {
    run_dir.join(format!("seed-{seed}"))
}

pub fn read_config(run_dir: &Path) -> anyhow::Result<RunConfig> {
    let path = run_dir.join(CONFIG);
    if !path.is_file() {
        bail!("{} is not a run directory (it has no {CONFIG})", run_dir.display());
    }
    RunConfig::from_file(&path)
}

/// Writes `contents` to `path` so that readers (and a killed process) see the old file or the
/// new one, never a part: a temporary file in the same directory, flushed, then renamed.
pub fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
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

/// The task names (from the header) and rows of a `metrics.csv`.
pub fn read_metrics(path: &Path) -> anyhow::Result<(Vec<String>, Vec<MetricsRow>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or_else(|| anyhow!("{} is empty", path.display()))?.split(',').collect();
    let tasks: Vec<String> = header.iter().filter_map(|h| h.strip_prefix("success:")).map(String::from).collect();
    let k = tasks.len();
    let rows = lines
        .enumerate()
        .map(|(i, line)| {
            let fields = line.split(',').map(str::parse::<f64>).collect::<Result<Vec<_>, _>>().ok().filter(|f| f.len() == 3 + 2 * k);
            let fields = fields.ok_or_else(|| anyhow!("{} line {}: malformed", path.display(), i + 2))?;
            Ok(MetricsRow {
                step: fields[0] as u64,
                wall_time_s: fields[1],
                success: fields[3..3 + k].to_vec(),
                returns: fields[3 + k..].to_vec(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((tasks, rows))
}

/// The combiner weights of one component, averaged over a log interval.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsRow {
    pub step: u64,
    pub component: String,
    pub weights: Vec<f64>,
}

pub fn weights_header(tasks: &[String]) -> String {
    format!("step,component,{}\n", tasks.join(","))
}

pub fn weights_line(row: &WeightsRow) -> String {
    let values: String = row.weights.iter().map(|w| format!(",{w}")).collect();
    format!("{},{}{values}\n", row.step, row.component)
}

pub fn read_weights(path: &Path) -> anyhow::Result<Vec<WeightsRow>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .skip(1)
        .enumerate()
        .map(|(i, line)| {
            let mut fields = line.split(',');
            let malformed = || anyhow!("{} line {}: malformed", path.display(), i + 2);
            let step = fields.next().and_then(|s| s.parse().ok()).ok_or_else(malformed)?;
            let component = fields.next().ok_or_else(malformed)?.to_string();
            let weights = fields.map(str::parse).collect::<Result<_, _>>().map_err(|_| malformed())?;
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
}

pub fn read_summary(seed_dir: &Path) -> anyhow::Result<Option<Summary>> {
    let path = seed_dir.join(SUMMARY);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?))
}
