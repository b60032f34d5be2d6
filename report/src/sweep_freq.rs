//! The table of `mt10 bench freq` (the Nash-MTL paper's Table 5): per row the best success,
//! the runtime per episode and its ratio to the `ls` row, ms per update, the solver's share of
//! the wall time and the weight solves that fell back; and its plot, success against runtime
//! per episode, one point per row.
//!
//! Runtime per episode, as the paper counts it (seconds per episode of all tasks): a seed's
//! training wall time (`wall_time_s` of its `summary.json`: the whole training, random warm-up,
//! initial updates, evaluations and checkpoints included, summed over resumed sessions) over
//! its episodes, `run.steps / env.max_episode_steps`. The tasks step together, one vector step
//! and one update at a time, so an MT10 episode is 150 vector steps with their 150 updates.
use crate::plot::{plot_error, register_font};
use crate::stats::{iqm_with_ci, mean, sem, Estimate, ScoreMatrix, BOOTSTRAP};
use plotters::prelude::*;
use rundir::config::RunConfig;
use rundir::run_files::{read_metrics, read_summary, seed_dir, Summary, METRICS};
use solvers::Method;
use std::path::{Path, PathBuf};

/// What the `±` shows (the paper's Table 5 gives mean ± s.e.m.); [`interval`] computes it.
const INTERVAL: &str = "mean ± s.e.m. over seeds";

/// The center and half-width of a row's interval over its seeds.
fn interval(values: &[f64]) -> (f64, f64) {
    (mean(values), sem(values))
}

/// The IQM over seeds x tasks of each seed's best evaluation, with its 95% stratified-bootstrap
/// interval (as `mt10 report` computes it): the plot's success bars.
fn best_iqm(run_dir: &Path, seeds: impl Iterator<Item = u64>) -> anyhow::Result<Estimate> {
    let mut best = Vec::new();
    for seed in seeds {
        let (_, evaluations) = read_metrics(&seed_dir(run_dir, seed).join(METRICS))?;
        if let Some(row) = evaluations.iter().max_by(|a, b| a.mean_success().total_cmp(&b.mean_success())) {
            best.push(row.success.clone());
        }
    }
    Ok(iqm_with_ci(&ScoreMatrix::new(&best), &BOOTSTRAP))
}

struct FreqRow {
    name: String,
    method: Method,
    every: usize,
    seeds: usize,
    best_success: (f64, f64),
    best_iqm: Estimate,
    runtime_per_episode_s: (f64, f64),
    ms_per_update: f64,
    solver_time_share: f64,
    /// Weight solves that fell back, all components, per seed.
    fallbacks: f64,
}

impl FreqRow {
    fn new(name: &str, run_dir: &Path, config: &RunConfig) -> anyhow::Result<Self> {
        let summaries: Vec<Summary> = config.run.seeds.iter().map(|&s| read_summary(&seed_dir(run_dir, s))).filter_map(Result::transpose).collect::<anyhow::Result<_>>()?;
        let over_seeds = |value: &dyn Fn(&Summary) -> f64| summaries.iter().map(value).collect::<Vec<f64>>();
        let episode = config.episode_steps() as f64;
        Ok(Self {
            name: name.to_string(),
            method: config.agent.combine.combiner.method,
            every: config.agent.combine.update_weights_every,
            seeds: summaries.len(),
            best_success: interval(&over_seeds(&|s| s.best_success)),
            best_iqm: best_iqm(run_dir, summaries.iter().map(|s| s.seed))?,
            runtime_per_episode_s: interval(&over_seeds(&|s| s.wall_time_s * episode / s.steps.max(1) as f64)),
            ms_per_update: mean(&over_seeds(&|s| s.update_ms)),
            solver_time_share: mean(&over_seeds(&|s| s.solver_time_share)),
            fallbacks: mean(&over_seeds(&|s| s.fallbacks.values().sum::<u64>() as f64)),
        })
    }
}

/// Writes freq.md (also printed), freq.csv and freq.png into the sweep directory.
pub fn write(dir: &Path, rows: &[(String, PathBuf, RunConfig)]) -> anyhow::Result<()> {
    let table: Vec<FreqRow> = rows.iter().map(|(name, run_dir, config)| FreqRow::new(name, run_dir, config)).collect::<anyhow::Result<_>>()?;
    let ls = table.iter().find(|row| row.method == Method::Ls).map(|row| row.runtime_per_episode_s.0);
    let markdown = markdown(&table, ls, &rows[0].2);
    print!("{markdown}");
    std::fs::write(dir.join("freq.md"), &markdown)?;
    std::fs::write(dir.join("freq.csv"), csv(&table, ls))?;
    plot(&dir.join("freq.png"), &table)?;
    eprintln!("mt10: wrote freq.md, freq.csv and freq.png to {}", dir.display());
    Ok(())
}

fn ratio(runtime: f64, ls: Option<f64>) -> Option<f64> {
    ls.filter(|ls| *ls > 0.0).map(|ls| runtime / ls)
}

fn markdown(rows: &[FreqRow], ls: Option<f64>, config: &RunConfig) -> String {
    let mut text = format!(
        "Weight-update frequency: {} steps, episodes of {} steps; best success and runtime as {INTERVAL}, \
         and the best success's IQM over seeds x tasks with its 95% stratified-bootstrap interval\n\n\
         | row | k | seeds | best success | best, IQM [95% CI] | runtime per episode (s) | vs ls | ms/update | solver time | fallbacks |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        config.run.steps,
        config.episode_steps()
    );
    for row in rows {
        let vs_ls = ratio(row.runtime_per_episode_s.0, ls).map_or_else(|| "-".into(), |r| format!("{r:.2}x"));
        text.push_str(&format!(
            "| {} | {} | {} | {:.3} ± {:.3} | {} | {:.3} ± {:.3} | {vs_ls} | {:.2} | {:.1}% | {:.1} |\n",
            row.name,
            row.every,
            row.seeds,
            row.best_success.0,
            row.best_success.1,
            row.best_iqm,
            row.runtime_per_episode_s.0,
            row.runtime_per_episode_s.1,
            row.ms_per_update,
            100.0 * row.solver_time_share,
            row.fallbacks
        ));
    }
    text.push_str(
        "\nk: weights recomputed every k updates. Runtime per episode: each seed's training wall time (everything \
         included) over its episodes of all tasks (steps / episode length); vs ls: its ratio to the ls row. ms/update and \
         solver time (the combiner's solves' share of the wall time): mean over seeds. Fallbacks: weight solves per seed \
         that did not reach their target and applied the last good weights (all components).\n",
    );
    text
}

fn csv(rows: &[FreqRow], ls: Option<f64>) -> String {
    let mut text = String::from(
        "row,every,seeds,best_success_mean,best_success_sem,best_iqm,best_iqm_ci_low,best_iqm_ci_high,runtime_per_episode_s_mean,runtime_per_episode_s_sem,runtime_ratio_to_ls,\
         ms_per_update,solver_time_share,fallbacks_per_seed\n",
    );
    for row in rows {
        text.push_str(&format!(
            "\"{}\",{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            row.name,
            row.every,
            row.seeds,
            row.best_success.0,
            row.best_success.1,
            row.best_iqm.value,
            row.best_iqm.ci.map_or_else(String::new, |ci| ci.low.to_string()),
            row.best_iqm.ci.map_or_else(String::new, |ci| ci.high.to_string()),
            row.runtime_per_episode_s.0,
            row.runtime_per_episode_s.1,
            ratio(row.runtime_per_episode_s.0, ls).map_or_else(String::new, |r| r.to_string()),
            row.ms_per_update,
            row.solver_time_share,
            row.fallbacks
        ));
    }
    text
}

/// One point per row at (runtime per episode, IQM of the best success), with the runtime's
/// mean ± s.e.m. and the IQM's 95% bootstrap interval (none below 3 seeds) as bars.
fn plot(path: &Path, rows: &[FreqRow]) -> anyhow::Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (760, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let x_max = rows.iter().map(|r| r.runtime_per_episode_s.0 + r.runtime_per_episode_s.1).fold(0.0, f64::max).max(1e-6) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption("best success (IQM, 95% CI) against runtime per episode (mean ± s.e.m.)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..1.0)
        .map_err(plot_error)?;
    chart.configure_mesh().x_desc("runtime per episode of all tasks (s)").y_desc("best success, IQM").draw().map_err(plot_error)?;
    for (i, row) in rows.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let ((x, dx), y) = (row.runtime_per_episode_s, row.best_iqm.value);
        let (y0, y1) = row.best_iqm.ci.map_or((y, y), |ci| (ci.low, ci.high));
        let (x0, x1) = ((x - dx).max(0.0), x + dx);
        // The bars with short caps at their ends (in data units: 1% of each axis).
        let (cap_x, cap_y) = (0.01 * x_max, 0.01);
        let bars = [
            vec![(x, y0), (x, y1)],
            vec![(x - cap_x, y0), (x + cap_x, y0)],
            vec![(x - cap_x, y1), (x + cap_x, y1)],
            vec![(x0, y), (x1, y)],
            vec![(x0, y - cap_y), (x0, y + cap_y)],
            vec![(x1, y - cap_y), (x1, y + cap_y)],
        ];
        chart.draw_series(bars.into_iter().map(|bar| PathElement::new(bar, color.stroke_width(2)))).map_err(plot_error)?;
        chart
            .draw_series(std::iter::once(Circle::new((x, y), 5, color.filled())))
            .map_err(plot_error)?
            .label(&row.name)
            .legend(move |(px, py)| Circle::new((px + 10, py), 5, color.filled()));
    }
    // Slow rows with low success are the rarest: the legend goes there.
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}
