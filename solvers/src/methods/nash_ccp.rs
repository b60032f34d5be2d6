use super::{fairgrad_root, gram, GRAM};
use crate::linalg::{dot, mat_vec, solve_spd};
use crate::{Combination, Combiner, Fallback, Method, Needs, SolverError, TaskInput};
use nalgebra::{DMatrix, DVector};
use rand::RngCore;

/// Nash-MTL as published: `iters` concave-convex (CCP) steps per weight update, warm-started
/// from the previous weights (all ones before the first update, as the official code). The
/// paper's MT10 runs used a single step; the FAMO repository's MT10 port runs up to 20.
///
/// One CCP step is the official code's convex program. Written on the raw Gram `M` (its
/// Frobenius normalisation cancels in the objective and in the constraints):
/// `min_w c.w` subject to `w_i (M w)_i >= 1` and `w >= 0`, with
/// `c = M 1 + 1/w_prev + M (1/(M w_prev))` (the sum of `M w` plus the linearised
/// `sum log w_i + log (M w)_i` at the previous weights). It is solved here by a log barrier
/// method (microseconds at K = 10) instead of cvxpy/ECOS.
///
/// Where the official code keeps its previous weights (ECOS fails or finds the program
/// infeasible, as at Pareto-stationary gradients), this returns them with a fallback.
#[derive(Debug, Clone)]
pub struct NashCcp {
    iters: usize,
    previous: Vec<f64>,
}

impl NashCcp {
    pub fn new(k: usize, iters: usize) -> Self {
        Self { iters, previous: vec![1.0; k] }
    }
}

impl Combiner for NashCcp {
    fn method(&self) -> Method {
        Method::Nash
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let m = gram(input).matrix();
        if self.previous.len() != k {
            self.previous = vec![1.0; k];
        }
        for _ in 0..self.iters {
            if root_residual(m, &self.previous) < ROOT_TOLERANCE {
                break;
            }
            match ccp_step(m, &self.previous) {
                Ok(next) => self.previous = next,
                Err(fallback) => return Ok(Combination { weights: self.previous.clone(), direction: None, fallback: Some(fallback), tracking: None }),
            }
        }
        Ok(Combination { weights: self.previous.clone(), direction: None, fallback: None, tracking: None })
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "previous": self.previous })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        let previous = state.get("previous").cloned().unwrap_or_default();
        let previous: Vec<f64> = super::restored(Method::Nash, &previous)?;
        if previous.iter().any(|w| !w.is_finite() || *w <= 0.0) {
            return Err(SolverError::BadState { method: Method::Nash, reason: format!("weights must be positive, got {previous:?}") });
        }
        self.previous = previous;
        Ok(())
    }
}

/// The official code stops when the previous weights already solve `M w = 1/w` to 1e-3; here
/// relative to `||1/w||`, so that it does not depend on the scale of the Gram.
const ROOT_TOLERANCE: f64 = 1e-3;
/// Weights beyond this times `1 / ||g_i||` mean the program is unbounded.
const WEIGHT_CAP: f64 = 1e6;
const BARRIER_GROWTH: f64 = 20.0;
/// Stop when the barrier's duality gap `K / t` is below this share of the objective.
const GAP_TOLERANCE: f64 = 1e-9;
const STALL_GAP_TOLERANCE: f64 = 1e-6;
const MAX_NEWTON_STEPS: usize = 200;

fn root_residual(m: &DMatrix<f64>, w: &[f64]) -> f64 {
    let inverse: Vec<f64> = w.iter().map(|x| 1.0 / x).collect();
    let residual: Vec<f64> = mat_vec(m, w).iter().zip(&inverse).map(|(a, b)| a - b).collect();
    (dot(&residual, &residual) / dot(&inverse, &inverse)).sqrt()
}

/// One CCP step from `previous`: the minimiser of the convex program above, or why there is
/// none (no strictly feasible point: the gradients are Pareto-stationary; or unbounded).
fn ccp_step(m: &DMatrix<f64>, previous: &[f64]) -> Result<Vec<f64>, Fallback> {
    let k = m.nrows();
    if m.trace() <= 0.0 {
        return Err(Fallback::Degenerate);
    }
    // The linearisation of `log (M w)_i` at the previous weights is defined (if not meaningful)
    // even where `(M w_prev)_i < 0`, as in the official code; only a zero breaks it.
    let inverse_m_previous: Vec<f64> = mat_vec(m, previous).iter().map(|x| 1.0 / x).collect();
    let c: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| m[(i, j)]).sum::<f64>() + 1.0 / previous[i] + (0..k).map(|j| m[(i, j)] * inverse_m_previous[j]).sum::<f64>())
        .collect();
    if c.iter().any(|x| !x.is_finite()) {
        return Err(Fallback::Degenerate);
    }
    let start = strictly_feasible(m, previous).ok_or(Fallback::Diverged)?;
    // At the root of orthogonal gradients `w_i = 1 / ||g_i||`: far beyond that, the program is
    // unbounded (the solver would follow it to infinity).
    let cap: Vec<f64> = (0..k).map(|i| WEIGHT_CAP / m[(i, i)].sqrt()).collect();
    let barrier = Barrier { m, c: &c };
    let mut w = start;
    let mut t = k as f64 / dot(&c, &w).abs().max(1e-300);
    loop {
        let gap = |t: f64, w: &[f64]| k as f64 / t / dot(&c, w).abs().max(1e-300);
        match barrier.centre(&w, t) {
            Some(centred) => w = centred,
            // Near the boundary, at large t, Newton can stall in rounding: the last centre is
            // then as good as the program needs.
            None if gap(t / BARRIER_GROWTH, &w) <= STALL_GAP_TOLERANCE => return Ok(w),
            None => return Err(Fallback::NotConverged),
        }
        if w.iter().zip(&cap).any(|(x, cap)| x > cap) {
            return Err(Fallback::Diverged);
        }
        if gap(t, &w) <= GAP_TOLERANCE {
            return Ok(w);
        }
        t *= BARRIER_GROWTH;
        if !t.is_finite() {
            return Err(Fallback::NotConverged);
        }
    }
}

/// A point with every `f_i(w) = log w_i + log (M w)_i > 0`: the previous weights, all ones, or
/// the root of `M w = 1/w`, whichever first has `w > 0` and `M w > 0`, scaled up until inside.
fn strictly_feasible(m: &DMatrix<f64>, previous: &[f64]) -> Option<Vec<f64>> {
    let k = m.nrows();
    let root = || match fairgrad_root(m, 1.0, None) {
        (w, None) => Some(w),
        _ => None,
    };
    [Some(previous.to_vec()), Some(vec![1.0; k])].into_iter().chain(std::iter::once_with(root)).flatten().find_map(|w| {
        let mw = mat_vec(m, &w);
        if w.iter().chain(&mw).any(|x| *x <= 0.0) {
            return None;
        }
        let smallest = w.iter().zip(&mw).map(|(a, b)| a * b).fold(f64::INFINITY, f64::min);
        // `f_i(s w) = 2 log s + log(w_i (M w)_i)`: at least 2 log 1.5 everywhere.
        let s = 1.5 * smallest.powf(-0.5).max(1.0);
        Some(w.iter().map(|x| s * x).collect())
    })
}

/// `t c.w - sum_i log f_i(w)` with `f_i(w) = log w_i + log (M w)_i`.
struct Barrier<'a> {
    m: &'a DMatrix<f64>,
    c: &'a [f64],
}

impl Barrier<'_> {
    /// The constraint values, or `None` outside the domain.
    fn constraints(&self, w: &[f64], mw: &[f64]) -> Option<Vec<f64>> {
        let f: Vec<f64> = w.iter().zip(mw).map(|(a, b)| if *a > 0.0 && *b > 0.0 { a.ln() + b.ln() } else { f64::NAN }).collect();
        f.iter().all(|x| *x > 0.0).then_some(f)
    }

    fn value(&self, w: &[f64], t: f64) -> Option<f64> {
        let f = self.constraints(w, &mat_vec(self.m, w))?;
        Some(t * dot(self.c, w) - f.iter().map(|x| x.ln()).sum::<f64>())
    }

    /// Newton's method with backtracking on the barrier at `t`, from a strictly feasible `w`.
    fn centre(&self, w: &[f64], t: f64) -> Option<Vec<f64>> {
        let (m, k) = (self.m, w.len());
        let mut w = w.to_vec();
        for _ in 0..MAX_NEWTON_STEPS {
            let mw = mat_vec(m, &w);
            let f = self.constraints(&w, &mw)?;
            // grad f_i is row i of `G = diag(1/w) + diag(1/(M w)) M`; the Hessian of the barrier is
            // `G^T diag(1/f^2) G + diag(1/(f w^2)) + M^T diag(1/(f (M w)^2)) M`.
            let mut rows = m.clone();
            for i in 0..k {
                rows.row_mut(i).scale_mut(1.0 / mw[i]);
                rows[(i, i)] += 1.0 / w[i];
            }
            let inverse_f = DVector::from_iterator(k, f.iter().map(|x| 1.0 / x));
            let gradient = DVector::from_iterator(k, self.c.iter().map(|ci| t * ci)) - rows.tr_mul(&inverse_f);
            let mut weighted_rows = rows.clone();
            let mut weighted_m = m.clone();
            for i in 0..k {
                weighted_rows.row_mut(i).scale_mut(inverse_f[i] * inverse_f[i]);
                weighted_m.row_mut(i).scale_mut(inverse_f[i] / (mw[i] * mw[i]));
            }
            let mut hessian = rows.tr_mul(&weighted_rows) + m.tr_mul(&weighted_m);
            for i in 0..k {
                hessian[(i, i)] += inverse_f[i] / (w[i] * w[i]);
            }
            let step = -solve_spd(&hessian, &gradient);
            let decrement = -gradient.dot(&step);
            // Half the squared Newton decrement bounds the distance to the centre in barrier units.
            if decrement <= 1e-10 {
                return Some(w);
            }
            let value = self.value(&w, t)?;
            let mut s = 1.0;
            loop {
                let next: Vec<f64> = w.iter().zip(step.iter()).map(|(x, d)| x + s * d).collect();
                // Slack for rounding: at large t the barrier's value dwarfs its last decrements.
                if self.value(&next, t).is_some_and(|v| v <= value - 0.25 * s * decrement + 1e-14 * value.abs()) {
                    if next == w {
                        // The step is below what f64 resolves in w: centred as far as it can be.
                        return Some(w);
                    }
                    w = next;
                    break;
                }
                s *= 0.5;
                if s < 1e-12 {
                    // No progress is possible in f64: w is as centred as it can be.
                    return Some(w);
                }
            }
        }
        None
    }
}
