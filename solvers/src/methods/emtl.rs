use super::{gram, losses, min_norm_weights, mirror_ascent, GRAM_AND_LOSSES};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;

/// EMTL (equitable MTL), RECONSTRUCTED from the paper: no public code exists. Each task's
/// relative contribution `r_i = |L_i| / ||g_i||` (scaled to mean 1) drives a KL-ball mirror
/// ascent, as in BanditMTL, whose distribution is mixed with the MGDA weights:
/// `w = beta w_MGDA + (1 - beta) p`.
#[derive(Debug, Clone)]
pub struct Emtl {
    eta: f64,
    rho: f64,
    beta: f64,
    p: Vec<f64>,
}

impl Emtl {
    pub fn new(k: usize, eta: f64, rho: f64, beta: f64) -> Self {
        Self { eta, rho, beta, p: super::uniform(k) }
    }
}

impl Combiner for Emtl {
    fn method(&self) -> Method {
        Method::Emtl
    }

    fn needs(&self) -> Needs {
        GRAM_AND_LOSSES
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let gram = gram(input);
        let (balanced, fallback) = min_norm_weights(gram.matrix());
        let mut ratios: Vec<f64> = losses(input).iter().zip(gram.norms()).map(|(l, n)| l.abs() / (n + 1e-8)).collect();
        let mean = ratios.iter().sum::<f64>() / k as f64;
        // All-zero losses carry no equity signal: the ascent step then leaves p as it is.
        if mean > 0.0 {
            ratios.iter_mut().for_each(|r| *r /= mean);
        }
        self.p = mirror_ascent(&self.p, &ratios, self.eta, self.rho);
        let weights = balanced.iter().zip(&self.p).map(|(g, p)| self.beta * g + (1.0 - self.beta) * p).collect();
        Ok(Combination { weights, direction: None, fallback, tracking: None })
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "p": self.p })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        self.p = super::load_distribution(Method::Emtl, state, self.p.len())?;
        Ok(())
    }
}
