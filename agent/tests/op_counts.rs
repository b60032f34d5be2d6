//! The ops and host syncs of an update and of an acting step, pinned for a small configuration
//! (see `agent::counting` for what counts): a change that adds launches or waits to the update
//! fails here with the new counts. Alone in its test binary: the op count is process-wide.
use agent::counting::{count_ops, host_syncs};
use agent::{ActionMode, CombineConfig, DeviceChoice, Sac, SacConfig};
use envs::{EnvSpec, VecStep};
use solvers::Method;

/// Three tasks, 5-dim observations, 2-dim actions, 32x32 networks, batch 45, otherwise the
/// `mtrl` protocol (uniform sampling: uneven task counts), with 100 vector steps of transitions.
fn small_sac(method: Method) -> Sac {
    let spec = EnvSpec { task_names: ["a", "b", "c"].map(String::from).to_vec(), obs_dim: 5, action_dim: 2, max_episode_steps: 10 };
    let config = SacConfig {
        hidden: vec![32, 32],
        batch_size: 45,
        replay_capacity: 600,
        device: DeviceChoice::Cpu,
        combine: CombineConfig::new(method),
        ..SacConfig::mtrl()
    };
    let mut sac = Sac::new(config, &spec, 1).unwrap();
    for step in 0..100 {
        let obs: Vec<f32> = (0..15).map(|i| ((step * 15 + i) as f32 * 0.37).sin()).collect();
        let actions = sac.random_actions();
        let transition = VecStep {
            obs: obs.clone(),
            next_obs: obs.iter().map(|x| -x).collect(),
            rewards: vec![1.0, 0.5, 0.0],
            terminated: vec![step % 7 == 0, false, false],
            truncated: vec![false; 3],
            success: vec![false; 3],
        };
        sac.observe(&obs, &actions, &transition).unwrap();
    }
    sac
}

/// (ops, host syncs) of `f`.
fn counts<T>(f: impl FnOnce() -> T) -> (u64, u64) {
    let before = host_syncs();
    let (_, ops) = count_ops(f);
    (ops, host_syncs() - before)
}

#[test]
fn an_update_and_an_acting_step_run_the_pinned_numbers_of_ops_and_host_syncs() {
    let mut measured = Vec::new();
    for method in [Method::Ls, Method::FairGrad] {
        let mut sac = small_sac(method);
        sac.update().unwrap();
        measured.push((format!("{method} update"), counts(|| sac.update().unwrap())));
    }
    let mut sac = small_sac(Method::Ls);
    let obs = vec![0.1; 15];
    sac.act(&obs, ActionMode::Stochastic).unwrap();
    measured.push(("act".to_string(), counts(|| sac.act(&obs, ActionMode::Stochastic).unwrap())));
    // ls: the batch with its layout up, one read-back at the end. fairgrad (here on the shared
    // temperature too): one more per component for its Gram matrix.
    let pinned = [("ls update", (408, 2)), ("fairgrad update", (488, 4)), ("act", (39, 2))];
    for ((name, got), (_, expected)) in measured.iter().zip(pinned) {
        assert_eq!(*got, expected, "{name}: (ops, host syncs) changed; all: {measured:?}");
    }
}
