//! A short MT-SAC run on MetaWorld's reach task: the learner runs end to end on the real
//! environment, with finite losses and success flags coming through.
#![cfg(feature = "metaworld")]
use agent::{ActionMode, DeviceChoice, Sac, SacConfig};
use envs::{build_env, EnvConfig, Preset};

#[test]
fn sac_trains_on_metaworld_reach_end_to_end() {
    // libtorch's OpenMP pool collapses (10-100x slower updates, measured here) when other
    // processes hold the cores; one thread keeps this small network's updates predictable.
    tch::set_num_threads(1);
    let env_config = EnvConfig::MetaWorld(envs::MetaWorldConfig { tasks: vec!["reach".into()], ..Preset::Mtrl.config() });
    let mut env = build_env(&env_config, 3).unwrap();
    let spec = env.spec().clone();
    assert_eq!((spec.num_tasks(), spec.obs_dim, spec.action_dim), (1, 39, 4));
    let config = SacConfig { hidden: vec![64, 64], batch_size: 128, replay_capacity: 10_000, device: DeviceChoice::Cpu, ..SacConfig::mtrl() };
    let mut sac = Sac::new(config, &spec, 3).unwrap();
    let (warmup, steps) = (500, 3000);
    let mut obs = env.reset().unwrap();
    let (mut episodes, mut successful_episodes, mut succeeded) = (0, 0, false);
    for t in 0..steps {
        let actions = if t < warmup { sac.random_actions() } else { sac.act(&obs, ActionMode::Stochastic).unwrap() };
        assert!(actions.iter().all(|a| a.is_finite() && (-1.0..=1.0).contains(a)));
        let step = env.step(&actions).unwrap();
        sac.observe(&obs, &actions, &step).unwrap();
        succeeded |= step.success[0];
        if step.truncated[0] || step.terminated[0] {
            episodes += 1;
            successful_episodes += usize::from(succeeded);
            succeeded = false;
        }
        obs = step.obs;
        if t >= warmup {
            let report = sac.update().unwrap();
            for component in [&report.critic, &report.actor, &report.alpha] {
                assert!(component.skipped.is_none(), "{} update skipped at step {t}", component.component);
                assert!(component.task_losses.iter().all(|l| l.is_finite()));
            }
        }
    }
    assert_eq!(episodes, steps / spec.max_episode_steps, "150-step episodes, truncated");
    eprintln!("reach: {successful_episodes} of {episodes} training episodes succeeded, alpha {:?}", sac.alpha().unwrap());
}
