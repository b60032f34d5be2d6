//! Multi-task Soft Actor-Critic (Haarnoja et al. 2018) as the papers' MT10 code (mtrl) runs it,
//! with each of the critic, actor and temperature updates turned from per-task losses into one
//! step by a gradient combiner (see [`crate::component`]).
use crate::adam::FlatParams;
use crate::component::{read_back, ComponentLearner, ComponentReport, LearnerSettings};
use crate::categorical::Support;
use crate::config::{Architecture, Component, CriticHead, LsReduction, NashFallback, RewardScaling, SacConfig, TaskEncoder, Temperature};
use crate::critic::TwinCritic;
use crate::counting::{download, host_syncs, upload};
use crate::layout::{layout_for, Layout};
use crate::network::{Mlp, Param, Weights};
use crate::plasticity::{self, Plasticity};
use crate::policy::SquashedGaussian;
use crate::replay::{HostBatch, ReplayBuffer};
use crate::return_range::ReturnRange;
use crate::task_embedding::TaskEmbedding;
use crate::AgentError;
use envs::{EnvSpec, VecStep};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;
use solvers::{CombinerConfig, Method};
use std::cell::OnceCell;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionMode {
    /// A sample of the squashed Gaussian (exploration).
    Stochastic,
    /// `tanh(mean)` (evaluation).
    Deterministic,
}

/// Parameters per network, over all tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParameterCounts {
    pub actor: usize,
    /// Both Q-networks and the task embedding.
    pub critic: usize,
}

/// What one SAC update did, for logging.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReport {
    pub critic: ComponentReport,
    pub actor: ComponentReport,
    pub alpha: ComponentReport,
    /// The temperature of each task after the update.
    pub alpha_values: Vec<f64>,
    /// Time to draw the batch and move it to the device.
    pub sample_ms: f64,
    /// Time of the critic's regression target (policy and target critics on the next states).
    pub bellman_target_ms: f64,
    /// Time of the Polyak update of the target critics.
    pub polyak_ms: f64,
    /// Points in the whole update (components included) where the host waited for the device
    /// (see [`crate::counting`]).
    pub host_syncs: u64,
    /// Time of the whole update.
    pub ms: f64,
    /// When asked for ([`Sac::measure_plasticity_next_update`]): the networks' plasticity
    /// diagnostics after this update, on its batch.
    pub plasticity: Option<Plasticity>,
}

/// The batch on the device, rows sorted by task (network inputs include the one-hot when used),
/// with the standard normal draws of the policy samples, so that every evaluation of a loss on
/// this batch (in any layout) is the same function of the parameters.
struct Batch {
    obs: Tensor,
    action: Tensor,
    reward: Tensor,
    next_obs: Tensor,
    not_done: Tensor,
    noise: Tensor,
    next_noise: Tensor,
}

pub struct Sac {
    pub(crate) config: SacConfig,
    num_tasks: usize,
    obs_dim: usize,
    action_dim: usize,
    device: Device,
    actor: SquashedGaussian,
    critic: TwinCritic,
    /// Laid out as the critic's flat buffer, so the Polyak update is one operation.
    pub(crate) critic_target: FlatParams,
    pub(crate) critic_learner: ComponentLearner,
    pub(crate) actor_learner: ComponentLearner,
    /// Optimises `log(alpha)`, one value shared by all tasks or one per task.
    pub(crate) alpha_learner: ComponentLearner,
    target_entropy: f64,
    /// Under [`NashFallback::Shared`], the last good Nash-MTL weights of any component.
    pub(crate) shared_last_good: Option<Vec<f64>>,
    pub(crate) replay: ReplayBuffer,
    pub(crate) rng: ChaCha8Rng,
    /// Under [`RewardScaling::ReturnRange`], each task's range of returns.
    pub(crate) return_range: Option<ReturnRange>,
    /// Each task's temperature after the last update (the reward scale depends on it).
    pub(crate) alpha_values: Vec<f64>,
    /// The layout of one row per task and the task ids, made by the first [`Sac::act`].
    act_layout: Option<(Layout, Tensor)>,
    /// Whether the next update reports the plasticity diagnostics.
    measure_plasticity: bool,
}

impl Sac {
    pub fn new(config: SacConfig, spec: &EnvSpec, seed: u64) -> Result<Self, AgentError> {
        let (k, obs_dim, action_dim) = (spec.num_tasks(), spec.obs_dim, spec.action_dim);
        config.validate(k)?;
        let device = config.device.resolve()?;
        // All of the agent's randomness (initial weights, policy noise, replay sampling, random
        // actions, combiners) comes from this one stream, so that seeds trained in parallel
        // threads are reproducible and a checkpoint can save it (torch's RNG is process-global).
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let architecture = config.architecture;
        let per_task_layer = move |layer: usize, layers: usize| match architecture {
            Architecture::MtSac => false,
            Architecture::MultiHead => layer + 1 == layers,
            Architecture::PerTask => true,
        };
        let embedding = (config.task_encoder == TaskEncoder::Embedding)
            .then(|| TaskEmbedding::new(k, config.task_embedding_dim, config.task_embedding_normalize));
        let input = obs_dim + if config.task_one_hot { k } else { 0 } + embedding.map_or(0, |embedding| embedding.dim());
        let actor = SquashedGaussian::new(
            Mlp::built(input, config.actor_widths(), 2 * action_dim, config.actor_block, config.layer_norm, per_task_layer, k),
            config.log_std_min,
            config.log_std_max,
        );
        let (critic_outputs, support) = match config.critic {
            CriticHead::Scalar => (1, None),
            CriticHead::Categorical => (config.num_bins, Some(Support::new(config.num_bins, config.v_max, device))),
        };
        let critic_net = Mlp::built(input + action_dim, config.critic_widths(), critic_outputs, config.critic_block, config.layer_norm, per_task_layer, k);
        let critic = TwinCritic::new(critic_net, support, embedding);
        let critic_params = critic.init(device, &mut rng);
        let per_task_alpha = config.temperature == Temperature::PerTask;
        let log_alpha = Tensor::full([if per_task_alpha { k as i64 } else { 1 }], config.init_temperature.ln(), (Kind::Float, device));
        let alpha_params = vec![Param { value: log_alpha.set_requires_grad(true), per_task: per_task_alpha, in_layer: false }];
        let learner = |component: Component, params: Vec<Param>, lr: f64| -> Result<ComponentLearner, AgentError> {
            // Tasks that share no parameters have no gradient conflict to resolve.
            let combiner_config = if config.combine.applies_to(component) && ComponentLearner::has_shared_params(&params) {
                config.combine.effective_combiner()
            } else {
                CombinerConfig::new(Method::Ls)
            };
            let batch_mean = combiner_config.method == Method::Ls && config.combine.ls_reduction == LsReduction::BatchMean;
            let combiner = combiner_config.build(k).map_err(|source| AgentError::Solver { component, source })?;
            let settings = LearnerSettings {
                lr,
                beta1: config.adam_beta1,
                beta2: config.adam_beta2,
                eps: config.adam_eps,
                weight_decay: if component == Component::Alpha { 0.0 } else { config.weight_decay },
                max_grad_norm: config.max_grad_norm,
                update_weights_every: config.combine.update_weights_every,
                max_consecutive_skips: config.max_consecutive_skips,
                batch_mean,
            };
            Ok(ComponentLearner::new(component, params, k, combiner, &settings))
        };
        let critic_learner = learner(Component::Critic, critic_params, config.critic_lr)?;
        let mut critic_target = FlatParams::zeros_like(&critic_learner.params, critic_learner.offsets());
        tch::no_grad(|| critic_target.flat.copy_(&critic_learner.flat));
        let actor_learner = learner(Component::Actor, actor.init(device, &mut rng), config.actor_lr)?;
        let alpha_learner = learner(Component::Alpha, alpha_params, config.alpha_lr)?;
        let replay = ReplayBuffer::new(config.sampling, config.replay_capacity, k, obs_dim, action_dim);
        let shared_nash = config.combine.combiner.method == Method::Nash && config.combine.nash_fallback == NashFallback::Shared;
        Ok(Self {
            shared_last_good: shared_nash.then(|| vec![1.0 / k as f64; k]),
            target_entropy: config.target_entropy.unwrap_or(-(action_dim as f64)),
            return_range: (config.reward_scaling == RewardScaling::ReturnRange).then(|| ReturnRange::new(k, config.gamma, config.v_max)),
            alpha_values: vec![config.init_temperature; k],
            config,
            num_tasks: k,
            obs_dim,
            action_dim,
            device,
            actor,
            critic,
            critic_target,
            critic_learner,
            actor_learner,
            alpha_learner,
            replay,
            rng,
            act_layout: None,
            measure_plasticity: false,
        })
    }

    pub fn config(&self) -> &SacConfig {
        &self.config
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn num_tasks(&self) -> usize {
        self.num_tasks
    }

    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    pub fn action_dim(&self) -> usize {
        self.action_dim
    }

    pub fn replay(&self) -> &ReplayBuffer {
        &self.replay
    }

    /// The number of parameters of the actor and of the critic (both Q-networks and the task
    /// embedding), over all tasks: a per-task layer counts once per task.
    pub fn parameter_counts(&self) -> ParameterCounts {
        ParameterCounts { actor: self.actor.num_parameters(), critic: self.critic.num_parameters() }
    }

    /// Updates done so far (skipped ones included).
    pub fn updates(&self) -> u64 {
        self.critic_learner.updates
    }

    /// Updates not applied because of a non-finite loss or gradient, per component.
    pub fn skipped_updates(&self) -> [(Component, u64); 3] {
        self.learners().map(|l| (l.component, l.skipped_updates))
    }

    /// Weight solves per component that fell back (their last good weights were applied).
    pub fn fallbacks(&self) -> [(Component, u64); 3] {
        self.learners().map(|l| (l.component, l.fallbacks))
    }

    /// The next update of a method without per-task gradients (`ls`) computes them anyway and
    /// reports each component's Gram, for the conflict diagnostics; its direction is the same.
    pub fn measure_conflicts_next_update(&mut self) {
        self.learners_mut().into_iter().for_each(|learner| learner.measure_conflicts = true);
    }

    /// The next update reports the networks' plasticity diagnostics (see [`crate::plasticity`]),
    /// read back with its other values (libtorch's SVD itself waits for a CUDA device, once per
    /// network).
    pub fn measure_plasticity_next_update(&mut self) {
        self.measure_plasticity = true;
    }

    pub(crate) fn learners(&self) -> [&ComponentLearner; 3] {
        [&self.critic_learner, &self.actor_learner, &self.alpha_learner]
    }

    pub(crate) fn learners_mut(&mut self) -> [&mut ComponentLearner; 3] {
        [&mut self.critic_learner, &mut self.actor_learner, &mut self.alpha_learner]
    }

    /// The current temperature of each task.
    pub fn alpha(&self) -> Result<Vec<f64>, AgentError> {
        Ok(download(&alpha_per_task(&self.alpha_learner.params, self.num_tasks))?)
    }

    /// Under `reward_scaling = "return_range"`, what each task's sampled rewards are multiplied
    /// by now (0 for a task without a finished episode); `None` without reward scaling.
    pub fn reward_scales(&self) -> Option<Vec<f64>> {
        self.return_range.as_ref().map(|range| range.reward_scales(&self.alpha_values, self.target_entropy))
    }

    /// Actions for one observation per task (`K * obs_dim`, task-major), `K * action_dim` values.
    pub fn act(&mut self, obs: &[f32], mode: ActionMode) -> Result<Vec<f32>, AgentError> {
        let (k, device) = (self.num_tasks, self.device);
        if obs.len() != k * self.obs_dim {
            return Err(AgentError::Shape { what: "observations", expected: k * self.obs_dim, got: obs.len() });
        }
        // One copy to the device (observations and noise) and one back.
        if self.act_layout.is_none() {
            let layout = layout_for(&vec![1; k], self.has_per_task_layers(), device);
            self.act_layout = Some((layout, Tensor::arange(k as i64, (Kind::Int64, device))));
        }
        let noise: Vec<f32> = match mode {
            ActionMode::Stochastic => (0..k * self.action_dim).map(|_| self.rng.sample(StandardNormal)).collect(),
            ActionMode::Deterministic => Vec::new(),
        };
        let inputs = upload(&[obs, &noise].concat(), device);
        let (layout, task) = self.act_layout.as_ref().expect("made above");
        let noise = (!noise.is_empty()).then(|| inputs.narrow(0, obs.len() as i64, noise.len() as i64).view([k as i64, -1]));
        let obs = self.network_input(inputs.narrow(0, 0, obs.len() as i64).view([k as i64, -1]), task);
        let action = tch::no_grad(|| {
            let obs = self.critic.with_task_vectors(Weights::new(&self.critic_learner.params), layout, &layout.arrange(&obs));
            let weights = Weights::new(&self.actor_learner.params);
            let action = match &noise {
                Some(noise) => self.actor.sample(weights, &obs, &layout.arrange(noise)).0,
                None => self.actor.mean_action(weights, &obs),
            };
            layout.to_flat(&action)
        });
        Ok(download(&action)?)
    }

    /// Uniform random actions in `[-1, 1]` for every task (the warm-up phase).
    pub fn random_actions(&mut self) -> Vec<f32> {
        (0..self.num_tasks * self.action_dim).map(|_| self.rng.gen_range(-1.0..=1.0)).collect()
    }

    /// Stores the transitions of one vector step taken from `obs` with `actions`.
    pub fn observe(&mut self, obs: &[f32], actions: &[f32], step: &VecStep) -> Result<(), AgentError> {
        if let Some(range) = &mut self.return_range {
            range.observe(&step.rewards, &step.terminated, &step.truncated);
        }
        self.replay.push(obs, actions, &step.rewards, &step.next_obs, &step.terminated)
    }

    /// One SAC update on a batch from the replay buffer: critic, then actor, then temperature,
    /// then the Polyak update of the target critics.
    pub fn update(&mut self) -> Result<UpdateReport, AgentError> {
        let start = Instant::now();
        let syncs = host_syncs();
        let host = self.replay.sample(self.config.batch_size, &mut self.rng)?;
        let (batch, layout) = self.batch_on_device(&host);
        let sample_ms = start.elapsed().as_secs_f64() * 1e3;
        let (k, gamma, tau, target_entropy) = (self.num_tasks, self.config.gamma, self.config.tau, self.target_entropy);
        let (actor, critic) = (&self.actor, &self.critic);
        let alpha = alpha_per_task(&self.alpha_learner.params, k).detach();

        // Critic: both Q-networks learn the soft Bellman target of the current policy.
        let target_q = tch::no_grad(|| {
            let next_obs = layout.arrange(&batch.next_obs);
            // BRC: the policy reads the critic's task vectors, the target critic its own.
            let (critic_weights, target_weights) = (Weights::new(&self.critic_learner.params), Weights::new(&self.critic_target.views));
            let (next_action, next_log_prob) = actor.sample(
                Weights::new(&self.actor_learner.params),
                &critic.with_task_vectors(critic_weights, &layout, &next_obs),
                &layout.arrange(&batch.next_noise),
            );
            let target = critic.bellman_target(
                target_weights,
                &critic.with_task_vectors(target_weights, &layout, &next_obs),
                &next_action,
                &layout.arrange(&batch.reward),
                &(layout.arrange(&batch.not_done) * gamma),
                &(layout.per_task(&alpha) * next_log_prob),
            );
            layout.to_flat(&target)
        });
        let bellman_target_ms = start.elapsed().as_secs_f64() * 1e3 - sample_ms;
        let shares = |learner: &ComponentLearner| learner.combiner.method() == Method::Nash;
        let shared = self.shared_last_good.as_mut().filter(|_| shares(&self.critic_learner));
        let mut critic_report = self.critic_learner.step(&layout, &mut self.rng, shared, |weights, layout| {
            critic_task_losses(critic, weights, layout, &batch, &target_q)
        })?;

        // Actor: maximise the soft value under the updated critic (whose parameters it does not
        // train). Temperature: alpha_k rises while task k's policy entropy is below the target.
        // The temperature learns from the log-probabilities of the actor's pass (as mtrl), not
        // from a re-evaluation after the step (FAMO), so both wait for the device once, together.
        let critic_params = self.critic_learner.detached();
        let entropy_gap = OnceCell::new();
        let mut actor_losses = |weights: Weights, layout: &Layout| {
            let (losses, log_prob) = actor_task_losses(actor, critic, weights, &critic_params, layout, &batch, &alpha);
            entropy_gap.get_or_init(|| layout.task_means(&(-log_prob - target_entropy)).detach());
            losses
        };
        let mut alpha_losses = |weights: Weights, _: &Layout| {
            alpha_per_task(weights.tensors, k) * entropy_gap.get().expect("the actor's pass comes first")
        };
        let shared = self.shared_last_good.as_mut().filter(|_| shares(&self.actor_learner));
        let mut actor_prepared = self.actor_learner.prepare(&layout, &mut self.rng, shared, &mut actor_losses)?;
        let shared = self.shared_last_good.as_mut().filter(|_| shares(&self.alpha_learner));
        let mut alpha_prepared = self.alpha_learner.prepare(&layout, &mut self.rng, shared, &mut alpha_losses)?;
        let [actor_host, alpha_host]: [Option<Vec<f64>>; 2] =
            read_back(&mut [&mut actor_prepared, &mut alpha_prepared])?.try_into().expect("one value per step");
        let shared = self.shared_last_good.as_mut().filter(|_| shares(&self.actor_learner));
        let mut actor_report = self.actor_learner.complete(actor_prepared, actor_host, &layout, &mut self.rng, shared, actor_losses)?;
        let shared = self.shared_last_good.as_mut().filter(|_| shares(&self.alpha_learner));
        let mut alpha_report = self.alpha_learner.complete(alpha_prepared, alpha_host, &layout, &mut self.rng, shared, alpha_losses)?;

        let polyak_start = Instant::now();
        let _ = tch::no_grad(|| self.critic_target.flat.lerp_(&self.critic_learner.flat, tau));
        let polyak_ms = polyak_start.elapsed().as_secs_f64() * 1e3;

        // After the update, on its batch, as mtrl's `get_metrics` after its `update`.
        let plasticity = std::mem::take(&mut self.measure_plasticity).then(|| {
            let counts: Vec<i64> = host.counts.iter().map(|&n| n as i64).collect();
            let per_task_networks = self.config.architecture == Architecture::PerTask;
            let (actor, critic) = ((&self.actor, &self.actor_learner.params[..]), (&self.critic, &self.critic_learner.params[..]));
            plasticity::measure(actor, critic, &layout, &batch.obs, &batch.noise, per_task_networks.then_some(counts.as_slice()))
        });

        // One read-back for what the host still needs: the temperatures, and the losses and
        // direction norms of the steps checked on the device.
        // One temperature or one per task.
        let alpha_values = self.alpha_learner.params[0].detach().exp();
        let measured = plasticity.is_some();
        let pending: Vec<Tensor> =
            self.learners().iter().filter_map(|l| l.pending().map(Tensor::shallow_clone)).chain(plasticity).chain([alpha_values]).collect();
        let host_values = download::<f64>(&Tensor::cat(&pending, 0))?;
        let mut rest = host_values.as_slice();
        for (learner, report) in [(&mut self.critic_learner, &mut critic_report), (&mut self.actor_learner, &mut actor_report), (&mut self.alpha_learner, &mut alpha_report)] {
            if learner.pending().is_some() {
                let (values, after) = rest.split_at(k + 1);
                rest = after;
                learner.finish(report, values)?;
            }
        }
        let (plasticity_values, rest) = rest.split_at(if measured { Plasticity::VALUES } else { 0 });
        let plasticity = measured.then(|| Plasticity::from_values(plasticity_values));
        let alpha_values = if rest.len() == 1 { vec![rest[0]; k] } else { rest.to_vec() };
        self.alpha_values.clone_from(&alpha_values);
        Ok(UpdateReport {
            critic: critic_report,
            actor: actor_report,
            alpha: alpha_report,
            alpha_values,
            sample_ms,
            bellman_target_ms,
            polyak_ms,
            host_syncs: host_syncs() - syncs,
            ms: start.elapsed().as_secs_f64() * 1e3,
            plasticity,
        })
    }

    /// Networks with per-task layers need task-major inputs.
    fn has_per_task_layers(&self) -> bool {
        self.actor.has_per_task_layers() || self.critic.has_per_task_layers()
    }

    /// The observation, with the one-hot task id appended when configured.
    fn network_input(&self, obs: Tensor, task: &Tensor) -> Tensor {
        if self.config.task_one_hot {
            Tensor::cat(&[obs, task.one_hot(self.num_tasks as i64).to_kind(Kind::Float)], 1)
        } else {
            obs
        }
    }

    /// The batch with its policy noise, and its layout, on the device in one copy (one
    /// synchronisation on CUDA).
    fn batch_on_device(&mut self, host: &HostBatch) -> (Batch, Layout) {
        let rows = host.task.len();
        let noise: Vec<f32> = (0..2 * rows * self.action_dim).map(|_| self.rng.sample(StandardNormal)).collect();
        let task: Vec<f32> = host.task.iter().map(|&k| k as f32).collect();
        // BRC scales sampled rewards (the buffer keeps them as they came) by the current range.
        let reward: Vec<f32> = match &self.return_range {
            Some(range) => {
                let scales = range.reward_scales(&self.alpha_values, self.target_entropy);
                host.reward.iter().zip(&host.task).map(|(&r, &k)| (f64::from(r) * scales[k as usize]) as f32).collect()
            }
            None => host.reward.clone(),
        };
        let pieces: [&[f32]; 8] = [&host.obs, &host.action, &reward, &host.next_obs, &host.not_done, &noise[..noise.len() / 2], &noise[noise.len() / 2..], &task];
        let (layout, all) = Layout::with_batch(&host.counts, self.has_per_task_layers(), &pieces.concat(), self.device);
        let mut start = 0;
        let [obs, action, reward, next_obs, not_done, noise, next_noise, task] = pieces.map(|piece| {
            let on_device = all.narrow(0, start, piece.len() as i64);
            start += piece.len() as i64;
            on_device
        });
        let matrix = |values: Tensor| values.view([rows as i64, -1]);
        // Task ids are exact in f32 (far fewer than 2^24 tasks).
        let task = task.to_kind(Kind::Int64);
        let batch = Batch {
            obs: self.network_input(matrix(obs), &task),
            action: matrix(action),
            reward,
            next_obs: self.network_input(matrix(next_obs), &task),
            not_done,
            noise: matrix(noise),
            next_noise: matrix(next_noise),
        };
        (batch, layout)
    }
}

/// `[K]`: each task's mean of the two Q-networks' summed losses against the target (see
/// [`TwinCritic::loss`]).
fn critic_task_losses(critic: &TwinCritic, weights: Weights, layout: &Layout, batch: &Batch, target: &Tensor) -> Tensor {
    let obs = critic.with_task_vectors(weights, layout, &layout.arrange(&batch.obs));
    layout.task_means(&critic.loss(weights, &obs, &layout.arrange(&batch.action), &layout.arrange(target)))
}

/// `[K]`: each task's mean of `alpha_k log pi(a|s) - Q(s, a)` with `a ~ pi(s)` (`Q` as
/// [`TwinCritic::value`]), and the per-sample log-probabilities. The actor sees the critic's task
/// vectors, if any, as fixed inputs (BRC's `update_actor`).
fn actor_task_losses(
    actor: &SquashedGaussian,
    critic: &TwinCritic,
    weights: Weights,
    critic_params: &[Tensor],
    layout: &Layout,
    batch: &Batch,
    alpha: &Tensor,
) -> (Tensor, Tensor) {
    let obs = critic.with_task_vectors(Weights::new(critic_params), layout, &layout.arrange(&batch.obs));
    let (action, log_prob) = actor.sample(weights, &obs, &layout.arrange(&batch.noise));
    let q = critic.value(Weights::new(critic_params), &obs, &action);
    (layout.task_means(&(layout.per_task(alpha) * &log_prob - q)), log_prob)
}

/// `alpha_k = exp(log_alpha)` for every task, from one shared value (`[1]`), its per-task
/// copies (`[K, 1]`) or per-task values (`[K]`).
fn alpha_per_task(log_alpha: &[Tensor], num_tasks: usize) -> Tensor {
    log_alpha[0].exp().reshape([-1]).expand([num_tasks as i64], false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Block;
    use crate::phases::Phases;
    use crate::task_gradients::Sharing;
    use crate::testing::small_sac;

    /// Task `k`'s gradient from the batched pass equals a backward pass of `L_k` alone, and so
    /// does the Gram matrix of the shared parameters' gradients.
    fn assert_task_gradients_match(learner: &mut ComponentLearner, layout: &Layout, mut losses: impl FnMut(Weights, &Layout) -> Tensor) {
        let batched = learner.gradients.run(&learner.params, layout, &mut losses, &mut Phases::default()).unwrap();
        let mut shared_rows = Vec::new();
        for task in 0..learner.num_tasks as i64 {
            let loss = losses(Weights::new(&learner.params), layout).get(task);
            let loss_error = (batched.losses.get(task) - &loss).abs().double_value(&[]);
            assert!(loss_error <= 1e-5 * loss.abs().double_value(&[]).max(1.0), "{}: task loss off by {loss_error}", learner.component);
            let separate = Tensor::run_backward(&[loss], &learner.params, false, false);
            for (i, ((batched, separate), &sharing)) in batched.grads.iter().zip(&separate).zip(&learner.gradients.sharing).enumerate() {
                let expected = if sharing == Sharing::PerTask { separate.get(task) } else { separate.shallow_clone() };
                let error = (batched.get(task) - &expected).abs().max().double_value(&[]);
                let scale = expected.abs().max().double_value(&[]).max(1.0);
                assert!(error <= 1e-5 * scale, "{} parameter {i}, task {task}: off by {error} (scale {scale})", learner.component);
            }
            let shared = separate.iter().zip(&learner.gradients.sharing).filter(|(_, &s)| s != Sharing::PerTask).map(|(g, _)| g.reshape([-1]));
            shared_rows.push(Tensor::cat(&shared.chain([Tensor::zeros([0], (Kind::Float, separate[0].device()))]).collect::<Vec<_>>(), 0).to_kind(Kind::Double));
        }
        let rows = Tensor::stack(&shared_rows, 0);
        let expected_gram = rows.matmul(&rows.tr());
        let error = (batched.gram.to_kind(Kind::Double) - &expected_gram).abs().max().double_value(&[]);
        let scale = expected_gram.abs().max().double_value(&[]).max(1.0);
        assert!(error <= 1e-5 * scale, "{}: Gram matrix off by {error} (scale {scale})", learner.component);
    }

    #[test]
    fn per_task_gradients_from_one_backward_equal_separate_backward_passes() {
        let plain = |config: SacConfig| config;
        let brc = |config: SacConfig| SacConfig {
            critic_block: Block::Bronet,
            actor_block: Block::Bronet,
            critic_hidden: Some(vec![16, 16, 16]),
            critic: CriticHead::Categorical,
            num_bins: 11,
            ..config
        };
        let layer_norm = |config: SacConfig| SacConfig { layer_norm: true, actor_hidden: Some(vec![8]), ..config };
        // The critic's task embedding: a per-task parameter inside the critic's input.
        let embedding = |config: SacConfig| SacConfig { task_encoder: TaskEncoder::Embedding, task_embedding_dim: 4, ..brc(config) };
        let unnormalised = |config: SacConfig| SacConfig { task_encoder: TaskEncoder::Embedding, task_embedding_normalize: false, ..config };
        let configs: [(Architecture, Temperature, &dyn Fn(SacConfig) -> SacConfig); 11] = [
            (Architecture::MtSac, Temperature::Shared, &plain),
            (Architecture::MultiHead, Temperature::PerTask, &plain),
            (Architecture::PerTask, Temperature::Shared, &plain),
            (Architecture::MtSac, Temperature::Shared, &brc),
            (Architecture::MultiHead, Temperature::PerTask, &brc),
            (Architecture::PerTask, Temperature::Shared, &brc),
            (Architecture::MtSac, Temperature::Shared, &layer_norm),
            (Architecture::MtSac, Temperature::Shared, &embedding),
            (Architecture::MultiHead, Temperature::PerTask, &embedding),
            (Architecture::PerTask, Temperature::Shared, &embedding),
            (Architecture::MtSac, Temperature::Shared, &unnormalised),
        ];
        for (architecture, temperature, adjust) in configs {
            let mut sac = small_sac(architecture, temperature, 7, adjust);
            let host = sac.replay.sample(45, &mut sac.rng).unwrap();
            assert!(host.counts.iter().any(|&n| n != host.counts[0]), "uneven task counts exercise the padding");
            let (batch, layout) = sac.batch_on_device(&host);
            let k = sac.num_tasks;
            let alpha = alpha_per_task(&sac.alpha_learner.params, k).detach();
            let rows = host.task.len() as i64;
            let target_q = match sac.config.critic {
                CriticHead::Scalar => Tensor::randn([rows], (Kind::Float, sac.device)),
                CriticHead::Categorical => Tensor::randn([rows, sac.config.num_bins as i64], (Kind::Float, sac.device)).softmax(-1, Kind::Float),
            };
            let critic_params = sac.critic_learner.detached();
            let (actor, critic) = (&sac.actor, &sac.critic);
            assert_task_gradients_match(&mut sac.critic_learner, &layout, |weights, layout| {
                critic_task_losses(critic, weights, layout, &batch, &target_q)
            });
            assert_task_gradients_match(&mut sac.actor_learner, &layout, |weights, layout| {
                actor_task_losses(actor, critic, weights, &critic_params, layout, &batch, &alpha).0
            });
            let entropy_gap = Tensor::randn([k as i64], (Kind::Float, sac.device));
            assert_task_gradients_match(&mut sac.alpha_learner, &layout, |weights, _| alpha_per_task(weights.tensors, k) * &entropy_gap);
        }
    }
}

#[cfg(test)]
mod safety_tests {
    use crate::testing::small_sac;
    use crate::{AgentError, Architecture, CombineConfig, Component, LsReduction, SacConfig, SkipReason, TaskEncoder, Temperature};
    use envs::VecStep;
    use solvers::Method;

    #[test]
    fn every_combiner_trains_the_task_embedding_which_the_parameter_counts_include() {
        let one_hot = small_sac(Architecture::MtSac, Temperature::Shared, 3, |config| config).parameter_counts();
        // Those whose default options suit 3 tasks (one bounds a parameter by log K).
        for &method in Method::ALL.iter().filter(|&&method| solvers::CombinerConfig::new(method).build(3).is_ok()) {
            let embedding = |config: SacConfig| SacConfig {
                task_encoder: TaskEncoder::Embedding,
                task_embedding_dim: 4,
                // The critic holds the table (and some methods take only positive losses).
                combine: CombineConfig { components: Some(vec![Component::Critic]), ..CombineConfig::new(method) },
                ..config
            };
            let mut sac = small_sac(Architecture::MtSac, Temperature::Shared, 3, embedding);
            // 5 + 4 inputs in place of 5: 4 more weights per first-layer unit, and the table.
            let counts = sac.parameter_counts();
            assert_eq!(counts.actor, one_hot.actor + 4 * 32, "{method}");
            assert_eq!(counts.critic, one_hot.critic + 2 * 4 * 32 + 3 * 4, "{method}");
            let before = sac.critic_learner.params.last().unwrap().copy();
            for _ in 0..2 {
                let report = sac.update().unwrap();
                assert_eq!(report.critic.skipped, None, "{method}");
            }
            let change = (sac.critic_learner.params.last().unwrap() - before).abs().max().double_value(&[]);
            assert!(change > 0.0 && change.is_finite(), "{method}: the embedding moved by {change}");
        }
    }

    #[test]
    fn the_embedding_takes_the_one_hots_place() {
        let both = SacConfig { task_encoder: TaskEncoder::Embedding, task_one_hot: true, ..SacConfig::mtrl() };
        assert!(matches!(both.validate(3), Err(AgentError::Config(_))));
        let empty = SacConfig { task_encoder: TaskEncoder::Embedding, task_embedding_dim: 0, ..SacConfig::mtrl() };
        assert!(matches!(empty.validate(3), Err(AgentError::Config(_))));
    }

    #[test]
    fn weights_are_recomputed_every_k_updates_and_reused_in_between() {
        let every = |config: SacConfig| SacConfig {
            combine: CombineConfig { update_weights_every: 3, ..CombineConfig::new(Method::FairGrad) },
            ..config
        };
        let mut sac = small_sac(Architecture::MtSac, Temperature::Shared, 4, every);
        let mut last_refresh = None;
        for update in 0..7 {
            let report = sac.update().unwrap();
            let critic = &report.critic;
            assert_eq!(critic.gram.is_some(), update % 3 == 0, "update {update}");
            if critic.gram.is_some() {
                last_refresh = Some(critic.weights.clone());
            } else {
                assert_eq!(Some(&critic.weights), last_refresh.as_ref(), "update {update} reuses the last weights");
            }
        }
    }

    /// `ls` asked to measure its conflicts reports each component's Gram for that one update and
    /// takes the step it takes without (up to rounding: the direction comes from the rows of `J`),
    /// under both of its reductions.
    #[test]
    fn ls_measuring_its_conflicts_reports_grams_and_takes_the_same_step() {
        for combine in [None, Some(CombineConfig::new(Method::Ls))] {
            let config = |config: SacConfig| match &combine {
                Some(combine) => SacConfig { combine: combine.clone(), ..config },
                None => config,
            };
            let mut plain = small_sac(Architecture::MtSac, Temperature::Shared, 7, config);
            let mut measured = small_sac(Architecture::MtSac, Temperature::Shared, 7, config);
            let ours = plain.update().unwrap();
            measured.measure_conflicts_next_update();
            let theirs = measured.update().unwrap();
            for (a, b) in [(&ours.critic, &theirs.critic), (&ours.actor, &theirs.actor), (&ours.alpha, &theirs.alpha)] {
                assert!(a.gram.is_none() && b.gram.is_some(), "{combine:?} {}", a.component);
                assert_eq!(a.weights, b.weights, "{combine:?} {}", a.component);
            }
            for (a, b) in plain.learners().iter().zip(measured.learners()) {
                let difference = (&a.flat - &b.flat).abs().max().double_value(&[]);
                assert!(difference < 1e-6, "{combine:?} {}: parameters differ by {difference}", a.component);
            }
            assert!(measured.update().unwrap().critic.gram.is_none(), "one update only");
        }
    }

    #[test]
    fn an_update_waits_for_the_device_once_for_the_batch_once_per_solve_and_once_at_the_end() {
        // ls with task means, ls with the batch mean (the mtrl preset), fairgrad, and moco (whose
        // Gram comes back with its tracked products; weights and scale go up without a wait).
        for combine in [Some(Method::Ls), None, Some(Method::FairGrad), Some(Method::Moco)] {
            let config = |config: SacConfig| match combine {
                Some(method) => SacConfig { combine: CombineConfig::new(method), ..config },
                None => config,
            };
            let mut sac = small_sac(Architecture::MtSac, Temperature::Shared, 6, config);
            for _ in 0..2 {
                let report = sac.update().unwrap();
                let solves = matches!(combine, Some(Method::FairGrad | Method::Moco));
                for component in [&report.critic, &report.actor, &report.alpha] {
                    assert_eq!(component.gram.is_some(), solves, "{combine:?} {}", component.component);
                }
                // The temperature's Gram comes back with the actor's: its losses are known once
                // the actor's pass has run.
                let waits = |component: &crate::ComponentReport| component.host_syncs;
                assert_eq!([waits(&report.critic), waits(&report.actor), waits(&report.alpha)], if solves { [1, 1, 0] } else { [0; 3] }, "{combine:?}");
                assert_eq!(report.host_syncs, if solves { 4 } else { 2 }, "{combine:?}: the batch with its layout, the critic's Gram, the actor's with the temperature's, the end of the update");
            }
        }
    }

    #[test]
    fn ls_batch_mean_weights_each_task_by_its_share_of_the_batch() {
        let mut sac = small_sac(Architecture::MtSac, Temperature::Shared, 6, |config| config);
        assert_eq!(sac.config().combine.ls_reduction, LsReduction::BatchMean, "the mtrl protocol");
        let weights = sac.update().unwrap().critic.weights;
        let counts: Vec<f64> = weights.iter().map(|w| w * 45.0).collect();
        assert!(counts.iter().all(|n| (n - n.round()).abs() < 1e-9), "n_k / B with B = 45: {weights:?}");
        assert!(counts.iter().any(|n| (n - 15.0).abs() > 0.5), "uneven task counts: {counts:?}");
        let task_means = |config: SacConfig| SacConfig { combine: CombineConfig::new(Method::Ls), ..config };
        let mut sac = small_sac(Architecture::MtSac, Temperature::Shared, 6, task_means);
        assert_eq!(sac.update().unwrap().critic.weights, vec![1.0 / 3.0; 3]);
    }

    #[test]
    fn non_finite_losses_skip_the_step_and_persistent_ones_stop_the_run() {
        let strict = |config: SacConfig| SacConfig { max_consecutive_skips: 3, ..config };
        let mut sac = small_sac(Architecture::MtSac, Temperature::Shared, 5, strict);
        let obs = vec![0.0; 15];
        let poisoned = VecStep {
            obs: obs.clone(),
            next_obs: obs.clone(),
            rewards: vec![f32::NAN; 3],
            terminated: vec![false; 3],
            truncated: vec![false; 3],
            success: vec![false; 3],
        };
        // Overwrite the whole ring (capacity 600 = 200 vector steps of 3 tasks).
        for _ in 0..200 {
            let actions = sac.random_actions();
            sac.observe(&obs, &actions, &poisoned).unwrap();
        }
        let critic_before: Vec<_> = sac.critic_learner.params.iter().map(|p| p.copy()).collect();
        for _ in 0..2 {
            let report = sac.update().unwrap();
            assert_eq!(report.critic.skipped, Some(SkipReason::NonFiniteLoss));
            assert_eq!(report.actor.skipped, None, "the actor's loss does not see rewards");
        }
        for (before, after) in critic_before.iter().zip(&sac.critic_learner.params) {
            assert_eq!((before - after).abs().max().double_value(&[]), 0.0, "a skipped step leaves the critic as it was");
        }
        match sac.update() {
            Err(AgentError::Diverged { component: Component::Critic, count: 3, reason: SkipReason::NonFiniteLoss }) => {}
            other => panic!("expected the run to stop, got {other:?}"),
        }
        assert_eq!(sac.skipped_updates()[0], (Component::Critic, 3));
    }
}
