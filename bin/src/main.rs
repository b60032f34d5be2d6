//! `mt10`: train one SAC policy on MetaWorld MT10 with fair gradient combiners.
mod bench;
mod checkpoint;
mod combiner_args;
mod config;
mod device;
#[cfg(feature = "metaworld")]
mod env_scaling;
mod episodes;
mod eval;
mod evaluation;
mod event_file;
mod logbook;
mod manifest;
mod plot;
mod progress;
mod report;
mod run_files;
mod seed_processes;
mod slurm;
mod stats;
mod sweep;
mod sweep_freq;
mod stop_signals;
mod train;
mod trainer;
mod video;
mod video_sheet;
mod weights;

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "mt10", version, about = "Multi-task SAC on MetaWorld MT10 with fair gradient combiners")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train seeds of one method: `mt10 train --method fairgrad --alpha 2 --seeds 10`
    #[command(allow_negative_numbers = true)]
    Train(Box<train::Args>),
    /// Train every row (a method with its options, an architecture) on the same seeds, then one
    /// table: `mt10 sweep --methods ls,pcgrad,cagrad,nash,famo,fairgrad --seeds 10`
    #[command(allow_negative_numbers = true)]
    Sweep(Box<sweep::Args>),
    /// Evaluate a checkpoint with the deterministic policy: per-task success and returns
    Eval(eval::Args),
    /// Benchmarks: env stepping, update cost per method, weight-update frequency
    #[command(subcommand)]
    Bench(bench::Command),
    /// The papers' table and plots from run directories, grouped by method
    Report(report::Args),
    /// Combine task gradients with one method and print the weights (JSON).
    #[command(allow_negative_numbers = true)]
    Weights(weights::Args),
}

/// An error in what the user asked for (bad option, bad input file): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UsageError(#[from] anyhow::Error);

/// Training stopped on SIGINT or SIGTERM after writing checkpoints: exit status 130 or 143.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {}", .0.name())]
pub struct Interrupted(pub stop_signals::StopSignal);

impl Interrupted {
    /// By the signal this process received (SIGINT where only a child was stopped, directly).
    pub fn by_received_signal() -> Self {
        Self(stop_signals::received().unwrap_or(stop_signals::StopSignal::Interrupt))
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            // clap's message is a paragraph plus usage hints; a usage error here is one line.
            let rendered = error.render().to_string();
            let paragraph: Vec<&str> = rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            eprintln!("mt10: {}", paragraph.join(" ").trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Train(args) => train::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Bench(command) => bench::run(&command),
        Command::Report(args) => report::run(&args),
        Command::Weights(args) => weights::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(Interrupted(signal)) = error.downcast_ref::<Interrupted>() {
                return ExitCode::from(signal.exit_status());
            }
            // Not eprintln: a stderr on a full disk must not turn the error into a panic.
            let _ = writeln!(std::io::stderr(), "mt10: {error:#}");
            ExitCode::from(if error.downcast_ref::<UsageError>().is_some() { 2 } else { 1 })
        }
    }
}
