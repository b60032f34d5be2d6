//! MT10 stepping throughput through the bridge against a plain Python gymnasium loop over the
//! same envs in the same run (the plain loop is the limit: MuJoCo plus Meta-World's own Python).

use pyo3::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{python_error, MetaWorldEnv};
use crate::{EnvError, MetaWorldConfig, MultiTaskEnv, VectorStrategy};

/// Rates are single-task transitions per second (vector steps times the number of tasks).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvBench {
    pub bridge_steps_per_s: f64,
    pub python_steps_per_s: f64,
    pub strategy: VectorStrategy,
    /// Vector steps timed for each side.
    pub steps: usize,
}

/// Rounds the two loops alternate in, so drifts in machine load hit both alike.
const ROUNDS: usize = 4;
const WARM_UP_STEPS: usize = 20;

/// Times `steps` vector steps of MT10 (the `mtrl` preset, random actions) through the bridge
/// and as many in a plain `envs.step(envs.action_space.sample())` Python loop.
pub fn bench_env(steps: usize, strategy: VectorStrategy) -> Result<EnvBench, EnvError> {
    let mut stepper = Stepper::new(strategy, 0)?;
    let (mut bridge_s, mut python_s) = (0.0, 0.0);
    for round in 0..ROUNDS {
        let round_steps = steps / ROUNDS + usize::from(round < steps % ROUNDS);
        bridge_s += stepper.time(round_steps)?;
        python_s += Python::attach(|py| -> PyResult<f64> {
            super::bridge_module(py)?
                .getattr("plain_loop")?
                .call1((stepper.env.bridge.bind(py), round_steps))?
                .extract()
        })
        .map_err(python_error)?;
    }
    let transitions = (steps * stepper.tasks()) as f64;
    Ok(EnvBench {
        bridge_steps_per_s: transitions / bridge_s,
        python_steps_per_s: transitions / python_s,
        strategy,
        steps,
    })
}

/// MT10 (the `mtrl` preset) through the bridge with uniform random actions, built, reset and
/// warmed up, ready to be timed.
pub struct Stepper {
    env: MetaWorldEnv,
    rng: ChaCha8Rng,
}

impl Stepper {
    pub fn new(strategy: VectorStrategy, seed: u64) -> Result<Self, EnvError> {
        let config = MetaWorldConfig {
            vector_strategy: strategy,
            ..MetaWorldConfig::default()
        };
        let mut stepper = Self {
            env: MetaWorldEnv::new(&config, seed)?,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        stepper.env.reset()?;
        stepper.time(WARM_UP_STEPS)?;
        Ok(stepper)
    }

    pub fn tasks(&self) -> usize {
        self.env.spec().num_tasks()
    }

    /// Takes `steps` vector steps; returns the seconds they took.
    pub fn time(&mut self, steps: usize) -> Result<f64, EnvError> {
        let width = self.tasks() * self.env.spec().action_dim;
        let start = std::time::Instant::now();
        for _ in 0..steps {
            let actions: Vec<f32> = (0..width).map(|_| self.rng.gen_range(-1.0..1.0)).collect();
            self.env.step(&actions)?;
        }
        Ok(start.elapsed().as_secs_f64())
    }
}
