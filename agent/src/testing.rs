//! Small agents on synthetic data for unit tests.
use crate::bench::fill_with_synthetic_transitions;
use crate::{Architecture, DeviceChoice, Sac, SacConfig, Temperature};
use envs::EnvSpec;

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
        device: DeviceChoice::Cpu,
        ..SacConfig::mtrl()
    };
    let mut sac = Sac::new(adjust(config), &spec, seed).unwrap();
    fill_with_synthetic_transitions(&mut sac, 100, seed).unwrap();
    sac
}
