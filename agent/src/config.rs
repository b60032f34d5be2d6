//! The agent's hyper-parameters, named as in the SAC paper, with the two protocols of the spec as
//! presets: `mtrl` (the papers' MT10 runs, the default) and `plus` (Meta-World+ style).
use crate::AgentError;
use serde::{Deserialize, Serialize};
use solvers::{CombinerConfig, Method, Solver};
use std::fmt;

/// Which networks are shared between the tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// One actor and one critic pair for all tasks ("MT-SAC").
    MtSac,
    /// A shared trunk with one linear output head per task.
    MultiHead,
    /// Independent networks per task (the "one SAC per task" upper bound), trained together.
    PerTask,
}

/// How a network's hidden layers are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Block {
    /// One `Linear -> ReLU` per entry of the hidden widths (`Linear -> LayerNorm -> ReLU` with
    /// `layer_norm`).
    Mlp,
    /// BRC's BroNet: `Linear -> LayerNorm -> ReLU` to the first width, then per further entry a
    /// residual block `x + LayerNorm(Linear(ReLU(LayerNorm(Linear(x)))))` of the same width.
    Bronet,
}

/// What a critic network outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriticHead {
    /// One value, regressed on the soft Bellman target by squared error (SAC).
    Scalar,
    /// Logits over `num_bins` atoms on `[-v_max, v_max]`, trained by cross-entropy on the
    /// projected Bellman target (BRC).
    Categorical,
}

/// How sampled rewards are scaled for the critic (on top of the env's own normalisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardScaling {
    None,
    /// BRC's: each task's rewards divided by the range of its discounted returns so far, widened
    /// by the entropy bonus, so that returns fit `[-v_max, v_max]` (docs/brc.md).
    ReturnRange,
}

/// How the task id reaches the networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEncoder {
    /// A one-hot task id appended to the observation when `task_one_hot` is set (nothing when
    /// not: the environment may supply it).
    OneHot,
    /// BRC's: a learned vector per task (`task_embedding_dim` wide, L2-normalised with
    /// `task_embedding_normalize`) appended to the observation, in place of the one-hot. The
    /// critic learns it; the actor reads the critic's vectors without training them.
    Embedding,
}

/// One entropy temperature for all tasks, or one per task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Temperature {
    Shared,
    PerTask,
}

/// How the replay buffer is organised and sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// One ring buffer, batches drawn uniformly (task counts vary from batch to batch).
    Uniform,
    /// One ring per task, every batch holds `batch_size / K` samples of each task.
    Stratified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    Cpu,
    Cuda,
    /// CUDA when libtorch sees a GPU, else the CPU.
    Auto,
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<tch::Device, AgentError> {
        match self {
            DeviceChoice::Cpu => Ok(tch::Device::Cpu),
            DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
            DeviceChoice::Cuda => Err(AgentError::CudaUnavailable),
            DeviceChoice::Auto => Ok(tch::Device::cuda_if_available()),
        }
    }
}

/// The three parts of SAC that are optimised separately, each with its own loss, Adam and
/// combiner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Critic,
    Actor,
    Alpha,
}

impl Component {
    pub const ALL: [Component; 3] = [Component::Critic, Component::Actor, Component::Alpha];

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Critic => "critic",
            Component::Actor => "actor",
            Component::Alpha => "alpha",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the per-task losses of a component are turned into one update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CombineConfig {
    pub combiner: CombinerConfig,
    /// The components the combiner reweights; the others use `ls` (the mean of the task
    /// losses). `None`: all three, except FAMO, which its reference applies to the critic only,
    /// and STCH, whose log of each loss needs the critic's positive losses (SAC's actor loss is
    /// usually negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<Component>>,
    /// Gradient methods recompute their weights every this many updates and reuse them as fixed
    /// loss weights in between, with one plain backward pass (the Nash-MTL-k idea).
    pub update_weights_every: usize,
    /// How `ls` (and every component left to `ls`) reduces the per-sample losses.
    #[serde(default)]
    pub ls_reduction: LsReduction,
    /// FAMO's form when the combiner names no `solver`: `supervised` (its supervised code) or
    /// `mt10` (the MT10 code behind its published MT10 result; the `mtrl` preset's choice).
    #[serde(default = "famo_solver_default")]
    pub famo_solver: Solver,
    /// Which last good weights a Nash-MTL solve that falls back applies.
    #[serde(default)]
    pub nash_fallback: NashFallback,
}

/// The weights a Nash-MTL solve that falls back applies (the temperature's rank-1 Gram has no
/// solution once its entropy gaps have mixed signs, so this decides most of its updates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NashFallback {
    /// One vector shared by critic, actor and temperature, overwritten by every good solve of
    /// any of them (critic, then actor, then temperature within an update); uniform before the
    /// first. The MT10 port's `prvs_alpha` (Cranial-XIX/FAMO, `mtrl_files/nashmtl.py`).
    #[default]
    Shared,
    /// Each component's own last good weights.
    PerComponent,
}

fn famo_solver_default() -> Solver {
    Solver::Supervised
}

/// The loss `ls` minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LsReduction {
    /// The mean of the per-task mean losses (`w_k = 1/K`).
    #[default]
    TaskMeans,
    /// The mean over all samples of the batch (`w_k = n_k / B`), as mtrl's MT-SAC, the papers'
    /// MT-SAC baseline.
    BatchMean,
}

impl CombineConfig {
    pub fn new(method: Method) -> Self {
        Self {
            combiner: CombinerConfig::new(method),
            components: None,
            update_weights_every: 1,
            ls_reduction: LsReduction::TaskMeans,
            famo_solver: famo_solver_default(),
            nash_fallback: NashFallback::Shared,
        }
    }

    /// The combiner as it is built: with `famo_solver` filled in for a FAMO without a solver.
    pub fn effective_combiner(&self) -> CombinerConfig {
        let mut combiner = self.combiner.clone();
        if combiner.method == Method::Famo && combiner.solver.is_none() {
            combiner.solver = Some(self.famo_solver);
        }
        combiner
    }

    pub fn applies_to(&self, component: Component) -> bool {
        match &self.components {
            Some(components) => components.contains(&component),
            None => !matches!(self.combiner.method, Method::Famo | Method::Stch) || component == Component::Critic,
        }
    }
}

/// Everything the learner needs to know; the defaults are the papers' MT10 protocol (`mtrl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SacConfig {
    pub architecture: Architecture,
    /// Append a one-hot task id to the observation (leave off when the environment already
    /// provides one).
    pub task_one_hot: bool,
    pub task_encoder: TaskEncoder,
    /// The width of each task's learned vector under `task_encoder = "embedding"` (BRC: 32).
    pub task_embedding_dim: usize,
    /// Divide each task's learned vector by its L2 norm (BRC does).
    pub task_embedding_normalize: bool,
    /// Hidden layer widths of the actor and of each critic, unless `actor_hidden` or
    /// `critic_hidden` says otherwise. Under `bronet`, every entry after the first is a residual
    /// block of two layers, all of one width.
    pub hidden: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_hidden: Option<Vec<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critic_hidden: Option<Vec<usize>>,
    pub actor_block: Block,
    pub critic_block: Block,
    /// LayerNorm after every hidden linear layer of the `mlp` networks (BroNet always has it).
    pub layer_norm: bool,
    pub critic: CriticHead,
    /// The categorical critic's atoms and the bound of their support (BRC: 101 on `[-10, 10]`).
    pub num_bins: usize,
    pub v_max: f64,
    pub reward_scaling: RewardScaling,
    pub temperature: Temperature,
    /// Initial entropy temperature alpha.
    pub init_temperature: f64,
    /// Target entropy; `None` means `-|A|`.
    pub target_entropy: Option<f64>,
    /// Discount.
    pub gamma: f64,
    /// Polyak coefficient of the target critics, applied after every update.
    pub tau: f64,
    pub actor_lr: f64,
    pub critic_lr: f64,
    pub alpha_lr: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_eps: f64,
    /// Decoupled weight decay of the actor and critic (AdamW, as `torch.optim.AdamW` and optax's
    /// `adamw`); 0 is Adam. The temperature has none.
    pub weight_decay: f64,
    /// Clip each component's update direction to this global norm.
    pub max_grad_norm: Option<f64>,
    /// The actor's raw log-std is squashed into `[log_std_min, log_std_max]`.
    pub log_std_min: f64,
    pub log_std_max: f64,
    /// Transitions per update, over all tasks.
    pub batch_size: usize,
    /// Replay capacity in transitions, over all tasks.
    pub replay_capacity: usize,
    pub sampling: Sampling,
    pub device: DeviceChoice,
    pub combine: CombineConfig,
    /// A component whose update is skipped (non-finite loss or gradient) this many times in a
    /// row stops the run with [`AgentError::Diverged`].
    pub max_consecutive_skips: usize,
}

impl Default for SacConfig {
    fn default() -> Self {
        Self::mtrl()
    }
}

impl SacConfig {
    /// The papers' MT10 protocol: MT-SAC on observations only, one temperature, uniform
    /// sampling from one shared buffer of 1M transitions, batch 1280.
    pub fn mtrl() -> Self {
        Self {
            architecture: Architecture::MtSac,
            task_one_hot: false,
            task_encoder: TaskEncoder::OneHot,
            task_embedding_dim: 32,
            task_embedding_normalize: true,
            hidden: vec![400, 400, 400],
            actor_hidden: None,
            critic_hidden: None,
            actor_block: Block::Mlp,
            critic_block: Block::Mlp,
            layer_norm: false,
            critic: CriticHead::Scalar,
            num_bins: 101,
            v_max: 10.0,
            reward_scaling: RewardScaling::None,
            temperature: Temperature::Shared,
            init_temperature: 1.0,
            target_entropy: None,
            gamma: 0.99,
            tau: 0.005,
            actor_lr: 3e-4,
            critic_lr: 3e-4,
            alpha_lr: 3e-4,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: None,
            log_std_min: -20.0,
            log_std_max: 2.0,
            batch_size: 1280,
            replay_capacity: 1_000_000,
            sampling: Sampling::Uniform,
            device: DeviceChoice::Auto,
            combine: CombineConfig {
                ls_reduction: LsReduction::BatchMean,
                famo_solver: Solver::Mt10,
                ..CombineConfig::new(Method::Ls)
            },
            max_consecutive_skips: 100,
        }
    }

    /// Meta-World+ style: multi-head networks, per-task temperatures, 128 samples per task,
    /// Adam eps 1e-5, global gradient-norm clip 1. The environment supplies the one-hot task id
    /// (`use_one_hot=True`).
    pub fn plus() -> Self {
        Self {
            architecture: Architecture::MultiHead,
            temperature: Temperature::PerTask,
            adam_eps: 1e-5,
            max_grad_norm: Some(1.0),
            sampling: Sampling::Stratified,
            combine: CombineConfig::new(Method::Ls),
            ..Self::mtrl()
        }
    }

    pub fn preset(name: &str) -> Result<Self, AgentError> {
        match name {
            "mtrl" => Ok(Self::mtrl()),
            "plus" => Ok(Self::plus()),
            _ => Err(AgentError::Config(format!("unknown preset `{name}` (expected mtrl or plus)"))),
        }
    }

    /// The actor's hidden widths.
    pub fn actor_widths(&self) -> &[usize] {
        self.actor_hidden.as_deref().unwrap_or(&self.hidden)
    }

    /// Each critic's hidden widths.
    pub fn critic_widths(&self) -> &[usize] {
        self.critic_hidden.as_deref().unwrap_or(&self.hidden)
    }

    fn network_problem(&self) -> Option<String> {
        for (name, widths, block) in [("actor", self.actor_widths(), self.actor_block), ("critic", self.critic_widths(), self.critic_block)] {
            if widths.is_empty() || widths.contains(&0) {
                return Some(format!("the {name}'s hidden widths need at least one layer, all wider than 0"));
            }
            if block == Block::Bronet && widths.iter().any(|&w| w != widths[0]) {
                return Some(format!("a bronet {name} has one width (its residual blocks add their input), got {widths:?}"));
            }
        }
        None
    }

    // The negated comparisons are deliberate: a NaN must fail them.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn validate(&self, num_tasks: usize) -> Result<(), AgentError> {
        let problem = if num_tasks == 0 {
            Some("the environment has no tasks".to_string())
        } else if let Some(problem) = self.network_problem() {
            Some(problem)
        } else if self.task_encoder == TaskEncoder::Embedding && self.task_one_hot {
            Some("task_encoder = \"embedding\" takes the one-hot's place: set task_one_hot = false".to_string())
        } else if self.task_encoder == TaskEncoder::Embedding && self.task_embedding_dim == 0 {
            Some("task_embedding_dim must be at least 1".to_string())
        } else if self.batch_size < num_tasks {
            Some(format!("batch_size {} is smaller than the number of tasks {num_tasks}", self.batch_size))
        } else if self.replay_capacity < num_tasks {
            Some(format!("replay_capacity {} is smaller than the number of tasks {num_tasks}", self.replay_capacity))
        } else if self.combine.update_weights_every == 0 {
            Some("update_weights_every must be at least 1".to_string())
        } else if self.max_consecutive_skips == 0 {
            Some("max_consecutive_skips must be at least 1".to_string())
        } else if !(self.log_std_min < self.log_std_max) {
            Some("log_std_min must be below log_std_max".to_string())
        } else if !(self.init_temperature > 0.0) {
            Some("init_temperature must be positive".to_string())
        } else if !(self.weight_decay >= 0.0) {
            Some("weight_decay must be 0 or more".to_string())
        } else if self.critic == CriticHead::Categorical && self.num_bins < 2 {
            Some("a categorical critic needs num_bins of at least 2".to_string())
        } else if !(self.v_max > 0.0) {
            Some("v_max must be positive".to_string())
        } else if self.max_grad_norm.is_some_and(|c| !(c > 0.0)) {
            Some("max_grad_norm must be positive".to_string())
        } else {
            None
        };
        problem.map_or(Ok(()), |p| Err(AgentError::Config(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_round_trip_and_missing_fields_take_the_mtrl_values() {
        let plus = SacConfig::plus();
        assert_eq!(serde_json::from_str::<SacConfig>(&serde_json::to_string(&plus).unwrap()).unwrap(), plus);
        let partial = r#"{"architecture": "multi_head",
            "combine": {"combiner": {"method": "fairgrad", "alpha": 1.5}, "update_weights_every": 10}}"#;
        let config: SacConfig = serde_json::from_str(partial).unwrap();
        let mut expected = SacConfig { architecture: Architecture::MultiHead, ..SacConfig::mtrl() };
        expected.combine = CombineConfig { update_weights_every: 10, ..CombineConfig::new(Method::FairGrad) };
        expected.combine.combiner.alpha = Some(1.5);
        assert_eq!(config, expected);
        assert!(serde_json::from_str::<SacConfig>(r#"{"batchsize": 128}"#).is_err(), "a misspelt field is an error");
    }

    #[test]
    fn famo_and_stch_reweight_only_the_critic_unless_told_otherwise() {
        let famo = CombineConfig::new(Method::Famo);
        assert_eq!(Component::ALL.map(|c| famo.applies_to(c)), [true, false, false]);
        assert_eq!(Component::ALL.map(|c| CombineConfig::new(Method::Stch).applies_to(c)), [true, false, false]);
        assert_eq!(Component::ALL.map(|c| CombineConfig::new(Method::Nash).applies_to(c)), [true, true, true]);
        let actor_only = CombineConfig { components: Some(vec![Component::Actor]), ..famo };
        assert_eq!(Component::ALL.map(|c| actor_only.applies_to(c)), [false, true, false]);
    }
}
