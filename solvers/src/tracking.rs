//! Methods whose direction comes from a tracked moving average `Y` (`K x P`) of the task gradients
//! rather than from this step's gradients `J` (MoCo). The caller keeps `Y` where the gradients
//! are; the combiner sees `K x K` products and says how to update `Y`.
use crate::{Gram, Jacobian, SolverError};
use nalgebra::DMatrix;

/// The tracked average before this step, as the combiner sees it: `Y Y^T` and `Y J^T`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    pub gram: Gram,
    /// `cross[(i, j)] = y_i . g_j`.
    pub cross: DMatrix<f64>,
}

impl Tracked {
    /// From row-major `K x K` buffers (e.g. copied from a device).
    pub fn new(k: usize, gram: Vec<f64>, cross: &[f64]) -> Result<Self, SolverError> {
        if cross.len() != k * k {
            return Err(SolverError::WrongLength { k, len: cross.len() });
        }
        if let Some(index) = cross.iter().position(|x| !x.is_finite()) {
            return Err(SolverError::NonFinite { what: "tracked cross products", index });
        }
        Ok(Self { gram: Gram::new(k, gram)?, cross: DMatrix::from_row_slice(k, k, cross) })
    }

    /// The average of a caller that has tracked nothing yet (`Y = 0`).
    pub fn zero(k: usize) -> Self {
        Self { gram: Gram::new(k, vec![0.0; k * k]).expect("zeros form a Gram matrix"), cross: DMatrix::zeros(k, k) }
    }
}

/// How to update the average: `Y <- decay Y + diag(scale) J`; the direction is then `d = Y^T w`
/// (`w` the combination's weights), and `gram` is the updated `Y Y^T`, so `||d||^2 = w^T gram w`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingUpdate {
    pub decay: f64,
    pub scale: Vec<f64>,
    pub gram: Gram,
}

impl TrackingUpdate {
    /// The update `Y <- decay Y + diag(scale) J`, with the updated `Y Y^T` from `K x K` products
    /// (see [`updated_average_gram`]).
    pub fn new(decay: f64, scale: Vec<f64>, tracked: &Tracked, gram: &Gram) -> Result<Self, SolverError> {
        let updated = updated_average_gram(decay, &scale, tracked, gram);
        let gram = Gram::new(scale.len(), updated.transpose().as_slice().to_vec())?;
        Ok(Self { decay, scale, gram })
    }
}

/// `Y' Y'^T` for `Y' = decay Y + S J`: `decay^2 Y Y^T + decay (C S + S C^T) + S M S`, with
/// `C = Y J^T`, `S = diag(scale)`, `M = J J^T` (symmetric up to rounding).
pub(crate) fn updated_average_gram(decay: f64, scale: &[f64], tracked: &Tracked, gram: &Gram) -> DMatrix<f64> {
    let k = scale.len();
    let (previous, cross, m) = (tracked.gram.matrix(), &tracked.cross, gram.matrix());
    DMatrix::from_fn(k, k, |i, j| {
        decay * decay * previous[(i, j)] + decay * (cross[(i, j)] * scale[j] + scale[i] * cross[(j, i)]) + scale[i] * m[(i, j)] * scale[j]
    })
}

/// `Y` on the host, for callers that hold the Jacobian there (`mt10 weights`, tests).
#[derive(Debug, Clone, PartialEq)]
pub struct GradientAverage {
    rows: Vec<Vec<f64>>,
}

impl GradientAverage {
    pub fn zeros(k: usize, p: usize) -> Self {
        Self { rows: vec![vec![0.0; p]; k] }
    }

    /// What the combiner sees of this average against this step's Jacobian.
    pub fn tracked(&self, jacobian: &Jacobian) -> Tracked {
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let k = self.rows.len();
        let g: Vec<&[f64]> = jacobian.rows().collect();
        Tracked {
            gram: Gram::new(k, (0..k * k).map(|ij| dot(&self.rows[ij / k], &self.rows[ij % k])).collect()).expect("a Gram matrix"),
            cross: DMatrix::from_fn(k, k, |i, j| dot(&self.rows[i], g[j])),
        }
    }

    pub fn apply(&mut self, update: &TrackingUpdate, jacobian: &Jacobian) {
        for ((row, s), g) in self.rows.iter_mut().zip(&update.scale).zip(jacobian.rows()) {
            row.iter_mut().zip(g).for_each(|(y, g)| *y = update.decay * *y + s * g);
        }
    }

    /// `d = Y^T w`.
    pub fn direction(&self, weights: &[f64]) -> Vec<f64> {
        let mut d = vec![0.0; self.rows.first().map_or(0, Vec::len)];
        for (w, row) in weights.iter().zip(&self.rows) {
            d.iter_mut().zip(row).for_each(|(di, y)| *di += w * y);
        }
        d
    }
}

/// ExcessMTL's running sum `H` (`K x P`) of the squared task gradients, on the host (the trainer
/// keeps it on the device): each step adds `g_i * g_i` and gives the excess risks
/// `r_i = sum_p g_ip^2 / sqrt(H_ip + EPSILON)`.
#[derive(Debug, Clone, PartialEq)]
pub struct SquaredGradientSum {
    rows: Vec<Vec<f64>>,
}

impl SquaredGradientSum {
    /// LibMTL's `1e-7` under the square root.
    pub const EPSILON: f64 = 1e-7;

    pub fn zeros(k: usize, p: usize) -> Self {
        Self { rows: vec![vec![0.0; p]; k] }
    }

    /// Adds this step's squares and returns the excess risks.
    pub fn excess_risks(&mut self, jacobian: &Jacobian) -> Vec<f64> {
        self.rows
            .iter_mut()
            .zip(jacobian.rows())
            .map(|(h, g)| {
                h.iter_mut().zip(g).map(|(h, g)| {
                    *h += g * g;
                    g * g / (*h + Self::EPSILON).sqrt()
                })
                .sum()
            })
            .collect()
    }
}
