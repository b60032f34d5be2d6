//! `mt10 bench env --seeds N`: how MT10 stepping scales over seeds run the way training runs
//! them, one process (one interpreter, one GIL) per seed. One seed alone is timed first, then N
//! at once; each process builds and warms up its envs, says `ready`, and starts stepping when
//! told, so the N are timed over the same window, from the start signal to the last finish.
use anyhow::{anyhow, bail, Context};
use envs::metaworld::Stepper;
use envs::VectorStrategy;
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// Rates in single-task transitions per second.
#[derive(Debug, Serialize)]
pub struct Scaling {
    pub seeds: usize,
    pub total_steps_per_s: f64,
    pub single_steps_per_s: f64,
    pub cores: usize,
    pub strategy: VectorStrategy,
    /// Vector steps timed per seed.
    pub steps: usize,
}

const READY: &str = "ready";
const DONE: &str = "done";

pub fn measure(seeds: usize, steps: usize, strategy: VectorStrategy) -> anyhow::Result<Scaling> {
    let single_steps_per_s = step_together(1, steps, strategy)?;
    let total_steps_per_s = if seeds == 1 { single_steps_per_s } else { step_together(seeds, steps, strategy)? };
    Ok(Scaling {
        seeds,
        total_steps_per_s,
        single_steps_per_s,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        strategy,
        steps,
    })
}

/// Transitions per second of `seeds` processes stepping at once.
fn step_together(seeds: usize, steps: usize, strategy: VectorStrategy) -> anyhow::Result<f64> {
    let exe = std::env::current_exe().context("cannot find the mt10 executable")?;
    let mut children = (1..=seeds as u64)
        .map(|seed| {
            Command::new(&exe)
                .args(["bench", "env", "--seed-process", &seed.to_string(), "--steps", &steps.to_string(), "--strategy", strategy.as_str()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .context("cannot start a seed's process")
        })
        .collect::<anyhow::Result<Vec<Child>>>()?;
    let mut outputs: Vec<_> = children.iter_mut().map(|c| BufReader::new(c.stdout.take().expect("piped"))).collect();
    for output in &mut outputs {
        expect_line(output, READY)?;
    }
    let start = Instant::now();
    for child in &mut children {
        writeln!(child.stdin.as_mut().expect("piped"), "go")?;
    }
    for output in &mut outputs {
        expect_line(output, DONE)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let tasks = envs::MT10_TASKS.len();
    for mut child in children {
        drop(child.stdin.take());
        child.wait()?;
    }
    Ok((seeds * steps * tasks) as f64 / seconds)
}

/// Waits for the line `expected` (the envs' libraries may print lines of their own first).
fn expect_line(output: &mut impl BufRead, expected: &str) -> anyhow::Result<()> {
    let mut line = String::new();
    while line.trim() != expected {
        line.clear();
        if output.read_line(&mut line)? == 0 {
            bail!("a seed's stepping process ended before saying `{expected}` (its error is above)");
        }
    }
    Ok(())
}

/// One seed's process: builds the envs, says `ready`, steps when a line arrives on stdin.
pub fn seed_process(seed: u64, steps: usize, strategy: VectorStrategy) -> anyhow::Result<()> {
    let mut stepper = Stepper::new(strategy, seed)?;
    println!("{READY}");
    let mut go = String::new();
    if std::io::stdin().read_line(&mut go)? == 0 {
        return Err(anyhow!("the benchmark's parent process went away"));
    }
    stepper.time(steps)?;
    println!("{DONE}");
    Ok(())
}
