//! The mean and the standard error of the mean: the papers' statistic over seeds, and what the
//! training logs average over a log interval.

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Standard error of the mean: sample standard deviation (n - 1) over sqrt(n); 0 for one value.
pub fn sem(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let m = mean(values);
    let variance = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    (variance / n as f64).sqrt()
}
