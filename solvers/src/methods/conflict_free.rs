use super::{gram, GRAM};
use crate::linalg::{mat_vec, pseudo_inverse, quad_form};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use nalgebra::DMatrix;
use rand::RngCore;

/// ConFIG (Liu et al., "ConFIG: Towards Conflict-free Training of Physics Informed Neural
/// Networks", equation 2), as TorchJD's `ConFIG` with its default preference (all ones): the unit
/// direction `u` of `pinv(U) 1`, `U` the unit task gradients, scaled by `sum_i g_i . u`. On the Gram:
/// `pinv(U) 1 = J^T c` with `c = D^-1 pinv(D^-1 M D^-1) 1`, `D = diag ||g_i||` (a zero row's
/// unit gradient is zero, as TorchJD's `nan_to_num`), so `w = c (1^T M c) / (c^T M c)`.
/// TorchJD's SVD pseudo-inverse drops singular values below `max(K, P) eps` of the largest; on the
/// Gram the cut-off is [`pseudo_inverse`]'s relative `1e-10` on the eigenvalues, the squared
/// singular values, so that round-off in a singular Gram is not inverted.
#[derive(Debug, Clone, Copy)]
pub struct ConFig;

impl Combiner for ConFig {
    fn method(&self) -> Method {
        Method::ConFig
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let m = gram(input).matrix();
        let inverse_norms: Vec<f64> = gram(input).norms().iter().map(|&n| if n > 0.0 { 1.0 / n } else { 0.0 }).collect();
        let cosines = DMatrix::from_fn(k, k, |i, j| inverse_norms[i] * m[(i, j)] * inverse_norms[j]);
        let best = mat_vec(&pseudo_inverse(&cosines), &vec![1.0; k]);
        let c: Vec<f64> = best.iter().zip(&inverse_norms).map(|(b, s)| b * s).collect();
        let squared_norm = quad_form(m, &c);
        if squared_norm <= 0.0 {
            return Ok(Combination::weights(vec![0.0; k]));
        }
        let length = mat_vec(m, &c).iter().sum::<f64>() / squared_norm;
        Ok(Combination::weights(c.iter().map(|x| x * length).collect()))
    }
}
