use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;

/// Linear scalarisation ("MT-SAC"): the plain mean of the task losses, `w_i = 1/K`.
#[derive(Debug, Clone, Copy)]
pub struct LinearScalarization;

impl Combiner for LinearScalarization {
    fn method(&self) -> Method {
        Method::Ls
    }

    fn needs(&self) -> Needs {
        Needs { gram: false, losses: false, jacobian: false, tracked: false, excess_risks: false }
    }

    fn solve(&mut self, k: usize, _input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        Ok(Combination::weights(super::uniform(k)))
    }
}
