//! The actor: a tanh-squashed diagonal Gaussian whose mean and raw log-std come from one MLP.
use crate::network::{Mlp, Param, Weights};
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone)]
pub(crate) struct SquashedGaussian {
    net: Mlp,
    log_std_min: f64,
    log_std_max: f64,
}

impl SquashedGaussian {
    /// `net` must output `2 * action_dim` values: the mean, then the raw log-std.
    pub fn new(net: Mlp, log_std_min: f64, log_std_max: f64) -> Self {
        Self { net, log_std_min, log_std_max }
    }

    pub fn init(&self, device: Device, rng: &mut impl rand::Rng) -> Vec<Param> {
        self.net.init(device, rng)
    }

    pub fn has_per_task_layers(&self) -> bool {
        self.net.has_per_task_layers()
    }

    /// Parameters over all tasks.
    pub fn num_parameters(&self) -> usize {
        self.net.num_parameters()
    }

    /// The last hidden layer's features (see [`Mlp::features`]).
    pub fn features(&self, weights: Weights, obs: &Tensor) -> Tensor {
        self.net.features(weights, obs)
    }

    fn mean_and_log_std(&self, weights: Weights, obs: &Tensor) -> (Tensor, Tensor) {
        let out = self.net.forward(weights, obs).chunk(2, -1);
        // A smooth map of the raw output onto [min, max], unlike clamping it keeps a gradient.
        let log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (out[1].tanh() + 1.0);
        (out[0].shallow_clone(), log_std)
    }

    /// A reparameterised action sample and its log-probability (one per sample), from standard
    /// normal `noise` shaped like the action.
    pub fn sample(&self, weights: Weights, obs: &Tensor, noise: &Tensor) -> (Tensor, Tensor) {
        let (mean, log_std) = self.mean_and_log_std(weights, obs);
        let pre_tanh = &mean + noise * log_std.exp();
        let action = pre_tanh.tanh();
        let action_dim = mean.size()[mean.dim() - 1] as f64;
        let gaussian_log_prob = (noise.square() * -0.5 - &log_std).sum_dim_intlist(-1, false, Kind::Float)
            - 0.5 * (2.0 * std::f64::consts::PI).ln() * action_dim;
        // Change of variables through tanh; the relu and 1e-6 keep it finite where tanh saturates.
        let squash_correction = ((action.square() * -1.0 + 1.0).relu() + 1e-6).log().sum_dim_intlist(-1, false, Kind::Float);
        (action, gaussian_log_prob - squash_correction)
    }

    /// The deterministic (evaluation) action `tanh(mean)`.
    pub fn mean_action(&self, weights: Weights, obs: &Tensor) -> Tensor {
        self.mean_and_log_std(weights, obs).0.tanh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brc_reference::{bronet_names, max_difference, Vectors};
    use crate::config::Block;

    #[test]
    fn a_bronet_policy_matches_brc() {
        let v = Vectors::load("actor.json");
        let device = crate::testing::tch_device();
        // BRC's actor: a BroNet of one block, then a mean head and a log-std head; here one head
        // of both, the mean first.
        let policy = SquashedGaussian::new(Mlp::built(10, &[8, 8], 6, Block::Bronet, false, |_, _| false, 1), -10.0, 2.0);
        let param = |name: &str| v.param("params", name, device);
        let mut tensors: Vec<Tensor> = bronet_names("BroNet_0/", 1, false).iter().map(|name| param(name)).collect();
        tensors.push(Tensor::cat(&[param("Dense_0/kernel"), param("Dense_1/kernel")], 0));
        tensors.push(Tensor::cat(&[param("Dense_0/bias"), param("Dense_1/bias")], 0));
        let (mean, log_std) = policy.mean_and_log_std(Weights::new(&tensors), &v.tensor("inputs", device));
        assert!(max_difference(&mean, &v.tensor("means", device)) < 1e-5);
        assert!(max_difference(&log_std.exp(), &v.tensor("stds", device)) < 1e-5);
        // The log-probability of given actions, through the noise that gives them. This crate's
        // squash correction adds 1e-6 inside its log (as mtrl) where distrax's is exact, a few
        // 1e-6 per action dimension at these actions.
        let actions = v.tensor("actions", device);
        let noise = (actions.atanh() - &mean) / log_std.exp();
        let (sampled, log_prob) = policy.sample(Weights::new(&tensors), &v.tensor("inputs", device), &noise);
        assert!(max_difference(&sampled, &actions) < 1e-5);
        let error = max_difference(&log_prob, &v.tensor("log_probs", device));
        assert!(error < 1e-4, "off by {error}");
    }
}
