use super::{gram, losses};
use crate::linalg::{mat_vec, softmax};
use crate::tracking::updated_average_gram;
use crate::{Combination, Combiner, Gram, Method, Needs, SolverError, TaskInput, TrackingUpdate};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// MoCo (Fernando et al., ICLR 2023), as LibMTL's `MoCo.py` (the authors' code): a moving average
/// `Y` of the task gradients, each normalised to the length of its loss,
/// `Y <- Y - beta_t (Y - diag(|L_i| / (||g_i|| + 1e-8)) J)`, and one softmax step on the weights,
/// `lambda <- softmax(lambda - gamma_t (Y Y^T + rho I) lambda)`, with `beta_t = beta / t^beta_sigma`,
/// `gamma_t = gamma / t^gamma_sigma` at the `t`-th solve (from 1). The direction is `d = Y^T lambda`
/// of the updated average, not a combination of this step's gradients: the caller keeps `Y`
/// (where the gradients are) and applies the returned [`TrackingUpdate`]; this side sees only
/// `K x K` matrices. `Y` starts at zero and `lambda` uniform, as LibMTL.
///
/// LibMTL multiplies by the signed loss; we take its absolute value, which is the same for the
/// positive losses of supervised learning and keeps a negative loss (SAC's actor) from turning
/// its task's gradient around.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Moco {
    /// Settings, not state: kept as configured when a checkpoint is loaded.
    #[serde(skip)]
    settings: MocoSettings,
    /// Solves so far.
    step: u64,
    lambda: Vec<f64>,
}

/// MoCo's hyper-parameters, named and defaulted as in LibMTL.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MocoSettings {
    /// Step size of the average `Y` (0.5).
    pub beta: f64,
    /// Its decay exponent (0.5).
    pub beta_sigma: f64,
    /// Step size of the weights (0.1).
    pub gamma: f64,
    /// Its decay exponent (0.5).
    pub gamma_sigma: f64,
    /// L2 regularisation of the weights' step (0).
    pub rho: f64,
}

impl Moco {
    pub fn new(k: usize, settings: MocoSettings) -> Self {
        Self { settings, step: 0, lambda: super::uniform(k) }
    }
}

const NEEDS: Needs = Needs { gram: true, losses: true, jacobian: false, tracked: true, excess_risks: false };

impl Combiner for Moco {
    fn method(&self) -> Method {
        Method::Moco
    }

    fn needs(&self) -> Needs {
        NEEDS
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let losses = losses(input);
        let tracked = input.tracked.expect("combine() checks the tracked average is present");
        if self.lambda.len() != k {
            self.lambda = super::uniform(k);
        }
        self.step += 1;
        let t = self.step as f64;
        let s = &self.settings;
        let (beta, gamma) = (s.beta / t.powf(s.beta_sigma), s.gamma / t.powf(s.gamma_sigma));
        let decay = 1.0 - beta;
        let scale: Vec<f64> = losses.iter().zip(gram(input).norms()).map(|(l, n)| beta * l.abs() / (n + 1e-8)).collect();
        let average = updated_average_gram(decay, &scale, tracked, gram(input));
        let mut regularised = average.clone();
        for i in 0..k {
            regularised[(i, i)] += s.rho;
        }
        let step = mat_vec(&regularised, &self.lambda);
        let logits: Vec<f64> = self.lambda.iter().zip(&step).map(|(l, st)| l - gamma * st).collect();
        self.lambda = softmax(&logits);
        let gram = Gram::new(k, average.transpose().as_slice().to_vec())?;
        Ok(Combination::tracked(self.lambda.clone(), TrackingUpdate { decay, scale, gram }))
    }

    fn state(&self) -> serde_json::Value {
        super::saved(self)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        let bad = |reason: String| SolverError::BadState { method: Method::Moco, reason };
        let loaded: Self = super::restored(Method::Moco, state)?;
        let total: f64 = loaded.lambda.iter().sum();
        if loaded.lambda.len() != self.lambda.len() || loaded.lambda.iter().any(|x| !x.is_finite() || *x < 0.0) || (total - 1.0).abs() > 1e-6 {
            return Err(bad(format!("expected weights on the simplex over {} tasks, got {:?}", self.lambda.len(), loaded.lambda)));
        }
        *self = Self { settings: self.settings, ..loaded };
        Ok(())
    }
}
