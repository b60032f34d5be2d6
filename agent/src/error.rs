use crate::config::Component;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// Why an update of one component was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    NonFiniteLoss,
    NonFiniteGradient,
    /// The combiner produced no finite weights for a finite Gram matrix.
    NonFiniteWeights,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::NonFiniteLoss => "a task loss is not finite",
            SkipReason::NonFiniteGradient => "the gradient is not finite",
            SkipReason::NonFiniteWeights => "the combiner's weights are not finite",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{component} combiner: {source}")]
    Solver { component: Component, source: solvers::SolverError },
    #[error(
        "the {component} update was skipped {count} times in a row ({reason}): training has diverged; \
         lower the learning rates, check the environment's rewards and observations, or try another combiner"
    )]
    Diverged { component: Component, count: usize, reason: SkipReason },
    #[error("invalid agent configuration: {0}")]
    Config(String),
    #[error("device `cuda` requested but libtorch sees no CUDA device (use `cpu` or `auto`)")]
    CudaUnavailable,
    #[error("{what}: expected {expected} values, got {got}")]
    Shape { what: &'static str, expected: usize, got: usize },
    #[error("cannot sample {needed} transitions: the replay buffer is empty{detail}")]
    EmptyReplay { needed: usize, detail: String },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
}
