//! Small agents on synthetic data for unit tests, on the device `MT10_TEST_DEVICE` names (`cpu`,
//! the default, or `cuda`): the gradient, update, checkpoint and acting tests run on a GPU with
//! `MT10_TEST_DEVICE=cuda cargo test --release -p agent --lib`.
use crate::bench::fill_with_synthetic_transitions;
use crate::{Architecture, DeviceChoice, Sac, SacConfig, Temperature};
use envs::EnvSpec;

/// The device of the tests; an unknown name fails them all.
pub(crate) fn test_device() -> DeviceChoice {
    match std::env::var("MT10_TEST_DEVICE").as_deref() {
        Err(_) | Ok("cpu") => DeviceChoice::Cpu,
        Ok("cuda") => DeviceChoice::Cuda,
        Ok(other) => panic!("MT10_TEST_DEVICE={other}: expected cpu or cuda"),
    }
}

/// [`test_device`] as libtorch's device; fails the test when it is not there.
pub(crate) fn tch_device() -> tch::Device {
    test_device().resolve().expect("the device MT10_TEST_DEVICE names")
}

/// Three tasks, 5-dim observations, 2-dim actions, 32x32 networks, 100 vector steps of random
/// transitions in the replay buffer; `adjust` changes the configuration further.
pub(crate) fn small_sac(architecture: Architecture, temperature: Temperature, seed: u64, adjust: impl Fn(SacConfig) -> SacConfig) -> Sac {
    let spec = EnvSpec { task_names: ["a", "b", "c"].map(String::from).to_vec(), obs_dim: 5, action_dim: 2, max_episode_steps: 10 };
    let config = SacConfig {
        architecture,
        temperature,
        hidden: vec![32, 32],
        batch_size: 45,
        replay_capacity: 600,
        device: test_device(),
        ..SacConfig::mtrl()
    };
    let mut sac = Sac::new(adjust(config), &spec, seed).unwrap();
    fill_with_synthetic_transitions(&mut sac, 100, seed).unwrap();
    sac
}
