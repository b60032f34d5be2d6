use super::{losses, LOSSES};
use crate::linalg::softmax;
use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Dynamic weight average: how fast each loss falls, over a FIFO of the last 50 loss vectors,
/// `ratio = mean(last 25) / mean(first 25)`, `w = softmax(ratio / 2)`; uniform until 25 are in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Dwa {
    history: VecDeque<Vec<f64>>,
}

const HISTORY: usize = 50;
const WINDOW: usize = 25;
const TEMPERATURE: f64 = 2.0;

impl Combiner for Dwa {
    fn method(&self) -> Method {
        Method::Dwa
    }

    fn needs(&self) -> Needs {
        LOSSES
    }

    fn solve(&mut self, k: usize, input: &TaskInput, _rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        if self.history.back().is_some_and(|last| last.len() != k) {
            self.history.clear();
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(losses(input).to_vec());
        if self.history.len() < WINDOW {
            return Ok(Combination::weights(super::uniform(k)));
        }
        let mean = |window: &mut dyn Iterator<Item = &Vec<f64>>, task: usize| {
            window.map(|l| l[task]).sum::<f64>() / WINDOW as f64
        };
        let logits: Vec<f64> = (0..k)
            .map(|task| {
                let first = mean(&mut self.history.iter().take(WINDOW), task);
                let last = mean(&mut self.history.iter().rev().take(WINDOW), task);
                let ratio = last / first;
                // A task whose early losses were all zero has no rate: treat it as unchanged.
                if ratio.is_finite() { ratio / TEMPERATURE } else { 1.0 / TEMPERATURE }
            })
            .collect();
        Ok(Combination::weights(softmax(&logits)))
    }

    fn state(&self) -> serde_json::Value {
        super::saved(self)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), SolverError> {
        *self = super::restored(Method::Dwa, state)?;
        Ok(())
    }
}
