//! Replay memory: one shared ring (uniform sampling, the papers' protocol) or one ring per task
//! (stratified sampling). Transitions store the true next observation, also at episode ends.
use crate::config::Sampling;
use crate::AgentError;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Write};
use std::path::Path;

/// The JSON header of a saved buffer: its shape and where each ring stands.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Header {
    sampling: Sampling,
    num_tasks: usize,
    obs_dim: usize,
    action_dim: usize,
    /// Per ring: capacity, transitions held, next slot to write.
    rings: Vec<RingHeader>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct RingHeader {
    capacity: usize,
    len: usize,
    next: usize,
}

/// A batch on the host, rows sorted by task: `counts[k]` rows of task `k`, then task `k + 1`.
#[derive(Debug, Clone)]
pub struct HostBatch {
    pub counts: Vec<usize>,
    pub task: Vec<i64>,
    pub obs: Vec<f32>,
    pub action: Vec<f32>,
    pub reward: Vec<f32>,
    pub next_obs: Vec<f32>,
    /// 0 where the episode terminated (no bootstrapping), else 1.
    pub not_done: Vec<f32>,
}

#[derive(Debug)]
struct Ring {
    capacity: usize,
    next: usize,
    task: Vec<u16>,
    obs: Vec<f32>,
    action: Vec<f32>,
    reward: Vec<f32>,
    next_obs: Vec<f32>,
    terminated: Vec<bool>,
}

impl Ring {
    /// Reserves the full capacity at once (growing by doubling could take up to twice the
    /// memory); untouched pages of a large reservation cost nothing until written.
    fn new(capacity: usize, obs_dim: usize, action_dim: usize) -> Self {
        Self {
            capacity,
            next: 0,
            task: Vec::with_capacity(capacity),
            obs: Vec::with_capacity(capacity * obs_dim),
            action: Vec::with_capacity(capacity * action_dim),
            reward: Vec::with_capacity(capacity),
            next_obs: Vec::with_capacity(capacity * obs_dim),
            terminated: Vec::with_capacity(capacity),
        }
    }

    fn reserved_bytes(&self) -> usize {
        self.task.capacity() * size_of::<u16>()
            + (self.obs.capacity() + self.action.capacity() + self.reward.capacity() + self.next_obs.capacity())
                * size_of::<f32>()
            + self.terminated.capacity() * size_of::<bool>()
    }

    fn len(&self) -> usize {
        self.task.len()
    }

    fn push(&mut self, task: u16, obs: &[f32], action: &[f32], reward: f32, next_obs: &[f32], terminated: bool) {
        if self.len() < self.capacity {
            self.task.push(task);
            self.obs.extend_from_slice(obs);
            self.action.extend_from_slice(action);
            self.reward.push(reward);
            self.next_obs.extend_from_slice(next_obs);
            self.terminated.push(terminated);
        } else {
            let i = self.next;
            let (o, a) = (obs.len(), action.len());
            self.task[i] = task;
            self.obs[i * o..(i + 1) * o].copy_from_slice(obs);
            self.action[i * a..(i + 1) * a].copy_from_slice(action);
            self.reward[i] = reward;
            self.next_obs[i * o..(i + 1) * o].copy_from_slice(next_obs);
            self.terminated[i] = terminated;
        }
        self.next = (self.next + 1) % self.capacity;
    }

    /// Little-endian: task ids (u16), obs, actions, rewards, next obs (f32), terminated (u8).
    fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        for task in &self.task {
            out.write_all(&task.to_le_bytes())?;
        }
        for values in [&self.obs, &self.action, &self.reward, &self.next_obs] {
            for value in values {
                out.write_all(&value.to_le_bytes())?;
            }
        }
        out.write_all(&self.terminated.iter().map(|&t| u8::from(t)).collect::<Vec<u8>>())
    }

    /// Refills the ring with `len` transitions in [`Ring::write_to`]'s layout from `bytes`,
    /// returning what follows them; `None` when `bytes` is too short.
    fn read_from<'a>(&mut self, header: &RingHeader, bytes: &'a [u8], obs_dim: usize, action_dim: usize) -> Option<&'a [u8]> {
        let len = header.len;
        let (task, rest) = split(bytes, 2 * len)?;
        // Refilled in place: the vectors keep their full reservation (see `Ring::new`).
        self.task.clear();
        self.task.extend(task.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])));
        let mut rest = rest;
        for (values, count) in [(&mut self.obs, len * obs_dim), (&mut self.action, len * action_dim), (&mut self.reward, len), (&mut self.next_obs, len * obs_dim)] {
            let (floats, tail) = split(rest, 4 * count)?;
            values.clear();
            values.extend(floats.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            rest = tail;
        }
        let (terminated, rest) = split(rest, len)?;
        self.terminated.clear();
        self.terminated.extend(terminated.iter().map(|&b| b != 0));
        self.next = header.next;
        Some(rest)
    }

    fn header(&self) -> RingHeader {
        RingHeader { capacity: self.capacity, len: self.len(), next: self.next }
    }

    fn copy_into(&self, i: usize, batch: &mut HostBatch, obs_dim: usize, action_dim: usize) {
        batch.obs.extend_from_slice(&self.obs[i * obs_dim..(i + 1) * obs_dim]);
        batch.action.extend_from_slice(&self.action[i * action_dim..(i + 1) * action_dim]);
        batch.reward.push(self.reward[i]);
        batch.next_obs.extend_from_slice(&self.next_obs[i * obs_dim..(i + 1) * obs_dim]);
        batch.not_done.push(if self.terminated[i] { 0.0 } else { 1.0 });
    }
}

#[derive(Debug)]
pub struct ReplayBuffer {
    sampling: Sampling,
    num_tasks: usize,
    obs_dim: usize,
    action_dim: usize,
    rings: Vec<Ring>,
}

impl ReplayBuffer {
    /// `capacity` transitions over all tasks (split evenly between the rings when stratified).
    pub fn new(sampling: Sampling, capacity: usize, num_tasks: usize, obs_dim: usize, action_dim: usize) -> Self {
        let rings = match sampling {
            Sampling::Uniform => vec![Ring::new(capacity, obs_dim, action_dim)],
            Sampling::Stratified => {
                (0..num_tasks).map(|_| Ring::new(capacity / num_tasks, obs_dim, action_dim)).collect()
            }
        };
        Self { sampling, num_tasks, obs_dim, action_dim, rings }
    }

    /// Bytes one stored transition takes: obs and next obs, action, reward (f32), the
    /// termination flag and the task id.
    pub fn bytes_per_transition(&self) -> usize {
        (2 * self.obs_dim + self.action_dim + 1) * size_of::<f32>() + size_of::<bool>() + size_of::<u16>()
    }

    /// Heap memory the buffer holds: `capacity() * bytes_per_transition()`.
    pub fn reserved_bytes(&self) -> usize {
        self.rings.iter().map(Ring::reserved_bytes).sum()
    }

    pub fn len(&self) -> usize {
        self.rings.iter().map(Ring::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.rings.iter().map(|r| r.capacity).sum()
    }

    /// Stores one vector step: task `k`'s transition is row `k` of each task-major buffer.
    pub fn push(
        &mut self,
        obs: &[f32],
        actions: &[f32],
        rewards: &[f32],
        next_obs: &[f32],
        terminated: &[bool],
    ) -> Result<(), AgentError> {
        let (k, o, a) = (self.num_tasks, self.obs_dim, self.action_dim);
        for (what, expected, got) in [
            ("observations", k * o, obs.len()),
            ("actions", k * a, actions.len()),
            ("rewards", k, rewards.len()),
            ("next observations", k * o, next_obs.len()),
            ("terminated flags", k, terminated.len()),
        ] {
            if expected != got {
                return Err(AgentError::Shape { what, expected, got });
            }
        }
        for task in 0..k {
            let ring = match self.sampling {
                Sampling::Uniform => &mut self.rings[0],
                Sampling::Stratified => &mut self.rings[task],
            };
            ring.push(
                task as u16,
                &obs[task * o..(task + 1) * o],
                &actions[task * a..(task + 1) * a],
                rewards[task],
                &next_obs[task * o..(task + 1) * o],
                terminated[task],
            );
        }
        Ok(())
    }

    /// `batch_size` transitions: uniformly from the shared ring, or `batch_size / K` per task
    /// (the first `batch_size % K` tasks get one more) from the per-task rings.
    pub fn sample(&self, batch_size: usize, rng: &mut impl Rng) -> Result<HostBatch, AgentError> {
        let k = self.num_tasks;
        let mut indices: Vec<Vec<usize>> = vec![Vec::new(); k];
        match self.sampling {
            Sampling::Uniform => {
                let ring = &self.rings[0];
                if ring.len() == 0 {
                    return Err(AgentError::EmptyReplay { needed: batch_size, detail: String::new() });
                }
                for _ in 0..batch_size {
                    let i = rng.gen_range(0..ring.len());
                    indices[ring.task[i] as usize].push(i);
                }
            }
            Sampling::Stratified => {
                for (task, ring) in self.rings.iter().enumerate() {
                    if ring.len() == 0 {
                        return Err(AgentError::EmptyReplay { needed: batch_size, detail: format!(" for task {task}") });
                    }
                    let n = batch_size / k + usize::from(task < batch_size % k);
                    indices[task] = (0..n).map(|_| rng.gen_range(0..ring.len())).collect();
                }
            }
        }
        let mut batch = HostBatch {
            counts: indices.iter().map(Vec::len).collect(),
            task: Vec::with_capacity(batch_size),
            obs: Vec::with_capacity(batch_size * self.obs_dim),
            action: Vec::with_capacity(batch_size * self.action_dim),
            reward: Vec::with_capacity(batch_size),
            next_obs: Vec::with_capacity(batch_size * self.obs_dim),
            not_done: Vec::with_capacity(batch_size),
        };
        for (task, rows) in indices.iter().enumerate() {
            let ring = match self.sampling {
                Sampling::Uniform => &self.rings[0],
                Sampling::Stratified => &self.rings[task],
            };
            for &i in rows {
                batch.task.push(task as i64);
                ring.copy_into(i, &mut batch, self.obs_dim, self.action_dim);
            }
        }
        Ok(batch)
    }

    fn header(&self) -> Header {
        Header {
            sampling: self.sampling,
            num_tasks: self.num_tasks,
            obs_dim: self.obs_dim,
            action_dim: self.action_dim,
            rings: self.rings.iter().map(Ring::header).collect(),
        }
    }

    /// Writes `header` (JSON) and `data` (the rings' transitions, see [`Ring::write_to`]).
    pub(crate) fn save(&self, header: &Path, data: &Path) -> Result<(), AgentError> {
        let error = |path: &Path, e: std::io::Error| AgentError::Checkpoint { path: path.to_path_buf(), message: e.to_string() };
        let json = serde_json::to_string_pretty(&self.header()).expect("a replay header serialises");
        std::fs::write(header, json).map_err(|e| error(header, e))?;
        let file = std::fs::File::create(data).map_err(|e| error(data, e))?;
        let mut out = BufWriter::new(file);
        self.rings.iter().try_for_each(|ring| ring.write_to(&mut out)).and_then(|()| out.flush()).map_err(|e| error(data, e))
    }

    /// Replaces the contents with a buffer saved by [`ReplayBuffer::save`] of the same shape.
    pub(crate) fn load(&mut self, header: &Path, data: &Path) -> Result<(), AgentError> {
        let error = |path: &Path, message: String| AgentError::Checkpoint { path: path.to_path_buf(), message };
        let json = std::fs::read_to_string(header).map_err(|e| error(header, e.to_string()))?;
        let saved: Header = serde_json::from_str(&json).map_err(|e| error(header, e.to_string()))?;
        let ours = self.header();
        let shape = |h: &Header| (h.sampling, h.num_tasks, h.obs_dim, h.action_dim, h.rings.iter().map(|r| r.capacity).collect::<Vec<_>>());
        if shape(&saved) != shape(&ours) {
            return Err(error(header, format!("the replay buffer has shape {:?}, this agent's {:?}", shape(&saved), shape(&ours))));
        }
        let bytes = std::fs::read(data).map_err(|e| error(data, e.to_string()))?;
        let mut rest = bytes.as_slice();
        for (ring, ring_header) in self.rings.iter_mut().zip(&saved.rings) {
            let valid = ring_header.len <= ring.capacity && ring_header.next < ring.capacity.max(1);
            rest = valid
                .then(|| ring.read_from(ring_header, rest, self.obs_dim, self.action_dim))
                .flatten()
                .ok_or_else(|| error(data, "truncated or inconsistent with its header".into()))?;
        }
        if !rest.is_empty() {
            return Err(error(data, format!("{} bytes more than its header describes", rest.len())));
        }
        Ok(())
    }
}

/// The first `n` bytes and the rest, or `None` when there are fewer.
fn split(bytes: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (bytes.len() >= n).then(|| bytes.split_at(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn step(buffer: &mut ReplayBuffer, t: f32) {
        let k = buffer.num_tasks;
        let obs: Vec<f32> = (0..k).map(|task| t + task as f32 * 1000.0).collect();
        let next: Vec<f32> = obs.iter().map(|o| o + 0.5).collect();
        let actions: Vec<f32> = obs.iter().map(|o| -o).collect();
        let terminated: Vec<bool> = (0..k).map(|task| task == 0).collect();
        buffer.push(&obs, &actions, &obs, &next, &terminated).unwrap();
    }

    #[test]
    fn rings_overwrite_the_oldest_and_batches_are_sorted_by_task() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        for sampling in [Sampling::Uniform, Sampling::Stratified] {
            let mut buffer = ReplayBuffer::new(sampling, 12, 3, 1, 1);
            for t in 0..10 {
                step(&mut buffer, t as f32);
            }
            assert_eq!(buffer.len(), 12);
            let batch = buffer.sample(300, &mut rng).unwrap();
            assert_eq!(batch.counts.iter().sum::<usize>(), 300);
            assert!(batch.task.windows(2).all(|w| w[0] <= w[1]));
            for (i, &task) in batch.task.iter().enumerate() {
                let t = batch.obs[i] - task as f32 * 1000.0;
                // Only the last 4 vector steps (12 transitions / 3 tasks) remain.
                assert!((6.0..10.0).contains(&t), "{sampling:?}: stale or foreign transition t = {t}");
                assert_eq!(batch.next_obs[i], batch.obs[i] + 0.5);
                assert_eq!(batch.action[i], -batch.obs[i]);
                assert_eq!(batch.reward[i], batch.obs[i]);
                assert_eq!(batch.not_done[i], if task == 0 { 0.0 } else { 1.0 });
            }
            if sampling == Sampling::Stratified {
                assert_eq!(batch.counts, vec![100, 100, 100]);
            }
        }
    }

    #[test]
    fn memory_stays_what_the_capacity_implies() {
        for sampling in [Sampling::Uniform, Sampling::Stratified] {
            let mut buffer = ReplayBuffer::new(sampling, 30, 3, 39, 4);
            for t in 0..25 {
                step_wide(&mut buffer, t as f32);
            }
            assert_eq!(buffer.len(), 30);
            assert_eq!(buffer.reserved_bytes(), 30 * buffer.bytes_per_transition());
            assert_eq!(buffer.bytes_per_transition(), (39 * 2 + 4 + 1) * 4 + 1 + 2);
        }
    }

    fn step_wide(buffer: &mut ReplayBuffer, t: f32) {
        let (k, o, a) = (buffer.num_tasks, buffer.obs_dim, buffer.action_dim);
        buffer.push(&vec![t; k * o], &vec![0.0; k * a], &vec![t; k], &vec![t; k * o], &vec![false; k]).unwrap();
    }
}
