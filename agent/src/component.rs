//! One separately optimised part of SAC (critic, actor or temperature): its parameters, Adam and
//! combiner, and the update that turns its per-task losses into one optimizer step.
//!
//! On a step that recomputes the weights, the task gradients come from the per-task gradient pass
//! ([`crate::task_gradients`]) and the combiner's weights from their Gram matrix. On the other
//! steps (loss-only methods, or in between weight refreshes) the last weights are fixed loss
//! weights and one plain backward of `sum_k w_k L_k` gives the same kind of direction at the cost
//! of an ordinary update.
//!
//! The parameters are views into one flat buffer, shared parameters first, so that Adam and the
//! direction work on one tensor per component.
use crate::adam::{Adam, FlatParams};
use crate::config::Component;
use crate::layout::Layout;
use crate::network::{Param, Weights};
use crate::phases::{lap, Phases};
use crate::task_gradients::{TaskGradientPass, TaskGradients};
use crate::counting::{download, host_syncs, upload_async};
use crate::{AgentError, SkipReason};
use rand::RngCore;
use serde::Serialize;
use solvers::{Combination, Combiner, Fallback, Gram, Jacobian, SolverError, TaskInput, Tracked};
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
    /// Where the rest of the time went.
    pub phases: Phases,
    /// Points where the host waited for the device (see [`crate::counting`]); a step whose
    /// outcome is read back with the rest of the update has none of its own.
    pub host_syncs: u64,
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
            phases: Phases::default(),
            host_syncs: 0,
            ms: 0.0,
        }
    }

    /// Keeps the first `K` of `host` values as the task losses; false when one is not finite.
    fn record_task_losses(&mut self, host: &[f64], num_tasks: usize) -> bool {
        self.task_losses = host[..num_tasks].to_vec();
        self.task_losses.iter().all(|l| l.is_finite())
    }
}

/// The update direction of a step, and how its step is checked.
enum Direction {
    /// Checked on the host already: the direction and its squared norm.
    Checked(Tensor, f64),
    /// Checked on the device: the direction, and the task losses followed by its squared norm
    /// (`[K + 1]`), which reach the host with the rest of the update (see
    /// [`ComponentLearner::finish`]).
    OnDevice(Tensor, Tensor),
}

/// A component's step up to its wait for the device (see [`ComponentLearner::prepare`]).
pub(crate) struct Prepared {
    report: ComponentReport,
    start: Instant,
    stage: Stage,
}

enum Stage {
    /// The task gradients of a refresh, and the values (`[K]` losses, the `K x K` Gram matrix,
    /// the `[K]` squares over per-task parameters, then what the combiner tracks) that the host
    /// solves on.
    Refresh { gradients: TaskGradients, excess_risks: Option<(Tensor, Tensor)>, values: Tensor },
    /// A step of one plain backward: nothing left to wait for.
    Ready(Result<Direction, SkipReason>),
}

/// The host values of each prepared step that waits for some (`None` for the others), in ONE
/// read-back for all of them.
pub(crate) fn read_back(prepared: &mut [&mut Prepared]) -> Result<Vec<Option<Vec<f64>>>, AgentError> {
    let waiting: Vec<Tensor> = prepared
        .iter()
        .filter_map(|p| match &p.stage {
            Stage::Refresh { values, .. } => Some(values.shallow_clone()),
            Stage::Ready(_) => None,
        })
        .collect();
    if waiting.is_empty() {
        return Ok(prepared.iter().map(|_| None).collect());
    }
    let lengths: Vec<usize> = waiting.iter().map(|v| v.numel()).collect();
    let since = Instant::now();
    let host = download::<f64>(&Tensor::cat(&waiting, 0))?;
    let wait_ms = since.elapsed().as_secs_f64() * 1e3;
    let (mut rest, mut lengths) = (host.as_slice(), lengths.into_iter());
    let mut first = true;
    Ok(prepared
        .iter_mut()
        .map(|p| {
            let Stage::Refresh { .. } = p.stage else { return None };
            let (values, after) = rest.split_at(lengths.next().expect("one length per waiting step"));
            rest = after;
            // The one wait, and its time, count for the first component that needed it: the
            // update's phases add up over its components.
            if std::mem::take(&mut first) {
                p.report.host_syncs += 1;
                p.report.phases.gram_ms = wait_ms;
            }
            Some(values.to_vec())
        })
        .collect())
}

pub(crate) struct ComponentLearner {
    pub component: Component,
    /// Views into `flat`.
    pub params: Vec<Tensor>,
    /// All parameters: the shared ones first (in order), then those with a block per task.
    pub flat: Tensor,
    /// Where each parameter lies in `flat`, and the per-task gradient pass over them.
    pub gradients: TaskGradientPass,
    pub num_tasks: usize,
    pub adam: Adam,
    pub combiner: Box<dyn Combiner>,
    update_weights_every: u64,
    max_grad_norm: Option<f64>,
    max_consecutive_skips: usize,
    /// `ls` as the mean over all samples of the batch (`w_k = n_k / B`) instead of over tasks.
    batch_mean: bool,
    /// Set for one update: a method without per-task gradients (`ls`) takes that update from
    /// them, so its Gram is reported for the conflict diagnostics (`run.log_conflicts_every`).
    pub measure_conflicts: bool,
    /// The weights of the last refresh, reused until the next; a solve that falls back leaves
    /// them as they are.
    pub weights: Vec<f64>,
    /// `weights` as uploaded last, and the upload.
    uploaded_weights: (Vec<f64>, Tensor),
    pub updates: u64,
    pub consecutive_skips: usize,
    pub skipped_updates: u64,
    pub fallbacks: u64,
    /// The `[K + 1]` values of a step checked on the device, until [`ComponentLearner::finish`].
    pending: Option<Tensor>,
}

/// The optimizer settings of one component.
pub(crate) struct LearnerSettings {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
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
        let gradients = TaskGradientPass::new(&params, num_tasks, combiner.needs());
        let values: Vec<Tensor> = params.into_iter().map(|p| p.value).collect();
        let FlatParams { flat, views } = FlatParams::zeros_like(&values, &gradients.offsets);
        let params = tch::no_grad(|| {
            views
                .into_iter()
                .zip(&values)
                .map(|(mut view, value)| {
                    view.copy_(value);
                    view.set_requires_grad(true)
                })
                .collect()
        });
        let adam = Adam::new(&values, &gradients.offsets, settings.lr, settings.beta1, settings.beta2, settings.eps, settings.weight_decay);
        let weights = vec![1.0 / num_tasks as f64; num_tasks];
        let uploaded_weights = (weights.clone(), upload_async(&weights, flat.device()));
        Self {
            component,
            params,
            flat,
            gradients,
            num_tasks,
            adam,
            combiner,
            update_weights_every: settings.update_weights_every as u64,
            max_grad_norm: settings.max_grad_norm,
            max_consecutive_skips: settings.max_consecutive_skips,
            batch_mean: settings.batch_mean,
            measure_conflicts: false,
            weights,
            uploaded_weights,
            updates: 0,
            consecutive_skips: 0,
            skipped_updates: 0,
            fallbacks: 0,
            pending: None,
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

    /// Where each parameter starts in the flat buffer (shared parameters first).
    pub fn offsets(&self) -> &[i64] {
        &self.gradients.offsets
    }

    /// One update from the per-task losses that `task_losses` computes for given parameters and
    /// layout (a `[K]` tensor). It may be called more than once (FAMO re-evaluates the losses
    /// after the step). `shared_last_good`: the weights a solve that falls back applies, kept
    /// with other components, which every good solve overwrites; `None`: this component's own
    /// last good weights.
    pub fn step(
        &mut self,
        layout: &Layout,
        rng: &mut dyn RngCore,
        mut shared_last_good: Option<&mut Vec<f64>>,
        mut task_losses: impl FnMut(Weights, &Layout) -> Tensor,
    ) -> Result<ComponentReport, AgentError> {
        let mut prepared = self.prepare(layout, rng, shared_last_good.as_deref_mut(), &mut task_losses)?;
        let host = read_back(&mut [&mut prepared])?.pop().expect("one value per step");
        self.complete(prepared, host, layout, rng, shared_last_good, task_losses)
    }

    /// [`ComponentLearner::step`] up to the point where it waits for the device: on a refresh,
    /// the task gradients with the device values the host needs to solve ([`read_back`] them,
    /// with other components' for one wait), then [`ComponentLearner::complete`]. Another
    /// component may step in between: this one's parameters stay as they are until `complete`.
    pub fn prepare(
        &mut self,
        layout: &Layout,
        rng: &mut dyn RngCore,
        shared_last_good: Option<&mut Vec<f64>>,
        task_losses: &mut impl FnMut(Weights, &Layout) -> Tensor,
    ) -> Result<Prepared, AgentError> {
        let (start, syncs) = (Instant::now(), host_syncs());
        let mut report = ComponentReport::empty(self.component);
        let measure_conflicts = std::mem::take(&mut self.measure_conflicts);
        let refresh = match self.combiner.needs().per_task_gradients() {
            true => self.updates.is_multiple_of(self.update_weights_every),
            false => measure_conflicts,
        };
        self.updates += 1;
        let stage = if refresh {
            let gradients = self.gradients.run(&self.params, layout, task_losses, &mut report.phases)?;
            let per_task_squares = self.gradients.per_task_squares(&gradients);
            let TaskGradients { losses, shared, gram, .. } = &gradients;
            let mut pieces = vec![losses.shallow_clone(), gram.reshape([-1]), per_task_squares];
            let excess_risks = self.gradients.excess_risks(shared);
            pieces.extend(excess_risks.iter().map(|(_, risks)| risks.shallow_clone()));
            pieces.extend(self.gradients.tracked_products(shared));
            Stage::Refresh { values: Tensor::cat(&pieces, 0), gradients, excess_risks }
        } else {
            Stage::Ready(self.weighted_loss_gradient(layout, rng, shared_last_good, task_losses, &mut report)?)
        };
        report.host_syncs = host_syncs() - syncs;
        Ok(Prepared { report, start, stage })
    }

    /// The rest of the step of [`ComponentLearner::prepare`], after [`read_back`].
    pub fn complete(
        &mut self,
        prepared: Prepared,
        host: Option<Vec<f64>>,
        layout: &Layout,
        rng: &mut dyn RngCore,
        shared_last_good: Option<&mut Vec<f64>>,
        mut task_losses: impl FnMut(Weights, &Layout) -> Tensor,
    ) -> Result<ComponentReport, AgentError> {
        let syncs = host_syncs();
        let Prepared { mut report, start, stage, .. } = prepared;
        let direction = match stage {
            Stage::Refresh { gradients, excess_risks, .. } => {
                let host = host.expect("a refresh's values are read back before it completes");
                self.combined_task_gradients(gradients, excess_risks, &host, layout, rng, shared_last_good, &mut report)?
            }
            Stage::Ready(direction) => direction,
        };
        report.weights = self.weights.clone();
        let mut since = Instant::now();
        match direction {
            Ok(Direction::Checked(direction, squared_norm)) => match self.clipped(direction, squared_norm) {
                Ok((direction, norm)) => {
                    report.grad_norm = norm;
                    self.adam.step(&mut self.flat, &direction, None);
                    report.phases.adam_ms = lap(&mut since);
                    self.outcome(&mut report, Ok(()))?;
                    if self.combiner.wants_after_step() {
                        self.after_step(layout, &mut task_losses)?;
                    }
                }
                Err(reason) => self.outcome(&mut report, Err(reason))?,
            },
            Ok(Direction::OnDevice(direction, values)) => {
                let _no_grad = tch::no_grad_guard();
                let applies = values.isfinite().all();
                let direction = match self.max_grad_norm {
                    // As torch's clip_grad_norm_: the factor min(1, max / (norm + 1e-6)), always applied.
                    Some(max) => direction * (values.narrow(0, self.num_tasks as i64, 1).sqrt() + 1e-6).reciprocal().g_mul_scalar(max).clamp_max(1.0),
                    None => direction,
                };
                self.adam.step(&mut self.flat, &direction, Some(&applies));
                report.phases.adam_ms = lap(&mut since);
                self.pending = Some(values);
            }
            Err(reason) => self.outcome(&mut report, Err(reason))?,
        }
        report.host_syncs += host_syncs() - syncs;
        report.ms = start.elapsed().as_secs_f64() * 1e3;
        Ok(report)
    }

    /// The values (`[K + 1]`: task losses, squared norm of the direction) of a step checked on
    /// the device, to be read back with the rest of the update and handed to
    /// [`ComponentLearner::finish`].
    pub fn pending(&self) -> Option<&Tensor> {
        self.pending.as_ref()
    }

    /// Completes `report` of a step checked on the device from its [`ComponentLearner::pending`]
    /// values on the host: the device applied the step exactly when they are all finite.
    pub fn finish(&mut self, report: &mut ComponentReport, host: &[f64]) -> Result<(), AgentError> {
        self.pending = None;
        let k = self.num_tasks;
        let outcome = if !report.record_task_losses(host, k) {
            Err(SkipReason::NonFiniteLoss)
        } else if !host[k].is_finite() {
            Err(SkipReason::NonFiniteGradient)
        } else {
            let norm = host[k].sqrt();
            report.grad_norm = self.max_grad_norm.map_or(norm, |max| norm * (max / (norm + 1e-6)).min(1.0));
            Ok(())
        };
        if outcome.is_err() {
            // The device left the parameters and moments as they were.
            self.adam.step -= 1;
        }
        self.outcome(report, outcome)
    }

    /// Records whether the step was applied; too many skips in a row stop the run.
    fn outcome(&mut self, report: &mut ComponentReport, outcome: Result<(), SkipReason>) -> Result<(), AgentError> {
        match outcome {
            Ok(()) => self.consecutive_skips = 0,
            Err(reason) => {
                report.skipped = Some(reason);
                self.skipped_updates += 1;
                self.consecutive_skips += 1;
                if self.consecutive_skips >= self.max_consecutive_skips {
                    return Err(AgentError::Diverged { component: self.component, count: self.consecutive_skips, reason });
                }
            }
        }
        Ok(())
    }

    /// Fresh weights from the combiner on the host values of a refresh (the task losses, the Gram
    /// matrix, ...: see [`ComponentLearner::prepare`]), and `d = sum_k w_k g_k` (or `Y^T w` over
    /// the tracked average) with its squared norm.
    #[allow(clippy::too_many_arguments)]
    fn combined_task_gradients(
        &mut self,
        gradients: TaskGradients,
        excess_risks: Option<(Tensor, Tensor)>,
        host: &[f64],
        layout: &Layout,
        rng: &mut dyn RngCore,
        shared_last_good: Option<&mut Vec<f64>>,
        report: &mut ComponentReport,
    ) -> Result<Result<Direction, SkipReason>, AgentError> {
        let k = self.num_tasks;
        let shared = &gradients.shared;
        if !report.record_task_losses(host, k) {
            return Ok(Err(SkipReason::NonFiniteLoss));
        }
        let (gram, rest) = host[k..].split_at(k * k);
        let (per_task_squares, rest) = rest.split_at(k);
        let (risks, tracked) = rest.split_at(if excess_risks.is_some() { k } else { 0 });
        if !gram.iter().chain(per_task_squares).chain(rest).all(|g| g.is_finite()) {
            return Ok(Err(SkipReason::NonFiniteGradient));
        }
        // The sum takes this step's squares only once they are known finite.
        if let Some((updated, _)) = &excess_risks {
            self.gradients.squared_sum = Some(updated.shallow_clone());
        }
        let gram: Vec<f64> = (0..k * k).map(|ij| 0.5 * (gram[ij] + gram[(ij % k) * k + ij / k])).collect();
        report.gram = Some(gram.clone());
        let gram = Gram::new(k, gram).map_err(|source| self.solver_error(source))?;
        let jacobian = if self.combiner.needs().jacobian { Some(self.jacobian(shared)?) } else { None };
        let tracked = match tracked.split_at(tracked.len() / 2) {
            ([], []) => None,
            (average, cross) => Some(Tracked::new(k, average.to_vec(), cross).map_err(|source| self.solver_error(source))?),
        };
        let host_losses = report.task_losses.clone();
        let input = TaskInput {
            gram: Some(&gram),
            losses: Some(&host_losses),
            jacobian: jacobian.as_ref(),
            tracked: tracked.as_ref(),
            excess_risks: excess_risks.is_some().then_some(risks),
        };
        let combination = match self.solve(&input, rng, shared_last_good, report)? {
            Ok(combination) => combination,
            Err(reason) => return Ok(Err(reason)),
        };
        // `ls` measuring its conflicts: the direction is the one its weighted loss would give.
        if self.batch_mean {
            self.weights = layout.sample_shares();
        }
        let mut since = Instant::now();
        let per_task_part = per_task_squares.iter().zip(&self.weights).map(|(s, w)| w * w * s).sum::<f64>();
        let (weights, shared_direction, shared_squared_norm) = match combination {
            // A method that builds d itself (GradDrop), over the shared coordinates in order.
            Combination { direction: Some(own), .. } => {
                (self.weights_on_device(), upload_async(&own, shared.device()), own.iter().map(|x| x * x).sum::<f64>())
            }
            // A method that tracks the task gradients (MoCo): the weights and the scale of this
            // step's gradients in its average reach the device in one copy.
            Combination { tracking: Some(update), .. } => {
                let uploaded = upload_async(&[self.weights.as_slice(), &update.scale].concat(), shared.device());
                let weights = uploaded.narrow(0, 0, k as i64);
                self.uploaded_weights = (self.weights.clone(), weights.shallow_clone());
                let average = self.gradients.track(shared, update.decay, &uploaded.narrow(0, k as i64, k as i64));
                let direction = weights.unsqueeze(0).matmul(&average).reshape([-1]);
                (weights, direction, quadratic_form(&self.weights, &update.gram))
            }
            _ => {
                let weights = self.weights_on_device();
                let direction = weights.unsqueeze(0).matmul(shared).reshape([-1]);
                (weights, direction, quadratic_form(&self.weights, &gram))
            }
        };
        let direction = self.gradients.direction(&gradients, shared_direction, &weights);
        report.phases.direction_ms = lap(&mut since);
        // Rounding can take a vanishing quadratic form below zero.
        Ok(Ok(Direction::Checked(direction, (shared_squared_norm + per_task_part).max(0.0))))
    }

    /// One plain backward of `sum_k w_k L_k`, with the last weights of a gradient method or
    /// fresh weights from a loss-only one. The losses and the direction's squared norm stay on
    /// the device (the step is checked there) unless the combiner reads the losses before the
    /// backward or after the step.
    fn weighted_loss_gradient(
        &mut self,
        layout: &Layout,
        rng: &mut dyn RngCore,
        shared_last_good: Option<&mut Vec<f64>>,
        task_losses: &mut impl FnMut(Weights, &Layout) -> Tensor,
        report: &mut ComponentReport,
    ) -> Result<Result<Direction, SkipReason>, AgentError> {
        let mut since = Instant::now();
        let k = self.num_tasks;
        let losses = task_losses(Weights::new(&self.params), layout);
        let needs = self.combiner.needs();
        let solves = !needs.per_task_gradients();
        let losses_first = solves && needs.losses;
        if losses_first {
            let host = download(&losses)?;
            if !report.record_task_losses(&host, k) {
                return Ok(Err(SkipReason::NonFiniteLoss));
            }
        }
        if solves {
            let host_losses = report.task_losses.clone();
            let input = TaskInput { losses: Some(&host_losses), ..TaskInput::default() };
            if let Err(reason) = self.solve(&input, rng, shared_last_good, report)? {
                return Ok(Err(reason));
            }
            if self.batch_mean {
                self.weights = layout.sample_shares();
            }
        }
        // The batch's shares came to the device with its layout.
        let weights = if self.batch_mean { layout.sample_shares_on_device() } else { self.weights_on_device() };
        let weighted_loss = (&losses * weights).sum(Kind::Float);
        let grads = Tensor::f_run_backward(&[weighted_loss], &self.params, false, false)?;
        let direction = self.flatten(&grads);
        let squared_norm = direction.dot(&direction).reshape([1]);
        report.phases.forward_backward_ms = lap(&mut since);
        if losses_first {
            let squared_norm = download(&squared_norm)?[0];
            return Ok(Ok(Direction::Checked(direction, squared_norm)));
        }
        if self.combiner.wants_after_step() {
            let host = download(&Tensor::cat(&[losses.detach(), squared_norm], 0))?;
            if !report.record_task_losses(&host, k) {
                return Ok(Err(SkipReason::NonFiniteLoss));
            }
            return Ok(Ok(Direction::Checked(direction, host[k])));
        }
        Ok(Ok(Direction::OnDevice(direction, Tensor::cat(&[losses.detach(), squared_norm], 0))))
    }

    /// Per-parameter tensors as one flat tensor in the buffer's order.
    fn flatten(&self, per_param: &[Tensor]) -> Tensor {
        let mut order: Vec<usize> = (0..per_param.len()).collect();
        order.sort_by_key(|&i| self.gradients.offsets[i]);
        // Vectors as they are: each reshape is one more op.
        Tensor::cat(&order.iter().map(|&i| if per_param[i].dim() == 1 { per_param[i].shallow_clone() } else { per_param[i].reshape([-1]) }).collect::<Vec<_>>(), 0)
    }

    /// The current weights on the device, uploaded (without waiting) only when they changed.
    fn weights_on_device(&mut self) -> Tensor {
        if self.uploaded_weights.0 != self.weights {
            self.uploaded_weights = (self.weights.clone(), upload_async(&self.weights, self.flat.device()));
        }
        self.uploaded_weights.1.shallow_clone()
    }

    /// Runs the combiner on this step's `input` and keeps the weights to apply: its own, or after
    /// a fallback the last good ones (`shared_last_good` when given, which a good solve
    /// overwrites).
    fn solve(
        &mut self,
        input: &TaskInput,
        rng: &mut dyn RngCore,
        shared_last_good: Option<&mut Vec<f64>>,
        report: &mut ComponentReport,
    ) -> Result<Result<Combination, SkipReason>, AgentError> {
        let solver_start = Instant::now();
        let combination = match solvers::combine(&mut *self.combiner, self.num_tasks, input, rng) {
            Ok(combination) => combination,
            Err(SolverError::NonFiniteResult { .. }) => return Ok(Err(SkipReason::NonFiniteWeights)),
            Err(source) => return Err(self.solver_error(source)),
        };
        report.solver_us = solver_start.elapsed().as_secs_f64() * 1e6;
        let combination = match shared_last_good {
            Some(shared) => {
                let combination = combination.or_last_good(shared);
                shared.clone_from(&combination.weights);
                combination
            }
            None => combination.or_last_good(&self.weights),
        };
        report.fallback = combination.fallback;
        self.fallbacks += u64::from(combination.fallback.is_some());
        self.weights.clone_from(&combination.weights);
        Ok(Ok(combination))
    }

    /// FAMO's hook: the losses on the same batch after the step, without gradients.
    fn after_step(
        &mut self,
        layout: &Layout,
        task_losses: &mut impl FnMut(Weights, &Layout) -> Tensor,
    ) -> Result<(), AgentError> {
        let losses = tch::no_grad(|| task_losses(Weights::new(&self.params), layout));
        let losses = download::<f64>(&losses)?;
        // A non-finite re-evaluation is caught by the next step's loss check.
        if losses.iter().all(|l| l.is_finite()) {
            self.combiner.after_step(&losses).map_err(|source| self.solver_error(source))?;
        }
        Ok(())
    }

    /// The direction and its norm after the optional global clip; a non-finite direction is a skip.
    fn clipped(&self, mut direction: Tensor, squared_norm: f64) -> Result<(Tensor, f64), SkipReason> {
        let norm = squared_norm.sqrt();
        if !norm.is_finite() {
            return Err(SkipReason::NonFiniteGradient);
        }
        match self.max_grad_norm {
            // As torch's clip_grad_norm_.
            Some(max) if norm > max => {
                let scale = max / (norm + 1e-6);
                let _ = direction.g_mul_scalar_(scale);
                Ok((direction, norm * scale))
            }
            _ => Ok((direction, norm)),
        }
    }

    /// The full Jacobian over the shared parameters, for methods that need it (GradDrop).
    fn jacobian(&self, shared: &Tensor) -> Result<Jacobian, AgentError> {
        let p = shared.size()[1] as usize;
        let data = download(&shared.reshape([-1]))?;
        Jacobian::new(self.num_tasks, p, data).map_err(|source| self.solver_error(source))
    }

    fn solver_error(&self, source: SolverError) -> AgentError {
        AgentError::Solver { component: self.component, source }
    }
}

/// `w^T M w`.
fn quadratic_form(w: &[f64], gram: &Gram) -> f64 {
    let k = w.len();
    (0..k).map(|i| (0..k).map(|j| w[i] * gram.matrix()[(i, j)] * w[j]).sum::<f64>()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Mlp;
    use crate::task_gradients::Sharing;
    use solvers::{CombinerConfig, Method};

    /// A regression loss through a network with a shared trunk and per-task heads.
    fn regression<'a>(mlp: &'a Mlp, x: &'a Tensor, y: &'a Tensor) -> impl FnMut(Weights, &Layout) -> Tensor + 'a {
        move |weights, layout| layout.task_means(&(mlp.forward(weights, &layout.arrange(x)).squeeze_dim(-1) - layout.arrange(y)).square())
    }

    /// A learner of `method` for a network with a shared trunk and per-task heads, and a batch.
    fn learner_and_batch(method: Method) -> (ComponentLearner, Mlp, Tensor, Tensor, Layout) {
        tch::manual_seed(3);
        let (k, counts) = (3, [5, 9, 2]);
        let mlp = Mlp::built(4, &[16, 16], 1, crate::Block::Mlp, false, |layer, layers| layer + 1 == layers, k);
        let settings = LearnerSettings {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: None,
            update_weights_every: 1,
            max_consecutive_skips: 1,
            batch_mean: false,
        };
        let combiner = CombinerConfig::new(method).build(k).unwrap();
        let mut init_rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3);
        let learner = ComponentLearner::new(Component::Critic, mlp.init(crate::testing::tch_device(), &mut init_rng), k, combiner, &settings);
        let rows = counts.iter().sum::<usize>() as i64;
        let device = crate::testing::tch_device();
        let (x, y) = (Tensor::randn([rows, 4], (Kind::Float, device)), Tensor::randn([rows], (Kind::Float, device)));
        (learner, mlp, x, y, crate::layout::layout_for(&counts, true, device))
    }

    /// Checks `direction` and its squared norm against a backward pass of `sum_k w_k L_k`, with
    /// `shared_weights` over the shared parameters and `per_task_weights` over the others.
    fn assert_direction(learner: &ComponentLearner, losses: Tensor, step: Direction, shared_weights: &[f64], per_task_weights: &[f64]) {
        let Direction::Checked(direction, squared_norm) = step else { panic!("a refresh is checked on the host") };
        let weighted = |w: &[f64]| (&losses * Tensor::from_slice(w).to_kind(Kind::Float).to_device(losses.device())).sum(Kind::Float);
        let shared = Tensor::run_backward(&[weighted(shared_weights)], &learner.params, true, false);
        let per_task = Tensor::run_backward(&[weighted(per_task_weights)], &learner.params, false, false);
        let mut expected_squared_norm = 0.0;
        for (i, param) in learner.params.iter().enumerate() {
            let e = if learner.gradients.sharing[i] == Sharing::PerTask { &per_task[i] } else { &shared[i] };
            let d = direction.narrow(0, learner.offsets()[i], param.numel() as i64).view(param.size().as_slice());
            let error = (d - e).abs().max().double_value(&[]);
            assert!(error <= 1e-5 * e.abs().max().double_value(&[]).max(1.0), "parameter {i}: direction off by {error}");
            expected_squared_norm += e.square().sum(Kind::Double).double_value(&[]);
        }
        assert!((squared_norm - expected_squared_norm).abs() <= 1e-5 * expected_squared_norm, "|d|^2 on the host: {squared_norm} vs {expected_squared_norm}");
    }

    /// The direction of a refresh, before Adam applies it.
    fn refreshed(learner: &mut ComponentLearner, layout: &Layout, rng: &mut dyn RngCore, losses: &mut impl FnMut(Weights, &Layout) -> Tensor) -> (Direction, ComponentReport) {
        let mut prepared = learner.prepare(layout, rng, None, losses).unwrap();
        let host = read_back(&mut [&mut prepared]).unwrap().pop().unwrap().expect("a refresh waits for its values");
        let Prepared { mut report, stage, .. } = prepared;
        let Stage::Refresh { gradients, excess_risks, .. } = stage else { panic!("a refresh") };
        let step = learner.combined_task_gradients(gradients, excess_risks, &host, layout, rng, None, &mut report).unwrap().unwrap();
        (step, report)
    }

    #[test]
    fn the_direction_of_fresh_weights_is_the_gradient_of_the_weighted_loss() {
        let (mut learner, mlp, x, y, layout) = learner_and_batch(Method::Mgda);
        let k = learner.num_tasks;
        let mut rng = rand::rngs::mock::StepRng::new(0, 1);
        let mut losses = regression(&mlp, &x, &y);
        let (step, report) = refreshed(&mut learner, &layout, &mut rng, &mut losses);
        let weights: Vec<f64> = learner.weights.clone();
        assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-6, "MGDA weights lie on the simplex: {weights:?}");
        assert!(weights.iter().any(|&w| (w - 1.0 / k as f64).abs() > 1e-3), "weights should not be uniform: {weights:?}");
        assert_direction(&learner, losses(Weights::new(&learner.params), &layout), step, &weights, &weights);
        let gram = report.gram.unwrap();
        assert!((0..k).all(|i| (0..k).all(|j| gram[i * k + j] == gram[j * k + i])));
    }

    /// MoCo's direction over the shared parameters is `Y^T lambda` of its average on the device:
    /// on the same gradients twice, `Y = (beta_1 (1 - beta_2) + beta_2) diag(|L_k| / ||g_k||) J`,
    /// a weighted loss's gradient; the per-task heads get `lambda_k g_k`.
    #[test]
    fn moco_directions_come_from_the_average_tracked_on_the_device() {
        let (mut learner, mlp, x, y, layout) = learner_and_batch(Method::Moco);
        let k = learner.num_tasks;
        let mut rng = rand::rngs::mock::StepRng::new(0, 1);
        let mut losses = regression(&mlp, &x, &y);
        let mut tracked = 0.0;
        for beta in [0.5, 0.5 / 2f64.sqrt()] {
            let syncs = host_syncs();
            let (step, report) = refreshed(&mut learner, &layout, &mut rng, &mut losses);
            assert_eq!(host_syncs() - syncs, 1, "the losses with the K x K products; the weights and the scale go up without a wait");
            tracked = (1.0 - beta) * tracked + beta;
            let gram = report.gram.unwrap();
            let lambda = learner.weights.clone();
            let shared: Vec<f64> = (0..k).map(|i| lambda[i] * tracked * report.task_losses[i].abs() / (gram[i * k + i].sqrt() + 1e-8)).collect();
            assert_direction(&learner, losses(Weights::new(&learner.params), &layout), step, &shared, &lambda);
        }
    }
}
