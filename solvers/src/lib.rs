//! Gradient combiners for multi-task learning.
//!
//! Every method turns the per-task Gram matrix `M = J J^T` (and, where it needs them, the task
//! losses, or for GradDrop the full Jacobian `J`) into task weights `w`; the update direction is
//! `d = sum_i w_i g_i`. The exact algorithms, including where they follow the authors' public
//! code rather than the papers, are in the crate README and `shared/specs/solvers.md`.

mod config;
mod error;
mod linalg;
mod matrix;
pub mod methods;
pub mod toy;
mod tracking;

pub use config::{CombinerConfig, Method, MgdaNormalization, Solver};
pub use methods::MocoSettings;
pub use error::SolverError;
pub use matrix::{Gram, Jacobian};
pub use tracking::{GradientAverage, SquaredGradientSum, Tracked, TrackingUpdate};

use rand::RngCore;

/// What a combiner is given at one step. Fields a method does not need may be `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskInput<'a> {
    pub gram: Option<&'a Gram>,
    pub losses: Option<&'a [f64]>,
    pub jacobian: Option<&'a Jacobian>,
    pub tracked: Option<&'a Tracked>,
    /// Each task's AdaGrad-scaled squared gradient norm (ExcessMTL): see [`SquaredGradientSum`].
    pub excess_risks: Option<&'a [f64]>,
}

/// What a method reads from [`TaskInput`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub gram: bool,
    pub losses: bool,
    pub jacobian: bool,
    /// A tracked average of the task gradients (MoCo): see [`Tracked`].
    pub tracked: bool,
    /// Each task's squared gradient norm scaled by its accumulated squares (ExcessMTL): see
    /// [`SquaredGradientSum`].
    pub excess_risks: bool,
}

impl Needs {
    /// Methods that weight the losses alone need no per-task gradients at all.
    pub fn per_task_gradients(&self) -> bool {
        self.gram || self.jacobian || self.tracked || self.excess_risks
    }
}

/// A combiner's answer for one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Combination {
    /// Weights on the raw task gradients: `d = sum_i weights[i] g_i`.
    pub weights: Vec<f64>,
    /// Set by methods whose direction is not a combination of the rows (GradDrop masks
    /// coordinates); then `weights` are the weights applied to the masked rows.
    pub direction: Option<Vec<f64>>,
    /// Set when the solve did not reach its target and the weights are a safe substitute.
    pub fallback: Option<Fallback>,
    /// Set by methods whose direction is `Y^T weights` over a tracked average `Y` of the task
    /// gradients (MoCo): how the caller updates `Y` first.
    pub tracking: Option<TrackingUpdate>,
}

impl Combination {
    fn weights(weights: Vec<f64>) -> Self {
        Self { weights, direction: None, fallback: None, tracking: None }
    }

    fn tracked(weights: Vec<f64>, update: TrackingUpdate) -> Self {
        Self { weights, direction: None, fallback: None, tracking: Some(update) }
    }

    /// What is safe to apply: this solve's weights, or `last_good` (those of the last solve
    /// without a fallback, or uniform before the first) when it fell back. A fallback's own
    /// weights can be huge (a diverged root reaches 1e8 and more): applied to a shared
    /// temperature, they freeze it.
    pub fn or_last_good(self, last_good: &[f64]) -> Self {
        match self.fallback {
            None => self,
            Some(fallback) => Self { weights: last_good.to_vec(), direction: None, fallback: Some(fallback), tracking: None },
        }
    }
}

/// Why a combiner fell back to substitute weights. Counted and logged by the trainer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// The root diverges: the gradients are (near) Pareto-stationary, or the Gram is zero.
    /// The weights are the last finite iterate, capped in magnitude.
    Diverged,
    /// The iteration cap was hit before the tolerance: the weights are the best iterate.
    NotConverged,
    /// The Gram (or a normalisation of it) is degenerate, e.g. all gradients are zero.
    Degenerate,
}

/// One gradient combiner. Stateful methods (Nash-MTL's warm start, FAMO, UW, DWA, the bandits)
/// own their state; randomness comes from the caller's seeded RNG.
pub trait Combiner: Send {
    fn method(&self) -> Method;
    fn needs(&self) -> Needs;
    /// Weights for `k` tasks at this step. `input` must hold what [`Combiner::needs`] says,
    /// validated for `k` tasks (use [`combine`], which checks).
    fn solve(&mut self, k: usize, input: &TaskInput, rng: &mut dyn RngCore) -> Result<Combination, SolverError>;
    /// Called after the optimizer step with the losses recomputed on the same batch (FAMO).
    fn after_step(&mut self, _new_losses: &[f64]) -> Result<(), SolverError> {
        Ok(())
    }
    /// Whether [`Combiner::after_step`] does anything (so callers can skip the extra forward).
    fn wants_after_step(&self) -> bool {
        false
    }
    /// The method's state, for checkpoints. Stateless methods return `Null`.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn load_state(&mut self, _state: &serde_json::Value) -> Result<(), SolverError> {
        Ok(())
    }
}

/// Validates `input` against what `combiner` needs for `k` tasks, solves, and guarantees finite
/// weights (a non-finite answer is a [`SolverError::NonFiniteResult`], never returned weights).
pub fn combine(
    combiner: &mut dyn Combiner,
    k: usize,
    input: &TaskInput,
    rng: &mut dyn RngCore,
) -> Result<Combination, SolverError> {
    let needs = combiner.needs();
    let method = combiner.method();
    if k == 0 {
        return Err(SolverError::NoTasks);
    }
    if needs.gram {
        let gram = input.gram.ok_or(SolverError::Missing { method, what: "the Gram matrix" })?;
        if gram.k() != k {
            return Err(SolverError::TaskCount { what: "Gram matrix", expected: k, got: gram.k() });
        }
    }
    if needs.jacobian {
        let jacobian = input.jacobian.ok_or(SolverError::Missing { method, what: "the Jacobian" })?;
        if jacobian.k() != k {
            return Err(SolverError::TaskCount { what: "Jacobian", expected: k, got: jacobian.k() });
        }
    }
    if needs.tracked {
        let tracked = input.tracked.ok_or(SolverError::Missing { method, what: "the tracked gradient average" })?;
        if tracked.gram.k() != k || tracked.cross.nrows() != k {
            return Err(SolverError::TaskCount { what: "tracked gradient average", expected: k, got: tracked.gram.k() });
        }
    }
    if needs.excess_risks {
        let risks = input.excess_risks.ok_or(SolverError::Missing { method, what: "the excess risks" })?;
        if risks.len() != k {
            return Err(SolverError::TaskCount { what: "excess risks", expected: k, got: risks.len() });
        }
        if let Some(task) = risks.iter().position(|r| !r.is_finite()) {
            return Err(SolverError::NonFinite { what: "excess risks", index: task });
        }
    }
    if needs.losses {
        let losses = input.losses.ok_or(SolverError::Missing { method, what: "task losses" })?;
        if losses.len() != k {
            return Err(SolverError::TaskCount { what: "losses", expected: k, got: losses.len() });
        }
        if let Some(task) = losses.iter().position(|l| !l.is_finite()) {
            return Err(SolverError::NonFinite { what: "losses", index: task });
        }
    }
    let combination = combiner.solve(k, input, rng)?;
    let tracking = combination.tracking.iter().flat_map(|t| t.scale.iter().chain([&t.decay]));
    let finite = combination.weights.iter().chain(combination.direction.iter().flatten()).chain(tracking).all(|x| x.is_finite());
    if !finite {
        return Err(SolverError::NonFiniteResult { method });
    }
    Ok(combination)
}

/// `d = sum_i w_i g_i` for the rows `g_i` of `jacobian`.
pub fn direction(weights: &[f64], jacobian: &Jacobian) -> Vec<f64> {
    let mut d = vec![0.0; jacobian.p()];
    for (w, row) in weights.iter().zip(jacobian.rows()) {
        for (di, gi) in d.iter_mut().zip(row) {
            *di += w * gi;
        }
    }
    d
}
