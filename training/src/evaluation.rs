//! The papers' evaluation: deterministic actions (`tanh(mean)`), success if the task's success
//! flag was set at any step of the episode, rates per task over the evaluation episodes; with a
//! [`VideoRecorder`], its episodes are filmed as they run (rendering changes nothing in them).
use crate::episodes::EpisodeTracker;
use rundir::run_files::MetricsRow;
use crate::video::VideoRecorder;
use agent::{ActionMode, Sac};
use envs::{build_env, EnvConfig, MetaWorldConfig, MultiTaskEnv, VectorStrategy};

/// Success rates and mean returns per task over `episodes` deterministic episodes of each task,
/// from a fresh env (see [`evaluation_env`]).
pub fn evaluate(sac: &mut Sac, env: &mut dyn MultiTaskEnv, episodes: usize, step: u64, mut video: Option<&mut VideoRecorder>) -> anyhow::Result<MetricsRow> {
    let k = env.spec().num_tasks();
    let mut obs = env.reset()?;
    let mut tracker = EpisodeTracker::new(k);
    let (mut done, mut successes, mut returns) = (vec![0usize; k], vec![0.0; k], vec![0.0; k]);
    while done.iter().any(|&n| n < episodes) {
        if let Some(video) = video.as_deref_mut().filter(|v| v.wants_frames()) {
            let frames = env.render(video.settings().size, &video.settings().camera, &video.tasks_recording())?;
            video.add_frames(&frames, &tracker)?;
        }
        let step = env.step(&sac.act(&obs, ActionMode::Deterministic)?)?;
        let ended = tracker.record(&step);
        if let Some(video) = video.as_deref_mut() {
            video.after_step(&step, &ended)?;
        }
        for episode in ended {
            if done[episode.task] < episodes {
                done[episode.task] += 1;
                successes[episode.task] += f64::from(u8::from(episode.success));
                returns[episode.task] += episode.return_;
            }
        }
        obs = step.obs;
    }
    let per_episode = |sums: Vec<f64>| sums.into_iter().map(|s| s / episodes as f64).collect();
    Ok(MetricsRow { step, wall_time_s: 0.0, success: per_episode(successes), returns: per_episode(returns) })
}

/// A new env with the training seed (for MetaWorld the seed picks the tasks' goals), so every
/// evaluation of a run sees the same episodes. Always MetaWorld's `sync` strategy: an evaluation
/// is short, and `async` would start K worker processes for each one.
pub fn evaluation_env(env: &EnvConfig, seed: u64) -> anyhow::Result<Box<dyn MultiTaskEnv>> {
    let config = match env {
        EnvConfig::MetaWorld(mw) => EnvConfig::MetaWorld(MetaWorldConfig { vector_strategy: VectorStrategy::Sync, ..mw.clone() }),
        toy => toy.clone(),
    };
    Ok(build_env(&config, seed)?)
}
