//! `mt10 report`: the papers' tables and plots from run directories (the `report` crate).
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run directories (written by `mt10 train`)
    #[arg(required = true, value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// Where report.md, report.csv, the score matrices and the PNG plots go
    #[arg(long, default_value = "report", value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    ::report::generate(&args.runs, &args.out)
}
