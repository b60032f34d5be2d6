//! `mt10 report`: the papers' tables and plots from run directories (the `report` crate).
use ::report::Budget;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run directories (written by `mt10 train`)
    #[arg(required = true, value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// Where report.md, report.csv, the score matrices and the PNG plots go
    #[arg(long, default_value = "report", value_name = "DIR")]
    out: PathBuf,
    /// Read each seed up to this step only (its evaluations at or before it): runs compared at
    /// equal steps. Every seed must have got there
    #[arg(long, value_name = "STEPS", conflicts_with = "at_wall_time")]
    at_step: Option<u64>,
    /// Read each seed up to this much training wall time only (its evaluations that ended by
    /// then): runs compared at equal time. Seconds, or with a unit: 90s, 40m, 1.5h
    #[arg(long, value_name = "TIME", value_parser = seconds)]
    at_wall_time: Option<f64>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let budget = match (args.at_step, args.at_wall_time) {
        (Some(steps), _) => Budget::Steps(steps),
        (None, Some(seconds)) => Budget::WallTimeS(seconds),
        (None, None) => Budget::Whole,
    };
    ::report::generate(&args.runs, &args.out, budget)
}

/// `2400`, `2400s`, `40m` or `0.5h` as seconds, positive and finite.
fn seconds(text: &str) -> Result<f64, String> {
    let (number, unit) = match text.strip_suffix(['s', 'm', 'h']) {
        Some(number) => (number, &text[number.len()..]),
        None => (text, "s"),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("expected seconds, or a number with s, m or h, got {text:?}"))?;
    let scale = match unit {
        "m" => 60.0,
        "h" => 3600.0,
        _ => 1.0,
    };
    if !(value.is_finite() && value > 0.0) {
        return Err(format!("expected a positive time, got {text:?}"));
    }
    Ok(value * scale)
}

#[cfg(test)]
mod tests {
    #[test]
    fn wall_times_read_with_or_without_a_unit() {
        assert_eq!(super::seconds("2400"), Ok(2400.0));
        assert_eq!(super::seconds("90s"), Ok(90.0));
        assert_eq!(super::seconds("40m"), Ok(2400.0));
        assert_eq!(super::seconds("1.5h"), Ok(5400.0));
        for bad in ["", "m", "-3m", "0", "inf", "40 minutes", "nan"] {
            assert!(super::seconds(bad).is_err(), "{bad:?}");
        }
    }
}
