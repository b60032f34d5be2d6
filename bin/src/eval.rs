//! `mt10 eval`: the deterministic evaluation of one checkpoint, per task.
use crate::checkpoint;
use crate::evaluation::{evaluate, evaluation_env};
use crate::UsageError;
use agent::{Sac, SacConfig};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A checkpoint directory (seed-<s>/checkpoints/step-<n>) or a seed directory (its newest)
    #[arg(long, value_name = "PATH")]
    checkpoint: PathBuf,
    /// Episodes per task [default: the run's run.eval_episodes]
    #[arg(long)]
    episodes: Option<usize>,
    /// Env seed (for MetaWorld it picks the goals) [default: the checkpoint's seed]
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let checkpoint = checkpoint::open_path(&args.checkpoint).map_err(UsageError)?;
    let config = checkpoint.config().map_err(UsageError)?;
    let seed = args.seed.or_else(|| seed_of(&checkpoint.dir)).unwrap_or(0);
    let episodes = args.episodes.unwrap_or(config.run.eval_episodes);
    if episodes == 0 {
        return Err(UsageError(anyhow::anyhow!("--episodes must be at least 1")).into());
    }
    let mut env = evaluation_env(&config.env, seed)?;
    let spec = env.spec().clone();
    // Evaluation never samples the buffer: a batch-sized one spares the training-size allocation.
    let agent_config = SacConfig { replay_capacity: config.agent.batch_size, ..config.agent.clone() };
    let mut sac = Sac::new(agent_config, &spec, seed)?;
    checkpoint.load_agent(&mut sac, false)?;
    let row = evaluate(&mut sac, env.as_mut(), episodes, checkpoint.state.step)?;
    println!("{} at step {}, seed {seed}, {episodes} episode(s) per task", config.method_label(), row.step);
    println!("| task | success | return |\n|---|---:|---:|");
    for ((task, success), ret) in spec.task_names.iter().zip(&row.success).zip(&row.returns) {
        println!("| {task} | {success:.2} | {ret:.1} |");
    }
    println!("| mean | {:.3} | |", row.mean_success());
    Ok(())
}

/// The seed of `.../seed-<s>/checkpoints/step-<n>`.
fn seed_of(checkpoint_dir: &std::path::Path) -> Option<u64> {
    checkpoint_dir.ancestors().find_map(|dir| dir.file_name()?.to_str()?.strip_prefix("seed-")?.parse().ok())
}
