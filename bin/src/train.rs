//! `mt10 train`: resolve and check the config, lay out the run directory, train the seeds
//! (one in this process, several as child processes, `jobs` at a time, or as a Slurm job
//! array), print a table; `--resume DIR` continues a run's unfinished seeds.
use crate::config::{ConfigArgs, RunConfig};
use crate::device::describe;
use crate::progress::Progress;
use crate::run_files::{read_config, read_summary, seed_dir, Summary, CONFIG};
use crate::seed_processes::{interrupt_children, SeedEnd, SeedProcesses, SeedRun};
use crate::slurm;
use crate::stats::{mean, sem};
use crate::stop_signals::{self, StopSignal};
use crate::trainer::{train_seed, SeedJob, SeedOutcome};
use crate::{Interrupted, UsageError};
use anyhow::{anyhow, Context};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Train seeds 1..=N
    #[arg(long, value_name = "N", conflicts_with = "seed_list")]
    seeds: Option<u64>,
    /// Train these seeds, e.g. 1,2,5
    #[arg(long, value_delimiter = ',', value_name = "SEEDS")]
    seed_list: Option<Vec<u64>>,
    /// Seeds trained at once, each in its own process [default: from the cores, or 4 on a GPU]
    #[arg(long, value_name = "J")]
    jobs: Option<usize>,
    /// Train only this seed of the run (with --resume); what each Slurm array task runs
    #[arg(long, value_name = "S", requires = "resume", conflicts_with = "slurm")]
    only_seed: Option<u64>,
    /// Report progress to a parent `mt10 train` as status lines on stdout
    #[arg(long, hide = true, requires = "only_seed")]
    child: bool,
    /// Write a Slurm job array, one array task per seed, into DIR/slurm instead of training here
    #[arg(long)]
    slurm: bool,
    /// sbatch options for the job array, e.g. "--partition=gpu --time=12:00:00 --gres=gpu:1"
    #[arg(long, value_name = "OPTIONS", requires = "slurm", allow_hyphen_values = true)]
    slurm_opts: Option<String>,
    /// Submit the job array with sbatch
    #[arg(long, requires = "slurm")]
    submit: bool,
    /// Run directory [default: runs/<name or method>-<UTC time>]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// A name for the run, used by `mt10 report` to label and group it
    #[arg(long)]
    name: Option<String>,
    /// No progress lines (for logs and CI); the final table is still printed
    #[arg(long)]
    quiet: bool,
    /// Print the resolved config (TOML) and exit without training
    #[arg(long, conflicts_with = "resume")]
    print_config: bool,
    /// Continue the unfinished seeds of a run directory from their last checkpoints
    #[arg(long, value_name = "DIR", conflicts_with_all = ["ConfigArgs", "seeds", "seed_list", "out", "name"])]
    resume: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let sbatch_lines = args.slurm_opts.as_deref().map(slurm::sbatch_lines).transpose()?.unwrap_or_default();
    if args.submit {
        slurm::check_sbatch()?;
    }
    let (config, dir) = match &args.resume {
        Some(dir) => (read_config(dir).map_err(UsageError)?, dir.clone()),
        None => {
            let config = resolve(args)?;
            if args.print_config {
                print!("{}", config.to_toml());
                return Ok(());
            }
            let dir = args.out.clone().unwrap_or_else(|| default_dir(&config));
            create_run_dir(&dir, &config)?;
            (config, dir)
        }
    };
    let pending = pending_seeds(&config, &dir, args.only_seed)?;
    if args.slurm {
        return slurm::write_job_array(&slurm::JobArray::seeds(&dir, &pending), &sbatch_lines, args.submit);
    }
    let stop = stop_signals::install(!args.child, on_stop)?;
    if args.child {
        // Here `--jobs` says how many seeds share the machine with this one.
        share_cores(args.jobs.unwrap_or(1).max(1));
        return match pending.first() {
            Some(&seed) => train_here(&config, &dir, seed, stop, &Progress::for_parent()),
            None => Ok(()),
        };
    }
    let device = describe(config.agent.device);
    if let Some(warning) = &device.warning {
        eprintln!("{warning}");
    }
    let jobs = args.jobs.unwrap_or_else(|| default_jobs(device.on_gpu)).clamp(1, pending.len().max(1));
    if !args.quiet {
        eprintln!("mt10: training {} seed(s) of {} ({} at a time) in {}, device: {}", pending.len(), config.method_label(), jobs, dir.display(), device.description);
    }
    let progress = Progress::new(pending.len(), jobs, !device.on_gpu, args.quiet);
    let ends = match pending[..] {
        [] => Vec::new(),
        [seed] => {
            share_cores(1);
            train_here(&config, &dir, seed, stop, &progress).map(|()| vec![(seed, SeedEnd::Finished)]).or_else(|error| match error.downcast_ref::<Interrupted>() {
                Some(_) => Ok(vec![(seed, SeedEnd::Interrupted)]),
                None => Err(error),
            })?
        }
        _ => {
            let runs: Vec<SeedRun> = pending.iter().map(|&seed| SeedRun { run_dir: dir.clone(), seed, label: format!("seed {seed}") }).collect();
            SeedProcesses { runs: &runs, jobs, stop, progress: &progress }.run()?.into_iter().map(|(slot, end)| (pending[slot], end)).collect()
        }
    };
    let summaries: Vec<Summary> = config.run.seeds.iter().filter_map(|&s| read_summary(&seed_dir(&dir, s)).ok().flatten()).collect();
    print!("{}", final_table(&summaries));
    let failed: Vec<String> = ends.iter().filter(|(_, end)| matches!(end, SeedEnd::Failed(_))).map(|(seed, _)| seed.to_string()).collect();
    if !failed.is_empty() {
        return Err(anyhow!("seed(s) {} failed; resume them with `mt10 train --resume {}`", failed.join(", "), dir.display()));
    }
    if ends.iter().any(|(_, end)| matches!(end, SeedEnd::Interrupted)) {
        eprintln!("mt10: interrupted; checkpoints written; continue with `mt10 train --resume {}`", dir.display());
        return Err(Interrupted::by_received_signal().into());
    }
    Ok(())
}

/// The run's seeds without a summary, or only `only_seed` (when it is one of them).
fn pending_seeds(config: &RunConfig, dir: &Path, only_seed: Option<u64>) -> anyhow::Result<Vec<u64>> {
    if let Some(seed) = only_seed.filter(|s| !config.run.seeds.contains(s)) {
        let seeds: Vec<String> = config.run.seeds.iter().map(u64::to_string).collect();
        return Err(UsageError(anyhow!("seed {seed} is not a seed of {} ({})", dir.display(), seeds.join(", "))).into());
    }
    let mut pending = Vec::new();
    for &seed in &config.run.seeds {
        if only_seed.is_none_or(|s| s == seed) && read_summary(&seed_dir(dir, seed))?.is_none() {
            pending.push(seed);
        }
    }
    Ok(pending)
}

/// One seed in this process; `Interrupted` after a stop (with its checkpoint written).
fn train_here(config: &RunConfig, dir: &Path, seed: u64, stop: &AtomicBool, progress: &Progress) -> anyhow::Result<()> {
    let job = SeedJob { config, seed, dir: seed_dir(dir, seed), stop, progress, slot: 0 };
    match train_seed(&job).with_context(|| format!("seed {seed}"))? {
        SeedOutcome::Finished => Ok(()),
        SeedOutcome::Interrupted => Err(Interrupted::by_received_signal().into()),
    }
}

fn resolve(args: &Args) -> anyhow::Result<RunConfig> {
    let mut config = args.config.resolve()?;
    choose_seeds(&mut config, args.seeds, args.seed_list.as_deref());
    config.run.name.clone_from(&args.name);
    config.validate().map_err(UsageError)?;
    Ok(config)
}

/// A new run directory with the resolved config; an existing non-empty one is refused (its
/// seeds would be mixed with this run's), pointing at `--resume`.
pub fn create_run_dir(dir: &Path, config: &RunConfig) -> anyhow::Result<()> {
    if dir.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(UsageError(anyhow!("{} already exists and is not empty (continue it with --resume)", dir.display())).into());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join(CONFIG), config.to_toml())?;
    Ok(())
}

fn default_dir(config: &RunConfig) -> PathBuf {
    let label = config.run.name.clone().unwrap_or_else(|| config.agent.combine.combiner.method.to_string());
    PathBuf::from("runs").join(format!("{label}-{}", utc_timestamp()))
}

pub fn utc_timestamp() -> String {
    format_utc(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// `YYYYMMDD-HHMMSS` in UTC.
fn format_utc(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// The libtorch threads of one of `jobs` seeds training at once, each in its own process with
/// an env thread stepping while its learner updates: half the cores go to the envs. (An
/// oversubscribed OpenMP pool spins and can slow updates down a hundredfold.)
pub fn share_cores(jobs: usize) {
    tch::set_num_threads((cores() / (2 * jobs)).max(1) as i32);
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Each CPU seed keeps about two cores busy (learner and env thread); a GPU takes a few seeds
/// at once, the envs then being the limit.
pub fn default_jobs(on_gpu: bool) -> usize {
    if on_gpu {
        4
    } else {
        (cores() / 2).max(1)
    }
}

/// The first SIGINT or SIGTERM asks the seeds (here and in child processes, which get the same
/// signal) to checkpoint and stop.
pub fn on_stop(signal: StopSignal) {
    interrupt_children(signal);
    eprintln!("\nmt10: {}: stopping after the current step (checkpointing); send it again to quit at once", signal.name());
}

/// `--seeds N` (1..=N) or `--seed-list`, in place of the config's seeds.
pub fn choose_seeds(config: &mut RunConfig, seeds: Option<u64>, seed_list: Option<&[u64]>) {
    if let Some(n) = seeds {
        config.run.seeds = (1..=n).collect();
    }
    if let Some(list) = seed_list {
        config.run.seeds = list.to_vec();
    }
}

fn final_table(summaries: &[Summary]) -> String {
    if summaries.is_empty() {
        return String::new();
    }
    let mut table = String::from("| seed | steps | best success | final success | wall time | steps/s | solver time |\n");
    table.push_str("|---:|---:|---:|---:|---:|---:|---:|\n");
    for s in summaries {
        table.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {} | {:.1} | {:.1}% |\n",
            s.seed,
            s.steps,
            s.best_success,
            s.final_success,
            crate::progress::format_duration(std::time::Duration::from_secs_f64(s.wall_time_s)),
            s.steps_per_s,
            100.0 * s.solver_time_share
        ));
    }
    let best: Vec<f64> = summaries.iter().map(|s| s.best_success).collect();
    table.push_str(&format!("\nbest success: {:.3} +- {:.3} (mean +- s.e.m. over {} seeds)\n", mean(&best), sem(&best), best.len()));
    table
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_timestamps_of_known_instants() {
        assert_eq!(super::format_utc(0), "19700101-000000");
        assert_eq!(super::format_utc(951_782_400), "20000229-000000");
        assert_eq!(super::format_utc(1_700_000_000), "20231114-221320");
    }
}
