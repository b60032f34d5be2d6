use super::{gram, GRAM};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;

/// Aligned-MTL (Senushkin et al., CVPR 2023), as TorchJD's `AlignedMTLWeighting` with its
/// default `scale_mode = "min"`: with `M = V diag(lambda) V^T` restricted to the eigenvalues above
/// `max(lambda) K eps`, the balance transform `B = sqrt(lambda_min) V diag(lambda)^(-1/2) V^T`
/// makes the rows orthogonal with equal norms, and `w = B (1 / K)`. LibMTL's `Aligned_MTL.py`
/// sums (`B 1`): its weights are K times these. A zero Gram gives uniform weights (`B = I`).
#[derive(Debug, Clone, Copy)]
pub struct AlignedMtl;

impl Combiner for AlignedMtl {
    fn method(&self) -> Method {
        Method::AlignedMtl
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let eigen = gram(input).matrix().clone().symmetric_eigen();
        let largest = eigen.eigenvalues.max();
        let tolerance = largest * k as f64 * f64::EPSILON;
        let kept: Vec<usize> = (0..k).filter(|&i| eigen.eigenvalues[i] > tolerance).collect();
        if kept.is_empty() {
            return Ok(Combination::weights(super::uniform(k)));
        }
        let smallest = kept.iter().map(|&i| eigen.eigenvalues[i]).fold(f64::INFINITY, f64::min);
        // w = sqrt(lambda_min) V diag(lambda^-1/2) V^T 1 / K, one eigenvector at a time.
        let mut weights = vec![0.0; k];
        for &e in &kept {
            let v = eigen.eigenvectors.column(e);
            let along = v.sum() / k as f64 * (smallest / eigen.eigenvalues[e]).sqrt();
            weights.iter_mut().zip(v.iter()).for_each(|(w, x)| *w += along * x);
        }
        Ok(Combination::weights(weights))
    }
}
