//! The papers' tables from run directories (`mt10 report`). Seeds are grouped by the run's name,
//! or else by method and hyper-parameters. Per seed, the scores are the success at its best and
//! at its final evaluation, at every evaluation and at the cadence of the papers' MT10 code;
//! over seeds, their mean +- s.e.m. (the papers' statistic) and the interval estimates of
//! Agarwal et al. (2021) from [`crate::stats`]. docs/report.md says what each column means.
use crate::plot::{self, Panel, Series};
use crate::stats::{self, Estimate, ScoreMatrix, BOOTSTRAP, MIN_RUNS_FOR_CI};
use agent::Component;
use anyhow::{bail, Context};
use envs::EnvConfig;
use rundir::run_files::{conflict_columns, read_config, read_metrics, read_weights, seed_dir, MetricsRow, WeightsRow, CONFLICTS, METRICS, WEIGHTS};
use rundir::UsageError;
use solvers::Method;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How much of each seed a report reads: all of it, or what it had done by a number of steps
/// or of seconds of training wall time (to compare runs whose updates cost differently at
/// equal steps and at equal time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    Whole,
    Steps(u64),
    WallTimeS(f64),
}

impl Budget {
    fn admits(self, row: &MetricsRow) -> bool {
        match self {
            Budget::Whole => true,
            Budget::Steps(steps) => row.step <= steps,
            Budget::WallTimeS(seconds) => row.wall_time_s <= seconds,
        }
    }

    /// Why a seed whose last evaluation is `last` cannot be read at this budget: it stopped
    /// short of it (or has not got there yet).
    fn short_of(self, last: &MetricsRow) -> Option<String> {
        match self {
            Budget::Steps(budget) if last.step < budget => Some(format!("its last evaluation is at step {}, short of the {budget} steps", last.step)),
            Budget::WallTimeS(budget) if last.wall_time_s < budget => {
                Some(format!("its last evaluation ended after {:.1} s of training, short of the {budget:.1} s", last.wall_time_s))
            }
            _ => None,
        }
    }

    fn describe(self) -> Option<String> {
        match self {
            Budget::Whole => None,
            Budget::Steps(steps) => Some(format!("each seed up to step {steps}: its evaluations at or before it")),
            Budget::WallTimeS(seconds) => {
                Some(format!("each seed up to {seconds:.0} s of training wall time: its evaluations that ended by then"))
            }
        }
    }
}

/// Reads the runs (each seed within `budget`) and writes into `out`: `report.md` (also
/// printed), `report.csv`, `scores/<row>-<best|final>[-mtrl-cadence].csv` (each row's seeds x
/// tasks success, as rliable reads it), `success.png`, `profile.png` and `weights-<row>.png`. A
/// missing or damaged file in a run, or a seed short of the budget, is a [`UsageError`] naming
/// it, before anything is written.
pub fn generate(runs: &[PathBuf], out: &Path, budget: Budget) -> anyhow::Result<()> {
    let groups = load(runs, budget).map_err(UsageError)?;
    let tables = [Cadence::EveryEvaluation, Cadence::Mtrl].map(|cadence| Table::new(&groups, cadence));
    std::fs::create_dir_all(out.join(SCORES)).with_context(|| format!("cannot create {}", out.join(SCORES).display()))?;
    let mut markdown = markdown(&groups, &tables);
    if let Some(budget) = budget.describe() {
        markdown = format!("Budget: {budget}.\n\n{markdown}");
    }
    print!("{markdown}");
    std::fs::write(out.join("report.md"), &markdown)?;
    std::fs::write(out.join("report.csv"), csv(&groups, &tables))?;
    for table in &tables {
        for (group, row) in groups.iter().zip(&table.rows) {
            for (measure, scores) in [("best", &row.best), ("final", &row.last)] {
                let path = out.join(SCORES).join(format!("{}-{measure}{}.csv", file_name(&group.label), table.cadence.file_suffix()));
                std::fs::write(&path, score_csv(group, scores, &format!("{measure} success{}", table.cadence.file_suffix())))?;
            }
        }
    }
    plot_success(&out.join("success.png"), &groups)?;
    plot_profiles(&out.join("profile.png"), &groups, &tables[0])?;
    for group in &groups {
        plot_weights(&out.join(format!("weights-{}.png", file_name(&group.label))), group)?;
        if group.seeds.iter().any(|s| !s.conflicts.is_empty()) {
            plot_conflicts(&out.join(format!("conflicts-{}.png", file_name(&group.label))), group)?;
        }
    }
    eprintln!("mt10: wrote report.md, report.csv, {SCORES}/, success.png, profile.png, weights-*.png and conflicts-*.png to {}", out.display());
    Ok(())
}

const SCORES: &str = "scores";

/// Which evaluations a score is taken from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cadence {
    /// Every evaluation: every `run.eval_every` steps, as the FairGrad paper says.
    EveryEvaluation,
    /// Only those the papers' MT10 code (mtrl) makes: at steps divisible by both its evaluation
    /// interval and the episode length (see [`rundir::config::RunConfig::mtrl_eval_cadence`]).
    Mtrl,
}

impl Cadence {
    fn file_suffix(self) -> &'static str {
        match self {
            Cadence::EveryEvaluation => "",
            Cadence::Mtrl => "-mtrl-cadence",
        }
    }
}

struct SeedResult {
    dir: PathBuf,
    /// Never empty, and the first is the untrained policy's, at step 0 ([`load`] checks).
    evaluations: Vec<MetricsRow>,
    weights: Vec<WeightsRow>,
    /// `conflicts.csv`'s rows; none for `ls` and loss-only methods (no Gram) and older runs.
    conflicts: Vec<WeightsRow>,
    eval_every: u64,
    mtrl_cadence: u64,
}

impl SeedResult {
    fn period(&self, cadence: Cadence) -> u64 {
        match cadence {
            Cadence::EveryEvaluation => self.eval_every,
            Cadence::Mtrl => self.mtrl_cadence,
        }
    }

    /// The evaluations made at this cadence; every evaluation includes the one at the end of
    /// a run whose steps are not a multiple of `eval_every`.
    fn at(&self, cadence: Cadence) -> impl Iterator<Item = &MetricsRow> {
        self.evaluations.iter().filter(move |row| cadence == Cadence::EveryEvaluation || row.step % self.mtrl_cadence == 0)
    }

    /// The first evaluation with the highest mean success.
    fn best(&self, cadence: Cadence) -> &MetricsRow {
        self.at(cadence).reduce(|best, row| if row.mean_success() > best.mean_success() { row } else { best }).expect("step 0 is at every cadence")
    }

    fn last(&self, cadence: Cadence) -> &MetricsRow {
        self.at(cadence).last().expect("step 0 is at every cadence")
    }

    /// A seed never learned when its best evaluation is no better than the untrained policy's
    /// (step 0): the improvement of its best mean success over the step-0 one is 0.
    fn never_learned(&self, cadence: Cadence) -> bool {
        self.best(cadence).mean_success() <= self.evaluations[0].mean_success()
    }

    /// Each task's share of successful evaluations over the second half of the run: with one
    /// evaluation episode per task the best evaluation is a lucky draw, this is not.
    fn second_half_task_success(&self) -> Vec<f64> {
        let end = self.evaluations.last().expect("seeds have evaluations").step;
        let half: Vec<&MetricsRow> = self.evaluations.iter().filter(|row| 2 * row.step >= end).collect();
        (0..half[0].success.len()).map(|task| stats::mean(&half.iter().map(|row| row.success[task]).collect::<Vec<_>>())).collect()
    }
}

struct Group {
    label: String,
    method: Method,
    metaworld: bool,
    tasks: Vec<String>,
    seeds: Vec<SeedResult>,
}

impl Group {
    fn steps(&self) -> u64 {
        self.seeds.iter().map(|s| s.evaluations.last().expect("seeds have evaluations").step).min().unwrap_or(0)
    }

    /// The seeds x tasks success at each seed's chosen evaluation.
    fn scores(&self, evaluation: impl Fn(&SeedResult) -> &MetricsRow) -> ScoreMatrix {
        ScoreMatrix::new(&self.seeds.iter().map(|s| evaluation(s).success.clone()).collect::<Vec<_>>())
    }
}

fn load(runs: &[PathBuf], budget: Budget) -> anyhow::Result<Vec<Group>> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for run in runs {
        let config = read_config(run)?;
        let label = config.run.name.clone().unwrap_or_else(|| config.method_label());
        let run_tasks = config.task_names()?;
        for &seed in &config.run.seeds {
            let dir = seed_dir(run, seed);
            if !dir.exists() {
                eprintln!("mt10: {} has not started; left out", dir.display());
                continue;
            }
            let metrics = dir.join(METRICS);
            if !metrics.is_file() {
                bail!("{} is missing", metrics.display());
            }
            let (tasks, mut evaluations) = read_metrics(&metrics)?;
            if tasks != run_tasks {
                bail!("{}: its tasks ({}) are not those of {} ({})", metrics.display(), tasks.join(","), run.join("config.toml").display(), run_tasks.join(","));
            }
            match evaluations.first() {
                None => {
                    eprintln!("mt10: {} has no evaluation yet; left out", dir.display());
                    continue;
                }
                Some(first) if first.step != 0 => bail!("{} line 2: the first evaluation is at step {}, not at step 0", metrics.display(), first.step),
                Some(_) => {}
            }
            if let Some(why) = budget.short_of(evaluations.last().expect("not empty")) {
                bail!("{}: {why}; leave it out, or lower the budget", dir.display());
            }
            evaluations.retain(|row| row.step == 0 || budget.admits(row));
            let last_step = evaluations.last().expect("step 0 stays").step;
            let weights = dir.join(WEIGHTS);
            if !weights.is_file() {
                bail!("{} is missing", weights.display());
            }
            let mut weights = read_weights(&weights)?;
            weights.retain(|row| row.step <= last_step);
            let conflicts = dir.join(CONFLICTS);
            let conflicts = if conflicts.is_file() {
                let rows = read_weights(&conflicts)?;
                let columns = conflict_columns(&tasks).len();
                if let Some(row) = rows.iter().find(|r| r.weights.len() != columns) {
                    bail!("{}: a row at step {} has {} values, not the {columns} of {} tasks", conflicts.display(), row.step, row.weights.len(), tasks.len());
                }
                rows.into_iter().filter(|row| row.step <= last_step).collect()
            } else {
                Vec::new()
            };
            let group = groups.entry(label.clone()).or_insert_with(|| Group {
                label: label.clone(),
                method: config.agent.combine.combiner.method,
                metaworld: matches!(config.env, EnvConfig::MetaWorld(_)),
                tasks: tasks.clone(),
                seeds: Vec::new(),
            });
            if group.tasks != tasks {
                bail!("{}: its tasks differ from those of other `{label}` runs; give the runs different --name", dir.display());
            }
            group.seeds.push(SeedResult { dir, evaluations, weights, conflicts, eval_every: config.run.eval_every, mtrl_cadence: config.mtrl_eval_cadence() });
        }
    }
    if groups.is_empty() {
        bail!("no evaluations found in {}", runs.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    Ok(groups.into_values().collect())
}

/// One row's scores and statistics at one cadence.
struct Row {
    best: ScoreMatrix,
    last: ScoreMatrix,
    best_iqm: Estimate,
    last_iqm: Estimate,
    /// The probability of improvement over the `ls` row; `None` for that row itself and for
    /// rows on other tasks.
    best_over_ls: Option<Estimate>,
    last_over_ls: Option<Estimate>,
    never_learned: usize,
}

impl Row {
    /// Mean +- s.e.m. over seeds of the mean success over tasks.
    fn mean_sem(scores: &ScoreMatrix) -> (f64, f64) {
        let per_seed: Vec<f64> = (0..scores.runs()).map(|run| stats::mean(scores.run(run))).collect();
        (stats::mean(&per_seed), stats::sem(&per_seed))
    }
}

/// The rows of one table (one per group, in order) at one cadence.
struct Table {
    cadence: Cadence,
    /// The `ls` row the probabilities of improvement compare with (the first, if several).
    reference: Option<usize>,
    rows: Vec<Row>,
}

impl Table {
    fn new(groups: &[Group], cadence: Cadence) -> Self {
        let scores: Vec<(ScoreMatrix, ScoreMatrix)> = groups.iter().map(|g| (g.scores(|s| s.best(cadence)), g.scores(|s| s.last(cadence)))).collect();
        let reference = groups.iter().position(|g| g.method == Method::Ls);
        let over_ls = |i: usize, pick: fn(&(ScoreMatrix, ScoreMatrix)) -> &ScoreMatrix| {
            let r = reference.filter(|&r| r != i && groups[r].tasks == groups[i].tasks)?;
            Some(stats::probability_of_improvement_with_ci(pick(&scores[i]), pick(&scores[r]), &BOOTSTRAP))
        };
        let rows = map_in_parallel(groups, |i, group| {
            let (best, last) = &scores[i];
            Row {
                best_iqm: stats::iqm_with_ci(best, &BOOTSTRAP),
                last_iqm: stats::iqm_with_ci(last, &BOOTSTRAP),
                best_over_ls: over_ls(i, |s| &s.0),
                last_over_ls: over_ls(i, |s| &s.1),
                never_learned: group.seeds.iter().filter(|s| s.never_learned(cadence)).count(),
                best: best.clone(),
                last: last.clone(),
            }
        });
        Self { cadence, reference, rows }
    }
}

/// `f(index, item)` for each item, in order, spread over the cores: each row's bootstraps are
/// independent, with their own fixed seeds, so the result does not depend on the threads.
fn map_in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, items.len().max(1));
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = (0..threads)
            .map(|first| scope.spawn(move || items.iter().enumerate().skip(first).step_by(threads).map(|(i, item)| (i, f(i, item))).collect::<Vec<_>>()))
            .collect();
        let mut results: Vec<(usize, R)> = handles.into_iter().flat_map(|h| h.join().expect("statistics do not panic")).collect();
        results.sort_by_key(|&(i, _)| i);
        results.into_iter().map(|(_, r)| r).collect()
    })
}

/// Meta-World v3's success thresholds are not v1's, which the papers used (issue 19).
const THRESHOLD_NOTE: &str = "Note: these runs use Meta-World v3, whose success thresholds differ from v1's (the papers'): push <= 0.05 \
    (v1 <= 0.07), drawer-open handle error <= 0.03 (v1 pull distance <= 0.08), drawer-close <= 0.055 (v1 <= 0.06), \
    button-press-topdown <= 0.024 (v1 <= 0.02); the other six tasks are the same. See docs/report.md.\n";

fn markdown(groups: &[Group], tables: &[Table; 2]) -> String {
    let mut text = String::new();
    let notes = |text: &mut String| {
        let few: Vec<&str> = groups.iter().filter(|g| g.seeds.len() < MIN_RUNS_FOR_CI).map(|g| g.label.as_str()).collect();
        if !few.is_empty() {
            text.push_str(&format!(
                "No confidence intervals for {}: fewer than {MIN_RUNS_FOR_CI} seeds, which a bootstrap can only reshuffle.\n",
                few.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        if groups.iter().any(|g| g.metaworld) {
            text.push_str(THRESHOLD_NOTE);
        }
        if !text.ends_with("\n\n") {
            text.push('\n');
        }
    };
    for table in tables {
        text.push_str(match table.cadence {
            Cadence::EveryEvaluation => "Success at every evaluation (every `run.eval_every` steps):\n\n",
            Cadence::Mtrl => "Success at mtrl's cadence (only the evaluations at steps divisible by both the evaluation interval and the episode length):\n\n",
        });
        let reference = table.reference.map_or("ls".to_string(), |r| groups[r].label.clone());
        text.push_str(&format!(
            "| method | seeds | steps | evaluated | best success | final success | best, IQM [95% CI] | final, IQM [95% CI] | P(best > {reference}) | P(final > {reference}) | never learned |{}\n",
            if table.cadence == Cadence::EveryEvaluation { " success, second half |" } else { "" }
        ));
        text.push_str(&format!("|---|{}\n", "---:|".repeat(if table.cadence == Cadence::EveryEvaluation { 11 } else { 10 })));
        for (group, row) in groups.iter().zip(&table.rows) {
            let periods = distinct(group.seeds.iter().map(|s| s.period(table.cadence).to_string())).join("/");
            let [best, last] = [&row.best, &row.last].map(Row::mean_sem);
            let over_ls = |p: &Option<Estimate>| p.map_or("-".to_string(), |p| p.to_string());
            text.push_str(&format!(
                "| {} | {} | {} | every {periods} | {:.3} ± {:.3} | {:.3} ± {:.3} | {} | {} | {} | {} | {} of {} |",
                group.label,
                group.seeds.len(),
                group.steps(),
                best.0,
                best.1,
                last.0,
                last.1,
                row.best_iqm,
                row.last_iqm,
                over_ls(&row.best_over_ls),
                over_ls(&row.last_over_ls),
                row.never_learned,
                group.seeds.len(),
            ));
            if table.cadence == Cadence::EveryEvaluation {
                let (mean, sem) = second_half(group);
                text.push_str(&format!(" {mean:.3} ± {sem:.3} |"));
            }
            text.push('\n');
        }
        text.push('\n');
        if table.cadence == Cadence::EveryEvaluation {
            text.push_str(
                "Best: each seed's best evaluation, the number the Nash-MTL paper reports (its appendix takes a run's best evaluation); \
                 final: its last evaluation, FAMO's number (its author in FAMO's issue 12: the success at 2M steps). Success is the mean \
                 over tasks, mean ± s.e.m. over seeds. IQM: the interquartile mean of the seeds x tasks success, with a 95% \
                 stratified-bootstrap CI (5,000 resamples; Agarwal et al. 2021). P(X > Y): the probability that a seed of X beats one \
                 of Y on a task, averaged over tasks, with its CI. Never learned: seeds whose best evaluation is no better than the \
                 untrained policy's at step 0. Success, second half: the mean success over the evaluations in the second half of \
                 each seed's steps.\n",
            );
        }
        notes(&mut text);
    }
    for group in groups {
        text.push_str(&format!(
            "Per-task success of `{}` (at each seed's best evaluation, and the share of successful evaluations in the second half; mean over seeds):\n\n",
            group.label
        ));
        text.push_str(&format!("| | {} |\n|---|{}\n", group.tasks.join(" | "), "---:|".repeat(group.tasks.len())));
        for (row, values) in [("best evaluation", task_success(group)), ("second half", second_half_task_success(group))] {
            let values: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
            text.push_str(&format!("| {row} | {} |\n", values.join(" | ")));
        }
        text.push('\n');
        if group.metaworld {
            text.push_str(THRESHOLD_NOTE);
            text.push('\n');
        }
        for component in [Component::Critic, Component::Actor] {
            if let Some(cosines) = final_pair_cosines(group, component) {
                text.push_str(&format!(
                    "Cosine of the task gradients of `{}`'s {component}, per task pair, at each seed's last log (mean over seeds):\n\n",
                    group.label
                ));
                let k = group.tasks.len();
                text.push_str(&format!("| | {} |\n|---|{}\n", group.tasks[1..].join(" | "), "---:|".repeat(k - 1)));
                for i in 0..k - 1 {
                    let cells: Vec<String> = (1..k).map(|j| if j > i { format!("{:.2}", cosines[&(i, j)]) } else { String::new() }).collect();
                    text.push_str(&format!("| {} | {} |\n", group.tasks[i], cells.join(" | ")));
                }
                text.push('\n');
            }
        }
    }
    text
}

/// The values of `component`'s rows of `conflicts.csv` at each step, one per seed that logged it.
fn conflict_rows<'a>(group: &'a Group, component: Component) -> BTreeMap<u64, Vec<&'a [f64]>> {
    let mut by_step: BTreeMap<u64, Vec<&[f64]>> = BTreeMap::new();
    for row in group.seeds.iter().flat_map(|s| &s.conflicts).filter(|r| r.component == component.as_str()) {
        by_step.entry(row.step).or_default().push(&row.weights);
    }
    by_step
}

/// The pair cosines of each seed's last `conflicts.csv` row of `component`, averaged over the
/// seeds, as a map from `(i, j)`, `i < j`; `None` when no seed logged any.
fn final_pair_cosines(group: &Group, component: Component) -> Option<BTreeMap<(usize, usize), f64>> {
    let last: Vec<&WeightsRow> = group.seeds.iter().filter_map(|s| s.conflicts.iter().rfind(|r| r.component == component.as_str())).collect();
    if last.is_empty() {
        return None;
    }
    let k = group.tasks.len();
    let pairs = (0..k).flat_map(|i| (i + 1..k).map(move |j| (i, j)));
    // Columns: conflicts, cos_mean, cos_min, then the pairs in this order.
    Some(pairs.enumerate().map(|(p, pair)| (pair, stats::mean(&last.iter().map(|r| r.weights[3 + p]).collect::<Vec<_>>()))).collect())
}

/// Mean and s.e.m. over seeds of the mean success over the second half.
fn second_half(group: &Group) -> (f64, f64) {
    let per_seed: Vec<f64> = group.seeds.iter().map(|s| stats::mean(&s.second_half_task_success())).collect();
    (stats::mean(&per_seed), stats::sem(&per_seed))
}

/// Each task's success at each seed's best evaluation, averaged over seeds.
fn task_success(group: &Group) -> Vec<f64> {
    let scores = group.scores(|s| s.best(Cadence::EveryEvaluation));
    (0..group.tasks.len()).map(|task| stats::mean(&(0..scores.runs()).map(|run| scores.run(run)[task]).collect::<Vec<_>>())).collect()
}

/// Each task's share of successful evaluations over the second half, averaged over seeds.
fn second_half_task_success(group: &Group) -> Vec<f64> {
    let per_seed: Vec<Vec<f64>> = group.seeds.iter().map(SeedResult::second_half_task_success).collect();
    (0..group.tasks.len()).map(|task| stats::mean(&per_seed.iter().map(|s| s[task]).collect::<Vec<_>>())).collect()
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

/// One line per group: both tables' columns (CI bounds empty where there is none), then the
/// per-task success at the best evaluation and over the second half.
fn csv(groups: &[Group], tables: &[Table; 2]) -> String {
    let tasks: Vec<&String> = distinct(groups.iter().flat_map(|g| &g.tasks));
    let mut text = String::from("method,seeds,steps");
    for table in tables {
        let cadence = if table.cadence == Cadence::Mtrl { "_mtrl_cadence" } else { "" };
        for measure in ["best_success", "final_success"] {
            for column in ["mean", "sem", "iqm", "iqm_low", "iqm_high", "p_improvement_over_ls", "p_improvement_low", "p_improvement_high"] {
                text.push_str(&format!(",{measure}{cadence}_{column}"));
            }
        }
        text.push_str(&format!(",never_learned{cadence}"));
    }
    text.push_str(",second_half_success_mean,second_half_success_sem");
    for prefix in ["success", "second_half_success"] {
        tasks.iter().for_each(|t| text.push_str(&format!(",{prefix}:{t}")));
    }
    text.push('\n');
    let estimate = |e: Option<Estimate>| match e {
        None => ",,".to_string(),
        Some(Estimate { value, ci: None }) => format!("{value},,"),
        Some(Estimate { value, ci: Some(ci) }) => format!("{value},{},{}", ci.low, ci.high),
    };
    for (i, group) in groups.iter().enumerate() {
        text.push_str(&format!("\"{}\",{},{}", group.label, group.seeds.len(), group.steps()));
        for table in tables {
            let row = &table.rows[i];
            for (scores, iqm, over_ls) in [(&row.best, row.best_iqm, row.best_over_ls), (&row.last, row.last_iqm, row.last_over_ls)] {
                let (mean, sem) = Row::mean_sem(scores);
                text.push_str(&format!(",{mean},{sem},{},{}", estimate(Some(iqm)), estimate(over_ls)));
            }
            text.push_str(&format!(",{}", row.never_learned));
        }
        let (mean, sem) = second_half(group);
        text.push_str(&format!(",{mean},{sem}"));
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

/// A seeds x tasks score matrix as rliable reads it: `numpy.loadtxt(path, delimiter=",")` gives
/// the (num_runs x num_tasks) array; the comment lines name the runs and tasks.
fn score_csv(group: &Group, scores: &ScoreMatrix, what: &str) -> String {
    let mut text = format!("# mt10 report: {what} of `{}`, one row per seed, one column per task\n", group.label);
    text.push_str(&format!("# rows: {}\n", group.seeds.iter().map(|s| s.dir.display().to_string()).collect::<Vec<_>>().join(" ")));
    text.push_str(&format!("# columns: {}\n", group.tasks.join(",")));
    for run in 0..scores.runs() {
        text.push_str(&scores.run(run).iter().map(f64::to_string).collect::<Vec<_>>().join(","));
        text.push('\n');
    }
    text
}

/// 2,000 resamples for the bands of plots (rliable's default for performance profiles): a
/// band is read by eye, and a curve or a profile has a hundred points or more.
const PLOT_BOOTSTRAP: stats::Bootstrap = stats::Bootstrap { resamples: 2_000, ..BOOTSTRAP };

/// The mean success over tasks and seeds at each step every seed evaluated, with its 95%
/// stratified-bootstrap interval (none below three seeds).
fn success_curve(group: &Group) -> Series {
    let mut by_step: BTreeMap<u64, Vec<Vec<f64>>> = BTreeMap::new();
    for seed in &group.seeds {
        for row in &seed.evaluations {
            by_step.entry(row.step).or_default().push(row.success.clone());
        }
    }
    by_step.retain(|_, runs| runs.len() == group.seeds.len());
    let curve = stats::mean_curve_with_ci(&by_step.values().map(|runs| ScoreMatrix::new(runs)).collect::<Vec<_>>(), &PLOT_BOOTSTRAP);
    let seeds = group.seeds.len();
    Series {
        label: format!("{} ({seeds} seed{}{})", group.label, if seeds == 1 { "" } else { "s" }, if seeds < MIN_RUNS_FOR_CI { ", no CI" } else { "" }),
        points: by_step.keys().zip(&curve).map(|(&step, e)| (step as f64, e.value)).collect(),
        band: band(curve.iter()),
    }
}

/// The intervals as a band; none when no point has one.
fn band<'a>(estimates: impl Iterator<Item = &'a Estimate> + Clone) -> Option<Vec<(f64, f64)>> {
    estimates.clone().any(|e| e.ci.is_some()).then(|| estimates.map(|e| e.ci.map_or((e.value, e.value), |ci| (ci.low, ci.high))).collect())
}

fn plot_success(path: &Path, groups: &[Group]) -> anyhow::Result<()> {
    let panel = Panel {
        title: "evaluation success (mean over tasks and seeds), 95% stratified-bootstrap CI".into(),
        x_label: "vector steps".into(),
        y_label: "success".into(),
        series: map_in_parallel(groups, |_, group| success_curve(group)),
        log_x: false,
    };
    plot::draw(path, &[panel])
}

/// Performance profiles (Agarwal et al. 2021) of the seeds' best and final mean success: the
/// fraction of seeds whose success is above tau, with 95% stratified-bootstrap bands.
fn plot_profiles(path: &Path, groups: &[Group], table: &Table) -> anyhow::Result<()> {
    let taus: Vec<f64> = (0..=100).map(|i| i as f64 / 100.0).collect();
    let panel = |title: &str, scores: &(dyn Fn(&Row) -> &ScoreMatrix + Sync)| Panel {
        title: format!("{title}: performance profile, 95% CI"),
        x_label: "success tau".into(),
        y_label: "fraction of seeds with success > tau".into(),
        series: map_in_parallel(groups, |i, group| {
            let scores = scores(&table.rows[i]);
            let per_seed = ScoreMatrix::new(&(0..scores.runs()).map(|run| vec![stats::mean(scores.run(run))]).collect::<Vec<_>>());
            let profile = stats::performance_profile_with_ci(&per_seed, &taus, &PLOT_BOOTSTRAP);
            Series { label: group.label.clone(), points: taus.iter().zip(&profile).map(|(&tau, e)| (tau, e.value)).collect(), band: band(profile.iter()) }
        }),
        log_x: false,
    };
    plot::draw(path, &[panel("best success", &|row| &row.best), panel("final success", &|row| &row.last)])
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
                    points: by_step.iter().map(|(&step, rows)| (step as f64, stats::mean(&rows.iter().map(|w| w[task]).collect::<Vec<_>>()))).collect(),
                    band: None,
                })
                .collect();
            Panel { title: format!("{}: {component} weights", group.label), x_label: "vector steps".into(), y_label: "weight".into(), series, log_x: false }
        })
        .collect();
    plot::draw(path, &panels)
}

/// Per component with a Gram: the share of conflicting task pairs and the mean pairwise cosine
/// over training, mean over seeds with the seeds' range as the band.
fn plot_conflicts(path: &Path, group: &Group) -> anyhow::Result<()> {
    let panels: Vec<Panel> = Component::ALL
        .iter()
        .filter_map(|&component| {
            let by_step = conflict_rows(group, component);
            if by_step.is_empty() {
                return None;
            }
            let series = |label: &str, column: usize| {
                let values = |rows: &Vec<&[f64]>| rows.iter().map(|r| r[column]).collect::<Vec<_>>();
                Series {
                    label: label.to_string(),
                    points: by_step.iter().map(|(&step, rows)| (step as f64, stats::mean(&values(rows)))).collect(),
                    band: (group.seeds.len() > 1).then(|| {
                        by_step.values().map(|rows| values(rows).iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))).collect()
                    }),
                }
            };
            Some(Panel {
                title: format!("{}: {component} task gradients (mean over seeds, band: range)", group.label),
                x_label: "vector steps".into(),
                y_label: "share / cosine".into(),
                series: vec![series("conflicting pairs (share)", 0), series("mean cosine", 1), series("least cosine", 2)],
                log_x: false,
            })
        })
        .collect();
    plot::draw(path, &panels)
}

fn file_name(label: &str) -> String {
    label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::{Cadence, SeedResult};
    use rundir::config::RunConfig;
    use rundir::run_files::MetricsRow;

    fn seed(successes: &[(u64, f64)]) -> SeedResult {
        let evaluations = successes.iter().map(|&(step, s)| MetricsRow { step, wall_time_s: 0.0, success: vec![s], returns: vec![0.0] }).collect();
        SeedResult { dir: "seed-1".into(), evaluations, weights: Vec::new(), conflicts: Vec::new(), eval_every: 10_000, mtrl_cadence: 30_000 }
    }

    #[test]
    fn mtrl_evaluates_every_30000_steps_and_its_best_and_final_ignore_the_others() {
        assert_eq!(RunConfig::preset("mtrl").unwrap().mtrl_eval_cadence(), 30_000);
        let seed = seed(&[(0, 0.1), (10_000, 0.9), (20_000, 0.5), (30_000, 0.4), (40_000, 0.2)]);
        assert_eq!(seed.best(Cadence::EveryEvaluation).mean_success(), 0.9);
        assert_eq!(seed.best(Cadence::Mtrl).mean_success(), 0.4);
        assert_eq!(seed.last(Cadence::EveryEvaluation).step, 40_000);
        assert_eq!(seed.last(Cadence::Mtrl).step, 30_000);
        // The second half of 40,000 steps: the evaluations at 20,000, 30,000 and 40,000.
        let second_half = seed.second_half_task_success();
        assert_eq!(second_half.len(), 1);
        assert!((second_half[0] - (0.5 + 0.4 + 0.2) / 3.0).abs() < 1e-12, "{second_half:?}");
    }

    #[test]
    fn a_seed_never_learned_when_no_evaluation_beats_step_0() {
        // Ties with the untrained policy are not learning; the first best evaluation counts.
        let flat = seed(&[(0, 0.1), (10_000, 0.1), (20_000, 0.0), (30_000, 0.1)]);
        assert!(flat.never_learned(Cadence::EveryEvaluation));
        assert_eq!(flat.best(Cadence::EveryEvaluation).step, 0);
        let learned_between = seed(&[(0, 0.1), (10_000, 0.3), (20_000, 0.0), (30_000, 0.1)]);
        assert!(!learned_between.never_learned(Cadence::EveryEvaluation));
        assert!(learned_between.never_learned(Cadence::Mtrl), "mtrl never sees the evaluation at 10,000");
    }
}
