//! `mt10 bench env | update | freq`: env stepping through the bridge against plain Python, the
//! cost of an update per combiner, and the Nash-MTL-k trade-off (weights recomputed every k
//! updates) as a sweep over k with baselines (the Nash-MTL paper's Table 5).
#[cfg(feature = "metaworld")]
mod env_scaling;

use super::sweep::write_tables;
use agent::bench::{update_benchmark, Reference, UpdateBenchmark};
use agent::{DeviceChoice, SacConfig};
use anyhow::{anyhow, Context};
use launch::sweep::{run_sweep, Row, SweepArgs, Table};
use rundir::config::RunConfig;
use rundir::UsageError;
use solvers::{CombinerConfig, Method};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command as Process, Stdio};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// MT10 env steps per second through our bridge and in a plain Python loop
    Env(EnvArgs),
    /// Milliseconds per SAC update per combiner, on synthetic MT10-shaped data
    Update(UpdateArgs),
    /// A sweep over the weight-update frequency k (rows `<method>-<k>`) and baselines: success,
    /// runtime per episode, ms per update, solver share, fallbacks
    Freq(Box<FreqArgs>),
}

#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    /// Vector steps timed on each side (without --seeds)
    #[arg(long, default_value_t = 500)]
    steps: usize,
    /// sync | async
    #[arg(long, default_value = "sync")]
    strategy: String,
    /// Step this many seeds' envs at once, one process each (as training does), against one
    /// seed alone
    #[arg(long, value_name = "N")]
    seeds: Option<usize>,
    /// With --seeds: how long each process steps
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// One seed's process of `--seeds` (this seed)
    #[arg(long, hide = true, value_name = "SEED", conflicts_with = "seeds")]
    seed_process: Option<u64>,
    /// One JSON object instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("networks").args(["preset", "config"])))]
pub struct UpdateArgs {
    /// Methods to time (ls is always timed, as the reference)
    #[arg(long, value_delimiter = ',', default_value = "ls,fairgrad,nash,mgda,pcgrad,cagrad,famo")]
    methods: Vec<String>,
    /// Transitions per update [default: 1280, or the batch_size of --preset / --config]
    #[arg(long)]
    batch: Option<usize>,
    /// Time the networks of this preset's agent section (see `mt10 train --preset`), e.g. the
    /// BRC networks, on the same MT10 shapes [default: the mtrl networks, 3x400 MLPs]
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Time the networks of this TOML config file's agent section (see configs/)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Change a field of that config before timing: --set agent.critic_hidden=[512,512,512]
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "networks")]
    assignments: Vec<String>,
    /// cpu | cuda | auto
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value_t = 1, value_name = "K")]
    update_weights_every: usize,
    /// Timed updates per method
    #[arg(long, default_value_t = 20)]
    updates: usize,
    /// libtorch's intra-op threads (also given to the PyTorch script) [default: libtorch's]
    #[arg(long)]
    threads: Option<usize>,
    /// Also time the same update written in PyTorch (scripts/bench_update_torch.py: ls, fairgrad,
    /// nash), its rounds interleaved with ours, in the Python of $VIRTUAL_ENV; the mtrl
    /// networks only
    #[arg(long, conflicts_with = "networks")]
    compare_torch: bool,
    /// One JSON object (with the time per phase) instead of tables
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct FreqArgs {
    /// Weight-update frequencies k, one row each (`<method>-<k>`)
    #[arg(long, value_delimiter = ',', value_name = "K,...", required_unless_present = "resume", conflicts_with = "resume")]
    every: Vec<usize>,
    /// Baseline rows, each method with its defaults (k = 1); runtimes are compared with `ls`
    #[arg(long, value_delimiter = ',', value_name = "METHODS", default_value = "ls", conflicts_with = "resume")]
    baselines: Vec<String>,
    #[command(flatten)]
    sweep: SweepArgs,
}

pub fn run(command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Env(args) => bench_env(args),
        Command::Update(args) => bench_update(args),
        Command::Freq(args) => bench_freq(args),
    }
}

#[cfg(feature = "metaworld")]
fn bench_env(args: &EnvArgs) -> anyhow::Result<()> {
    let strategy = args.strategy.parse().map_err(|e: envs::EnvError| UsageError(e.into()))?;
    if args.steps == 0 || args.seeds == Some(0) || !args.seconds.is_finite() || args.seconds <= 0.0 {
        return Err(UsageError(anyhow!("--steps, --seeds and --seconds must be positive")).into());
    }
    if let Some(seed) = args.seed_process {
        return env_scaling::seed_process(seed, args.seconds, strategy);
    }
    if let Some(seeds) = args.seeds {
        let scaling = env_scaling::measure(seeds, args.seconds, strategy)?;
        return print_json_or_text(args.json, &scaling, || {
            format!(
                "MT10 ({} strategy, {} s per process), one process per seed: {seeds} seed(s) {:.0} transitions/s in total, one seed alone {:.0} ({:.2}x; {} cores)",
                strategy.as_str(),
                scaling.seconds,
                scaling.total_steps_per_s,
                scaling.single_steps_per_s,
                scaling.total_steps_per_s / scaling.single_steps_per_s,
                scaling.cores
            )
        });
    }
    let bench = envs::metaworld::bench_env(args.steps, strategy)?;
    print_json_or_text(args.json, &bench, || {
        format!(
            "MT10 ({} strategy, {} vector steps each): bridge {:.0} env steps/s, plain Python {:.0} env steps/s ({:.1}%)",
            strategy.as_str(),
            bench.steps,
            bench.bridge_steps_per_s,
            bench.python_steps_per_s,
            100.0 * bench.bridge_steps_per_s / bench.python_steps_per_s
        )
    })
}

#[cfg(feature = "metaworld")]
fn print_json_or_text(json: bool, value: &impl serde::Serialize, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

#[cfg(not(feature = "metaworld"))]
fn bench_env(_: &EnvArgs) -> anyhow::Result<()> {
    Err(envs::EnvError::MetaWorldDisabled.into())
}

fn bench_update(args: &UpdateArgs) -> anyhow::Result<()> {
    let usage = |e: anyhow::Error| anyhow::Error::from(UsageError(e));
    let methods = args
        .methods
        .iter()
        .map(|name| name.parse::<Method>().map(CombinerConfig::new).map_err(|e| usage(e.into())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let device = match args.device.as_str() {
        "cpu" => DeviceChoice::Cpu,
        "cuda" => DeviceChoice::Cuda,
        "auto" => DeviceChoice::Auto,
        other => return Err(usage(anyhow!("unknown device `{other}` (expected cpu, cuda or auto)"))),
    };
    device.resolve().map_err(|e| usage(e.into()))?;
    if args.batch == Some(0) || args.update_weights_every == 0 || args.updates == 0 || args.threads == Some(0) {
        return Err(usage(anyhow!("--batch, --update-weights-every, --updates and --threads must be at least 1")));
    }
    let defaults = UpdateBenchmark::default();
    let networks = networks_to_time(args).map_err(usage)?;
    let agent = networks.as_ref().map_or(defaults.agent.clone(), |(_, agent)| agent.clone());
    let batch_size = args.batch.unwrap_or(if networks.is_some() { agent.batch_size } else { defaults.batch_size });
    let agent = SacConfig { batch_size, ..agent };
    agent.validate(defaults.num_tasks).map_err(|e| usage(e.into()))?;
    let bench = UpdateBenchmark {
        methods,
        batch_size,
        device,
        update_weights_every: args.update_weights_every,
        updates: args.updates,
        threads: args.threads,
        agent,
        ..defaults
    };
    let mut torch = if args.compare_torch { Some(TorchScript::start(&bench, &args.device)?) } else { None };
    let report = update_benchmark(&bench, torch.as_mut().map(|t| t as &mut dyn Reference<Error = anyhow::Error>))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "SAC update on MT10 shapes, batch {}, {} device, {} libtorch threads, weights every {} update(s), {} timed updates",
        report.batch, report.device, report.threads, report.update_weights_every, report.updates
    );
    if let Some((source, agent)) = &networks {
        println!(
            "networks of {source}: critic {}, actor {}; parameters: critic {} (both), actor {}",
            describe_critic(agent),
            describe_network(agent.actor_block, agent.actor_widths(), agent.layer_norm),
            report.parameters.critic,
            report.parameters.actor
        );
    }
    println!("| method | ms/update | ratio to ls | PyTorch ms/update | ours / PyTorch | ops_per_update | host_syncs_per_update |\n|---|---:|---:|---:|---:|---:|---:|");
    for (name, timing) in &report.methods {
        let (torch_ms, ratio) = match (timing.reference_ms_per_update, timing.ratio_to_reference) {
            (Some(ms), Some(ratio)) => (format!("{ms:.2}"), format!("{ratio:.2}")),
            _ => ("-".into(), "-".into()),
        };
        println!(
            "| {name} | {:.2} | {:.2} | {torch_ms} | {ratio} | {:.1} | {:.1} |",
            timing.ms_per_update, timing.ratio_to_ls, timing.ops_per_update, timing.host_syncs_per_update
        );
    }
    println!("\nact (one step of all tasks): ops_per_step {}, host_syncs_per_step {}", report.act.ops_per_step, report.act.host_syncs_per_step);
    let phases = agent::bench::Breakdown::default().named().map(|(phase, _)| phase);
    println!("\nmean ms per update by phase:\n| method | {} |\n|---|{}", phases.join(" | "), "---:|".repeat(phases.len()));
    for (name, timing) in &report.methods {
        println!("| {name} | {} |", timing.breakdown.named().map(|(_, ms)| format!("{ms:.2}")).join(" | "));
    }
    Ok(())
}

/// The agent section of `--preset` or `--config` with `--set` applied, and where it came from;
/// `None` for the default networks.
fn networks_to_time(args: &UpdateArgs) -> anyhow::Result<Option<(String, SacConfig)>> {
    let (source, mut config) = match (&args.preset, &args.config) {
        (Some(name), _) => (format!("preset {name}"), RunConfig::preset(name)?),
        (None, Some(path)) => (path.display().to_string(), RunConfig::from_file(path)?),
        (None, None) => return Ok(None),
    };
    for assignment in &args.assignments {
        config.set(assignment)?;
    }
    Ok(Some((source, config.agent)))
}

fn describe_critic(agent: &SacConfig) -> String {
    let network = describe_network(agent.critic_block, agent.critic_widths(), agent.layer_norm);
    match agent.critic {
        agent::CriticHead::Scalar => network,
        agent::CriticHead::Categorical => format!("{network}, categorical ({} bins)", agent.num_bins),
    }
}

fn describe_network(block: agent::Block, widths: &[usize], layer_norm: bool) -> String {
    match block {
        agent::Block::Bronet => format!("bronet {widths:?}"),
        agent::Block::Mlp if layer_norm => format!("mlp {widths:?} with layer norm"),
        agent::Block::Mlp => format!("mlp {widths:?}"),
    }
}

/// `scripts/bench_update_torch.py --serve`: one round of its updates per request.
struct TorchScript {
    child: Child,
    /// Closed on drop, which ends the script's request loop.
    requests: Option<ChildStdin>,
    replies: BufReader<ChildStdout>,
}

impl TorchScript {
    const SCRIPT: &'static str = include_str!("../../../scripts/bench_update_torch.py");
    const METHODS: [Method; 3] = [Method::Ls, Method::FairGrad, Method::Nash];

    fn start(bench: &UpdateBenchmark, device: &str) -> anyhow::Result<Self> {
        let mut methods = vec![Method::Ls.to_string()];
        methods.extend(bench.methods.iter().map(|m| m.method).filter(|m| *m != Method::Ls && Self::METHODS.contains(m)).map(|m| m.to_string()));
        let python = std::env::var_os("VIRTUAL_ENV").map_or_else(|| PathBuf::from("python3"), |venv| PathBuf::from(venv).join("bin/python"));
        let threads = bench.threads.unwrap_or(tch::get_num_threads() as usize);
        let mut child = Process::new(&python)
            .args(["-c", Self::SCRIPT, "--serve", "--methods", &methods.join(","), "--device", if device == "cpu" { "cpu" } else { "cuda" }])
            .args(["--batch", &bench.batch_size.to_string(), "--tasks", &bench.num_tasks.to_string()])
            .args(["--obs", &bench.obs_dim.to_string(), "--action", &bench.action_dim.to_string(), "--threads", &threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the PyTorch script with {}", python.display()))?;
        let requests = child.stdin.take().context("the PyTorch script's stdin")?;
        let mut replies = BufReader::new(child.stdout.take().context("the PyTorch script's stdout")?);
        let mut ready = String::new();
        replies.read_line(&mut ready)?;
        if ready.trim() != "ready" {
            return Err(anyhow!("the PyTorch script did not start (it said {ready:?})"));
        }
        Ok(Self { child, requests: Some(requests), replies })
    }
}

impl Reference for TorchScript {
    type Error = anyhow::Error;

    fn round(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        writeln!(self.requests.as_mut().context("the PyTorch script has been stopped")?, "round")?;
        let mut reply = String::new();
        self.replies.read_line(&mut reply)?;
        let times: BTreeMap<String, f64> = serde_json::from_str(&reply).with_context(|| format!("the PyTorch script's reply {reply:?}"))?;
        Ok(times.into_iter().collect())
    }
}

impl Drop for TorchScript {
    fn drop(&mut self) {
        drop(self.requests.take());
        let _ = self.child.wait();
    }
}

fn bench_freq(args: &FreqArgs) -> anyhow::Result<()> {
    if args.sweep.config.update_weights_every.is_some() {
        return Err(UsageError(anyhow!("bench freq sets the frequency from --every; drop --update-weights-every")).into());
    }
    let trained = run_sweep(&args.sweep, Table::Freq, |base| {
        let method = base.agent.combine.combiner.method;
        let every = |k: usize| format!("agent.combine.update_weights_every={k}");
        let mut rows: Vec<Row> = args.every.iter().map(|&k| Row { name: format!("{method}-{k}"), method: None, set: vec![every(k)] }).collect();
        rows.extend(args.baselines.iter().map(|b| Row { name: b.clone(), method: Some(b.clone()), set: vec![every(1)] }));
        Ok(rows)
    })?;
    write_tables(trained)
}
