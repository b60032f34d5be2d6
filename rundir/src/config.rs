//! A run's configuration: the environment (from `envs`), the agent with its combiner (from
//! `agent`), and the run settings, as one TOML document. Resolution order: a preset or a file,
//! then the dedicated flags, then `--set key=value`; the result is validated as a whole before
//! anything is created.
use crate::combiner_args::CombinerArgs;
use crate::UsageError;
use agent::{DeviceChoice, NashFallback, SacConfig};
use anyhow::{anyhow, bail, Context};
use envs::{EnvConfig, MultiTaskEnv};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The presets in `configs/`, built into the binary so it runs from anywhere.
pub const PRESETS: [(&str, &str); 7] = [
    ("mtrl", include_str!("../../configs/mtrl.toml")),
    ("mt10-cpu", include_str!("../../configs/mt10-cpu.toml")),
    ("brc", include_str!("../../configs/brc.toml")),
    ("brc-cpu", include_str!("../../configs/brc-cpu.toml")),
    ("plus", include_str!("../../configs/plus.toml")),
    ("toy", include_str!("../../configs/toy.toml")),
    ("smoke", include_str!("../../configs/smoke.toml")),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub run: RunSettings,
    pub env: EnvConfig,
    pub agent: SacConfig,
}

/// How long to train and how often to evaluate, log and checkpoint; all counts are vector
/// steps (one step of every task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Labels and groups the run in `mt10 report` (`mt10 train --name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub steps: u64,
    pub seeds: Vec<u64>,
    /// Steps taken with uniform random actions before learning starts.
    pub random_steps: u64,
    /// Updates done at once when the random steps are over; `updates_per_step` per step after
    /// that.
    pub initial_updates: u64,
    /// Updates per vector step once learning runs (the replay ratio; BRC does 2).
    #[serde(default = "updates_per_step_default", skip_serializing_if = "is_one")]
    pub updates_per_step: u64,
    pub eval_every: u64,
    /// Deterministic episodes per task in each evaluation.
    pub eval_episodes: usize,
    pub checkpoint_every: u64,
    /// Whether checkpoints hold the replay buffer (`capacity * 335` bytes at MT10 scale), so
    /// that a resumed seed continues with it instead of refilling it.
    #[serde(default = "checkpoint_replay_default")]
    pub checkpoint_replay: bool,
    /// Training scalars are averaged over this many steps.
    pub log_every: u64,
    /// Film one evaluation episode per task every this many steps (a multiple of `eval_every`)
    /// and at the end, into TensorBoard and `videos/`; 0 (the default) films nothing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub video_every: u64,
    /// Methods without per-task gradients (`ls` and the loss weightings) compute none and so no
    /// Gram: with N > 0 (a multiple of `log_every`), the first update of the step before every
    /// N-th step computes them, and the diagnostics (`gram/...`, conflicts.csv) are logged as a
    /// gradient method's; 0 (the default) costs nothing. Gradient methods log theirs every
    /// `log_every`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub log_conflicts_every: u64,
    /// Log each network's plasticity diagnostics (`plasticity/...`: dormant units and srank of
    /// its last hidden layer, as the scaling paper's code) every `log_every` steps, from the first
    /// update of the step before the log; off (the default) costs nothing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub log_plasticity: bool,
}

fn checkpoint_replay_default() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn updates_per_step_default() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

impl RunConfig {
    pub fn preset(name: &str) -> anyhow::Result<Self> {
        let (_, text) = PRESETS.iter().find(|(preset, _)| *preset == name).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|(name, _)| *name).collect();
            anyhow!("unknown preset `{name}` (expected one of {})", names.join(", "))
        })?;
        Self::from_toml(text).with_context(|| format!("preset `{name}`"))
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("{}", path.display()))
    }

    fn from_toml(text: &str) -> anyhow::Result<Self> {
        toml::from_str(text).map_err(|e| anyhow!("{}", one_line(e.message())))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a run config serialises to TOML")
    }

    pub fn task_names(&self) -> anyhow::Result<Vec<String>> {
        Ok(match &self.env {
            EnvConfig::Toy(toy) => envs::ToyEnv::new(toy.clone(), 0)?.spec().task_names.clone(),
            EnvConfig::MetaWorld(mw) => mw.task_names()?.into_iter().map(String::from).collect(),
        })
    }

    /// Sets a dotted key (`agent.combine.combiner.alpha`) to a TOML value; text that is not a
    /// TOML value is taken as a string, so `env.vector_strategy=async` needs no quotes.
    pub fn set(&mut self, assignment: &str) -> anyhow::Result<()> {
        let (key, raw) = assignment.split_once('=').ok_or_else(|| anyhow!("--set {assignment}: expected key=value"))?;
        let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
            Ok(mut table) => table.remove("v").expect("parsed `v`"),
            Err(_) => toml::Value::String(raw.to_string()),
        };
        let mut document = toml::Table::try_from(&*self).expect("a run config is a TOML table");
        let path: Vec<&str> = key.trim().split('.').collect();
        let (last, parents) = path.split_last().expect("split yields at least one item");
        let mut table = &mut document;
        for (depth, part) in parents.iter().enumerate() {
            let entry = table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry
                .as_table_mut()
                .ok_or_else(|| anyhow!("--set {key}: `{}` is a value, not a table", path[..=depth].join(".")))?;
        }
        table.insert(last.to_string(), value);
        *self = document.try_into().map_err(|e: toml::de::Error| anyhow!("--set {key}: {}", one_line(e.message())))?;
        Ok(())
    }

    /// Everything that can be wrong in a config, checked without creating anything.
    pub fn validate(&self) -> anyhow::Result<()> {
        let run = &self.run;
        if run.steps == 0 || run.eval_every == 0 || run.checkpoint_every == 0 || run.log_every == 0 || run.eval_episodes == 0 {
            bail!("run.steps, run.eval_every, run.eval_episodes, run.checkpoint_every and run.log_every must be at least 1");
        }
        if run.random_steps == 0 {
            bail!("run.random_steps must be at least 1 (the first updates need transitions to sample)");
        }
        if run.updates_per_step == 0 {
            bail!("run.updates_per_step must be at least 1");
        }
        if run.seeds.is_empty() {
            bail!("run.seeds is empty");
        }
        if let Some(seed) = run.seeds.iter().enumerate().find_map(|(i, s)| run.seeds[..i].contains(s).then_some(s)) {
            bail!("seed {seed} is listed twice");
        }
        if let EnvConfig::MetaWorld(mw) = &self.env {
            mw.validate()?;
        }
        if !run.log_conflicts_every.is_multiple_of(run.log_every) {
            bail!(
                "run.log_conflicts_every ({}) must be a multiple of run.log_every ({}): the Gram is logged with the other training scalars",
                run.log_conflicts_every,
                run.log_every
            );
        }
        if run.video_every > 0 {
            if !run.video_every.is_multiple_of(run.eval_every) {
                bail!("run.video_every ({}) must be a multiple of run.eval_every ({}): videos are filmed during evaluations", run.video_every, run.eval_every);
            }
            if matches!(self.env, EnvConfig::Toy(_)) {
                bail!("run.video_every needs MetaWorld envs: the toy suite cannot render");
            }
        }
        let tasks = self.task_names()?.len();
        self.agent.validate(tasks)?;
        self.agent.combine.combiner.build(tasks)?;
        if self.agent.device == DeviceChoice::Cuda {
            self.agent.device.resolve()?;
        }
        if run.video_every > 0 {
            // A missing GL library is found now, not at the first filmed evaluation.
            ensure_renderer()?;
        }
        Ok(())
    }

    /// Whether the evaluation at `step` is filmed (`run.video_every`): at its multiples and at
    /// the end, not at step 0 (the untrained policy).
    pub fn films(&self, step: u64) -> bool {
        let every = self.run.video_every;
        every > 0 && step > 0 && (step.is_multiple_of(every) || step == self.run.steps)
    }

    /// The steps at which mtrl (the papers' MT10 code) evaluates: multiples of both the
    /// evaluation interval and the episode length (30,000 under the `mtrl` preset).
    pub fn mtrl_eval_cadence(&self) -> u64 {
        let episode = self.episode_steps();
        let gcd = |mut a: u64, mut b: u64| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        self.run.eval_every / gcd(self.run.eval_every, episode) * episode
    }

    /// The steps of one training episode (`env.max_episode_steps`).
    pub fn episode_steps(&self) -> u64 {
        (match &self.env {
            EnvConfig::Toy(toy) => toy.max_episode_steps,
            EnvConfig::MetaWorld(mw) => mw.max_episode_steps,
        }) as u64
    }

    /// A short label for file names and tables: the method and its non-default settings.
    pub fn method_label(&self) -> String {
        let combiner = toml::Table::try_from(&self.agent.combine.combiner).expect("a combiner config is a TOML table");
        let mut label = self.agent.combine.combiner.method.to_string();
        for (key, value) in combiner.iter().filter(|(key, _)| *key != "method") {
            label.push_str(&format!(" {key}={value}"));
        }
        if self.agent.combine.update_weights_every != 1 {
            label.push_str(&format!(" every={}", self.agent.combine.update_weights_every));
        }
        label
    }
}

/// Makes this process able to render, before its first MetaWorld env; where MuJoCo cannot
/// render, one line naming the fix (the GL library and `MUJOCO_GL`).
pub fn ensure_renderer() -> anyhow::Result<()> {
    #[cfg(feature = "metaworld")]
    return Ok(envs::metaworld::ensure_renderer()?);
    #[cfg(not(feature = "metaworld"))]
    Err(envs::EnvError::MetaWorldDisabled.into())
}

/// Errors from `toml` span several lines (with a source excerpt); ours are one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The options that choose and adjust a run's configuration.
#[derive(Debug, Clone, clap::Args)]
// Combiner options are optional here (the config names a method); `--method` is required only
// when one of them is given.
#[command(mut_arg("method", |arg| arg.required(false)))]
pub struct ConfigArgs {
    /// A preset from configs/: mtrl (the papers' MT10 protocol), mt10-cpu (the same, sized for
    /// about 40 minutes a seed on 2 cores), brc (BRC's multi-task recipe at full width, a GPU
    /// config), brc-cpu (the same recipe, sized for about 40 minutes a seed on 2 cores), plus,
    /// toy (no Python, minutes), smoke (MetaWorld, minutes)
    #[arg(long, default_value = "mtrl", conflicts_with = "config")]
    pub preset: String,
    /// A TOML config file (see configs/) instead of a preset
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Gradient combiner; given, it replaces the config's combiner with this one and its options
    #[command(flatten)]
    pub combiner: Option<CombinerArgs>,
    /// Vector steps per seed (run.steps)
    #[arg(long)]
    pub steps: Option<u64>,
    /// Transitions per update over all tasks (agent.batch_size)
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Recompute the combiner's weights every k updates (agent.combine.update_weights_every)
    #[arg(long, value_name = "K")]
    pub update_weights_every: Option<usize>,
    /// cpu | cuda | auto (agent.device)
    #[arg(long, value_parser = parse_device)]
    pub device: Option<DeviceChoice>,
    /// The weights a Nash-MTL solve that falls back applies: shared (the last good ones of any
    /// component, as the MT10 port) | per_component (agent.combine.nash_fallback)
    #[arg(long, value_parser = parse_nash_fallback)]
    pub nash_fallback: Option<NashFallback>,
    /// MetaWorld tasks to train on, e.g. reach,push (env.tasks)
    #[arg(long, value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,
    /// Any config field: --set agent.hidden=[256,256] --set run.eval_every=5000 (applied last)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub assignments: Vec<String>,
}

fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    match s {
        "cpu" => Ok(DeviceChoice::Cpu),
        "cuda" => Ok(DeviceChoice::Cuda),
        "auto" => Ok(DeviceChoice::Auto),
        _ => Err(format!("unknown device `{s}` (expected cpu, cuda or auto)")),
    }
}

fn parse_nash_fallback(s: &str) -> Result<NashFallback, String> {
    match s {
        "shared" => Ok(NashFallback::Shared),
        "per_component" => Ok(NashFallback::PerComponent),
        _ => Err(format!("unknown nash fallback `{s}` (expected shared or per_component)")),
    }
}

impl ConfigArgs {
    /// The resolved and validated config; every problem is a [`UsageError`].
    pub fn resolve(&self) -> anyhow::Result<RunConfig> {
        self.resolve_unchecked().and_then(|config| config.validate().map(|()| config)).map_err(|e| UsageError(e).into())
    }

    fn resolve_unchecked(&self) -> anyhow::Result<RunConfig> {
        let mut config = match &self.config {
            Some(path) => RunConfig::from_file(path)?,
            None => RunConfig::preset(&self.preset)?,
        };
        if let Some(combiner) = &self.combiner {
            config.agent.combine.combiner = combiner.config();
        }
        if let Some(steps) = self.steps {
            config.run.steps = steps;
        }
        if let Some(batch_size) = self.batch_size {
            config.agent.batch_size = batch_size;
        }
        if let Some(every) = self.update_weights_every {
            config.agent.combine.update_weights_every = every;
        }
        if let Some(device) = self.device {
            config.agent.device = device;
        }
        if let Some(rule) = self.nash_fallback {
            config.agent.combine.nash_fallback = rule;
        }
        if let Some(tasks) = &self.tasks {
            match &mut config.env {
                EnvConfig::MetaWorld(mw) => mw.tasks = tasks.clone(),
                EnvConfig::Toy(_) => bail!("--tasks selects MetaWorld tasks; the toy suite sets env.num_tasks"),
            }
        }
        for assignment in &self.assignments {
            config.set(assignment)?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_loads_and_validates() {
        for (name, _) in PRESETS {
            let config = RunConfig::preset(name).unwrap_or_else(|e| panic!("{e:#}"));
            config.validate().unwrap_or_else(|e| panic!("preset `{name}`: {e:#}"));
            assert_eq!(RunConfig::from_toml(&config.to_toml()).unwrap(), config, "preset `{name}` round-trips");
        }
        let brc = RunConfig::preset("brc").unwrap();
        assert_eq!(brc.agent.task_encoder, agent::TaskEncoder::Embedding);
        assert_eq!(brc.agent.critic_widths(), [4096; 3]);
    }
}
