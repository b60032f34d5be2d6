use super::{gram, GRAM};
use crate::linalg::{mat_vec, norm, SgdMomentum};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;

/// FairGrad as its MT10 code solves it: a fixed number of clipped SGD-with-momentum steps on
/// `||M w - w^(-1/alpha)||^2` from `1/K`, keeping the best iterate seen BEFORE each step (the
/// iterate after the last step is never evaluated). No warm start, no normalisation.
#[derive(Debug, Clone)]
pub struct FairGradSgd {
    pub alpha: f64,
    pub iters: usize,
    pub lr: f64,
}

impl Combiner for FairGradSgd {
    fn method(&self) -> Method {
        Method::FairGrad
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let m = gram(input).matrix();
        let mut w = super::uniform(k);
        let mut best = (f64::INFINITY, w.clone());
        let mut optimizer = SgdMomentum::new(self.lr, 0.5);
        for _ in 0..self.iters {
            // d/dw of u^(1/alpha) is -(1/alpha) u^(1/alpha + 1), with u = 1/(w + 1e-8).
            let u: Vec<f64> = w.iter().map(|wi| 1.0 / (wi + 1e-8)).collect();
            let u_pow: Vec<f64> = u.iter().map(|ui| ui.powf(1.0 / self.alpha)).collect();
            let r: Vec<f64> = mat_vec(m, &w).iter().zip(&u_pow).map(|(mw, up)| mw - up).collect();
            let f = r.iter().map(|x| x * x).sum::<f64>();
            if f < best.0 {
                best = (f, w.clone());
            }
            // M is symmetric, so M^T r = M r.
            let mt_r = mat_vec(m, &r);
            let mut q: Vec<f64> =
                (0..k).map(|i| 2.0 * mt_r[i] + (2.0 / self.alpha) * u_pow[i] * u[i] * r[i]).collect();
            let clip = (1.0 / (norm(&q) + 1e-6)).min(1.0);
            q.iter_mut().for_each(|qi| *qi *= clip);
            optimizer.step(&mut w, &q);
            w.iter_mut().for_each(|wi| *wi = wi.max(1e-8));
        }
        Ok(Combination::weights(best.1))
    }
}
