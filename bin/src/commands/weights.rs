//! `mt10 weights`: one combiner on the user's own gradients, for inspection and for checking
//! methods against the reference implementations' outputs.
use anyhow::{anyhow, Context};
use rundir::combiner_args::CombinerArgs;
use rundir::UsageError;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use solvers::{combine, direction, Fallback, Gram, Jacobian, SquaredGradientSum, TaskInput, Tracked};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    combiner: CombinerArgs,
    /// Seed of the RNG that randomised methods (pcgrad, rlw, graddrop, gradvac) draw from
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// JSON file (or - for stdin): {"jacobian": [[...], ...], "losses": [...]} with one row per
    /// task, or {"gram": [[...], ...], "losses": [...]}; "losses" only where the method needs them
    #[arg(long)]
    input: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    jacobian: Option<Vec<Vec<f64>>>,
    gram: Option<Vec<Vec<f64>>>,
    losses: Option<Vec<f64>>,
}

#[derive(Debug, Serialize)]
struct Output {
    method: String,
    /// Weights on the raw task gradients: `d = sum_i weights[i] g_i`.
    weights: Vec<f64>,
    /// A tracking method's own weights `lambda` on its average `Y` (`d = Y^T lambda`): moco, dbmtl.
    #[serde(skip_serializing_if = "Option::is_none")]
    lambda: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<Vec<f64>>,
    fallback: Option<Fallback>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let output = solve(args).map_err(UsageError)?;
    println!("{}", serde_json::to_string(&output)?);
    Ok(())
}

fn solve(args: &Args) -> anyhow::Result<Output> {
    let text = if args.input.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(&args.input).with_context(|| format!("cannot read {}", args.input.display()))?
    };
    let input: Input = serde_json::from_str(&text).with_context(|| format!("{} is not valid input", args.input.display()))?;
    let jacobian = input.jacobian.as_deref().map(Jacobian::from_rows).transpose()?;
    let gram = match (&input.gram, &jacobian) {
        (Some(_), Some(_)) => return Err(anyhow!("give either \"jacobian\" or \"gram\", not both")),
        (Some(rows), None) => Gram::from_rows(rows)?,
        (None, Some(jacobian)) => jacobian.gram(),
        (None, None) => return Err(anyhow!("the input needs \"jacobian\" (one row per task) or \"gram\"")),
    };
    let k = gram.k();
    let mut combiner = args.combiner.config().build(k)?;
    let needs = combiner.needs();
    if (needs.jacobian || needs.excess_risks) && jacobian.is_none() {
        return Err(anyhow!("{} needs the full Jacobian: give \"jacobian\", not \"gram\"", args.combiner.method));
    }
    if needs.losses && input.losses.is_none() {
        return Err(anyhow!("{} needs the task losses: add \"losses\" to the input", args.combiner.method));
    }
    // A method that tracks the gradients takes its first step, from a zero average.
    let tracked = needs.tracked.then(|| Tracked::zero(k));
    // A method that sums the squared gradients (ExcessMTL) takes its first step too.
    let risks = jacobian.as_ref().filter(|_| needs.excess_risks).map(|j| SquaredGradientSum::zeros(k, j.p()).excess_risks(j));
    let task_input = TaskInput {
        gram: Some(&gram),
        losses: input.losses.as_deref(),
        jacobian: jacobian.as_ref(),
        tracked: tracked.as_ref(),
        excess_risks: risks.as_deref(),
    };
    // As in training: a solve that falls back applies the last good weights, here uniform.
    let combination = combine(combiner.as_mut(), k, &task_input, &mut ChaCha8Rng::seed_from_u64(args.seed))?.or_last_good(&vec![1.0 / k as f64; k]);
    // From a zero average, Y = diag(scale) J: d = Y^T lambda has raw weights scale_i lambda_i.
    let (weights, lambda) = match &combination.tracking {
        Some(update) => (combination.weights.iter().zip(&update.scale).map(|(l, s)| l * s).collect(), Some(combination.weights)),
        None => (combination.weights, None),
    };
    let direction = combination.direction.or_else(|| jacobian.as_ref().map(|j| direction(&weights, j)));
    Ok(Output { method: args.combiner.method.to_string(), weights, lambda, direction, fallback: combination.fallback })
}
