//! How a batch, stored flat with its rows sorted by task, is laid out for a forward pass, and how
//! per-sample losses become per-task means.
use tch::{Device, Kind, Tensor};

pub(crate) enum Layout {
    /// `[B, ...]`: as stored. Only for networks whose parameters are all shared.
    Flat {
        /// Rows per task.
        counts: Vec<i64>,
        /// Each row's task.
        task: Tensor,
        /// `1 / n_k` for a row of task `k`, so that a weighted sum per task is its mean.
        row_weight: Tensor,
        /// `[K]`: [`Layout::sample_shares`] on the device.
        shares: Tensor,
        num_tasks: i64,
    },
    /// `[K, n, ...]`: row `k` holds task `k`'s `n_k` samples, padded to `n = max n_k` with
    /// copies of a real row that carry weight 0.
    TaskMajor {
        /// Rows per task.
        counts: Vec<i64>,
        /// For each of the `K * n` slots, the flat row it holds.
        gather: Tensor,
        /// For each flat row, its slot: undoes `gather`.
        slot: Tensor,
        /// `[K, n]`: `1 / n_k` on real samples, 0 on padding.
        slot_weight: Tensor,
        /// `[K]`: [`Layout::sample_shares`] on the device.
        shares: Tensor,
        num_tasks: i64,
        per_task: i64,
    },
}

impl Layout {
    /// `counts[k]` rows of task `k`, stored consecutively in task order.
    pub fn flat(counts: &[usize], device: Device) -> Self {
        let task = counts.iter().enumerate().flat_map(|(k, &n)| std::iter::repeat_n(k as f32, n)).collect();
        let row_weight = counts.iter().flat_map(|&n| std::iter::repeat_n(1.0 / n as f32, n)).collect();
        let counts: Vec<i64> = counts.iter().map(|&n| n as i64).collect();
        let shares = shares_of(&counts).into_iter().map(|s| s as f32).collect();
        let [task, row_weight, shares] = uploaded([(task, false), (row_weight, true), (shares, true)], device);
        Layout::Flat { num_tasks: counts.len() as i64, counts, task, row_weight, shares }
    }

    pub fn task_major(counts: &[usize], device: Device) -> Self {
        let per_task = counts.iter().copied().max().unwrap_or(0).max(1);
        let last_row = counts.iter().sum::<usize>().saturating_sub(1);
        let (mut gather, mut slot, mut slot_weight) = (Vec::new(), Vec::new(), Vec::new());
        let mut first_row = 0;
        for (k, &n) in counts.iter().enumerate() {
            for j in 0..per_task {
                // Padding repeats a real row (any row: its weight is 0) so values stay finite.
                let row = if j < n { first_row + j } else { first_row.min(last_row) };
                gather.push(row as f32);
                slot_weight.push(if j < n { 1.0 / n as f32 } else { 0.0 });
            }
            slot.extend((0..n).map(|j| (k * per_task + j) as f32));
            first_row += n;
        }
        let counts: Vec<i64> = counts.iter().map(|&n| n as i64).collect();
        let shares = shares_of(&counts).into_iter().map(|s| s as f32).collect();
        let [gather, slot, slot_weight, shares] = uploaded([(gather, false), (slot, false), (slot_weight, true), (shares, true)], device);
        Layout::TaskMajor {
            num_tasks: counts.len() as i64,
            slot_weight: slot_weight.view([counts.len() as i64, per_task as i64]),
            counts,
            gather,
            slot,
            shares,
            per_task: per_task as i64,
        }
    }

    /// Each task's share of the batch's samples, `n_k / B`.
    pub fn sample_shares(&self) -> Vec<f64> {
        let (Layout::Flat { counts, .. } | Layout::TaskMajor { counts, .. }) = self;
        shares_of(counts)
    }

    /// [`Layout::sample_shares`] on the device (`[K]`), uploaded with the layout.
    pub fn sample_shares_on_device(&self) -> Tensor {
        let (Layout::Flat { shares, .. } | Layout::TaskMajor { shares, .. }) = self;
        shares.shallow_clone()
    }

    /// Arranges a flat tensor (`[B, ...]`, rows sorted by task) in this layout.
    pub fn arrange(&self, flat: &Tensor) -> Tensor {
        match self {
            Layout::Flat { .. } => flat.shallow_clone(),
            Layout::TaskMajor { gather, num_tasks, per_task, .. } => {
                let mut shape = vec![*num_tasks, *per_task];
                shape.extend_from_slice(&flat.size()[1..]);
                flat.index_select(0, gather).view(shape.as_slice())
            }
        }
    }

    /// The inverse of [`Layout::arrange`]: back to flat rows, padding dropped.
    pub fn to_flat(&self, arranged: &Tensor) -> Tensor {
        match self {
            Layout::Flat { .. } => arranged.shallow_clone(),
            Layout::TaskMajor { slot, .. } => {
                let mut shape = vec![-1];
                shape.extend_from_slice(&arranged.size()[2..]);
                arranged.reshape(shape.as_slice()).index_select(0, slot)
            }
        }
    }

    /// `[K]`: the mean over each task's samples of a per-sample value (`[B]` or `[K, n]`);
    /// 0 for a task without samples.
    pub fn task_means(&self, per_sample: &Tensor) -> Tensor {
        match self {
            Layout::Flat { task, row_weight, num_tasks, .. } => {
                Tensor::zeros([*num_tasks], (per_sample.kind(), per_sample.device())).index_add(0, task, &(per_sample * row_weight))
            }
            Layout::TaskMajor { slot_weight, .. } => (per_sample * slot_weight).sum_dim_intlist(1, false, per_sample.kind()),
        }
    }

    /// A per-task value (`[K]`) broadcast to every sample.
    pub fn per_task(&self, values: &Tensor) -> Tensor {
        match self {
            Layout::Flat { task, .. } => values.index_select(0, task),
            Layout::TaskMajor { .. } => values.unsqueeze(1),
        }
    }

    /// Each task's gradient of a layer's weight and bias from its input `x` and the
    /// backpropagated signal `delta` of its output, per sample: `sum over task k's samples of
    /// delta x^T` (padding rows carry a zero `delta`). Written into `weight` (`[K, out, in]`) and
    /// `bias` (`[K, out]`), whose blocks `k` must each be contiguous, or added to them when
    /// `accumulate`. A task without samples gets zeros.
    pub fn layer_task_gradients(&self, x: &Tensor, delta: &Tensor, weight: &Tensor, bias: &Tensor, accumulate: bool) {
        let rows: Vec<(Tensor, Tensor)> = match self {
            Layout::Flat { counts, .. } => delta.split_with_sizes(counts.as_slice(), 0).into_iter().zip(x.split_with_sizes(counts.as_slice(), 0)).collect(),
            Layout::TaskMajor { num_tasks, .. } => (0..*num_tasks).map(|k| (delta.get(k), x.get(k))).collect(),
        };
        for (k, (delta, x)) in rows.iter().enumerate() {
            let (mut weight, mut bias) = (weight.get(k as i64), bias.get(k as i64));
            if accumulate {
                let _ = weight.addmm_(&delta.tr(), x);
                bias += delta.sum_dim_intlist(0, false, delta.kind());
            } else {
                let _ = delta.tr().mm_out(&weight, x);
                let _ = delta.sum_intlist_out(&bias, 0, false, delta.kind());
            }
        }
    }
}

fn shares_of(counts: &[i64]) -> Vec<f64> {
    let total = counts.iter().sum::<i64>() as f64;
    counts.iter().map(|&n| n as f64 / total).collect()
}

/// Host vectors on the device in one copy (one synchronisation on CUDA): each as floats, or as
/// indices when its flag is false (exact in `f32` below 2^24).
fn uploaded<const N: usize>(pieces: [(Vec<f32>, bool); N], device: Device) -> [Tensor; N] {
    let all = crate::counting::upload(&pieces.iter().flat_map(|(values, _)| values.iter().copied()).collect::<Vec<f32>>(), device);
    let mut start = 0;
    pieces.map(|(values, floats)| {
        let piece = all.narrow(0, start, values.len() as i64);
        start += values.len() as i64;
        if floats { piece } else { piece.to_kind(Kind::Int64) }
    })
}

/// How the batch is laid out for a network: flat when all its parameters are shared,
/// task-major when some layer has per-task parameters.
pub(crate) fn layout_for(counts: &[usize], per_task_layers: bool, device: Device) -> Layout {
    if per_task_layers {
        Layout::task_major(counts, device)
    } else {
        Layout::flat(counts, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_task_gradients_agree_between_layouts_and_are_zero_for_absent_tasks() {
        let counts = [2, 0, 3];
        let device = Device::Cpu;
        let (x, delta) = (Tensor::randn([5, 4], (Kind::Float, device)), Tensor::randn([5, 3], (Kind::Float, device)));
        let flat = Layout::flat(&counts, device);
        let task_major = Layout::task_major(&counts, device);
        // Padding slots carry zero signal, as the zero loss weight of padding gives them.
        let Layout::TaskMajor { slot_weight, .. } = &task_major else { panic!("a task-major layout") };
        let mask = slot_weight.gt(0.0).to_kind(Kind::Float).unsqueeze(-1);
        let written = |layout: &Layout, x: &Tensor, delta: &Tensor, uses: usize| {
            // Stale values in the buffers: the first use overwrites them.
            let (weight, bias) = (Tensor::randn([3, 3, 4], (Kind::Float, device)), Tensor::randn([3, 3], (Kind::Float, device)));
            for use_ in 0..uses {
                layout.layer_task_gradients(x, delta, &weight, &bias, use_ > 0);
            }
            (weight, bias)
        };
        let (w_flat, b_flat) = written(&flat, &x, &delta, 1);
        let (w_major, b_major) = written(&task_major, &task_major.arrange(&x), &(task_major.arrange(&delta) * mask), 1);
        let (w_twice, b_twice) = written(&flat, &x, &delta, 2);
        let rows = |start: i64, n: i64| (delta.narrow(0, start, n).tr().mm(&x.narrow(0, start, n)), delta.narrow(0, start, n).sum_dim_intlist(0, false, Kind::Float));
        for (k, expected) in [(0, rows(0, 2)), (2, rows(2, 3))] {
            for (w, b, uses) in [(&w_flat, &b_flat, 1.0), (&w_major, &b_major, 1.0), (&w_twice, &b_twice, 2.0)] {
                assert!((w.get(k) - &expected.0 * uses).abs().max().double_value(&[]) < 1e-5);
                assert!((b.get(k) - &expected.1 * uses).abs().max().double_value(&[]) < 1e-5);
            }
        }
        for (w, b) in [(&w_flat, &b_flat), (&w_major, &b_major), (&w_twice, &b_twice)] {
            assert_eq!(w.get(1).abs().max().double_value(&[]), 0.0);
            assert_eq!(b.get(1).abs().max().double_value(&[]), 0.0);
        }
    }
}
