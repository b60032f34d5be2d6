use super::{positive_losses, LOSSES};
use crate::linalg::Adam;
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Uncertainty weighting: `sum 0.5 (exp(-s_i) L_i + s_i)` with learnable log-variances `s`
/// (from 0, Adam). The weights are `0.5 exp(-s_i)`; `s` then takes its own Adam step on the
/// same losses, as it would sharing the model's backward pass. Negative losses would send
/// `s` to minus infinity, so they are rejected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Uncertainty {
    log_variances: Vec<f64>,
    optimizer: Adam,
}

impl Uncertainty {
    pub fn new(k: usize, lr: f64) -> Self {
        Self { log_variances: vec![0.0; k], optimizer: Adam::new(k, lr, 0.0) }
    }
}

impl Combiner for Uncertainty {
    fn method(&self) -> Method {
        Method::Uw
    }

    fn needs(&self) -> Needs {
        LOSSES
    }

    fn solve(&mut self, _k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let losses = positive_losses(Method::Uw, input, true)?;
        let weights: Vec<f64> = self.log_variances.iter().map(|s| 0.5 * (-s).exp()).collect();
        let grad: Vec<f64> = weights.iter().zip(losses).map(|(w, l)| 0.5 - w * l).collect();
        self.optimizer.step(&mut self.log_variances, &grad);
        Ok(Combination::weights(weights))
    }

    fn state(&self) -> serde_json::Value {
        super::saved(self)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        *self = super::restored(Method::Uw, state)?;
        Ok(())
    }
}
