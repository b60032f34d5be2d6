//! Multi-layer perceptrons whose parameters live outside them, so that one forward serves the
//! live parameters, detached ones, and a per-task gradient pass that taps the shared layers.
//!
//! A weight is `[out, in]` when shared by all tasks and `[K, out, in]` when each task has its own
//! (task heads, per-task networks); biases likewise. Inputs are `[B, in]` (rows of any task,
//! shared weights only) or `[K, n, in]` (row `k` holds task `k`'s samples), see
//! [`crate::layout::Layout`].
use crate::config::Block;
use rand::Rng;
use rand_distr::StandardNormal;
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
/// delta x^T` for a linear layer, `delta * x` (elementwise) for a LayerNorm's gain, with `x` the
/// standardised features: what a backward pass would accumulate, split by task.
pub(crate) struct Tap {
    /// Index of the layer's weight (or gain) among the component's parameters (its bias follows).
    pub weight_index: usize,
    pub kind: TapKind,
    pub input: Tensor,
    pub output: Tensor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TapKind {
    /// `z = x W^T + b`.
    Linear,
    /// `z = x * gain + bias` on standardised features `x`.
    Norm,
}

#[derive(Default)]
pub(crate) struct Taps(RefCell<Vec<Tap>>);

impl Taps {
    /// Makes `output` a point where the backward pass can be read, and records it.
    fn record(&self, weight_index: usize, kind: TapKind, input: &Tensor, output: Tensor) -> Tensor {
        // The first shared layer sees no tracked tensor at all; its output becomes the leaf.
        let output = if output.requires_grad() { output } else { output.set_requires_grad(true) };
        self.0.borrow_mut().push(Tap { weight_index, kind, input: input.detach(), output: output.shallow_clone() });
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

    pub fn split_at(self, mid: usize) -> (Self, Self) {
        let (first, second) = self.tensors.split_at(mid);
        (Self { tensors: first, ..self }, Self { tensors: second, offset: self.offset + mid, ..self })
    }
}

/// One parameterised layer of a network, with whether each task has its own copy.
#[derive(Debug, Clone, Copy)]
struct Layer {
    kind: LayerKind,
    per_task: bool,
}

#[derive(Debug, Clone, Copy)]
enum LayerKind {
    Linear { fan_in: usize, fan_out: usize },
    /// LayerNorm's learned gain and bias over `width` features.
    Norm { width: usize },
}

/// Flax's LayerNorm epsilon, which BRC and the scaling paper use (PyTorch's default is 1e-5).
const LAYER_NORM_EPS: f64 = 1e-6;

/// A feed-forward network: layer sizes, how the hidden layers are built ([`Block`]) and, per
/// linear layer, whether each task has its own copy (a LayerNorm goes with its linear layer).
#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    block: Block,
    layer_norm: bool,
    layers: Vec<Layer>,
    num_tasks: usize,
}

impl Mlp {
    /// `input -> hidden... -> output`, ReLU between hidden layers, no output activation; `block`
    /// and `layer_norm` say how the hidden layers are built (see [`Block`]); `per_task` is asked
    /// about each linear layer, head included, by its index among them.
    pub fn built(
        input: usize,
        hidden: &[usize],
        output: usize,
        block: Block,
        layer_norm: bool,
        per_task: impl Fn(usize, usize) -> bool,
        num_tasks: usize,
    ) -> Self {
        // The linear layers in order, each followed by a LayerNorm or not.
        let mut linears: Vec<(usize, usize, bool)> = Vec::new();
        match block {
            Block::Mlp => {
                let mut fan_in = input;
                for &width in hidden {
                    linears.push((fan_in, width, layer_norm));
                    fan_in = width;
                }
            }
            Block::Bronet => {
                let width = hidden[0];
                linears.push((input, width, true));
                for _ in 1..hidden.len() {
                    linears.extend([(width, width, true), (width, width, true)]);
                }
            }
        }
        linears.push((hidden.last().copied().unwrap_or(input), output, false));
        let count = linears.len();
        let mut layers = Vec::new();
        for (i, (fan_in, fan_out, norm)) in linears.into_iter().enumerate() {
            let per_task = per_task(i, count);
            layers.push(Layer { kind: LayerKind::Linear { fan_in, fan_out }, per_task });
            if norm {
                layers.push(Layer { kind: LayerKind::Norm { width: fan_out }, per_task });
            }
        }
        Self { block, layer_norm, layers, num_tasks }
    }

    /// Fresh parameters, two tensors per layer in the order the forward pass uses them. Linear
    /// layers: xavier-uniform weights for [`Block::Mlp`] (mtrl's), orthogonal ones with gain
    /// `sqrt(2)` for [`Block::Bronet`] (BRC's); zero biases; drawn from `rng` on the host, each
    /// task's block initialised on its own. LayerNorm: gain 1, bias 0.
    pub fn init(&self, device: Device, rng: &mut impl Rng) -> Vec<Param> {
        let mut params = Vec::with_capacity(self.num_tensors());
        for layer in &self.layers {
            let copies = if layer.per_task { self.num_tasks } else { 1 };
            let task_dim: Vec<i64> = if layer.per_task { vec![self.num_tasks as i64] } else { vec![] };
            let (first, second) = match layer.kind {
                LayerKind::Linear { fan_in, fan_out } => {
                    let blocks: Vec<Tensor> = (0..copies).map(|_| self.initial_weight(fan_out, fan_in, rng)).collect();
                    let weight_shape: Vec<i64> = task_dim.iter().copied().chain([fan_out as i64, fan_in as i64]).collect();
                    let weight = Tensor::stack(&blocks, 0).view(weight_shape.as_slice());
                    let bias_shape: Vec<i64> = task_dim.iter().copied().chain([fan_out as i64]).collect();
                    (weight, Tensor::zeros(bias_shape.as_slice(), (Kind::Float, Device::Cpu)))
                }
                LayerKind::Norm { width } => {
                    let shape: Vec<i64> = task_dim.iter().copied().chain([width as i64]).collect();
                    (Tensor::ones(shape.as_slice(), (Kind::Float, Device::Cpu)), Tensor::zeros(shape.as_slice(), (Kind::Float, Device::Cpu)))
                }
            };
            for value in [first, second] {
                params.push(Param { value: value.to_device(device).set_requires_grad(true), per_task: layer.per_task, in_layer: true });
            }
        }
        params
    }

    /// A `[fan_out, fan_in]` weight on the host.
    fn initial_weight(&self, fan_out: usize, fan_in: usize, rng: &mut impl Rng) -> Tensor {
        match self.block {
            Block::Mlp => {
                let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
                let values: Vec<f32> = (0..fan_in * fan_out).map(|_| rng.gen_range(-bound..bound) as f32).collect();
                Tensor::from_slice(&values).view([fan_out as i64, fan_in as i64])
            }
            Block::Bronet => orthogonal(fan_out, fan_in, std::f64::consts::SQRT_2, rng),
        }
    }

    pub fn num_tensors(&self) -> usize {
        2 * self.layers.len()
    }

    /// Whether any layer has per-task parameters, which needs task-major (`[K, n, in]`) inputs.
    pub fn has_per_task_layers(&self) -> bool {
        self.layers.iter().any(|l| l.per_task)
    }

    /// Parameters over all tasks: a per-task layer counts `K` times.
    pub fn num_parameters(&self) -> usize {
        self.layers
            .iter()
            .map(|layer| {
                let one = match layer.kind {
                    LayerKind::Linear { fan_in, fan_out } => (fan_in + 1) * fan_out,
                    LayerKind::Norm { width } => 2 * width,
                };
                if layer.per_task { one * self.num_tasks } else { one }
            })
            .sum()
    }

    pub fn forward(&self, weights: Weights, input: &Tensor) -> Tensor {
        debug_assert_eq!(weights.tensors.len(), self.num_tensors());
        let mut layers = LayerCursor { network: self, weights, next: 0 };
        let x = self.hidden(&mut layers, input);
        let out = layers.linear(&x);
        debug_assert_eq!(layers.next, self.layers.len());
        out
    }

    /// The last hidden layer's features, what the head reads: post-ReLU for [`Block::Mlp`], the
    /// residual stream (nothing after its sum) for [`Block::Bronet`].
    pub fn features(&self, weights: Weights, input: &Tensor) -> Tensor {
        debug_assert_eq!(weights.tensors.len(), self.num_tensors());
        self.hidden(&mut LayerCursor { network: self, weights, next: 0 }, input)
    }

    fn hidden(&self, layers: &mut LayerCursor, input: &Tensor) -> Tensor {
        let mut x = input.shallow_clone();
        match self.block {
            Block::Mlp => {
                for _ in 0..self.hidden_layers() {
                    let z = layers.linear(&x);
                    x = (if self.layer_norm { layers.norm(&z) } else { z }).relu();
                }
            }
            Block::Bronet => {
                let z = layers.linear(&x);
                x = layers.norm(&z).relu();
                for _ in 0..self.residual_blocks() {
                    x = layers.residual_block(&x);
                }
            }
        }
        x
    }

    fn linear_layers(&self) -> usize {
        self.layers.iter().filter(|l| matches!(l.kind, LayerKind::Linear { .. })).count()
    }

    fn hidden_layers(&self) -> usize {
        self.linear_layers() - 1
    }

    fn residual_blocks(&self) -> usize {
        (self.linear_layers() - 2) / 2
    }
}

/// Hands out a network's layers to its forward pass in order, recording the shared ones in a
/// per-task gradient pass.
struct LayerCursor<'a, 'w> {
    network: &'a Mlp,
    weights: Weights<'w>,
    /// Index of the next layer.
    next: usize,
}

impl LayerCursor<'_, '_> {
    fn take(&mut self) -> (Layer, usize) {
        let layer = self.network.layers[self.next];
        self.next += 1;
        (layer, 2 * (self.next - 1))
    }

    fn tapped(&self, layer: Layer, index: usize, kind: TapKind, input: &Tensor, output: Tensor) -> Tensor {
        match (self.weights.taps, layer.per_task) {
            (Some(taps), false) => taps.record(self.weights.offset + index, kind, input, output),
            _ => output,
        }
    }

    fn linear(&mut self, x: &Tensor) -> Tensor {
        let (layer, index) = self.take();
        debug_assert!(matches!(layer.kind, LayerKind::Linear { .. }));
        let z = linear(x, &self.weights.tensors[index], &self.weights.tensors[index + 1]);
        self.tapped(layer, index, TapKind::Linear, x, z)
    }

    /// BRC's `BronetBlock`: `x + LN(Linear(ReLU(LN(Linear(x)))))`, nothing after the sum.
    fn residual_block(&mut self, x: &Tensor) -> Tensor {
        let z = self.linear(x);
        let inner = self.norm(&z).relu();
        let z = self.linear(&inner);
        self.norm(&z) + x
    }

    /// LayerNorm: standardised features times the gain plus the bias.
    fn norm(&mut self, x: &Tensor) -> Tensor {
        let (layer, index) = self.take();
        let LayerKind::Norm { width } = layer.kind else { panic!("a LayerNorm expected") };
        let standardised = x.layer_norm([width as i64], None::<Tensor>, None::<Tensor>, LAYER_NORM_EPS, false);
        let (gain, bias) = (&self.weights.tensors[index], &self.weights.tensors[index + 1]);
        // A per-task gain is `[K, width]` against task-major `[K, n, width]` features.
        let (gain, bias) = if gain.dim() == 2 { (gain.unsqueeze(1), bias.unsqueeze(1)) } else { (gain.shallow_clone(), bias.shallow_clone()) };
        let z = &standardised * gain + bias;
        self.tapped(layer, index, TapKind::Norm, &standardised, z)
    }
}

/// A `[rows, cols]` matrix with orthonormal rows or columns (whichever are fewer) times `gain`,
/// as flax's `orthogonal` initialiser: the Q of a Gaussian matrix's QR, its signs fixed by R's
/// diagonal.
fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut impl Rng) -> Tensor {
    let (long, short) = (rows.max(cols) as i64, rows.min(cols) as i64);
    let values: Vec<f64> = (0..long * short).map(|_| rng.sample(StandardNormal)).collect();
    let (q, r) = Tensor::linalg_qr(&Tensor::from_slice(&values).view([long, short]), "reduced");
    let q = q * r.diagonal(0, 0, 1).sign().unsqueeze(0);
    let q = if rows < cols { q.tr() } else { q };
    (q * gain).to_kind(Kind::Float).contiguous()
}

fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    match (x.dim(), weight.dim()) {
        (2, 2) => bias.addmm(x, &weight.tr()),
        (3, 3) => bias.unsqueeze(1).baddbmm(x, &weight.transpose(1, 2), 1.0, 1.0),
        // Task-major input through a shared layer: one matrix product over all rows.
        _ => x.matmul(&weight.tr()) + bias,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brc_reference::{bronet_names, max_difference, Vectors, CRITIC};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn a_residual_block_matches_brc() {
        let v = Vectors::load("bronet_block.json");
        let device = crate::testing::tch_device();
        let network = Mlp {
            block: Block::Bronet,
            layer_norm: false,
            layers: [LayerKind::Linear { fan_in: 8, fan_out: 8 }, LayerKind::Norm { width: 8 }]
                .repeat(2)
                .into_iter()
                .map(|kind| Layer { kind, per_task: false })
                .collect(),
            num_tasks: 1,
        };
        let names = ["Dense_0/kernel", "Dense_0/bias", "LayerNorm_0/scale", "LayerNorm_0/bias", "Dense_1/kernel", "Dense_1/bias", "LayerNorm_1/scale", "LayerNorm_1/bias"];
        let tensors: Vec<Tensor> = names.iter().map(|name| v.param("params", name, device)).collect();
        let mut layers = LayerCursor { network: &network, weights: Weights::new(&tensors), next: 0 };
        let y = layers.residual_block(&v.tensor("x", device));
        let expected = v.tensor("y", device);
        assert!(max_difference(&y, &expected) < 1e-5, "off by {}", max_difference(&y, &expected));
    }

    #[test]
    fn the_critic_network_matches_brc() {
        let v = Vectors::load("critic.json");
        let device = crate::testing::tch_device();
        // BRC's critic input: observation, action, the task's L2-normalised embedding.
        let input = Tensor::cat(&[v.tensor("observations", device), v.tensor("actions", device), v.tensor("task_embedding", device)], -1);
        let network = Mlp::built(13, &[8, 8, 8], 101, Block::Bronet, false, |_, _| false, 1);
        let logits = v.tensor("logits", device);
        for member in 0..2 {
            let names = bronet_names(CRITIC, 2, true);
            let tensors: Vec<Tensor> = names.iter().map(|name| v.param("params", name, device).get(member)).collect();
            assert_eq!(tensors.len(), network.num_tensors());
            let out = network.forward(Weights::new(&tensors), &input);
            let error = max_difference(&out, &logits.get(member));
            assert!(error < 1e-5, "member {member}: off by {error}");
        }
        // The embedding BRC feeds its critic is its table's row, L2-normalised.
        let table = v.param("params", "task_embedding/embeddings/embedding", device);
        let ids = Tensor::from_slice(&v.indices("task_ids")).to_device(device);
        let rows = table.index_select(0, &ids);
        let normalised = &rows / rows.norm_scalaropt_dim(2, [-1], true);
        assert!(max_difference(&normalised, &v.tensor("task_embedding", device)) < 1e-6);
    }

    #[test]
    fn bronet_weights_are_orthogonal_with_gain_sqrt_2_and_counts_add_up() {
        let network = Mlp::built(13, &[16, 16, 16], 5, Block::Bronet, false, |layer, layers| layer + 1 == layers, 3);
        let params = network.init(Device::Cpu, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(params.len(), network.num_tensors());
        let count: usize = params.iter().map(|p| p.value.numel()).sum();
        // Input layer and its norm, 2 blocks of 2 layers and 2 norms, a head per task.
        assert_eq!(count, network.num_parameters());
        assert_eq!(count, 14 * 16 + 32 + 2 * (2 * 17 * 16 + 2 * 32) + 3 * 17 * 5);
        for weight in [&params[0].value, &params[4].value] {
            let short = if weight.size()[0] < weight.size()[1] { weight.mm(&weight.tr()) } else { weight.tr().mm(weight) };
            let identity = Tensor::eye(short.size()[0], (Kind::Float, Device::Cpu)) * 2.0;
            assert!(max_difference(&short, &identity) < 1e-5);
        }
        assert_eq!(params[2].value.size(), [16]);
        assert_eq!(params.last().unwrap().value.size(), [3, 5], "the head's bias, one per task");
    }
}
