//! BRC's categorical critic (Nauman et al. 2025, `jaxrl/agent/update.py`; docs/brc.md). The
//! critic's output is a distribution over fixed atoms rather than a single value. Its Bellman
//! target is the target critics' distribution, shifted by the soft Bellman backup and projected
//! back onto the atoms (C51's projection), and the critic learns it by cross-entropy. Q is the
//! distribution's mean.
use tch::{Device, Kind, Tensor};

/// `bins` atoms evenly spaced on `[-v_max, v_max]` (BRC: 101 on `[-10, 10]`).
pub(crate) struct Support {
    bins: i64,
    v_max: f64,
    /// `[bins]`: the atoms `z_j`.
    atoms: Tensor,
}

impl Support {
    pub fn new(bins: usize, v_max: f64, device: Device) -> Self {
        assert!(bins >= 2 && v_max > 0.0, "a support needs two atoms and a positive range");
        let bins = bins as i64;
        Self { bins, v_max, atoms: Tensor::linspace(-v_max, v_max, bins, (Kind::Float, device)) }
    }

    /// The distance between neighbouring atoms.
    fn spacing(&self) -> f64 {
        2.0 * self.v_max / (self.bins - 1) as f64
    }

    /// The mean `sum_j z_j p_j` of distributions `probs` (`[..., bins]`).
    pub fn expectation(&self, probs: &Tensor) -> Tensor {
        (probs * &self.atoms).sum_dim_intlist(-1, false, Kind::Float)
    }

    /// The categorical Bellman target: each atom of the next state's distribution `next_probs`
    /// (`[..., bins]`) moves to `reward + discount * (z_j - entropy)`, clipped to the support,
    /// and its mass is split between the two atoms around that point in proportion to the
    /// distances. A point on an atom gives it the whole mass. `reward`, `discount`
    /// (`gamma * not_done`) and `entropy` (`alpha * log pi(a'|s')`) are per sample (`[...]`).
    pub fn project(&self, next_probs: &Tensor, reward: &Tensor, discount: &Tensor, entropy: &Tensor) -> Tensor {
        let moved = reward.unsqueeze(-1) + discount.unsqueeze(-1) * (&self.atoms - entropy.unsqueeze(-1));
        let position = (moved.clamp(-self.v_max, self.v_max) + self.v_max) / self.spacing();
        let lower = position.floor();
        let upper_share = &position - &lower;
        let lower_index = lower.to_kind(Kind::Int64).clamp(0, self.bins - 1);
        // Only a point on the last atom has no atom above; its upper share is 0.
        let upper_index = (&lower_index + 1).clamp_max(self.bins - 1);
        next_probs
            .zeros_like()
            .scatter_add(-1, &lower_index, &(next_probs * (1.0 - &upper_share)))
            .scatter_add(-1, &upper_index, &(next_probs * upper_share))
    }
}

/// Per sample, `-sum_j target_j log softmax(logits)_j` (`logits` and `target` are `[..., bins]`).
pub(crate) fn cross_entropy(logits: &Tensor, target: &Tensor) -> Tensor {
    -(target * logits.log_softmax(-1, Kind::Float)).sum_dim_intlist(-1, false, Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brc_reference::{max_difference, Vectors};

    fn device() -> Device {
        crate::testing::tch_device()
    }

    #[test]
    fn the_target_and_loss_match_brc() {
        let v = Vectors::load("critic_update.json");
        let device = device();
        let support = Support::new(v.scalar("num_bins") as usize, v.scalar("v_max"), device);
        let (gamma, temperature) = (v.scalar("discount"), v.scalar("temperature"));
        let target = support.project(
            &v.tensor("next_probs", device),
            &v.tensor("rewards", device),
            &(v.tensor("masks", device) * gamma),
            &(v.tensor("next_log_probs", device) * temperature),
        );
        let expected = v.tensor("target_probs", device);
        assert!(max_difference(&target, &expected) < 1e-5, "off by {}", max_difference(&target, &expected));
        let q_mean = support.expectation(&target).mean(Kind::Float).double_value(&[]);
        assert!((q_mean - v.scalar("q_target_mean")).abs() < 1e-5, "{q_mean} vs {}", v.scalar("q_target_mean"));
        // BRC's loss: the ensemble's sum of batch-mean cross-entropies.
        let loss = cross_entropy(&v.tensor("logits", device), &expected).mean_dim(1, false, Kind::Float).sum(Kind::Float);
        let (loss, brc) = (loss.double_value(&[]), v.scalar("critic_loss"));
        assert!((loss - brc).abs() < 1e-5 * brc.abs().max(1.0), "{loss} vs {brc}");
    }

    #[test]
    fn the_projection_keeps_the_mass_and_moves_the_mean_by_the_backup() {
        let device = device();
        let support = Support::new(11, 5.0, device);
        let next_probs = Tensor::rand([4, 11], (Kind::Float, device)).softmax(-1, Kind::Float);
        let reward = Tensor::from_slice(&[0.3f32, -1.7, 2.0, 0.0]).to_device(device);
        let discount = Tensor::from_slice(&[0.9f32, 0.5, 0.0, 0.99]).to_device(device);
        let entropy = Tensor::from_slice(&[0.2f32, -0.4, 1.0, 0.0]).to_device(device);
        let target = support.project(&next_probs, &reward, &discount, &entropy);
        let ones = Tensor::ones([4], (Kind::Float, device));
        assert!(max_difference(&target.sum_dim_intlist(-1, false, Kind::Float), &ones) < 1e-6);
        assert!(target.min().double_value(&[]) >= 0.0);
        // No moved atom leaves [-5, 5] here, and linear interpolation keeps the mean there:
        // r + d (E[z] - entropy).
        let moved = &reward + &discount * (support.expectation(&next_probs) - &entropy);
        assert!(max_difference(&support.expectation(&target), &moved) < 1e-5);
    }

    #[test]
    fn a_terminal_step_is_a_two_hot_of_its_reward_and_the_ends_clip() {
        let device = device();
        let support = Support::new(5, 2.0, device); // atoms -2, -1, 0, 1, 2
        let next_probs = Tensor::rand([3, 5], (Kind::Float, device)).softmax(-1, Kind::Float);
        let reward = Tensor::from_slice(&[0.25f32, -1.0, 7.0]).to_device(device);
        let zero = Tensor::zeros([3], (Kind::Float, device));
        let target = support.project(&next_probs, &reward, &zero, &zero);
        let expected = Tensor::from_slice(&[0.0f32, 0.0, 0.75, 0.25, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
            .view([3, 5])
            .to_device(device);
        assert!(max_difference(&target, &expected) < 1e-6, "{target}");
    }

    #[test]
    fn cross_entropy_is_least_at_the_target() {
        let device = device();
        let target = Tensor::from_slice(&[0.1f32, 0.6, 0.3]).to_device(device);
        let at_target = cross_entropy(&target.log(), &target).double_value(&[]);
        let entropy = -(&target * target.log()).sum(Kind::Float).double_value(&[]);
        assert!((at_target - entropy).abs() < 1e-6);
        let elsewhere = cross_entropy(&Tensor::from_slice(&[0.0f32, 0.0, 0.0]).to_device(device), &target).double_value(&[]);
        assert!(elsewhere > at_target);
    }
}
