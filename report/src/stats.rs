//! Statistics over seeds. Mean and standard error, as the papers report them; and the interval
//! estimates of Agarwal et al. (2021), "Deep Reinforcement Learning at the Edge of the
//! Statistical Precipice", computed the way their library rliable computes them (the tests pin
//! values rliable gave): the interquartile mean (IQM), the probability of improvement and the
//! performance profile, each with a percentile confidence interval from a stratified bootstrap,
//! which resamples the runs of each task independently.
use std::fmt;

// Mean and s.e.m. live with the run files: training's logs and `mt10 train`'s table use them too.
pub use rundir::mean::{mean, sem};

/// Scores of one row of a table, laid out as rliable's score matrices: runs (seeds) x tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreMatrix {
    runs: usize,
    tasks: usize,
    /// Row-major: run after run.
    values: Vec<f64>,
}

impl ScoreMatrix {
    /// One row per run, one column per task. Panics on ragged rows: callers build every row
    /// from the same task list.
    pub fn new(rows: &[Vec<f64>]) -> Self {
        let tasks = rows.first().map_or(0, Vec::len);
        assert!(rows.iter().all(|row| row.len() == tasks), "every run of a score matrix has the same tasks");
        Self { runs: rows.len(), tasks, values: rows.concat() }
    }

    pub fn runs(&self) -> usize {
        self.runs
    }

    pub fn run(&self, run: usize) -> &[f64] {
        &self.values[run * self.tasks..(run + 1) * self.tasks]
    }

    fn get(&self, run: usize, task: usize) -> f64 {
        self.values[run * self.tasks + task]
    }
}

/// rliable's `metrics.aggregate_iqm`: the mean of the middle half of all run x task scores
/// (scipy's `trim_mean(scores, 0.25)`, which cuts `floor(n / 4)` scores from each end).
fn iqm_in_place(values: &mut [f64]) -> f64 {
    let (n, cut) = (values.len(), values.len() / 4);
    if cut == 0 {
        return mean(values);
    }
    // Two selections instead of a sort: the n - cut smallest, then the largest of those but cut.
    values.select_nth_unstable_by(n - cut - 1, f64::total_cmp);
    let kept = &mut values[..n - cut];
    kept.select_nth_unstable_by(cut, f64::total_cmp);
    mean(&kept[cut..])
}

/// rliable's `metrics.probability_of_improvement`: for each task, the probability that a run
/// of `x` scores above a run of `y`, ties counting half (the Mann-Whitney U statistic over all
/// pairs of runs), averaged over tasks.
pub fn probability_of_improvement(x: &ScoreMatrix, y: &ScoreMatrix) -> f64 {
    assert_eq!(x.tasks, y.tasks, "both rows score the same tasks");
    let per_task = (0..x.tasks).map(|task| {
        // Twice the wins: 2 per win, 1 per tie (no branches, so the loop vectorises).
        let mut doubled = 0u64;
        for a in (0..x.runs).map(|run| x.get(run, task)) {
            for b in (0..y.runs).map(|run| y.get(run, task)) {
                doubled += 2 * u64::from(a > b) + u64::from(a == b);
            }
        }
        doubled as f64 / (2 * x.runs * y.runs) as f64
    });
    per_task.sum::<f64>() / x.tasks as f64
}

/// rliable's score distribution (`run_score_deviation`, the default performance profile): the
/// fraction of all run x task scores above each threshold `tau`. Sorts the scores in place.
fn score_distribution_in_place(scores: &mut [f64], taus: &[f64], out: &mut [f64]) {
    scores.sort_unstable_by(f64::total_cmp);
    for (tau, share) in taus.iter().zip(out) {
        *share = (scores.len() - scores.partition_point(|v| v <= tau)) as f64 / scores.len() as f64;
    }
}

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// A point estimate with its confidence interval; `ci` is `None` for fewer than
/// [`MIN_RUNS_FOR_CI`] runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub ci: Option<Interval>,
}

impl fmt::Display for Estimate {
    /// `0.539 [0.422, 0.661]`, or `0.539` without an interval.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}", self.value)?;
        match self.ci {
            Some(ci) => write!(f, " [{:.3}, {:.3}]", ci.low, ci.high),
            None => Ok(()),
        }
    }
}

/// Below this many runs no interval is given: a bootstrap over one or two runs per task can only
/// reshuffle those runs, and its percentiles say nothing about what other seeds would give.
pub const MIN_RUNS_FOR_CI: usize = 3;

/// A percentile bootstrap with a fixed seed, so that a report is reproducible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    pub resamples: usize,
    pub seed: u64,
    /// Two-sided coverage, e.g. 0.95.
    pub confidence: f64,
}

/// What `mt10 report`'s tables use: 95% intervals from 5,000 resamples. rliable's default is
/// 50,000, in Python, for one statistic at a time; a report computes 80 of them for 10 rows,
/// and at 5,000 a bound's Monte-Carlo error (about 0.002 in probability at the 2.5% tail) is
/// already far below the spread of a handful of seeds.
pub const BOOTSTRAP: Bootstrap = Bootstrap { resamples: 5_000, seed: 0, confidence: 0.95 };

impl Bootstrap {
    /// The `outputs` values of `statistic` on `samples` (written into its second argument),
    /// each with a percentile interval over stratified resamples: in every resample each
    /// sample is redrawn on its own (rliable's `StratifiedIndependentBootstrap`; with one
    /// sample, its `StratifiedBootstrap`), every task getting as many runs as the sample has,
    /// drawn with replacement from that task's runs. The statistic may reorder the resampled
    /// scores it is given (they are scratch space).
    pub fn estimates(&self, samples: &[&ScoreMatrix], outputs: usize, mut statistic: impl FnMut(&mut [ScoreMatrix], &mut [f64])) -> Vec<Estimate> {
        let mut scratch: Vec<ScoreMatrix> = samples.iter().map(|&s| s.clone()).collect();
        let mut values = vec![0.0; outputs];
        statistic(&mut scratch, &mut values);
        if samples.iter().any(|s| s.runs < MIN_RUNS_FOR_CI) {
            return values.into_iter().map(|value| Estimate { value, ci: None }).collect();
        }
        let mut rng = SplitMix64(self.seed);
        // Output-major, so that each output's resampled values are contiguous for sorting.
        let mut resampled = vec![0.0; outputs * self.resamples];
        let mut out = vec![0.0; outputs];
        for rep in 0..self.resamples {
            for (sample, draw) in samples.iter().zip(&mut scratch) {
                for run in 0..sample.runs {
                    for task in 0..sample.tasks {
                        draw.values[run * sample.tasks + task] = sample.get(rng.below(sample.runs), task);
                    }
                }
            }
            statistic(&mut scratch, &mut out);
            for (output, &value) in out.iter().enumerate() {
                resampled[output * self.resamples + rep] = value;
            }
        }
        self.percentile_estimates(values, &mut resampled)
    }

    /// Each value with the percentile interval of its resamples (`resampled`: value after
    /// value, `self.resamples` each; sorted in place).
    fn percentile_estimates(&self, values: Vec<f64>, resampled: &mut [f64]) -> Vec<Estimate> {
        let tail = (1.0 - self.confidence) / 2.0;
        values
            .into_iter()
            .zip(resampled.chunks_mut(self.resamples))
            .map(|(value, draws)| {
                draws.sort_unstable_by(f64::total_cmp);
                Estimate { value, ci: Some(Interval { low: percentile(draws, tail), high: percentile(draws, 1.0 - tail) }) }
            })
            .collect()
    }

    /// The one value of a scalar statistic with its interval.
    fn estimate(&self, samples: &[&ScoreMatrix], statistic: impl Fn(&mut [ScoreMatrix]) -> f64) -> Estimate {
        self.estimates(samples, 1, |scores, out| out[0] = statistic(scores))[0]
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014), the bootstrap's source of run indices: a report
/// draws tens of millions of them, and ChaCha8 took most of the bootstrap's time. Its quality
/// (it passes BigCrush) is far beyond what resampling needs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` by a multiply and shift (Lemire 2019); the bias, at most `n / 2^64`,
    /// is far below anything a bootstrap can see.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// numpy's default percentile (linear interpolation between the closest ranks) of sorted
/// values, `q` in [0, 1]: what rliable's intervals (through arch) use.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = (sorted.len() - 1) as f64 * q;
    let below = rank.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    sorted[below] + (rank - below as f64) * (sorted[above] - sorted[below])
}

/// The IQM of a runs x tasks score matrix with its stratified-bootstrap interval (none for fewer
/// than [`MIN_RUNS_FOR_CI`] runs).
pub fn iqm_with_ci(scores: &ScoreMatrix, bootstrap: &Bootstrap) -> Estimate {
    bootstrap.estimate(&[scores], |s| iqm_in_place(&mut s[0].values))
}

/// A learning curve: the mean over runs and tasks at each point (`points[i]` is the runs x tasks
/// matrix at the i-th evaluation; all have the same shape) with its stratified-bootstrap
/// interval. A resample redraws the runs of each task once and reads them at every point: each
/// point's resamples are distributed as its own stratified bootstrap's, and a resample costs
/// one pass over the scores instead of one draw per score and point.
pub fn mean_curve_with_ci(points: &[ScoreMatrix], bootstrap: &Bootstrap) -> Vec<Estimate> {
    let Some(first) = points.first() else {
        return Vec::new();
    };
    let (runs, tasks, n) = (first.runs, first.tasks, points.len());
    assert!(points.iter().all(|p| p.runs == runs && p.tasks == tasks), "every point of a curve has the same runs and tasks");
    let values: Vec<f64> = points.iter().map(|p| mean(&p.values)).collect();
    if runs < MIN_RUNS_FOR_CI {
        return values.into_iter().map(|value| Estimate { value, ci: None }).collect();
    }
    // The scores of each run and task along the curve, contiguous.
    let mut series = vec![0.0; runs * tasks * n];
    for (i, point) in points.iter().enumerate() {
        for (cell, &v) in point.values.iter().enumerate() {
            series[cell * n + i] = v;
        }
    }
    let mut rng = SplitMix64(bootstrap.seed);
    let mut draws = vec![0usize; runs * tasks];
    let mut sum = vec![0.0; n];
    let mut resampled = vec![0.0; n * bootstrap.resamples];
    for rep in 0..bootstrap.resamples {
        draws.fill(0);
        for _ in 0..runs {
            for task in 0..tasks {
                draws[rng.below(runs) * tasks + task] += 1;
            }
        }
        sum.fill(0.0);
        for (cell, &count) in draws.iter().enumerate().filter(|(_, &c)| c > 0) {
            for (total, &v) in sum.iter_mut().zip(&series[cell * n..(cell + 1) * n]) {
                *total += count as f64 * v;
            }
        }
        for (i, total) in sum.iter().enumerate() {
            resampled[i * bootstrap.resamples + rep] = total / (runs * tasks) as f64;
        }
    }
    bootstrap.percentile_estimates(values, &mut resampled)
}

/// The probability that `x` improves on `y`, with the interval of the two resampled apart.
pub fn probability_of_improvement_with_ci(x: &ScoreMatrix, y: &ScoreMatrix, bootstrap: &Bootstrap) -> Estimate {
    bootstrap.estimate(&[x, y], |s| probability_of_improvement(&s[0], &s[1]))
}

/// The score distribution at each threshold, each with its interval.
pub fn performance_profile_with_ci(scores: &ScoreMatrix, taus: &[f64], bootstrap: &Bootstrap) -> Vec<Estimate> {
    bootstrap.estimates(&[scores], taus.len(), |s, out| score_distribution_in_place(&mut s[0].values, taus, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_error_of_a_small_sample() {
        // Sample variance of [1, 2, 3, 4] is 5/3; s.e.m. = sqrt(5/3 / 4).
        assert!((sem(&[1.0, 2.0, 3.0, 4.0]) - (5.0f64 / 12.0).sqrt()).abs() < 1e-12);
        assert_eq!(sem(&[0.7]), 0.0);
        assert_eq!(mean(&[1.0, 2.0]), 1.5);
    }

    // Reference values from rliable 1.2.0 (arch 7.2.0, numpy 2.4.6, scipy 1.17.1), installed
    // in a scratch venv outside the project and run on these matrices:
    //   metrics.aggregate_iqm(X), metrics.aggregate_iqm(Y), metrics.probability_of_improvement(X, Y)
    //   np.random.seed(s); library.get_interval_estimates({"x": X}, lambda m: np.array([metrics.aggregate_iqm(m)]), reps=50000)
    //   np.random.seed(s); library.get_interval_estimates({"xy": [X, Y]}, metrics.probability_of_improvement, reps=50000)
    //   np.random.seed(s); library.create_performance_profile({"x": X.mean(axis=1, keepdims=True)}, [0, .25, .5, .75], reps=50000)
    // for seeds s = 0, 1 and 2, which all gave the intervals below (with five runs the bootstrap
    // distribution is discrete, and all three seeds' percentiles fell on the same values).
    fn x() -> ScoreMatrix {
        ScoreMatrix::new(&[vec![0.9, 0.2, 0.55], vec![0.7, 0.1, 0.8], vec![0.35, 0.6, 0.45], vec![0.95, 0.3, 0.65], vec![0.5, 0.05, 0.75]])
    }

    fn y() -> ScoreMatrix {
        ScoreMatrix::new(&[vec![0.6, 0.25, 0.4], vec![0.8, 0.15, 0.3], vec![0.2, 0.5, 0.35], vec![0.45, 0.0, 0.7]])
    }

    /// rliable's intervals come from numpy's random numbers, ours from SplitMix64: they agree only
    /// up to the Monte-Carlo error of a 2.5% percentile over 50,000 resamples, about 1e-3 for
    /// a continuous bootstrap distribution of this spread (sqrt(0.025 * 0.975 / 50,000) over a
    /// density near 1 at the tail); 0.005 is five times that and still well under the gaps
    /// between the discrete values these bounds fall on.
    const REFERENCE: Bootstrap = Bootstrap { resamples: 50_000, seed: 7, confidence: 0.95 };
    const TOLERANCE: f64 = 0.005;

    fn assert_close(estimate: Estimate, value: f64, low: f64, high: f64) {
        assert!((estimate.value - value).abs() < 1e-12, "{estimate:?} vs {value}");
        let ci = estimate.ci.expect("an interval");
        assert!((ci.low - low).abs() < TOLERANCE && (ci.high - high).abs() < TOLERANCE, "{ci:?} vs [{low}, {high}]");
    }

    #[test]
    fn point_estimates_match_rliable_exactly() {
        // Equal up to the order of summation.
        assert!((iqm_with_ci(&x(), &BOOTSTRAP).value - 0.5388888888888889).abs() < 1e-15);
        assert!((iqm_with_ci(&y(), &BOOTSTRAP).value - 0.375).abs() < 1e-15);
        assert!((probability_of_improvement(&x(), &y()) - 0.7000000000000001).abs() < 1e-15);
        // Identical columns count as 0.5, as rliable's special case does.
        assert_eq!(probability_of_improvement(&x(), &x()), 0.5);
    }

    #[test]
    fn intervals_match_rliable_within_monte_carlo_error() {
        assert_close(iqm_with_ci(&x(), &REFERENCE), 0.5388888888888889, 0.4222222222222222, 0.6611111111111111);
        assert_close(probability_of_improvement_with_ci(&x(), &y(), &REFERENCE), 0.7000000000000001, 0.48333333333333334, 0.8833333333333333);
        let per_run = ScoreMatrix::new(&(0..5).map(|run| vec![mean(x().run(run))]).collect::<Vec<_>>());
        let profile = performance_profile_with_ci(&per_run, &[0.0, 0.25, 0.5, 0.75], &REFERENCE);
        for (estimate, (value, low, high)) in profile.into_iter().zip([(1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (0.6, 0.2, 1.0), (0.0, 0.0, 0.0)]) {
            assert_close(estimate, value, low, high);
        }
    }

    #[test]
    fn fewer_than_three_runs_give_no_interval() {
        let two = ScoreMatrix::new(&[vec![0.1, 0.9], vec![0.4, 0.5]]);
        // The IQM of 0.1, 0.4, 0.5, 0.9: the middle two.
        let estimate = iqm_with_ci(&two, &BOOTSTRAP);
        assert!((estimate.value - 0.45).abs() < 1e-15 && estimate.ci.is_none(), "{estimate:?}");
        let two_of_three_tasks = ScoreMatrix::new(&[vec![0.1, 0.9, 0.3], vec![0.4, 0.5, 0.6]]);
        assert_eq!(probability_of_improvement_with_ci(&x(), &two_of_three_tasks, &BOOTSTRAP).ci, None);
        assert_eq!(format!("{}", iqm_with_ci(&two, &BOOTSTRAP)), "0.450");
    }

    #[test]
    fn a_curve_point_has_the_value_and_interval_of_its_own_bootstrap() {
        let points = [x(), ScoreMatrix::new(&(0..5).map(|run| x().run(run).iter().map(|v| v * v).collect()).collect::<Vec<_>>())];
        let curve = mean_curve_with_ci(&points, &REFERENCE);
        for (point, estimate) in points.iter().zip(curve) {
            let alone = REFERENCE.estimate(&[point], |s| mean(&s[0].values));
            let (a, b) = (estimate.ci.unwrap(), alone.ci.unwrap());
            assert!((estimate.value - alone.value).abs() < 1e-12);
            assert!((a.low - b.low).abs() < TOLERANCE && (a.high - b.high).abs() < TOLERANCE, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn the_bootstrap_is_reproducible_and_its_interval_holds_the_estimate() {
        let a = iqm_with_ci(&x(), &BOOTSTRAP);
        assert_eq!(a, iqm_with_ci(&x(), &BOOTSTRAP));
        let ci = a.ci.unwrap();
        assert!(ci.low < a.value && a.value < ci.high, "{a:?}");
        assert_eq!(format!("{a}"), format!("{:.3} [{:.3}, {:.3}]", a.value, ci.low, ci.high));
    }
}
