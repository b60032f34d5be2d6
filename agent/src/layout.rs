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
        /// `[K, B]`: `1 / n_k` where row `b` is of task `k`, 0 elsewhere: task means are one
        /// product with it (deterministic on CUDA, unlike an `index_add`).
        mean_weights: Tensor,
        /// When the tasks' counts differ: the rows as `[K, n]` slots for the per-task gradients
        /// (see [`Layout::task_major`]), with a `[K n, 1]` mask that is 0 on padding. With equal
        /// counts the flat rows already are `[K, n]`.
        padding: Option<(Tensor, Tensor)>,
        /// `[K]`: [`Layout::sample_shares`] on the device.
        shares: Tensor,
        num_tasks: i64,
        per_task: i64,
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

/// Host values to go to the device in one copy, each as floats or as indices (exact in `f32`
/// below 2^24).
struct Pieces(Vec<(Vec<f32>, bool)>);

impl Pieces {
    /// Uploads `first` and then the pieces in one copy: `first` on the device, then each piece.
    fn upload(self, first: &[f32], device: Device) -> (Tensor, impl Iterator<Item = Tensor>) {
        let values: Vec<f32> = first.iter().copied().chain(self.0.iter().flat_map(|(values, _)| values.iter().copied())).collect();
        let all = crate::counting::upload(&values, device);
        let first = all.narrow(0, 0, first.len() as i64);
        let mut start = first.size()[0];
        let pieces = self.0.into_iter().map(move |(values, floats)| {
            let piece = all.narrow(0, start, values.len() as i64);
            start += values.len() as i64;
            if floats { piece } else { piece.to_kind(Kind::Int64) }
        });
        (first, pieces)
    }
}

/// The `K * n` slots of task-major rows (`n = max n_k`): the flat row each holds (padding repeats
/// a real row, any: its weight is 0, so values stay finite), and whether it is a real sample.
fn slots(counts: &[usize]) -> (usize, Vec<f32>, Vec<bool>) {
    let per_task = counts.iter().copied().max().unwrap_or(0).max(1);
    let last_row = counts.iter().sum::<usize>().saturating_sub(1);
    let (mut gather, mut real) = (Vec::new(), Vec::new());
    let mut first_row = 0;
    for &n in counts {
        for j in 0..per_task {
            gather.push(if j < n { first_row + j } else { first_row.min(last_row) } as f32);
            real.push(j < n);
        }
        first_row += n;
    }
    (per_task, gather, real)
}

impl Layout {
    /// The layout for a network (flat when all its parameters are shared, task-major when some
    /// layer has per-task parameters) of a batch with `counts[k]` rows of task `k`, stored
    /// consecutively in task order. Its tensors go to the device in one copy with `batch`,
    /// returned on the device.
    pub fn with_batch(counts: &[usize], per_task_layers: bool, batch: &[f32], device: Device) -> (Self, Tensor) {
        let num_tasks = counts.len() as i64;
        let (per_task, gather, real) = slots(counts);
        let shares = shares_of(counts).into_iter().map(|s| s as f32).collect();
        let counts_i64: Vec<i64> = counts.iter().map(|&n| n as i64).collect();
        if per_task_layers {
            let slot = counts.iter().enumerate().flat_map(|(k, &n)| (0..n).map(move |j| (k * per_task + j) as f32)).collect();
            let slot_weight = counts.iter().flat_map(|&n| (0..per_task).map(move |j| if j < n { 1.0 / n as f32 } else { 0.0 })).collect();
            let (batch, mut t) = Pieces(vec![(gather, false), (slot, false), (slot_weight, true), (shares, true)]).upload(batch, device);
            let mut next = || t.next().expect("one tensor per piece");
            let layout = Layout::TaskMajor {
                counts: counts_i64,
                gather: next(),
                slot: next(),
                slot_weight: next().view([num_tasks, per_task as i64]),
                shares: next(),
                num_tasks,
                per_task: per_task as i64,
            };
            return (layout, batch);
        }
        let rows: usize = counts.iter().sum();
        let task = counts.iter().enumerate().flat_map(|(k, &n)| std::iter::repeat_n(k as f32, n)).collect();
        let mut mean_weights = vec![0.0; counts.len() * rows];
        let mut first_row = 0;
        for (k, &n) in counts.iter().enumerate() {
            mean_weights[k * rows + first_row..k * rows + first_row + n].fill(1.0 / n as f32);
            first_row += n;
        }
        let even = counts.iter().all(|&n| n == counts[0]);
        let mut pieces = vec![(task, false), (mean_weights, true), (shares, true)];
        if !even {
            pieces.extend([(gather, false), (real.iter().map(|&r| f32::from(u8::from(r))).collect(), true)]);
        }
        let (batch, mut t) = Pieces(pieces).upload(batch, device);
        let mut next = || t.next().expect("one tensor per piece");
        let (task, mean_weights, shares) = (next(), next().view([num_tasks, rows as i64]), next());
        let padding = (!even).then(|| (next(), next().unsqueeze(1)));
        (Layout::Flat { counts: counts_i64, task, mean_weights, padding, shares, num_tasks, per_task: per_task as i64 }, batch)
    }

    /// Each task's share of the batch's samples, `n_k / B`.
    pub fn sample_shares(&self) -> Vec<f64> {
        let (Layout::Flat { counts, .. } | Layout::TaskMajor { counts, .. }) = self;
        let counts: Vec<usize> = counts.iter().map(|&n| n as usize).collect();
        shares_of(&counts)
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
            Layout::Flat { mean_weights, .. } => mean_weights.mv(per_sample),
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
    /// delta x^T` (padding rows carry a zero `delta`), one batched product for all tasks and one
    /// sum for the biases. Written into `weight` (`[K, out, in]`) and `bias` (`[K, out]`), whose
    /// blocks `k` must each be contiguous, or added to them when `accumulate`. A task without
    /// samples gets zeros.
    pub fn layer_task_gradients(&self, x: &Tensor, delta: &Tensor, weight: &Tensor, bias: &Tensor, accumulate: bool) {
        let (x, delta) = self.by_task(x, delta);
        let delta_t = delta.transpose(1, 2);
        if accumulate {
            let _ = weight.shallow_clone().baddbmm_(&delta_t, &x);
            let _ = bias.shallow_clone().g_add_(&delta.sum_dim_intlist(1, false, delta.kind()));
        } else {
            let _ = delta_t.bmm_out(weight, &x);
            let _ = delta.sum_intlist_out(bias, 1, false, delta.kind());
        }
    }

    /// Each task's gradient of a LayerNorm's gain and bias from its standardised input `x` and
    /// the signal `delta` of its output: `sum over task k's samples of delta * x` (elementwise)
    /// and of `delta`, written into (or, with `accumulate`, added to) `gain` and `bias`
    /// (`[K, width]`). A task without samples gets zeros.
    pub fn norm_task_gradients(&self, x: &Tensor, delta: &Tensor, gain: &Tensor, bias: &Tensor, accumulate: bool) {
        let (x, delta) = self.by_task(x, delta);
        let gain_gradient = (&delta * x).sum_dim_intlist(1, false, delta.kind());
        let bias_gradient = delta.sum_dim_intlist(1, false, delta.kind());
        for (target, gradient) in [(gain, gain_gradient), (bias, bias_gradient)] {
            let mut target = target.shallow_clone();
            if accumulate {
                let _ = target.g_add_(&gradient);
            } else {
                target.copy_(&gradient);
            }
        }
    }

    /// Per-sample inputs and signals of a layer as `[K, n, features]`, padding rows with a zero
    /// signal.
    fn by_task(&self, x: &Tensor, delta: &Tensor) -> (Tensor, Tensor) {
        match self {
            Layout::Flat { padding: None, num_tasks, per_task, .. } => {
                (x.view([*num_tasks, *per_task, -1]), delta.view([*num_tasks, *per_task, -1]))
            }
            Layout::Flat { padding: Some((gather, real)), num_tasks, per_task, .. } => (
                x.index_select(0, gather).view([*num_tasks, *per_task, -1]),
                (delta.index_select(0, gather) * real).view([*num_tasks, *per_task, -1]),
            ),
            Layout::TaskMajor { .. } => (x.shallow_clone(), delta.shallow_clone()),
        }
    }
}

fn shares_of(counts: &[usize]) -> Vec<f64> {
    let total = counts.iter().sum::<usize>() as f64;
    counts.iter().map(|&n| n as f64 / total).collect()
}

/// [`Layout::with_batch`] without a batch: the layout's own tensors in one copy.
pub(crate) fn layout_for(counts: &[usize], per_task_layers: bool, device: Device) -> Layout {
    Layout::with_batch(counts, per_task_layers, &[], device).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_task_gradients_agree_between_layouts_and_are_zero_for_absent_tasks() {
        let counts = [2, 0, 3];
        let device = crate::testing::tch_device();
        let (x, delta) = (Tensor::randn([5, 4], (Kind::Float, device)), Tensor::randn([5, 3], (Kind::Float, device)));
        let flat = layout_for(&counts, false, device);
        let task_major = layout_for(&counts, true, device);
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

    #[test]
    fn even_flat_batches_give_the_same_task_gradients_and_means_without_padding() {
        let (counts, device) = ([2, 2, 2], crate::testing::tch_device());
        let (x, delta) = (Tensor::randn([6, 4], (Kind::Float, device)), Tensor::randn([6, 3], (Kind::Float, device)));
        let layout = layout_for(&counts, false, device);
        assert!(matches!(layout, Layout::Flat { padding: None, .. }));
        let (weight, bias) = (Tensor::zeros([3, 3, 4], (Kind::Float, device)), Tensor::zeros([3, 3], (Kind::Float, device)));
        layout.layer_task_gradients(&x, &delta, &weight, &bias, false);
        let per_sample = Tensor::randn([6], (Kind::Float, device));
        let means = layout.task_means(&per_sample);
        for k in 0..3 {
            let (d, xs) = (delta.narrow(0, 2 * k, 2), x.narrow(0, 2 * k, 2));
            assert!((weight.get(k) - d.tr().mm(&xs)).abs().max().double_value(&[]) < 1e-5);
            assert!((bias.get(k) - d.sum_dim_intlist(0, false, Kind::Float)).abs().max().double_value(&[]) < 1e-5);
            assert!((means.get(k) - per_sample.narrow(0, 2 * k, 2).mean(Kind::Float)).abs().double_value(&[]) < 1e-6);
        }
    }
}
