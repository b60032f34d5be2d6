//! One seed from start to end: the trainer loop (the papers' protocol), its evaluations and
//! episode bookkeeping, filmed evaluations (GIFs, the contact sheet), its progress line. It
//! writes through `rundir` and knows nothing of other seeds, how seeds are launched, or reports.
pub mod device;
pub mod episodes;
pub mod evaluation;
pub mod progress;
pub mod trainer;
pub mod video;
pub mod video_sheet;
