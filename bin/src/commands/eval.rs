//! `mt10 eval`: the deterministic evaluation of one checkpoint, per task; with `--render`, every
//! episode filmed as an animated GIF per task, and a contact sheet.
use agent::{Sac, SacConfig};
use anyhow::anyhow;
use envs::EnvError;
use rundir::checkpoint::{self, Checkpoint};
use rundir::config::ensure_renderer;
use rundir::UsageError;
use std::path::PathBuf;
use training::evaluation::{evaluate, evaluation_env};
use training::video::{VideoRecorder, VideoSettings};
use training::video_sheet::write_contact_sheet;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A run directory: evaluates the newest checkpoint of its first seed (see --seed, --step)
    #[arg(value_name = "RUN_DIR", conflicts_with = "checkpoint", required_unless_present = "checkpoint")]
    run_dir: Option<PathBuf>,
    /// A checkpoint directory (seed-<s>/checkpoints/step-<n>) or a seed directory (its newest)
    #[arg(long, value_name = "PATH")]
    checkpoint: Option<PathBuf>,
    /// Episodes per task [default: the run's run.eval_episodes]
    #[arg(long)]
    episodes: Option<usize>,
    /// The seed: with RUN_DIR, whose checkpoint [default: the run's first]; always the env seed,
    /// which picks MetaWorld's goals [default: the checkpoint's seed, the goals it trained on]
    #[arg(long)]
    seed: Option<u64>,
    /// With RUN_DIR: the checkpoint of this step [default: the newest]
    #[arg(long, requires = "run_dir")]
    step: Option<u64>,
    /// Film every episode: one animated GIF per task and episode, and a contact sheet, in --out
    #[arg(long, requires = "out")]
    render: bool,
    /// Frame width and height in pixels, with --render
    #[arg(long, default_value_t = 240, value_parser = clap::value_parser!(u16).range(32..=1024), requires = "render")]
    size: u16,
    /// MuJoCo camera, with --render (Meta-World's: topview, corner, corner2, corner3, corner4, behindGripper, gripperPOV)
    #[arg(long, default_value = "corner", requires = "render")]
    camera: String,
    /// Film (and report) only these tasks, e.g. reach,door-open
    #[arg(long, value_delimiter = ',')]
    tasks: Option<Vec<String>>,
    /// Where --render writes <task>-<episode>.gif and contact-sheet.png
    #[arg(long, value_name = "DIR", requires = "render")]
    out: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let (checkpoint, seed) = open_checkpoint(args).map_err(UsageError)?;
    let config = checkpoint.config().map_err(UsageError)?;
    let episodes = args.episodes.unwrap_or(config.run.eval_episodes);
    if episodes == 0 {
        return Err(UsageError(anyhow!("--episodes must be at least 1")).into());
    }
    let names = config.task_names().map_err(UsageError)?;
    let selected: Vec<bool> = match &args.tasks {
        None => vec![true; names.len()],
        Some(tasks) => {
            if let Some(unknown) = tasks.iter().find(|t| !names.contains(t)) {
                return Err(UsageError(anyhow!("--tasks: `{unknown}` is not a task of this run ({})", names.join(", "))).into());
            }
            names.iter().map(|name| tasks.contains(name)).collect()
        }
    };
    if args.render {
        // Before the envs start: MuJoCo reads its GL backend when it is first imported. Like an
        // unavailable `--device cuda`, a machine that cannot render is the user's to fix.
        ensure_renderer().map_err(UsageError)?;
    }
    let mut env = evaluation_env(&config.env, seed)?;
    let spec = env.spec().clone();
    // Evaluation never samples the buffer: a batch-sized one spares the training-size allocation.
    let agent_config = SacConfig { replay_capacity: config.agent.batch_size, ..config.agent.clone() };
    let mut sac = Sac::new(agent_config, &spec, seed)?;
    checkpoint.load_agent(&mut sac, false)?;
    let step = checkpoint.state.step;
    let mut video = match &args.out {
        Some(out) if args.render => {
            let settings = VideoSettings { size: usize::from(args.size), camera: args.camera.clone() };
            Some(VideoRecorder::new(settings, out.clone(), &spec.task_names, selected.clone(), episodes)?)
        }
        _ => None,
    };
    let row = evaluate(&mut sac, env.as_mut(), episodes, step, video.as_mut()).map_err(camera_is_usage)?;
    let title = format!("{} at step {step}, seed {seed}", config.method_label());
    println!("{title}, {episodes} episode(s) per task");
    println!("| task | success | return |\n|---|---:|---:|");
    let rows = spec.task_names.iter().zip(&row.success).zip(&row.returns).zip(&selected);
    for (((task, success), ret), _) in rows.filter(|(_, &chosen)| chosen) {
        println!("| {task} | {success:.2} | {ret:.1} |");
    }
    println!("| mean | {:.3} | |", row.mean_success());
    if let (Some(video), Some(out)) = (&video, &args.out) {
        let sheet = out.join("contact-sheet.png");
        write_contact_sheet(&sheet, &title, &video.tiles(), usize::from(args.size))?;
        println!("\n{} videos and {} in {}", video.recorded.len(), sheet.file_name().and_then(|n| n.to_str()).unwrap_or_default(), out.display());
    }
    Ok(())
}

/// The checkpoint to evaluate, and the env seed.
fn open_checkpoint(args: &Args) -> anyhow::Result<(Checkpoint, u64)> {
    let Some(run_dir) = &args.run_dir else {
        let path = args.checkpoint.as_ref().expect("clap requires RUN_DIR or --checkpoint");
        let checkpoint = checkpoint::open_path(path)?;
        let seed = args.seed.or_else(|| checkpoint::seed_of(&checkpoint.dir)).unwrap_or(0);
        return Ok((checkpoint, seed));
    };
    checkpoint::open_in_run(run_dir, args.seed, args.step)
}

/// An unknown `--camera` is found at the first frame; it is the user's to fix.
fn camera_is_usage(error: anyhow::Error) -> anyhow::Error {
    match error.downcast_ref::<EnvError>() {
        Some(EnvError::UnknownCamera { .. }) => UsageError(error).into(),
        _ => error,
    }
}
