use super::{gram, losses};
use crate::linalg::{softmax, softmax_backward, Adam};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// GradNorm (Chen et al., ICML 2018), as LibMTL's `GradNorm.py`: loss scales `s = K softmax(z)`
/// weight the tasks; the logits `z` take an Adam step on `sum_i |s_i ||g_i|| - G r_i^alpha|`, with
/// `G = mean_i s_i ||g_i||` and the relative inverse training rates `r_i = l_i / mean_j l_j`,
/// `l_i = L_i / L_i(0)`, held constant. The norms are those of the whole shared gradient, the
/// Gram's diagonal, as LibMTL without `rep_grad`; the paper takes the last shared layer's.
/// LibMTL trains with equal weights through its first epoch and takes that epoch's mean losses as
/// `L(0)`: here the first `warmup` solves. LibMTL steps `z` with the model's optimiser; here it
/// has its own Adam and learning rate. Losses enter by their absolute value (SAC's actor loss can
/// be negative).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GradNorm {
    #[serde(skip)]
    alpha: f64,
    #[serde(skip)]
    warmup: usize,
    step: usize,
    /// During the warm-up the sum of the losses, then their mean `L(0)`.
    initial_losses: Vec<f64>,
    logits: Vec<f64>,
    adam: Adam,
}

impl GradNorm {
    pub fn new(k: usize, alpha: f64, lr: f64, warmup: usize) -> Self {
        Self { alpha, warmup, step: 0, initial_losses: vec![0.0; k], logits: vec![1.0; k], adam: Adam::new(k, lr, 0.0) }
    }
}

const NEEDS: Needs = Needs { gram: true, losses: true, jacobian: false, tracked: false, excess_risks: false };

impl Combiner for GradNorm {
    fn method(&self) -> Method {
        Method::GradNorm
    }

    fn needs(&self) -> Needs {
        NEEDS
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let losses: Vec<f64> = losses(input).iter().map(|l| l.abs()).collect();
        self.step += 1;
        if self.step <= self.warmup {
            self.initial_losses.iter_mut().zip(&losses).for_each(|(s, l)| *s += l);
            if self.step == self.warmup {
                self.initial_losses.iter_mut().for_each(|s| *s /= self.warmup as f64);
            }
            return Ok(Combination::weights(vec![1.0; k]));
        }
        let p = softmax(&self.logits);
        let scales: Vec<f64> = p.iter().map(|p| k as f64 * p).collect();
        let norms = gram(input).norms();
        let scaled_norms: Vec<f64> = scales.iter().zip(&norms).map(|(s, n)| s * n).collect();
        let mean_norm = scaled_norms.iter().sum::<f64>() / k as f64;
        let rates: Vec<f64> = losses.iter().zip(&self.initial_losses).map(|(l, l0)| l / l0).collect();
        let mean_rate = rates.iter().sum::<f64>() / k as f64;
        // d/ds_i of sum_i |s_i n_i - target_i| is sign(...) n_i, torch's sign(0) = 0 included.
        let grad_scales: Vec<f64> = (0..k)
            .map(|i| {
                let gap = scaled_norms[i] - mean_norm * (rates[i] / mean_rate).powf(self.alpha);
                let sign = if gap > 0.0 { 1.0 } else if gap < 0.0 { -1.0 } else { 0.0 };
                sign * norms[i] * k as f64
            })
            .collect();
        let grad_logits = softmax_backward(&p, &grad_scales);
        self.adam.step(&mut self.logits, &grad_logits);
        Ok(Combination::weights(scales))
    }

    fn state(&self) -> serde_json::Value {
        super::saved(self)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        let bad = |reason: String| SolverError::BadState { method: Method::GradNorm, reason };
        let loaded: Self = super::restored(Method::GradNorm, state)?;
        let k = self.logits.len();
        let finite = loaded.logits.iter().chain(&loaded.initial_losses).all(|x| x.is_finite());
        if loaded.logits.len() != k || loaded.initial_losses.len() != k || !finite {
            return Err(bad(format!("expected {k} finite logits and initial losses")));
        }
        *self = Self { alpha: self.alpha, warmup: self.warmup, ..loaded };
        Ok(())
    }
}
