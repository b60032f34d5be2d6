//! Mean and standard error over seeds, as the papers report them.

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

#[cfg(test)]
mod tests {
    #[test]
    fn standard_error_of_a_small_sample() {
        // Sample variance of [1, 2, 3, 4] is 5/3; s.e.m. = sqrt(5/3 / 4).
        assert!((super::sem(&[1.0, 2.0, 3.0, 4.0]) - (5.0f64 / 12.0).sqrt()).abs() < 1e-12);
        assert_eq!(super::sem(&[0.7]), 0.0);
        assert_eq!(super::mean(&[1.0, 2.0]), 1.5);
    }
}
