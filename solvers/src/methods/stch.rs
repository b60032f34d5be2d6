use super::{positive_losses, LOSSES};
use crate::linalg::softmax;
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Smooth Tchebycheff scalarisation (Lin et al., ICML 2024), as LibMTL's `STCH.py`, on the losses
/// alone. LibMTL trains on `sum_i log L_i` for `STCH_warmup_epoch` epochs, then one more epoch
/// while averaging the losses into the nadir point `z`, and from then on on
/// `K mu log sum_i exp(log(L_i / z_i + 1e-20) / mu)`. Its weights on the losses are the
/// derivatives: `1 / (L_i + 1e-20)` in the warm-up, then
/// `K softmax(log(L_i / z_i + 1e-20) / mu)_i / (z_i (L_i / z_i + 1e-20))`.
/// Here epochs are counted in solves: `warmup` plain solves, then `average` averaging solves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stch {
    #[serde(skip)]
    settings: StchSettings,
    /// Solves so far.
    step: usize,
    /// The sum of the losses over the averaging solves so far.
    loss_sum: Vec<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StchSettings {
    /// Temperature (LibMTL's `STCH_mu`, 1).
    pub mu: f64,
    /// Solves on the log losses before the nadir point is averaged.
    pub warmup: usize,
    /// Solves over which the nadir point is averaged (then still on the log losses).
    pub average: usize,
}

impl Stch {
    pub fn new(k: usize, settings: StchSettings) -> Self {
        Self { settings, step: 0, loss_sum: vec![0.0; k] }
    }
}

impl Combiner for Stch {
    fn method(&self) -> Method {
        Method::Stch
    }

    fn needs(&self) -> Needs {
        LOSSES
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let losses = positive_losses(Method::Stch, input, false)?;
        let StchSettings { mu, warmup, average } = self.settings;
        self.step += 1;
        if self.loss_sum.len() != k {
            self.loss_sum = vec![0.0; k];
        }
        if self.step <= warmup + average {
            if self.step > warmup {
                self.loss_sum.iter_mut().zip(losses).for_each(|(s, l)| *s += l);
            }
            return Ok(Combination::weights(losses.iter().map(|l| 1.0 / (l + 1e-20)).collect()));
        }
        let nadir: Vec<f64> = self.loss_sum.iter().map(|s| s / average as f64).collect();
        let ratios: Vec<f64> = losses.iter().zip(&nadir).map(|(l, z)| l / z + 1e-20).collect();
        let p = softmax(&ratios.iter().map(|r| r.ln() / mu).collect::<Vec<_>>());
        let weights = p.iter().zip(ratios.iter().zip(&nadir)).map(|(p, (r, z))| k as f64 * p / (z * r)).collect();
        Ok(Combination::weights(weights))
    }

    fn state(&self) -> serde_json::Value {
        super::saved(self)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        let bad = |reason: String| SolverError::BadState { method: Method::Stch, reason };
        let loaded: Self = super::restored(Method::Stch, state)?;
        if loaded.loss_sum.len() != self.loss_sum.len() || loaded.loss_sum.iter().any(|s| !s.is_finite() || *s < 0.0) {
            return Err(bad(format!("expected {} non-negative loss sums, got {:?}", self.loss_sum.len(), loaded.loss_sum)));
        }
        *self = Self { settings: self.settings, ..loaded };
        Ok(())
    }
}
