use crate::linalg::softmax;
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

/// Random loss weighting: `w = softmax(z)`, `z` standard normal, drawn afresh every step.
#[derive(Debug, Clone, Copy)]
pub struct Rlw;

impl Combiner for Rlw {
    fn method(&self) -> Method {
        Method::Rlw
    }

    fn needs(&self) -> Needs {
        Needs { gram: false, losses: false, jacobian: false, tracked: false, excess_risks: false }
    }

    fn solve(&mut self, k: usize, _input: &TaskInput, rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let z: Vec<f64> = (0..k).map(|_| StandardNormal.sample(rng)).collect();
        Ok(Combination::weights(softmax(&z)))
    }
}
