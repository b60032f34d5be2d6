use super::{gram, GRAM};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::seq::SliceRandom;
use rand::RngCore;

/// PCGrad on the Gram alone: each projected gradient is a combination of the original rows, so
/// it is tracked as coefficients `c` over the rows, with inner products `<sum c g, g_j> = (M c)_j`.
/// `d` is the mean of the projected gradients (the MT10 baseline; the supervised code sums).
#[derive(Debug, Clone, Copy)]
pub struct Pcgrad;

impl Combiner for Pcgrad {
    fn method(&self) -> Method {
        Method::Pcgrad
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, k: usize, input: &TaskInput, rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let m = gram(input).matrix();
        let mut weights = vec![0.0; k];
        let mut others: Vec<usize> = Vec::with_capacity(k);
        for i in 0..k {
            let mut c = vec![0.0; k];
            c[i] = 1.0;
            others.clear();
            others.extend((0..k).filter(|&j| j != i));
            others.shuffle(rng);
            for &j in &others {
                let inner: f64 = (0..k).map(|l| c[l] * m[(l, j)]).sum();
                if inner < 0.0 && m[(j, j)] > 0.0 {
                    c[j] -= inner / m[(j, j)];
                }
            }
            weights.iter_mut().zip(&c).for_each(|(w, ci)| *w += ci / k as f64);
        }
        Ok(Combination::weights(weights))
    }
}
