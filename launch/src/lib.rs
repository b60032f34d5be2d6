//! Many seeds: each seed a child process (`--jobs` at a time) or a Slurm array task, stop
//! signals passed on to them, their progress lines drawn, and sweeps (rows x seeds) laid out and
//! resumed. One seed's training is `training`'s; it knows nothing of the reports.
pub mod seed_processes;
pub mod seeds;
pub mod slurm;
pub mod stop_signals;
pub mod sweep;
