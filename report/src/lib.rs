//! Reports over run directories: the papers' tables (mean +- s.e.m., rliable's interval
//! estimates), their plots, and the weight-update frequency table of `mt10 bench freq`. It only
//! reads what `rundir` describes; it knows nothing of how runs were trained or launched.
pub mod plot;
pub mod stats;
pub mod sweep_freq;
mod tables;

pub use tables::{generate, Budget};
