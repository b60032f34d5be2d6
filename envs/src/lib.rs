//! Multi-task vector environments: `K` tasks stepped together behind one interface, with plain
//! `f32` buffers so nothing Python-shaped reaches the learner.

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
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("expected {expected} action values ({tasks} tasks x {action_dim}), got {got}")]
    ActionShape { expected: usize, tasks: usize, action_dim: usize, got: usize },
}
