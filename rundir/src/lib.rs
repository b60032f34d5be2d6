//! The run directory as a library: a run's config (presets, flags, `--set`, checks), the files a
//! seed writes (`metrics.csv`, `weights.csv`, `summary.json`, TensorBoard events) and its
//! checkpoints. It knows nothing of how a seed trains, how seeds are launched, or the report.
pub mod checkpoint;
pub mod combiner_args;
pub mod config;
pub mod event_file;
pub mod logbook;
pub mod manifest;
pub mod mean;
pub mod run_files;

/// An error in what the user asked for (bad option, bad input file): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UsageError(#[from] pub anyhow::Error);
