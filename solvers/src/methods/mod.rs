//! One file per method; each implements [`crate::Combiner`].
mod aligned_mtl;
mod banditmtl;
mod cagrad;
mod cagrad_exact;
mod conflict_free;
mod db_mtl;
mod dual_cone;
mod dualproj;
mod dwa;
mod emtl;
mod excess_mtl;
mod fairgrad_exact;
mod fairgrad_sgd;
mod famo;
mod graddrop;
mod gradnorm;
mod gradvac;
mod imtlg;
mod kl_ball;
mod loss_transform;
mod ls;
mod mgda;
mod moco;
mod nash_ccp;
mod pcgrad;
mod rlw;
mod sdmgrad;
mod si;
mod stch;
mod upgrad;
mod uw;

pub use aligned_mtl::AlignedMtl;
pub use banditmtl::BanditMtl;
pub use cagrad::Cagrad;
pub use cagrad_exact::CagradExact;
pub use conflict_free::ConFig;
pub use db_mtl::DbMtl;
pub use dual_cone::project_weights;
pub use dualproj::DualProj;
pub use dwa::Dwa;
pub use emtl::Emtl;
pub use excess_mtl::ExcessMtl;
pub use fairgrad_exact::{fairgrad_root, FairGradExact};
pub use fairgrad_sgd::FairGradSgd;
pub use famo::Famo;
pub use graddrop::GradDrop;
pub use gradnorm::GradNorm;
pub use gradvac::GradVac;
pub use imtlg::Imtlg;
pub use kl_ball::mirror_ascent;
pub use loss_transform::LossTransform;
pub use ls::LinearScalarization;
pub use mgda::{min_norm_weights, Mgda};
pub use moco::{Moco, MocoSettings};
pub use nash_ccp::NashCcp;
pub use pcgrad::Pcgrad;
pub use rlw::Rlw;
pub use sdmgrad::SdmGrad;
pub use si::ScaleInvariant;
pub use stch::{Stch, StchSettings};
pub use upgrad::Upgrad;
pub use uw::Uncertainty;

use crate::{Gram, Method, Needs, SolverError, TaskInput};

const GRAM: Needs = Needs { gram: true, losses: false, jacobian: false, tracked: false, excess_risks: false };
const LOSSES: Needs = Needs { gram: false, losses: true, jacobian: false, tracked: false, excess_risks: false };
const GRAM_AND_LOSSES: Needs = Needs { gram: true, losses: true, jacobian: false, tracked: false, excess_risks: false };

/// The inputs [`crate::combine`] has already checked are present.
fn gram<'a>(input: &TaskInput<'a>) -> &'a Gram {
    input.gram.expect("combine() checks the Gram is present")
}

fn losses<'a>(input: &TaskInput<'a>) -> &'a [f64] {
    input.losses.expect("combine() checks the losses are present")
}

/// Losses of methods that take their logarithm or divide by them. `allow_zero` for methods that
/// add a small epsilon first.
fn positive_losses<'a>(method: Method, input: &TaskInput<'a>, allow_zero: bool) -> Result<&'a [f64], SolverError> {
    let losses = losses(input);
    match losses.iter().position(|&l| l < 0.0 || (l == 0.0 && !allow_zero)) {
        Some(task) => Err(SolverError::NonPositiveLoss { method, task, value: losses[task] }),
        None => Ok(losses),
    }
}

fn uniform(k: usize) -> Vec<f64> {
    vec![1.0 / k as f64; k]
}

/// A method's saved state: its own serialised fields.
fn saved<T: serde::Serialize>(method: &T) -> serde_json::Value {
    serde_json::to_value(method).expect("plain numbers serialise")
}

/// A saved state of `method` read back as `T`, or why it cannot be.
fn restored<T: serde::de::DeserializeOwned>(method: Method, state: &serde_json::Value) -> Result<T, SolverError> {
    serde_json::from_value(state.clone()).map_err(|e| SolverError::BadState { method, reason: e.to_string() })
}

/// Restores a bandit's distribution `{"p": [...]}`, checking it is one over `k` tasks.
fn load_distribution(method: Method, state: &serde_json::Value, k: usize) -> Result<Vec<f64>, SolverError> {
    let bad = |reason: String| SolverError::BadState { method, reason };
    let p: Vec<f64> = serde_json::from_value(state.get("p").cloned().unwrap_or_default()).map_err(|e| bad(e.to_string()))?;
    let total: f64 = p.iter().sum();
    if p.len() != k || p.iter().any(|x| !x.is_finite() || *x < 0.0) || (total - 1.0).abs() > 1e-6 {
        return Err(bad(format!("expected a distribution over {k} tasks, got {p:?}")));
    }
    Ok(p)
}
