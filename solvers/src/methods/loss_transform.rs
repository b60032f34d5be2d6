use super::positive_losses;
use crate::{Combination, Combiner, Gram, Jacobian, Method, Needs, SolverError, TaskInput};
use rand::RngCore;

/// The alpha-fair loss transform (FairGrad paper, section 6) under any method: each loss
/// becomes `L_i^(1-a)/(1-a)` (`log L_i` at a = 1), so its gradient becomes `L_i^(-a) g_i`. The
/// inner method sees the transformed losses and gradients; its weights are mapped back onto
/// the raw gradients.
pub struct LossTransform {
    a: f64,
    inner: Box<dyn Combiner>,
}

impl LossTransform {
    pub fn new(a: f64, inner: Box<dyn Combiner>) -> Self {
        Self { a, inner }
    }

    fn transform(&self, losses: &[f64]) -> Vec<f64> {
        losses
            .iter()
            .map(|l| if self.a == 1.0 { l.ln() } else { l.powf(1.0 - self.a) / (1.0 - self.a) })
            .collect()
    }
}

impl Combiner for LossTransform {
    fn method(&self) -> Method {
        self.inner.method()
    }

    fn needs(&self) -> Needs {
        Needs { losses: true, ..self.inner.needs() }
    }

    fn solve(&mut self, k: usize, input: &TaskInput, rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let losses = positive_losses(self.method(), input, false)?;
        let scales: Vec<f64> = losses.iter().map(|l| l.powf(-self.a)).collect();
        let transformed = self.transform(losses);
        let gram: Option<Gram> = input.gram.map(|g| g.scaled(&scales));
        let jacobian: Option<Jacobian> = input.jacobian.map(|j| j.scaled_rows(&scales));
        let inner_input = TaskInput { gram: gram.as_ref(), losses: Some(&transformed), jacobian: jacobian.as_ref(), tracked: input.tracked, excess_risks: input.excess_risks };
        let mut combination = self.inner.solve(k, &inner_input, rng)?;
        combination.weights.iter_mut().zip(&scales).for_each(|(w, s)| *w *= s);
        Ok(combination)
    }

    fn wants_after_step(&self) -> bool {
        self.inner.wants_after_step()
    }

    fn after_step(&mut self, new_losses: &[f64]) -> Result<(), SolverError> {
        if let Some(task) = new_losses.iter().position(|l| *l <= 0.0) {
            return Err(SolverError::NonPositiveLoss { method: self.method(), task, value: new_losses[task] });
        }
        let transformed = self.transform(new_losses);
        self.inner.after_step(&transformed)
    }

    fn state(&self) -> serde_json::Value {
        self.inner.state()
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        self.inner.load_state(state)
    }
}
