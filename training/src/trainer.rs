//! One seed's training, the papers' protocol: uniform random actions for the first
//! `random_steps` vector steps, then `initial_updates` updates at once, then `updates_per_step`
//! updates per vector step; a deterministic evaluation every `eval_every` steps (and at 0 and
//! the end).
//!
//! The env steps on the envs crate's worker thread while the learner updates: at each step the
//! learner picks actions, hands them over, runs its update, then collects the transitions, so
//! an update at step `t` sees the transitions of steps `< t` exactly as in the sequential loop.
use crate::episodes::{Episode, EpisodeTracker};
use crate::evaluation::{evaluate, evaluation_env};
use crate::device;
use crate::progress::{Pace, Progress, SeedState, SeedStatus};
use crate::video::{VideoRecorder, VideoSettings};
use agent::{ActionMode, Component, Plasticity, Sac, UpdateReport};
use envs::Worker;
use rundir::checkpoint::{self, TrainerState};
use rundir::config::{ensure_renderer, RunConfig};
use rundir::logbook::Logbook;
use rundir::mean::mean;
use rundir::run_files::{write_atomically, MetricsRow, Summary, WeightsRow, SUMMARY, VIDEOS};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub struct SeedJob<'a> {
    pub config: &'a RunConfig,
    pub seed: u64,
    pub dir: PathBuf,
    /// Set by Ctrl-C: checkpoint and return.
    pub stop: &'a AtomicBool,
    pub progress: &'a Progress,
    pub slot: usize,
}

pub enum SeedOutcome {
    Finished,
    Interrupted,
}

pub fn train_seed(job: &SeedJob) -> anyhow::Result<SeedOutcome> {
    let (config, run) = (job.config, &job.config.run);
    let resumed = checkpoint::latest(&job.dir)?;
    let mut state = resumed.as_ref().map(|c| c.state.clone()).unwrap_or_default();
    if run.video_every > 0 {
        // Before the envs start: MuJoCo reads its GL backend when it is first imported.
        ensure_renderer()?;
    }
    let (worker, mut obs) = Worker::spawn(config.env.clone(), job.seed)?;
    let spec = worker.spec().clone();
    // A checkpoint restores the agent's RNG, so the seed only matters for a fresh start.
    let mut sac = Sac::new(config.agent.clone(), &spec, job.seed)?;
    if let Some(checkpoint) = &resumed {
        checkpoint.load_agent(&mut sac, true)?;
    }
    let mut log = Logbook::open(&job.dir, &spec.task_names, state.step)?;
    let device = device::describe(config.agent.device).description;
    log.text("run/device", &device, state.step);
    let mut tracker = EpisodeTracker::new(spec.num_tasks());
    // MoCo's and DB-MTL's direction is not a combination of the step's task gradients: the
    // Gram cannot give its norm.
    let direction_from_rows = !config.agent.combine.effective_combiner().build(spec.num_tasks())?.needs().tracked;
    let mut window = Window::new(spec.num_tasks(), direction_from_rows);
    let session = Instant::now();
    let wall_before = state.wall_time_s;
    let status = |state: &TrainerState, log: &Logbook, pace: &Pace, label: SeedState| {
        let initial_updates_left = if state.step <= run.random_steps { run.initial_updates - state.initial_updates_done } else { 0 };
        let (steps_per_s, eta) = pace.status(session.elapsed().as_secs_f64(), state.step, initial_updates_left);
        let last_success = log.evaluations.last().map(|row| row.mean_success());
        SeedStatus { seed: job.seed, step: state.step, steps: run.steps, steps_per_s, eta, last_success, state: label }
    };
    let stepping = |state: &TrainerState| if state.step < run.random_steps { SeedState::RandomActions } else { SeedState::Running };
    // A checkpoint saved without its replay buffer: refill it (with the current policy, no
    // updates) before learning resumes.
    let mut refill = if state.step >= run.random_steps && sac.replay().is_empty() { run.random_steps } else { 0 };
    if state.step == 0 {
        for (network, count) in parameter_counts(&sac) {
            log.scalar(&format!("parameters/{network}"), count as f64, 0);
        }
        evaluate_now(&mut sac, job, &mut log, 0, 0.0)?;
    }
    let mut pace = Pace::new(run.steps, run.random_steps, run.initial_updates, run.updates_per_step);
    pace.enter(session.elapsed().as_secs_f64(), state.step, refill == 0 && state.step > run.random_steps);
    job.progress.update(job.slot, status(&state, &log, &pace, stepping(&state)), true);
    while state.step < run.steps {
        if job.stop.load(Ordering::SeqCst) {
            state.wall_time_s = wall_before + session.elapsed().as_secs_f64();
            checkpoint::save(&job.dir, config, &sac, &state)?;
            log.flush()?;
            job.progress.update(job.slot, status(&state, &log, &pace, SeedState::Interrupted), true);
            return Ok(SeedOutcome::Interrupted);
        }
        let learning = refill == 0 && state.step >= run.random_steps;
        let actions = if refill == 0 && !learning { sac.random_actions() } else { sac.act(&obs, ActionMode::Stochastic)? };
        worker.send_actions(actions.clone())?;
        let updates = match learning {
            false => 0,
            true if state.step == run.random_steps => {
                pace.enter(session.elapsed().as_secs_f64(), state.step, false);
                job.progress.update(job.slot, status(&state, &log, &pace, SeedState::InitialUpdates), true);
                run.initial_updates - state.initial_updates_done
            }
            true => run.updates_per_step,
        };
        // The step after these updates is logged: its Gram goes with it.
        if updates > 0 && run.log_conflicts_every > 0 && (state.step + 1).is_multiple_of(run.log_conflicts_every) {
            sac.measure_conflicts_next_update();
        }
        if updates > 0 && run.log_plasticity && (state.step + 1).is_multiple_of(run.log_every) {
            sac.measure_plasticity_next_update();
        }
        for _ in 0..updates {
            // The initial updates take minutes at MT10 scale: a stop must not wait for them.
            // Those done are counted, so a resumed seed does only the rest.
            if job.stop.load(Ordering::SeqCst) {
                break;
            }
            if state.step == run.random_steps {
                state.initial_updates_done += 1;
            }
            let report = sac.update()?;
            pace.update_timed(report.ms);
            state.update_ms_total += report.ms;
            state.solver_us_total += solver_us(&report);
            window.add_update(&report);
            if state.step == run.random_steps {
                // Minutes at MT10 scale: the line shows them going, and the first ones give the
                // time left.
                job.progress.update(job.slot, status(&state, &log, &pace, SeedState::InitialUpdates), false);
            }
        }
        if job.stop.load(Ordering::SeqCst) {
            // Checkpointed at the top of the loop; this step is taken again after a resume.
            continue;
        }
        let waiting = Instant::now();
        let transitions = worker.recv_step()?;
        window.env_wait_ms += waiting.elapsed().as_secs_f64() * 1e3;
        sac.observe(&obs, &actions, &transitions)?;
        window.episodes.extend(tracker.record(&transitions));
        obs = transitions.obs;
        if refill > 0 {
            refill -= 1;
            state.refill_steps += 1;
            if refill == 0 {
                pace.enter(session.elapsed().as_secs_f64(), state.step, state.step > run.random_steps);
            }
            continue;
        }
        state.step += 1;
        window.steps += 1;
        if state.step == run.random_steps + 1 {
            pace.enter(session.elapsed().as_secs_f64(), state.step, true);
        }
        if state.step % run.log_every == 0 {
            window.write(&mut log, state.step)?;
            for (component, count) in sac.fallbacks() {
                log.scalar(&format!("combiner/{component}/fallbacks"), count as f64, state.step);
            }
            if let Some(scales) = sac.reward_scales() {
                log.task_scalars("train/reward_scale", &scales, state.step);
            }
        }
        let evaluating = state.step % run.eval_every == 0 || state.step == run.steps;
        if evaluating {
            evaluate_now(&mut sac, job, &mut log, state.step, wall_before + session.elapsed().as_secs_f64())?;
        }
        if state.step % run.checkpoint_every == 0 || state.step == run.steps {
            state.wall_time_s = wall_before + session.elapsed().as_secs_f64();
            checkpoint::save(&job.dir, config, &sac, &state)?;
        }
        job.progress.update(job.slot, status(&state, &log, &pace, stepping(&state)), evaluating);
    }
    state.wall_time_s = wall_before + session.elapsed().as_secs_f64();
    let summary = summarize(job, &sac, &state, &log, device);
    write_atomically(&job.dir.join(SUMMARY), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    log.flush()?;
    job.progress.update(job.slot, status(&state, &log, &pace, SeedState::Done), true);
    Ok(SeedOutcome::Finished)
}

fn evaluate_now(sac: &mut Sac, job: &SeedJob, log: &mut Logbook, step: u64, wall_time_s: f64) -> anyhow::Result<()> {
    let run = &job.config.run;
    let mut env = evaluation_env(&job.config.env, job.seed)?;
    let tasks = env.spec().task_names.clone();
    let mut video = match job.config.films(step) {
        true => Some(VideoRecorder::new(VideoSettings::default(), job.dir.join(VIDEOS).join(format!("step-{step}")), &tasks, vec![true; tasks.len()], 1)?),
        false => None,
    };
    let row = evaluate(sac, env.as_mut(), run.eval_episodes, step, video.as_mut())?;
    for episode in video.iter().flat_map(|v| &v.recorded) {
        let gif = std::fs::read(&episode.path)?;
        log.gif(&format!("video/{}", tasks[episode.task]), gif, VideoSettings::default().size, step);
    }
    log.evaluation(MetricsRow { wall_time_s, ..row })
}

fn solver_us(report: &UpdateReport) -> f64 {
    report.critic.solver_us + report.actor.solver_us + report.alpha.solver_us
}

fn summarize(job: &SeedJob, sac: &Sac, state: &TrainerState, log: &Logbook, device: String) -> Summary {
    let best = log.evaluations.iter().max_by(|a, b| a.mean_success().total_cmp(&b.mean_success()));
    let updates = sac.updates();
    Summary {
        seed: job.seed,
        method: job.config.method_label(),
        steps: state.step,
        best_success: best.map_or(0.0, |row| row.mean_success()),
        best_step: best.map_or(0, |row| row.step),
        final_success: log.evaluations.last().map_or(0.0, |row| row.mean_success()),
        wall_time_s: state.wall_time_s,
        steps_per_s: state.step as f64 / state.wall_time_s.max(1e-9),
        updates,
        update_ms: state.update_ms_total / updates.max(1) as f64,
        solver_time_share: state.solver_us_total * 1e-6 / state.wall_time_s.max(1e-9),
        skipped_updates: sac.skipped_updates().iter().map(|(_, n)| n).sum(),
        fallbacks: sac.fallbacks().iter().map(|(component, n)| (component.to_string(), *n)).collect(),
        refill_steps: state.refill_steps,
        device,
        parameters: parameter_counts(sac).into_iter().map(|(network, count)| (network.to_string(), count)).collect(),
    }
}

fn parameter_counts(sac: &Sac) -> [(&'static str, u64); 2] {
    let counts = sac.parameter_counts();
    [("actor", counts.actor as u64), ("critic", counts.critic as u64)]
}

/// Training scalars accumulated over one log interval.
struct Window {
    started: Instant,
    steps: u64,
    updates: u64,
    update_ms: f64,
    solver_us: f64,
    env_wait_ms: f64,
    skipped: u64,
    /// Per component (critic, actor, alpha): summed mean task loss and weights, the last Gram
    /// with the weights of the same update.
    losses: [f64; 3],
    weights: [Vec<f64>; 3],
    grams: [Option<(Vec<f64>, Vec<f64>)>; 3],
    direction_from_rows: bool,
    alpha: f64,
    episodes: Vec<Episode>,
    /// The last plasticity diagnostics reported (`run.log_plasticity`).
    plasticity: Option<Plasticity>,
}

impl Window {
    fn new(num_tasks: usize, direction_from_rows: bool) -> Self {
        Self {
            started: Instant::now(),
            steps: 0,
            updates: 0,
            update_ms: 0.0,
            solver_us: 0.0,
            env_wait_ms: 0.0,
            skipped: 0,
            losses: [0.0; 3],
            weights: std::array::from_fn(|_| vec![0.0; num_tasks]),
            grams: Default::default(),
            direction_from_rows,
            alpha: 0.0,
            episodes: Vec::new(),
            plasticity: None,
        }
    }

    fn add_update(&mut self, report: &UpdateReport) {
        self.updates += 1;
        self.update_ms += report.ms;
        self.solver_us += solver_us(report);
        self.alpha += mean(&report.alpha_values);
        for (i, component) in [&report.critic, &report.actor, &report.alpha].into_iter().enumerate() {
            self.losses[i] += mean(&component.task_losses);
            self.weights[i].iter_mut().zip(&component.weights).for_each(|(sum, w)| *sum += w);
            if let Some(gram) = &component.gram {
                self.grams[i] = Some((gram.clone(), component.weights.clone()));
            }
            self.skipped += u64::from(component.skipped.is_some());
        }
        if let Some(plasticity) = &report.plasticity {
            self.plasticity = Some(plasticity.clone());
        }
    }

    fn write(&mut self, log: &mut Logbook, step: u64) -> anyhow::Result<()> {
        let seconds = self.started.elapsed().as_secs_f64();
        log.scalar("perf/steps_per_s", self.steps as f64 / seconds.max(1e-9), step);
        log.scalar("time/env_wait_ms", self.env_wait_ms / self.steps.max(1) as f64, step);
        if self.updates > 0 {
            let n = self.updates as f64;
            log.scalar("time/update_ms", self.update_ms / n, step);
            log.scalar("time/solver_us", self.solver_us / n, step);
            log.scalar("alpha", self.alpha / n, step);
            log.scalar("train/skipped_updates", self.skipped as f64, step);
            for (i, component) in Component::ALL.into_iter().enumerate() {
                log.scalar(&format!("loss/{component}"), self.losses[i] / n, step);
                let weights = self.weights[i].iter().map(|w| w / n).collect();
                log.weights(&WeightsRow { step, component: component.to_string(), weights })?;
                if let Some((gram, weights)) = &self.grams[i] {
                    let (cond, conflicts) = gram_statistics(gram);
                    log.scalar(&format!("gram/{component}/cond"), cond, step);
                    log.scalar(&format!("gram/{component}/conflicts"), conflicts, step);
                    let conflict = Conflict::of(gram, weights);
                    log.scalar(&format!("gram/{component}/cos_mean"), conflict.cos_mean, step);
                    log.scalar(&format!("gram/{component}/cos_min"), conflict.cos_min, step);
                    log.task_scalars(&format!("gram/{component}/norm"), &conflict.norms, step);
                    if self.direction_from_rows {
                        log.scalar(&format!("gram/{component}/direction_norm_ratio"), conflict.direction_norm_ratio, step);
                    }
                    log.image(&format!("gram/{component}/cosine"), &cosine_heat_map(&conflict.cosines)?, step);
                    let k = conflict.norms.len();
                    let pairs = (0..k).flat_map(|i| (i + 1..k).map(move |j| i * k + j)).map(|ij| conflict.cosines[ij]);
                    let values = [conflicts, conflict.cos_mean, conflict.cos_min].into_iter().chain(pairs).collect();
                    log.conflicts(&WeightsRow { step, component: component.to_string(), weights: values })?;
                }
            }
        }
        for (network, diagnostics) in self.plasticity.iter().flat_map(Plasticity::networks) {
            log.scalar(&format!("plasticity/{network}/dormant_percent"), diagnostics.dormant_percent, step);
            log.scalar(&format!("plasticity/{network}/srank"), diagnostics.srank, step);
        }
        if !self.episodes.is_empty() {
            let successes: Vec<f64> = self.episodes.iter().map(|e| f64::from(u8::from(e.success))).collect();
            log.scalar("train/success", mean(&successes), step);
            let k = self.weights[0].len();
            let mut returns = vec![Vec::new(); k];
            self.episodes.iter().for_each(|e| returns[e.task].push(e.return_));
            let means: Vec<f64> = returns.iter().map(|r| if r.is_empty() { f64::NAN } else { mean(r) }).collect();
            log.task_scalars("train/episode_reward", &means, step);
        }
        *self = Self::new(self.weights[0].len(), self.direction_from_rows);
        log.flush()
    }
}

/// The condition number of a (row-major, symmetric) Gram matrix and the share of its
/// off-diagonal entries that are negative (pairs of conflicting task gradients).
fn gram_statistics(gram: &[f64]) -> (f64, f64) {
    let k = (gram.len() as f64).sqrt() as usize;
    let eigenvalues = nalgebra::DMatrix::from_row_slice(k, k, gram).symmetric_eigenvalues();
    let (max, min) = (eigenvalues.max(), eigenvalues.min().max(0.0));
    let off_diagonal = k * k - k;
    let negative = (0..k * k).filter(|&i| i / k != i % k && gram[i] < 0.0).count();
    (max / min, negative as f64 / off_diagonal.max(1) as f64)
}

/// What a Gram says about conflict: the pairwise cosines of the task gradients (row-major), their
/// mean and least over the pairs `i < j`, each gradient's norm, and `||sum_i w_i g_i||` over the
/// mean norm. A zero gradient has cosine 0 with every other.
struct Conflict {
    cosines: Vec<f64>,
    cos_mean: f64,
    cos_min: f64,
    norms: Vec<f64>,
    direction_norm_ratio: f64,
}

impl Conflict {
    fn of(gram: &[f64], weights: &[f64]) -> Self {
        let k = weights.len();
        let norms: Vec<f64> = (0..k).map(|i| gram[i * k + i].max(0.0).sqrt()).collect();
        let cosines: Vec<f64> = (0..k * k)
            .map(|ij| {
                let (i, j) = (ij / k, ij % k);
                let scale = norms[i] * norms[j];
                if scale > 0.0 { (gram[ij] / scale).clamp(-1.0, 1.0) } else { 0.0 }
            })
            .collect();
        let pairs: Vec<f64> = (0..k).flat_map(|i| (i + 1..k).map(move |j| (i, j))).map(|(i, j)| cosines[i * k + j]).collect();
        let squared: f64 = (0..k * k).map(|ij| weights[ij / k] * gram[ij] * weights[ij % k]).sum();
        let mean_norm = mean(&norms);
        Self {
            cos_mean: if pairs.is_empty() { 1.0 } else { mean(&pairs) },
            cos_min: pairs.iter().copied().fold(1.0, f64::min),
            direction_norm_ratio: if mean_norm > 0.0 { squared.max(0.0).sqrt() / mean_norm } else { 0.0 },
            cosines,
            norms,
        }
    }
}

/// A `K x K` cosine matrix as a PNG, `CELL` pixels a task pair: red for -1, white for 0, blue for
/// +1 (task `i`'s row at the top, as the matrix is printed).
fn cosine_heat_map(cosines: &[f64]) -> anyhow::Result<(Vec<u8>, u32)> {
    const CELL: u32 = 16;
    let k = (cosines.len() as f64).sqrt() as u32;
    let colour = |c: f64| {
        let fade = |x: f64| (255.0 * (1.0 - x.abs())).round() as u8;
        if c < 0.0 { [255, fade(c), fade(c)] } else { [fade(c), fade(c), 255] }
    };
    let image = image::RgbImage::from_fn(k * CELL, k * CELL, |x, y| image::Rgb(colour(cosines[((y / CELL) * k + x / CELL) as usize])));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(image).write_to(&mut std::io::Cursor::new(&mut png), image::ImageOutputFormat::Png)?;
    Ok((png, k * CELL))
}

#[cfg(test)]
mod tests {
    use super::{cosine_heat_map, gram_statistics, Conflict};

    #[test]
    fn gram_statistics_of_a_known_matrix() {
        // Eigenvalues 3 and 1; one conflicting pair out of one.
        let (cond, conflicts) = gram_statistics(&[2.0, -1.0, -1.0, 2.0]);
        assert!((cond - 3.0).abs() < 1e-12, "{cond}");
        assert_eq!(conflicts, 1.0);
        let (_, conflicts) = gram_statistics(&[1.0, 0.5, 0.5, 1.0]);
        assert_eq!(conflicts, 0.0);
    }

    #[test]
    fn conflict_of_a_known_gram() {
        // g_0 = (1, 0), g_1 = (-1, 1), g_2 = 0; d = g_0 + g_1 = (0, 1).
        let gram = [1.0, -1.0, 0.0, -1.0, 2.0, 0.0, 0.0, 0.0, 0.0];
        let conflict = Conflict::of(&gram, &[1.0, 1.0, 0.0]);
        let c = -1.0 / 2f64.sqrt();
        assert_eq!(conflict.norms, [1.0, 2f64.sqrt(), 0.0]);
        assert!((conflict.cosines[1] - c).abs() < 1e-15 && conflict.cosines[2] == 0.0 && conflict.cosines[0] == 1.0);
        assert!((conflict.cos_min - c).abs() < 1e-15 && (conflict.cos_mean - c / 3.0).abs() < 1e-15);
        assert!((conflict.direction_norm_ratio - 1.0 / ((1.0 + 2f64.sqrt()) / 3.0)).abs() < 1e-12);
        let (png, side) = cosine_heat_map(&conflict.cosines).unwrap();
        assert_eq!(side, 48);
        let image = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(image.get_pixel(0, 0).0, [0, 0, 255], "cosine 1 is blue");
        assert_eq!(image.get_pixel(40, 0).0, [255, 255, 255], "cosine 0 is white");
    }
}
