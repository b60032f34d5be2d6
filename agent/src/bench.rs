//! Times full SAC updates per combiner on synthetic MT10-shaped data (`mt10 bench update`): what
//! per-task gradients and the combiners cost relative to the plain `ls` update.
use crate::{AgentError, CombineConfig, DeviceChoice, Sac, SacConfig};
use envs::{EnvSpec, VecStep};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use solvers::{CombinerConfig, Method};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct UpdateBenchmark {
    /// The combiners to time; `ls` is always timed first, as the reference.
    pub methods: Vec<CombinerConfig>,
    pub batch_size: usize,
    pub device: DeviceChoice,
    pub update_weights_every: usize,
    /// Timed updates per method (rounded up to a multiple of `update_weights_every`), after
    /// `warmup_updates` untimed ones.
    pub updates: usize,
    pub warmup_updates: usize,
    pub num_tasks: usize,
    pub obs_dim: usize,
    pub action_dim: usize,
    pub hidden: Vec<usize>,
    /// libtorch's intra-op threads; `None` keeps its default (one per core). On a shared
    /// machine one thread gives steadier numbers: an oversubscribed OpenMP pool stalls.
    pub threads: Option<usize>,
}

impl Default for UpdateBenchmark {
    /// MT10 shapes: 10 tasks, 39-dim observations, 4-dim actions, 3x400 networks, batch 1280.
    fn default() -> Self {
        Self {
            methods: [Method::Ls, Method::FairGrad, Method::Nash, Method::Mgda, Method::Pcgrad, Method::Cagrad, Method::Famo]
                .map(CombinerConfig::new)
                .to_vec(),
            batch_size: 1280,
            device: DeviceChoice::Cpu,
            update_weights_every: 1,
            updates: 20,
            warmup_updates: 3,
            num_tasks: 10,
            obs_dim: 39,
            action_dim: 4,
            hidden: vec![400, 400, 400],
            threads: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MethodTiming {
    /// Wall time of one full update (critic, actor, temperature, targets): the median over
    /// blocks of `update_weights_every` consecutive updates (each block holds exactly one weight
    /// refresh) of the block's mean. The median keeps other processes' bursts out.
    pub ms_per_update: f64,
    pub ratio_to_ls: f64,
    /// The plain mean over all timed updates.
    pub mean_ms_per_update: f64,
    /// Mean time per update spent in the combiners' solves (all three components).
    pub solver_us: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateBenchmarkReport {
    pub device: String,
    /// libtorch's intra-op threads during the run.
    pub threads: usize,
    pub batch: usize,
    pub update_weights_every: usize,
    pub updates: usize,
    /// In the order timed (`ls` first); serialised as a map from method name.
    #[serde(serialize_with = "ordered_map")]
    pub methods: Vec<(String, MethodTiming)>,
}

fn ordered_map<S: Serializer>(entries: &[(String, MethodTiming)], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(entries.len()))?;
    for (name, timing) in entries {
        map.serialize_entry(name, timing)?;
    }
    map.end()
}

/// Builds one agent per method on the same synthetic replay data, then times their updates
/// interleaved (one update of each method in turn), so that machine noise hits all alike.
pub fn update_benchmark(bench: &UpdateBenchmark) -> Result<UpdateBenchmarkReport, AgentError> {
    if let Some(threads) = bench.threads {
        tch::set_num_threads(threads as i32);
    }
    let spec = EnvSpec {
        task_names: (0..bench.num_tasks).map(|k| format!("task{k}")).collect(),
        obs_dim: bench.obs_dim,
        action_dim: bench.action_dim,
        max_episode_steps: 150,
    };
    let mut methods = vec![CombinerConfig::new(Method::Ls)];
    methods.extend(bench.methods.iter().filter(|m| m.method != Method::Ls).cloned());
    let mut agents = Vec::with_capacity(methods.len());
    for combiner in &methods {
        let config = SacConfig {
            hidden: bench.hidden.clone(),
            batch_size: bench.batch_size,
            replay_capacity: 20 * bench.batch_size,
            device: bench.device,
            combine: CombineConfig { combiner: combiner.clone(), update_weights_every: bench.update_weights_every, ..CombineConfig::new(combiner.method) },
            ..SacConfig::mtrl()
        };
        let mut agent = Sac::new(config, &spec, 0)?;
        fill_with_synthetic_transitions(&mut agent, 2 * bench.batch_size / bench.num_tasks.max(1) + 1, 0)?;
        agents.push(agent);
    }
    let every = bench.update_weights_every.max(1);
    let updates = bench.updates.max(1).div_ceil(every) * every;
    let mut update_ms: Vec<Vec<f64>> = vec![Vec::with_capacity(updates); agents.len()];
    let mut total_solver_us = vec![0.0; agents.len()];
    for round in 0..bench.warmup_updates + updates {
        for (i, agent) in agents.iter_mut().enumerate() {
            let start = Instant::now();
            let report = agent.update()?;
            if let tch::Device::Cuda(index) = agent.device() {
                tch::Cuda::synchronize(index as i64);
            }
            if round >= bench.warmup_updates {
                update_ms[i].push(start.elapsed().as_secs_f64() * 1e3);
                total_solver_us[i] += report.critic.solver_us + report.actor.solver_us + report.alpha.solver_us;
            }
        }
    }
    let ms_per_update: Vec<f64> = update_ms.iter().map(|times| median_block_mean(times, every)).collect();
    let timings = methods
        .iter()
        .zip(&update_ms)
        .zip(&ms_per_update)
        .zip(&total_solver_us)
        .map(|(((combiner, times), &ms), solver_us)| {
            let timing = MethodTiming {
                ms_per_update: ms,
                ratio_to_ls: ms / ms_per_update[0],
                mean_ms_per_update: times.iter().sum::<f64>() / times.len() as f64,
                solver_us: solver_us / times.len() as f64,
            };
            (combiner.method.to_string(), timing)
        })
        .collect();
    Ok(UpdateBenchmarkReport {
        device: format!("{:?}", agents[0].device()).to_lowercase(),
        threads: tch::get_num_threads() as usize,
        batch: bench.batch_size,
        update_weights_every: bench.update_weights_every,
        updates,
        methods: timings,
    })
}

fn median_block_mean(times: &[f64], block: usize) -> f64 {
    let mut means: Vec<f64> = times.chunks_exact(block).map(|b| b.iter().sum::<f64>() / block as f64).collect();
    means.sort_by(f64::total_cmp);
    let mid = means.len() / 2;
    if means.len() % 2 == 1 { means[mid] } else { 0.5 * (means[mid - 1] + means[mid]) }
}

/// Stores `vector_steps` steps of random transitions in every task: standard normal
/// observations, uniform actions, rewards in `[0, 10)`, occasional terminations.
pub(crate) fn fill_with_synthetic_transitions(agent: &mut Sac, vector_steps: usize, seed: u64) -> Result<(), AgentError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (k, obs_len) = (agent.num_tasks(), agent.num_tasks() * agent.obs_dim());
    let mut obs: Vec<f32> = (0..obs_len).map(|_| rng.sample(StandardNormal)).collect();
    for _ in 0..vector_steps {
        let actions = agent.random_actions();
        let next_obs: Vec<f32> = (0..obs_len).map(|_| rng.sample(StandardNormal)).collect();
        let step = VecStep {
            obs: next_obs.clone(),
            next_obs: next_obs.clone(),
            rewards: (0..k).map(|_| rng.gen_range(0.0..10.0)).collect(),
            terminated: (0..k).map(|_| rng.gen_bool(0.05)).collect(),
            truncated: vec![false; k],
            success: vec![false; k],
        };
        agent.observe(&obs, &actions, &step)?;
        obs = next_obs;
    }
    Ok(())
}
