use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// ExcessMTL (He et al., "Robust Multi-Task Learning with Excess Risks", ICML 2024), as LibMTL's
/// `ExcessMTL.py`: each task's excess risk is estimated by its AdaGrad-scaled squared gradient
/// norm `r_i = g_i^T diag(1 / sqrt(H_i + 1e-7)) g_i`, `H_i` the running sum of `g_i * g_i`
/// (this step's included; see [`crate::SquaredGradientSum`]). The first solve keeps the weights
/// at one and records `r^0`; later ones take a mirror-ascent step
/// `w_i <- w_i exp(eta r_i / r_i^0)` and rescale to `sum_i w_i = K`. `H` (`K x P`) lives with
/// the caller, as MoCo's average: the combiner sees only `r`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExcessMtl {
    #[serde(skip)]
    eta: f64,
    weights: Vec<f64>,
    /// `r` at the first solve, once there was one.
    initial: Option<Vec<f64>>,
}

impl ExcessMtl {
    pub fn new(k: usize, eta: f64) -> Self {
        Self { eta, weights: vec![1.0; k], initial: None }
    }
}

const NEEDS: Needs = Needs { gram: false, losses: false, jacobian: false, tracked: false, excess_risks: true };

impl Combiner for ExcessMtl {
    fn method(&self) -> Method {
        Method::ExcessMtl
    }

    fn needs(&self) -> Needs {
        NEEDS
    }

    fn solve(&mut self, _k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let risks = input.excess_risks.expect("combine() checks the excess risks are present");
        match &self.initial {
            None => self.initial = Some(risks.to_vec()),
            Some(initial) => {
                for ((w, r), r0) in self.weights.iter_mut().zip(risks).zip(initial) {
                    *w *= (self.eta * r / r0).exp();
                }
                let scale = self.weights.len() as f64 / self.weights.iter().sum::<f64>();
                self.weights.iter_mut().for_each(|w| *w *= scale);
            }
        }
        Ok(Combination::weights(self.weights.clone()))
    }

    fn state(&self) -> serde_json::Value {
        super::saved(self)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        let bad = |reason: String| SolverError::BadState { method: Method::ExcessMtl, reason };
        let loaded: Self = super::restored(Method::ExcessMtl, state)?;
        let k = self.weights.len();
        if loaded.weights.len() != k || loaded.initial.as_ref().is_some_and(|r| r.len() != k) {
            return Err(bad(format!("the state is not for {k} tasks")));
        }
        (self.weights, self.initial) = (loaded.weights, loaded.initial);
        Ok(())
    }
}
