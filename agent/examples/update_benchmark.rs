//! `cargo run --release -p agent --no-default-features --example update_benchmark -- [cpu|cuda]
//! [updates] [update_weights_every] [methods,comma,separated] [threads]`: prints the JSON report.
use agent::bench::{update_benchmark, UpdateBenchmark};
use solvers::{CombinerConfig, Method};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut bench = UpdateBenchmark::default();
    if let Some(device) = args.first() {
        bench.device = serde_json::from_value(serde_json::Value::String(device.clone()))?;
    }
    if let Some(updates) = args.get(1) {
        bench.updates = updates.parse()?;
    }
    if let Some(every) = args.get(2) {
        bench.update_weights_every = every.parse()?;
    }
    if let Some(methods) = args.get(3) {
        bench.methods = methods.split(',').map(|m| Ok(CombinerConfig::new(m.parse::<Method>()?))).collect::<Result<_, solvers::SolverError>>()?;
    }
    if let Some(threads) = args.get(4) {
        bench.threads = Some(threads.parse()?);
    }
    println!("{}", serde_json::to_string_pretty(&update_benchmark::<agent::AgentError>(&bench, None)?)?);
    Ok(())
}
