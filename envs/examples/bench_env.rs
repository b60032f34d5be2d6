//! `cargo run -p envs --release --example bench_env -- [STEPS] [sync|async]`: prints the
//! bench's JSON object (the `mt10 bench env` command reports the same).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let steps = args.next().map_or(Ok(2000), |s| s.parse())?;
    let strategy = args
        .next()
        .map_or(Ok(envs::VectorStrategy::Sync), |s| s.parse())?;
    let bench = envs::metaworld::bench_env(steps, strategy)?;
    println!("{}", serde_json::to_string(&bench)?);
    Ok(())
}
