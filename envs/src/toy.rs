//! A pure-Rust multi-task family for tests and quick demos: point masses in the plane, each task
//! reaching its own goal with its own mass and action mapping, and one task whose rewards are
//! scaled far above the others (the gradient-scale imbalance the combiners exist for).
//!
//! Task `i` of `K`:
//! - goal on a circle of radius [`GOAL_RADIUS`] at angle `2 pi i / K + pi / 4`, shown in the
//!   observation so a shared policy can tell tasks apart without a task id;
//! - mass cycling through [`MASSES`]; odd tasks mirror the x force, so tasks pull shared weights
//!   in conflicting directions;
//! - reward `scale * (success - distance)`, with `scale = loud_task_scale` for task 0 (when
//!   `K > 1`) and 1 otherwise;
//! - success while the distance to the goal is below [`SUCCESS_RADIUS`].
//!
//! Observation `[x, y, vx, vy, goal_x, goal_y]`, action a force in `[-1, 1]^2`. Episodes are
//! truncated at `max_episode_steps` (never terminated unless `terminate_on_success`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{EnvError, EnvSpec, MultiTaskEnv, VecStep};

pub const OBS_DIM: usize = 6;
pub const ACTION_DIM: usize = 2;
pub const GOAL_RADIUS: f32 = 0.6;
pub const SUCCESS_RADIUS: f32 = 0.1;
/// Start positions are drawn uniformly from `[-START_SPREAD, START_SPREAD]^2`, velocity zero.
pub const START_SPREAD: f32 = 0.3;
pub const MASSES: [f32; 4] = [1.0, 2.5, 0.6, 1.5];
/// Integration step (seconds per env step).
const DT: f32 = 0.1;
const FORCE_GAIN: f32 = 3.0;
/// Fraction of velocity lost per step; keeps the masses easy to stop on the goal.
const DAMPING: f32 = 0.2;
/// Positions stay inside `[-ARENA, ARENA]^2`; hitting a wall stops motion along that axis.
const ARENA: f32 = 1.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToyConfig {
    pub num_tasks: usize,
    pub max_episode_steps: usize,
    /// End an episode (terminated, not truncated) as soon as the goal is reached.
    pub terminate_on_success: bool,
    /// Reward multiplier of task 0.
    pub loud_task_scale: f32,
}

impl Default for ToyConfig {
    fn default() -> Self {
        Self {
            num_tasks: 4,
            max_episode_steps: 50,
            terminate_on_success: false,
            loud_task_scale: 30.0,
        }
    }
}

#[derive(Debug, Clone)]
struct PointMass {
    goal: [f32; 2],
    mass: f32,
    mirrored: bool,
    reward_scale: f32,
    /// One stream per task, so a task's starts do not depend on how many tasks there are.
    rng: ChaCha8Rng,
    pos: [f32; 2],
    vel: [f32; 2],
    steps: usize,
}

impl PointMass {
    fn new(index: usize, config: &ToyConfig, seed: u64) -> Self {
        let angle = std::f32::consts::TAU * index as f32 / config.num_tasks as f32
            + std::f32::consts::FRAC_PI_4;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index as u64);
        let loud = index == 0 && config.num_tasks > 1;
        Self {
            goal: [GOAL_RADIUS * angle.cos(), GOAL_RADIUS * angle.sin()],
            mass: MASSES[index % MASSES.len()],
            mirrored: index % 2 == 1,
            reward_scale: if loud { config.loud_task_scale } else { 1.0 },
            rng,
            pos: [0.0; 2],
            vel: [0.0; 2],
            steps: 0,
        }
    }

    fn reset(&mut self) {
        for p in &mut self.pos {
            *p = self.rng.gen_range(-START_SPREAD..=START_SPREAD);
        }
        self.vel = [0.0; 2];
        self.steps = 0;
    }

    fn observe(&self, out: &mut [f32]) {
        out.copy_from_slice(&[
            self.pos[0],
            self.pos[1],
            self.vel[0],
            self.vel[1],
            self.goal[0],
            self.goal[1],
        ]);
    }

    fn distance_to_goal(&self) -> f32 {
        (self.pos[0] - self.goal[0]).hypot(self.pos[1] - self.goal[1])
    }

    /// Applies one force; returns `(reward, success)`.
    fn advance(&mut self, action: &[f32]) -> (f32, bool) {
        let mut force = [action[0].clamp(-1.0, 1.0), action[1].clamp(-1.0, 1.0)];
        if self.mirrored {
            force[0] = -force[0];
        }
        for ((vel, pos), force) in self.vel.iter_mut().zip(&mut self.pos).zip(force) {
            *vel = *vel * (1.0 - DAMPING) + DT * FORCE_GAIN * force / self.mass;
            *pos += DT * *vel;
            if pos.abs() > ARENA {
                *pos = pos.clamp(-ARENA, ARENA);
                *vel = 0.0;
            }
        }
        self.steps += 1;
        let distance = self.distance_to_goal();
        let success = distance < SUCCESS_RADIUS;
        (
            self.reward_scale * (f32::from(u8::from(success)) - distance),
            success,
        )
    }
}

/// The toy suite as a [`MultiTaskEnv`]; see the module documentation for the tasks.
#[derive(Debug, Clone)]
pub struct ToyEnv {
    spec: EnvSpec,
    config: ToyConfig,
    tasks: Vec<PointMass>,
}

impl ToyEnv {
    pub fn new(config: ToyConfig, seed: u64) -> Result<Self, EnvError> {
        if config.num_tasks == 0 || config.max_episode_steps == 0 {
            return Err(EnvError::InvalidConfig(
                "the toy suite needs num_tasks >= 1 and max_episode_steps >= 1".into(),
            ));
        }
        let tasks: Vec<PointMass> = (0..config.num_tasks)
            .map(|i| PointMass::new(i, &config, seed))
            .collect();
        let spec = EnvSpec {
            task_names: (0..config.num_tasks)
                .map(|i| {
                    if tasks[i].reward_scale == 1.0 {
                        format!("reach-{i}")
                    } else {
                        format!("reach-{i}-loud")
                    }
                })
                .collect(),
            obs_dim: OBS_DIM,
            action_dim: ACTION_DIM,
            max_episode_steps: config.max_episode_steps,
        };
        let mut env = Self {
            spec,
            config,
            tasks,
        };
        env.tasks.iter_mut().for_each(PointMass::reset);
        Ok(env)
    }
}

impl MultiTaskEnv for ToyEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self) -> Result<Vec<f32>, EnvError> {
        let mut obs = vec![0.0; self.tasks.len() * OBS_DIM];
        for (task, out) in self.tasks.iter_mut().zip(obs.chunks_exact_mut(OBS_DIM)) {
            task.reset();
            task.observe(out);
        }
        Ok(obs)
    }

    fn step(&mut self, actions: &[f32]) -> Result<VecStep, EnvError> {
        self.spec.check_actions(actions)?;
        let k = self.tasks.len();
        let mut step = VecStep {
            obs: vec![0.0; k * OBS_DIM],
            next_obs: vec![0.0; k * OBS_DIM],
            rewards: vec![0.0; k],
            terminated: vec![false; k],
            truncated: vec![false; k],
            success: vec![false; k],
        };
        for (i, task) in self.tasks.iter_mut().enumerate() {
            let (reward, success) = task.advance(&actions[i * ACTION_DIM..(i + 1) * ACTION_DIM]);
            let terminated = self.config.terminate_on_success && success;
            let truncated = !terminated && task.steps >= self.config.max_episode_steps;
            let rows = i * OBS_DIM..(i + 1) * OBS_DIM;
            task.observe(&mut step.next_obs[rows.clone()]);
            if terminated || truncated {
                task.reset();
            }
            task.observe(&mut step.obs[rows]);
            step.rewards[i] = reward;
            step.terminated[i] = terminated;
            step.truncated[i] = truncated;
            step.success[i] = success;
        }
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(config: ToyConfig) -> ToyEnv {
        ToyEnv::new(config, 7).unwrap()
    }

    /// Pushes every task towards its goal: a PD controller in the task's own action frame.
    fn controller(env: &ToyEnv, obs: &[f32]) -> Vec<f32> {
        let mut actions = Vec::new();
        for (task, o) in env.tasks.iter().zip(obs.chunks_exact(OBS_DIM)) {
            let mut a = [0.0f32; 2];
            for axis in 0..2 {
                a[axis] = (4.0 * (o[4 + axis] - o[axis]) - 1.5 * o[2 + axis]).clamp(-1.0, 1.0);
            }
            if task.mirrored {
                a[0] = -a[0];
            }
            actions.extend(a);
        }
        actions
    }

    fn rollout(seed: u64, steps: usize) -> Vec<VecStep> {
        let mut env = ToyEnv::new(ToyConfig::default(), seed).unwrap();
        let mut obs = env.reset().unwrap();
        let mut wiggle = ChaCha8Rng::seed_from_u64(99);
        (0..steps)
            .map(|_| {
                let actions: Vec<f32> = (0..obs.len() / OBS_DIM * ACTION_DIM)
                    .map(|_| wiggle.gen_range(-1.0..1.0))
                    .collect();
                let step = env.step(&actions).unwrap();
                obs = step.obs.clone();
                step
            })
            .collect()
    }

    #[test]
    fn same_seed_same_trajectory_and_other_seed_differs() {
        let a = rollout(3, 120);
        assert_eq!(a, rollout(3, 120));
        assert_ne!(a[0].obs, rollout(4, 120)[0].obs);
    }

    #[test]
    fn task_starts_do_not_depend_on_the_number_of_tasks() {
        let mut two = ToyEnv::new(
            ToyConfig {
                num_tasks: 2,
                ..ToyConfig::default()
            },
            5,
        )
        .unwrap();
        let mut five = ToyEnv::new(
            ToyConfig {
                num_tasks: 5,
                ..ToyConfig::default()
            },
            5,
        )
        .unwrap();
        let (o2, o5) = (two.reset().unwrap(), five.reset().unwrap());
        for task in 0..2 {
            assert_eq!(
                o2[task * OBS_DIM..task * OBS_DIM + 2],
                o5[task * OBS_DIM..task * OBS_DIM + 2]
            );
        }
    }

    #[test]
    fn controller_reaches_every_goal_and_success_means_within_radius() {
        let mut env = env(ToyConfig::default());
        let mut obs = env.reset().unwrap();
        let mut ever_succeeded = vec![false; env.spec().num_tasks()];
        for _ in 0..env.spec().max_episode_steps - 1 {
            let step = env.step(&controller(&env, &obs)).unwrap();
            for (i, o) in step.next_obs.chunks_exact(OBS_DIM).enumerate() {
                let distance = (o[0] - o[4]).hypot(o[1] - o[5]);
                assert_eq!(
                    step.success[i],
                    distance < SUCCESS_RADIUS,
                    "task {i} at distance {distance}"
                );
                let scale = if i == 0 { 30.0 } else { 1.0 };
                let bonus = if step.success[i] { 1.0 } else { 0.0 };
                assert!((step.rewards[i] - scale * (bonus - distance)).abs() < 1e-4);
                ever_succeeded[i] |= step.success[i];
            }
            obs = step.obs;
        }
        assert_eq!(ever_succeeded, vec![true; env.spec().num_tasks()]);
    }

    #[test]
    fn idle_masses_do_not_succeed() {
        let mut env = env(ToyConfig::default());
        env.reset().unwrap();
        let step = env.step(&[0.0; 4 * ACTION_DIM]).unwrap();
        assert_eq!(step.success, vec![false; 4]);
        assert!(step.rewards.iter().all(|&r| r < 0.0));
    }

    #[test]
    fn episodes_are_truncated_at_the_horizon_with_the_final_observation_kept() {
        let config = ToyConfig {
            max_episode_steps: 20,
            ..ToyConfig::default()
        };
        let mut env = env(config);
        let mut obs = env.reset().unwrap();
        // Gentle enough that no mass reaches a wall, so positions integrate velocities exactly.
        let push = vec![0.05; 4 * ACTION_DIM];
        for t in 1..=40 {
            let step = env.step(&push).unwrap();
            assert_eq!(step.terminated, vec![false; 4]);
            let end = t % 20 == 0;
            assert_eq!(step.truncated, vec![end; 4], "step {t}");
            if end {
                assert_ne!(step.obs, step.next_obs);
                let tasks = step
                    .obs
                    .chunks_exact(OBS_DIM)
                    .zip(step.next_obs.chunks_exact(OBS_DIM))
                    .zip(obs.chunks_exact(OBS_DIM));
                for ((reset, next), before) in tasks {
                    for axis in 0..2 {
                        assert_ne!(next[2 + axis], 0.0, "the final observation still moves");
                        assert_eq!(
                            next[axis],
                            before[axis] + DT * next[2 + axis],
                            "it continues the episode"
                        );
                    }
                    assert_eq!(
                        reset[2..4],
                        [0.0, 0.0],
                        "the reset observation starts at rest"
                    );
                    assert!(reset[0].abs() <= START_SPREAD && reset[1].abs() <= START_SPREAD);
                }
            } else {
                assert_eq!(step.obs, step.next_obs);
            }
            assert_ne!(step.next_obs, obs, "the transition moved the masses");
            obs = step.obs;
        }
    }

    #[test]
    fn terminate_on_success_ends_the_episode_as_terminal() {
        let mut env = env(ToyConfig {
            terminate_on_success: true,
            ..ToyConfig::default()
        });
        let mut obs = env.reset().unwrap();
        let mut terminated_once = vec![false; 4];
        for _ in 0..env.spec().max_episode_steps - 1 {
            let step = env.step(&controller(&env, &obs)).unwrap();
            assert_eq!(step.terminated, step.success);
            assert_eq!(step.truncated, vec![false; 4]);
            for (i, &ended) in step.terminated.iter().enumerate() {
                terminated_once[i] |= ended;
                let rows = i * OBS_DIM..(i + 1) * OBS_DIM;
                assert_eq!(ended, step.obs[rows.clone()] != step.next_obs[rows]);
            }
            obs = step.obs;
        }
        assert_eq!(terminated_once, vec![true; 4]);
    }

    #[test]
    fn one_task_is_loud() {
        let spec = env(ToyConfig::default()).spec.clone();
        assert_eq!(
            spec.task_names,
            ["reach-0-loud", "reach-1", "reach-2", "reach-3"]
        );
        assert_eq!(
            env(ToyConfig {
                num_tasks: 1,
                ..ToyConfig::default()
            })
            .tasks[0]
                .reward_scale,
            1.0
        );
    }

    #[test]
    fn wrong_action_shapes_and_configs_are_errors() {
        let mut env = env(ToyConfig::default());
        assert!(matches!(
            env.step(&[0.0; 3]),
            Err(EnvError::ActionShape {
                expected: 8,
                got: 3,
                ..
            })
        ));
        assert!(matches!(
            env.step(&[f32::NAN; 8]),
            Err(EnvError::NonFiniteAction { task: 0 })
        ));
        assert!(ToyEnv::new(
            ToyConfig {
                num_tasks: 0,
                ..ToyConfig::default()
            },
            0
        )
        .is_err());
    }
}
