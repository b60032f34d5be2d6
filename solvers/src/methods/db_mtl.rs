use super::{gram, losses};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput, TrackingUpdate};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// DB-MTL (Lin et al., "Dual-Balancing for Multi-Task Learning"), as LibMTL's `DB_MTL.py`: the
/// gradients of the log losses, `g_i / (L_i + 1e-8)`, feed a moving average
/// `Y <- beta_t Y + (1 - beta_t) diag(1 / (L_i + 1e-8)) J` with `beta_t = beta / t^beta_sigma` at
/// the `t`-th solve (from zero, as LibMTL's buffer), and `d = sum_i w_i y_i` with
/// `w_i = max_j ||y_j|| / (||y_i|| + 1e-8)`: every task's averaged gradient scaled to the largest.
/// `Y` lives with the caller, as MoCo's (a [`TrackingUpdate`]). As MoCo, the loss enters by its
/// absolute value, so a negative loss (SAC's actor) does not turn its gradient around.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbMtl {
    #[serde(skip)]
    beta: f64,
    #[serde(skip)]
    beta_sigma: f64,
    /// Solves so far.
    step: u64,
}

impl DbMtl {
    pub fn new(beta: f64, beta_sigma: f64) -> Self {
        Self { beta, beta_sigma, step: 0 }
    }
}

const NEEDS: Needs = Needs { gram: true, losses: true, jacobian: false, tracked: true, excess_risks: false };

impl Combiner for DbMtl {
    fn method(&self) -> Method {
        Method::DbMtl
    }

    fn needs(&self) -> Needs {
        NEEDS
    }

    fn solve(&mut self, _k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let tracked = input.tracked.expect("combine() checks the tracked average is present");
        self.step += 1;
        let decay = self.beta / (self.step as f64).powf(self.beta_sigma);
        let scale = losses(input).iter().map(|l| (1.0 - decay) / (l.abs() + 1e-8)).collect();
        let update = TrackingUpdate::new(decay, scale, tracked, gram(input))?;
        let norms = update.gram.norms();
        let largest = norms.iter().copied().fold(0.0, f64::max);
        let weights = norms.iter().map(|n| largest / (n + 1e-8)).collect();
        Ok(Combination::tracked(weights, update))
    }

    fn state(&self) -> serde_json::Value {
        super::saved(self)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        let loaded: Self =
            super::restored(Method::DbMtl, state)?;
        self.step = loaded.step;
        Ok(())
    }
}
