//! Checkpoints: a directory with `tensors.ot` (networks, target critics, temperatures and every
//! Adam moment, via libtorch's serialisation) and `state.json` (Adam step counts, update and skip
//! counters, the last combiner weights and each combiner's own state, the tasks' return ranges
//! under BRC's reward scaling), `rng.json` (the position of
//! the agent's random stream) and, when asked for, the replay buffer (`replay.json`, its shape and
//! ring positions, and `replay.bin`, its transitions as raw little-endian arrays).
use crate::return_range::ReturnRange;
use crate::{AgentError, Sac};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use solvers::Method;
use std::collections::BTreeMap;
use std::path::Path;
use tch::Tensor;

const TENSORS: &str = "tensors.ot";
const STATE: &str = "state.json";
const RNG: &str = "rng.json";
const REPLAY_HEADER: &str = "replay.json";
const REPLAY_DATA: &str = "replay.bin";

/// Where a ChaCha stream stands: restoring it continues the stream exactly.
#[derive(Serialize, Deserialize)]
struct RngState {
    seed: [u8; 32],
    stream: u64,
    word_pos: u128,
}

impl RngState {
    fn of(rng: &ChaCha8Rng) -> Self {
        Self { seed: rng.get_seed(), stream: rng.get_stream(), word_pos: rng.get_word_pos() }
    }

    fn restore(&self) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos);
        rng
    }
}

#[derive(Serialize, Deserialize)]
struct LearnerState {
    method: Method,
    adam_step: u64,
    updates: u64,
    skipped_updates: u64,
    #[serde(default)]
    fallbacks: u64,
    weights: Vec<f64>,
    combiner: serde_json::Value,
}

/// `state.json`: each component's state, and the Nash-MTL weights its components share.
#[derive(Serialize, Deserialize)]
struct AgentState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shared_last_good: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    return_range: Option<ReturnRange>,
    #[serde(flatten)]
    learners: BTreeMap<String, LearnerState>,
}

impl Sac {
    /// Writes the learner's state to directory `dir` (created if missing), with the replay
    /// buffer when `with_replay` (it can take hundreds of megabytes).
    pub fn save(&self, dir: &Path, with_replay: bool) -> Result<(), AgentError> {
        let error = |message: String| AgentError::Checkpoint { path: dir.to_path_buf(), message };
        std::fs::create_dir_all(dir).map_err(|e| error(e.to_string()))?;
        let mut tensors: Vec<(String, &Tensor)> = Vec::new();
        let mut state = BTreeMap::new();
        for learner in self.learners() {
            let name = learner.component.as_str();
            for (i, ((param, m), v)) in learner.params.iter().zip(&learner.adam.exp_avg.views).zip(&learner.adam.exp_avg_sq.views).enumerate() {
                tensors.push((format!("{name}.param.{i}"), param));
                tensors.push((format!("{name}.exp_avg.{i}"), m));
                tensors.push((format!("{name}.exp_avg_sq.{i}"), v));
            }
            tensors.extend(learner.gradients.average.iter().map(|y| (format!("{name}.tracked_average"), y)));
            tensors.extend(learner.gradients.squared_sum.iter().map(|h| (format!("{name}.squared_gradient_sum"), h)));
            let learner_state = LearnerState {
                method: learner.combiner.method(),
                adam_step: learner.adam.step,
                updates: learner.updates,
                skipped_updates: learner.skipped_updates,
                fallbacks: learner.fallbacks,
                weights: learner.weights.clone(),
                combiner: learner.combiner.state(),
            };
            state.insert(name.to_string(), learner_state);
        }
        tensors.extend(self.critic_target.views.iter().enumerate().map(|(i, t)| (format!("critic_target.{i}"), t)));
        // Serialised in memory, then written by us: libtorch's own file writer aborts the
        // process when a write fails (a full disk) instead of returning an error.
        let mut bytes = Vec::new();
        Tensor::save_multi_to_stream(&tensors, &mut bytes)?;
        let path = dir.join(TENSORS);
        std::fs::write(&path, bytes).map_err(|e| AgentError::Checkpoint { path, message: e.to_string() })?;
        let state = AgentState { shared_last_good: self.shared_last_good.clone(), return_range: self.return_range.clone(), learners: state };
        let json = serde_json::to_string_pretty(&state).map_err(|e| error(e.to_string()))?;
        std::fs::write(dir.join(STATE), json).map_err(|e| error(e.to_string()))?;
        let rng = serde_json::to_string_pretty(&RngState::of(&self.rng)).map_err(|e| error(e.to_string()))?;
        std::fs::write(dir.join(RNG), rng).map_err(|e| error(e.to_string()))?;
        if with_replay {
            self.replay.save(&dir.join(REPLAY_HEADER), &dir.join(REPLAY_DATA))?;
        }
        Ok(())
    }

    /// Restores a checkpoint written by [`Sac::save`] for an agent of the same shape, with its
    /// replay buffer when `with_replay` and it has one (else the buffer is left as it is).
    pub fn load(&mut self, dir: &Path, with_replay: bool) -> Result<(), AgentError> {
        let error = |message: String| AgentError::Checkpoint { path: dir.to_path_buf(), message };
        let json = std::fs::read_to_string(dir.join(STATE)).map_err(|e| error(e.to_string()))?;
        let AgentState { shared_last_good, return_range, learners: mut state } = serde_json::from_str(&json).map_err(|e| error(e.to_string()))?;
        if return_range.is_some() != self.return_range.is_some() {
            return Err(error("it was trained with another reward scaling than this agent's".to_string()));
        }
        // A checkpoint from before the shared rule has no shared weights: they stay uniform.
        if shared_last_good.as_ref().is_some_and(|w| self.shared_last_good.as_ref().map(Vec::len) != Some(w.len())) {
            return Err(error("its shared Nash-MTL weights do not fit this agent's fallback rule".to_string()));
        }
        let mut saved: BTreeMap<String, Tensor> = Tensor::load_multi_with_device(dir.join(TENSORS), self.device())?.into_iter().collect();
        let mut restore = |name: String, into: &mut Tensor| -> Result<(), AgentError> {
            let value = saved.remove(&name).ok_or_else(|| error(format!("no tensor `{name}`")))?;
            if value.size() != into.size() {
                return Err(error(format!("`{name}` has shape {:?}, this agent {:?}", value.size(), into.size())));
            }
            tch::no_grad(|| into.copy_(&value));
            Ok(())
        };
        for learner in self.learners_mut() {
            let name = learner.component.as_str();
            let learner_state = state.remove(name).ok_or_else(|| error(format!("no state for the {name}")))?;
            if learner_state.method != learner.combiner.method() {
                let (saved, ours) = (learner_state.method, learner.combiner.method());
                return Err(error(format!("the {name} was trained with {saved}, this agent uses {ours}")));
            }
            if learner_state.weights.len() != learner.num_tasks {
                return Err(error(format!("the {name} weights are for {} tasks", learner_state.weights.len())));
            }
            for (i, param) in learner.params.iter_mut().enumerate() {
                restore(format!("{name}.param.{i}"), param)?;
                restore(format!("{name}.exp_avg.{i}"), &mut learner.adam.exp_avg.views[i])?;
                restore(format!("{name}.exp_avg_sq.{i}"), &mut learner.adam.exp_avg_sq.views[i])?;
            }
            if let Some(average) = &mut learner.gradients.average {
                restore(format!("{name}.tracked_average"), average)?;
            }
            if let Some(squared_sum) = &mut learner.gradients.squared_sum {
                restore(format!("{name}.squared_gradient_sum"), squared_sum)?;
            }
            learner.adam.step = learner_state.adam_step;
            learner.updates = learner_state.updates;
            learner.skipped_updates = learner_state.skipped_updates;
            learner.fallbacks = learner_state.fallbacks;
            learner.consecutive_skips = 0;
            learner.weights = learner_state.weights;
            learner
                .combiner
                .load_state(&learner_state.combiner)
                .map_err(|source| AgentError::Solver { component: learner.component, source })?;
        }
        for (i, target) in self.critic_target.views.iter_mut().enumerate() {
            restore(format!("critic_target.{i}"), target)?;
        }
        if shared_last_good.is_some() {
            self.shared_last_good = shared_last_good;
        }
        self.return_range = return_range;
        self.alpha_values = self.alpha()?;
        let rng = std::fs::read_to_string(dir.join(RNG)).map_err(|e| error(e.to_string()))?;
        self.rng = serde_json::from_str::<RngState>(&rng).map_err(|e| error(e.to_string()))?.restore();
        if with_replay && dir.join(REPLAY_HEADER).exists() {
            self.replay.load(&dir.join(REPLAY_HEADER), &dir.join(REPLAY_DATA))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::small_sac;
    use crate::{ActionMode, Architecture, Block, CombineConfig, CriticHead, RewardScaling, Sac, SacConfig, TaskEncoder, Temperature};
    use solvers::Method;
    use std::path::PathBuf;
    use tch::Tensor;

    fn assert_same(a: &Tensor, b: &Tensor) {
        assert_eq!(a.size(), b.size());
        assert_eq!((a - b).abs().max().double_value(&[]), 0.0);
    }

    /// An agent after `updates` updates, saved into the returned directory (with its replay buffer
    /// when `with_replay`), and another of the same shape (seeded differently) loaded from it.
    fn trained_and_restored(architecture: Architecture, temperature: Temperature, combine: impl Fn(SacConfig) -> SacConfig, updates: usize, with_replay: bool, name: &str) -> (Sac, Sac, PathBuf) {
        let mut trained = small_sac(architecture, temperature, 1, &combine);
        for _ in 0..updates {
            trained.update().unwrap();
        }
        let dir = std::env::temp_dir().join(format!("agent-checkpoint-{name}-test-{}", std::process::id()));
        trained.save(&dir, with_replay).unwrap();
        let mut restored = small_sac(architecture, temperature, 2, &combine);
        restored.load(&dir, true).unwrap();
        (trained, restored, dir)
    }

    #[test]
    fn a_loaded_checkpoint_restores_networks_optimizers_and_combiner_state() {
        let famo = |config: SacConfig| SacConfig { combine: CombineConfig::new(Method::Famo), ..config };
        let (mut trained, mut restored, dir) = trained_and_restored(Architecture::MultiHead, Temperature::PerTask, famo, 5, false, "famo");
        assert_ne!(trained.critic_learner.combiner.state(), serde_json::Value::Null, "FAMO (on the critic) has state");
        for (a, b) in trained.learners().iter().zip(restored.learners()) {
            assert_eq!(a.combiner.state(), b.combiner.state());
            assert_eq!((a.adam.step, a.updates, &a.weights), (b.adam.step, b.updates, &b.weights));
            for (x, y) in a.params.iter().chain(&a.adam.exp_avg.views).chain(&a.adam.exp_avg_sq.views).zip(b.params.iter().chain(&b.adam.exp_avg.views).chain(&b.adam.exp_avg_sq.views)) {
                assert_same(x, y);
            }
        }
        for (x, y) in trained.critic_target.views.iter().zip(&restored.critic_target.views) {
            assert_same(x, y);
        }
        let obs = vec![0.3; 15];
        assert_eq!(trained.act(&obs, ActionMode::Deterministic).unwrap(), restored.act(&obs, ActionMode::Deterministic).unwrap());

        let mut other_shape = small_sac(Architecture::MtSac, Temperature::PerTask, 3, famo);
        assert!(matches!(other_shape.load(&dir, true), Err(crate::AgentError::Checkpoint { .. })));
        let mut other_method = small_sac(Architecture::MultiHead, Temperature::PerTask, 3, |config| config);
        assert!(matches!(other_method.load(&dir, true), Err(crate::AgentError::Checkpoint { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_brc_agent_restores_its_return_ranges_and_task_embedding_and_learns_on_identically() {
        tch::set_num_threads(1);
        let brc = |config: SacConfig| SacConfig {
            critic_block: Block::Bronet,
            critic_hidden: Some(vec![16, 16]),
            critic: CriticHead::Categorical,
            num_bins: 11,
            weight_decay: 1e-2,
            reward_scaling: RewardScaling::ReturnRange,
            task_encoder: TaskEncoder::Embedding,
            task_embedding_dim: 4,
            ..config
        };
        let (mut trained, mut restored, dir) = trained_and_restored(Architecture::MtSac, Temperature::Shared, brc, 3, true, "brc");
        let mut unscaled = small_sac(Architecture::MtSac, Temperature::Shared, 3, |config| SacConfig { reward_scaling: RewardScaling::None, ..brc(config) });
        assert!(matches!(unscaled.load(&dir, true), Err(crate::AgentError::Checkpoint { .. })));
        // Without the embedding the critic's first layer is narrower: a clear error, not a mix.
        let mut one_hot = small_sac(Architecture::MtSac, Temperature::Shared, 3, |config| SacConfig { task_encoder: TaskEncoder::OneHot, ..brc(config) });
        assert!(matches!(one_hot.load(&dir, true), Err(crate::AgentError::Checkpoint { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
        let table = |sac: &Sac| sac.critic_learner.params.last().unwrap().shallow_clone();
        assert_eq!(table(&trained).size(), [3, 4], "the critic's parameters end with the task embedding");
        assert_same(&table(&trained), &table(&restored));
        let initial = small_sac(Architecture::MtSac, Temperature::Shared, 1, brc);
        assert!((table(&trained) - table(&initial)).abs().max().double_value(&[]) > 0.0, "the embedding learns");
        assert!(trained.return_range.is_some());
        assert_eq!(trained.return_range, restored.return_range);
        assert_eq!(trained.alpha_values, restored.alpha_values);
        let (ours, theirs) = (trained.update().unwrap(), restored.update().unwrap());
        assert_eq!(ours.critic.task_losses, theirs.critic.task_losses);
        for (a, b) in trained.critic_learner.params.iter().zip(&restored.critic_learner.params) {
            assert_same(a, b);
        }
    }

    #[test]
    fn the_replay_buffer_and_rng_continue_where_they_were_saved() {
        tch::set_num_threads(1);
        let mut trained = small_sac(Architecture::MtSac, Temperature::PerTask, 1, |config| config);
        trained.update().unwrap();
        let dir = std::env::temp_dir().join(format!("agent-checkpoint-replay-test-{}", std::process::id()));
        trained.save(&dir, true).unwrap();
        let mut restored = small_sac(Architecture::MtSac, Temperature::PerTask, 2, |config| config);
        restored.load(&dir, true).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(restored.replay.len(), trained.replay.len());
        let (ours, theirs) = (trained.replay.sample(45, &mut trained.rng.clone()).unwrap(), restored.replay.sample(45, &mut restored.rng.clone()).unwrap());
        assert_eq!((ours.task, ours.obs, ours.action, ours.reward, ours.next_obs, ours.not_done), (theirs.task, theirs.obs, theirs.action, theirs.reward, theirs.next_obs, theirs.not_done));
        let obs = vec![0.3; 15];
        assert_eq!(trained.act(&obs, ActionMode::Stochastic).unwrap(), restored.act(&obs, ActionMode::Stochastic).unwrap());
        assert_eq!(trained.random_actions(), restored.random_actions());
        let (ours, theirs) = (trained.update().unwrap(), restored.update().unwrap());
        assert_eq!((ours.critic.task_losses, ours.actor.task_losses), (theirs.critic.task_losses, theirs.actor.task_losses));

        // Without the buffer, a checkpoint leaves the agent's own transitions in place.
        trained.save(&dir, false).unwrap();
        let mut fresh = small_sac(Architecture::MtSac, Temperature::PerTask, 2, |config| config);
        fresh.replay = crate::replay::ReplayBuffer::new(crate::Sampling::Uniform, 600, 3, 5, 2);
        fresh.load(&dir, true).unwrap();
        assert!(fresh.replay.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// MoCo's tracked average, ExcessMTL's sum of squared gradients and Nash-MTL's shared last
    /// good weights are part of the state: a
    /// resumed agent's next update is the uninterrupted one's, to the bit.
    #[test]
    fn tracked_averages_and_shared_nash_weights_resume_exactly() {
        tch::set_num_threads(1);
        for method in [Method::Moco, Method::Nash, Method::ExcessMtl] {
            let combine = |config: SacConfig| SacConfig { combine: CombineConfig::new(method), ..config };
            let (mut trained, mut restored, dir) = trained_and_restored(Architecture::MtSac, Temperature::Shared, combine, 4, true, method.as_str());
            std::fs::remove_dir_all(&dir).unwrap();
            assert_eq!(trained.shared_last_good, restored.shared_last_good);
            for (a, b) in trained.learners().iter().zip(restored.learners()) {
                assert_eq!(a.gradients.average.is_some(), method == Method::Moco);
                assert_eq!(a.gradients.squared_sum.is_some(), method == Method::ExcessMtl);
                for (x, y) in [(&a.gradients.average, &b.gradients.average), (&a.gradients.squared_sum, &b.gradients.squared_sum)] {
                    if let (Some(x), Some(y)) = (x, y) {
                        assert_same(x, y);
                    }
                }
            }
            let (ours, theirs) = (trained.update().unwrap(), restored.update().unwrap());
            for (a, b) in [(&ours.critic, &theirs.critic), (&ours.actor, &theirs.actor), (&ours.alpha, &theirs.alpha)] {
                assert_eq!((&a.weights, a.grad_norm), (&b.weights, b.grad_norm), "{method} {}", a.component);
            }
            for (a, b) in trained.learners().iter().zip(restored.learners()) {
                assert_same(&a.flat, &b.flat);
            }
        }
    }
}
