//! `mt10 train --slurm` and `mt10 sweep --slurm`: seeds as one Slurm job array, one array task
//! per seed of a run directory, each running `mt10 train --resume RUN --only-seed <seed>` into
//! that run directory; `mt10 report` and `--resume` then work on it as on a local run. For
//! `train` the array index is the seed; for a sweep it numbers the sweep's (row, seed) pairs.
//!
//! `DIR/slurm/array.sh` is the job script; `DIR/slurm/<log prefix>-<index>.log` gets each
//! task's output (appended to when a task is submitted again).
use anyhow::{anyhow, bail, Context};
use rundir::UsageError;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const SLURM_DIR: &str = "slurm";
const SCRIPT: &str = "array.sh";

/// `sbatch` options as `#SBATCH` lines: options split at whitespace, a word that does not start
/// with `-` being the value of the option before it (`--time 4:00:00`).
pub fn sbatch_lines(options: &str) -> anyhow::Result<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    for word in options.split_whitespace() {
        if word.contains(['\'', '"', '\\', '$', '`']) {
            return Err(UsageError(anyhow!("--slurm-opts: quoting and shell syntax are not supported ({word})")).into());
        }
        match lines.last_mut() {
            Some(line) if !word.starts_with('-') => {
                line.push(' ');
                line.push_str(word);
            }
            None if !word.starts_with('-') => return Err(UsageError(anyhow!("--slurm-opts: `{word}` is not an sbatch option")).into()),
            _ => lines.push(format!("#SBATCH {word}")),
        }
    }
    Ok(lines)
}

/// Fails early (before a run directory is created) where `--submit` has no `sbatch` to run.
pub fn check_sbatch() -> anyhow::Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir.join("sbatch").is_file()) {
        return Ok(());
    }
    bail!("no sbatch on the PATH: is Slurm installed here? (without --submit, --slurm only writes the job script)")
}

/// One array task: a seed of a run directory.
pub struct ArrayTask {
    pub index: u64,
    pub run_dir: PathBuf,
    pub seed: u64,
}

/// A job array of seeds: its script goes to `dir/slurm/array.sh`, task `i`'s output to
/// `dir/slurm/<log_prefix>-<i>.log`.
pub struct JobArray {
    pub dir: PathBuf,
    pub tasks: Vec<ArrayTask>,
    pub log_prefix: &'static str,
    /// The command that makes the table once the array is done.
    pub afterwards: String,
}

impl JobArray {
    /// `mt10 train`'s array: task `s` trains seed `s` of `run_dir`.
    pub fn seeds(run_dir: &Path, seeds: &[u64]) -> Self {
        let tasks = seeds.iter().map(|&seed| ArrayTask { index: seed, run_dir: run_dir.to_path_buf(), seed }).collect();
        Self { dir: run_dir.to_path_buf(), tasks, log_prefix: "seed", afterwards: format!("mt10 report {}", run_dir.display()) }
    }
}

/// Writes the job array and, with `submit`, submits it.
pub fn write_job_array(array: &JobArray, extra_lines: &[String], submit: bool) -> anyhow::Result<()> {
    let run_dir = std::path::absolute(&array.dir)?;
    if array.tasks.is_empty() {
        return Err(UsageError(anyhow!("every seed of {} is finished; nothing to submit", run_dir.display())).into());
    }
    let exe = std::env::current_exe().context("cannot find the mt10 executable for the job script")?;
    let slurm_dir = run_dir.join(SLURM_DIR);
    std::fs::create_dir_all(&slurm_dir).with_context(|| format!("cannot create {}", slurm_dir.display()))?;
    let script = slurm_dir.join(SCRIPT);
    let tasks = array.tasks.iter().map(|t| Ok(ArrayTask { index: t.index, run_dir: std::path::absolute(&t.run_dir)?, seed: t.seed })).collect::<std::io::Result<Vec<_>>>()?;
    std::fs::write(&script, job_script(&run_dir, &exe, &tasks, array.log_prefix, extra_lines))?;
    if !submit {
        eprintln!("mt10: wrote {}; submit it with `sbatch {}`", script.display(), script.display());
        return Ok(());
    }
    let out = Command::new("sbatch").arg("--parsable").arg(&script).output().context("cannot run sbatch")?;
    if !out.status.success() {
        bail!("sbatch {} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    eprintln!("mt10: submitted job array {job} ({} seed(s)) for {}; follow it with `squeue -j {job}`, then `{}`", tasks.len(), run_dir.display(), array.afterwards);
    Ok(())
}

/// Each task trains one seed with the whole allocation (`--jobs 1`), the array index naming its
/// run directory and seed. `--signal` asks Slurm for a SIGTERM two minutes before the time
/// limit, the signal it also sends on `scancel` and preemption, which checkpoints the seed (exit
/// 143); resume it with `--resume DIR --slurm --submit`. `B:` signals only the batch shell: the
/// script `exec`s mt10, so mt10 is that process. The user's options come last and so win.
fn job_script(dir: &Path, exe: &Path, tasks: &[ArrayTask], log_prefix: &str, extra_lines: &[String]) -> String {
    let array: Vec<String> = tasks.iter().map(|t| t.index.to_string()).collect();
    let name = dir.file_name().map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    let log = dir.join(SLURM_DIR).join(format!("{log_prefix}-%a.log"));
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name={}", shell_word(&format!("mt10-{name}"))),
        format!("#SBATCH --array={}", array.join(",")),
        format!("#SBATCH --output={}", log.display()),
        "#SBATCH --open-mode=append".into(),
        "#SBATCH --cpus-per-task=2".into(),
        "#SBATCH --signal=B:TERM@120".into(),
    ];
    lines.extend(extra_lines.iter().cloned());
    lines.push("case \"$SLURM_ARRAY_TASK_ID\" in".into());
    lines.extend(tasks.iter().map(|t| format!("  {}) run={} seed={} ;;", t.index, shell_quote(&t.run_dir), t.seed)));
    lines.push("  *) echo \"mt10: array task $SLURM_ARRAY_TASK_ID is not one of this job's\" >&2; exit 2 ;;".into());
    lines.push("esac".into());
    lines.push(format!("exec {} train --resume \"$run\" --only-seed \"$seed\" --jobs 1 --quiet", shell_quote(exe)));
    lines.join("\n") + "\n"
}

/// A name for `#SBATCH` lines, which are not shell-parsed: no whitespace.
fn shell_word(text: &str) -> String {
    text.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect()
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn options_become_sbatch_lines_values_joined_to_their_option() {
        let lines = sbatch_lines(" --partition=gpu --time 4:00:00  -c 8 --gres=gpu:1").unwrap();
        assert_eq!(lines, ["#SBATCH --partition=gpu", "#SBATCH --time 4:00:00", "#SBATCH -c 8", "#SBATCH --gres=gpu:1"]);
        assert!(sbatch_lines("gpu").is_err());
        assert!(sbatch_lines("--comment='a b'").is_err());
    }

    #[test]
    fn the_script_runs_each_array_task_as_its_seed() {
        let array = JobArray::seeds(Path::new("/runs/it's"), &[1, 2, 5]);
        let script = job_script(&array.dir, &PathBuf::from("/bin/mt10"), &array.tasks, array.log_prefix, &["#SBATCH --time=1:00".into()]);
        assert!(script.contains("#SBATCH --array=1,2,5\n"), "{script}");
        assert!(script.contains("#SBATCH --output=/runs/it's/slurm/seed-%a.log\n"), "{script}");
        assert!(script.contains("#SBATCH --signal=B:TERM@120\n"), "{script}");
        assert!(script.contains("#SBATCH --time=1:00\ncase \"$SLURM_ARRAY_TASK_ID\" in\n  1) run='/runs/it'\\''s' seed=1 ;;\n  2) run="), "{script}");
        assert!(script.contains("\n  5) run='/runs/it'\\''s' seed=5 ;;\n"), "{script}");
        assert!(script.ends_with("esac\nexec '/bin/mt10' train --resume \"$run\" --only-seed \"$seed\" --jobs 1 --quiet\n"), "{script}");
        assert_eq!(run_script(&script, 5), "train --resume /runs/it's --only-seed 5 --jobs 1 --quiet");
        assert!(run_script(&script, 3).contains("not one of this job's"));
    }

    /// What the script execs for array task `index`, with `/bin/mt10` replaced by `echo`.
    fn run_script(script: &str, index: u64) -> String {
        let script = script.replace("exec '/bin/mt10'", "exec echo");
        let out = Command::new("bash").args(["-c", &script]).env("SLURM_ARRAY_TASK_ID", index.to_string()).output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)).trim().to_string()
    }
}
