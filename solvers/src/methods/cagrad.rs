use super::{gram, GRAM};
use crate::linalg::{dot, mat_vec, quad_form, softmax, softmax_backward, SgdMomentum};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;

/// CAGrad as the MT10 code solves it: the Gram scaled by the mean gradient norm, softmax
/// logits from zero, a fixed number of SGD-with-momentum steps (keeping the best of the
/// evaluated logits), then the closed-form weights.
#[derive(Debug, Clone)]
pub struct Cagrad {
    pub c: f64,
    pub iters: usize,
    pub lr: f64,
}

impl Combiner for Cagrad {
    fn method(&self) -> Method {
        Method::Cagrad
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let m = gram(input).matrix();
        let scale = (0..k).map(|i| (m[(i, i)] + 1e-4).sqrt()).sum::<f64>() / k as f64;
        let m = m / (scale * scale);
        let b: Vec<f64> = mat_vec(&m, &super::uniform(k));
        let gg = b.iter().sum::<f64>() / k as f64;
        let c = self.c * (gg + 1e-4).sqrt();
        let objective = |p: &[f64]| dot(p, &b) + c * (quad_form(&m, p) + 1e-4).sqrt();
        let mut z = vec![0.0; k];
        let mut best = (f64::INFINITY, z.clone());
        let mut optimizer = SgdMomentum::new(self.lr, 0.5);
        for step in 0..=self.iters {
            let p = softmax(&z);
            let value = objective(&p);
            if value < best.0 {
                best = (value, z.clone());
            }
            if step == self.iters {
                break;
            }
            let mp = mat_vec(&m, &p);
            let root = (dot(&p, &mp) + 1e-4).sqrt();
            let grad_p: Vec<f64> = b.iter().zip(&mp).map(|(bi, mpi)| bi + c * mpi / root).collect();
            optimizer.step(&mut z, &softmax_backward(&p, &grad_p));
        }
        let p = softmax(&best.1);
        let lambda = c / ((quad_form(&m, &p) + 1e-4).sqrt() + 1e-4);
        let weights = p.iter().map(|pi| (1.0 / k as f64 + lambda * pi) / (1.0 + self.c * self.c)).collect();
        Ok(Combination::weights(weights))
    }
}
