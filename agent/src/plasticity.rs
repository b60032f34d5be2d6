//! Plasticity diagnostics of each network's last hidden layer, as the scaling paper's code
//! computes them (McLean et al. 2025, rainx0r/mtrl `monitoring/metrics.py`): the share of
//! dormant units (Sokar et al. 2023, Eq. 1) and the effective rank `srank` (Kumar et al. 2021)
//! of the features on a batch. Computed on the device without gradients; the caller reads the
//! few scalars back with what it downloads anyway (though libtorch's SVD waits for a CUDA
//! device: it checks its solver's status on the host).
use crate::critic::TwinCritic;
use crate::layout::Layout;
use crate::network::Weights;
use crate::policy::SquashedGaussian;
use serde::Serialize;
use tch::{Kind, Tensor};

/// A unit is dormant when its mean absolute activation over the batch is at most this fraction
/// of the layer's average (mtrl's `dormant_neuron_threshold`).
const DORMANT_THRESHOLD: f64 = 0.1;
/// srank is the number of largest singular values that make up `1 - delta` of their sum (mtrl's
/// `delta`).
const SRANK_DELTA: f64 = 0.01;
/// mtrl's guard against a layer whose units are all silent.
const SCORE_EPS: f64 = 1e-9;

/// One network's diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NetworkPlasticity {
    /// Percent of the last hidden layer's units that are dormant (mtrl's `<layer>_ratio`).
    pub dormant_percent: f64,
    /// The effective rank of its features on the batch.
    pub srank: f64,
}

/// The diagnostics of the actor and of each Q-network, on one update's batch.
#[derive(Debug, Clone, Serialize)]
pub struct Plasticity {
    pub actor: NetworkPlasticity,
    pub critics: [NetworkPlasticity; 2],
}

impl Plasticity {
    /// How many values [`measure`] puts on the device.
    pub(crate) const VALUES: usize = 6;

    /// From the values of [`measure`], read back.
    pub(crate) fn from_values(values: &[f64]) -> Self {
        assert_eq!(values.len(), Self::VALUES);
        let network = |i: usize| NetworkPlasticity { dormant_percent: values[2 * i], srank: values[2 * i + 1] };
        Self { actor: network(0), critics: [network(1), network(2)] }
    }

    /// The networks by name, as logged: `actor`, `critic1`, `critic2`.
    pub fn networks(&self) -> [(&'static str, NetworkPlasticity); 3] {
        [("actor", self.actor), ("critic1", self.critics[0]), ("critic2", self.critics[1])]
    }
}

/// `[6]` on the device: each network's dormant percent and srank (actor, then the two
/// Q-networks), as mtrl's `get_metrics`: the actor on the batch's observations, the critics on
/// those observations with actions drawn from the actor (here from the batch's own noise); both
/// see the critic's task vectors, if any, as in the update.
/// `obs` and `noise` are flat rows sorted by task; `task_counts` splits them by task where each
/// task has its own network, whose diagnostics are then averaged over the tasks in the batch.
pub(crate) fn measure(
    (actor, actor_params): (&SquashedGaussian, &[Tensor]),
    (critic, critic_params): (&TwinCritic, &[Tensor]),
    layout: &Layout,
    obs: &Tensor,
    noise: &Tensor,
    task_counts: Option<&[i64]>,
) -> Tensor {
    tch::no_grad(|| {
        let (actor_weights, critic_weights) = (Weights::new(actor_params), Weights::new(critic_params));
        let obs = critic.with_task_vectors(critic_weights, layout, &layout.arrange(obs));
        let (action, _) = actor.sample(actor_weights, &obs, &layout.arrange(noise));
        let [q1, q2] = critic.features(critic_weights, &obs, &action);
        let networks = [actor.features(actor_weights, &obs), q1, q2].map(|features| {
            let features = layout.to_flat(&features);
            match task_counts {
                None => layer_diagnostics(&features),
                Some(counts) => {
                    let tasks: Vec<Tensor> = features.split_with_sizes(counts, 0).iter().filter(|f| f.size()[0] > 0).map(layer_diagnostics).collect();
                    Tensor::stack(&tasks, 0).mean_dim(0, false, Kind::Float)
                }
            }
        });
        Tensor::cat(&networks, 0)
    })
}

/// `[2]`: the dormant percent and the srank of one layer's `[rows, units]` features, mtrl's
/// `get_dormant_neuron_logs` (its `_ratio`) and `compute_srank`.
fn layer_diagnostics(features: &Tensor) -> Tensor {
    let score = features.abs().mean_dim(0, false, Kind::Float);
    let score = &score / (score.mean(Kind::Float) + SCORE_EPS);
    let dormant_percent = score.le(DORMANT_THRESHOLD).to_kind(Kind::Float).mean(Kind::Float) * 100.0;
    // torch.svd without U and V: the singular values only (linalg_svdvals through tch would pass
    // an empty driver name, which the CPU refuses).
    let (_, singular, _) = features.svd(true, false);
    let share = singular.cumsum(0, Kind::Float) / singular.sum(Kind::Float);
    // mtrl's `argmax(share >= 1 - delta) + 1`: the shares rise, so it counts those below. All
    // silent units give NaN shares, none below, srank 1, as mtrl's argmax of all False.
    let srank = share.lt(1.0 - SRANK_DELTA).sum(Kind::Float) + 1.0;
    Tensor::stack(&[dormant_percent, srank], 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brc_reference::Vectors;
    use crate::testing::small_sac;
    use crate::{Architecture, Block, SacConfig, TaskEncoder, Temperature};

    /// mtrl's own functions on fixed features (`scripts/plasticity_vectors.py`): healthy, with
    /// dead and weak units, low-rank, wider than tall, all silent.
    #[test]
    fn layer_diagnostics_match_mtrl() {
        let vectors = Vectors::read("plasticity/metrics.json");
        let device = crate::testing::tch_device();
        let cases = vectors.field("cases").as_object().expect("cases by name");
        assert_eq!(cases.len(), 5);
        for (name, case) in cases {
            let case = Vectors::from(case.clone());
            let values = Vec::<f64>::try_from(layer_diagnostics(&case.tensor("features", device)).to_kind(Kind::Double)).unwrap();
            let expected = [case.scalar("dormant_percent"), case.scalar("srank")];
            for (what, (ours, theirs)) in ["dormant percent", "srank"].iter().zip(values.iter().zip(expected)) {
                assert!((ours - theirs).abs() < 1e-5, "{name}: {what} {ours}, mtrl {theirs}");
            }
        }
    }

    /// A unit is dormant by its share of the layer's mean activity, whatever the layer's scale;
    /// the srank of `r` orthogonal directions of equal weight is `r`.
    #[test]
    fn dormancy_is_relative_and_srank_counts_equal_directions() {
        let device = crate::testing::tch_device();
        let features = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 0.05, 0.0, 1.0, 1.0, 1.0, 0.05, 0.0]).view([2, 5]).to_device(device);
        for scale in [1e-3, 1.0, 1e3] {
            let values = Vec::<f64>::try_from(layer_diagnostics(&(&features * scale)).to_kind(Kind::Double)).unwrap();
            assert!((values[0] - 40.0).abs() < 1e-4, "scale {scale}: {values:?}");
            assert_eq!(values[1], 1.0, "scale {scale}: two equal rows are one direction");
        }
        let eye = Tensor::eye(4, (Kind::Float, device)).repeat([3, 2]);
        let values = Vec::<f64>::try_from(layer_diagnostics(&eye).to_kind(Kind::Double)).unwrap();
        assert_eq!(values, [0.0, 4.0]);
    }

    /// Asking changes nothing else: the same step, no extra read-back; the values lie
    /// in their ranges for shared, multi-head and per-task networks, plain, BroNet and with the
    /// task embedding; once only.
    #[test]
    fn an_update_asked_for_plasticity_reports_it_and_takes_the_same_step_without_another_read_back() {
        let bronet = |config: SacConfig| SacConfig { actor_block: Block::Bronet, critic_block: Block::Bronet, ..config };
        let plain = |config: SacConfig| config;
        let embedding = |config: SacConfig| SacConfig { task_encoder: TaskEncoder::Embedding, task_embedding_dim: 4, ..config };
        let configs: [(Architecture, &dyn Fn(SacConfig) -> SacConfig); 5] = [
            (Architecture::MtSac, &plain),
            (Architecture::MultiHead, &plain),
            (Architecture::PerTask, &plain),
            (Architecture::MtSac, &bronet),
            (Architecture::MultiHead, &embedding),
        ];
        for (architecture, adjust) in configs {
            let mut unasked = small_sac(architecture, Temperature::Shared, 3, adjust);
            let mut asked = small_sac(architecture, Temperature::Shared, 3, adjust);
            let ours = unasked.update().unwrap();
            asked.measure_plasticity_next_update();
            let theirs = asked.update().unwrap();
            assert!(ours.plasticity.is_none());
            assert_eq!(theirs.host_syncs, ours.host_syncs, "{architecture:?}");
            assert_eq!(theirs.alpha_values, ours.alpha_values, "{architecture:?}");
            for (a, b) in unasked.learners().iter().zip(asked.learners()) {
                assert_eq!((&a.flat - &b.flat).abs().max().double_value(&[]), 0.0, "{architecture:?} {}", a.component);
            }
            for (name, network) in theirs.plasticity.expect("asked for").networks() {
                assert!((0.0..=100.0).contains(&network.dormant_percent), "{architecture:?} {name}: {network:?}");
                // 32 units, 45 rows (15 a task for per-task networks, their mean over tasks).
                assert!((1.0..=32.0).contains(&network.srank) && network.srank > 2.0, "{architecture:?} {name}: {network:?}");
            }
            assert!(asked.update().unwrap().plasticity.is_none(), "one update only");
        }
    }
}
