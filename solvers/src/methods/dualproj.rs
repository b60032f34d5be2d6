use super::dual_cone::{normalized_regularized, project_weights};
use super::upgrad::EPS;
use super::{gram, uniform, GRAM};
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;

/// DualProj (TorchJD's `DualProjWeighting`; GEM's equation 11): the mean gradient projected onto
/// the dual cone of the rows, i.e. the projection weights of `1 / K` under
/// `G = M / tr M + eps I`, as UPGrad.
#[derive(Debug, Clone, Copy)]
pub struct DualProj;

impl Combiner for DualProj {
    fn method(&self) -> Method {
        Method::DualProj
    }

    fn needs(&self) -> Needs {
        GRAM
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let g = normalized_regularized(gram(input).matrix(), EPS);
        Ok(Combination::weights(project_weights(&g, &uniform(k))))
    }
}
