//! The twin critics: two Q-networks on `concat(obs, action)` (parameters `q1 ++ q2`, then BRC's
//! task embedding when used), with a scalar head (SAC's, as mtrl) or BRC's categorical one (see
//! [`crate::categorical`]). Their observations come with the task vectors appended by
//! [`TwinCritic::with_task_vectors`] of the same weights, so that the critic's loss trains them.
use crate::categorical::{cross_entropy, Support};
use crate::layout::Layout;
use crate::network::{Mlp, Param, Weights};
use crate::task_embedding::TaskEmbedding;
use rand::Rng;
use tch::{Device, Kind, Tensor};

pub(crate) struct TwinCritic {
    q: Mlp,
    /// The categorical head's atoms; `None` for the scalar head.
    support: Option<Support>,
    /// BRC's task embedding, which the critic owns (as BRC's `Critic`) and the target critic
    /// Polyak-averages with the rest.
    embedding: Option<TaskEmbedding>,
}

impl TwinCritic {
    /// `q` outputs one value for the scalar head, `bins` logits for a categorical one; its
    /// input includes the task vectors of `embedding` when there is one.
    pub fn new(q: Mlp, support: Option<Support>, embedding: Option<TaskEmbedding>) -> Self {
        Self { q, support, embedding }
    }

    pub fn init(&self, device: Device, rng: &mut impl Rng) -> Vec<Param> {
        let mut params = self.q.init(device, rng);
        params.extend(self.q.init(device, rng));
        params.extend(self.embedding.map(|embedding| embedding.init(device, rng)));
        params
    }

    /// `obs` (laid out by `layout`) with each sample's task vector from the embedding in
    /// `weights` appended, as both the critic and the actor take it (BRC's `build_actor_input`);
    /// `obs` itself without an embedding.
    pub fn with_task_vectors(&self, weights: Weights, layout: &Layout, obs: &Tensor) -> Tensor {
        match &self.embedding {
            Some(embedding) => embedding.append(TaskEmbedding::table(&weights), layout, obs),
            None => obs.shallow_clone(),
        }
    }

    pub fn has_per_task_layers(&self) -> bool {
        self.q.has_per_task_layers()
    }

    /// Both networks' parameters over all tasks, the embedding included.
    pub fn num_parameters(&self) -> usize {
        2 * self.q.num_parameters() + self.embedding.map_or(0, |embedding| embedding.num_parameters())
    }

    /// Both networks' outputs, `[..., 1]` or `[..., bins]`.
    fn outputs(&self, weights: Weights, obs: &Tensor, action: &Tensor) -> (Tensor, Tensor) {
        let input = Tensor::cat(&[obs, action], -1);
        let (q1, q2) = self.q_weights(weights);
        (self.q.forward(q1, &input), self.q.forward(q2, &input))
    }

    /// Both networks' last hidden layer features (see [`Mlp::features`]).
    pub fn features(&self, weights: Weights, obs: &Tensor, action: &Tensor) -> [Tensor; 2] {
        let input = Tensor::cat(&[obs, action], -1);
        let (q1, q2) = self.q_weights(weights);
        [self.q.features(q1, &input), self.q.features(q2, &input)]
    }

    /// Each Q-network's weights (the embedding's follow them).
    fn q_weights<'a>(&self, weights: Weights<'a>) -> (Weights<'a>, Weights<'a>) {
        let (q1, rest) = weights.split_at(self.q.num_tensors());
        (q1, rest.split_at(self.q.num_tensors()).0)
    }

    /// The value the actor maximises, one per sample: `min(Q1, Q2)` (scalar); the mean of the
    /// two networks' average distribution (categorical, BRC's `update_actor`).
    pub fn value(&self, weights: Weights, obs: &Tensor, action: &Tensor) -> Tensor {
        let (q1, q2) = self.outputs(weights, obs, action);
        match &self.support {
            None => q1.minimum(&q2).squeeze_dim(-1),
            Some(support) => support.expectation(&mean_distribution(&q1, &q2)),
        }
    }

    /// The regression target from the target networks at the next state and action, per
    /// sample: the soft Bellman target `reward + discount * (min(Q1, Q2) - entropy)` (scalar,
    /// `[...]`), or the average distribution of the two networks projected through the same
    /// backup onto the atoms (categorical, `[..., bins]`, BRC's `update_critic`). `discount` is
    /// `gamma * not_done`, `entropy` is `alpha * log pi(a'|s')`.
    pub fn bellman_target(&self, weights: Weights, next_obs: &Tensor, next_action: &Tensor, reward: &Tensor, discount: &Tensor, entropy: &Tensor) -> Tensor {
        let (q1, q2) = self.outputs(weights, next_obs, next_action);
        match &self.support {
            None => reward + discount * (q1.minimum(&q2).squeeze_dim(-1) - entropy),
            Some(support) => support.project(&mean_distribution(&q1, &q2), reward, discount, entropy),
        }
    }

    /// Per sample, the two networks' losses against `target`, summed: squared errors (scalar)
    /// or cross-entropies (categorical; BRC sums its ensemble's losses too).
    pub fn loss(&self, weights: Weights, obs: &Tensor, action: &Tensor, target: &Tensor) -> Tensor {
        let (q1, q2) = self.outputs(weights, obs, action);
        match &self.support {
            None => (q1.squeeze_dim(-1) - target).square() + (q2.squeeze_dim(-1) - target).square(),
            Some(_) => cross_entropy(&q1, target) + cross_entropy(&q2, target),
        }
    }
}

/// The average of two networks' distributions over the atoms, from their logits.
fn mean_distribution(logits1: &Tensor, logits2: &Tensor) -> Tensor {
    (logits1.softmax(-1, Kind::Float) + logits2.softmax(-1, Kind::Float)) * 0.5
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brc_reference::{bronet_names, max_difference, Vectors, CRITIC};
    use crate::config::Block;

    const OBS: i64 = 6;
    const ACTION: i64 = 3;
    const EMBEDDING: i64 = 4;

    /// BRC's twin critic here: its task embedding is appended to the observation (where this
    /// crate appends task ids), so its input layer's columns go from (obs, action, embedding) to
    /// (obs, embedding, action).
    fn brc_critic(device: Device) -> TwinCritic {
        let q = Mlp::built((OBS + EMBEDDING) as usize, &[8, 8, 8], 101, Block::Bronet, false, |_, _| false, 1);
        TwinCritic::new(q, Some(Support::new(101, 10.0, device)), None)
    }

    fn to_ours(kernel: &Tensor) -> Tensor {
        Tensor::cat(&[kernel.narrow(-1, 0, OBS), kernel.narrow(-1, OBS + ACTION, EMBEDDING), kernel.narrow(-1, OBS, ACTION)], -1)
    }

    /// `q1 ++ q2` from a flax parameter set whose ensemble axis comes first.
    fn weights(v: &Vectors, group: &str, device: Device) -> Vec<Tensor> {
        let names = bronet_names(CRITIC, 2, true);
        (0..2)
            .flat_map(|member| names.iter().enumerate().map(move |(i, name)| (member, i, name)))
            .map(|(member, i, name)| {
                let tensor = v.param(group, name, device).get(member);
                if i == 0 { to_ours(&tensor) } else { tensor }
            })
            .collect()
    }

    /// The observations with the task's L2-normalised embedding appended.
    fn inputs(v: &Vectors, table: &Tensor, key: &str, device: Device) -> Tensor {
        let ids = Tensor::from_slice(&v.indices("task_ids")).to_device(device);
        let rows = table.index_select(0, &ids);
        Tensor::cat(&[v.tensor(key, device), &rows / rows.norm_scalaropt_dim(2, [-1], true)], -1)
    }

    /// The sizes docs/brc.md reads off BRC's modules on MetaWorld (39-d observations, 4-d
    /// actions, 10 tasks): the `brc` preset's networks have as many parameters.
    #[test]
    fn brcs_mt10_networks_have_its_parameter_counts() {
        let embedding = TaskEmbedding::new(10, 32, true);
        let q = Mlp::built(39 + 32 + 4, &[4096; 3], 101, Block::Bronet, false, |_, _| false, 10);
        assert_eq!(TwinCritic::new(q, None, Some(embedding)).num_parameters(), 135_782_922);
        let actor = Mlp::built(39 + 32, &[256; 2], 2 * 4, Block::Bronet, false, |_, _| false, 10);
        assert_eq!(actor.num_parameters(), 153_608);
    }

    #[test]
    fn the_categorical_update_matches_brc_through_its_gradient() {
        let (critic_doc, update, actor) = (Vectors::load("critic.json"), Vectors::load("critic_update.json"), Vectors::load("actor_update.json"));
        let device = crate::testing::tch_device();
        let critic = brc_critic(device);
        let table = critic_doc.param("params", "task_embedding/embeddings/embedding", device);
        let target_table = update.param("target_params", "task_embedding/embeddings/embedding", device);
        let (gamma, temperature) = (update.scalar("discount"), update.scalar("temperature"));
        let target = critic.bellman_target(
            Weights::new(&weights(&update, "target_params", device)),
            &inputs(&update, &target_table, "next_observations", device),
            &update.tensor("next_actions", device),
            &update.tensor("rewards", device),
            &(update.tensor("masks", device) * gamma),
            &(update.tensor("next_log_probs", device) * temperature),
        );
        let error = max_difference(&target, &update.tensor("target_probs", device));
        assert!(error < 1e-5, "target off by {error}");

        // BRC's loss is the batch mean of the ensemble's summed cross-entropies.
        let params: Vec<Tensor> = weights(&critic_doc, "params", device).into_iter().map(|p| p.set_requires_grad(true)).collect();
        let obs = inputs(&update, &table, "observations", device);
        let loss = critic.loss(Weights::new(&params), &obs, &update.tensor("actions", device), &target).mean(Kind::Float);
        let (ours, brc) = (loss.double_value(&[]), update.scalar("critic_loss"));
        assert!((ours - brc).abs() < 1e-5 * brc.abs(), "loss {ours} vs {brc}");
        let grads = Tensor::run_backward(&[loss], &params, false, false);
        let expected = weights(&update, "critic_grads", device);
        for (i, (grad, expected)) in grads.iter().zip(&expected).enumerate() {
            let (error, scale) = (max_difference(grad, expected), expected.abs().max().double_value(&[]).max(1.0));
            assert!(error < 1e-5 * scale, "gradient of parameter {i} off by {error}");
        }

        // The actor's Q: the mean of the average distribution, at the actor's sampled actions.
        let q = critic.value(Weights::new(&weights(&critic_doc, "params", device)), &obs, &actor.tensor("sampled_actions", device));
        let error = max_difference(&q, &actor.tensor("q", device));
        assert!(error < 1e-5 * 10.0, "Q off by {error}");
    }
}
