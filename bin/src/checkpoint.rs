//! Checkpoints of one seed: `checkpoints/step-<n>/` holds the agent (the agent crate's
//! `Sac::save`: networks, optimizers, temperatures, combiner state, RNG and, with
//! `run.checkpoint_replay`, the replay buffer), the trainer's counters
//! (`trainer.json`) and the run's config, so a checkpoint is evaluable on its own. Each is written
//! into a hidden temporary directory and renamed into place, so a killed process leaves either a
//! complete checkpoint or none.
use crate::config::RunConfig;
use crate::run_files::{CHECKPOINTS, CONFIG};
use agent::Sac;
use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const AGENT: &str = "agent";
const TRAINER: &str = "trainer.json";
/// Older checkpoints are deleted; the newest few are kept.
const KEEP: usize = 2;

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
        std::fs::remove_dir_all(&partial)?;
    }
    std::fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    sac.save(&partial.join(AGENT), config.run.checkpoint_replay)?;
    std::fs::write(partial.join(TRAINER), serde_json::to_string_pretty(state)?)?;
    std::fs::write(partial.join(CONFIG), config.to_toml())?;
    let target = root.join(&name);
    if target.exists() {
        std::fs::remove_dir_all(&target)?;
    }
    std::fs::rename(&partial, &target).with_context(|| format!("cannot write checkpoint {}", target.display()))?;
    for old in complete_checkpoints(seed_dir)?.into_iter().rev().skip(KEEP) {
        std::fs::remove_dir_all(old.1)?;
    }
    Ok(())
}

/// The newest complete checkpoint of a seed, if any (left-over partial ones are removed).
pub fn latest(seed_dir: &Path) -> anyhow::Result<Option<Checkpoint>> {
    let root = seed_dir.join(CHECKPOINTS);
    if root.is_dir() {
        for entry in std::fs::read_dir(&root)? {
            let path = entry?.path();
            if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".partial")) {
                std::fs::remove_dir_all(&path)?;
            }
        }
    }
    complete_checkpoints(seed_dir)?.pop().map(|(_, dir)| open(&dir)).transpose()
}

/// A checkpoint directory, or the newest checkpoint of a seed directory.
pub fn open_path(path: &Path) -> anyhow::Result<Checkpoint> {
    if path.join(TRAINER).is_file() {
        return open(path);
    }
    let newest = complete_checkpoints(path)?.pop();
    let (_, dir) = newest.ok_or_else(|| anyhow!("{} is neither a checkpoint nor a seed directory with checkpoints", path.display()))?;
    open(&dir)
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
