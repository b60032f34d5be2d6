//! Episode bookkeeping over vector steps: each task's return and whether it succeeded at ANY
//! step of the episode (the papers' success criterion), reported when the episode ends.
use envs::VecStep;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    pub task: usize,
    pub return_: f64,
    pub success: bool,
}

pub struct EpisodeTracker {
    returns: Vec<f64>,
    succeeded: Vec<bool>,
}

impl EpisodeTracker {
    pub fn new(num_tasks: usize) -> Self {
        Self { returns: vec![0.0; num_tasks], succeeded: vec![false; num_tasks] }
    }

    /// Adds one vector step; returns the episodes it ended (the env has already reset them).
    pub fn record(&mut self, step: &VecStep) -> Vec<Episode> {
        let mut ended = Vec::new();
        for task in 0..self.returns.len() {
            self.returns[task] += f64::from(step.rewards[task]);
            self.succeeded[task] |= step.success[task];
            if step.terminated[task] || step.truncated[task] {
                ended.push(Episode { task, return_: self.returns[task], success: self.succeeded[task] });
                self.returns[task] = 0.0;
                self.succeeded[task] = false;
            }
        }
        ended
    }

    /// A task's episode so far: its return and whether it has succeeded.
    pub fn running(&self, task: usize) -> (f64, bool) {
        (self.returns[task], self.succeeded[task])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rewards: [f32; 2], success: [bool; 2], truncated: [bool; 2]) -> VecStep {
        VecStep {
            rewards: rewards.to_vec(),
            success: success.to_vec(),
            truncated: truncated.to_vec(),
            terminated: vec![false; 2],
            ..VecStep::default()
        }
    }

    #[test]
    fn success_at_any_step_counts_and_episodes_restart_after_the_end() {
        let mut tracker = EpisodeTracker::new(2);
        assert!(tracker.record(&step([1.0, 2.0], [true, false], [false, false])).is_empty());
        let ended = tracker.record(&step([1.0, 2.0], [false, false], [true, false]));
        assert_eq!(ended, [Episode { task: 0, return_: 2.0, success: true }]);
        let ended = tracker.record(&step([0.5, 1.0], [false, false], [true, true]));
        assert_eq!(
            ended,
            [Episode { task: 0, return_: 0.5, success: false }, Episode { task: 1, return_: 5.0, success: false }]
        );
    }
}
