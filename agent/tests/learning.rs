//! MT-SAC learns the toy suite (point masses reaching their goals) with `ls` and with `fairgrad`.
//!
//! The suite is used with its loud task at the others' reward scale: with the default 30x task,
//! `ls` learns only the loud task within a budget like this one (measured: 5,000 steps), which is
//! the imbalance the combiners are for, not a check that learning works.
use agent::{ActionMode, CombineConfig, DeviceChoice, Sac, SacConfig};
use envs::toy::{ToyConfig, ToyEnv};
use envs::MultiTaskEnv;
use solvers::Method;

const WARMUP_STEPS: usize = 300;
const TRAINING_STEPS: usize = 2500;
const EVAL_EPISODES: usize = 10;

fn toy() -> ToyConfig {
    ToyConfig { loud_task_scale: 1.0, ..ToyConfig::default() }
}

fn config(method: Method) -> SacConfig {
    SacConfig {
        hidden: vec![64, 64],
        batch_size: 256,
        replay_capacity: 50_000,
        actor_lr: 1e-3,
        critic_lr: 1e-3,
        init_temperature: 0.1,
        device: DeviceChoice::Cpu,
        combine: CombineConfig::new(method),
        ..SacConfig::mtrl()
    }
}

/// The mean over tasks of the share of deterministic episodes that reach the goal at some step.
fn success_rate(sac: &mut Sac) -> f64 {
    let mut env = ToyEnv::new(toy(), 11).unwrap();
    let k = env.spec().num_tasks();
    let mut successes = 0;
    for _ in 0..EVAL_EPISODES {
        let mut obs = env.reset().unwrap();
        let mut reached = vec![false; k];
        for _ in 0..env.spec().max_episode_steps {
            let step = env.step(&sac.act(&obs, ActionMode::Deterministic).unwrap()).unwrap();
            reached.iter_mut().zip(&step.success).for_each(|(r, &s)| *r |= s);
            obs = step.obs;
        }
        successes += reached.iter().filter(|&&r| r).count();
    }
    successes as f64 / (EVAL_EPISODES * k) as f64
}

fn assert_learns(method: Method) {
    // The two tests run side by side: one libtorch thread each fits 2 cores (an oversubscribed
    // OpenMP pool slows updates 10-100x, measured here).
    tch::set_num_threads(1);
    let mut env = ToyEnv::new(toy(), 1).unwrap();
    let mut sac = Sac::new(config(method), env.spec(), 1).unwrap();
    let untrained = success_rate(&mut sac);
    assert!(untrained < 0.5, "{method}: the untrained policy already succeeds ({untrained})");
    let mut obs = env.reset().unwrap();
    for t in 0..TRAINING_STEPS {
        let actions = if t < WARMUP_STEPS { sac.random_actions() } else { sac.act(&obs, ActionMode::Stochastic).unwrap() };
        let step = env.step(&actions).unwrap();
        sac.observe(&obs, &actions, &step).unwrap();
        obs = step.obs;
        if t >= WARMUP_STEPS {
            let report = sac.update().unwrap();
            for component in [&report.critic, &report.actor, &report.alpha] {
                assert!(component.skipped.is_none(), "{method}: {} update skipped at step {t}", component.component);
            }
        }
    }
    let trained = success_rate(&mut sac);
    eprintln!("{method}: success {untrained} untrained, {trained} after {TRAINING_STEPS} steps");
    assert!(trained >= 0.75, "{method}: success {trained} after {TRAINING_STEPS} steps");
}

#[test]
fn mt_sac_learns_the_toy_suite_with_ls() {
    assert_learns(Method::Ls);
}

#[test]
fn mt_sac_learns_the_toy_suite_with_fairgrad() {
    assert_learns(Method::FairGrad);
}
