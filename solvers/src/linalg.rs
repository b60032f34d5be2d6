//! Small numerical helpers shared by the methods. K is small (2 to 50), so plain loops win.
use nalgebra::{DMatrix, DVector};

/// Solves `a x = b` for a symmetric positive (semi-)definite `a`: Cholesky when it succeeds,
/// else the pseudo-inverse (least-squares, minimum-norm solution).
pub fn solve_spd(a: &DMatrix<f64>, b: &DVector<f64>) -> DVector<f64> {
    match a.clone().cholesky() {
        Some(chol) => chol.solve(b),
        None => pseudo_inverse(a) * b,
    }
}

/// Moore-Penrose pseudo-inverse of a symmetric matrix, with eigenvalues below
/// `1e-10 * max |eigenvalue|` treated as zero.
pub fn pseudo_inverse(a: &DMatrix<f64>) -> DMatrix<f64> {
    let eigen = a.clone().symmetric_eigen();
    let largest = eigen.eigenvalues.amax();
    let cutoff = 1e-10 * largest;
    let inverted = eigen.eigenvalues.map(|l| if l.abs() > cutoff && largest > 0.0 { 1.0 / l } else { 0.0 });
    &eigen.eigenvectors * DMatrix::from_diagonal(&inverted) * eigen.eigenvectors.transpose()
}

/// `M v` for a row-major square matrix.
pub fn mat_vec(m: &DMatrix<f64>, v: &[f64]) -> Vec<f64> {
    (0..m.nrows()).map(|i| (0..m.ncols()).map(|j| m[(i, j)] * v[j]).sum()).collect()
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `v^T M v`.
pub fn quad_form(m: &DMatrix<f64>, v: &[f64]) -> f64 {
    dot(v, &mat_vec(m, v))
}

pub fn norm(v: &[f64]) -> f64 {
    dot(v, v).sqrt()
}

pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|z| (z - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

/// Back-propagates a gradient with respect to `p = softmax(z)` to one with respect to `z`.
pub fn softmax_backward(p: &[f64], grad_p: &[f64]) -> Vec<f64> {
    let inner = dot(p, grad_p);
    p.iter().zip(grad_p).map(|(pi, gi)| pi * (gi - inner)).collect()
}

/// Euclidean projection onto the probability simplex (sort-based, exact).
pub fn project_simplex(v: &[f64]) -> Vec<f64> {
    let mut sorted = v.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut cumulative = 0.0;
    let mut theta = 0.0;
    for (i, s) in sorted.iter().enumerate() {
        cumulative += s;
        let candidate = (cumulative - 1.0) / (i + 1) as f64;
        if s - candidate > 0.0 {
            theta = candidate;
        }
    }
    v.iter().map(|x| (x - theta).max(0.0)).collect()
}

/// `torch.optim.SGD` with momentum and no dampening: the first step's buffer is the gradient.
#[derive(Debug, Clone)]
pub struct SgdMomentum {
    lr: f64,
    momentum: f64,
    buffer: Option<Vec<f64>>,
}

impl SgdMomentum {
    pub fn new(lr: f64, momentum: f64) -> Self {
        Self { lr, momentum, buffer: None }
    }

    pub fn step(&mut self, params: &mut [f64], grad: &[f64]) {
        let buffer = match self.buffer.take() {
            None => grad.to_vec(),
            Some(b) => b.iter().zip(grad).map(|(b, g)| self.momentum * b + g).collect(),
        };
        for (x, v) in params.iter_mut().zip(&buffer) {
            *x -= self.lr * v;
        }
        self.buffer = Some(buffer);
    }
}

/// `torch.optim.Adam` (betas 0.9/0.999, eps 1e-8) with L2 weight decay added to the gradient.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adam {
    lr: f64,
    weight_decay: f64,
    step: u64,
    first_moment: Vec<f64>,
    second_moment: Vec<f64>,
}

impl Adam {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    pub fn new(n: usize, lr: f64, weight_decay: f64) -> Self {
        Self { lr, weight_decay, step: 0, first_moment: vec![0.0; n], second_moment: vec![0.0; n] }
    }

    pub fn step(&mut self, params: &mut [f64], grad: &[f64]) {
        self.step += 1;
        let t = self.step as i32;
        let (c1, c2) = (1.0 - Self::BETA1.powi(t), 1.0 - Self::BETA2.powi(t));
        for (i, x) in params.iter_mut().enumerate() {
            let g = grad[i] + self.weight_decay * *x;
            self.first_moment[i] = Self::BETA1 * self.first_moment[i] + (1.0 - Self::BETA1) * g;
            self.second_moment[i] = Self::BETA2 * self.second_moment[i] + (1.0 - Self::BETA2) * g * g;
            let denom = (self.second_moment[i] / c2).sqrt() + Self::EPS;
            *x -= self.lr / c1 * self.first_moment[i] / denom;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplex_projection_of_a_point_inside_is_the_point() {
        let p = project_simplex(&[0.2, 0.3, 0.5]);
        assert!(p.iter().zip([0.2, 0.3, 0.5]).all(|(a, b)| (a - b).abs() < 1e-15));
    }

    #[test]
    fn simplex_projection_clips_and_renormalises() {
        assert_eq!(project_simplex(&[2.0, 0.0]), vec![1.0, 0.0]);
        let p = project_simplex(&[0.5, 0.5, -3.0]);
        assert_eq!(p, vec![0.5, 0.5, 0.0]);
    }

    #[test]
    fn pseudo_inverse_of_a_rank_one_matrix() {
        let a = DMatrix::from_row_slice(2, 2, &[1.0, 1.0, 1.0, 1.0]);
        let pinv = pseudo_inverse(&a);
        assert!((&a * &pinv * &a - &a).amax() < 1e-12);
    }
}
