//! Exact counts of what bounds an update on a GPU, taken on any device:
//! - **ops**: ATen operator calls as libtorch's dispatcher records them at the top level of their
//!   thread (its own `RecordFunction` observer, `cpp/op_counter.cpp`). On CUDA each op that
//!   computes is at least one kernel launch; views (`narrow`, `view`) are ops that launch nothing.
//! - **host syncs**: points where the host waits for the device: every copy of device values to
//!   the host (a read-back) and every blocking copy to the device. Every such copy in this crate
//!   goes through [`download`] or [`upload`], which count it, so the count is the same on the CPU.
//!   A copy to the device that does not wait ([`upload_async`]: pinned memory on CUDA) is not one.
use std::cell::Cell;
use tch::{Device, Kind, TchError, Tensor};

extern "C" {
    fn mt10_op_counter_start();
    fn mt10_op_counter_stop() -> i64;
}

/// Runs `f` and counts the ops libtorch runs meanwhile, on every thread (the autograd engine's
/// included). Counting slows ops down: never time what is counted. The count is process-wide, so
/// nothing else may run libtorch ops meanwhile.
pub fn count_ops<T>(f: impl FnOnce() -> T) -> (T, u64) {
    // SAFETY: plain C functions without arguments; they install and remove a libtorch observer.
    unsafe { mt10_op_counter_start() };
    let value = f();
    let ops = unsafe { mt10_op_counter_stop() };
    (value, ops as u64)
}

thread_local! {
    static HOST_SYNCS: Cell<u64> = const { Cell::new(0) };
}

/// Host syncs on this thread so far (see the module's documentation).
pub fn host_syncs() -> u64 {
    HOST_SYNCS.with(Cell::get)
}

fn count_sync() {
    HOST_SYNCS.with(|n| n.set(n.get() + 1));
}

/// Device values to the host: one host sync.
pub(crate) fn download<T: tch::kind::Element + Copy>(values: &Tensor) -> Result<Vec<T>, TchError> {
    count_sync();
    Vec::<T>::try_from(&values.detach().reshape([-1]))
}

/// Host values to `device` in one blocking copy: one host sync (on the CPU a plain copy).
pub(crate) fn upload(values: &[f32], device: Device) -> Tensor {
    count_sync();
    Tensor::from_slice(values).to_device(device)
}

/// Host values to `device` without waiting for it: on CUDA through pinned memory (libtorch's
/// host allocator keeps the pinned block until the copy is done), on the CPU a plain copy.
pub(crate) fn upload_async(values: &[f64], device: Device) -> Tensor {
    let host = Tensor::from_slice(values).to_kind(Kind::Float);
    match device {
        Device::Cuda(_) => host.pin_memory(device).to_device_(device, Kind::Float, true, false),
        _ => host,
    }
}
