//! `mt10 train --slurm`: a run's seeds as one Slurm job array, one array task per seed (the
//! array index is the seed), each running `mt10 train --resume DIR --only-seed <seed>` into the
//! same run directory; `mt10 report` and `--resume` then work on it as on a local run.
//!
//! `DIR/slurm/array.sh` is the job script; `DIR/slurm/seed-<s>.log` gets each task's output
//! (appended to when a seed is submitted again).
use crate::UsageError;
use anyhow::{anyhow, bail, Context};
use std::path::Path;
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

/// Writes the job array for `seeds` of the run in `run_dir` and, with `submit`, submits it.
pub fn write_job_array(run_dir: &Path, seeds: &[u64], extra_lines: &[String], submit: bool) -> anyhow::Result<()> {
    if seeds.is_empty() {
        return Err(UsageError(anyhow!("every seed of {} is finished; nothing to submit", run_dir.display())).into());
    }
    let run_dir = std::path::absolute(run_dir)?;
    let exe = std::env::current_exe().context("cannot find the mt10 executable for the job script")?;
    let slurm_dir = run_dir.join(SLURM_DIR);
    std::fs::create_dir_all(&slurm_dir).with_context(|| format!("cannot create {}", slurm_dir.display()))?;
    let script = slurm_dir.join(SCRIPT);
    std::fs::write(&script, job_script(&run_dir, &exe, seeds, extra_lines))?;
    if !submit {
        eprintln!("mt10: wrote {}; submit it with `sbatch {}`", script.display(), script.display());
        return Ok(());
    }
    let out = Command::new("sbatch").arg("--parsable").arg(&script).output().context("cannot run sbatch")?;
    if !out.status.success() {
        bail!("sbatch {} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    eprintln!("mt10: submitted job array {job} ({} seed(s)) for {}; follow it with `squeue -j {job}`, then `mt10 report {}`", seeds.len(), run_dir.display(), run_dir.display());
    Ok(())
}

/// Each task trains one seed with the whole allocation (`--jobs 1`). `--signal` asks Slurm for
/// a SIGTERM two minutes before the time limit, the signal it also sends on `scancel` and
/// preemption, which checkpoints the seed (exit 143); resume it with `--resume DIR --slurm
/// --submit`. `B:` signals only the batch shell: the script `exec`s mt10, so mt10 is that
/// process. The user's options come last and so win.
fn job_script(run_dir: &Path, exe: &Path, seeds: &[u64], extra_lines: &[String]) -> String {
    let array: Vec<String> = seeds.iter().map(u64::to_string).collect();
    let name = run_dir.file_name().map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    let log = run_dir.join(SLURM_DIR).join("seed-%a.log");
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
    lines.push(format!(
        "exec {} train --resume {} --only-seed \"$SLURM_ARRAY_TASK_ID\" --jobs 1 --quiet",
        shell_quote(exe),
        shell_quote(run_dir)
    ));
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
        let script = job_script(Path::new("/runs/it's"), &PathBuf::from("/bin/mt10"), &[1, 2, 5], &["#SBATCH --time=1:00".into()]);
        assert!(script.contains("#SBATCH --array=1,2,5\n"), "{script}");
        assert!(script.contains("#SBATCH --output=/runs/it's/slurm/seed-%a.log\n"), "{script}");
        assert!(script.contains("#SBATCH --signal=B:TERM@120\n"), "{script}");
        assert!(script.ends_with("#SBATCH --time=1:00\nexec '/bin/mt10' train --resume '/runs/it'\\''s' --only-seed \"$SLURM_ARRAY_TASK_ID\" --jobs 1 --quiet\n"), "{script}");
    }
}
