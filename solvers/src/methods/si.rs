use super::{positive_losses, LOSSES};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;

/// Scale-invariant loss `sum log L_i`: each task's gradient weighted by `1 / L_i`.
#[derive(Debug, Clone, Copy)]
pub struct ScaleInvariant;

impl Combiner for ScaleInvariant {
    fn method(&self) -> Method {
        Method::Si
    }

    fn needs(&self) -> Needs {
        LOSSES
    }

    fn solve(&mut self, _k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let losses = positive_losses(Method::Si, input, false)?;
        Ok(Combination::weights(losses.iter().map(|l| 1.0 / l).collect()))
    }
}
