use super::{gram, uniform, GRAM};
use crate::linalg::{mat_vec, project_simplex, SgdMomentum};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use nalgebra::DMatrix;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// SDMGrad (Xiao et al., NeurIPS 2023), as LibMTL's `SDMGrad.py` with its three batches taken as
/// one (the trainer draws one batch per update): the Gram is scaled by the mean gradient norm,
/// `G = M / (mean_i ||g_i||)^2 + 1e-8)`, and the simplex weights `w` (kept between solves, from
/// uniform) take `iters` projected steps of SGD (lr 5, momentum 0.5, fresh each solve) on
/// `G w + lambda G 1 / K`; then `d = (J^T w + lambda mean_i g_i) / (1 + lambda)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SdmGrad {
    #[serde(skip)]
    lambda: f64,
    #[serde(skip)]
    iters: usize,
    w: Vec<f64>,
}

impl SdmGrad {
    pub fn new(k: usize, lambda: f64, iters: usize) -> Self {
        Self { lambda, iters, w: uniform(k) }
    }
}

impl Combiner for SdmGrad {
    fn method(&self) -> Method {
        Method::SdmGrad
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let gram = gram(input);
        if self.w.len() != k {
            self.w = uniform(k);
        }
        let scale = gram.norms().iter().sum::<f64>() / k as f64;
        let g: DMatrix<f64> = gram.matrix() / (scale * scale + 1e-8);
        let toward_mean: Vec<f64> = mat_vec(&g, &uniform(k)).iter().map(|x| self.lambda * x).collect();
        let mut sgd = SgdMomentum::new(5.0, 0.5);
        for _ in 0..self.iters {
            let gradient: Vec<f64> = mat_vec(&g, &self.w).iter().zip(&toward_mean).map(|(a, b)| a + b).collect();
            sgd.step(&mut self.w, &gradient);
            self.w = project_simplex(&self.w);
        }
        let weights = self.w.iter().map(|w| (w + self.lambda / k as f64) / (1.0 + self.lambda)).collect();
        Ok(Combination::weights(weights))
    }

    fn state(&self) -> serde_json::Value {
        super::saved(self)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        let w = super::load_distribution(Method::SdmGrad, &serde_json::json!({ "p": state.get("w") }), self.w.len())?;
        self.w = w;
        Ok(())
    }
}
