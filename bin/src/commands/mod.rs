//! One module per subcommand: its arguments, and the calls into the crates that do the work.
pub mod bench;
pub mod eval;
pub mod report;
pub mod sweep;
pub mod train;
pub mod weights;
