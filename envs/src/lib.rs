//! Multi-task vector environments: `K` tasks stepped together behind one interface, with plain
//! `f32` buffers so nothing Python-shaped reaches the learner.
//!
//! - [`toy`]: a pure-Rust point-mass suite (always built);
//! - [`metaworld`]: Meta-World MT10 (or a subset) through embedded CPython (feature `metaworld`);
//! - [`Worker`]: steps an env on its own thread so env stepping overlaps learning;
//! - [`EnvConfig`] / [`build_env`]: what a config file names, and the env it builds.

mod config;
#[cfg(feature = "metaworld")]
pub mod metaworld;
mod metaworld_config;
mod reward_normalization;
pub mod toy;
mod worker;

pub use config::{build_env, EnvConfig};
pub use metaworld_config::{MetaWorldConfig, Preset, RewardVersion, VectorStrategy, MT10_TASKS};
pub use reward_normalization::{RewardNormalization, RunningStdNormalizer};
pub use toy::{ToyConfig, ToyEnv};
pub use worker::{Worker, SHUTDOWN_TIMEOUT};

/// What the learner needs to know about a multi-task vector environment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSpec {
    /// One name per task, in env-index order (the one-hot index, when one is used).
    pub task_names: Vec<String>,
    pub obs_dim: usize,
    pub action_dim: usize,
    /// Episodes are truncated after this many steps.
    pub max_episode_steps: usize,
}

impl EnvSpec {
    pub fn num_tasks(&self) -> usize {
        self.task_names.len()
    }

    /// Rejects action buffers of the wrong length or with non-finite values (which would poison
    /// the simulation state for the rest of the episode).
    pub fn check_actions(&self, actions: &[f32]) -> Result<(), EnvError> {
        let expected = self.num_tasks() * self.action_dim;
        if actions.len() != expected {
            return Err(EnvError::ActionShape {
                expected,
                tasks: self.num_tasks(),
                action_dim: self.action_dim,
                got: actions.len(),
            });
        }
        match actions.iter().position(|a| !a.is_finite()) {
            Some(at) => Err(EnvError::NonFiniteAction {
                task: at / self.action_dim,
            }),
            None => Ok(()),
        }
    }
}

/// The result of stepping all `K` tasks once. Buffers are task-major (`K * obs_dim` etc.).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VecStep {
    /// The observation to act on next: for a task whose episode just ended, the reset observation.
    pub obs: Vec<f32>,
    /// The true next observation of this transition: equals `obs` except for tasks whose episode
    /// ended, where it is the last observation of that episode (what the replay buffer stores).
    pub next_obs: Vec<f32>,
    pub rewards: Vec<f32>,
    /// The episode ended in a terminal state (bootstrapping stops).
    pub terminated: Vec<bool>,
    /// The episode was cut by the time limit (not terminal: bootstrapping goes on).
    pub truncated: Vec<bool>,
    /// The task's success flag at this step.
    pub success: Vec<bool>,
}

/// `K` tasks stepped together.
pub trait MultiTaskEnv: Send {
    fn spec(&self) -> &EnvSpec;
    /// Starts new episodes in every task and returns the observations (`K * obs_dim`).
    fn reset(&mut self) -> Result<Vec<f32>, EnvError>;
    /// Steps every task with its action (`K * action_dim`, in `[-1, 1]`); ended episodes reset.
    fn step(&mut self, actions: &[f32]) -> Result<VecStep, EnvError>;
    /// How many times a task's simulation went numerically unstable and was reset (its episode
    /// cut as truncated). Envs that cannot go unstable keep the default.
    fn instability_resets(&self) -> u64 {
        0
    }
    /// One RGB frame of the current state of each of `tasks` (indices), `size` x `size` pixels
    /// from the named camera. Only MetaWorld renders; call [`metaworld::ensure_renderer`]
    /// before its first env.
    fn render(&mut self, _size: usize, _camera: &str, _tasks: &[usize]) -> Result<Frames, EnvError> {
        Err(EnvError::CannotRender)
    }
}

/// One RGB frame for each of some tasks: rows top to bottom, 3 bytes a pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct Frames {
    pub size: usize,
    /// The tasks rendered, in the order of their frames in `pixels`.
    pub tasks: Vec<usize>,
    pub pixels: Vec<u8>,
}

impl Frames {
    /// The frame of `task`; panics if it was not rendered.
    pub fn task(&self, task: usize) -> &[u8] {
        let index = self.tasks.iter().position(|&t| t == task).expect("the task was rendered");
        let len = self.size * self.size * 3;
        &self.pixels[index * len..(index + 1) * len]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("expected {expected} action values ({tasks} tasks x {action_dim}), got {got}")]
    ActionShape {
        expected: usize,
        tasks: usize,
        action_dim: usize,
        got: usize,
    },
    #[error("the action of task {task} is not finite")]
    NonFiniteAction { task: usize },
    #[error("invalid environment config: {0}")]
    InvalidConfig(String),
    #[error(
        "this build has no MetaWorld support: build with the `metaworld` feature (on by default)"
    )]
    MetaWorldDisabled,
    /// The embedded Python cannot run MetaWorld; raised once, at start-up.
    #[error("{failure}: {detail}\n  fix: run `scripts/test` or `scripts/mt10` from the repository once; it creates the Python environment (.venv) and builds the binary against it")]
    PythonSetup {
        failure: PythonSetupFailure,
        detail: String,
    },
    /// A Python exception while running the envs (message and traceback).
    #[error("Python error in the MetaWorld envs: {0}")]
    Python(String),
    #[error("the env worker thread stopped: {0}")]
    WorkerStopped(String),
    #[error("only the MetaWorld envs can render frames")]
    CannotRender,
    /// MuJoCo cannot render here (no GL library for the chosen backend); raised once, before
    /// any env is built.
    #[error("cannot render MuJoCo frames with MUJOCO_GL={backend} ({detail}); fix: install Debian's libosmesa6 (`apt-get install libosmesa6`) and set MUJOCO_GL=osmesa, or set MUJOCO_GL=egl on a GPU node")]
    RendererUnavailable { backend: String, detail: String },
    #[error("unknown camera `{camera}` (the scene has {})", known.join(", "))]
    UnknownCamera { camera: String, known: Vec<String> },
}

/// Which part of the Python set-up failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PythonSetupFailure {
    /// The interpreter that was loaded is not the version the venv was made for.
    Interpreter,
    /// The venv's site-packages folder is missing.
    Venv,
    /// `import metaworld` (or its dependencies) failed.
    MetaWorldImport,
}

impl std::fmt::Display for PythonSetupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Interpreter => {
                "the embedded Python interpreter does not match the project's Python environment"
            }
            Self::Venv => "the project's Python environment (.venv) is missing",
            Self::MetaWorldImport => {
                "`import metaworld` failed in the project's Python environment"
            }
        })
    }
}
