//! Adam as in `torch.optim.Adam`, or AdamW as `torch.optim.AdamW` with a weight decay (no
//! amsgrad), on gradients handed in rather than read from `.grad`: the update direction is computed by the combiner, and the state is
//! plain tensors so checkpoints can hold it.
//!
//! A component's parameters live in one flat buffer (see [`FlatParams`]), so a step is a handful
//! of in-place operations over the whole component (tch exposes neither libtorch's fused nor its
//! foreach Adam kernels; one pass per parameter tensor cost twice torch's own loop).
use tch::{Kind, Tensor};

/// Tensors of given shapes laid out one after another in one flat buffer: `views` share its
/// storage, so writing the buffer writes them.
pub(crate) struct FlatParams {
    pub flat: Tensor,
    pub views: Vec<Tensor>,
}

impl FlatParams {
    /// Zeros shaped like `like`, each tensor at `offsets[i]` of the buffer (tensors may be placed
    /// in any order; the buffer is exactly as long as they are together).
    pub fn zeros_like(like: &[Tensor], offsets: &[i64]) -> Self {
        let numel: i64 = like.iter().map(|t| t.numel() as i64).sum();
        let flat = Tensor::zeros([numel], (Kind::Float, like[0].device()));
        let views = like.iter().zip(offsets).map(|(t, &offset)| flat.narrow(0, offset, t.numel() as i64).view(t.size().as_slice())).collect();
        Self { flat, views }
    }
}

pub(crate) struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay: each step first shrinks the parameters by `1 - lr weight_decay`.
    pub weight_decay: f64,
    /// Steps taken (skipped updates do not count).
    pub step: u64,
    /// First and second moments, over the flat parameter buffer; their views are per parameter.
    pub exp_avg: FlatParams,
    pub exp_avg_sq: FlatParams,
}

impl Adam {
    /// State for the parameters `params`, laid out in the flat buffer at `offsets`.
    pub fn new(params: &[Tensor], offsets: &[i64], lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Self {
        Self {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            step: 0,
            exp_avg: FlatParams::zeros_like(params, offsets),
            exp_avg_sq: FlatParams::zeros_like(params, offsets),
        }
    }

    /// One step of the flat parameter buffer along the flat gradient `grad`. With `applies` (a
    /// boolean scalar on the device) the step is taken only where it is true; otherwise the
    /// parameters and moments stay exactly as they were (a non-finite `grad` included), and the
    /// caller takes back the step count once it learns so.
    pub fn step(&mut self, param: &mut Tensor, grad: &Tensor, applies: Option<&Tensor>) {
        let _no_grad = tch::no_grad_guard();
        self.step += 1;
        let step = self.step as f64;
        let bias_correction1 = 1.0 - self.beta1.powf(step);
        let bias_correction2_sqrt = (1.0 - self.beta2.powf(step)).sqrt();
        // param -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps), as m / denom with the factors in denom.
        let scale = -bias_correction1 / self.lr;
        let exp_avg = match applies {
            None => {
                let _ = self.exp_avg.flat.lerp_(grad, 1.0 - self.beta1);
                let _ = self.exp_avg_sq.flat.lerp_(&grad.square(), 1.0 - self.beta2);
                self.exp_avg.flat.shallow_clone()
            }
            Some(applies) => {
                // Weight 0 keeps a moment exactly; the gradient is zeroed so that NaN * 0 cannot leak in.
                let weight = |w: f64| Tensor::where_scalar(applies, w, 0.0);
                let grad = grad.where_scalarother(applies, 0.0);
                let _ = self.exp_avg.flat.lerp_tensor_(&grad, &weight(1.0 - self.beta1));
                let _ = self.exp_avg_sq.flat.lerp_tensor_(&grad.square(), &weight(1.0 - self.beta2));
                self.exp_avg.flat.where_scalarother(applies, 0.0)
            }
        };
        if self.weight_decay > 0.0 {
            let keep = 1.0 - self.lr * self.weight_decay;
            let _ = match applies {
                None => param.g_mul_scalar_(keep),
                Some(applies) => param.g_mul_(&Tensor::where_scalar(applies, keep, 1.0)),
            };
        }
        let mut denom = self.exp_avg_sq.flat.sqrt();
        let _ = denom.g_mul_scalar_(scale / bias_correction2_sqrt).g_add_scalar_(scale * self.eps);
        let _ = param.addcdiv_(&exp_avg, &denom);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_torch_adam() {
        let (lr, beta1, beta2, eps) = (0.01, 0.9, 0.999, 1e-8);
        let start = [0.5f32, -1.0, 2.0];
        let grads = [[0.1f32, -0.3, 2.0], [-0.2, 0.5, 1.0]];
        let mut param = Tensor::from_slice(&start);
        let mut adam = Adam::new(&[param.shallow_clone()], &[0], lr, beta1, beta2, eps, 0.0);
        for grad in &grads {
            adam.step(&mut param, &Tensor::from_slice(grad), None);
        }
        let got = Vec::<f64>::try_from(&param).unwrap();
        for (i, &got) in got.iter().enumerate() {
            let (mut value, mut m, mut v) = (start[i] as f64, 0.0, 0.0);
            for (t, grad) in grads.iter().enumerate() {
                let g = grad[i] as f64;
                m = beta1 * m + (1.0 - beta1) * g;
                v = beta2 * v + (1.0 - beta2) * g * g;
                let step = (t + 1) as i32;
                value -= lr / (1.0 - beta1.powi(step)) * m / ((v / (1.0 - beta2.powi(step))).sqrt() + eps);
            }
            assert!((got - value).abs() < 1e-6, "element {i}: {got} vs {value}");
        }
    }

    #[test]
    fn adamw_steps_match_optax_adamw_with_brcs_settings() {
        let v = crate::brc_reference::Vectors::load("adamw.json");
        let mut param = Tensor::from_slice(&v.floats("params"));
        let (lr, b1, b2, eps, decay) = (v.scalar("learning_rate"), v.scalar("b1"), v.scalar("b2"), v.scalar("eps"), v.scalar("weight_decay"));
        let mut adam = Adam::new(&[param.shallow_clone()], &[0], lr, b1, b2, eps, decay);
        let grads = v.field("grads").as_array().unwrap().clone();
        let after = v.field("params_after").as_array().unwrap().clone();
        for (grad, expected) in grads.iter().zip(&after) {
            let grad: Vec<f32> = grad["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            adam.step(&mut param, &Tensor::from_slice(&grad), None);
            let expected: Vec<f32> = expected["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            let error = (&param - Tensor::from_slice(&expected)).abs().max().double_value(&[]);
            assert!(error < 1e-6, "off by {error}");
        }
    }

    #[test]
    fn a_gated_step_is_the_step_when_it_applies_and_changes_nothing_when_not() {
        let start = Tensor::from_slice(&[0.5f32, -1.0, 2.0]);
        let run = |grads: &[[f32; 3]], applies: Option<&[bool]>| {
            let mut param = start.copy();
            let mut adam = Adam::new(&[param.shallow_clone()], &[0], 0.01, 0.9, 0.999, 1e-8, 1e-2);
            for (i, grad) in grads.iter().enumerate() {
                let gate = applies.map(|a| Tensor::from(a[i]));
                adam.step(&mut param, &Tensor::from_slice(grad), gate.as_ref());
            }
            (param, adam.exp_avg.flat, adam.exp_avg_sq.flat)
        };
        let grads = [[0.1f32, -0.3, 2.0], [-0.2, 0.5, 1.0]];
        let (plain, gated) = (run(&grads, None), run(&grads, Some(&[true, true])));
        for (a, b) in [(&plain.0, &gated.0), (&plain.1, &gated.1), (&plain.2, &gated.2)] {
            assert_eq!((a - b).abs().max().double_value(&[]), 0.0);
        }
        let (one, skipped) = (run(&grads[..1], None), run(&[grads[0], [f32::NAN, 1.0, f32::INFINITY]], Some(&[true, false])));
        for (a, b) in [(&one.0, &skipped.0), (&one.1, &skipped.1), (&one.2, &skipped.2)] {
            assert_eq!((a - b).abs().max().double_value(&[]), 0.0);
        }
    }
}
