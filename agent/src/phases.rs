//! Where the time of a component update goes, shared by the component's update and its per-task
//! gradient pass.
use serde::Serialize;
use std::time::Instant;

/// Milliseconds per phase of a component update. They are host times: on CUDA, work queued on
/// the device is charged to the phase that next waits for it (a host copy).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Phases {
    /// The forward pass of the task losses and the backward pass.
    pub forward_backward_ms: f64,
    /// Task gradients of the shared layers from the backward pass's per-sample factors, and
    /// their Gram matrix, accumulated layer by layer.
    pub task_gradients_ms: f64,
    /// The Gram matrix and the losses to the host.
    pub gram_ms: f64,
    /// `d = sum_k w_k g_k`.
    pub direction_ms: f64,
    /// Norm, clipping and the Adam step.
    pub adam_ms: f64,
}

/// Milliseconds since `since`, which restarts.
pub(crate) fn lap(since: &mut Instant) -> f64 {
    let now = Instant::now();
    let ms = (now - *since).as_secs_f64() * 1e3;
    *since = now;
    ms
}
