//! One separately optimised part of SAC (critic, actor or temperature): its parameters, Adam and
//! combiner, and the update that turns its per-task losses into one optimizer step.
//!
//! On a step that recomputes the weights, all `K` task gradients come from ONE backward pass of
//! `sum_k L_k`, see [`task_gradients`]. The Gram matrix `J J^T` is formed on the device and only
//! its `K x K` entries reach the host; the combiner's weights give `d = sum_k w_k g_k`, the
//! direction handed to Adam. On the other steps (loss-only methods, or in between weight
//! refreshes) the last weights are fixed loss weights and one plain backward of `sum_k w_k L_k`
//! gives the same kind of direction at the cost of an ordinary update.
use crate::adam::Adam;
use crate::config::Component;
use crate::layout::Layout;
use crate::network::{Param, Taps, Weights};
use crate::{AgentError, SkipReason};
use rand::RngCore;
use serde::Serialize;
use solvers::{Combiner, Fallback, Gram, Jacobian, SolverError, TaskInput};
use std::time::Instant;
use tch::{Kind, Tensor};

/// What one component's update did, for logging.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentReport {
    pub component: Component,
    /// The mean loss of each task's samples in the batch (before the step).
    pub task_losses: Vec<f64>,
    /// The weights `w` of `d = sum_k w_k g_k` used at this step.
    pub weights: Vec<f64>,
    /// The `K x K` Gram matrix of the task gradients (row-major), on steps that computed it.
    pub gram: Option<Vec<f64>>,
    pub fallback: Option<Fallback>,
    /// Norm of the direction handed to Adam (after clipping).
    pub grad_norm: f64,
    /// Set when the step was not applied.
    pub skipped: Option<SkipReason>,
    /// Time in the combiner's solve.
    pub solver_us: f64,
    /// Time of the whole component update.
    pub ms: f64,
}

impl ComponentReport {
    fn empty(component: Component) -> Self {
        Self {
            component,
            task_losses: Vec::new(),
            weights: Vec::new(),
            gram: None,
            fallback: None,
            grad_norm: 0.0,
            skipped: None,
            solver_us: 0.0,
            ms: 0.0,
        }
    }

    /// Copies the task losses to the host; false when one is not finite.
    fn record_task_losses(&mut self, losses: &Tensor) -> Result<bool, AgentError> {
        self.task_losses = Vec::<f64>::try_from(&losses.detach())?;
        Ok(self.task_losses.iter().all(|l| l.is_finite()))
    }
}

/// The per-task losses (`[K]`) and, for every parameter, the task gradients stacked along a
/// leading task dimension (`[K, ...]`): block `k` is the gradient of task `k`'s loss.
pub(crate) struct TaskGradients {
    pub losses: Tensor,
    pub grads: Vec<Tensor>,
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

/// All task gradients from ONE backward pass of `sum_k L_k`, without extra forward work:
/// - shared layers run on their shared weights and are tapped: the backward pass gives every
///   sample's signal `delta` at each layer's output, and task `k`'s weight gradient is the sum of
///   `delta x^T` over its samples (what the ordinary backward accumulates over the whole batch,
///   kept apart per task);
/// - per-task parameters already have a task dimension, and block `k` only sees task `k`;
/// - other shared parameters are replaced by `K` stacked copies (`[K, ...]` leaves): the
///   gradient w.r.t. copy `k` is task `k`'s. Their use must not depend on the layout.
pub(crate) fn task_gradients(
    params: &[Tensor],
    sharing: &[Sharing],
    num_tasks: usize,
    layout: &Layout,
    task_losses: &mut impl FnMut(Weights, &Layout) -> Tensor,
) -> Result<TaskGradients, AgentError> {
    let inputs: Vec<Tensor> = params
        .iter()
        .zip(sharing)
        .map(|(param, sharing)| match sharing {
            Sharing::PerTask => param.shallow_clone(),
            Sharing::SharedLayer => param.detach(),
            Sharing::Shared => stacked_copies(param, num_tasks),
        })
        .collect();
    let taps = Taps::default();
    let losses = task_losses(Weights::tapped(&inputs, &taps), layout);
    let taps = taps.into_inner();
    let tracked: Vec<usize> = (0..params.len()).filter(|&i| sharing[i] != Sharing::SharedLayer).collect();
    let wrt: Vec<&Tensor> = tracked.iter().map(|&i| &inputs[i]).chain(taps.iter().map(|tap| &tap.output)).collect();
    let mut backward = Tensor::f_run_backward(&[losses.sum(Kind::Float)], &wrt, false, false)?.into_iter();
    let mut grads: Vec<Option<Tensor>> = params.iter().map(|_| None).collect();
    for (&i, grad) in tracked.iter().zip(&mut backward) {
        grads[i] = Some(grad);
    }
    for (tap, delta) in taps.iter().zip(backward) {
        let (weight, bias) = layout.layer_task_gradients(&tap.input, &delta);
        for (i, grad) in [(tap.weight_index, weight), (tap.weight_index + 1, bias)] {
            // A layer used more than once accumulates, as in any backward pass.
            grads[i] = Some(match grads[i].take() {
                Some(sum) => sum + grad,
                None => grad,
            });
        }
    }
    let grads = grads.into_iter().map(|g| g.expect("the loss uses every layer of its component")).collect();
    Ok(TaskGradients { losses: losses.detach(), grads })
}

fn stacked_copies(param: &Tensor, num_tasks: usize) -> Tensor {
    let mut shape = vec![num_tasks as i64];
    shape.extend(param.size());
    param.detach().unsqueeze(0).expand(shape.as_slice(), false).contiguous().set_requires_grad(true)
}

pub(crate) struct ComponentLearner {
    pub component: Component,
    pub params: Vec<Tensor>,
    pub sharing: Vec<Sharing>,
    pub num_tasks: usize,
    pub adam: Adam,
    pub combiner: Box<dyn Combiner>,
    update_weights_every: u64,
    max_grad_norm: Option<f64>,
    max_consecutive_skips: usize,
    /// `ls` as the mean over all samples of the batch (`w_k = n_k / B`) instead of over tasks.
    batch_mean: bool,
    /// The weights of the last refresh, reused until the next; a solve that falls back leaves
    /// them as they are.
    pub weights: Vec<f64>,
    pub updates: u64,
    pub consecutive_skips: usize,
    pub skipped_updates: u64,
    pub fallbacks: u64,
}

/// The optimizer settings of one component.
pub(crate) struct LearnerSettings {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub max_grad_norm: Option<f64>,
    pub update_weights_every: usize,
    pub max_consecutive_skips: usize,
    pub batch_mean: bool,
}

impl ComponentLearner {
    pub fn new(
        component: Component,
        params: Vec<Param>,
        num_tasks: usize,
        combiner: Box<dyn Combiner>,
        settings: &LearnerSettings,
    ) -> Self {
        let sharing: Vec<Sharing> = params.iter().map(Sharing::of).collect();
        let params: Vec<Tensor> = params.into_iter().map(|p| p.value).collect();
        let adam = Adam::new(&params, settings.lr, settings.beta1, settings.beta2, settings.eps);
        Self {
            component,
            params,
            sharing,
            num_tasks,
            adam,
            combiner,
            update_weights_every: settings.update_weights_every as u64,
            max_grad_norm: settings.max_grad_norm,
            max_consecutive_skips: settings.max_consecutive_skips,
            batch_mean: settings.batch_mean,
            weights: vec![1.0 / num_tasks as f64; num_tasks],
            updates: 0,
            consecutive_skips: 0,
            skipped_updates: 0,
            fallbacks: 0,
        }
    }

    /// Whether any parameter is shared between tasks: without one there is nothing to combine.
    pub fn has_shared_params(params: &[Param]) -> bool {
        params.iter().any(|p| !p.per_task)
    }

    /// The parameters without gradient tracking (same storage), for use inside another
    /// component's loss.
    pub fn detached(&self) -> Vec<Tensor> {
        self.params.iter().map(Tensor::detach).collect()
    }

    /// One update from the per-task losses that `task_losses` computes for given parameters and
    /// layout (a `[K]` tensor). It may be called more than once (FAMO re-evaluates the losses
    /// after the step).
    pub fn step(
        &mut self,
        layout: &Layout,
        rng: &mut dyn RngCore,
        mut task_losses: impl FnMut(Weights, &Layout) -> Tensor,
    ) -> Result<ComponentReport, AgentError> {
        let start = Instant::now();
        let mut report = ComponentReport::empty(self.component);
        let refresh = self.combiner.needs().per_task_gradients() && self.updates.is_multiple_of(self.update_weights_every);
        self.updates += 1;
        let direction = if refresh {
            self.combined_task_gradients(layout, rng, &mut task_losses, &mut report)?
        } else {
            self.weighted_loss_gradient(layout, rng, &mut task_losses, &mut report)?
        };
        report.weights = self.weights.clone();
        match direction.and_then(|d| self.clipped(d)) {
            Ok((direction, norm)) => {
                report.grad_norm = norm;
                self.adam.step(&mut self.params, &direction);
                self.consecutive_skips = 0;
                if self.combiner.wants_after_step() {
                    self.after_step(layout, &mut task_losses)?;
                }
            }
            Err(reason) => {
                report.skipped = Some(reason);
                self.skipped_updates += 1;
                self.consecutive_skips += 1;
                if self.consecutive_skips >= self.max_consecutive_skips {
                    return Err(AgentError::Diverged { component: self.component, count: self.consecutive_skips, reason });
                }
            }
        }
        report.ms = start.elapsed().as_secs_f64() * 1e3;
        Ok(report)
    }

    /// Per-task gradients, Gram matrix, fresh weights from the combiner, and `d = sum_k w_k g_k`.
    fn combined_task_gradients(
        &mut self,
        layout: &Layout,
        rng: &mut dyn RngCore,
        task_losses: &mut impl FnMut(Weights, &Layout) -> Tensor,
        report: &mut ComponentReport,
    ) -> Result<Result<Vec<Tensor>, SkipReason>, AgentError> {
        let k = self.num_tasks;
        let TaskGradients { losses, grads } = task_gradients(&self.params, &self.sharing, k, layout, task_losses)?;
        if !report.record_task_losses(&losses)? {
            return Ok(Err(SkipReason::NonFiniteLoss));
        }
        let gram = self.gram(&grads)?;
        if !gram.iter().all(|g| g.is_finite()) {
            return Ok(Err(SkipReason::NonFiniteGradient));
        }
        report.gram = Some(gram.clone());
        let gram = Gram::new(k, gram).map_err(|source| self.solver_error(source))?;
        let jacobian = if self.combiner.needs().jacobian { Some(self.jacobian(&grads)?) } else { None };
        let own_direction = match self.solve(Some(&gram), jacobian.as_ref(), rng, report)? {
            Ok(own_direction) => own_direction,
            Err(reason) => return Ok(Err(reason)),
        };
        let weights = self.weights_tensor(&grads[0]);
        let mut shared_direction = own_direction.as_deref();
        let direction = grads
            .iter()
            .zip(&self.params)
            .zip(&self.sharing)
            .map(|((grad, param), &sharing)| {
                if sharing == Sharing::PerTask {
                    // Block k only carries task k's gradient: d's block k is w_k g_k.
                    let mut shape = vec![k as i64];
                    shape.resize(grad.dim(), 1);
                    grad * weights.view(shape.as_slice())
                } else if let Some(d) = shared_direction.as_mut() {
                    // A method that builds d itself (GradDrop), over the shared coordinates in order.
                    let (own, rest) = d.split_at(param.numel());
                    *d = rest;
                    Tensor::from_slice(own).to_kind(Kind::Float).to_device(param.device()).view(param.size().as_slice())
                } else {
                    weights.unsqueeze(0).matmul(&grad.reshape([k as i64, -1])).view(param.size().as_slice())
                }
            })
            .collect();
        Ok(Ok(direction))
    }

    /// One plain backward of `sum_k w_k L_k`, with the last weights of a gradient method or
    /// fresh weights from a loss-only one.
    fn weighted_loss_gradient(
        &mut self,
        layout: &Layout,
        rng: &mut dyn RngCore,
        task_losses: &mut impl FnMut(Weights, &Layout) -> Tensor,
        report: &mut ComponentReport,
    ) -> Result<Result<Vec<Tensor>, SkipReason>, AgentError> {
        let losses = task_losses(Weights::new(&self.params), layout);
        if !report.record_task_losses(&losses)? {
            return Ok(Err(SkipReason::NonFiniteLoss));
        }
        if !self.combiner.needs().per_task_gradients() {
            if let Err(reason) = self.solve(None, None, rng, report)? {
                return Ok(Err(reason));
            }
            if self.batch_mean {
                self.weights = layout.sample_shares();
            }
        }
        let weighted_loss = (losses * self.weights_tensor(&self.params[0])).sum(Kind::Float);
        Ok(Ok(Tensor::f_run_backward(&[weighted_loss], &self.params, false, false)?))
    }

    /// Runs the combiner on this step's losses (and Gram matrix or Jacobian) and keeps its
    /// weights; returns the direction over the shared parameters of a method that builds it
    /// itself (GradDrop).
    fn solve(
        &mut self,
        gram: Option<&Gram>,
        jacobian: Option<&Jacobian>,
        rng: &mut dyn RngCore,
        report: &mut ComponentReport,
    ) -> Result<Result<Option<Vec<f64>>, SkipReason>, AgentError> {
        let input = TaskInput { gram, losses: Some(&report.task_losses), jacobian };
        let solver_start = Instant::now();
        let combination = match solvers::combine(&mut *self.combiner, self.num_tasks, &input, rng) {
            Ok(combination) => combination,
            Err(SolverError::NonFiniteResult { .. }) => return Ok(Err(SkipReason::NonFiniteWeights)),
            Err(source) => return Err(self.solver_error(source)),
        };
        report.solver_us = solver_start.elapsed().as_secs_f64() * 1e6;
        let combination = combination.or_last_good(&self.weights);
        report.fallback = combination.fallback;
        self.fallbacks += u64::from(combination.fallback.is_some());
        self.weights = combination.weights;
        Ok(Ok(combination.direction))
    }

    /// FAMO's hook: the losses on the same batch after the step, without gradients.
    fn after_step(
        &mut self,
        layout: &Layout,
        task_losses: &mut impl FnMut(Weights, &Layout) -> Tensor,
    ) -> Result<(), AgentError> {
        let losses = tch::no_grad(|| task_losses(Weights::new(&self.params), layout));
        let losses = Vec::<f64>::try_from(&losses)?;
        // A non-finite re-evaluation is caught by the next step's loss check.
        if losses.iter().all(|l| l.is_finite()) {
            self.combiner.after_step(&losses).map_err(|source| self.solver_error(source))?;
        }
        Ok(())
    }

    /// The direction and its norm after the optional global clip; a non-finite direction is a skip.
    fn clipped(&self, mut direction: Vec<Tensor>) -> Result<(Vec<Tensor>, f64), SkipReason> {
        let squares: Vec<Tensor> = direction.iter().map(|d| d.square().sum(Kind::Float)).collect();
        let norm = Tensor::stack(&squares, 0).sum(Kind::Float).sqrt().double_value(&[]);
        if !norm.is_finite() {
            return Err(SkipReason::NonFiniteGradient);
        }
        match self.max_grad_norm {
            // As torch's clip_grad_norm_.
            Some(max) if norm > max => {
                let scale = max / (norm + 1e-6);
                direction = direction.iter().map(|d| d * scale).collect();
                Ok((direction, norm * scale))
            }
            _ => Ok((direction, norm)),
        }
    }

    /// `J J^T` over the shared parameters, symmetrised, as `K x K` row-major f64.
    fn gram(&self, grads: &[Tensor]) -> Result<Vec<f64>, AgentError> {
        let k = self.num_tasks;
        let device = grads[0].device();
        let mut gram = Tensor::zeros([k as i64, k as i64], (Kind::Float, device));
        for (grad, _) in grads.iter().zip(&self.sharing).filter(|(_, &sharing)| sharing != Sharing::PerTask) {
            let rows = grad.reshape([k as i64, -1]);
            gram += rows.matmul(&rows.tr());
        }
        let gram = Vec::<f64>::try_from(&gram.reshape([-1]))?;
        Ok((0..k * k).map(|ij| 0.5 * (gram[ij] + gram[(ij % k) * k + ij / k])).collect())
    }

    /// The full Jacobian over the shared parameters, for methods that need it (GradDrop).
    fn jacobian(&self, grads: &[Tensor]) -> Result<Jacobian, AgentError> {
        let k = self.num_tasks as i64;
        let rows: Vec<Tensor> =
            grads.iter().zip(&self.sharing).filter(|(_, &sharing)| sharing != Sharing::PerTask).map(|(g, _)| g.reshape([k, -1])).collect();
        let jacobian = Tensor::cat(&rows, 1);
        let p = jacobian.size()[1] as usize;
        let data = Vec::<f64>::try_from(&jacobian.reshape([-1]))?;
        Jacobian::new(self.num_tasks, p, data).map_err(|source| self.solver_error(source))
    }

    fn weights_tensor(&self, like: &Tensor) -> Tensor {
        Tensor::from_slice(&self.weights).to_kind(Kind::Float).to_device(like.device())
    }

    fn solver_error(&self, source: SolverError) -> AgentError {
        AgentError::Solver { component: self.component, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Mlp;
    use solvers::{CombinerConfig, Method};

    /// A regression loss through a network with a shared trunk and per-task heads.
    fn regression<'a>(mlp: &'a Mlp, x: &'a Tensor, y: &'a Tensor) -> impl FnMut(Weights, &Layout) -> Tensor + 'a {
        move |weights, layout| layout.task_means(&(mlp.forward(weights, &layout.arrange(x)).squeeze_dim(-1) - layout.arrange(y)).square())
    }

    #[test]
    fn the_direction_of_fresh_weights_is_the_gradient_of_the_weighted_loss() {
        tch::manual_seed(3);
        let (k, counts) = (3, [5, 9, 2]);
        let mlp = Mlp::new(4, &[16, 16], 1, |layer, layers| layer + 1 == layers, k);
        let settings = LearnerSettings {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            max_grad_norm: None,
            update_weights_every: 1,
            max_consecutive_skips: 1,
            batch_mean: false,
        };
        let combiner = CombinerConfig::new(Method::Mgda).build(k).unwrap();
        let mut init_rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3);
        let mut learner = ComponentLearner::new(Component::Critic, mlp.init(tch::Device::Cpu, &mut init_rng), k, combiner, &settings);
        let rows = counts.iter().sum::<usize>() as i64;
        let (x, y) = (Tensor::randn([rows, 4], (Kind::Float, tch::Device::Cpu)), Tensor::randn([rows], (Kind::Float, tch::Device::Cpu)));
        let layout = Layout::task_major(&counts, tch::Device::Cpu);
        let mut rng = rand::rngs::mock::StepRng::new(0, 1);
        let mut report = ComponentReport::empty(Component::Critic);
        let mut losses = regression(&mlp, &x, &y);
        let direction = learner.combined_task_gradients(&layout, &mut rng, &mut losses, &mut report).unwrap().unwrap();
        let weights: Vec<f64> = learner.weights.clone();
        assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-6, "MGDA weights lie on the simplex: {weights:?}");
        assert!(weights.iter().any(|&w| (w - 1.0 / k as f64).abs() > 1e-3), "weights should not be uniform: {weights:?}");
        let weighted = (losses(Weights::new(&learner.params), &layout) * Tensor::from_slice(&weights).to_kind(Kind::Float)).sum(Kind::Float);
        let expected = Tensor::run_backward(&[weighted], &learner.params, false, false);
        for (d, e) in direction.iter().zip(&expected) {
            let error = (d - e).abs().max().double_value(&[]);
            assert!(error <= 1e-5 * e.abs().max().double_value(&[]).max(1.0), "direction off by {error}");
        }
        let gram = report.gram.unwrap();
        assert!((0..k).all(|i| (0..k).all(|j| gram[i * k + j] == gram[j * k + i])));
    }
}
