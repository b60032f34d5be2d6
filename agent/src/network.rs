//! Multi-layer perceptrons whose parameters live outside them, so that one forward serves the
//! live parameters, detached ones, and a per-task gradient pass that taps the shared layers.
//!
//! A weight is `[out, in]` when shared by all tasks and `[K, out, in]` when each task has its own
//! (task heads, per-task networks); biases likewise. Inputs are `[B, in]` (rows of any task,
//! shared weights only) or `[K, n, in]` (row `k` holds task `k`'s samples), see
//! [`crate::layout::Layout`].
use rand::Rng;
use std::cell::RefCell;
use tch::{Device, Kind, Tensor};

/// A parameter tensor, whether it belongs to single tasks (leading dimension `K`) rather than
/// being shared by all of them, and whether it is a weight or bias of a network layer (which a
/// per-task gradient pass taps) rather than a free parameter (a temperature).
#[derive(Debug)]
pub(crate) struct Param {
    pub value: Tensor,
    pub per_task: bool,
    pub in_layer: bool,
}

/// One use of a shared layer in a per-task gradient pass: its input `x` and its output `z`
/// (before the activation). The gradient of the summed task losses w.r.t. `z` is each sample's
/// backpropagated signal `delta`, and task `k`'s weight gradient is `sum over its samples of
/// delta x^T`: what a backward pass would accumulate, split by task.
pub(crate) struct Tap {
    /// Index of the layer's weight among the component's parameters (its bias follows).
    pub weight_index: usize,
    pub input: Tensor,
    pub output: Tensor,
}

#[derive(Default)]
pub(crate) struct Taps(RefCell<Vec<Tap>>);

impl Taps {
    /// Makes `output` a point where the backward pass can be read, and records it.
    fn record(&self, weight_index: usize, input: &Tensor, output: Tensor) -> Tensor {
        // The first shared layer sees no tracked tensor at all; its output becomes the leaf.
        let output = if output.requires_grad() { output } else { output.set_requires_grad(true) };
        self.0.borrow_mut().push(Tap { weight_index, input: input.detach(), output: output.shallow_clone() });
        output
    }

    pub fn into_inner(self) -> Vec<Tap> {
        self.0.into_inner()
    }
}

/// The tensors a forward pass uses as a network's parameters; in a per-task gradient pass, also
/// where to record the shared layers.
#[derive(Clone, Copy)]
pub(crate) struct Weights<'a> {
    pub tensors: &'a [Tensor],
    taps: Option<&'a Taps>,
    /// Index of `tensors[0]` among the component's parameters.
    offset: usize,
}

impl<'a> Weights<'a> {
    pub fn new(tensors: &'a [Tensor]) -> Self {
        Self { tensors, taps: None, offset: 0 }
    }

    pub fn tapped(tensors: &'a [Tensor], taps: &'a Taps) -> Self {
        Self { tensors, taps: Some(taps), offset: 0 }
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let (first, second) = self.tensors.split_at(mid);
        (Self { tensors: first, ..self }, Self { tensors: second, offset: self.offset + mid, ..self })
    }
}

/// Layer sizes plus, per layer, whether each task has its own copy.
#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    sizes: Vec<usize>,
    per_task: Vec<bool>,
    num_tasks: usize,
}

impl Mlp {
    /// `input -> hidden... -> output`, ReLU between layers, no output activation.
    pub fn new(input: usize, hidden: &[usize], output: usize, per_task: impl Fn(usize, usize) -> bool, num_tasks: usize) -> Self {
        let sizes: Vec<usize> = std::iter::once(input).chain(hidden.iter().copied()).chain([output]).collect();
        let layers = sizes.len() - 1;
        let per_task = (0..layers).map(|layer| per_task(layer, layers)).collect();
        Self { sizes, per_task, num_tasks }
    }

    /// Fresh parameters: xavier-uniform weights (drawn from `rng` on the host), zero biases
    /// (each task's block initialised with its layer's fan-in and fan-out), in the order
    /// `[w0, b0, w1, b1, ...]`.
    pub fn init(&self, device: Device, rng: &mut impl Rng) -> Vec<Param> {
        let mut params = Vec::with_capacity(2 * self.per_task.len());
        for (layer, &per_task) in self.per_task.iter().enumerate() {
            let (fan_in, fan_out) = (self.sizes[layer] as i64, self.sizes[layer + 1] as i64);
            let task_dim: Vec<i64> = if per_task { vec![self.num_tasks as i64] } else { vec![] };
            let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
            let weight_shape: Vec<i64> = task_dim.iter().copied().chain([fan_out, fan_in]).collect();
            let bias_shape: Vec<i64> = task_dim.iter().copied().chain([fan_out]).collect();
            let count = weight_shape.iter().product::<i64>() as usize;
            let values: Vec<f32> = (0..count).map(|_| rng.gen_range(-bound..bound) as f32).collect();
            let weight = Tensor::from_slice(&values).view(weight_shape.as_slice()).to_device(device);
            let bias = Tensor::zeros(bias_shape.as_slice(), (Kind::Float, device));
            params.push(Param { value: weight.set_requires_grad(true), per_task, in_layer: true });
            params.push(Param { value: bias.set_requires_grad(true), per_task, in_layer: true });
        }
        params
    }

    pub fn num_tensors(&self) -> usize {
        2 * self.per_task.len()
    }

    /// Whether any layer has per-task parameters, which needs task-major (`[K, n, in]`) inputs.
    pub fn has_per_task_layers(&self) -> bool {
        self.per_task.iter().any(|&p| p)
    }

    pub fn forward(&self, weights: Weights, input: &Tensor) -> Tensor {
        debug_assert_eq!(weights.tensors.len(), self.num_tensors());
        let last = self.per_task.len() - 1;
        let mut x = input.shallow_clone();
        for (layer, weight_bias) in weights.tensors.chunks(2).enumerate() {
            let mut z = linear(&x, &weight_bias[0], &weight_bias[1]);
            if let (Some(taps), false) = (weights.taps, self.per_task[layer]) {
                z = taps.record(weights.offset + 2 * layer, &x, z);
            }
            x = if layer < last { z.relu() } else { z };
        }
        x
    }
}

fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    match (x.dim(), weight.dim()) {
        (2, 2) => bias.addmm(x, &weight.tr()),
        (3, 3) => bias.unsqueeze(1).baddbmm(x, &weight.transpose(1, 2), 1.0, 1.0),
        // Task-major input through a shared layer: one matrix product over all rows.
        _ => x.matmul(&weight.tr()) + bias,
    }
}

/// The twin Q-networks, `Q(s, a)` on `concat(obs, action)`; their parameters are `q1 ++ q2`.
#[derive(Debug, Clone)]
pub(crate) struct TwinCritic {
    q: Mlp,
}

impl TwinCritic {
    pub fn new(q: Mlp) -> Self {
        Self { q }
    }

    pub fn init(&self, device: Device, rng: &mut impl Rng) -> Vec<Param> {
        let mut params = self.q.init(device, rng);
        params.extend(self.q.init(device, rng));
        params
    }

    pub fn has_per_task_layers(&self) -> bool {
        self.q.has_per_task_layers()
    }

    /// `(Q1, Q2)`, one value per sample (`[B]` or `[K, n]`).
    pub fn q_values(&self, weights: Weights, obs: &Tensor, action: &Tensor) -> (Tensor, Tensor) {
        let input = Tensor::cat(&[obs, action], -1);
        let (q1, q2) = weights.split_at(self.q.num_tensors());
        (self.q.forward(q1, &input).squeeze_dim(-1), self.q.forward(q2, &input).squeeze_dim(-1))
    }
}
