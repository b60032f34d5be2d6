//! Checkpoints: a directory with `tensors.ot` (networks, target critics, temperatures and every
//! Adam moment, via libtorch's serialisation) and `state.json` (Adam step counts, update and skip
//! counters, the last combiner weights and each combiner's own state). The replay buffer is not
//! saved.
use crate::{AgentError, Sac};
use serde::{Deserialize, Serialize};
use solvers::Method;
use std::collections::BTreeMap;
use std::path::Path;
use tch::Tensor;

const TENSORS: &str = "tensors.ot";
const STATE: &str = "state.json";

#[derive(Serialize, Deserialize)]
struct LearnerState {
    method: Method,
    adam_step: u64,
    updates: u64,
    skipped_updates: u64,
    weights: Vec<f64>,
    combiner: serde_json::Value,
}

impl Sac {
    /// Writes the learner's state to directory `dir` (created if missing).
    pub fn save(&self, dir: &Path) -> Result<(), AgentError> {
        let error = |message: String| AgentError::Checkpoint { path: dir.to_path_buf(), message };
        std::fs::create_dir_all(dir).map_err(|e| error(e.to_string()))?;
        let mut tensors: Vec<(String, &Tensor)> = Vec::new();
        let mut state = BTreeMap::new();
        for learner in self.learners() {
            let name = learner.component.as_str();
            for (i, ((param, m), v)) in learner.params.iter().zip(&learner.adam.exp_avg).zip(&learner.adam.exp_avg_sq).enumerate() {
                tensors.push((format!("{name}.param.{i}"), param));
                tensors.push((format!("{name}.exp_avg.{i}"), m));
                tensors.push((format!("{name}.exp_avg_sq.{i}"), v));
            }
            let learner_state = LearnerState {
                method: learner.combiner.method(),
                adam_step: learner.adam.step,
                updates: learner.updates,
                skipped_updates: learner.skipped_updates,
                weights: learner.weights.clone(),
                combiner: learner.combiner.state(),
            };
            state.insert(name.to_string(), learner_state);
        }
        tensors.extend(self.critic_target.iter().enumerate().map(|(i, t)| (format!("critic_target.{i}"), t)));
        Tensor::save_multi(&tensors, dir.join(TENSORS))?;
        let json = serde_json::to_string_pretty(&state).map_err(|e| error(e.to_string()))?;
        std::fs::write(dir.join(STATE), json).map_err(|e| error(e.to_string()))
    }

    /// Restores a checkpoint written by [`Sac::save`] for an agent of the same shape.
    pub fn load(&mut self, dir: &Path) -> Result<(), AgentError> {
        let error = |message: String| AgentError::Checkpoint { path: dir.to_path_buf(), message };
        let json = std::fs::read_to_string(dir.join(STATE)).map_err(|e| error(e.to_string()))?;
        let mut state: BTreeMap<String, LearnerState> = serde_json::from_str(&json).map_err(|e| error(e.to_string()))?;
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
                restore(format!("{name}.exp_avg.{i}"), &mut learner.adam.exp_avg[i])?;
                restore(format!("{name}.exp_avg_sq.{i}"), &mut learner.adam.exp_avg_sq[i])?;
            }
            learner.adam.step = learner_state.adam_step;
            learner.updates = learner_state.updates;
            learner.skipped_updates = learner_state.skipped_updates;
            learner.consecutive_skips = 0;
            learner.weights = learner_state.weights;
            learner
                .combiner
                .load_state(&learner_state.combiner)
                .map_err(|source| AgentError::Solver { component: learner.component, source })?;
        }
        for (i, target) in self.critic_target.iter_mut().enumerate() {
            restore(format!("critic_target.{i}"), target)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::small_sac;
    use crate::{ActionMode, Architecture, CombineConfig, SacConfig, Temperature};
    use solvers::Method;
    use tch::Tensor;

    fn assert_same(a: &Tensor, b: &Tensor) {
        assert_eq!(a.size(), b.size());
        assert_eq!((a - b).abs().max().double_value(&[]), 0.0);
    }

    #[test]
    fn a_loaded_checkpoint_restores_networks_optimizers_and_combiner_state() {
        let famo = |config: SacConfig| SacConfig { combine: CombineConfig::new(Method::Famo), ..config };
        let mut trained = small_sac(Architecture::MultiHead, Temperature::PerTask, 1, famo);
        for _ in 0..5 {
            trained.update().unwrap();
        }
        let dir = std::env::temp_dir().join(format!("agent-checkpoint-test-{}", std::process::id()));
        trained.save(&dir).unwrap();
        let mut restored = small_sac(Architecture::MultiHead, Temperature::PerTask, 2, famo);
        restored.load(&dir).unwrap();
        assert_ne!(trained.critic_learner.combiner.state(), serde_json::Value::Null, "FAMO (on the critic) has state");
        for (a, b) in trained.learners().iter().zip(restored.learners()) {
            assert_eq!(a.combiner.state(), b.combiner.state());
            assert_eq!((a.adam.step, a.updates, &a.weights), (b.adam.step, b.updates, &b.weights));
            for (x, y) in a.params.iter().chain(&a.adam.exp_avg).chain(&a.adam.exp_avg_sq).zip(b.params.iter().chain(&b.adam.exp_avg).chain(&b.adam.exp_avg_sq)) {
                assert_same(x, y);
            }
        }
        for (x, y) in trained.critic_target.iter().zip(&restored.critic_target) {
            assert_same(x, y);
        }
        let obs = vec![0.3; 15];
        assert_eq!(trained.act(&obs, ActionMode::Deterministic).unwrap(), restored.act(&obs, ActionMode::Deterministic).unwrap());

        let mut other_shape = small_sac(Architecture::MtSac, Temperature::PerTask, 3, famo);
        assert!(matches!(other_shape.load(&dir), Err(crate::AgentError::Checkpoint { .. })));
        let mut other_method = small_sac(Architecture::MultiHead, Temperature::PerTask, 3, |config| config);
        assert!(matches!(other_method.load(&dir), Err(crate::AgentError::Checkpoint { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
