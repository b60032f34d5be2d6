use crate::{Combination, Combiner, Method, Needs, SolverError, TaskInput};
use rand::{Rng, RngCore};

/// GradDrop: per coordinate, keep only the positive or only the negative task gradients, at
/// random, favouring the sign with the larger share of the mass. Needs the full Jacobian.
/// `d` is the mean of the masked rows, so `weights` are `1/K` on the masked rows.
#[derive(Debug, Clone, Copy)]
pub struct GradDrop;

impl Combiner for GradDrop {
    fn method(&self) -> Method {
        Method::GradDrop
    }

    fn needs(&self) -> Needs {
        Needs { gram: false, losses: false, jacobian: true, tracked: false, excess_risks: false }
    }

    fn solve(&mut self, k: usize, input: &TaskInput, rng: &mut dyn RngCore) -> Result<Combination, SolverError> {
        let jacobian = input.jacobian.expect("combine() checks the Jacobian is present");
        let rows: Vec<&[f64]> = jacobian.rows().collect();
        let direction = (0..jacobian.p())
            .map(|j| {
                let (sum, mass) = rows.iter().fold((0.0, 0.0), |(s, a), row| (s + row[j], a + row[j].abs()));
                let positive_share = 0.5 * (1.0 + sum / (mass + 1e-8));
                let u: f64 = rng.gen();
                let kept: f64 = rows
                    .iter()
                    .map(|row| row[j])
                    .filter(|&g| (positive_share > u && g > 0.0) || (positive_share < u && g < 0.0))
                    .sum();
                kept / k as f64
            })
            .collect();
        Ok(Combination { weights: super::uniform(k), direction: Some(direction), fallback: None, tracking: None })
    }
}
