//! Adam as in `torch.optim.Adam` (no weight decay, no amsgrad), on gradients handed in rather
//! than read from `.grad`: the update direction is computed by the combiner, and the state is
//! plain tensors so checkpoints can hold it.
use tch::Tensor;

#[derive(Debug)]
pub(crate) struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Steps taken (skipped updates do not count).
    pub step: u64,
    pub exp_avg: Vec<Tensor>,
    pub exp_avg_sq: Vec<Tensor>,
}

impl Adam {
    pub fn new(params: &[Tensor], lr: f64, beta1: f64, beta2: f64, eps: f64) -> Self {
        Self {
            lr,
            beta1,
            beta2,
            eps,
            step: 0,
            exp_avg: params.iter().map(Tensor::zeros_like).collect(),
            exp_avg_sq: params.iter().map(Tensor::zeros_like).collect(),
        }
    }

    pub fn step(&mut self, params: &mut [Tensor], grads: &[Tensor]) {
        let _no_grad = tch::no_grad_guard();
        self.step += 1;
        let step = self.step as f64;
        let bias_correction1 = 1.0 - self.beta1.powf(step);
        let bias_correction2_sqrt = (1.0 - self.beta2.powf(step)).sqrt();
        for (((param, grad), m), v) in params.iter_mut().zip(grads).zip(&mut self.exp_avg).zip(&mut self.exp_avg_sq) {
            let _ = m.lerp_(grad, 1.0 - self.beta1);
            let _ = v.g_mul_scalar_(self.beta2).addcmul_(&(grad * (1.0 - self.beta2)), grad);
            let denom = v.sqrt() / bias_correction2_sqrt + self.eps;
            let _ = param.addcdiv_(&(&*m * (-self.lr / bias_correction1)), &denom);
        }
    }
}
