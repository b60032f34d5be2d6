use super::dual_cone::{normalized_regularized, project_weights};
use super::{gram, GRAM};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;

/// UPGrad (Quinton and Rey, "Jacobian Descent for Multi-Objective Optimization"), as TorchJD's
/// `UPGradWeighting`: each row `g_i / K` is projected onto the dual cone of all rows, and the
/// projections are summed. On the Gram alone: `w = sum_i v_i` with `v_i` the projection weights
/// of `e_i / K` under `G = M / tr M + eps I` (TorchJD's `norm_eps = reg_eps = 1e-4`).
#[derive(Debug, Clone, Copy)]
pub struct Upgrad;

/// TorchJD's `norm_eps` and `reg_eps` of UPGrad and DualProj.
pub(super) const EPS: f64 = 1e-4;

impl Combiner for Upgrad {
    fn method(&self) -> Method {
        Method::Upgrad
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let g = normalized_regularized(gram(input).matrix(), EPS);
        let mut weights = vec![0.0; k];
        for i in 0..k {
            let mut u = vec![0.0; k];
            u[i] = 1.0 / k as f64;
            weights.iter_mut().zip(project_weights(&g, &u)).for_each(|(w, v)| *w += v);
        }
        Ok(Combination::weights(weights))
    }
}
