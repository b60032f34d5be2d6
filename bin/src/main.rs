//! `mt10`: train one SAC policy on MetaWorld MT10 with fair gradient combiners.
mod commands;

use clap::{Parser, Subcommand};
use commands::{bench, eval, report, sweep, train, weights};
use launch::stop_signals::Interrupted;
use rundir::UsageError;
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
