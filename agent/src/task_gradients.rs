//! The per-task gradient pass of one component: all `K` task gradients from ONE backward pass of
//! `sum_k L_k`, written as the rows of one `[K, P]` matrix `J` over the shared parameters (kept
//! between steps: a fresh one per step cost as much again in page faults on the CPU), their Gram
//! matrix `J J^T` as one product, and the direction `d = w^T J` as another. Only `K x K` values (with the losses) reach the host.
use crate::phases::{lap, Phases};
use crate::layout::Layout;
use crate::network::{Param, TapKind, Taps, Weights};
use crate::AgentError;
use std::time::Instant;
use tch::{Kind, Tensor};

/// The per-task losses (`[K]`) and the task gradients: `shared` (`[K, P_shared]`) holds task
/// `k`'s gradient over the shared parameters in row `k`, in the flat buffer's order, and `gram`
/// is `shared shared^T`; `grads[i]` is parameter `i`'s gradients stacked along a leading task
/// dimension (`[K, ...]`, a view into `shared` for a shared parameter).
pub(crate) struct TaskGradients {
    pub losses: Tensor,
    pub shared: Tensor,
    pub gram: Tensor,
    pub grads: Vec<Tensor>,
}

/// The columns of `J` per product of the batched Gram matrix (see [`TaskGradientPass::run`]).
const GRAM_CHUNK: i64 = 4096;

/// `numel` rounded up to whole [`GRAM_CHUNK`]s.
fn padded_width(numel: i64) -> i64 {
    ((numel + GRAM_CHUNK - 1) / GRAM_CHUNK).max(1) * GRAM_CHUNK
}

/// `J` (`[K, P_shared]`) in a buffer padded with zeros to whole [`GRAM_CHUNK`]s, which are never
/// written and add nothing to the Gram matrix, with the views the pass uses, made once.
struct Storage {
    shared: Tensor,
    /// `[P_padded / GRAM_CHUNK, K, GRAM_CHUNK]` and its transpose in the last two dimensions.
    chunks: Tensor,
    chunks_transposed: Tensor,
}

impl Storage {
    fn new(num_tasks: i64, shared_numel: i64, device: tch::Device) -> Self {
        let padded = padded_width(shared_numel);
        let buffer = Tensor::zeros([num_tasks, padded], (Kind::Float, device));
        let chunks = buffer.view([num_tasks, padded / GRAM_CHUNK, GRAM_CHUNK]).transpose(0, 1);
        Self { shared: buffer.narrow(1, 0, shared_numel), chunks_transposed: chunks.transpose(1, 2), chunks }
    }
}

/// How a parameter relates to the tasks, which decides how its task gradients are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sharing {
    /// Has a leading task dimension; block `k` only ever sees task `k`.
    PerTask,
    /// Weight or bias of a layer shared by all tasks.
    SharedLayer,
    /// Any other shared parameter (a shared temperature).
    Shared,
}

impl Sharing {
    fn of(param: &Param) -> Self {
        match (param.per_task, param.in_layer) {
            (true, _) => Sharing::PerTask,
            (false, true) => Sharing::SharedLayer,
            (false, false) => Sharing::Shared,
        }
    }
}

fn stacked_copies(param: &Tensor, num_tasks: usize) -> Tensor {
    let mut shape = vec![num_tasks as i64];
    shape.extend(param.size());
    param.detach().unsqueeze(0).expand(shape.as_slice(), false).contiguous().set_requires_grad(true)
}

/// Where a component's parameters lie in its flat buffer (shared ones first) and how each relates
/// to the tasks, with the storage of `J` reused from pass to pass.
pub(crate) struct TaskGradientPass {
    pub sharing: Vec<Sharing>,
    /// Where each parameter starts in the flat buffer.
    pub offsets: Vec<i64>,
    shared_numel: i64,
    num_tasks: usize,
    /// Where the task gradients of the last pass were written, reused as their storage.
    storage: Option<Storage>,
    /// The moving average `Y` (`[K, P_shared]`, from zero) of a combiner that tracks the task
    /// gradients (MoCo).
    pub average: Option<Tensor>,
    /// The running sum `H` (`[K, P_shared]`, from zero) of the squared task gradients of a
    /// combiner that reads excess risks (ExcessMTL).
    pub squared_sum: Option<Tensor>,
}

impl TaskGradientPass {
    /// What the combiner needs kept over the task gradients: an average (`needs.tracked`, see
    /// [`solvers::Tracked`]), a sum of their squares (`needs.excess_risks`, see
    /// [`solvers::SquaredGradientSum`]).
    pub fn new(params: &[Param], num_tasks: usize, needs: solvers::Needs) -> Self {
        let sharing: Vec<Sharing> = params.iter().map(Sharing::of).collect();
        let mut offsets = vec![0; params.len()];
        let mut next = 0;
        for per_task in [false, true] {
            for (i, param) in params.iter().enumerate().filter(|(i, _)| (sharing[*i] == Sharing::PerTask) == per_task) {
                offsets[i] = next;
                next += param.value.numel() as i64;
            }
        }
        let shared_numel = params.iter().zip(&sharing).filter(|(_, &s)| s != Sharing::PerTask).map(|(p, _)| p.value.numel() as i64).sum();
        let device = params[0].value.device();
        let zeros = || Tensor::zeros([num_tasks as i64, shared_numel], (Kind::Float, device));
        let (average, squared_sum) = (needs.tracked.then(zeros), needs.excess_risks.then(zeros));
        Self { sharing, offsets, shared_numel, num_tasks, storage: None, average, squared_sum }
    }

    /// All task gradients of `params` from ONE backward pass of `sum_k L_k`, without extra
    /// forward work:
    /// - shared layers run on their shared weights and are tapped: the backward pass gives every
    ///   sample's signal `delta` at each layer's output, and task `k`'s weight gradient is the sum
    ///   of `delta x^T` over its samples (what the ordinary backward accumulates over the whole
    ///   batch, kept apart per task), written straight into its row of `shared`;
    /// - per-task parameters already have a task dimension, and block `k` only sees task `k`;
    /// - other shared parameters are replaced by `K` stacked copies (`[K, ...]` leaves): the
    ///   gradient w.r.t. copy `k` is task `k`'s. Their use must not depend on the layout.
    pub fn run(
        &mut self,
        params: &[Tensor],
        layout: &Layout,
        task_losses: &mut impl FnMut(Weights, &Layout) -> Tensor,
        phases: &mut Phases,
    ) -> Result<TaskGradients, AgentError> {
        let mut since = Instant::now();
        let k = self.num_tasks as i64;
        let inputs: Vec<Tensor> = params
            .iter()
            .zip(&self.sharing)
            .map(|(param, sharing)| match sharing {
                Sharing::PerTask => param.shallow_clone(),
                Sharing::SharedLayer => param.detach(),
                Sharing::Shared => stacked_copies(param, self.num_tasks),
            })
            .collect();
        let taps = Taps::default();
        let losses = task_losses(Weights::tapped(&inputs, &taps), layout);
        let taps = taps.into_inner();
        let tracked: Vec<usize> = (0..inputs.len()).filter(|&i| self.sharing[i] != Sharing::SharedLayer).collect();
        let wrt: Vec<&Tensor> = tracked.iter().map(|&i| &inputs[i]).chain(taps.iter().map(|tap| &tap.output)).collect();
        let mut backward = Tensor::f_run_backward(&[losses.sum(Kind::Float)], &wrt, false, false)?.into_iter();
        phases.forward_backward_ms = lap(&mut since);

        let (device, shared_numel) = (params[0].device(), self.shared_numel);
        let storage = self.storage.get_or_insert_with(|| Storage::new(k, shared_numel, device));
        let shared = storage.shared.shallow_clone();
        let shared_view = |i: usize| {
            let mut shape = vec![k];
            shape.extend(params[i].size());
            shared.narrow(1, self.offsets[i], params[i].numel() as i64).view(shape.as_slice())
        };
        let mut grads: Vec<Option<Tensor>> = params.iter().map(|_| None).collect();
        for (&i, grad) in tracked.iter().zip(&mut backward) {
            grads[i] = Some(match self.sharing[i] {
                Sharing::PerTask => grad,
                _ => {
                    let mut view = shared_view(i);
                    view.copy_(&grad);
                    view
                }
            });
        }
        for (tap, delta) in taps.iter().zip(backward) {
            let (weight, bias) = (tap.weight_index, tap.weight_index + 1);
            // A layer used more than once accumulates, as in any backward pass.
            let accumulate = grads[weight].is_some();
            for i in [weight, bias] {
                grads[i].get_or_insert_with(|| shared_view(i));
            }
            let view = |i: usize| grads[i].as_ref().expect("just set");
            match tap.kind {
                TapKind::Linear => layout.layer_task_gradients(&tap.input, &delta, view(weight), view(bias), accumulate),
                TapKind::Norm => layout.norm_task_gradients(&tap.input, &delta, view(weight), view(bias), accumulate),
            }
        }
        // One batched product for the whole component, over chunks of the columns, then their
        // sum: a single `[K, P] x [P, K]` product ran at a third of the speed on a CPU (its
        // kernels are built for wide outputs), and per layer it was one launch per tap.
        let gram = storage.chunks.bmm(&storage.chunks_transposed).sum_dim_intlist(0, false, Kind::Float);
        let grads = grads.into_iter().map(|g| g.expect("the loss uses every layer of its component")).collect();
        phases.task_gradients_ms = lap(&mut since);
        Ok(TaskGradients { losses: losses.detach(), shared, gram, grads })
    }

    /// The gradients of the parameters with a block per task.
    fn per_task<'a>(&'a self, gradients: &'a TaskGradients) -> impl Iterator<Item = &'a Tensor> {
        gradients.grads.iter().zip(&self.sharing).filter(|(_, &s)| s == Sharing::PerTask).map(|(g, _)| g)
    }

    /// `[K]`: each task's squared gradient norm over the parameters with a block per task. They
    /// do not enter the Gram matrix (their tasks cannot conflict), but give the direction's norm
    /// on the host.
    pub fn per_task_squares(&self, gradients: &TaskGradients) -> Tensor {
        let k = self.num_tasks as i64;
        self.per_task(gradients).fold(Tensor::zeros([k], (Kind::Float, gradients.shared.device())), |sum, g| {
            sum + g.reshape([k, -1]).square().sum_dim_intlist(1, false, Kind::Float)
        })
    }

    /// The whole direction: `shared_direction` over the shared coordinates, then block `k` of
    /// each parameter with a block per task as `w_k g_k` (block k only carries task k's gradient).
    pub fn direction(&self, gradients: &TaskGradients, shared_direction: Tensor, weights: &Tensor) -> Tensor {
        let k = self.num_tasks as i64;
        let per_task_directions: Vec<Tensor> = self
            .per_task(gradients)
            .map(|grad| {
                let mut shape = vec![k];
                shape.resize(grad.dim(), 1);
                (grad * weights.view(shape.as_slice())).reshape([-1])
            })
            .collect();
        if per_task_directions.is_empty() {
            shared_direction
        } else {
            Tensor::cat(&std::iter::once(shared_direction).chain(per_task_directions).collect::<Vec<_>>(), 0)
        }
    }

    /// `Y Y^T` and `Y J^T` of the tracked average before this step, row-major, one after the
    /// other (`2 K^2` values), when there is one.
    pub fn tracked_products(&self, shared: &Tensor) -> Option<Tensor> {
        self.average.as_ref().map(|y| Tensor::cat(&[y.matmul(&y.tr()).reshape([-1]), y.matmul(&shared.tr()).reshape([-1])], 0))
    }

    /// `H + J * J` (to keep once the step's gradients are known finite) and the `[K]` excess
    /// risks `r_i = sum_p J_ip^2 / sqrt(H_ip + J_ip^2 + eps)` (see [`solvers::SquaredGradientSum`]),
    /// when the combiner reads them.
    pub fn excess_risks(&self, shared: &Tensor) -> Option<(Tensor, Tensor)> {
        self.squared_sum.as_ref().map(|h| {
            let squares = shared.square();
            let updated = h + &squares;
            let risks = (squares / (&updated + solvers::SquaredGradientSum::EPSILON).sqrt()).sum_dim_intlist(1, false, Kind::Float);
            (updated, risks)
        })
    }

    /// Applies a combiner's [`solvers::TrackingUpdate`], `Y <- decay Y + diag(scale) J`
    /// (`scale` on the device), and returns the updated `Y`.
    pub fn track(&mut self, shared: &Tensor, decay: f64, scale: &Tensor) -> Tensor {
        let y = self.average.as_mut().expect("a tracking combiner has an average");
        let _ = y.g_mul_scalar_(decay);
        let _ = y.addcmul_(&scale.unsqueeze(1), shared);
        y.shallow_clone()
    }
}
