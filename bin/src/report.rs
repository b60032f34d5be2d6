//! `mt10 report`: the papers' table from run directories. Seeds are grouped by the run's name,
//! or else by method and hyper-parameters; per seed the reported number is the best mean success
//! over its evaluations, and over seeds its mean +- standard error.
use crate::plot::{self, Panel, Series};
use crate::run_files::{read_config, read_metrics, read_weights, seed_dir, MetricsRow, WeightsRow, METRICS, WEIGHTS};
use crate::stats::{mean, sem};
use crate::UsageError;
use agent::Component;
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run directories (written by `mt10 train`)
    #[arg(required = true, value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// Where report.md, report.csv and the PNG plots go
    #[arg(long, default_value = "report", value_name = "DIR")]
    out: PathBuf,
}

struct SeedResult {
    evaluations: Vec<MetricsRow>,
    weights: Vec<WeightsRow>,
    /// mtrl evaluates only at multiples of this (see [`crate::config::RunConfig::mtrl_eval_cadence`]).
    mtrl_cadence: u64,
}

impl SeedResult {
    fn best(&self) -> &MetricsRow {
        self.evaluations.iter().max_by(|a, b| a.mean_success().total_cmp(&b.mean_success())).expect("seeds have evaluations")
    }

    /// The best mean success over the evaluations mtrl would have made (step 0 is one).
    fn best_at_mtrl_cadence(&self) -> f64 {
        self.evaluations.iter().filter(|row| row.step % self.mtrl_cadence == 0).map(MetricsRow::mean_success).fold(0.0, f64::max)
    }

    fn last(&self) -> &MetricsRow {
        self.evaluations.last().expect("seeds have evaluations")
    }

    /// Each task's share of successful evaluations over the second half of the run: with one
    /// evaluation episode per task the best evaluation is a lucky draw, this is not.
    fn second_half_task_success(&self) -> Vec<f64> {
        let half: Vec<&MetricsRow> = self.evaluations.iter().filter(|row| 2 * row.step >= self.last().step).collect();
        (0..self.last().success.len()).map(|task| mean(&half.iter().map(|row| row.success[task]).collect::<Vec<_>>())).collect()
    }
}

struct Group {
    label: String,
    tasks: Vec<String>,
    seeds: Vec<SeedResult>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    generate(&args.runs, &args.out)
}

/// The table (printed, and as report.md and report.csv) and the plots of `runs`, into `out`.
pub fn generate(runs: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let groups = load(runs).map_err(UsageError)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let markdown = markdown(&groups);
    print!("{markdown}");
    std::fs::write(out.join("report.md"), &markdown)?;
    std::fs::write(out.join("report.csv"), csv(&groups))?;
    plot_success(&out.join("success.png"), &groups)?;
    for group in &groups {
        plot_weights(&out.join(format!("weights-{}.png", file_name(&group.label))), group)?;
    }
    eprintln!("mt10: wrote report.md, report.csv, success.png and weights-*.png to {}", out.display());
    Ok(())
}

fn load(runs: &[PathBuf]) -> anyhow::Result<Vec<Group>> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for run in runs {
        let config = read_config(run)?;
        let label = config.run.name.clone().unwrap_or_else(|| config.method_label());
        for &seed in &config.run.seeds {
            let dir = seed_dir(run, seed);
            if !dir.join(METRICS).exists() {
                continue;
            }
            let (tasks, evaluations) = read_metrics(&dir.join(METRICS))?;
            if evaluations.is_empty() {
                continue;
            }
            let weights = if dir.join(WEIGHTS).exists() { read_weights(&dir.join(WEIGHTS))? } else { Vec::new() };
            let group = groups.entry(label.clone()).or_insert_with(|| Group { label: label.clone(), tasks: tasks.clone(), seeds: Vec::new() });
            if group.tasks != tasks {
                bail!("{}: its tasks differ from those of other `{label}` runs; give the runs different --name", dir.display());
            }
            group.seeds.push(SeedResult { evaluations, weights, mtrl_cadence: config.mtrl_eval_cadence() });
        }
    }
    if groups.is_empty() {
        bail!("no evaluations found in {}", runs.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    Ok(groups.into_values().collect())
}

fn per_seed(group: &Group, value: impl Fn(&SeedResult) -> f64) -> Vec<f64> {
    group.seeds.iter().map(value).collect()
}

/// Mean and s.e.m. over seeds of the best success, the best at the mtrl cadence, the final
/// success and the mean success over the second half.
fn headline(group: &Group) -> [(f64, f64); 4] {
    [
        per_seed(group, |s| s.best().mean_success()),
        per_seed(group, SeedResult::best_at_mtrl_cadence),
        per_seed(group, |s| s.last().mean_success()),
        per_seed(group, |s| mean(&s.second_half_task_success())),
    ]
    .map(|values| (mean(&values), sem(&values)))
}

/// Each task's success at each seed's best evaluation, averaged over seeds.
fn task_success(group: &Group) -> Vec<f64> {
    (0..group.tasks.len()).map(|task| mean(&per_seed(group, |s| s.best().success[task]))).collect()
}

/// Each task's share of successful evaluations over the second half, averaged over seeds.
fn second_half_task_success(group: &Group) -> Vec<f64> {
    let per_seed: Vec<Vec<f64>> = group.seeds.iter().map(SeedResult::second_half_task_success).collect();
    (0..group.tasks.len()).map(|task| mean(&per_seed.iter().map(|s| s[task]).collect::<Vec<_>>())).collect()
}

fn markdown(groups: &[Group]) -> String {
    let mut text = String::from(
        "| method | seeds | steps | best success | best success (mtrl cadence) | final success | success, second half |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for group in groups {
        let [best, best_mtrl, last, second_half] = headline(group);
        let steps = group.seeds.iter().map(|s| s.last().step).min().unwrap_or(0);
        let cadences: Vec<String> = distinct(group.seeds.iter().map(|s| s.mtrl_cadence.to_string()));
        text.push_str(&format!(
            "| {} | {} | {steps} | {:.3} +- {:.3} | {:.3} +- {:.3} (every {}) | {:.3} +- {:.3} | {:.3} +- {:.3} |\n",
            group.label,
            group.seeds.len(),
            best.0,
            best.1,
            best_mtrl.0,
            best_mtrl.1,
            cadences.join("/"),
            last.0,
            last.1,
            second_half.0,
            second_half.1
        ));
    }
    text.push_str(
        "\nBest success: each seed's best mean success over its evaluations (every `run.eval_every` steps, as the FairGrad \
         paper says), mean +- s.e.m. over seeds. Best success (mtrl cadence): the same over only the evaluations the papers' \
         MT10 code makes, at steps divisible by both the evaluation interval and the episode length (every 30,000 steps \
         under the `mtrl` preset). Success, second half: the mean success over the evaluations in the second half of each \
         seed's steps, mean +- s.e.m. over seeds; unlike the best, it does not reward a lucky evaluation.\n\n",
    );
    for group in groups {
        text.push_str(&format!(
            "Per-task success of `{}` (at each seed's best evaluation, and the share of successful evaluations in the second \
             half; mean over seeds):\n\n",
            group.label
        ));
        text.push_str(&format!("| | {} |\n|---|{}\n", group.tasks.join(" | "), "---:|".repeat(group.tasks.len())));
        for (row, values) in [("best evaluation", task_success(group)), ("second half", second_half_task_success(group))] {
            let values: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
            text.push_str(&format!("| {row} | {} |\n", values.join(" | ")));
        }
        text.push('\n');
    }
    text
}

/// The items in their first order, each once.
fn distinct<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    items.fold(Vec::new(), |mut all, item| {
        if !all.contains(&item) {
            all.push(item);
        }
        all
    })
}

fn csv(groups: &[Group]) -> String {
    let tasks: Vec<&String> = distinct(groups.iter().flat_map(|g| &g.tasks));
    let mut text = String::from(
        "method,seeds,best_success_mean,best_success_sem,best_success_mtrl_cadence_mean,best_success_mtrl_cadence_sem,final_success_mean,final_success_sem,\
         second_half_success_mean,second_half_success_sem",
    );
    for prefix in ["success", "second_half_success"] {
        tasks.iter().for_each(|t| text.push_str(&format!(",{prefix}:{t}")));
    }
    text.push('\n');
    for group in groups {
        let headline: Vec<String> = headline(group).iter().map(|(mean, sem)| format!("{mean},{sem}")).collect();
        text.push_str(&format!("\"{}\",{},{}", group.label, group.seeds.len(), headline.join(",")));
        for per_task in [task_success(group), second_half_task_success(group)] {
            for task in &tasks {
                match group.tasks.iter().position(|t| t == *task) {
                    Some(i) => text.push_str(&format!(",{}", per_task[i])),
                    None => text.push(','),
                }
            }
        }
        text.push('\n');
    }
    text
}

/// Mean +- s.e.m. over the seeds that evaluated at each step.
fn success_curve(group: &Group) -> Series {
    let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for seed in &group.seeds {
        for row in &seed.evaluations {
            by_step.entry(row.step).or_default().push(row.mean_success());
        }
    }
    Series {
        label: format!("{} ({} seeds)", group.label, group.seeds.len()),
        points: by_step.iter().map(|(&step, values)| (step as f64, mean(values))).collect(),
        band: Some(by_step.values().map(|values| sem(values)).collect()),
    }
}

fn plot_success(path: &Path, groups: &[Group]) -> anyhow::Result<()> {
    let panel = Panel {
        title: "evaluation success (mean over tasks), mean +- s.e.m. over seeds".into(),
        x_label: "vector steps".into(),
        y_label: "success".into(),
        series: groups.iter().map(success_curve).collect(),
        log_x: false,
    };
    plot::draw(path, &[panel])
}

/// One panel per component: each task's combiner weight over time, mean over seeds.
fn plot_weights(path: &Path, group: &Group) -> anyhow::Result<()> {
    let panels: Vec<Panel> = Component::ALL
        .iter()
        .map(|component| {
            let mut by_step: BTreeMap<u64, Vec<&Vec<f64>>> = BTreeMap::new();
            for row in group.seeds.iter().flat_map(|s| &s.weights).filter(|r| r.component == component.as_str()) {
                by_step.entry(row.step).or_default().push(&row.weights);
            }
            let series = group
                .tasks
                .iter()
                .enumerate()
                .map(|(task, name)| Series {
                    label: name.clone(),
                    points: by_step.iter().map(|(&step, rows)| (step as f64, mean(&rows.iter().map(|w| w[task]).collect::<Vec<_>>()))).collect(),
                    band: None,
                })
                .collect();
            Panel {
                title: format!("{}: {component} weights", group.label),
                x_label: "vector steps".into(),
                y_label: "weight".into(),
                series,
                log_x: false,
            }
        })
        .collect();
    plot::draw(path, &panels)
}

fn file_name(label: &str) -> String {
    label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::SeedResult;
    use crate::config::RunConfig;
    use crate::run_files::MetricsRow;

    #[test]
    fn mtrl_evaluates_every_30000_steps_and_its_best_ignores_the_others() {
        assert_eq!(RunConfig::preset("mtrl").unwrap().mtrl_eval_cadence(), 30_000);
        let row = |step, success| MetricsRow { step, wall_time_s: 0.0, success: vec![success], returns: vec![0.0] };
        let seed = SeedResult {
            evaluations: vec![row(0, 0.1), row(10_000, 0.9), row(20_000, 0.5), row(30_000, 0.4), row(40_000, 0.2)],
            weights: Vec::new(),
            mtrl_cadence: 30_000,
        };
        assert_eq!(seed.best().mean_success(), 0.9);
        assert_eq!(seed.best_at_mtrl_cadence(), 0.4);
        // The second half of 40,000 steps: the evaluations at 20,000, 30,000 and 40,000.
        let second_half = seed.second_half_task_success();
        assert_eq!(second_half.len(), 1);
        assert!((second_half[0] - (0.5 + 0.4 + 0.2) / 3.0).abs() < 1e-12, "{second_half:?}");
    }
}
