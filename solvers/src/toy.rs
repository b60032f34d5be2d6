//! The 2-task toy problem of the Nash-MTL and FairGrad papers' figure 1: two losses on
//! `x = (x1, x2)` whose gradients conflict and differ in scale (task 1 is scaled by 0.1).
use crate::linalg::Adam;
use crate::{combine, direction, Combiner, Jacobian, SolverError, SquaredGradientSum, TaskInput};
use rand::RngCore;

/// The papers' five starting points.
pub const STARTS: [[f64; 2]; 5] = [[-8.5, 7.5], [0.0, 0.0], [9.0, 9.0], [-7.5, -0.5], [9.0, -1.0]];

/// Both losses and their gradients at `x`.
pub fn losses_and_gradients(x: [f64; 2]) -> ([f64; 2], [[f64; 2]; 2]) {
    let [x1, x2] = x;
    let sech_sq = |t: f64| 1.0 - t.tanh().powi(2);
    // As torch's clamp, whose gradient passes at the boundary: the start (0, 0) moves.
    let (c1, dc1) = if x2 >= 0.0 { ((x2 / 2.0).tanh(), 0.5 * sech_sq(x2 / 2.0)) } else { (0.0, 0.0) };
    let (c2, dc2) = if x2 <= 0.0 { ((-x2 / 2.0).tanh(), -0.5 * sech_sq(x2 / 2.0)) } else { (0.0, 0.0) };
    // f = log(max(|a|, 5e-6)) + 6, flat where the max clips.
    let log_term = |a: f64, da: [f64; 2]| -> (f64, [f64; 2]) {
        if a.abs() > 5e-6 {
            (a.abs().ln() + 6.0, [da[0] / a, da[1] / a])
        } else {
            (5e-6f64.ln() + 6.0, [0.0, 0.0])
        }
    };
    let (f1, df1) = log_term(-0.5 * x1 - 3.5 + x2.tanh(), [-0.5, sech_sq(x2)]);
    let (f2, df2) = log_term(-0.5 * x1 + 3.5 - x2.tanh(), [-0.5, -sech_sq(x2)]);
    let h1 = ((7.0 - x1).powi(2) + 0.1 * (x2 + 8.0).powi(2)) / 10.0 - 20.0;
    let h2 = ((x1 + 7.0).powi(2) + 0.1 * (x2 + 8.0).powi(2)) / 10.0 - 20.0;
    let dh1 = [(x1 - 7.0) / 5.0, 0.02 * (x2 + 8.0)];
    let dh2 = [(x1 + 7.0) / 5.0, 0.02 * (x2 + 8.0)];
    // L = s (c1 f + c2 h), by the product rule.
    let task = |s: f64, f: f64, df: [f64; 2], h: f64, dh: [f64; 2]| -> (f64, [f64; 2]) {
        let value = s * (c1 * f + c2 * h);
        let grad = [s * (c1 * df[0] + c2 * dh[0]), s * (dc1 * f + c1 * df[1] + dc2 * h + c2 * dh[1])];
        (value, grad)
    };
    let (l1, g1) = task(0.1, f1, df1, h1, dh1);
    let (l2, g2) = task(1.0, f2, df2, h2, dh2);
    ([l1, l2], [g1, g2])
}

/// Cosine of the angle between the two task gradients: -1 on the Pareto front.
pub fn gradient_cosine(x: [f64; 2]) -> f64 {
    let (_, [g1, g2]) = losses_and_gradients(x);
    let dot = g1[0] * g2[0] + g1[1] * g2[1];
    dot / ((g1[0].hypot(g1[1]) * g2[0].hypot(g2[1])).max(f64::MIN_POSITIVE))
}

/// One optimisation run: Adam (lr 1e-3) on `x` along the combined direction. Returns every
/// iterate, the start included.
pub fn trajectory(
    combiner: &mut dyn Combiner,
    start: [f64; 2],
    steps: usize,
    rng: &mut dyn RngCore,
) -> Result<Vec<[f64; 2]>, SolverError> {
    let mut x = start;
    let mut optimizer = Adam::new(2, 1e-3, 0.0);
    let mut path = Vec::with_capacity(steps + 1);
    path.push(x);
    let mut squares = SquaredGradientSum::zeros(2, 2);
    for _ in 0..steps {
        let (losses, [g1, g2]) = losses_and_gradients(x);
        let jacobian = Jacobian::new(2, 2, vec![g1[0], g1[1], g2[0], g2[1]])?;
        let (gram, risks) = (jacobian.gram(), squares.excess_risks(&jacobian));
        let input = TaskInput { gram: Some(&gram), losses: Some(&losses), jacobian: Some(&jacobian), tracked: None, excess_risks: Some(&risks) };
        let combination = combine(combiner, 2, &input, rng)?;
        let d = combination.direction.unwrap_or_else(|| direction(&combination.weights, &jacobian));
        optimizer.step(&mut x, &d);
        path.push(x);
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_finite_differences() {
        for x in [[-8.5, 7.5], [1.0, 0.3], [9.0, -1.0], [-2.0, -3.0], [4.0, 2.0]] {
            let (_, grads) = losses_and_gradients(x);
            for axis in 0..2 {
                let h = 1e-6;
                let mut plus = x;
                let mut minus = x;
                plus[axis] += h;
                minus[axis] -= h;
                for (task, grad) in grads.iter().enumerate() {
                    let numeric = (losses_and_gradients(plus).0[task] - losses_and_gradients(minus).0[task]) / (2.0 * h);
                    assert!((numeric - grad[axis]).abs() < 1e-5, "x {x:?} task {task} axis {axis}");
                }
            }
        }
    }
}
