//! Reward scaling by a running standard deviation, as in the papers' MT10 code.

use serde::{Deserialize, Serialize};

use crate::EnvError;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum RewardNormalization {
    None,
    /// See [`RunningStdNormalizer`].
    RunningStd {
        ema_rate: f64,
    },
}

impl RewardNormalization {
    pub fn validate(self) -> Result<(), EnvError> {
        match self {
            Self::RunningStd { ema_rate } if !(ema_rate > 0.0 && ema_rate <= 1.0) => {
                Err(EnvError::InvalidConfig(format!(
                    "reward normalisation ema_rate must be in (0, 1], got {ema_rate}"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Per-task reward scaling, updated once per step with each task's raw reward `r`
/// (rate `a`, state starting at `mean = 0`, `var = 1`):
///
/// ```text
/// mean <- (1 - a) * mean + a * r
/// var  <- (1 - a) * var  + a * (r - mean)^2      (with the updated mean)
/// r'    = r / (sqrt(var) + 1e-8)                 (the mean is NOT subtracted)
/// ```
///
/// This is garage's `NormalizedEnv` reward normalisation that the papers' runs used (Meta-World's
/// own `NormalizeRewardsExponential` wrapper updates the statistics twice per step, so it is not
/// used). Statistics persist across episodes.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningStdNormalizer {
    ema_rate: f64,
    mean: Vec<f64>,
    var: Vec<f64>,
}

impl RunningStdNormalizer {
    pub fn new(num_tasks: usize, ema_rate: f64) -> Self {
        Self {
            ema_rate,
            mean: vec![0.0; num_tasks],
            var: vec![1.0; num_tasks],
        }
    }

    /// Updates each task's statistics with its reward and scales the reward in place.
    pub fn normalize(&mut self, rewards: &mut [f32]) {
        let a = self.ema_rate;
        for ((r, mean), var) in rewards.iter_mut().zip(&mut self.mean).zip(&mut self.var) {
            let raw = f64::from(*r);
            *mean = (1.0 - a) * *mean + a * raw;
            *var = (1.0 - a) * *var + a * (raw - *mean).powi(2);
            *r = (raw / (var.sqrt() + 1e-8)) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_matches_the_formula() {
        let mut n = RunningStdNormalizer::new(2, 0.001);
        let mut r = [10.0f32, 0.0];
        n.normalize(&mut r);
        let mean = 0.001 * 10.0;
        let var = 0.999 + 0.001 * (10.0f64 - mean).powi(2);
        assert!((f64::from(r[0]) - 10.0 / (var.sqrt() + 1e-8)).abs() < 1e-5);
        assert_eq!(r[1], 0.0);
    }

    #[test]
    fn constant_rewards_keep_their_sign_and_grow_once_the_variance_shrinks() {
        let mut n = RunningStdNormalizer::new(1, 0.01);
        let mut last = 0.0;
        for _ in 0..2000 {
            let mut r = [3.0f32];
            n.normalize(&mut r);
            assert!(r[0] > 0.0);
            last = r[0];
        }
        assert!(
            last > 30.0,
            "variance -> 0 for a constant reward, so the scale grows: {last}"
        );
    }

    #[test]
    fn tasks_are_scaled_independently() {
        let mut alternating = RunningStdNormalizer::new(2, 0.1);
        let mut r = [0.0f32; 2];
        for t in 0..500 {
            r = if t % 2 == 0 {
                [100.0, 1.0]
            } else {
                [-100.0, -1.0]
            };
            alternating.normalize(&mut r);
        }
        assert!(
            (r[0].abs() - r[1].abs()).abs() < 0.05,
            "scale-free per task: {r:?}"
        );
        assert!(RewardNormalization::RunningStd { ema_rate: 0.0 }
            .validate()
            .is_err());
    }
}
