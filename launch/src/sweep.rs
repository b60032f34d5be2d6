//! `mt10 sweep` (and `mt10 bench freq`, a sweep over k): one run directory per row (a method
//! with its options, or an architecture), every row on the same seeds, all (row, seed) runs
//! trained by the seed processes of `mt10 train` (`jobs` at a time across the whole sweep) or as
//! one Slurm job array; the command then writes the tables (`mt10 report` of the rows).
//!
//! ```text
//! SWEEP/sweep.toml     the rows (name, run directory) and which table the sweep makes
//! SWEEP/<row>/         a run directory of `mt10 train` (its config has run.name = the row's name)
//! SWEEP/report/        report.md, report.csv and the plots of all rows
//! SWEEP/freq.*         `bench freq` only: freq.md, freq.csv, freq.png
//! SWEEP/slurm/         with --slurm: array.sh and task-<i>.log (task i = row i / seeds, seed i % seeds)
//! ```
use crate::seed_processes::{SeedEnd, SeedProcesses, SeedRun};
use crate::seeds::{choose_seeds, create_run_dir, default_jobs, on_stop, utc_timestamp};
use crate::slurm::{self, ArrayTask, JobArray};
use crate::stop_signals::{self, Interrupted};
use anyhow::{anyhow, bail, Context};
use rundir::config::{ConfigArgs, RunConfig};
use rundir::run_files::{read_config, read_summary, seed_dir, write_atomically};
use rundir::UsageError;
use serde::{Deserialize, Serialize};
use solvers::{CombinerConfig, Method};
use std::path::{Path, PathBuf};
use training::device::describe;
use training::progress::Progress;

pub const SWEEP_FILE: &str = "sweep.toml";
/// Where the sweep's tables go: `mt10 report` of all rows.
pub const REPORT_DIR: &str = "report";

/// What `mt10 sweep` and `mt10 bench freq` share: the base config every row starts from, the
/// seeds, and where and how the runs train.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Train seeds 1..=N of every row
    #[arg(long, value_name = "N", conflicts_with = "seed_list")]
    pub seeds: Option<u64>,
    /// Train these seeds of every row, e.g. 1,2,5
    #[arg(long, value_delimiter = ',', value_name = "SEEDS")]
    pub seed_list: Option<Vec<u64>>,
    /// Runs trained at once over the whole sweep, each in its own process [default: from the
    /// cores, or 4 on a GPU]
    #[arg(long, value_name = "J")]
    pub jobs: Option<usize>,
    /// Write one Slurm job array for the whole sweep, one array task per (row, seed), into
    /// DIR/slurm instead of training here
    #[arg(long)]
    pub slurm: bool,
    /// sbatch options for the job array, e.g. "--partition=gpu --time=12:00:00 --gres=gpu:1"
    #[arg(long, value_name = "OPTIONS", requires = "slurm", allow_hyphen_values = true)]
    pub slurm_opts: Option<String>,
    /// Submit the job array with sbatch
    #[arg(long, requires = "slurm")]
    pub submit: bool,
    /// Sweep directory [default: runs/sweep-<UTC time>, runs/freq-<method>-<UTC time>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress lines (for logs and CI); the tables are still printed
    #[arg(long)]
    pub quiet: bool,
    /// Continue a sweep: train its unfinished runs (interrupted ones from their checkpoints),
    /// then write its tables
    #[arg(long, value_name = "DIR", conflicts_with_all = ["ConfigArgs", "seeds", "seed_list", "out"])]
    pub resume: Option<PathBuf>,
}

/// One row of a table: its runs start from the base config, take `method` (its default
/// options) in place of the combiner, then the `set` assignments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub name: String,
    pub method: Option<String>,
    #[serde(default)]
    pub set: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RowsFile {
    row: Vec<Row>,
}

/// The table a sweep ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// `mt10 report` of the rows.
    Report,
    /// That and the weight-update frequency table of `bench freq`.
    Freq,
}

/// A sweep whose runs have all trained, for its tables: each row's name, run directory and config.
pub struct Trained {
    pub dir: PathBuf,
    pub table: Table,
    pub rows: Vec<(String, PathBuf, RunConfig)>,
}

/// `sweep.toml`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    table: Table,
    row: Vec<RowDir>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowDir {
    pub name: String,
    /// The row's run directory, relative to the sweep directory.
    pub dir: PathBuf,
}

/// The rows of a `--rows` file.
pub fn read_rows(path: &Path) -> anyhow::Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: RowsFile = toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), e.message().split_whitespace().collect::<Vec<_>>().join(" ")))?;
    Ok(file.row)
}

/// Creates the sweep of `new_rows` (or continues `--resume`) and trains its unfinished runs;
/// `None` where they went to Slurm as a job array instead. Everything about a new sweep is
/// checked before anything is created.
pub fn run_sweep(args: &SweepArgs, table: Table, new_rows: impl FnOnce(&RunConfig) -> anyhow::Result<Vec<Row>>) -> anyhow::Result<Option<Trained>> {
    let sbatch_lines = args.slurm_opts.as_deref().map(slurm::sbatch_lines).transpose()?.unwrap_or_default();
    if args.submit {
        slurm::check_sbatch()?;
    }
    let (dir, sweep) = match &args.resume {
        Some(dir) => (dir.clone(), read_sweep(dir).map_err(UsageError)?),
        None => {
            let base = base_config(args)?;
            let rows = new_rows(&base).map_err(UsageError)?;
            let configs = row_configs(&base, &rows).map_err(UsageError)?;
            let dir = args.out.clone().unwrap_or_else(|| default_dir(&base, table));
            (dir.clone(), create_sweep(&dir, table, &configs)?)
        }
    };
    let rows = sweep.row.iter().map(|row| Ok((row.name.clone(), dir.join(&row.dir), read_config(&dir.join(&row.dir))?))).collect::<anyhow::Result<Vec<_>>>()?;
    let pending = pending_runs(&rows)?;
    if args.slurm {
        let tasks = pending.iter().map(|(index, run)| ArrayTask { index: *index, run_dir: run.run_dir.clone(), seed: run.seed }).collect();
        let afterwards = format!("mt10 sweep --resume {}", dir.display());
        return slurm::write_job_array(&JobArray { dir: dir.clone(), tasks, log_prefix: "task", afterwards }, &sbatch_lines, args.submit).map(|()| None);
    }
    let runs: Vec<SeedRun> = pending.into_iter().map(|(_, run)| run).collect();
    train(args, &dir, &rows[0].2, &runs)?;
    Ok(Some(Trained { dir, table: sweep.table, rows }))
}

/// The preset or config with the flags and `--set`, and the seeds, validated.
fn base_config(args: &SweepArgs) -> anyhow::Result<RunConfig> {
    let mut config = args.config.resolve()?;
    choose_seeds(&mut config, args.seeds, args.seed_list.as_deref());
    config.validate().map_err(UsageError)?;
    Ok(config)
}

/// Each row's validated config, named after the row.
fn row_configs(base: &RunConfig, rows: &[Row]) -> anyhow::Result<Vec<RunConfig>> {
    if rows.is_empty() {
        bail!("the sweep has no rows");
    }
    let mut configs: Vec<RunConfig> = Vec::new();
    for row in rows {
        if row.name.trim().is_empty() {
            bail!("a row has an empty name");
        }
        if let Some(other) = configs.iter().find(|c| c.run.name.as_deref().map(dir_name) == Some(dir_name(&row.name))) {
            bail!("row names `{}` and `{}` are the same (or name the same directory)", other.run.name.as_deref().unwrap_or_default(), row.name);
        }
        configs.push(row_config(base, row).with_context(|| format!("row `{}`", row.name))?);
    }
    Ok(configs)
}

fn row_config(base: &RunConfig, row: &Row) -> anyhow::Result<RunConfig> {
    let mut config = base.clone();
    if let Some(method) = &row.method {
        config.agent.combine.combiner = CombinerConfig::new(method.parse::<Method>()?);
    }
    for assignment in &row.set {
        config.set(assignment)?;
    }
    config.run.name = Some(row.name.clone());
    config.validate()?;
    Ok(config)
}

/// A row's directory: its name with anything but letters, digits, `-` and `.` as `_`.
fn dir_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

fn default_dir(base: &RunConfig, table: Table) -> PathBuf {
    let name = match table {
        Table::Report => "sweep".to_string(),
        Table::Freq => format!("freq-{}", base.agent.combine.combiner.method),
    };
    PathBuf::from("runs").join(format!("{name}-{}", utc_timestamp()))
}

/// The sweep directory with a run directory per row, `sweep.toml` written last.
fn create_sweep(dir: &Path, table: Table, configs: &[RunConfig]) -> anyhow::Result<SweepFile> {
    if dir.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(UsageError(anyhow!("{} already exists and is not empty (continue it with --resume)", dir.display())).into());
    }
    let mut rows = Vec::new();
    for config in configs {
        let name = config.run.name.clone().expect("rows are named");
        let row = RowDir { dir: PathBuf::from(dir_name(&name)), name };
        create_run_dir(&dir.join(&row.dir), config)?;
        rows.push(row);
    }
    let sweep = SweepFile { table, row: rows };
    write_atomically(&dir.join(SWEEP_FILE), toml::to_string(&sweep)?.as_bytes())?;
    Ok(sweep)
}

fn read_sweep(dir: &Path) -> anyhow::Result<SweepFile> {
    let path = dir.join(SWEEP_FILE);
    if !path.is_file() {
        bail!("{} is not a sweep directory (it has no {SWEEP_FILE})", dir.display());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let sweep: SweepFile = toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), e.message().trim()))?;
    if sweep.row.is_empty() {
        bail!("{} lists no rows", path.display());
    }
    Ok(sweep)
}

/// The runs without a summary, each with its array index: row `i`'s `j`-th seed is
/// `i * seeds + j`, the same in every submission of the sweep.
fn pending_runs(rows: &[(String, PathBuf, RunConfig)]) -> anyhow::Result<Vec<(u64, SeedRun)>> {
    let mut pending = Vec::new();
    for (i, (name, run_dir, config)) in rows.iter().enumerate() {
        let seeds = &config.run.seeds;
        for (j, &seed) in seeds.iter().enumerate() {
            if read_summary(&seed_dir(run_dir, seed))?.is_none() {
                let run = SeedRun { run_dir: run_dir.clone(), seed, label: format!("{name} seed {seed}") };
                pending.push(((i * seeds.len() + j) as u64, run));
            }
        }
    }
    Ok(pending)
}

/// Trains `runs` as child processes, `jobs` at a time; an error when one failed or a stop
/// interrupted them (after which `--resume` continues).
fn train(args: &SweepArgs, dir: &Path, config: &RunConfig, runs: &[SeedRun]) -> anyhow::Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let stop = stop_signals::install(true, on_stop)?;
    let device = describe(config.agent.device);
    if let Some(warning) = &device.warning {
        eprintln!("{warning}");
    }
    let jobs = args.jobs.unwrap_or_else(|| default_jobs(device.on_gpu)).clamp(1, runs.len());
    if !args.quiet {
        eprintln!("mt10: training {} run(s) ({} at a time) in {}, device: {}", runs.len(), jobs, dir.display(), device.description);
    }
    let progress = Progress::labelled(runs.iter().map(|r| r.label.clone()).collect(), jobs, !device.on_gpu, args.quiet);
    let ends = SeedProcesses { runs, jobs, stop, progress: &progress }.run()?;
    let failed: Vec<&str> = ends.iter().filter(|(_, end)| matches!(end, SeedEnd::Failed(_))).map(|(slot, _)| runs[*slot].label.as_str()).collect();
    if !failed.is_empty() {
        bail!("{} failed; resume with `mt10 sweep --resume {}`", failed.join(", "), dir.display());
    }
    if ends.iter().any(|(_, end)| matches!(end, SeedEnd::Interrupted)) {
        eprintln!("mt10: interrupted; checkpoints written; continue with `mt10 sweep --resume {}`", dir.display());
        return Err(Interrupted::by_received_signal().into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fairgrad_table_rows_resolve_on_the_papers_protocol() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/fairgrad-mt10.toml");
        let rows = read_rows(&path).unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["MTL SAC", "MTL SAC + task encoder", "Multi-head SAC", "STL", "PCGrad", "CAGrad", "MoCo", "Nash-MTL", "FAMO", "FairGrad"]
        );
        let base = RunConfig::preset("mtrl").unwrap();
        let configs = row_configs(&base, &rows).unwrap();
        let by_name = |name: &str| &configs[rows.iter().position(|r| r.name == name).unwrap()];
        assert!(by_name("MTL SAC + task encoder").agent.task_one_hot);
        assert_eq!(by_name("Multi-head SAC").agent.architecture, agent::Architecture::MultiHead);
        assert_eq!(by_name("STL").agent.architecture, agent::Architecture::PerTask);
        assert_eq!(by_name("FairGrad").agent.combine.combiner.alpha, Some(2.0));
        assert_eq!(by_name("Nash-MTL").agent.combine.combiner.method, Method::Nash);
        assert_eq!(by_name("MoCo").agent.combine.combiner.method, Method::Moco);
    }

    #[test]
    fn the_all_methods_rows_cover_every_method_once() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/all-methods.toml");
        let rows = read_rows(&path).unwrap();
        let configs = row_configs(&RunConfig::preset("mtrl").unwrap(), &rows).unwrap();
        let methods: Vec<Method> = configs.iter().map(|c| c.agent.combine.combiner.method).collect();
        assert_eq!(methods, Method::ALL);
        assert!(configs.iter().all(|c| c.agent.combine.combiner == solvers::CombinerConfig::new(c.agent.combine.combiner.method)));
        // Methods that take the log of each loss reweight the critic alone (positive losses).
        for c in configs.iter().filter(|c| [Method::Si, Method::Uw, Method::Stch, Method::Famo].contains(&c.agent.combine.combiner.method)) {
            assert!(!c.agent.combine.applies_to(agent::Component::Actor), "{}", c.agent.combine.combiner.method);
        }
    }

    #[test]
    fn the_brc_vs_mtrl_rows_swap_only_the_network_on_either_brc_preset() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/brc-vs-mtrl.toml");
        let rows = read_rows(&path).unwrap();
        for preset in ["brc", "brc-cpu"] {
            let base = RunConfig::preset(preset).unwrap();
            let configs = row_configs(&base, &rows).unwrap();
            let methods: Vec<Method> = configs.iter().map(|c| c.agent.combine.combiner.method).collect();
            assert_eq!(methods, [Method::Ls, Method::FairGrad, Method::Nash].repeat(2), "{preset}");
            for (row, config) in rows.iter().zip(&configs) {
                let agent = &config.agent;
                if row.name.starts_with("brc") {
                    assert_eq!((agent.critic_block, agent.task_encoder), (base.agent.critic_block, agent::TaskEncoder::Embedding), "{preset} {}", row.name);
                    assert_eq!(agent.critic_widths(), base.agent.critic_widths());
                } else {
                    assert_eq!((agent.critic_block, agent.actor_block), (agent::Block::Mlp, agent::Block::Mlp), "{preset} {}", row.name);
                    assert_eq!((agent.critic, agent.task_encoder), (agent::CriticHead::Scalar, agent::TaskEncoder::OneHot));
                    assert_eq!((agent.critic_widths(), agent.actor_widths()), ([400; 3].as_slice(), [400; 3].as_slice()));
                }
                // The recipe is the preset's.
                assert_eq!((config.env.clone(), &config.run.updates_per_step, agent.batch_size, agent.weight_decay, agent.reward_scaling), (base.env.clone(), &base.run.updates_per_step, base.agent.batch_size, base.agent.weight_decay, base.agent.reward_scaling));
            }
        }
    }

    #[test]
    fn rows_are_checked_before_anything_is_made() {
        let base = RunConfig::preset("toy").unwrap();
        let row = |name: &str, method: Option<&str>, set: &[&str]| Row { name: name.into(), method: method.map(String::from), set: set.iter().map(|s| s.to_string()).collect() };
        let error = |rows: &[Row]| format!("{:#}", row_configs(&base, rows).unwrap_err());
        assert!(error(&[row("a", Some("nope"), &[])]).contains("row `a`: unknown method"), "{}", error(&[row("a", Some("nope"), &[])]));
        assert!(error(&[row("b", None, &["agent.hiden=[8]"])]).contains("row `b`: --set agent.hiden"));
        assert!(error(&[row("c", Some("ls"), &["agent.combine.combiner.alpha=2"])]).contains("row `c`"));
        assert!(error(&[row("x y", Some("ls"), &[]), row("x_y", Some("fairgrad"), &[])]).contains("are the same"));
        assert!(error(&[]).contains("no rows"));
    }
}
