use super::{positive_losses, LOSSES};
use crate::linalg::{softmax, softmax_backward, Adam};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// FAMO: loss weights from softmax logits, which are themselves trained (Adam with L2 weight
/// decay) to make every task's log-loss fall at the same rate, measured by recomputing the
/// losses on the same batch after the model's step. The effective weights on the raw task
/// gradients are `z_i / (c (L_i + 1e-8))`, `c = sum_j z_j / (L_j + 1e-8)`: the gradient of
/// `sum z_i log(L_i + 1e-8) / c`. The MT10 code behind FAMO's published MT10 result multiplies
/// by `c` instead (weights `c z_i / (L_i + 1e-8)`): `mt10` selects that form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Famo {
    /// A setting, not state: kept as configured when a checkpoint is loaded.
    #[serde(skip)]
    mt10: bool,
    logits: Vec<f64>,
    optimizer: Adam,
    /// The losses and softmax weights of the last `solve`, awaiting `after_step`.
    pending: Option<(Vec<f64>, Vec<f64>)>,
}

impl Famo {
    pub fn new(k: usize, mt10: bool, lr: f64, gamma: f64) -> Self {
        Self { mt10, logits: vec![0.0; k], optimizer: Adam::new(k, lr, gamma), pending: None }
    }
}

impl Combiner for Famo {
    fn method(&self) -> Method {
        Method::Famo
    }

    fn needs(&self) -> Needs {
        LOSSES
    }

    fn solve(&mut self, _k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let losses = positive_losses(Method::Famo, input, true)?;
        let z = softmax(&self.logits);
        let c: f64 = z.iter().zip(losses).map(|(zi, l)| zi / (l + 1e-8)).sum();
        let scale = if self.mt10 { c } else { 1.0 / c };
        let weights = z.iter().zip(losses).map(|(zi, l)| scale * zi / (l + 1e-8)).collect();
        self.pending = Some((losses.to_vec(), z));
        Ok(Combination::weights(weights))
    }

    fn wants_after_step(&self) -> bool {
        true
    }

    fn after_step(&mut self, new_losses: &[f64]) -> Result<(), SolverError> {
        let Some((old, z)) = self.pending.take() else {
            return Ok(());
        };
        if new_losses.len() != old.len() {
            return Err(SolverError::TaskCount { what: "losses", expected: old.len(), got: new_losses.len() });
        }
        if let Some(task) = new_losses.iter().position(|l| !l.is_finite() || *l < 0.0) {
            return Err(SolverError::NonPositiveLoss { method: Method::Famo, task, value: new_losses[task] });
        }
        let decrease: Vec<f64> = old.iter().zip(new_losses).map(|(a, b)| (a + 1e-8).ln() - (b + 1e-8).ln()).collect();
        self.optimizer.step(&mut self.logits, &softmax_backward(&z, &decrease));
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        super::saved(self)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        let mt10 = self.mt10;
        *self = super::restored(Method::Famo, state)?;
        self.mt10 = mt10;
        Ok(())
    }
}
