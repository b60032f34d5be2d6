//! Times full SAC updates per combiner on synthetic MT10-shaped data (`mt10 bench update`): what
//! per-task gradients and the combiners cost relative to the plain `ls` update, where the time
//! goes, and (optionally) how another implementation timed in the same rounds compares.
use crate::counting::{count_ops, host_syncs};
use crate::{ActionMode, AgentError, CombineConfig, DeviceChoice, ParameterCounts, Sac, SacConfig, UpdateReport};
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
    /// The networks and their training settings (a preset's or config file's agent section);
    /// the benchmark sets the batch, the replay capacity, the device and the combiner, and keeps
    /// the rest of `combine`.
    pub agent: SacConfig,
    /// libtorch's intra-op threads; `None` keeps its default (one per core). On a shared
    /// machine one thread gives steadier numbers: an oversubscribed OpenMP pool stalls.
    pub threads: Option<usize>,
}

impl Default for UpdateBenchmark {
    /// MT10 shapes: 10 tasks, 39-dim observations, 4-dim actions, the `mtrl` networks (3x400
    /// MLPs), batch 1280.
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
            agent: SacConfig { combine: CombineConfig::new(Method::Ls), ..SacConfig::mtrl() },
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
    pub breakdown: Breakdown,
    /// libtorch ops per update, counted exactly (see [`crate::counting`]); on CUDA each op that
    /// computes is at least one kernel launch.
    pub ops_per_update: f64,
    /// Points per update where the host waits for the device (read-backs and blocking copies to
    /// it), counted exactly on any device.
    pub host_syncs_per_update: f64,
    /// The reference implementation's time per update in the same rounds (median), when one ran.
    pub reference_ms_per_update: Option<f64>,
    /// Ours over the reference.
    pub ratio_to_reference: Option<f64>,
}

/// Mean milliseconds per update by phase, over the three components (see
/// [`crate::Phases`]); on CUDA, host times.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Breakdown {
    /// Drawing the batch and moving it to the device.
    pub sample: f64,
    /// The critic's regression target.
    pub bellman_target: f64,
    pub forward_backward: f64,
    pub task_gradients: f64,
    pub gram: f64,
    pub solve: f64,
    pub direction: f64,
    pub adam: f64,
    pub polyak: f64,
    /// The rest of the update.
    pub other: f64,
}

impl Breakdown {
    fn add(&mut self, report: &UpdateReport) {
        let components = [&report.critic, &report.actor, &report.alpha];
        let sum = |phase: fn(&crate::Phases) -> f64| components.iter().map(|c| phase(&c.phases)).sum::<f64>();
        let parts = Breakdown {
            sample: report.sample_ms,
            bellman_target: report.bellman_target_ms,
            forward_backward: sum(|p| p.forward_backward_ms),
            task_gradients: sum(|p| p.task_gradients_ms),
            gram: sum(|p| p.gram_ms),
            solve: components.iter().map(|c| c.solver_us * 1e-3).sum(),
            direction: sum(|p| p.direction_ms),
            adam: sum(|p| p.adam_ms),
            polyak: report.polyak_ms,
            other: 0.0,
        };
        let other = report.ms - parts.named().iter().map(|(_, ms)| ms).sum::<f64>();
        *self = self.zip_with(&Breakdown { other, ..parts }, |a, b| a + b);
    }

    /// The phases in the order of an update, with short names for tables.
    pub fn named(&self) -> [(&'static str, f64); 10] {
        [
            ("sample", self.sample),
            ("target", self.bellman_target),
            ("fwd+bwd", self.forward_backward),
            ("task grads", self.task_gradients),
            ("gram", self.gram),
            ("solve", self.solve),
            ("direction", self.direction),
            ("adam", self.adam),
            ("polyak", self.polyak),
            ("other", self.other),
        ]
    }

    fn zip_with(&self, other: &Breakdown, f: impl Fn(f64, f64) -> f64) -> Breakdown {
        let (a, b) = (self.named(), other.named());
        let v: [f64; 10] = std::array::from_fn(|i| f(a[i].1, b[i].1));
        Breakdown {
            sample: v[0],
            bellman_target: v[1],
            forward_backward: v[2],
            task_gradients: v[3],
            gram: v[4],
            solve: v[5],
            direction: v[6],
            adam: v[7],
            polyak: v[8],
            other: v[9],
        }
    }

    fn scaled(&self, factor: f64) -> Breakdown {
        self.zip_with(self, |a, _| a * factor)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateBenchmarkReport {
    pub device: String,
    /// libtorch's intra-op threads during the run.
    pub threads: usize,
    pub batch: usize,
    pub update_weights_every: usize,
    pub updates: usize,
    /// The networks' sizes (all tasks, both critics).
    pub parameters: ParameterCounts,
    /// In the order timed (`ls` first); serialised as a map from method name.
    #[serde(serialize_with = "ordered_map")]
    pub methods: Vec<(String, MethodTiming)>,
    /// One acting step of all tasks (the same for every method).
    pub act: ActCounts,
}

/// The ops and host syncs of one [`Sac::act`] call: one stochastic action for every task.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ActCounts {
    pub ops_per_step: u64,
    pub host_syncs_per_step: u64,
}

/// Another implementation of the same update, timed in the same rounds as ours.
pub trait Reference {
    type Error: From<AgentError>;
    /// One update of each method it implements: (method name, milliseconds).
    fn round(&mut self) -> Result<Vec<(String, f64)>, Self::Error>;
}

fn ordered_map<S: Serializer>(entries: &[(String, MethodTiming)], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(entries.len()))?;
    for (name, timing) in entries {
        map.serialize_entry(name, timing)?;
    }
    map.end()
}

/// Builds one agent per method on the same synthetic replay data, then times their updates
/// interleaved (one update of each method in turn, then one round of `reference`), so that
/// machine noise hits all alike. A reference should run on as many threads as
/// [`UpdateBenchmark::threads`] gives libtorch here.
pub fn update_benchmark<E: From<AgentError>>(
    bench: &UpdateBenchmark,
    mut reference: Option<&mut dyn Reference<Error = E>>,
) -> Result<UpdateBenchmarkReport, E> {
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
            batch_size: bench.batch_size,
            replay_capacity: 20 * bench.batch_size,
            device: bench.device,
            combine: CombineConfig { combiner: combiner.clone(), update_weights_every: bench.update_weights_every, ..bench.agent.combine.clone() },
            ..bench.agent.clone()
        };
        let mut agent = Sac::new(config, &spec, 0)?;
        fill_with_synthetic_transitions(&mut agent, 2 * bench.batch_size / bench.num_tasks.max(1) + 1, 0)?;
        agents.push(agent);
    }
    let every = bench.update_weights_every.max(1);
    let updates = bench.updates.max(1).div_ceil(every) * every;
    let mut update_ms: Vec<Vec<f64>> = vec![Vec::with_capacity(updates); agents.len()];
    let mut total_solver_us = vec![0.0; agents.len()];
    let mut breakdowns = vec![Breakdown::default(); agents.len()];
    let mut reference_ms: Vec<Vec<f64>> = vec![Vec::with_capacity(updates); agents.len()];
    for round in 0..bench.warmup_updates + updates {
        let timed = round >= bench.warmup_updates;
        for (i, agent) in agents.iter_mut().enumerate() {
            let start = Instant::now();
            let report = agent.update()?;
            if let tch::Device::Cuda(index) = agent.device() {
                tch::Cuda::synchronize(index as i64);
            }
            if timed {
                update_ms[i].push(start.elapsed().as_secs_f64() * 1e3);
                total_solver_us[i] += report.critic.solver_us + report.actor.solver_us + report.alpha.solver_us;
                breakdowns[i].add(&report);
            }
        }
        if let Some(reference) = reference.as_deref_mut() {
            for (name, ms) in reference.round()? {
                if let (Some(i), true) = (methods.iter().position(|m| m.method.to_string() == name), timed) {
                    reference_ms[i].push(ms);
                }
            }
        }
    }
    // Counted apart from the timed updates (counting slows ops down): one block of updates (one
    // weight refresh) per method.
    let mut counts = Vec::with_capacity(agents.len());
    for agent in &mut agents {
        let syncs_before = host_syncs();
        let (result, ops) = count_ops(|| (0..every).try_for_each(|_| agent.update().map(drop)));
        result?;
        counts.push((ops as f64 / every as f64, (host_syncs() - syncs_before) as f64 / every as f64));
    }
    let act = act_counts(&mut agents[0])?;
    let ms_per_update: Vec<f64> = update_ms.iter().map(|times| median_block_mean(times, every)).collect();
    let timings = methods
        .iter()
        .enumerate()
        .map(|(i, combiner)| {
            let times = &update_ms[i];
            let reference = (!reference_ms[i].is_empty()).then(|| median_block_mean(&reference_ms[i], 1));
            let timing = MethodTiming {
                ms_per_update: ms_per_update[i],
                ratio_to_ls: ms_per_update[i] / ms_per_update[0],
                mean_ms_per_update: times.iter().sum::<f64>() / times.len() as f64,
                solver_us: total_solver_us[i] / times.len() as f64,
                breakdown: breakdowns[i].scaled(1.0 / times.len() as f64),
                ops_per_update: counts[i].0,
                host_syncs_per_update: counts[i].1,
                reference_ms_per_update: reference,
                ratio_to_reference: reference.map(|r| ms_per_update[i] / r),
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
        parameters: agents[0].parameter_counts(),
        methods: timings,
        act,
    })
}

/// The counts of one stochastic acting step of all tasks, after one uncounted step (which may
/// set up what later steps reuse).
fn act_counts(agent: &mut Sac) -> Result<ActCounts, AgentError> {
    let obs = vec![0.0; agent.num_tasks() * agent.obs_dim()];
    agent.act(&obs, ActionMode::Stochastic)?;
    let syncs_before = host_syncs();
    let (result, ops) = count_ops(|| agent.act(&obs, ActionMode::Stochastic));
    result?;
    Ok(ActCounts { ops_per_step: ops, host_syncs_per_step: host_syncs() - syncs_before })
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
