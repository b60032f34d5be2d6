//! BRC's per-task reward normalisation (`jaxrl/normalizer.py`, docs/brc.md). Each task keeps the
//! range of the discounted returns seen in its finished episodes. A sampled reward is divided by
//! that range, widened by the entropy bonus a return can collect, and scaled so that returns fit
//! the categorical critic's support `[-v_max, v_max]`.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReturnRange {
    gamma: f64,
    v_max: f64,
    /// Per task, the least and greatest discounted return from any step of a finished episode
    /// (`+inf` and `-inf` before the first).
    min: Vec<f64>,
    max: Vec<f64>,
    /// Per task, the rewards of the episode under way.
    episodes: Vec<Vec<f32>>,
}

impl ReturnRange {
    pub fn new(num_tasks: usize, gamma: f64, v_max: f64) -> Self {
        Self {
            gamma,
            v_max,
            min: vec![f64::INFINITY; num_tasks],
            max: vec![f64::NEG_INFINITY; num_tasks],
            episodes: vec![Vec::new(); num_tasks],
        }
    }

    /// The effective horizon `1 / (1 - gamma)`.
    fn horizon(&self) -> f64 {
        1.0 / (1.0 - self.gamma)
    }

    /// Records one step of every task; an episode that ends widens its task's range by the
    /// returns of all its steps. A truncated episode's returns bootstrap from its mean reward
    /// over the horizon, as if it went on at that rate; a terminated one's end at 0. An episode
    /// that is both counts as truncated, as in BRC.
    pub fn observe(&mut self, rewards: &[f32], terminated: &[bool], truncated: &[bool]) {
        for k in 0..self.episodes.len() {
            self.episodes[k].push(rewards[k]);
            if !(terminated[k] || truncated[k]) {
                continue;
            }
            let episode = std::mem::take(&mut self.episodes[k]);
            let mean = episode.iter().map(|&r| f64::from(r)).sum::<f64>() / episode.len() as f64;
            let mut value = if truncated[k] { mean * self.horizon() } else { 0.0 };
            for &reward in episode.iter().rev() {
                value = f64::from(reward) + self.gamma * value;
                self.min[k] = self.min[k].min(value);
                self.max[k] = self.max[k].max(value);
            }
        }
    }

    /// What each task's rewards are multiplied by: `v_max / (max(G_max, |G_min|) - alpha_k
    /// target_entropy / (2 (1 - gamma)))`, with `alpha_k` the task's temperature. A task without
    /// a finished episode gets 0 (its range is infinite), as in BRC.
    pub fn reward_scales(&self, temperatures: &[f64], target_entropy: f64) -> Vec<f64> {
        (0..self.min.len())
            .map(|k| {
                let returns = self.max[k].max(self.min[k].abs());
                let entropy_bonus = temperatures[k] * self.horizon() * target_entropy / 2.0;
                self.v_max / (returns - entropy_bonus)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brc_reference::Vectors;

    fn flags(values: &serde_json::Value) -> Vec<bool> {
        values.as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect()
    }

    #[test]
    fn ranges_and_scaled_rewards_match_brc() {
        let v = Vectors::load("reward_normalizer.json");
        let mut range = ReturnRange::new(3, v.scalar("discount"), v.scalar("v_max"));
        for step in v.field("steps").as_array().unwrap() {
            let rewards: Vec<f32> = step["rewards"].as_array().unwrap().iter().map(|r| r.as_f64().unwrap() as f32).collect();
            range.observe(&rewards, &flags(&step["terminal"]), &flags(&step["truncate"]));
        }
        let close = |a: f64, b: f32| (a - f64::from(b)).abs() <= 1e-5 * f64::from(b).abs().max(1.0);
        for (k, (&min, &max)) in v.floats("returns_min").iter().zip(&v.floats("returns_max")).enumerate() {
            assert!(close(range.min[k], min) && close(range.max[k], max), "task {k}: {} {} vs {min} {max}", range.min[k], range.max[k]);
        }
        let scales = range.reward_scales(&[v.scalar("temperature"); 3], v.scalar("target_entropy"));
        let tasks = v.indices("task_ids");
        for ((&reward, &expected), &k) in v.floats("rewards").iter().zip(&v.floats("normalized_rewards")).zip(&tasks) {
            let scaled = f64::from(reward) * scales[k as usize];
            assert!(close(scaled, expected), "task {k}: {scaled} vs {expected}");
        }
    }

    #[test]
    fn a_task_without_a_finished_episode_gets_no_reward_yet() {
        let mut range = ReturnRange::new(2, 0.99, 10.0);
        range.observe(&[1.0, 2.0], &[false, false], &[true, false]);
        // One truncated step of reward 1: 1 + 0.99 * 100 * 1.
        assert!((range.max[0] - 100.0).abs() < 1e-9 && (range.min[0] - 100.0).abs() < 1e-9);
        let scales = range.reward_scales(&[0.0, 0.0], -1.0);
        assert!((scales[0] - 0.1).abs() < 1e-12);
        assert_eq!(scales[1], 0.0);
    }
}
