use super::{gram, GRAM};
use crate::linalg::pseudo_inverse;
use crate::{Combination, Combiner, Fallback, Method, Needs, SolverError, TaskInput};
use nalgebra::DVector;
use rand::RngCore;

/// IMTL-G in its Gram-only form: `v = M^+ sqrt(diag M)`, `w = v / sum v`, which gives the
/// direction with equal projections onto every unit task gradient (equal to the paper's closed
/// form for independent gradients; the pseudo-inverse extends it to dependent ones).
#[derive(Debug, Clone, Copy)]
pub struct Imtlg;

impl Combiner for Imtlg {
    fn method(&self) -> Method {
        Method::Imtlg
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let m = gram(input).matrix();
        let norms = DVector::from_iterator(k, m.diagonal().iter().map(|d| d.sqrt()));
        let v = pseudo_inverse(m) * norms;
        let total: f64 = v.sum();
        // With every gradient zero (or the sum cancelling) there is no direction to balance.
        if v.amax() == 0.0 || total.abs() <= 1e-12 * v.amax() {
            return Ok(Combination { weights: vec![0.0; k], direction: None, fallback: Some(Fallback::Degenerate), tracking: None });
        }
        Ok(Combination::weights(v.iter().map(|x| x / total).collect()))
    }
}
