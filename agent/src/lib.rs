//! Multi-task Soft Actor-Critic on libtorch, with all `K` per-task gradients of a component from
//! one backward pass and a gradient combiner (from `solvers`) turning them into each update.
//!
//! [`Sac`] holds the networks, optimizers, combiners and the replay buffer; a trainer calls
//! [`Sac::act`], [`Sac::observe`] and [`Sac::update`], and [`Sac::save`] / [`Sac::load`] for
//! checkpoints. [`bench::update_benchmark`] times updates per combiner on synthetic data.

mod adam;
pub mod bench;
#[cfg(test)]
mod brc_reference;
mod categorical;
mod checkpoint;
mod component;
mod config;
mod critic;
pub mod counting;
mod error;
mod layout;
mod network;
mod phases;
mod plasticity;
mod policy;
mod replay;
mod return_range;
mod sac;
mod task_embedding;
mod task_gradients;
#[cfg(test)]
mod testing;

pub use component::ComponentReport;
pub use phases::Phases;
pub use plasticity::{NetworkPlasticity, Plasticity};
pub use config::{Architecture, Block, CombineConfig, Component, CriticHead, DeviceChoice, LsReduction, NashFallback, RewardScaling, SacConfig, Sampling, TaskEncoder, Temperature};
pub use error::{AgentError, SkipReason};
pub use replay::{HostBatch, ReplayBuffer};
pub use sac::{ActionMode, ParameterCounts, Sac, UpdateReport};
