//! What selects and shapes the MetaWorld envs: plain config fields (serde, for TOML), with the two
//! protocols of the spec as presets. Always built, so a config file parses even in a build
//! without the `metaworld` feature (which then refuses to build the env, with a clear error).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{EnvError, RewardNormalization};

/// The MT10 tasks in Meta-World's env order (= one-hot index), without the `-v3` suffix.
pub const MT10_TASKS: [&str; 10] = [
    "reach",
    "push",
    "pick-place",
    "door-open",
    "drawer-open",
    "drawer-close",
    "button-press-topdown",
    "peg-insert-side",
    "window-open",
    "window-close",
];

/// How the Python side steps the envs: one process (`sync`), or one worker process per env
/// (`async`, started from a fork server, so safe at any time; it pays only with spare cores).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorStrategy {
    #[default]
    Sync,
    Async,
}

impl VectorStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Async => "async",
        }
    }
}

impl FromStr for VectorStrategy {
    type Err = EnvError;
    fn from_str(s: &str) -> Result<Self, EnvError> {
        match s {
            "sync" => Ok(Self::Sync),
            "async" => Ok(Self::Async),
            other => Err(EnvError::InvalidConfig(format!(
                "unknown vector strategy {other:?} (sync or async)"
            ))),
        }
    }
}

/// Meta-World's `reward_function_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RewardVersion {
    V1,
    V2,
}

impl RewardVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

/// The two protocols of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The papers' protocol: 150-step episodes, one fixed goal per task, no one-hot, reward v1
    /// divided by a running standard deviation.
    Mtrl,
    /// Meta-World+ style: one-hot task id, 500-step episodes, a new goal each reset, reward v2.
    Plus,
}

impl Preset {
    pub fn config(self) -> MetaWorldConfig {
        match self {
            Self::Mtrl => MetaWorldConfig {
                tasks: Vec::new(),
                max_episode_steps: 150,
                num_goals: 1,
                use_one_hot: false,
                reward_function_version: RewardVersion::V1,
                reward_normalization: RewardNormalization::RunningStd { ema_rate: 0.001 },
                terminate_on_success: false,
                vector_strategy: VectorStrategy::Sync,
            },
            Self::Plus => MetaWorldConfig {
                tasks: Vec::new(),
                max_episode_steps: 500,
                num_goals: 50,
                use_one_hot: true,
                reward_function_version: RewardVersion::V2,
                reward_normalization: RewardNormalization::None,
                terminate_on_success: false,
                vector_strategy: VectorStrategy::Sync,
            },
        }
    }
}

impl FromStr for Preset {
    type Err = EnvError;
    fn from_str(s: &str) -> Result<Self, EnvError> {
        match s {
            "mtrl" => Ok(Self::Mtrl),
            "plus" => Ok(Self::Plus),
            other => Err(EnvError::InvalidConfig(format!(
                "unknown preset {other:?} (mtrl or plus)"
            ))),
        }
    }
}

/// Every option of `gymnasium.make_vec("Meta-World/MT10", ...)` that the protocols use, plus the
/// task subset and the reward normalisation done in Rust. Missing fields take the `mtrl` preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaWorldConfig {
    /// The tasks, in env (and one-hot) order, named as in [`MT10_TASKS`] (a `-v3` suffix is
    /// accepted). Empty means all of MT10 through `Meta-World/MT10`; otherwise each task is a
    /// `Meta-World/MT1` env (its goals then come from that task's own MT1 benchmark).
    pub tasks: Vec<String>,
    pub max_episode_steps: usize,
    /// Goals per task: 1 keeps one fixed goal per task, more draws one of them at every reset.
    pub num_goals: usize,
    /// Append a one-hot task id (as wide as the number of tasks) to the observation.
    pub use_one_hot: bool,
    pub reward_function_version: RewardVersion,
    pub reward_normalization: RewardNormalization,
    pub terminate_on_success: bool,
    pub vector_strategy: VectorStrategy,
}

impl Default for MetaWorldConfig {
    fn default() -> Self {
        Preset::Mtrl.config()
    }
}

impl MetaWorldConfig {
    /// The selected task names without suffix, in env order: all of MT10 when `tasks` is empty.
    pub fn task_names(&self) -> Result<Vec<&'static str>, EnvError> {
        if self.tasks.is_empty() {
            return Ok(MT10_TASKS.to_vec());
        }
        let mut names: Vec<&'static str> = Vec::with_capacity(self.tasks.len());
        for requested in &self.tasks {
            let bare = requested.strip_suffix("-v3").unwrap_or(requested);
            let name = MT10_TASKS
                .iter()
                .find(|&&known| known == bare)
                .ok_or_else(|| {
                    EnvError::InvalidConfig(format!(
                        "unknown task {requested:?}; MT10 has {}",
                        MT10_TASKS.join(", ")
                    ))
                })?;
            if names.contains(name) {
                return Err(EnvError::InvalidConfig(format!(
                    "task {requested:?} is listed twice"
                )));
            }
            names.push(name);
        }
        Ok(names)
    }

    /// Checks what Meta-World would reject later, less clearly.
    pub fn validate(&self) -> Result<(), EnvError> {
        self.task_names()?;
        if self.max_episode_steps == 0 || self.max_episode_steps > 500 {
            return Err(EnvError::InvalidConfig(format!(
                "max_episode_steps must be in 1..=500 (Meta-World's limit), got {}",
                self.max_episode_steps
            )));
        }
        if self.num_goals == 0 || self.num_goals > 50 {
            return Err(EnvError::InvalidConfig(format!(
                "num_goals must be in 1..=50, got {}",
                self.num_goals
            )));
        }
        self.reward_normalization.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_subsets_resolve_in_the_given_order() {
        let config = MetaWorldConfig {
            tasks: vec!["push-v3".into(), "reach".into()],
            ..Default::default()
        };
        assert_eq!(config.task_names().unwrap(), ["push", "reach"]);
        assert_eq!(MetaWorldConfig::default().task_names().unwrap(), MT10_TASKS);
    }

    #[test]
    fn bad_configs_are_rejected_with_the_reason() {
        let unknown = MetaWorldConfig {
            tasks: vec!["fly".into()],
            ..Default::default()
        };
        assert!(unknown
            .validate()
            .unwrap_err()
            .to_string()
            .contains("unknown task \"fly\""));
        let twice = MetaWorldConfig {
            tasks: vec!["push".into(), "push-v3".into()],
            ..Default::default()
        };
        assert!(twice.validate().unwrap_err().to_string().contains("twice"));
        assert!(MetaWorldConfig {
            max_episode_steps: 501,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(MetaWorldConfig {
            num_goals: 0,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(Preset::Plus.config().validate().is_ok());
    }

    #[test]
    fn strategies_and_presets_parse_from_cli_words() {
        assert_eq!(
            "async".parse::<VectorStrategy>().unwrap(),
            VectorStrategy::Async
        );
        assert_eq!(
            "plus".parse::<Preset>().unwrap().config().max_episode_steps,
            500
        );
        assert!("fast".parse::<VectorStrategy>().is_err());
    }
}
