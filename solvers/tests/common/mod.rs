//! Shared by the integration tests: every method's configurations, and running one on a problem.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::{combine, Combination, CombinerConfig, Jacobian, Method, MgdaNormalization, Solver, SolverError, SquaredGradientSum, TaskInput, Tracked};

/// Every method, with each alternative solver and normalisation.
pub fn all_configs() -> Vec<CombinerConfig> {
    let mut configs: Vec<CombinerConfig> = Method::ALL.iter().map(|&m| CombinerConfig::new(m)).collect();
    configs.push(CombinerConfig { solver: Some(Solver::Exact), ..CombinerConfig::new(Method::FairGrad) });
    configs.push(CombinerConfig { solver: Some(Solver::Exact), ..CombinerConfig::new(Method::Cagrad) });
    configs.push(CombinerConfig { solver: Some(Solver::Ccp), ..CombinerConfig::new(Method::Nash) });
    configs.push(CombinerConfig { solver: Some(Solver::Mt10), ..CombinerConfig::new(Method::Famo) });
    for normalization in [MgdaNormalization::L2, MgdaNormalization::Loss, MgdaNormalization::LossPlus] {
        configs.push(CombinerConfig { normalization: Some(normalization), ..CombinerConfig::new(Method::Mgda) });
    }
    configs.push(CombinerConfig { loss_alpha: Some(0.5), ..CombinerConfig::new(Method::FairGrad) });
    configs
}

/// Builds `config` for the rows of `jacobian` and solves once (a tracking method from a zero
/// average or squared-gradient sum, as its first step); `None` where the method cannot be built for that K (a KL radius
/// above log K).
pub fn solve(config: &CombinerConfig, jacobian: &Jacobian, losses: &[f64], seed: u64) -> Option<Result<Combination, SolverError>> {
    let k = jacobian.k();
    let mut combiner = match config.build(k) {
        Ok(combiner) => combiner,
        Err(SolverError::InvalidParameter { name: "rho", .. }) => return None,
        Err(e) => panic!("{config:?} does not build for K = {k}: {e}"),
    };
    let gram = jacobian.gram();
    let risks = SquaredGradientSum::zeros(k, jacobian.p()).excess_risks(jacobian);
    let input = TaskInput {
        gram: Some(&gram),
        losses: Some(losses),
        jacobian: Some(jacobian),
        tracked: Some(&Tracked::zero(k)),
        excess_risks: Some(&risks),
    };
    Some(combine(combiner.as_mut(), k, &input, &mut ChaCha8Rng::seed_from_u64(seed)))
}
