use crate::SolverError;
use nalgebra::DMatrix;

/// The task Gram matrix `M = J J^T`: square, symmetric, finite, with a non-negative diagonal.
#[derive(Debug, Clone, PartialEq)]
pub struct Gram(DMatrix<f64>);

/// The task Jacobian `J`: one row per task, each the task's gradient (row-major, `K x P`).
#[derive(Debug, Clone, PartialEq)]
pub struct Jacobian {
    k: usize,
    p: usize,
    data: Vec<f64>,
}

/// Gram matrices computed in single precision are symmetric only up to rounding: accept that,
/// relative to the largest entry, and symmetrise.
const SYMMETRY_TOLERANCE: f64 = 1e-5;

impl Gram {
    /// From a row-major `k x k` buffer.
    pub fn new(k: usize, row_major: Vec<f64>) -> Result<Self, SolverError> {
        if k == 0 {
            return Err(SolverError::NoTasks);
        }
        if row_major.len() != k * k {
            return Err(SolverError::WrongLength { k, len: row_major.len() });
        }
        if let Some(index) = row_major.iter().position(|x| !x.is_finite()) {
            return Err(SolverError::NonFinite { what: "Gram matrix", index });
        }
        let m = DMatrix::from_row_slice(k, k, &row_major);
        let scale = m.amax();
        for i in 0..k {
            if m[(i, i)] < -SYMMETRY_TOLERANCE * scale {
                return Err(SolverError::NegativeDiagonal { i, value: m[(i, i)] });
            }
            for j in 0..i {
                let (a, b) = (m[(i, j)], m[(j, i)]);
                if (a - b).abs() > SYMMETRY_TOLERANCE * scale {
                    return Err(SolverError::NotSymmetric { i, j, a, b });
                }
            }
        }
        let mut symmetric = (&m + m.transpose()) * 0.5;
        for i in 0..k {
            symmetric[(i, i)] = symmetric[(i, i)].max(0.0);
        }
        Ok(Self(symmetric))
    }

    /// From rows, as read from a file: checks they form a square matrix.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self, SolverError> {
        let k = rows.len();
        if let Some((row, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != k) {
            return Err(SolverError::NotSquare { rows: k, row, len: r.len() });
        }
        Self::new(k, rows.concat())
    }

    pub fn k(&self) -> usize {
        self.0.nrows()
    }

    pub fn matrix(&self) -> &DMatrix<f64> {
        &self.0
    }

    /// Gradient norms `sqrt(M_ii)`.
    pub fn norms(&self) -> Vec<f64> {
        self.0.diagonal().iter().map(|d| d.sqrt()).collect()
    }

    /// `M` with rows and columns scaled: the Gram of the rows `s_i g_i`.
    pub fn scaled(&self, s: &[f64]) -> Self {
        let k = self.k();
        Self(DMatrix::from_fn(k, k, |i, j| self.0[(i, j)] * s[i] * s[j]))
    }
}

impl Jacobian {
    /// From a row-major `k x p` buffer.
    pub fn new(k: usize, p: usize, data: Vec<f64>) -> Result<Self, SolverError> {
        if k == 0 {
            return Err(SolverError::NoTasks);
        }
        if p == 0 {
            return Err(SolverError::EmptyJacobian);
        }
        if data.len() != k * p {
            return Err(SolverError::JacobianLength { k, p, len: data.len() });
        }
        if let Some(index) = data.iter().position(|x| !x.is_finite()) {
            return Err(SolverError::NonFinite { what: "Jacobian", index });
        }
        Ok(Self { k, p, data })
    }

    /// From rows, as read from a file: checks they have equal length.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self, SolverError> {
        let p = rows.first().map_or(0, Vec::len);
        if let Some((row, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != p) {
            return Err(SolverError::RaggedJacobian { expected: p, row, got: r.len() });
        }
        Self::new(rows.len(), p, rows.concat())
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn p(&self) -> usize {
        self.p
    }

    pub fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.data.chunks_exact(self.p)
    }

    /// The rows `s_i g_i`.
    pub fn scaled_rows(&self, s: &[f64]) -> Self {
        let data = self.rows().zip(s).flat_map(|(row, si)| row.iter().map(move |g| g * si)).collect();
        Self { k: self.k, p: self.p, data }
    }

    pub fn gram(&self) -> Gram {
        let rows: Vec<&[f64]> = self.rows().collect();
        let k = self.k;
        let mut m = DMatrix::zeros(k, k);
        for i in 0..k {
            for j in 0..=i {
                let dot: f64 = rows[i].iter().zip(rows[j]).map(|(a, b)| a * b).sum();
                m[(i, j)] = dot;
                m[(j, i)] = dot;
            }
        }
        Gram(m)
    }
}
