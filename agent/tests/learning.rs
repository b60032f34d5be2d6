//! MT-SAC learns the toy suite (point masses reaching their goals) with `ls`, `fairgrad` and
//! `moco`; Nash-MTL keeps the shared temperature learning, and a temperature solve that falls back
//! applies the weights its critic and actor shared last.
//!
//! The suite is used with its loud task at the others' reward scale: with the default 30x task,
//! `ls` learns only the loud task within a budget like this one (measured: 5,000 steps), which is
//! the imbalance the combiners are for, not a check that learning works.
use agent::{ActionMode, Block, CombineConfig, CriticHead, DeviceChoice, NashFallback, RewardScaling, Sac, SacConfig, UpdateReport};
use envs::toy::{ToyConfig, ToyEnv};
use envs::MultiTaskEnv;
use solvers::Method;

const WARMUP_STEPS: usize = 300;
const TRAINING_STEPS: usize = 2500;
const EVAL_EPISODES: usize = 10;

fn toy() -> ToyConfig {
    ToyConfig { loud_task_scale: 1.0, ..ToyConfig::default() }
}

fn config(combine: CombineConfig) -> SacConfig {
    SacConfig {
        hidden: vec![64, 64],
        batch_size: 256,
        replay_capacity: 50_000,
        actor_lr: 1e-3,
        critic_lr: 1e-3,
        init_temperature: 0.1,
        device: DeviceChoice::Cpu,
        combine,
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
fn train(method: Method, steps: usize, inspect: impl FnMut(usize, &UpdateReport)) -> Sac {
    train_on(toy(), config(CombineConfig::new(method)), steps, inspect)
}

fn train_on(suite: ToyConfig, config: SacConfig, steps: usize, mut inspect: impl FnMut(usize, &UpdateReport)) -> Sac {
    // The tests run side by side: one libtorch thread each fits 2 cores (an oversubscribed
    // OpenMP pool slows updates 10-100x, measured here).
    tch::set_num_threads(1);
    let mut env = ToyEnv::new(suite, 1).unwrap();
    let mut sac = Sac::new(config, env.spec(), 1).unwrap();
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

/// Trains `method` and checks the deterministic policy succeeds in at least `threshold` of the
/// episodes, where the untrained one succeeds in fewer than half.
fn assert_learns(method: Method, threshold: f64) {
    let untrained = success_rate(&mut train(method, 0, |_, _| {}));
    assert!(untrained < 0.5, "{method}: the untrained policy already succeeds ({untrained})");
    let trained = trained_success(&format!("{method} ({untrained} untrained)"), config(CombineConfig::new(method)));
    assert!(trained >= threshold, "{method}: success {trained} after {TRAINING_STEPS} steps");
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

/// Trains `config` on the suite, checking that no update is skipped, and returns the success rate.
fn trained_success(name: &str, config: SacConfig) -> f64 {
    let mut sac = train_on(toy(), config, TRAINING_STEPS, |t, report| {
        for component in [&report.critic, &report.actor, &report.alpha] {
            assert!(component.skipped.is_none(), "{name}: {} update skipped at step {t}", component.component);
        }
    });
    let trained = success_rate(&mut sac);
    eprintln!("{name}: success {trained} after {TRAINING_STEPS} steps");
    trained
}

/// BRC's critic (BroNet, categorical, AdamW) under FairGrad learns the suite as the plain MLP
/// critic does.
#[test]
fn a_brc_critic_learns_the_toy_suite_with_fairgrad() {
    let brc = SacConfig {
        critic_block: Block::Bronet,
        critic_hidden: Some(vec![64, 64, 64]),
        critic: CriticHead::Categorical,
        weight_decay: 1e-4,
        ..config(CombineConfig::new(Method::FairGrad))
    };
    let trained = trained_success("brc critic, fairgrad", brc);
    assert!(trained >= 0.75, "success {trained} after {TRAINING_STEPS} steps");
}

/// BRC's reward scaling multiplies this suite's rewards by 0.06-0.1 and, as in BRC, leaves the
/// entropy term as it is, so a temperature acts 10-17 times larger against the rewards. From the
/// suite's initial temperature 0.1 the run does not learn within these steps (measured: 0.275);
/// from 0.01 it does (docs/brc.md).
#[test]
fn return_range_scaling_learns_the_toy_suite_from_a_temperature_lowered_by_the_scale() {
    let scaled = SacConfig {
        critic: CriticHead::Categorical,
        reward_scaling: RewardScaling::ReturnRange,
        init_temperature: 0.01,
        ..config(CombineConfig::new(Method::FairGrad))
    };
    let trained = trained_success("return-range scaling, fairgrad, temperature 0.01", scaled);
    assert!(trained >= 0.75, "success {trained} after {TRAINING_STEPS} steps");
}

#[test]
fn mt_sac_learns_the_toy_suite_with_ls() {
    assert_learns(Method::Ls, 0.75);
}

#[test]
fn mt_sac_learns_the_toy_suite_with_fairgrad() {
    assert_learns(Method::FairGrad, 0.75);
}

/// MoCo learns, more slowly: its average's step `0.5 / sqrt(t)` is 0.01 by update 2,200, so `Y`
/// lags about 100 updates behind the gradients (measured: success 0.425 after 2,500 steps, where
/// ls and fairgrad reach 0.75).
#[test]
fn mt_sac_learns_the_toy_suite_with_moco() {
    assert_learns(Method::Moco, 0.3);
}

/// Three of the methods ported from TorchJD and LibMTL, one of each kind: a dual-cone projection
/// on the Gram (UPGrad), cosine targets kept between updates (GradVac), a gradient average kept
/// on the device (DB-MTL). Measured: success 1.0, 1.0 and 0.8 after 2,500 steps (0 untrained);
/// the other six were measured the same way (docs/methods.md).
#[test]
fn mt_sac_learns_the_toy_suite_with_upgrad() {
    assert_learns(Method::Upgrad, 0.75);
}

#[test]
fn mt_sac_learns_the_toy_suite_with_gradvac() {
    assert_learns(Method::GradVac, 0.75);
}

#[test]
fn mt_sac_learns_the_toy_suite_with_dbmtl() {
    assert_learns(Method::DbMtl, 0.5);
}

/// ExcessMTL: its sum of squared gradients is kept on the device, as DB-MTL's average.
#[test]
fn mt_sac_learns_the_toy_suite_with_excessmtl() {
    assert_learns(Method::ExcessMtl, 0.75);
}

/// The toy preset's suite (one task with 30x rewards), 3,000 steps. Under the shared rule (the
/// MT10 port's), every component's solve that falls back applies the last good weights of any
/// component, and every good solve replaces them: the temperature's fallbacks apply the actor's
/// weights of the same update whenever the actor's solve was good. Under the per-component rule
/// they apply the temperature's own last good weights, which reach hundreds (issue 19 measured 532).
/// Measured here: 2,027 of 2,700 temperature solves fall back under the shared rule, all after a
/// good actor solve, and apply weights of at most 8.7 (the actor's); 2,088 under the per-component
/// rule, applying up to 470. The temperature's own good solves reach 435 under either rule.
#[test]
fn nash_fallbacks_apply_the_weights_shared_by_all_components() {
    let k = ToyConfig::default().num_tasks;
    let run = |nash_fallback: NashFallback| {
        let combine = CombineConfig { nash_fallback, ..CombineConfig::new(Method::Nash) };
        let (mut shared, mut largest, mut largest_on_fallback, mut solves, mut fallbacks) = (vec![1.0 / k as f64; k], 0.0f64, 0.0f64, 0, 0);
        let (mut after_good_actor, mut from_actor) = (0, 0);
        train_on(ToyConfig::default(), config(combine), 3000, |t, report| {
            for component in [&report.critic, &report.actor, &report.alpha] {
                if component.gram.is_none() || component.skipped.is_some() {
                    continue;
                }
                match component.fallback {
                    None => shared.clone_from(&component.weights),
                    Some(_) if nash_fallback == NashFallback::Shared => {
                        assert_eq!(component.weights, shared, "step {t}: the {} fallback applies the shared weights", component.component);
                    }
                    Some(_) => {}
                }
            }
            solves += 1;
            let most = report.alpha.weights.iter().fold(0.0f64, |a, &w| a.max(w));
            largest = largest.max(most);
            if report.alpha.fallback.is_some() {
                fallbacks += 1;
                largest_on_fallback = largest_on_fallback.max(most);
                if report.actor.fallback.is_none() {
                    after_good_actor += 1;
                    from_actor += usize::from(report.alpha.weights == report.actor.weights);
                }
            }
        });
        eprintln!("nash fallback {nash_fallback:?}: {fallbacks} of {solves} temperature solves fell back, {after_good_actor} after a good actor solve, {from_actor} of them applied the actor's weights; largest temperature weight {largest:.3}, {largest_on_fallback:.3} on a fallback");
        (fallbacks, after_good_actor, from_actor, largest_on_fallback)
    };
    let (fallbacks, after_good_actor, from_actor, largest) = run(NashFallback::Shared);
    assert!(fallbacks > 0, "the run should meet Pareto-stationary temperature gradients");
    assert_eq!(from_actor, after_good_actor, "a temperature fallback after a good actor solve applies the actor's weights");
    let (_, _, _, largest_own) = run(NashFallback::PerComponent);
    assert!(largest < largest_own, "the shared rule's temperature fallbacks apply smaller weights: {largest} vs {largest_own}");
}
