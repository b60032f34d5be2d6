//! Checkpoints of one seed: `checkpoints/step-<n>/` holds the agent (the agent crate's
//! `Sac::save`: networks, optimizers, temperatures, combiner state, RNG and, with
//! `run.checkpoint_replay`, the replay buffer), the trainer's counters
//! (`trainer.json`), the run's config, so a checkpoint is evaluable on its own, and a manifest
//! with every file's checksum. Each is written into a hidden temporary directory, flushed to
//! disk and renamed into place, so a killed process or a full disk leaves either a complete
//! checkpoint or none; a checkpoint damaged afterwards is found by its checksums before it is
//! read, and resuming falls back to the one before it.
use crate::config::RunConfig;
use crate::manifest::{self, ManifestError};
use crate::run_files::{read_config, seed_dir, CHECKPOINTS, CONFIG};
use crate::UsageError;
use agent::Sac;
use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const AGENT: &str = "agent";
const TRAINER: &str = "trainer.json";
/// Older checkpoints are deleted; the newest few are kept.
const KEEP: usize = 2;
/// What a damaged checkpoint is renamed to when resuming falls back to an older one.
const DAMAGED_SUFFIX: &str = ".damaged";
/// The trainer's side of a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Vector steps done.
    pub step: u64,
    pub wall_time_s: f64,
    pub update_ms_total: f64,
    pub solver_us_total: f64,
    pub refill_steps: u64,
    /// Of `run.initial_updates`, those done (all of them unless a stop came in between).
    #[serde(default)]
    pub initial_updates_done: u64,
}

pub struct Checkpoint {
    pub dir: PathBuf,
    pub state: TrainerState,
}

impl Checkpoint {
    /// `with_replay`: restore the saved replay buffer too (to go on training; evaluation needs none).
    pub fn load_agent(&self, sac: &mut Sac, with_replay: bool) -> anyhow::Result<()> {
        Ok(sac.load(&self.dir.join(AGENT), with_replay)?)
    }

    pub fn config(&self) -> anyhow::Result<RunConfig> {
        RunConfig::from_file(&self.dir.join(CONFIG))
    }
}

pub fn save(seed_dir: &Path, config: &RunConfig, sac: &Sac, state: &TrainerState) -> anyhow::Result<()> {
    let root = seed_dir.join(CHECKPOINTS);
    let name = format!("step-{}", state.step);
    let partial = root.join(format!(".{name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    if let Err(error) = write_files(&partial, config, sac, state) {
        // Frees what it took (the disk may be full); the older checkpoints are untouched.
        let _ = std::fs::remove_dir_all(&partial);
        return Err(error);
    }
    let target = root.join(&name);
    if target.exists() {
        std::fs::remove_dir_all(&target).with_context(|| format!("cannot replace {}", target.display()))?;
    }
    std::fs::rename(&partial, &target).with_context(|| format!("cannot write checkpoint {}", target.display()))?;
    std::fs::File::open(&root).and_then(|dir| dir.sync_all()).with_context(|| format!("cannot write {}", root.display()))?;
    for old in complete_checkpoints(seed_dir)?.into_iter().rev().skip(KEEP) {
        std::fs::remove_dir_all(&old.1).with_context(|| format!("cannot remove {}", old.1.display()))?;
    }
    Ok(())
}

fn write_files(dir: &Path, config: &RunConfig, sac: &Sac, state: &TrainerState) -> anyhow::Result<()> {
    sac.save(&dir.join(AGENT), config.run.checkpoint_replay)?;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write(TRAINER, serde_json::to_string_pretty(state)?)?;
    write(CONFIG, config.to_toml())?;
    Ok(manifest::write(dir)?)
}

/// The newest intact checkpoint of a seed, if any (left-over partial ones are removed). Newer
/// damaged ones are set aside (renamed `step-<n>.damaged`) with a line on stderr each; when
/// every checkpoint is damaged it refuses (a usage error) rather than start the seed over.
pub fn latest(seed_dir: &Path) -> anyhow::Result<Option<Checkpoint>> {
    let root = seed_dir.join(CHECKPOINTS);
    if root.is_dir() {
        for entry in std::fs::read_dir(&root)? {
            let path = entry?.path();
            if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".partial")) {
                std::fs::remove_dir_all(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
    }
    let mut damaged: Vec<(PathBuf, String)> = Vec::new();
    for (_, dir) in complete_checkpoints(seed_dir)?.into_iter().rev() {
        match open_verified(&dir) {
            Ok(checkpoint) => {
                for (dir, why) in damaged {
                    let aside = dir.with_file_name(format!("{}{DAMAGED_SUFFIX}", dir.file_name().unwrap_or_default().to_string_lossy()));
                    let kept = std::fs::rename(&dir, &aside).map_or_else(|e| format!("left in place: {e}"), |()| format!("set aside as {}", aside.display()));
                    eprintln!("mt10: {why}; resuming from {} instead (the damaged checkpoint is {kept})", checkpoint.dir.display());
                }
                return Ok(Some(checkpoint));
            }
            Err(error) if error.downcast_ref::<ManifestError>().is_some() => damaged.push((dir, error.to_string())),
            Err(error) => return Err(error),
        }
    }
    if damaged.is_empty() {
        return Ok(None);
    }
    let why: Vec<String> = damaged.into_iter().map(|(_, why)| why).collect();
    let message = anyhow!("{}; no intact checkpoint is left to resume from (delete {} to start the seed over)", why.join("; "), root.display());
    Err(UsageError(message).into())
}

/// A checkpoint directory, or the newest checkpoint of a seed directory; a damaged one is an
/// error naming the damaged file.
pub fn open_path(path: &Path) -> anyhow::Result<Checkpoint> {
    if path.join(TRAINER).is_file() || path.join(manifest::MANIFEST).is_file() {
        return open_verified(path);
    }
    let newest = complete_checkpoints(path)?.pop();
    let (_, dir) = newest.ok_or_else(|| anyhow!("{} is neither a checkpoint nor a seed directory with checkpoints", path.display()))?;
    open_verified(&dir)
}

/// In a run directory, the checkpoint of `seed` (default: the run's first) at `step` (default:
/// the newest), with its seed.
pub fn open_in_run(run_dir: &Path, seed: Option<u64>, step: Option<u64>) -> anyhow::Result<(Checkpoint, u64)> {
    let config = read_config(run_dir)?;
    let seed = seed.unwrap_or(config.run.seeds[0]);
    let dir = seed_dir(run_dir, seed);
    if !config.run.seeds.contains(&seed) {
        let seeds: Vec<String> = config.run.seeds.iter().map(u64::to_string).collect();
        return Err(anyhow!("seed {seed} is not a seed of {} ({})", run_dir.display(), seeds.join(", ")));
    }
    match step {
        None => open_path(&dir),
        Some(step) => {
            let path = dir.join(CHECKPOINTS).join(format!("step-{step}"));
            if !path.is_dir() {
                return Err(anyhow!("{} has no checkpoint of step {step} (only the newest two are kept)", dir.display()));
            }
            open_path(&path)
        }
    }
    .map(|checkpoint| (checkpoint, seed))
}

/// The seed of `.../seed-<s>/checkpoints/step-<n>`.
pub fn seed_of(checkpoint_dir: &Path) -> Option<u64> {
    checkpoint_dir.ancestors().find_map(|dir| dir.file_name()?.to_str()?.strip_prefix("seed-")?.parse().ok())
}

/// The checkpoint in `dir` once its files match its manifest (else a [`ManifestError`] naming
/// the damaged file). Checkpoints from before manifests were written are used as they are,
/// with a warning: they were written atomically, only not checksummed.
fn open_verified(dir: &Path) -> anyhow::Result<Checkpoint> {
    match manifest::verify(dir) {
        Ok(()) => {}
        Err(ManifestError::Missing(_)) => {
            eprintln!("mt10: warning: {} has no {} (written by an older mt10), so its files cannot be verified", dir.display(), manifest::MANIFEST);
        }
        Err(error) => return Err(error.into()),
    }
    open(dir)
}

fn open(dir: &Path) -> anyhow::Result<Checkpoint> {
    let path = dir.join(TRAINER);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let state = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    Ok(Checkpoint { dir: dir.to_path_buf(), state })
}

/// `(step, dir)` of the complete checkpoints, oldest first.
fn complete_checkpoints(seed_dir: &Path) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    let root = seed_dir.join(CHECKPOINTS);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&root)? {
        let path = entry?.path();
        let step = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("step-")).and_then(|s| s.parse().ok());
        if let Some(step) = step {
            found.push((step, path));
        }
    }
    found.sort();
    Ok(found)
}
