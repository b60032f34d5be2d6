use super::{losses, mirror_ascent, LOSSES};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;

/// BanditMTL: task weights by mirror ascent on the raw losses within a KL ball around uniform.
#[derive(Debug, Clone)]
pub struct BanditMtl {
    eta: f64,
    rho: f64,
    p: Vec<f64>,
}

impl BanditMtl {
    pub fn new(k: usize, eta: f64, rho: f64) -> Self {
        Self { eta, rho, p: super::uniform(k) }
    }
}

impl Combiner for BanditMtl {
    fn method(&self) -> Method {
        Method::BanditMtl
    }

    fn needs(&self) -> Needs {
        LOSSES
    }

    fn solve(&mut self, _k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        self.p = mirror_ascent(&self.p, losses(input), self.eta, self.rho);
        Ok(Combination::weights(self.p.clone()))
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "p": self.p })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        self.p = super::load_distribution(Method::BanditMtl, state, self.p.len())?;
        Ok(())
    }
}
