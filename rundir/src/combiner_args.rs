use clap::Args;
use solvers::{CombinerConfig, Method, MgdaNormalization, Solver};

/// A gradient combiner and its hyper-parameters, as command-line options. Options a method does
/// not use are rejected when the combiner is built.
#[derive(Debug, Clone, Args)]
pub struct CombinerArgs {
    /// ls | fairgrad | nash | mgda | pcgrad | cagrad | imtlg | famo | emtl | rlw | si | uw | dwa | banditmtl | graddrop | moco |
    /// upgrad | dualproj | config | alignedmtl | gradvac | dbmtl | stch | gradnorm | sdmgrad | excessmtl
    #[arg(long, value_parser = parse::<Method>)]
    pub method: Method,
    /// FairGrad's alpha [default: 2]; gradnorm's restoring force [default: 1.5]
    #[arg(long)]
    pub alpha: Option<f64>,
    /// fairgrad: sgd (the RL variant, default) | exact; nash: exact (default) | ccp (as published);
    /// cagrad: mt10 (default) | exact; famo: supervised | mt10 (default under the mtrl preset)
    #[arg(long, value_parser = parse::<Solver>)]
    pub solver: Option<Solver>,
    /// CAGrad's c [default: 0.9]
    #[arg(long)]
    pub c: Option<f64>,
    /// Iterations of fairgrad's sgd, cagrad's mt10 and sdmgrad's solvers [default: 20], CCP steps
    /// of nash's ccp solver per weight update [default: 1]
    #[arg(long)]
    pub iters: Option<usize>,
    /// Inner step size: fairgrad sgd 0.1, cagrad mt10 25, famo 0.025, uw 0.025, gradnorm (Adam on
    /// its loss scales) 0.025
    #[arg(long)]
    pub lr: Option<f64>,
    /// MGDA's gradient normalisation: none | l2 | loss | loss+ [default: none]
    #[arg(long, value_parser = parse::<MgdaNormalization>)]
    pub normalization: Option<MgdaNormalization>,
    /// Mirror-ascent step of emtl and banditmtl [default: 0.5], excessmtl (LibMTL's robust_step_size) [default: 0.01]
    #[arg(long)]
    pub eta: Option<f64>,
    /// KL-ball radius of emtl (0.1) and banditmtl (1.2), at most log K; moco's L2 term in its
    /// weight step (0)
    #[arg(long)]
    pub rho: Option<f64>,
    /// EMTL's weight on MGDA [default: 0.5]; moco's step size of its gradient average [default: 0.5];
    /// gradvac's step of its cosine targets [default: 0.5]; dbmtl's decay of its gradient average
    /// [default: 0.9]
    #[arg(long)]
    pub beta: Option<f64>,
    /// Decay exponent of beta, beta_t = beta / t^beta_sigma: moco [default: 0.5], dbmtl [default: 0]
    #[arg(long)]
    pub beta_sigma: Option<f64>,
    /// FAMO's weight decay on its logits [default: 0.01]; moco's step size of its weights [default: 0.1]
    #[arg(long)]
    pub gamma: Option<f64>,
    /// MoCo's decay exponent of gamma, gamma_t = gamma / t^gamma_sigma [default: 0.5]
    #[arg(long)]
    pub gamma_sigma: Option<f64>,
    /// STCH's temperature [default: 1]
    #[arg(long)]
    pub mu: Option<f64>,
    /// Warm-up solves: stch on the log losses before averaging its nadir point [default: 4000];
    /// gradnorm at equal weights, averaging its initial losses [default: 1000]
    #[arg(long)]
    pub warmup: Option<usize>,
    /// STCH's solves averaging its nadir point, after the warm-up [default: 1000]
    #[arg(long)]
    pub average: Option<usize>,
    /// SDMGrad's regularisation toward the mean gradient [default: 0.3]
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Apply the alpha-fair loss transform L^(1-a)/(1-a) under the method (positive losses only)
    #[arg(long)]
    pub loss_alpha: Option<f64>,
}

fn parse<T: std::str::FromStr<Err = solvers::SolverError>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: solvers::SolverError| e.to_string())
}

impl CombinerArgs {
    pub fn config(&self) -> CombinerConfig {
        CombinerConfig {
            method: self.method,
            alpha: self.alpha,
            solver: self.solver,
            c: self.c,
            iters: self.iters,
            lr: self.lr,
            normalization: self.normalization,
            eta: self.eta,
            rho: self.rho,
            beta: self.beta,
            beta_sigma: self.beta_sigma,
            gamma: self.gamma,
            gamma_sigma: self.gamma_sigma,
            mu: self.mu,
            warmup: self.warmup,
            average: self.average,
            lambda: self.lambda,
            loss_alpha: self.loss_alpha,
        }
    }
}
