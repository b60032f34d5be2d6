//! What `mt10 train` and `mt10 sweep` share about a run's seeds: which to train, a new run
//! directory for them, how many train at once and how the cores are shared between them.
use crate::seed_processes::interrupt_children;
use crate::stop_signals::StopSignal;
use anyhow::{anyhow, Context};
use rundir::config::RunConfig;
use rundir::run_files::CONFIG;
use rundir::UsageError;
use std::path::Path;

/// `--seeds N` (1..=N) or `--seed-list`, in place of the config's seeds.
pub fn choose_seeds(config: &mut RunConfig, seeds: Option<u64>, seed_list: Option<&[u64]>) {
    if let Some(n) = seeds {
        config.run.seeds = (1..=n).collect();
    }
    if let Some(list) = seed_list {
        config.run.seeds = list.to_vec();
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn utc_timestamps_of_known_instants() {
        assert_eq!(super::format_utc(0), "19700101-000000");
        assert_eq!(super::format_utc(951_782_400), "20000229-000000");
        assert_eq!(super::format_utc(1_700_000_000), "20231114-221320");
    }
}
