//! `mt10 sweep`: one row per method or per `[[row]]` of a rows file, every row on the same
//! seeds (trained by `launch`), then the table of all rows (`report`).
use anyhow::anyhow;
use launch::sweep::{read_rows, run_sweep, Row, SweepArgs, Table, Trained, REPORT_DIR};
use rundir::UsageError;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Methods, one row each with its default options, e.g. ls,pcgrad,cagrad,nash,famo,fairgrad
    #[arg(long, value_delimiter = ',', value_name = "METHODS", required_unless_present_any = ["rows", "resume"], conflicts_with = "resume")]
    methods: Vec<String>,
    /// A TOML file of rows (after those of --methods): `[[row]]` with `name`, an optional
    /// `method` and `set = ["key=value", ...]` (see configs/fairgrad-mt10.toml)
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    rows: Option<PathBuf>,
    #[command(flatten)]
    sweep: SweepArgs,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if args.sweep.config.combiner.is_some() {
        return Err(UsageError(anyhow!("mt10 sweep takes --methods or --rows, not --method (give a method's options in a rows file)")).into());
    }
    let trained = run_sweep(&args.sweep, Table::Report, |_| {
        let mut rows: Vec<Row> = args.methods.iter().map(|m| Row { name: m.clone(), method: Some(m.clone()), set: Vec::new() }).collect();
        if let Some(path) = &args.rows {
            rows.extend(read_rows(path)?);
        }
        Ok(rows)
    })?;
    write_tables(trained)
}

/// The tables of a sweep whose runs have all trained (nothing where they went to Slurm).
pub fn write_tables(trained: Option<Trained>) -> anyhow::Result<()> {
    let Some(Trained { dir, table, rows }) = trained else {
        return Ok(());
    };
    let row_dirs: Vec<PathBuf> = rows.iter().map(|(_, dir, _)| dir.clone()).collect();
    report::generate(&row_dirs, &dir.join(REPORT_DIR), report::Budget::Whole)?;
    if table == Table::Freq {
        report::sweep_freq::write(&dir, &rows)?;
    }
    Ok(())
}
