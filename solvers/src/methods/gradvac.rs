use super::{gram, GRAM};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use nalgebra::DMatrix;
use rand::seq::SliceRandom;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Gradient Vaccine (Wang et al., ICLR 2021), as LibMTL's `GradVac.py` with its whole-model
/// granularity (`GradVac_group_type = 0`): each task's gradient `g_i'` starts at `g_i`; for every
/// other task `j` in a random order, when the cosine `r = cos(g_i', g_j)` is below the target
/// `T_ij`, `g_i' += g_j ||g_i'|| (T_ij sqrt(1 - r^2) - r sqrt(1 - T_ij^2)) / (||g_j|| sqrt(1 - T_ij^2) + 1e-8)`,
/// and the target follows the cosines, `T_ij <- (1 - beta) T_ij + beta r`, starting at zero.
/// `d = sum_i g_i'` (LibMTL sums). As PCGrad, each `g_i'` is tracked as coefficients over the rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GradVac {
    #[serde(skip)]
    beta: f64,
    /// `targets[i][j]` is `T_ij`.
    targets: Vec<Vec<f64>>,
}

impl GradVac {
    pub fn new(k: usize, beta: f64) -> Self {
        Self { beta, targets: vec![vec![0.0; k]; k] }
    }

    /// One step, with `order(i, others)` arranging the tasks `j != i` in the order task `i` meets
    /// them (random in training; given by the reference vectors in tests).
    pub fn vaccinate(&mut self, m: &DMatrix<f64>, mut order: impl FnMut(usize, &mut Vec<usize>)) -> Vec<f64> {
        let k = m.nrows();
        if self.targets.len() != k {
            self.targets = vec![vec![0.0; k]; k];
        }
        let norms: Vec<f64> = (0..k).map(|j| m[(j, j)].max(0.0).sqrt()).collect();
        let mut weights = vec![0.0; k];
        let mut others = Vec::with_capacity(k);
        for i in 0..k {
            let mut c = vec![0.0; k];
            c[i] = 1.0;
            others.clear();
            others.extend((0..k).filter(|&j| j != i));
            order(i, &mut others);
            for &j in &others {
                let inner = |c: &[f64], j: usize| (0..k).map(|l| c[l] * m[(l, j)]).sum::<f64>();
                let own_norm = (0..k).map(|l| c[l] * inner(&c, l)).sum::<f64>().max(0.0).sqrt();
                let r = inner(&c, j) / (own_norm * norms[j] + 1e-8);
                let target = self.targets[i][j];
                if r < target {
                    let sine = |x: f64| (1.0 - x * x).max(0.0).sqrt();
                    c[j] += own_norm * (target * sine(r) - r * sine(target)) / (norms[j] * sine(target) + 1e-8);
                }
                self.targets[i][j] = (1.0 - self.beta) * target + self.beta * r;
            }
            weights.iter_mut().zip(&c).for_each(|(w, x)| *w += x);
        }
        weights
    }
}

impl Combiner for GradVac {
    fn method(&self) -> Method {
        Method::GradVac
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, _k: usize, input: &TaskInput, rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        Ok(Combination::weights(self.vaccinate(gram(input).matrix(), |_, others| others.shuffle(rng))))
    }

    fn state(&self) -> serde_json::Value {
        super::saved(self)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        let bad = |reason: String| SolverError::BadState { method: Method::GradVac, reason };
        let loaded: Self = super::restored(Method::GradVac, state)?;
        let k = self.targets.len();
        let valid = loaded.targets.len() == k && loaded.targets.iter().flatten().all(|t| t.is_finite() && t.abs() <= 1.0);
        if !valid || loaded.targets.iter().any(|row| row.len() != k) {
            return Err(bad(format!("expected {k} x {k} cosine targets in [-1, 1]")));
        }
        self.targets = loaded.targets;
        Ok(())
    }
}
