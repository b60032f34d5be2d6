//! BRC's task embedding (`TaskEmbedding` in its `networks.py`): a learned vector per task, its
//! row of a `[K, dim]` table, L2-normalised, appended to the observation in place of a one-hot
//! task id. The table is a critic parameter; the actor reads the critic's vectors as fixed inputs.
use crate::layout::Layout;
use crate::network::{Param, Weights};
use rand::Rng;
use rand_distr::StandardNormal;
use tch::{Device, Tensor};

#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskEmbedding {
    num_tasks: usize,
    dim: usize,
    normalize: bool,
}

/// The standard deviation of a standard normal truncated to `[-2, 2]`, by which jax's
/// `variance_scaling` divides so that its truncated draws have the asked-for deviation.
const TRUNCATED_NORMAL_STD: f64 = 0.879_625_661_034_239_8;

impl TaskEmbedding {
    pub fn new(num_tasks: usize, dim: usize, normalize: bool) -> Self {
        Self { num_tasks, dim, normalize }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The `[K, dim]` table as flax's `nn.Embed` initialises it (`variance_scaling(1, "fan_in",
    /// "normal", out_axis=0)`): normals truncated to two deviations, of deviation
    /// `1 / sqrt(dim)`, so each row's norm is about 1; drawn from `rng` on the host, task by task.
    /// A per-task parameter: row `k` only ever sees task `k`.
    pub fn init(&self, device: Device, rng: &mut impl Rng) -> Param {
        let scale = (1.0 / self.dim as f64).sqrt() / TRUNCATED_NORMAL_STD;
        let values: Vec<f32> = (0..self.num_tasks * self.dim)
            .map(|_| loop {
                let draw: f64 = rng.sample(StandardNormal);
                if draw.abs() <= 2.0 {
                    break (draw * scale) as f32;
                }
            })
            .collect();
        let table = Tensor::from_slice(&values).view([self.num_tasks as i64, self.dim as i64]).to_device(device);
        Param { value: table.set_requires_grad(true), per_task: true, in_layer: false }
    }

    pub fn num_parameters(&self) -> usize {
        self.num_tasks * self.dim
    }

    /// `[K, dim]`: each task's vector, its row of `table`, divided by its norm when normalised
    /// (as BRC, without an epsilon: a row of norm 0 is not reached from its initialisation).
    pub fn vectors(&self, table: &Tensor) -> Tensor {
        if self.normalize {
            table / table.norm_scalaropt_dim(2, [-1], true)
        } else {
            table.shallow_clone()
        }
    }

    /// `obs` (laid out by `layout`) with each sample's task vector from `table` appended.
    pub fn append(&self, table: &Tensor, layout: &Layout, obs: &Tensor) -> Tensor {
        let mut shape = obs.size();
        *shape.last_mut().expect("observations have a feature dimension") = self.dim as i64;
        let vectors = layout.per_task(&self.vectors(table)).expand(shape.as_slice(), false);
        Tensor::cat(&[obs, &vectors], -1)
    }

    /// The table among a critic's parameters: the last one.
    pub fn table<'a>(weights: &Weights<'a>) -> &'a Tensor {
        weights.tensors.last().expect("the critic's parameters end with the task embedding")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brc_reference::{max_difference, Vectors};
    use crate::layout::layout_for;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::Kind;

    #[test]
    fn the_vectors_are_brcs_normalised_rows() {
        let v = Vectors::load("critic.json");
        let device = crate::testing::tch_device();
        let table = v.param("params", "task_embedding/embeddings/embedding", device);
        let ids = Tensor::from_slice(&v.indices("task_ids")).to_device(device);
        let embedding = TaskEmbedding::new(table.size()[0] as usize, table.size()[1] as usize, true);
        let ours = embedding.vectors(&table).index_select(0, &ids);
        assert!(max_difference(&ours, &v.tensor("task_embedding", device)) < 1e-6);
    }

    #[test]
    fn rows_are_drawn_at_flax_scale_and_each_sample_gets_its_tasks_row() {
        let embedding = TaskEmbedding::new(3, 32, false);
        let table = embedding.init(Device::Cpu, &mut ChaCha8Rng::seed_from_u64(4)).value.detach();
        assert_eq!(table.size(), [3, 32]);
        assert!(table.abs().max().double_value(&[]) <= 2.0 / (32f64.sqrt() * TRUNCATED_NORMAL_STD) + 1e-6);
        let std = table.std(true).double_value(&[]);
        assert!((std - 1.0 / 32f64.sqrt()).abs() < 0.03, "deviation {std}");
        // Counts 2, 0, 1: flat rows, and task-major slots with padding.
        let obs = Tensor::randn([3, 5], (Kind::Float, Device::Cpu));
        for per_task_layers in [false, true] {
            let layout = layout_for(&[2, 0, 1], per_task_layers, Device::Cpu);
            let input = layout.to_flat(&embedding.append(&table, &layout, &layout.arrange(&obs)));
            assert_eq!(input.size(), [3, 37]);
            assert!(max_difference(&input.narrow(1, 0, 5), &obs) == 0.0);
            for (row, task) in [(0, 0), (1, 0), (2, 2)] {
                assert!(max_difference(&input.get(row).narrow(0, 5, 32), &table.get(task)) == 0.0);
            }
        }
    }
}
