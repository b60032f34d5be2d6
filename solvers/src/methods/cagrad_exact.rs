use super::{gram, GRAM};
use crate::linalg::{dot, mat_vec, project_simplex, quad_form};
use crate::{Combination, Combiner, Fallback, Method, Needs, SolverError, TaskInput};
use rand::RngCore;

/// CAGrad solved to tolerance: `min_{p in simplex} p^T M b0 + c ||g0|| sqrt(p^T M p)` with
/// `g0` the mean gradient, then `d = (g0 + (c ||g0|| / ||g_p||) g_p) / (1 + c^2)`.
#[derive(Debug, Clone)]
pub struct CagradExact {
    pub c: f64,
}

const MAX_STEPS: usize = 5000;

impl Combiner for CagradExact {
    fn method(&self) -> Method {
        Method::Cagrad
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let m = gram(input).matrix();
        let b0 = super::uniform(k);
        let largest = m.diagonal().max();
        if largest <= 0.0 {
            return Ok(Combination { weights: b0, direction: None, fallback: Some(Fallback::Degenerate), tracking: None });
        }
        let m = m / largest;
        let linear = mat_vec(&m, &b0);
        let radius = self.c * quad_form(&m, &b0).sqrt();
        // The square root's kink at g_p = 0 is smoothed far below the tolerance.
        let smoothing = 1e-24;
        let objective = |p: &[f64]| dot(p, &linear) + radius * (quad_form(&m, p) + smoothing).sqrt();
        let gradient = |p: &[f64]| -> Vec<f64> {
            let mp = mat_vec(&m, p);
            let root = (dot(p, &mp) + smoothing).sqrt();
            linear.iter().zip(&mp).map(|(l, x)| l + radius * x / root).collect()
        };
        // Accelerated projected gradient with backtracking and restarts.
        let mut p = b0.clone();
        let mut y = p.clone();
        let mut momentum: f64 = 1.0;
        let mut step = 1.0;
        let mut converged = false;
        for _ in 0..MAX_STEPS {
            let g = gradient(&y);
            let fy = objective(&y);
            let next = loop {
                let candidate = project_simplex(&y.iter().zip(&g).map(|(yi, gi)| yi - step * gi).collect::<Vec<_>>());
                let diff: Vec<f64> = candidate.iter().zip(&y).map(|(a, b)| a - b).collect();
                if objective(&candidate) <= fy + dot(&g, &diff) + dot(&diff, &diff) / (2.0 * step) + 1e-15 || step < 1e-12 {
                    break candidate;
                }
                step *= 0.5;
            };
            let restart = objective(&next) > objective(&p);
            let next_momentum = (1.0 + (1.0 + 4.0 * momentum * momentum).sqrt()) / 2.0;
            y = if restart {
                momentum = 1.0;
                next.clone()
            } else {
                let beta = (momentum - 1.0) / next_momentum;
                momentum = next_momentum;
                next.iter().zip(&p).map(|(a, b)| a + beta * (a - b)).collect()
            };
            p = next;
            step *= 1.5;
            // The Frank-Wolfe gap bounds the distance to the optimum from above (F is convex).
            let g = gradient(&p);
            let gap = dot(&g, &p) - g.iter().copied().fold(f64::INFINITY, f64::min);
            if gap <= 1e-10 {
                converged = true;
                break;
            }
        }
        let gp_norm = quad_form(&m, &p).sqrt();
        let lambda = if gp_norm > 0.0 { radius / gp_norm } else { 0.0 };
        let weights = b0.iter().zip(&p).map(|(b, pi)| (b + lambda * pi) / (1.0 + self.c * self.c)).collect();
        Ok(Combination { weights, direction: None, fallback: (!converged).then_some(Fallback::NotConverged), tracking: None })
    }
}
