//! MT-SAC learns the toy suite (point masses reaching their goals) with `ls` and with `fairgrad`;
//! Nash-MTL keeps the shared temperature learning.
//!
//! The suite is used with its loud task at the others' reward scale: with the default 30x task,
//! `ls` learns only the loud task within a budget like this one (measured: 5,000 steps), which is
//! the imbalance the combiners are for, not a check that learning works.
use agent::{ActionMode, CombineConfig, DeviceChoice, Sac, SacConfig, UpdateReport};
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

/// Trains on the toy suite for `steps` (random actions first), handing every update's report to
/// `inspect`.
fn train(method: Method, steps: usize, mut inspect: impl FnMut(usize, &UpdateReport)) -> Sac {
    // The tests run side by side: one libtorch thread each fits 2 cores (an oversubscribed
    // OpenMP pool slows updates 10-100x, measured here).
    tch::set_num_threads(1);
    let mut env = ToyEnv::new(toy(), 1).unwrap();
    let mut sac = Sac::new(config(method), env.spec(), 1).unwrap();
    let mut obs = env.reset().unwrap();
    for t in 0..steps {
        let actions = if t < WARMUP_STEPS { sac.random_actions() } else { sac.act(&obs, ActionMode::Stochastic).unwrap() };
        let step = env.step(&actions).unwrap();
        sac.observe(&obs, &actions, &step).unwrap();
        obs = step.obs;
        if t >= WARMUP_STEPS {
            inspect(t, &sac.update().unwrap());
        }
    }
    sac
}

fn assert_learns(method: Method) {
    let untrained = success_rate(&mut train(method, 0, |_, _| {}));
    assert!(untrained < 0.5, "{method}: the untrained policy already succeeds ({untrained})");
    let mut sac = train(method, TRAINING_STEPS, |t, report| {
        for component in [&report.critic, &report.actor, &report.alpha] {
            assert!(component.skipped.is_none(), "{method}: {} update skipped at step {t}", component.component);
        }
    });
    let trained = success_rate(&mut sac);
    eprintln!("{method}: success {untrained} untrained, {trained} after {TRAINING_STEPS} steps");
    assert!(trained >= 0.75, "{method}: success {trained} after {TRAINING_STEPS} steps");
}

/// The shared temperature's K task gradients form a rank-1 Gram; once the tasks' entropy gaps
/// have mixed signs, `M w = 1/w` has no root. The weights applied must stay those of the last
/// good solve (before this was so, they reached 1e4-1e6 and froze the temperature). Nash weights
/// are not scale-free (`w_i = 1/(g_i sqrt K)` for same-sign gaps): measured here, the largest
/// weight of an update is 8/K at the median and 190/K at most.
#[test]
fn nash_keeps_the_shared_temperature_learning() {
    let k = toy().num_tasks as f64;
    let (mut largest, mut smallest, mut fallbacks) = (0.0f64, f64::INFINITY, 0);
    let mut temperatures = Vec::new();
    train(Method::Nash, 1500, |_, report| {
        largest = report.alpha.weights.iter().fold(largest, |a, &w| a.max(w));
        smallest = report.alpha.weights.iter().fold(smallest, |a, &w| a.min(w));
        fallbacks += usize::from(report.alpha.fallback.is_some());
        temperatures.push(report.alpha_values[0]);
    });
    eprintln!("nash alpha weights in [{smallest}, {largest}] (1/K = {}), {fallbacks} fallbacks, temperature {:?} -> {:?}", 1.0 / k, temperatures.first(), temperatures.last());
    assert!(fallbacks > 0, "the run should meet Pareto-stationary temperature gradients");
    assert!(largest * k <= 1e3 && smallest > 0.0, "alpha weights in [{smallest}, {largest}], 1/K = {}", 1.0 / k);
    // Adam moves log(alpha) by at most lr = 3e-4 per update: 0.36 in 1,200 updates.
    let (first, last) = (temperatures[0], temperatures[temperatures.len() - 1]);
    assert!((last / first).ln().abs() > 0.1, "the temperature barely moved: {first} -> {last}");
}

#[test]
fn mt_sac_learns_the_toy_suite_with_ls() {
    assert_learns(Method::Ls);
}

#[test]
fn mt_sac_learns_the_toy_suite_with_fairgrad() {
    assert_learns(Method::FairGrad);
}
