use super::{gram, GRAM};
use crate::linalg::{dot, mat_vec, solve_spd};
use crate::{Combination, Combiner, Fallback, Method, Needs, SolverError, TaskInput};
use nalgebra::{DMatrix, DVector};
use rand::RngCore;

/// The exact root of `M w = w^(-1/alpha)`, `w > 0`. With alpha = 1 and a warm start this is
/// Nash-MTL: its convex programs return this root on the raw Gram (see the crate README).
#[derive(Debug, Clone)]
pub struct FairGradExact {
    method: Method,
    alpha: f64,
    warm_start: bool,
    previous: Option<Vec<f64>>,
}

impl FairGradExact {
    pub fn new(method: Method, alpha: f64, warm_start: bool) -> Self {
        Self { method, alpha, warm_start, previous: None }
    }
}

impl Combiner for FairGradExact {
    fn method(&self) -> Method {
        self.method
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let start = self.previous.as_deref().filter(|p| p.len() == k);
        let (weights, fallback) = fairgrad_root(gram(input).matrix(), self.alpha, start);
        if self.warm_start {
            // A diverged iterate is no place to start the next solve from.
            self.previous = fallback.is_none().then(|| weights.clone());
        }
        Ok(Combination { weights, direction: None, fallback, tracking: None })
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "previous": self.previous })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        let previous = state.get("previous").cloned().unwrap_or_default();
        self.previous = super::restored(self.method, &previous)?;
        Ok(())
    }
}

const MAX_NEWTON_STEPS: usize = 200;
/// Weights beyond this (on the Gram scaled to unit mean diagonal) mean the root is at infinity.
const WEIGHT_CAP: f64 = 1e30;
const TOLERANCE: f64 = 1e-12;

/// Newton's method on the strictly convex potential
/// `phi(w) = 0.5 w^T M w - (alpha/(alpha-1)) sum w_i^(1-1/alpha)` (`- sum log w_i` at alpha = 1),
/// whose gradient is `M w - w^(-1/alpha)`. The Gram is first scaled to unit mean diagonal (the
/// root scales exactly as `s^(-alpha/(alpha+1))`), so badly scaled Grams converge alike.
/// Returns the root, or a capped finite iterate with the reason when there is none.
pub fn fairgrad_root(m: &DMatrix<f64>, alpha: f64, start: Option<&[f64]>) -> (Vec<f64>, Option<Fallback>) {
    let k = m.nrows();
    let scale = m.trace() / k as f64;
    if scale <= 0.0 {
        return (super::uniform(k), Some(Fallback::Degenerate));
    }
    let unscale = scale.powf(-alpha / (alpha + 1.0));
    let m = m / scale;
    let mut w: Vec<f64> = match start {
        Some(s) if s.iter().all(|x| x.is_finite() && *x > 0.0) => s.iter().map(|x| x / unscale).collect(),
        _ => super::uniform(k),
    };
    let potential = |w: &[f64]| -> f64 {
        let barrier: f64 = if alpha == 1.0 {
            -w.iter().map(|x| x.ln()).sum::<f64>()
        } else {
            -(alpha / (alpha - 1.0)) * w.iter().map(|x| x.powf(1.0 - 1.0 / alpha)).sum::<f64>()
        };
        0.5 * dot(w, &mat_vec(&m, w)) + barrier
    };
    let mut converged = false;
    for _ in 0..MAX_NEWTON_STEPS {
        let target: Vec<f64> = w.iter().map(|x| x.powf(-1.0 / alpha)).collect();
        let residual: Vec<f64> = mat_vec(&m, &w).iter().zip(&target).map(|(a, b)| a - b).collect();
        if dot(&residual, &residual).sqrt() <= TOLERANCE * dot(&target, &target).sqrt() {
            converged = true;
            break;
        }
        let mut hessian = m.clone();
        for i in 0..k {
            hessian[(i, i)] += target[i] / (alpha * w[i]);
        }
        let step = solve_spd(&hessian, &DVector::from_column_slice(&residual));
        let slope = dot(&residual, step.as_slice());
        let phi = potential(&w);
        let mut t = 1.0;
        let mut next: Vec<f64>;
        loop {
            next = w.iter().zip(step.iter()).map(|(x, s)| x - t * s).collect();
            // Positivity first; then sufficient decrease, with slack for rounding once the
            // decrease itself is below what f64 can resolve in phi.
            let inside = next.iter().all(|x| *x > 0.0);
            if inside && potential(&next) <= phi - 1e-4 * t * slope + 1e-14 * phi.abs().max(1.0) {
                break;
            }
            t *= 0.5;
            if t < 1e-20 {
                next = w.clone();
                break;
            }
        }
        if next == w {
            break;
        }
        w = next;
        if w.iter().any(|x| *x > WEIGHT_CAP) {
            let capped = w.iter().map(|x| x.min(WEIGHT_CAP) * unscale).collect();
            return (capped, Some(Fallback::Diverged));
        }
    }
    let weights = w.iter().map(|x| x * unscale).collect();
    if converged {
        return (weights, None);
    }
    // Newton stalls on the way to infinity once the Hessian is numerically singular; tell that
    // apart from a slow finite root by testing Pareto-stationarity directly.
    let (balanced, _) = super::min_norm_weights(&m);
    let stationary = dot(&balanced, &mat_vec(&m, &balanced)) <= 1e-10 * m.diagonal().max();
    (weights, Some(if stationary { Fallback::Diverged } else { Fallback::NotConverged }))
}
