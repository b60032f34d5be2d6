use crate::methods::{
    AlignedMtl, BanditMtl, Cagrad, CagradExact, ConFig, DbMtl, DualProj, Dwa, Emtl, ExcessMtl, Famo, FairGradExact, FairGradSgd, GradDrop,
    GradNorm, GradVac, Imtlg, LinearScalarization, LossTransform, Mgda, Moco, MocoSettings, NashCcp, Pcgrad, Rlw, ScaleInvariant, SdmGrad, Stch,
    StchSettings, Uncertainty, Upgrad,
};
use crate::{Combiner, SolverError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = SolverError;

            fn from_str(s: &str) -> Result<Self, SolverError> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    named_enum!(@error $name, $what, s, concat!($($text, " "),+))
                })
            }
        }
    };
    (@error Method, $what:literal, $s:expr, $expected:expr) => { SolverError::UnknownMethod($s.to_string()) };
    (@error $name:ident, $what:literal, $s:expr, $expected:expr) => {
        SolverError::UnknownValue { what: $what, value: $s.to_string(), expected: $expected }
    };
}

named_enum!(
    /// A gradient combiner.
    Method, "method" {
        Ls => "ls",
        FairGrad => "fairgrad",
        Nash => "nash",
        Mgda => "mgda",
        Pcgrad => "pcgrad",
        Cagrad => "cagrad",
        Imtlg => "imtlg",
        Famo => "famo",
        Emtl => "emtl",
        Rlw => "rlw",
        Si => "si",
        Uw => "uw",
        Dwa => "dwa",
        BanditMtl => "banditmtl",
        GradDrop => "graddrop",
        Moco => "moco",
        Upgrad => "upgrad",
        DualProj => "dualproj",
        ConFig => "config",
        AlignedMtl => "alignedmtl",
        GradVac => "gradvac",
        DbMtl => "dbmtl",
        Stch => "stch",
        GradNorm => "gradnorm",
        SdmGrad => "sdmgrad",
        ExcessMtl => "excessmtl",
    }
);

named_enum!(
    /// How a method with several algorithms solves for its weights.
    Solver, "solver" {
        Sgd => "sgd",
        Exact => "exact",
        Mt10 => "mt10",
        Ccp => "ccp",
        Supervised => "supervised",
    }
);

named_enum!(
    /// MGDA's optional normalisation of each task gradient before the min-norm solve.
    MgdaNormalization, "normalization" {
        None => "none",
        L2 => "l2",
        Loss => "loss",
        LossPlus => "loss+",
    }
);

/// A combiner and its hyper-parameters. `None` means the method's default (see
/// [`CombinerConfig::build`]); setting an option the method does not use is an error, so that
/// a typo in an experiment is caught instead of silently ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CombinerConfig {
    pub method: Method,
    /// FairGrad's alpha (default 2, the MT10 value); gradnorm's restoring force (1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// fairgrad: `sgd` (the RL variant, default) or `exact`; nash: `exact` (default) or `ccp`;
    /// cagrad: `mt10` (default) or `exact`; famo: `supervised` (default) or `mt10`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver: Option<Solver>,
    /// CAGrad's c (default 0.9, the MT10 value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<f64>,
    /// Iterations of the approximate solvers (fairgrad sgd: 20, cagrad mt10: 20, nash ccp: 1,
    /// sdmgrad: 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iters: Option<usize>,
    /// Step size of a method's inner optimiser (fairgrad sgd 0.1, cagrad mt10 25 (50 at K = 50),
    /// famo 0.025, uw 0.025, gradnorm 0.025).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// MGDA's gradient normalisation (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<MgdaNormalization>,
    /// Mirror-ascent step of emtl (0.5), banditmtl (0.5) and excessmtl (0.01, LibMTL's
    /// `robust_step_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<f64>,
    /// KL-ball radius of emtl (0.1) and banditmtl (1.2), at most log K; moco's L2
    /// regularisation of its weight step (0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// EMTL's mix of MGDA and equity weights (0.5; 1 is plain MGDA); moco's step size of its
    /// gradient average (0.5); gradvac's step of its cosine targets (0.5); dbmtl's decay of its
    /// gradient average (0.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// MoCo's (0.5) and dbmtl's (0) decay exponent of beta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta_sigma: Option<f64>,
    /// FAMO's weight decay on its logits (0.01); moco's step size of its weights (0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    /// MoCo's decay exponent of gamma (0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma_sigma: Option<f64>,
    /// STCH's temperature (1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mu: Option<f64>,
    /// STCH's solves on the log losses before it averages the nadir point (4000: LibMTL's 4
    /// warm-up epochs of 1000 solves); gradnorm's solves at equal weights whose mean losses are
    /// its initial losses (1000: LibMTL's first epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<usize>,
    /// STCH's solves averaging the nadir point (1000: LibMTL's one epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average: Option<usize>,
    /// SDMGrad's regularisation toward the mean gradient (0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// The alpha-fair loss transform (FairGrad paper, section 6), under any method:
    /// `L_i -> L_i^(1-a)/(1-a)` (`log L_i` at a = 1). Positive losses only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_alpha: Option<f64>,
}

impl CombinerConfig {
    pub fn new(method: Method) -> Self {
        Self {
            method,
            alpha: None,
            solver: None,
            c: None,
            iters: None,
            lr: None,
            normalization: None,
            eta: None,
            rho: None,
            beta: None,
            beta_sigma: None,
            gamma: None,
            gamma_sigma: None,
            mu: None,
            warmup: None,
            average: None,
            lambda: None,
            loss_alpha: None,
        }
    }

    /// Checks the hyper-parameters for `k` tasks and builds the combiner.
    pub fn build(&self, k: usize) -> Result<Box<dyn Combiner>, SolverError> {
        if k == 0 {
            return Err(SolverError::NoTasks);
        }
        self.reject_unused()?;
        let method = self.method;
        let solver = self.solver.unwrap_or(match method {
            Method::FairGrad => Solver::Sgd,
            Method::Cagrad => Solver::Mt10,
            Method::Famo => Solver::Supervised,
            _ => Solver::Exact,
        });
        let combiner: Box<dyn Combiner> = match (method, solver) {
            (Method::Ls, _) => Box::new(LinearScalarization),
            (Method::FairGrad, Solver::Sgd) => Box::new(FairGradSgd {
                alpha: positive("alpha", self.alpha.unwrap_or(2.0))?,
                iters: at_least_one(self.iters.unwrap_or(20))?,
                lr: positive("lr", self.lr.unwrap_or(0.1))?,
            }),
            (Method::FairGrad, Solver::Exact) => {
                Box::new(FairGradExact::new(Method::FairGrad, positive("alpha", self.alpha.unwrap_or(2.0))?, false))
            }
            (Method::Nash, Solver::Exact) if self.iters.is_none() => Box::new(FairGradExact::new(Method::Nash, 1.0, true)),
            (Method::Nash, Solver::Exact) => return Err(SolverError::UnusedOption { method, option: "iters (with solver exact)" }),
            (Method::Nash, Solver::Ccp) => Box::new(NashCcp::new(k, at_least_one(self.iters.unwrap_or(1))?)),
            (Method::Mgda, _) => Box::new(Mgda { normalization: self.normalization.unwrap_or(MgdaNormalization::None) }),
            (Method::Pcgrad, _) => Box::new(Pcgrad),
            (Method::Cagrad, Solver::Mt10) => Box::new(Cagrad {
                c: non_negative("c", self.c.unwrap_or(0.9))?,
                iters: at_least_one(self.iters.unwrap_or(20))?,
                lr: positive("lr", self.lr.unwrap_or(if k == 50 { 50.0 } else { 25.0 }))?,
            }),
            (Method::Cagrad, Solver::Exact) => Box::new(CagradExact { c: non_negative("c", self.c.unwrap_or(0.9))? }),
            (Method::Imtlg, _) => Box::new(Imtlg),
            (Method::Famo, Solver::Supervised | Solver::Mt10) => Box::new(Famo::new(
                k,
                solver == Solver::Mt10,
                positive("lr", self.lr.unwrap_or(0.025))?,
                non_negative("gamma", self.gamma.unwrap_or(0.01))?,
            )),
            (Method::Emtl, _) => Box::new(Emtl::new(
                k,
                positive("eta", self.eta.unwrap_or(0.5))?,
                radius(self.rho.unwrap_or(0.1), k)?,
                unit_interval("beta", self.beta.unwrap_or(0.5))?,
            )),
            (Method::Rlw, _) => Box::new(Rlw),
            (Method::Si, _) => Box::new(ScaleInvariant),
            (Method::Uw, _) => Box::new(Uncertainty::new(k, positive("lr", self.lr.unwrap_or(0.025))?)),
            (Method::Dwa, _) => Box::new(Dwa::default()),
            (Method::BanditMtl, _) => Box::new(BanditMtl::new(
                k,
                positive("eta", self.eta.unwrap_or(0.5))?,
                radius(self.rho.unwrap_or(1.2), k)?,
            )),
            (Method::GradDrop, _) => Box::new(GradDrop),
            (Method::Moco, _) => Box::new(Moco::new(
                k,
                MocoSettings {
                    beta: unit_step("beta", self.beta.unwrap_or(0.5))?,
                    beta_sigma: non_negative("beta_sigma", self.beta_sigma.unwrap_or(0.5))?,
                    gamma: positive("gamma", self.gamma.unwrap_or(0.1))?,
                    gamma_sigma: non_negative("gamma_sigma", self.gamma_sigma.unwrap_or(0.5))?,
                    rho: non_negative("rho", self.rho.unwrap_or(0.0))?,
                },
            )),
            (Method::Upgrad, _) => Box::new(Upgrad),
            (Method::DualProj, _) => Box::new(DualProj),
            (Method::ConFig, _) => Box::new(ConFig),
            (Method::AlignedMtl, _) => Box::new(AlignedMtl),
            (Method::GradVac, _) => Box::new(GradVac::new(k, unit_interval("beta", self.beta.unwrap_or(0.5))?)),
            (Method::DbMtl, _) => Box::new(DbMtl::new(
                unit_interval("beta", self.beta.unwrap_or(0.9))?,
                non_negative("beta_sigma", self.beta_sigma.unwrap_or(0.0))?,
            )),
            (Method::Stch, _) => Box::new(Stch::new(
                k,
                StchSettings {
                    mu: positive("mu", self.mu.unwrap_or(1.0))?,
                    warmup: self.warmup.unwrap_or(4000),
                    average: at_least_one_of("average", self.average.unwrap_or(1000))?,
                },
            )),
            (Method::GradNorm, _) => Box::new(GradNorm::new(
                k,
                positive("alpha", self.alpha.unwrap_or(1.5))?,
                positive("lr", self.lr.unwrap_or(0.025))?,
                at_least_one_of("warmup", self.warmup.unwrap_or(1000))?,
            )),
            (Method::SdmGrad, _) => Box::new(SdmGrad::new(
                k,
                non_negative("lambda", self.lambda.unwrap_or(0.3))?,
                at_least_one(self.iters.unwrap_or(20))?,
            )),
            (Method::ExcessMtl, _) => Box::new(ExcessMtl::new(k, positive("eta", self.eta.unwrap_or(0.01))?)),
            (method, solver) => {
                return Err(SolverError::UnknownValue {
                    what: "solver",
                    value: solver.to_string(),
                    expected: solvers_of(method),
                })
            }
        };
        Ok(match self.loss_alpha {
            Some(a) => Box::new(LossTransform::new(non_negative("loss_alpha", a)?, combiner)),
            None => combiner,
        })
    }

    fn reject_unused(&self) -> Result<(), SolverError> {
        use Method::*;
        let m = self.method;
        let uses = |set: &[Method]| set.contains(&m);
        let options: [(&'static str, bool, bool); 17] = [
            ("alpha", self.alpha.is_some(), uses(&[FairGrad, GradNorm])),
            ("solver", self.solver.is_some(), uses(&[FairGrad, Nash, Cagrad, Famo])),
            ("c", self.c.is_some(), uses(&[Cagrad])),
            ("iters", self.iters.is_some(), uses(&[FairGrad, Nash, Cagrad, SdmGrad])),
            ("lr", self.lr.is_some(), uses(&[FairGrad, Cagrad, Famo, Uw, GradNorm])),
            ("normalization", self.normalization.is_some(), uses(&[Mgda])),
            ("eta", self.eta.is_some(), uses(&[Emtl, BanditMtl, ExcessMtl])),
            ("rho", self.rho.is_some(), uses(&[Emtl, BanditMtl, Moco])),
            ("beta", self.beta.is_some(), uses(&[Emtl, Moco, GradVac, DbMtl])),
            ("beta_sigma", self.beta_sigma.is_some(), uses(&[Moco, DbMtl])),
            ("gamma", self.gamma.is_some(), uses(&[Famo, Moco])),
            ("gamma_sigma", self.gamma_sigma.is_some(), uses(&[Moco])),
            ("mu", self.mu.is_some(), uses(&[Stch])),
            ("warmup", self.warmup.is_some(), uses(&[Stch, GradNorm])),
            ("average", self.average.is_some(), uses(&[Stch])),
            ("lambda", self.lambda.is_some(), uses(&[SdmGrad])),
            // MoCo and DB-MTL normalise every task gradient by its loss: a transform of the
            // gradients would cancel, and the tracked average cannot take it.
            ("loss_alpha", self.loss_alpha.is_some(), !uses(&[Moco, DbMtl])),
        ];
        match options.iter().find(|(_, set, used)| *set && !used) {
            Some((option, _, _)) => Err(SolverError::UnusedOption { method: m, option }),
            None => Ok(()),
        }
    }
}

fn solvers_of(method: Method) -> &'static str {
    match method {
        Method::FairGrad => "sgd exact",
        Method::Cagrad => "mt10 exact",
        Method::Nash => "exact ccp",
        Method::Famo => "supervised mt10",
        _ => "none: this method has one solver",
    }
}

fn invalid(name: &'static str, value: f64, reason: &str) -> SolverError {
    SolverError::InvalidParameter { name, value, reason: reason.to_string() }
}

fn positive(name: &'static str, value: f64) -> Result<f64, SolverError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(invalid(name, value, "must be positive and finite"))
    }
}

fn non_negative(name: &'static str, value: f64) -> Result<f64, SolverError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(invalid(name, value, "must be non-negative and finite"))
    }
}

fn unit_interval(name: &'static str, value: f64) -> Result<f64, SolverError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(name, value, "must lie in [0, 1]"))
    }
}

/// A step size of a moving average: in (0, 1].
fn unit_step(name: &'static str, value: f64) -> Result<f64, SolverError> {
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(invalid(name, value, "must lie in (0, 1]"))
    }
}

fn at_least_one(iters: usize) -> Result<usize, SolverError> {
    at_least_one_of("iters", iters)
}

fn at_least_one_of(name: &'static str, count: usize) -> Result<usize, SolverError> {
    if count >= 1 {
        Ok(count)
    } else {
        Err(invalid(name, 0.0, "must be at least 1"))
    }
}

/// A KL-ball radius around the uniform distribution: the largest KL to uniform is log K.
fn radius(rho: f64, k: usize) -> Result<f64, SolverError> {
    let max = (k as f64).ln();
    if rho.is_finite() && rho > 0.0 && rho <= max {
        Ok(rho)
    } else {
        Err(invalid("rho", rho, &format!("must lie in (0, log K] = (0, {max:.4}] for K = {k}")))
    }
}
