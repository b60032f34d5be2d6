use super::{gram, positive_losses, GRAM, GRAM_AND_LOSSES};
use crate::{Combination, Combiner, Fallback, Method, MgdaNormalization, Needs, SolverError, TaskInput};
use nalgebra::{DMatrix, DVector};
use rand::RngCore;

/// MGDA: the min-norm point of the convex hull of the (optionally normalised) task gradients.
#[derive(Debug, Clone)]
pub struct Mgda {
    pub normalization: MgdaNormalization,
}

impl Combiner for Mgda {
    fn method(&self) -> Method {
        Method::Mgda
    }

    fn needs(&self) -> Needs {
        match self.normalization {
            MgdaNormalization::None | MgdaNormalization::L2 => GRAM,
            MgdaNormalization::Loss | MgdaNormalization::LossPlus => GRAM_AND_LOSSES,
        }
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let gram = gram(input);
        let norms = gram.norms();
        // A zero gradient stays zero whatever it is divided by.
        let inverse = |x: f64| if x > 0.0 { 1.0 / x } else { 0.0 };
        let scales: Vec<f64> = match self.normalization {
            MgdaNormalization::None => vec![1.0; k],
            MgdaNormalization::L2 => norms.iter().map(|&n| inverse(n)).collect(),
            MgdaNormalization::Loss => {
                positive_losses(Method::Mgda, input, false)?.iter().map(|&l| inverse(l)).collect()
            }
            MgdaNormalization::LossPlus => {
                let losses = positive_losses(Method::Mgda, input, false)?;
                losses.iter().zip(&norms).map(|(&l, &n)| inverse(l * n)).collect()
            }
        };
        let (normalized, fallback) = min_norm_weights(gram.scaled(&scales).matrix());
        let weights = normalized.iter().zip(&scales).map(|(w, s)| w * s).collect();
        Ok(Combination { weights, direction: None, fallback, tracking: None })
    }
}

const MAX_MAJOR_STEPS: usize = 1000;

/// `argmin_{w in simplex} w^T M w` by Wolfe's min-norm-point algorithm, which works on inner
/// products alone and is exact on its final support (affine minimisations, not a step-size
/// iteration), so it reaches the tolerance in a handful of steps for any conditioning.
pub fn min_norm_weights(m: &DMatrix<f64>) -> (Vec<f64>, Option<Fallback>) {
    let k = m.nrows();
    let largest = m.diagonal().max();
    if largest <= 0.0 {
        return (super::uniform(k), Some(Fallback::Degenerate));
    }
    let tolerance = 1e-12 * largest;
    let first = (0..k).min_by(|&a, &b| m[(a, a)].total_cmp(&m[(b, b)])).expect("k > 0");
    let mut support = vec![first];
    let mut lambda = vec![1.0];
    for _ in 0..MAX_MAJOR_STEPS {
        // v_j = <g_j, p> for the current point p = sum lambda_s g_s.
        let v: Vec<f64> = (0..k).map(|j| support.iter().zip(&lambda).map(|(&s, l)| l * m[(j, s)]).sum()).collect();
        let norm_sq: f64 = support.iter().zip(&lambda).map(|(&s, l)| l * v[s]).sum();
        let (entering, lowest) = (0..k).map(|j| (j, v[j])).min_by(|a, b| a.1.total_cmp(&b.1)).expect("k > 0");
        if norm_sq - lowest <= tolerance || support.contains(&entering) {
            return (expand(k, &support, &lambda), None);
        }
        support.push(entering);
        lambda.push(0.0);
        loop {
            let affine = affine_minimizer(m, &support);
            if affine.iter().all(|a| *a > 0.0) {
                lambda = affine;
                break;
            }
            // Walk from lambda towards the affine minimiser until a weight hits zero; drop it.
            let (blocking, theta) = lambda
                .iter()
                .zip(&affine)
                .enumerate()
                .filter(|(_, (_, a))| **a <= 0.0)
                .map(|(i, (l, a))| (i, l / (l - a)))
                .min_by(|x, y| x.1.total_cmp(&y.1))
                .expect("some affine weight is non-positive");
            let moved: Vec<f64> = lambda.iter().zip(&affine).map(|(l, a)| l + theta * (a - l)).collect();
            let keep: Vec<bool> = (0..moved.len()).map(|i| i != blocking && moved[i] > 0.0).collect();
            support = support.iter().zip(&keep).filter(|(_, k)| **k).map(|(s, _)| *s).collect();
            lambda = moved.iter().zip(&keep).filter(|(_, k)| **k).map(|(l, _)| *l).collect();
            let total: f64 = lambda.iter().sum();
            lambda.iter_mut().for_each(|l| *l /= total);
            if support.len() <= 1 {
                if support.is_empty() {
                    support = vec![entering];
                }
                lambda = vec![1.0];
                break;
            }
        }
    }
    (expand(k, &support, &lambda), Some(Fallback::NotConverged))
}

/// Minimises `||sum_s a_s g_s||^2` over the affine hull (`sum a_s = 1`) of the support.
fn affine_minimizer(m: &DMatrix<f64>, support: &[usize]) -> Vec<f64> {
    let n = support.len();
    let mut kkt = DMatrix::zeros(n + 1, n + 1);
    for (a, &i) in support.iter().enumerate() {
        for (b, &j) in support.iter().enumerate() {
            kkt[(a, b)] = m[(i, j)];
        }
        kkt[(a, n)] = 1.0;
        kkt[(n, a)] = 1.0;
    }
    let mut rhs = DVector::zeros(n + 1);
    rhs[n] = 1.0;
    let solution = kkt.clone().lu().solve(&rhs).filter(|x| x.iter().all(|v| v.is_finite()));
    let solution = solution.unwrap_or_else(|| crate::linalg::pseudo_inverse(&kkt) * rhs);
    solution.rows(0, n).iter().copied().collect()
}

fn expand(k: usize, support: &[usize], lambda: &[f64]) -> Vec<f64> {
    let mut w = vec![0.0; k];
    for (&s, &l) in support.iter().zip(lambda) {
        w[s] = l;
    }
    w
}
