//! `mt10 bench env --seeds N`: how MT10 stepping scales over seeds run the way training runs
//! them, one process (one interpreter, one GIL) per seed. One seed alone is timed first, then N
//! at once; each process builds and warms up its envs, says `ready`, and when told to start
//! steps for the same number of seconds as the others, so all are timed over one window.
use anyhow::{anyhow, bail, Context};
use envs::metaworld::Stepper;
use envs::VectorStrategy;
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Rates in single-task transitions per second.
#[derive(Debug, Serialize)]
pub struct Scaling {
    pub seeds: usize,
    pub total_steps_per_s: f64,
    pub single_steps_per_s: f64,
    pub cores: usize,
    pub strategy: VectorStrategy,
    /// How long each process stepped.
    pub seconds: f64,
}

const READY: &str = "ready";
const RATE: &str = "rate ";

pub fn measure(seeds: usize, seconds: f64, strategy: VectorStrategy) -> anyhow::Result<Scaling> {
    let single_steps_per_s = step_together(1, seconds, strategy)?;
    let total_steps_per_s = if seeds == 1 { single_steps_per_s } else { step_together(seeds, seconds, strategy)? };
    Ok(Scaling {
        seeds,
        total_steps_per_s,
        single_steps_per_s,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        strategy,
        seconds,
    })
}

/// The summed transition rates of `seeds` processes stepping at once.
fn step_together(seeds: usize, seconds: f64, strategy: VectorStrategy) -> anyhow::Result<f64> {
    let exe = std::env::current_exe().context("cannot find the mt10 executable")?;
    let mut children = (1..=seeds as u64)
        .map(|seed| {
            Command::new(&exe)
                .args(["bench", "env", "--seed-process", &seed.to_string(), "--seconds", &seconds.to_string(), "--strategy", strategy.as_str()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .context("cannot start a seed's process")
        })
        .collect::<anyhow::Result<Vec<Child>>>()?;
    let mut outputs: Vec<_> = children.iter_mut().map(|c| BufReader::new(c.stdout.take().expect("piped"))).collect();
    for output in &mut outputs {
        line_starting(output, READY)?;
    }
    for child in &mut children {
        writeln!(child.stdin.as_mut().expect("piped"), "go")?;
    }
    let mut total = 0.0;
    for output in &mut outputs {
        let line = line_starting(output, RATE)?;
        total += line[RATE.len()..].trim().parse::<f64>().context("a seed's process reported no rate")?;
    }
    for mut child in children {
        drop(child.stdin.take());
        child.wait()?;
    }
    Ok(total)
}

/// The first line that starts with `prefix` (the envs' libraries may print lines of their own).
fn line_starting(output: &mut impl BufRead, prefix: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    while !line.starts_with(prefix) {
        line.clear();
        if output.read_line(&mut line)? == 0 {
            bail!("a seed's stepping process ended before saying `{}` (its error is above)", prefix.trim());
        }
    }
    Ok(line)
}

/// One seed's process: builds the envs, says `ready`, and when a line arrives on stdin steps
/// for `seconds`, then reports its rate in transitions per second.
pub fn seed_process(seed: u64, seconds: f64, strategy: VectorStrategy) -> anyhow::Result<()> {
    let mut stepper = Stepper::new(strategy, seed)?;
    println!("{READY}");
    let mut go = String::new();
    if std::io::stdin().read_line(&mut go)? == 0 {
        return Err(anyhow!("the benchmark's parent process went away"));
    }
    let window = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut steps = 0;
    while start.elapsed() < window {
        stepper.time(1)?;
        steps += 1;
    }
    println!("{RATE}{}", (steps * stepper.tasks()) as f64 / start.elapsed().as_secs_f64());
    Ok(())
}
